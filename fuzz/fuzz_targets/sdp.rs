//! SDP parsing on arbitrary text: no panic, and every MSRP media
//! description read builds to lines that read back as the same description.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msrp::proto::sdp::{Sdp, minimal_sdp};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(sdp) = Sdp::parse(text) else { return };
    let Ok(media) = sdp.msrp_media() else { return };
    for (_, m) in media {
        let built = minimal_sdp("fuzz", 1, &m);
        let again = Sdp::parse(&built)
            .and_then(|s| s.msrp_media())
            .unwrap_or_else(|e| panic!("built SDP does not parse: {e}\n{built}"));
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].1, m, "{built}");
    }
});
