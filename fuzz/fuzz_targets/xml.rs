//! The XML bodies (IMDN, is-composing) on arbitrary bytes: no panic,
//! bounded work, and a document read builds to one that reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msrp::proto::imdn::Notification;
use msrp::proto::iscomposing::IsComposing;

fuzz_target!(|data: &[u8]| {
    let _ = msrp::proto::xml::parse(data);
    if let Ok(n) = Notification::parse(data) {
        let again = Notification::parse(n.to_xml().as_bytes())
            .unwrap_or_else(|e| panic!("a built IMDN does not parse: {e}\n{}", n.to_xml()));
        assert_eq!(again, n);
    }
    if let Ok(c) = IsComposing::parse(data) {
        let again = IsComposing::parse(c.to_xml().as_bytes())
            .unwrap_or_else(|e| panic!("a built isComposing does not parse: {e}\n{}", c.to_xml()));
        assert_eq!(again, c);
    }
});
