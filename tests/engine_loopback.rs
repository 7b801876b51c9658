//! The engine over real loopback sockets: connector/acceptor binding, chunk
//! exchange, virtual segments, 481 on mismatched paths, the shared server.

use std::sync::Arc;
use std::time::Duration;

use msrp::engine::connector::{Connector, Role};
use msrp::engine::server::Server;
use msrp::engine::{Context, ErrorKind};
use msrp::proto::transport::{ChunkParams, make_chunk};
use msrp::proto::uri::Uri;

const T: Duration = Duration::from_secs(10);

#[path = "common/ctx.rs"]
mod common_ctx;
use common_ctx::ctx;

fn pair(
    ctx: &Arc<Context>,
    sessmatch: bool,
) -> (
    msrp::engine::transport::Transport,
    msrp::engine::transport::Transport,
) {
    let acc = Arc::new(Connector::new(ctx, Role::Passive, sessmatch, None));
    let con = Arc::new(Connector::new(ctx, Role::Active, sessmatch, None));
    let a_path = acc.prepare(None).unwrap();
    let c_path = con.prepare(None).unwrap();
    let acc2 = acc.clone();
    let cp = c_path.clone();
    let h = std::thread::spawn(move || acc2.context().clone().block_on(T, acc2.complete(cp)));
    let tc = ctx.block_on(T, con.complete(a_path)).unwrap();
    let ta = h.join().unwrap().unwrap();
    (tc, ta)
}

#[test]
fn chunks_cross_both_ways_with_segments() {
    let ctx = ctx();
    let (c, a) = pair(&ctx, false);
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let chunk = make_chunk(
        c.local_path(),
        c.remote_path(),
        &ChunkParams {
            data: &data,
            ..Default::default()
        },
    )
    .unwrap();
    ctx.block_on(T, c.write_chunk(&chunk)).unwrap();
    let r = ctx.block_on(T, a.read_chunk(usize::MAX)).unwrap();
    assert_eq!(r.segment, 0);
    assert_eq!(r.chunk.data(), &data[..]);
    // Segments: size 1000 gives pieces whose data concatenates to the original.
    ctx.block_on(T, c.write_chunk(&chunk)).unwrap();
    let mut got = Vec::new();
    let mut segs = 0;
    loop {
        let r = ctx.block_on(T, a.read_chunk(1000)).unwrap();
        got.extend_from_slice(r.chunk.data());
        segs += 1;
        if r.chunk.flag() == msrp::proto::Flag::End {
            break;
        }
        assert_eq!(r.chunk.flag(), msrp::proto::Flag::More);
        assert!(r.segment >= 1);
    }
    assert_eq!(got, data);
    assert!(segs > 1);
    // The other way.
    let back = make_chunk(
        a.local_path(),
        a.remote_path(),
        &ChunkParams {
            data: b"pong",
            ..Default::default()
        },
    )
    .unwrap();
    ctx.block_on(T, a.write_chunk(&back)).unwrap();
    assert_eq!(
        ctx.block_on(T, c.read_chunk(usize::MAX))
            .unwrap()
            .chunk
            .data(),
        b"pong"
    );
    // Closing one side: the other reads and writes "closed".
    c.close();
    let e = ctx.block_on(T, a.read_chunk(usize::MAX)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Closed);
    assert_eq!(
        ctx.block_on(T, a.write_chunk(&back)).unwrap_err().kind,
        ErrorKind::Closed
    );
    ctx.shutdown();
}

/// A binding with the wrong paths gets 481 (the peer's complete fails with
/// BindRejected); the passive side closes that connection and keeps
/// listening, and the right peer binds after it.
#[test]
fn wrong_from_path_gets_481_and_the_acceptor_keeps_listening() {
    let ctx = ctx();
    let acc = Arc::new(Connector::new(&ctx, Role::Passive, false, None));
    let wrong = Connector::new(&ctx, Role::Active, false, None);
    let right = Connector::new(&ctx, Role::Active, false, None);
    let a_path = acc.prepare(None).unwrap();
    wrong.prepare(None).unwrap();
    let r_path = right.prepare(None).unwrap();
    let acc2 = acc.clone();
    let h = std::thread::spawn(move || acc2.context().clone().block_on(T, acc2.complete(r_path)));
    let e = ctx.block_on(T, wrong.complete(a_path.clone())).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BindRejected);
    assert!(e.msg.contains("481"), "{}", e.msg);
    let t = ctx.block_on(T, right.complete(a_path)).unwrap();
    let accepted = h.join().unwrap().unwrap();
    assert_eq!(accepted.remote_path(), t.local_path());
}

