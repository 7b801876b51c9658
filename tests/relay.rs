//! Relay connections (RFC 4976) against a real Kamailio relay on loopback:
//! AUTH with digest, Use-Path in the local path, active and passive ends
//! through one relay and through two, a wrong password, 423 with
//! Min-Expires, AUTH refresh, 5 MB and REPORTs through the relay.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::kamailio::Kamailio;
use msrp::engine::connector::Role;
use msrp::engine::relay::{RelayConnector, RelaySettings};
use msrp::engine::transport::Transport;
use msrp::engine::{Context, ErrorKind};
use msrp::proto::Flag;
use msrp::proto::transport::{ChunkParams, make_chunk};
use rustls::pki_types::pem::PemObject;

const T: Duration = Duration::from_secs(15);

#[path = "common/ctx.rs"]
mod common_ctx;
use common_ctx::ctx;

fn settings(relay: &Kamailio, user: &str, password: &str) -> RelaySettings {
    RelaySettings {
        domain: "relay.test".into(),
        username: user.into(),
        password: password.into(),
        host: Some("127.0.0.1".into()),
        port: Some(relay.port),
        ..Default::default()
    }
}

/// A (active, via `ra`) and B (passive, via `rb`) bound through the relays.
fn bind(ctx: &Arc<Context>, a: RelaySettings, b: RelaySettings) -> (Transport, Transport) {
    let ca = Arc::new(RelayConnector::new(ctx, Role::Active, false, None, a));
    let cb = Arc::new(RelayConnector::new(ctx, Role::Passive, false, None, b));
    let pa = ctx.block_on(T, ca.prepare(None)).unwrap();
    let pb = ctx.block_on(T, cb.prepare(None)).unwrap();
    assert_eq!(pa.len(), 2, "relay Use-Path then our URI");
    assert_eq!(pb.len(), 2);
    let cb2 = cb.clone();
    let pa2 = pa.clone();
    let h = std::thread::spawn(move || cb2.context().clone().block_on(T, cb2.complete(pa2)));
    let ta = ctx.block_on(T, ca.complete(pb)).unwrap();
    let tb = h.join().unwrap().unwrap();
    (ta, tb)
}

fn send(
    ctx: &Arc<Context>,
    from: &Transport,
    data: &[u8],
    start: u64,
    total: u64,
    method: Option<&str>,
) {
    let mut c = make_chunk(
        from.local_path(),
        from.remote_path(),
        &ChunkParams {
            method,
            data,
            start,
            total: Some(Some(total)),
            message_id: Some("msg1"),
            ..Default::default()
        },
    )
    .unwrap();
    c.ensure_unique_transaction_id();
    // Sessions refuse SENDs without a type (415).
    c.set_content_type("text/plain").unwrap();
    ctx.block_on(T, from.write_chunk(&c)).unwrap();
}

