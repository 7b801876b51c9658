//! MSRP over WebSocket (RFC 7977) against peers that are not libmsrp: a
//! bare WebSocket server and client (tokio-tungstenite) that check the
//! handshake and the framing byte by byte. (libmsrp ↔ libmsrp over ws and
//! wss, and through Kamailio's WebSocket server, are in
//! c-tests/msrpcat_test.py.)

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use msrp::engine::connector::{Connector, Role};
use msrp::engine::tls::{Fingerprint, HashAlg, TlsSettings};
use msrp::engine::{Context, ErrorKind};
use msrp::proto::decoder::{Limits, decode_all};
use msrp::proto::uri::Uri;
use msrp::proto::{Chunk, Flag};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, header};

#[path = "common/body_chunk.rs"]
mod body_chunk;
use body_chunk::body_chunk;

const T: Duration = Duration::from_secs(10);

#[path = "common/ctx.rs"]
mod common_ctx;
use common_ctx::ctx;

/// A listening socket on a free loopback port (for a bare peer), and the port.
fn loopback_listener(ctx: &Arc<Context>) -> (TcpListener, u16) {
    let l = ctx
        .block_on(T, async {
            Ok::<_, msrp::engine::Error>(TcpListener::bind("127.0.0.1:0").await.unwrap())
        })
        .unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// The one chunk in a WebSocket message (RFC 7977 §5.1: one, whole).
fn one_chunk(m: &Message) -> Chunk {
    let data = match m {
        Message::Binary(b) => b.to_vec(),
        Message::Text(t) => t.as_bytes().to_vec(),
        other => panic!("not a data message: {other:?}"),
    };
    let mut v = decode_all(&data, Limits::default()).expect("MSRP");
    assert_eq!(v.len(), 1, "exactly one chunk per message");
    let (c, e) = v.remove(0);
    assert!(e.is_none());
    // ... and nothing after it: the message ends with the end-line.
    let end = format!(
        "-------{}{}\r\n",
        c.transaction_id(),
        c.flag() as u8 as char
    );
    assert!(data.ends_with(end.as_bytes()));
    c
}

/// The response to `req` as a peer writes it.
fn response(req: &Chunk, code: u16) -> Vec<u8> {
    let mut r = req.make_response(code, Some("OK")).unwrap();
    r.set_flag(Flag::End);
    r.to_bytes().unwrap()
}

#[test]
fn a_foreign_websocket_server_gets_each_chunk_in_a_message_of_its_own() {
    let ctx = ctx();
    let (listener, port) = loopback_listener(&ctx);
    let (done, server) = std::sync::mpsc::channel();
    ctx.spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut offered = String::new();
        let cb = |req: &Request, mut resp: Response| {
            offered = req
                .headers()
                .get(header::SEC_WEBSOCKET_PROTOCOL)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            resp.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static("msrp"),
            );
            Ok(resp)
        };
        let mut ws = tokio_tungstenite::accept_hdr_async(tcp, cb).await.unwrap();
        // RFC 7977 §4.1: the client offers the msrp subprotocol.
        assert_eq!(offered, "msrp");
        // The binding SEND, alone in its message; answered 200.
        let bind = one_chunk(&ws.next().await.unwrap().unwrap());
        assert_eq!(bind.method(), Some("SEND"));
        ws.send(Message::Binary(response(&bind, 200).into()))
            .await
            .unwrap();
        // Three chunks written at once: three messages.
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(one_chunk(&ws.next().await.unwrap().unwrap()));
        }
        // Two chunks back in one text message (§4.2: text frames are
        // taken as bytes; libmsrp does not insist on one per message).
        let mut both = response(&got[0], 200);
        both.extend_from_slice(&response(&got[1], 200));
        ws.send(Message::Text(String::from_utf8(both).unwrap().into()))
            .await
            .unwrap();
        done.send(got).unwrap();
        // Open until the client has read.
        let _ = ws.next().await;
    });
    let con = Connector::new(&ctx, Role::Active, false, None);
    con.prepare(Some(Uri::parse("msrp://client.invalid:9/con;ws").unwrap()))
        .unwrap();
    let remote = vec![Uri::parse(&format!("msrp://127.0.0.1:{port}/srv;ws")).unwrap()];
    let t = ctx.block_on(T, con.complete(remote)).unwrap();
    let sizes = [10usize, 200_000, 3];
    let sent: Vec<Chunk> = sizes
        .iter()
        .map(|&n| body_chunk(&t, &vec![b'x'; n]))
        .collect();
    t.send_chunks(sent.clone(), true).unwrap();
    let got = server
        .recv_timeout(T)
        .expect("the server saw three messages");
    for (g, s) in got.iter().zip(&sent) {
        assert_eq!(g.transaction_id(), s.transaction_id());
        assert_eq!(g.data(), s.data());
    }
    // Both responses of the one text message arrive.
    for s in &sent[..2] {
        let r = ctx.block_on(T, t.read_chunk(usize::MAX)).unwrap();
        assert_eq!(r.chunk.transaction_id(), s.transaction_id());
        assert_eq!(r.chunk.code(), Some(200));
    }
}

