//! Writing to a connection whose sending side is gone (EPIPE, as after a
//! reset) must give an error, not a SIGPIPE, even when the application has
//! put SIGPIPE back to its default (terminate) after creating the context;
//! for plain TCP and for TLS. Its own test binary: it changes a process-wide
//! signal disposition.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use msrp::engine::stream::Conn;
use msrp::engine::transport::Transport;
use msrp::engine::{Context, ContextOptions};
use msrp::proto::transport::{ChunkParams, make_chunk};

#[path = "common/conn_pair.rs"]
mod conn_pair;

const T: Duration = Duration::from_secs(10);

/// Writes through both paths (from this thread, and through the writer
/// task) until one fails; the process must still be alive.
fn writes_fail(ctx: &Arc<Context>, t: &Transport) {
    let body = vec![b'x'; 64 * 1024];
    let chunk = make_chunk(
        t.local_path(),
        t.remote_path(),
        &ChunkParams {
            data: &body,
            ..Default::default()
        },
    )
    .unwrap();
    let mut failed = false;
    for _ in 0..200 {
        if t.send_chunks(vec![chunk.clone()], true).is_err()
            || ctx.block_on(T, t.write_chunk(&chunk)).is_err()
        {
            failed = true;
            break;
        }
    }
    assert!(failed, "writes to a broken connection kept succeeding");
    assert!(t.is_closed());
}

#[test]
fn writes_on_a_broken_connection_fail_without_a_signal() {
    let ctx = Context::new(ContextOptions {
        worker_threads: 2,
        ..Default::default()
    })
    .unwrap();
    // SAFETY: restoring the default disposition, as an application might.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let me = msrp::proto::uri::parse_path("msrp://127.0.0.1:1/me;tcp").unwrap();
    let them = msrp::proto::uri::parse_path("msrp://127.0.0.1:9/them;tcp").unwrap();
    let start = |conn: Conn| Transport::start(&ctx, conn, me.clone(), them.clone(), false, None);
    for tls in [false, true] {
        let t = ctx
            .block_on(T, async {
                let (conn, theirs) = conn_pair::conn_pair(tls).await;
                // The other end stays open (no EOF for our reader).
                std::mem::forget(theirs);
                // Our sending side is gone (as after a reset the reader
                // consumed): every send now fails with EPIPE, which a
                // plain writev turns into a SIGPIPE.
                // SAFETY: a valid socket descriptor.
                assert_eq!(
                    unsafe { libc::shutdown(conn.tcp().as_raw_fd(), libc::SHUT_WR) },
                    0
                );
                Ok(start(conn))
            })
            .unwrap();
        writes_fail(&ctx, &t);
    }
}