/// Reads requests (skipping responses) until one arrives.
fn recv(ctx: &Arc<Context>, t: &Transport, wait: Duration) -> Option<msrp::proto::Chunk> {
    loop {
        match ctx.block_on(wait, t.read_chunk(usize::MAX)) {
            Ok(r) if r.chunk.is_request() => return Some(r.chunk),
            Ok(_) => continue,
            Err(e) if e.kind == ErrorKind::Timeout => return None,
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

fn exchange_both_ways(ctx: &Arc<Context>, ta: &Transport, tb: &Transport) {
    send(ctx, ta, b"hello from A", 1, 12, None);
    let got = recv(ctx, tb, T).expect("B gets A's SEND");
    assert_eq!(got.data(), b"hello from A");
    // B sees the relays in From-Path: its own relay first.
    assert_eq!(got.from_path().unwrap().len(), 3);
    send(ctx, tb, b"hello from B", 1, 12, None);
    let got = recv(ctx, ta, T).expect("A gets B's SEND");
    assert_eq!(got.data(), b"hello from B");
}

#[test]
fn active_and_passive_through_one_relay() {
    let relay = Kamailio::start(60, 3600);
    let ctx = ctx();
    let (ta, tb) = bind(
        &ctx,
        settings(&relay, "alice", "secret"),
        settings(&relay, "bob", "secret"),
    );
    exchange_both_ways(&ctx, &ta, &tb);
}

#[test]
fn active_and_passive_through_two_relays() {
    let r1 = Kamailio::start(60, 3600);
    let r2 = Kamailio::start(60, 3600);
    let ctx = ctx();
    let (ta, tb) = bind(
        &ctx,
        settings(&r1, "alice", "secret"),
        settings(&r2, "bob", "secret"),
    );
    assert_eq!(ta.local_path()[0].port, Some(r1.port));
    assert_eq!(tb.local_path()[0].port, Some(r2.port));
    exchange_both_ways(&ctx, &ta, &tb);
}

#[test]
fn wrong_password_is_an_authentication_error() {
    let relay = Kamailio::start(60, 3600);
    let ctx = ctx();
    let c = RelayConnector::new(
        &ctx,
        Role::Active,
        false,
        None,
        settings(&relay, "alice", "nope"),
    );
    let e = ctx.block_on(T, c.prepare(None)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::AuthFailed, "{e}");
    assert!(e.msg.contains("alice") && e.msg.contains("401"), "{e}");
}

#[test]
fn expires_below_the_minimum_is_retried_after_423() {
    let relay = Kamailio::start(120, 3600);
    let ctx = ctx();
    let mut s = settings(&relay, "alice", "secret");
    s.expires = Some(30);
    s.no_refresh = true;
    let mut sb = settings(&relay, "bob", "secret");
    sb.expires = Some(7200);
    sb.no_refresh = true;
    // Both bounds: below the minimum and above the maximum are retried.
    let (ta, tb) = bind(&ctx, s, sb);
    exchange_both_ways(&ctx, &ta, &tb);
}

#[test]
fn auth_is_refreshed_before_it_expires() {
    // The relay forgets a session Expires + 5 s after its AUTH. A connection
    // that refreshes (every second here) is still reachable after 9 s; one
    // that does not refresh is not: the control shows the wait is long enough.
    let relay = Kamailio::start(1, 3600);
    let ctx = ctx();
    for refresh in [true, false] {
        let mut a = settings(&relay, "alice", "secret");
        a.expires = Some(2);
        a.no_refresh = !refresh;
        let mut b = settings(&relay, "bob", "secret");
        b.expires = Some(3600);
        let (ta, tb) = bind(&ctx, a, b);
        std::thread::sleep(Duration::from_secs(9));
        send(&ctx, &tb, b"still there?", 1, 12, None);
        let got = recv(&ctx, &ta, Duration::from_secs(3));
        if refresh {
            assert_eq!(
                got.expect("refreshed session still reachable").data(),
                b"still there?"
            );
        } else {
            assert!(
                got.is_none(),
                "without refresh the relay forgot the session"
            );
        }
    }
}

/// The refresh also works while a session reads the connection itself
/// (the refresh's response is taken out of the session's reads).
#[test]
fn auth_is_refreshed_while_a_session_reads() {
    use msrp::engine::session::{DriverEvent, SessionDriver};
    use msrp::proto::session::{SessionConfig, SessionEvent};
    let relay = Kamailio::start(1, 3600);
    let ctx = ctx();
    let mut a = settings(&relay, "alice", "secret");
    a.expires = Some(2);
    let mut b = settings(&relay, "bob", "secret");
    b.expires = Some(3600);
    let (ta, tb) = bind(&ctx, a, b);
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let session = SessionDriver::start(
        ta,
        SessionConfig::default(),
        None,
        Box::new(move |e| {
            if let DriverEvent::Session(SessionEvent::Message { data, .. }, _) = e {
                let _ = tx.lock().unwrap().send(data);
            }
        }),
        None,
    );
    std::thread::sleep(Duration::from_secs(9));
    send(&ctx, &tb, b"still there?", 1, 12, None);
    let got = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the session, refreshed while it read, is still reachable");
    assert_eq!(got, b"still there?");
    assert!(!session.is_closed());
}

#[test]
fn five_megabytes_and_reports_through_the_relay() {
    let relay = Kamailio::start(60, 3600);
    let ctx = ctx();
    let (ta, tb) = bind(
        &ctx,
        settings(&relay, "alice", "secret"),
        settings(&relay, "bob", "secret"),
    );
    let total: usize = 5 * 1024 * 1024;
    let data: Vec<u8> = (0..total).map(|i| (i * 31 % 251) as u8).collect();
    let ctx2 = ctx.clone();
    let ta = Arc::new(ta);
    let ta2 = ta.clone();
    let data2 = data.clone();
    // 8 KiB chunks, as the session does through a relay; the writer runs
    // beside the reader (the relay has no back-pressure beyond its queue).
    let writer = std::thread::spawn(move || {
        let step = 8 * 1024;
        let mut off = 0;
        while off < total {
            let end = (off + step).min(total);
            send(
                &ctx2,
                &ta2,
                &data2[off..end],
                off as u64 + 1,
                total as u64,
                None,
            );
            off = end;
        }
    });
    let mut got = vec![0u8; total];
    let mut received = 0usize;
    let mut last_flag = Flag::More;
    while received < total {
        let c = recv(&ctx, &tb, T).expect("chunks keep coming");
        let r = c.byte_range().unwrap().unwrap();
        let start = (r.start - 1) as usize;
        got[start..start + c.size()].copy_from_slice(c.data());
        received += c.size();
        last_flag = c.flag();
        // B answers each SEND (hop by hop; the relay absorbs it).
        let resp = c.make_response(200, Some("OK")).unwrap();
        ctx.block_on(T, tb.write_chunk(&resp)).unwrap();
    }
    writer.join().unwrap();
    assert_eq!(last_flag, Flag::End);
    assert!(got == data, "5 MB arrived intact");
    // A success REPORT from B reaches A through the relay.
    let mut rep = make_chunk(
        tb.local_path(),
        tb.remote_path(),
        &ChunkParams {
            method: Some("REPORT"),
            data: b"",
            message_id: Some("msg1"),
            ..Default::default()
        },
    )
    .unwrap();
    rep.set_byte_range(msrp::proto::header::ByteRange {
        start: 1,
        end: Some(total as u64),
        total: Some(total as u64),
    })
    .unwrap();
    rep.add_header_raw("Status", "000 200 OK").unwrap();
    ctx.block_on(T, tb.write_chunk(&rep)).unwrap();
    let r = recv(&ctx, &ta, T).expect("A gets the REPORT");
    assert_eq!(r.method(), Some("REPORT"));
    assert_eq!(r.message_id(), Some("msg1"));
    assert_eq!(r.status().unwrap().unwrap().code, 200);
    assert_eq!(r.byte_range().unwrap().unwrap().end, Some(total as u64));
}

fn discovery_settings(domain: &str, dns: std::net::SocketAddr) -> RelaySettings {
    RelaySettings {
        domain: domain.into(),
        username: "alice".into(),
        password: "secret".into(),
        nameserver: Some(dns),
        ..Default::default()
    }
}

#[test]
fn relay_found_by_srv_in_priority_order_with_fallback_to_the_domain() {
    let relay = Kamailio::start(60, 3600);
    // A port where nothing listens, for the better-priority record.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dns = common::dnsmasq::Dnsmasq::start(&[
        format!("--srv-host=_msrp._tcp.relay.test,dead.relay.test,{dead},10,100"),
        format!(
            "--srv-host=_msrp._tcp.relay.test,r1.relay.test,{},20,5",
            relay.port
        ),
        "--host-record=dead.relay.test,127.0.0.1".into(),
        "--host-record=r1.relay.test,127.0.0.1".into(),
        "--host-record=plain.test,127.0.0.1".into(),
    ]);
    let ctx = ctx();
    // The order discovery gives: priority 10 first.
    let found = ctx
        .block_on(
            T,
            msrp::engine::relay::discover(&discovery_settings("relay.test", dns.addr)),
        )
        .unwrap();
    assert_eq!(
        found
            .iter()
            .map(|a| (a.host.as_str(), a.port))
            .collect::<Vec<_>>(),
        vec![("dead.relay.test", dead), ("r1.relay.test", relay.port)]
    );
    // prepare tries the dead relay, then authenticates with the live one.
    let c = RelayConnector::new(
        &ctx,
        Role::Active,
        false,
        None,
        discovery_settings("relay.test", dns.addr),
    );
    let path = ctx.block_on(T, c.prepare(None)).unwrap();
    assert_eq!(path[0].port, Some(relay.port));
    // No SRV records: the domain's own address, on the given port (2855 by default).
    let mut s = discovery_settings("plain.test", dns.addr);
    let found = ctx.block_on(T, msrp::engine::relay::discover(&s)).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (found[0].host.as_str(), found[0].port),
        ("plain.test", 2855)
    );
    s.port = Some(relay.port);
    let c = RelayConnector::new(&ctx, Role::Passive, false, None, s);
    let path = ctx.block_on(T, c.prepare(None)).unwrap();
    assert_eq!(path[0].port, Some(relay.port));
    // Neither SRV nor an address: a DNS error that names the domain.
    let e = ctx
        .block_on(
            T,
            msrp::engine::relay::discover(&discovery_settings("nothing.test", dns.addr)),
        )
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::DnsFailed, "{e}");
    assert!(e.msg.contains("nothing.test"), "{e}");
}

