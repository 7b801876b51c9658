//! Profiling helper (not a test): decodes a stream of 100-byte chunks in a
//! loop, for `perf record` or `valgrind --tool=callgrind`.
use msrp::proto::decoder::{Decoder, Event, Limits};
use msrp::proto::{ByteRange, Chunk};

fn main() {
    let mut wire = Vec::new();
    for _ in 0..1000 {
        let mut c = Chunk::request("SEND").unwrap();
        c.add_header_raw("To-Path", "msrp://192.0.2.10:2855/iau39soe2843z;tcp")
            .unwrap();
        c.add_header_raw("From-Path", "msrp://192.0.2.20:7777/9di4eae923wzd;tcp")
            .unwrap();
        c.set_message_id("87652491aabbccdd").unwrap();
        c.set_byte_range(ByteRange {
            start: 1,
            end: Some(100),
            total: Some(100),
        })
        .unwrap();
        c.set_content_type("text/plain").unwrap();
        c.set_data(&[b'a'; 100]);
        c.encode(&mut wire).unwrap();
    }
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let mut total = 0;
    for _ in 0..rounds {
        let mut d = Decoder::new(Limits::default());
        let mut input = &wire[..];
        while !input.is_empty() {
            let (n, ev) = d.decode(input).unwrap();
            if let Some(Event::End(_)) = ev {
                total += 1;
            }
            input = &input[n..];
        }
    }
    println!("{total} chunks");
}
