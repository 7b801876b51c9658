//! The streaming decoder on arbitrary bytes, pushed in pieces whose sizes
//! come from the input: it must never panic, always make progress, and give
//! the same events as one push of the whole input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use msrp::proto::decoder::{Decoder, Event, Limits};

#[derive(Debug, PartialEq)]
enum Ev {
    Head(String, bool),
    Data(Vec<u8>),
    End(u8),
}

fn events(data: &[u8], cuts: &[usize]) -> (Vec<Ev>, bool) {
    let mut d = Decoder::new(Limits { max_line: 256, max_headers: 16, max_head: 1024 });
    let mut out = Vec::new();
    let mut start = 0;
    let mut failed = false;
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    bounds.sort_unstable();
    bounds.push(data.len());
    'outer: for end in bounds {
        let piece = &data[start..end.max(start)];
        let mut off = 0;
        while off < piece.len() {
            match d.decode(&piece[off..]) {
                Ok((n, ev)) => {
                    assert!(n > 0 || ev.is_some(), "no progress");
                    off += n;
                    match ev {
                        Some(Event::Head { chunk, error, announced }) => {
                            // The announced body length is what the chunk's own Byte-Range gives.
                            let own = chunk.byte_range().ok().flatten().and_then(|r| r.end.map(|e| e.saturating_sub(r.start).saturating_add(1)));
                            assert_eq!(announced, own, "announced length");
                            out.push(Ev::Head(chunk.transaction_id().to_owned(), error.is_some()))
                        }
                        Some(Event::Data(b)) => match out.last_mut() {
                            Some(Ev::Data(prev)) => prev.extend_from_slice(b),
                            _ => out.push(Ev::Data(b.to_vec())),
                        },
                        Some(Event::End(f)) => out.push(Ev::End(f as u8)),
                        None => {}
                    }
                }
                Err(_) => {
                    failed = true;
                    break 'outer;
                }
            }
        }
        start = end.max(start);
    }
    (out, failed)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let cuts: Vec<usize> = data[..2].iter().map(|&b| b as usize * 7).collect();
    let body = &data[2..];
    let whole = events(body, &[]);
    let split = events(body, &cuts);
    if !whole.1 && !split.1 {
        assert_eq!(whole.0, split.0);
    }
});