#[test]
fn dns_server_that_does_not_answer_is_a_dns_error() {
    // A UDP port that is bound but never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ctx = ctx();
    let c = RelayConnector::new(
        &ctx,
        Role::Active,
        false,
        None,
        discovery_settings("relay.test", silent.local_addr().unwrap()),
    );
    let e = ctx
        .block_on(Duration::from_secs(30), c.prepare(None))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::DnsFailed, "{e}");
}

/// A relay that accepts the connection but never answers AUTH: a prepare
/// the caller gives up on (its wait runs out) leaves the connector ready
/// for another prepare, which times out the same way rather than being
/// refused as "already in progress".
#[test]
fn a_prepare_that_timed_out_can_be_tried_again() {
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ctx = ctx();
    let c = RelayConnector::new(
        &ctx,
        Role::Active,
        false,
        None,
        RelaySettings {
            domain: "relay.test".into(),
            username: "alice".into(),
            password: "pw".into(),
            host: Some("127.0.0.1".into()),
            port: Some(mute.local_addr().unwrap().port()),
            ..Default::default()
        },
    );
    for attempt in 1..=2 {
        let e = ctx
            .block_on(Duration::from_millis(300), c.prepare(None))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout, "attempt {attempt}: {e}");
    }
}

/// A CA and a relay certificate for 127.0.0.1 signed by it (PEM), made now.
fn relay_certificate() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "libmsrp test relay CA");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