#[test]
fn server_serves_two_sessions_on_one_port() {
    let ctx = ctx();
    let server = Arc::new(Server::new(&ctx, None, false));
    let p1 = server.prepare(None).unwrap();
    let p2 = server.prepare(None).unwrap();
    assert_eq!(p1[0].port, p2[0].port);
    assert_ne!(p1[0].session_id, p2[0].session_id);
    let mut handles = Vec::new();
    for p in [p1.clone(), p2.clone()] {
        let ctx = ctx.clone();
        let server = server.clone();
        handles.push(std::thread::spawn(move || {
            let con = Connector::new(&ctx, Role::Active, false, None);
            let mine = con.prepare(None).unwrap();
            let s2 = server.clone();
            let m2 = mine.clone();
            let ctx2 = ctx.clone();
            let h = std::thread::spawn(move || ctx2.block_on(T, s2.complete(m2)));
            let t = ctx.block_on(T, con.complete(p)).unwrap();
            let st = h.join().unwrap().unwrap();
            assert_eq!(st.remote_path()[0].session_id, mine[0].session_id);
            drop(t);
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    // An unknown To-Path gets 481.
    let con = Connector::new(&ctx, Role::Active, false, None);
    con.prepare(None).unwrap();
    let mut bad = p1.clone();
    bad[0].session_id = Some("unknownsession".into());
    let e = ctx.block_on(T, con.complete(bad)).unwrap_err();
    assert!(e.msg.contains("481"), "{}", e.msg);
    assert!(server.cleanup(&p1[0]));
    assert!(server.cleanup(&p2[0]));
    assert!(!server.cleanup(&p2[0]));
}

#[test]
fn connect_to_a_closed_port_fails_fast() {
    let ctx = ctx();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let con = Connector::new(&ctx, Role::Active, false, None);
    con.prepare(None).unwrap();
    let target = vec![Uri::parse(&format!("msrp://127.0.0.1:{port}/x;tcp")).unwrap()];
    let started = std::time::Instant::now();
    let e = ctx.block_on(T, con.complete(target)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::ConnectFailed);
    assert!(started.elapsed() < T);
}

fn numbered(t: &msrp::engine::transport::Transport, i: u32, len: usize) -> msrp::proto::Chunk {
    let body: Vec<u8> = (0..len).map(|k| ((k as u32 + i) % 251) as u8).collect();
    let mut c = make_chunk(
        t.local_path(),
        t.remote_path(),
        &ChunkParams {
            data: &body,
            ..Default::default()
        },
    )
    .unwrap();
    c.add_header_raw("X-Seq", &i.to_string()).unwrap();
    c
}

fn seq(c: &msrp::proto::Chunk) -> u32 {
    c.header_by_name("X-Seq").unwrap().parse().unwrap()
}

/// Taking the socket over from the reader task loses and reorders nothing:
/// batches already passed on, the batch the task holds while the channel is
/// full (nobody read for a while), and what arrives afterwards.
#[test]
fn reading_directly_keeps_order_across_the_handoff() {
    let ctx = ctx();
    let (c, a) = pair(&ctx, false);
    let n = 400u32;
    // Sent in separate writes so that the reader task sees many reads and
    // fills its channel; nobody reads on `a` yet.
    for i in 0..n / 2 {
        ctx.block_on(T, c.write_chunk(&numbered(&c, i, 3000)))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    ctx.block_on(T, async {
        a.read_directly().await;
        Ok(())
    })
    .unwrap();
    for i in n / 2..n {
        c.send_chunks(vec![numbered(&c, i, 3000)], true).unwrap();
    }
    for i in 0..n {
        let r = ctx.block_on(T, a.read_chunk(usize::MAX)).unwrap();
        assert_eq!(seq(&r.chunk), i, "chunk {i} out of order");
        assert_eq!(r.chunk.data(), numbered(&c, i, 3000).data());
    }
}

/// A chunk larger than the socket buffer, written "directly" from the
/// caller, is finished by the writer task: the peer gets it whole, and the
/// next chunk after it.
#[test]
fn a_direct_write_that_does_not_fit_is_finished_by_the_writer() {
    let ctx = ctx();
    let (c, a) = pair(&ctx, false);
    let big = numbered(&c, 1, 24 * 1024 * 1024);
    c.send_chunks(vec![big.clone(), numbered(&c, 2, 10)], true)
        .unwrap();
    assert!(c.queued_bytes() > 0, "24 MiB fitted in the socket buffer");
    let r = ctx.block_on(T, a.read_chunk(usize::MAX)).unwrap();
    assert_eq!(seq(&r.chunk), 1);
    assert!(r.chunk.data() == big.data());
    let r = ctx.block_on(T, a.read_chunk(usize::MAX)).unwrap();
    assert_eq!(seq(&r.chunk), 2);
}

/// `write_chunk` writes from the calling thread when the writer is idle;
/// a chunk that does not fit in the socket buffer is finished by the writer
/// task, and the call returns only then, with the whole chunk sent.
#[test]
fn write_chunk_returns_once_a_chunk_larger_than_the_socket_buffer_is_sent() {
    let ctx = ctx();
    let (c, a) = pair(&ctx, false);
    let c = Arc::new(c);
    let big = numbered(&c, 1, 24 * 1024 * 1024);
    let (c2, big2, ctx2) = (c.clone(), big.clone(), ctx.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let r = ctx2.block_on(T, c2.write_chunk(&big2));
        tx.send(()).unwrap();
        r
    });
    // Nobody reads yet: 24 MiB cannot all be in the socket buffers, so what
    // the calling thread could not send goes to the writer task, and the
    // call waits. (Waited for rather than checked after a fixed time: on a
    // loaded machine the thread may take long to get there.)
    let deadline = std::time::Instant::now() + T;
    while c.queued_bytes() == 0 && std::time::Instant::now() < deadline {
        assert!(
            rx.try_recv().is_err(),
            "write_chunk returned before the chunk was sent"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        c.queued_bytes() > 0,
        "nothing was handed to the writer task"
    );
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "write_chunk returned before the chunk was sent"
    );
    let r = ctx.block_on(T, a.read_chunk(usize::MAX)).unwrap();
    assert!(r.chunk.data() == big.data());
    h.join().unwrap().unwrap();
    assert_eq!(c.queued_bytes(), 0);
    ctx.block_on(T, c.write_chunk(&numbered(&c, 2, 10)))
        .unwrap();
    assert_eq!(
        seq(&ctx.block_on(T, a.read_chunk(usize::MAX)).unwrap().chunk),
        2
    );
}

/// Closing a transport ends a direct read that waits for data.
#[test]
fn close_ends_a_waiting_direct_read() {
    let ctx = ctx();
    let (_c, a) = pair(&ctx, false);
    let a = Arc::new(a);
    let a2 = a.clone();
    let ctx2 = ctx.clone();
    let h = std::thread::spawn(move || {
        ctx2.block_on(T, async {
            a2.read_directly().await;
            Ok(a2.read_chunk(usize::MAX).await)
        })
    });
    std::thread::sleep(Duration::from_millis(200));
    a.close();
    let r = h
        .join()
        .unwrap()
        .expect("the read ended before the timeout");
    assert_eq!(r.unwrap_err().kind, ErrorKind::Closed);
}

/// Bodies full of near end-lines (CR LF, dashes, the transaction id's
/// prefix, a wrong flag), with Byte-Ranges that are right, too large or too
/// small, written in pieces of random sizes so that reads end anywhere:
/// the reader (which reads large bodies straight into the chunk's buffer)
/// hands every body back byte for byte.
#[test]
fn bodies_survive_any_read_boundaries() {
    use std::io::Write;
    let ctx = ctx();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (server, _) = listener.accept().unwrap();
    server.set_nonblocking(true).unwrap();
    let me = msrp::proto::uri::parse_path(&format!("msrp://127.0.0.1:{port}/me;tcp")).unwrap();
    let peer = msrp::proto::uri::parse_path("msrp://127.0.0.1:9/peer;tcp").unwrap();
    let t = ctx
        .block_on(T, async {
            let s = tokio::net::TcpStream::from_std(server).unwrap();
            Ok(msrp::engine::transport::Transport::start(
                &ctx,
                msrp::engine::stream::Conn::Tcp(s),
                me.clone(),
                peer.clone(),
                false,
                None,
            ))
        })
        .unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut wire = Vec::new();
    let mut bodies = Vec::new();
    for i in 0..60u64 {
        let len = [100, 17_000, 64 * 1024, 150_000, 300_000][(i % 5) as usize] + rnd(5000) as usize;
        let mut c = make_chunk(
            &peer,
            &me,
            &ChunkParams {
                data: b"x",
                ..Default::default()
            },
        )
        .unwrap();
        let tid = c.transaction_id().to_owned();
        let mut body = Vec::with_capacity(len);
        while body.len() < len {
            match rnd(6) {
                0 => body.extend_from_slice(b"\r\n-------"),
                1 => {
                    // A prefix of the id, then a byte no id has (random bytes
                    // after it could otherwise complete the id by chance).
                    body.extend_from_slice(b"\r\n-------");
                    body.extend_from_slice(&tid.as_bytes()[..rnd(tid.len() as u64) as usize]);
                    body.push(b'~');
                }
                2 => {
                    // The whole id but its last character, and a flag.
                    body.extend_from_slice(b"\r\n-------");
                    body.extend_from_slice(&tid.as_bytes()[..tid.len() - 1]);
                    body.extend_from_slice(b"~$\r\n");
                }
                3 => body.push(b'\r'),
                _ => body.extend((0..rnd(3000)).map(|_| rnd(256) as u8)),
            }
        }
        body.truncate(len);
        c.set_data(&body);
        // Byte-Range right, announcing twice the body, or half of it.
        let announced = match i % 3 {
            0 => len as u64,
            1 => 2 * len as u64,
            _ => (len as u64 / 2).max(1),
        };
        c.set_byte_range(msrp::proto::ByteRange {
            start: 1,
            end: Some(announced),
            total: Some(announced),
        })
        .unwrap();
        wire.extend_from_slice(&c.to_bytes().unwrap());
        bodies.push(body);
    }
    let writer = std::thread::spawn(move || {
        let mut at = 0;
        while at < wire.len() {
            let n = (1 + rnd(40_000) as usize).min(wire.len() - at);
            raw.write_all(&wire[at..at + n]).unwrap();
            at += n;
            if rnd(4) == 0 {
                std::thread::sleep(Duration::from_micros(300));
            }
        }
        raw
    });
    for (i, body) in bodies.iter().enumerate() {
        let r = ctx.block_on(T, t.read_chunk(usize::MAX)).unwrap();
        assert!(
            r.chunk.data() == &body[..],
            "body {i} ({} bytes) differs",
            body.len()
        );
    }
    drop(writer.join().unwrap());
}

/// A TCP forwarder standing in for an SBC: accepts connections on its own
/// port and relays each to `to`, both ways. Returns its port.
fn forwarder(to: std::net::SocketAddr) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(a) = c else { return };
            let Ok(b) = std::net::TcpStream::connect(to) else {
                return;
            };
            let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
            let pump = |mut r: std::net::TcpStream, mut w: std::net::TcpStream| {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut r, &mut w);
                    let _ = w.shutdown(std::net::Shutdown::Write);
                })
            };
            pump(a, b2);
            pump(b, a2);
        }
    });
    port
}

