//! The engine over real loopback sockets: connector/acceptor binding, chunk
//! exchange, virtual segments, 481 on mismatched paths, the shared server.

use std::sync::Arc;
use std::time::Duration;

use msrp::engine::connector::{Connector, Role};
use msrp::engine::server::Server;
use msrp::engine::{Context, ContextOptions, ErrorKind};
use msrp::proto::transport::{ChunkParams, make_chunk};
use msrp::proto::uri::Uri;

const T: Duration = Duration::from_secs(10);

fn ctx() -> Arc<Context> {
    Context::new(ContextOptions {
        worker_threads: 2,
        ..Default::default()
    })
    .unwrap()
}

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

#[test]
fn wrong_from_path_gets_481_and_errors_on_both_sides() {
    let ctx = ctx();
    let acc = Arc::new(Connector::new(&ctx, Role::Passive, false, None));
    let con = Connector::new(&ctx, Role::Active, false, None);
    let a_path = acc.prepare(None).unwrap();
    con.prepare(None).unwrap();
    let acc2 = acc.clone();
    let h = std::thread::spawn(move || {
        let wrong = vec![Uri::parse("msrp://127.0.0.1:9/not-the-peer;tcp").unwrap()];
        acc2.context().clone().block_on(T, acc2.complete(wrong))
    });
    let e = ctx.block_on(T, con.complete(a_path)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::BindRejected);
    assert!(e.msg.contains("481"), "{}", e.msg);
    let e = h.join().unwrap().unwrap_err();
    assert_eq!(e.kind, ErrorKind::BindMismatch);
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