#[test]
fn relay_over_tls_checked_by_ca_and_by_fingerprint() {
    let (ca, cert, key) = relay_certificate();
    let relay = Kamailio::start_tls(60, 3600, &cert, &key);
    let tls_port = relay.tls_port.unwrap();
    let ctx = ctx();
    let mut tls = msrp::engine::tls::TlsSettings::default();
    tls.add_ca_pem(ca.as_bytes()).unwrap();
    let mut a = settings(&relay, "alice", "secret");
    a.use_tls = true;
    a.port = Some(tls_port);
    a.tls = Some(tls);
    // B checks the relay by its certificate's fingerprint instead.
    let der = rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
    let mut b = settings(&relay, "bob", "secret");
    b.use_tls = true;
    b.port = Some(tls_port);
    b.fingerprint = Some(msrp::engine::tls::Fingerprint::of(
        msrp::engine::tls::HashAlg::Sha256,
        &der,
    ));
    let (ta, tb) = bind(&ctx, a.clone(), b);
    assert!(ta.local_path()[0].secure, "Use-Path is msrps over TLS");
    exchange_both_ways(&ctx, &ta, &tb);
    // Without the CA the relay's certificate is refused.
    let mut c = a.clone();
    c.tls = None;
    let conn = RelayConnector::new(&ctx, Role::Active, false, None, c);
    let e = ctx.block_on(T, conn.prepare(None)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TlsCertificate, "{e}");
}

#[test]
fn msrps_relay_found_by_srv() {
    let (ca, cert, key) = relay_certificate();
    let relay = Kamailio::start_tls(60, 3600, &cert, &key);
    let dns = common::dnsmasq::Dnsmasq::start(&[
        // The plain relay under _msrp, the TLS one under _msrps.
        format!(
            "--srv-host=_msrp._tcp.relay.test,r.relay.test,{},10,5",
            relay.port
        ),
        format!(
            "--srv-host=_msrps._tcp.relay.test,r.relay.test,{},10,5",
            relay.tls_port.unwrap()
        ),
        "--host-record=r.relay.test,127.0.0.1".into(),
    ]);
    let ctx = ctx();
    let mut tls = msrp::engine::tls::TlsSettings::default();
    tls.add_ca_pem(ca.as_bytes()).unwrap();
    let mut s = discovery_settings("relay.test", dns.addr);
    s.use_tls = true;
    // The certificate names 127.0.0.1, not r.relay.test: check by CA only
    // through a fingerprint would hide that; a name mismatch must fail.
    s.tls = Some(tls);
    let c = RelayConnector::new(&ctx, Role::Active, false, None, s.clone());
    let e = ctx.block_on(T, c.prepare(None)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TlsCertificate, "{e}");
    assert!(e.msg.contains("NotValidForName"), "{e}");
    // With the fingerprint, the SRV-found TLS relay authenticates us.
    let der = rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
    s.fingerprint = Some(msrp::engine::tls::Fingerprint::of(
        msrp::engine::tls::HashAlg::Sha256,
        &der,
    ));
    let c = RelayConnector::new(&ctx, Role::Active, false, None, s);
    let path = ctx.block_on(T, c.prepare(None)).unwrap();
    assert!(path[0].secure);
    assert_eq!(path[0].port, relay.tls_port);
}
