//! Header value parsers on arbitrary text: Byte-Range, Status, digest
//! challenges and credentials, Content-Disposition, and every known header's
//! validation, TLS fingerprints (SDP a=fingerprint) and digest answers to a
//! parsed challenge. No panic; formatted values parse back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msrp::engine::tls::Fingerprint;
use msrp::proto::header::{ByteRange, ContentDisposition, DigestParams, HeaderName, Status, validate};
use msrp::proto::relay::answer_challenge;

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
            // Whatever a relay challenges with, our answer is a valid header.
            if let Ok(a) = answer_challenge(&d, "user", "pass", "msrp://h:1;tcp", 1, "cnonce") {
                DigestParams::parse(HeaderName::Authorization, &a.header, true).unwrap();
            }
        }
    }
    let _ = ContentDisposition::parse(text);
    if let Ok(f) = Fingerprint::parse(text) {
        assert_eq!(Fingerprint::parse(&f.to_string()).unwrap(), f);
    }
    let mut v = 0;
    while let Some(h) = HeaderName::from_u32(v) {
        let _ = validate(h, text);
        v += 1;
    }
});
