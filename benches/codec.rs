//! Codec benchmarks: decoding and encoding 100-byte and 64 KiB chunks, next
//! to a plain `memchr` scan of the same bytes in the same run (the floor any
//! decoder that looks at every byte has to pay).
//!
//! Run: `cargo bench --bench codec`. Figures go into docs/performance.md.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use msrp::proto::decoder::{Decoder, Event, Limits};
use msrp::proto::{ByteRange, Chunk};
use std::hint::black_box;

fn chunk_with_body(body: &[u8]) -> Chunk {
    let mut c = Chunk::request("SEND").unwrap();
    c.add_header_raw("To-Path", "msrp://192.0.2.10:2855/iau39soe2843z;tcp")
        .unwrap();
    c.add_header_raw("From-Path", "msrp://192.0.2.20:7777/9di4eae923wzd;tcp")
        .unwrap();
    c.set_message_id("87652491aabbccdd").unwrap();
    let n = body.len() as u64;
    c.set_byte_range(ByteRange {
        start: 1,
        end: Some(n),
        total: Some(n),
    })
    .unwrap();
    c.set_content_type("text/plain").unwrap();
    c.set_data(body);
    c.ensure_unique_transaction_id();
    c
}

/// Pseudo-random bytes (so CR bytes appear about every 256 bytes, as in binary files).
fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn stream(count: usize, body_len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..count {
        chunk_with_body(&noise(body_len, 0x9e37_79b9_7f4a_7c15 ^ i as u64))
            .encode(&mut out)
            .unwrap();
    }
    out
}

fn decode_all(d: &mut Decoder, mut input: &[u8]) -> (usize, usize) {
    let (mut chunks, mut bytes) = (0, 0);
    while !input.is_empty() {
        let (n, ev) = d.decode(input).expect("valid stream");
        match ev {
            Some(Event::Head { chunk, .. }) => {
                black_box(&chunk);
            }
            Some(Event::Data(b)) => bytes += b.len(),
            Some(Event::End(_)) => chunks += 1,
            None => {}
        }
        input = &input[n..];
    }
    (chunks, bytes)
}

fn memchr_scan(input: &[u8]) -> usize {
    memchr::memchr_iter(b'\r', input).count()
}

fn bench(c: &mut Criterion) {
    for (name, count, body) in [("100B", 1000usize, 100usize), ("64KiB", 16, 64 * 1024)] {
        let wire = stream(count, body);
        let mut g = c.benchmark_group(format!("decode_{name}"));
        g.throughput(Throughput::Bytes(wire.len() as u64));
        g.bench_function("msrp_decoder", |b| {
            b.iter_batched_ref(
                || Decoder::new(Limits::default()),
                |d| {
                    let (n, _) = decode_all(d, black_box(&wire));
                    assert_eq!(n, count);
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_function("memchr_cr_scan_baseline", |b| {
            b.iter(|| memchr_scan(black_box(&wire)))
        });
        g.finish();

        let chunk = chunk_with_body(&noise(body, 7));
        let mut g = c.benchmark_group(format!("encode_{name}"));
        let len = chunk.to_bytes().unwrap().len();
        g.throughput(Throughput::Bytes(len as u64));
        let mut out = Vec::with_capacity(len * 2);
        g.bench_function("msrp_encode", |b| {
            b.iter(|| {
                out.clear();
                black_box(&chunk).encode(&mut out).unwrap();
                black_box(out.len())
            })
        });
        let body_bytes = chunk.data().to_vec();
        g.bench_function("memcpy_baseline", |b| {
            b.iter(|| {
                out.clear();
                out.extend_from_slice(black_box(&body_bytes));
                black_box(out.len())
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