#[test]
fn a_server_that_does_not_name_the_msrp_subprotocol_is_refused() {
    // RFC 7977 §4.1: the 101 must contain msrp.
    let ctx = ctx();
    let (listener, port) = loopback_listener(&ctx);
    ctx.spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = tokio_tungstenite::accept_async(tcp).await;
        // Held open until the client gives up.
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(ws);
    });
    let con = Connector::new(&ctx, Role::Active, false, None);
    con.prepare(None).unwrap();
    let remote = vec![Uri::parse(&format!("msrp://127.0.0.1:{port}/srv;ws")).unwrap()];
    let e = ctx.block_on(T, con.complete(remote)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.to_string().contains("msrp subprotocol"), "{e}");
}

#[test]
fn a_client_that_does_not_offer_the_msrp_subprotocol_gets_400() {
    let ctx = ctx();
    let acc = Arc::new(Connector::new(&ctx, Role::Passive, false, None));
    let path = acc
        .prepare(Some(Uri::parse("msrp://127.0.0.1:0/acc;ws").unwrap()))
        .unwrap();
    let port = path[0].port.unwrap();
    let acc2 = acc.clone();
    let waiting = std::thread::spawn(move || {
        let until = std::time::Instant::now() + Duration::from_secs(2);
        let peer = vec![Uri::parse("msrp://127.0.0.1:9/con;ws").unwrap()];
        acc2.context()
            .clone()
            .block_on(T, acc2.complete_until(peer, Some(until)))
    });
    let r = ctx
        .block_on(T, async {
            let url = format!("ws://127.0.0.1:{port}/");
            let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            Ok(tokio_tungstenite::client_async(url, tcp).await)
        })
        .unwrap();
    match r {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 400)
        }
        other => panic!("expected an HTTP 400, got {:?}", other.map(|_| ())),
    }
    assert!(waiting.join().unwrap().is_err(), "nothing was bound");
}

fn self_signed(name: &str) -> TlsSettings {
    let mut s = TlsSettings::default();
    s.generate_self_signed(name).unwrap();
    s
}

fn fp(s: &TlsSettings) -> Fingerprint {
    s.fingerprint(HashAlg::Sha256).unwrap()
}

#[test]
fn wss_checks_the_peer_by_fingerprint_as_msrps_does() {
    for right in [true, false] {
        let ctx = ctx();
        let acc_tls = self_signed("acceptor.example");
        let other = self_signed("someone.else");
        let expect = if right { fp(&acc_tls) } else { fp(&other) };
        let acc = Arc::new(Connector::new(&ctx, Role::Passive, false, None));
        acc.set_tls(acc_tls);
        let a_path = acc
            .prepare(Some(Uri::parse("msrps://127.0.0.1:0/acc;ws").unwrap()))
            .unwrap();
        let con = Connector::new(&ctx, Role::Active, false, None);
        con.set_tls(self_signed("connector.example"));
        con.add_peer_fingerprint(expect);
        let c_path = con
            .prepare(Some(Uri::parse("msrps://client.invalid:9/con;ws").unwrap()))
            .unwrap();
        let acc2 = acc.clone();
        let h = std::thread::spawn(move || {
            let until = std::time::Instant::now() + Duration::from_secs(3);
            acc2.context()
                .clone()
                .block_on(T, acc2.complete_until(c_path, Some(until)))
        });
        let rc = ctx.block_on(T, con.complete(a_path));
        let ra = h.join().unwrap();
        if right {
            let (a, b) = (ra.unwrap(), rc.unwrap());
            let c = body_chunk(&b, b"over wss");
            ctx.block_on(T, b.write_chunk(&c)).unwrap();
            let r = ctx.block_on(T, a.read_chunk(usize::MAX)).unwrap();
            assert_eq!(r.chunk.data(), b"over wss");
        } else {
            let e = rc.unwrap_err();
            assert_eq!(e.kind, ErrorKind::TlsFingerprint, "{e}");
            assert!(ra.is_err());
        }
    }
}
