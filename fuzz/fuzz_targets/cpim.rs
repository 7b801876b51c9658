//! message/cpim parsing on arbitrary bytes: no panic, bounded work, and a
//! message read builds back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msrp::proto::cpim::{self, Cpim};

fuzz_target!(|data: &[u8]| {
    let Ok(m) = Cpim::parse(data) else { return };
    assert_eq!(m.to_bytes(), data, "a parsed message builds back to the same bytes");
    for h in &m.headers {
        let _ = h.text();
        let _ = h.lang();
        let _ = cpim::address(&h.value);
    }
    let _ = m.header_in("urn:ietf:params:imdn", "Message-ID");
    let _ = msrp::proto::imdn::requested(&m);
});
