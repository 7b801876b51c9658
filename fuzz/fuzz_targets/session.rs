//! A session fed arbitrary peer bytes: whatever decodes is handed to the
//! session (whole, or in parts), its answers are pulled, and deadlines run.
//! No panic, and what it sends encodes.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use msrp::proto::decoder::{Limits, decode_all};
use msrp::proto::session::{Session, SessionConfig};
use msrp::proto::uri::parse_path;

fuzz_target!(|data: &[u8]| {
    let local = parse_path("msrp://127.0.0.1:2000/bob;tcp").unwrap();
    let remote = parse_path("msrp://127.0.0.1:1000/alice;tcp").unwrap();
    let cfg = SessionConfig { max_message_size: 4096, chunk_size: 64, window: 4, ..Default::default() };
    let mut s = Session::new(cfg, local, remote);
    let now = Instant::now();
    let split = data.first().copied().unwrap_or(0) % 3;
    if let Ok(chunks) = decode_all(data.get(1..).unwrap_or(&[]), Limits::default()) {
        for (c, _) in chunks {
            if split == 0 || c.size() < 2 {
                s.handle_chunk(c, now);
            } else {
                let mut head = c.clone();
                head.set_data(&[]);
                let half = c.size() / 2;
                let a = msrp::proto::transport::segment(&head, 0, &c.data()[..half], false, c.flag());
                let b = msrp::proto::transport::segment(&head, half as u64, &c.data()[half..], true, c.flag());
                s.handle_part(a, true, false, now);
                s.handle_part(b, false, true, now);
            }
            while let Some(out) = s.poll_transmit(now) {
                assert!(out.to_bytes().is_ok());
            }
        }
    }
    s.handle_timeout(now + Duration::from_secs(60));
    while s.poll_event().is_some() {}
});
