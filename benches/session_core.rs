//! The sans-IO session core on one thread: 100-byte messages from A to B
//! with a window, every chunk and response encoded and decoded as on the
//! wire, no sockets and no tasks. What one message costs the protocol code
//! itself, both ends together; the C harness (`msrp_bench_session`) adds
//! sockets, tasks and callbacks.
//!
//! Run: `cargo bench --bench session_core`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use msrp::proto::decoder::{Decoder, Event};
use msrp::proto::session::{OutgoingMessage, Session, SessionConfig, SessionEvent};
use msrp::proto::uri::parse_path;
use std::time::Instant;

/// Encodes what `from` wants sent and feeds it, decoded, to `to`.
fn carry(
    from: &mut Session,
    to: &mut Session,
    dec: &mut Decoder,
    wire: &mut Vec<u8>,
    now: Instant,
) -> usize {
    wire.clear();
    let mut n = 0;
    while let Some(c) = from.poll_transmit(now) {
        wire.extend_from_slice(&c.to_bytes().expect("encodable"));
        n += 1;
    }
    let mut input = &wire[..];
    let mut cur = None;
    while !input.is_empty() {
        let (used, ev) = dec.decode(input).expect("decodable");
        input = &input[used..];
        match ev {
            Some(Event::Head { chunk, .. }) => cur = Some(chunk),
            Some(Event::Data(d)) => cur.as_mut().expect("head").append_data(d),
            Some(Event::End(f)) => {
                let mut c = cur.take().expect("head");
                c.set_flag(f);
                to.handle_chunk(*c, now);
            }
            None => {}
        }
    }
    n
}

fn exchange(messages: usize) -> usize {
    let pa = parse_path("msrp://127.0.0.1:1000/alice;tcp").unwrap();
    let pb = parse_path("msrp://127.0.0.1:2000/bob;tcp").unwrap();
    let cfg = SessionConfig {
        window: 256,
        ..Default::default()
    };
    let mut a = Session::new(cfg.clone(), pa.clone(), pb.clone());
    let mut b = Session::new(cfg, pb, pa);
    let (mut da, mut db) = (Decoder::default(), Decoder::default());
    let mut wire = Vec::new();
    let now = Instant::now();
    for _ in 0..messages {
        a.send_message(OutgoingMessage {
            // As from C without per-message callbacks (the harness's case).
            quiet: true,
            no_progress: true,
            ..OutgoingMessage::from_bytes("text/plain", vec![b'm'; 100])
        });
    }
    let mut received = 0;
    loop {
        let sent = carry(&mut a, &mut b, &mut db, &mut wire, now);
        let answered = carry(&mut b, &mut a, &mut da, &mut wire, now);
        while let Some(e) = b.poll_event() {
            if matches!(e, SessionEvent::Message { .. }) {
                received += 1;
            }
        }
        while a.poll_event().is_some() {}
        if sent == 0 && answered == 0 {
            break;
        }
    }
    assert_eq!(received, messages);
    received
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("session_core_100B_messages");
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("send_respond_10000", |b| b.iter(|| exchange(10_000)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
