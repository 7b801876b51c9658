//! URI and path parsing on arbitrary text: no panic, and whatever parses
//! formats to text that parses to the same URI.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msrp::proto::uri::{Uri, parse_path};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(u) = Uri::parse(text) {
        let again = Uri::parse(&u.to_string()).expect("a formatted URI parses");
        assert_eq!(again, u);
        assert!(u.equivalent(&again));
    }
    let _ = parse_path(text);
    let _ = msrp::proto::Host::parse(text);
});