/// CEMA (RFC 6714 §4): the peer's path names an address that cannot be
/// reached (its port is closed here); its SDP c=/m= lines name the SBC.
/// Told to connect there, the connector binds through the SBC, the binding
/// still naming the paths (the acceptor matches session ids, as behind an
/// SBC that rewrites addresses); without it, connecting fails.
#[test]
fn cema_connects_to_the_given_address_and_binds_by_the_paths() {
    let ctx = ctx();
    let acc = Arc::new(Connector::new(&ctx, Role::Passive, true, None));
    let a_path = acc
        .prepare(Some(Uri::parse("msrp://127.0.0.1:0/acc;tcp").unwrap()))
        .unwrap();
    let real = std::net::SocketAddr::from(([127, 0, 0, 1], a_path[0].port.unwrap()));
    let sbc = forwarder(real);
    // The path as the peer's SDP gives it: a port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut seen = a_path[0].clone();
    seen.port = Some(dead_port);
    let con = Connector::new(&ctx, Role::Active, false, None);
    let prep = || {
        con.prepare(Some(Uri::parse("msrp://127.0.0.1:9/con;tcp").unwrap()))
            .unwrap()
    };
    prep();
    let direct = ctx.block_on(T, con.complete(vec![seen.clone()]));
    assert_eq!(direct.unwrap_err().kind, ErrorKind::ConnectFailed);
    let c_path = prep();
    con.set_connect_address(Some((msrp::proto::Host::parse("127.0.0.1").unwrap(), sbc)));
    let acc2 = acc.clone();
    let h = std::thread::spawn(move || acc2.context().clone().block_on(T, acc2.complete(c_path)));
    let tc = ctx.block_on(T, con.complete(vec![seen])).unwrap();
    let ta = h.join().unwrap().unwrap();
    let c = make_chunk(
        tc.local_path(),
        tc.remote_path(),
        &ChunkParams {
            data: b"through the SBC",
            ..Default::default()
        },
    )
    .unwrap();
    ctx.block_on(T, tc.write_chunk(&c)).unwrap();
    let got = ctx.block_on(T, ta.read_chunk(usize::MAX)).unwrap();
    assert_eq!(got.chunk.data(), b"through the SBC");
}
