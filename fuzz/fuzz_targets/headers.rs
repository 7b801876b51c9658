//! Header value parsers on arbitrary text: Byte-Range, Status, digest
//! challenges and credentials, Content-Disposition, and every known header's
//! validation. No panic; formatted values parse back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msrp::proto::header::{ByteRange, ContentDisposition, DigestParams, HeaderName, Status, validate};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = ByteRange::parse(text) {
        assert_eq!(ByteRange::parse(&r.to_string()).unwrap(), r);
    }
    if let Ok(s) = Status::parse(text) {
        assert_eq!(Status::parse(&s.to_string()).unwrap().code, s.code);
    }
    for (h, scheme) in [(HeaderName::WwwAuthenticate, true), (HeaderName::Authorization, true), (HeaderName::AuthenticationInfo, false)] {
        if let Ok(d) = DigestParams::parse(h, text, scheme) {
            assert_eq!(DigestParams::parse(h, &d.to_string(), scheme).unwrap(), d);
        }
    }
    let _ = ContentDisposition::parse(text);
    let mut v = 0;
    while let Some(h) = HeaderName::from_u32(v) {
        let _ = validate(h, text);
        v += 1;
    }
});
