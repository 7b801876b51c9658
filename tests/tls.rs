//! msrps over real loopback sockets with certificates made at test time:
//! fingerprints (match, mismatch on either side, sha-1 for old peers), CA
//! verification (right name, wrong name, expired, unknown CA), the insecure
//! option, and the shared server.

use std::sync::Arc;
use std::time::Duration;

use msrp::engine::connector::{Connector, Role};
use msrp::engine::server::Server;
use msrp::engine::tls::{Fingerprint, HashAlg, TlsSettings};
use msrp::engine::transport::Transport;
use msrp::engine::{Context, Error, ErrorKind};
use msrp::proto::transport::{ChunkParams, make_chunk};
use msrp::proto::uri::Uri;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

#[path = "common/conn_pair.rs"]
mod conn_pair;

#[path = "common/body_chunk.rs"]
mod body_chunk;
use body_chunk::body_chunk;

const T: Duration = Duration::from_secs(10);

#[path = "common/ctx.rs"]
mod common_ctx;
use common_ctx::ctx;

fn self_signed(name: &str) -> TlsSettings {
    let mut s = TlsSettings::default();
    s.generate_self_signed(name).unwrap();
    s
}

fn fp(s: &TlsSettings) -> Fingerprint {
    s.fingerprint(HashAlg::Sha256).unwrap()
}

/// A CA and a way to issue leaf certificates from it.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Ca {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Client settings that trust this CA only.
    fn trusted_by_client(&self) -> TlsSettings {
        let mut client = TlsSettings::default();
        client.add_ca_pem(self.pem().as_bytes()).unwrap();
        client
    }

    /// Connects a client trusting `trust` to an acceptor at `host` with a
    /// leaf of this CA for `names`.
    fn connect_leaf(
        &self,
        trust: &Ca,
        host: &str,
        names: &[&str],
        expired: bool,
    ) -> (Result<Transport, Error>, Result<Transport, Error>) {
        connect(
            host,
            self.leaf(names, expired),
            trust.trusted_by_client(),
            None,
            None,
        )
    }

    /// Settings holding a leaf for `names`, valid now unless `expired`.
    fn leaf(&self, names: &[&str], expired: bool) -> TlsSettings {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        let mut s = TlsSettings::default();
        s.set_certificate_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
            .unwrap();
        s
    }
}

/// Acceptor at `host` with `acc_tls`, connector with `con_tls`; the
/// fingerprints are what each side expects of the other. Returns both
/// results (connector, acceptor).
fn connect(
    host: &str,
    acc_tls: TlsSettings,
    con_tls: TlsSettings,
    acc_expects: Option<Fingerprint>,
    con_expects: Option<Fingerprint>,
) -> (Result<Transport, Error>, Result<Transport, Error>) {
    let all = |f: Option<Fingerprint>| f.into_iter().collect();
    connect_any(host, acc_tls, con_tls, all(acc_expects), all(con_expects))
}

/// As `connect`, each side given several fingerprints the other may show.
fn connect_any(
    host: &str,
    acc_tls: TlsSettings,
    con_tls: TlsSettings,
    acc_expects: Vec<Fingerprint>,
    con_expects: Vec<Fingerprint>,
) -> (Result<Transport, Error>, Result<Transport, Error>) {
    let ctx = ctx();
    let acc = Arc::new(Connector::new(&ctx, Role::Passive, false, None));
    let con = Arc::new(Connector::new(&ctx, Role::Active, false, None));
    acc.set_tls(acc_tls);
    con.set_tls(con_tls);
    for f in acc_expects {
        acc.add_peer_fingerprint(f);
    }
    for f in con_expects {
        con.add_peer_fingerprint(f);
    }
    let local = Uri::parse(&format!("msrps://{host}:0/acc;tcp")).unwrap();
    let a_path = acc.prepare(Some(local)).unwrap();
    let c_path = con
        .prepare(Some(Uri::parse("msrps://127.0.0.1:9/con;tcp").unwrap()))
        .unwrap();
    let acc2 = acc.clone();
    // An acceptor keeps listening after a failed handshake; at the end of
    // its wait it reports why the last connection failed.
    let h = std::thread::spawn(move || {
        let until = std::time::Instant::now() + Duration::from_secs(3);
        acc2.context()
            .clone()
            .block_on(T, acc2.complete_until(c_path, Some(until)))
    });
    let rc = ctx.block_on(T, con.complete(a_path));
    let ra = h.join().unwrap();
    (rc, ra)
}

/// A passive msrps connector with a self-signed certificate, prepared on
/// a free loopback port: the connector, its path, the port, its fingerprint.
fn tls_acceptor(ctx: &Arc<Context>) -> (Arc<Connector>, Vec<Uri>, u16, Fingerprint) {
    let acc_tls = self_signed("acceptor.example");
    let fa = fp(&acc_tls);
    let acc = Arc::new(Connector::new(ctx, Role::Passive, false, None));
    acc.set_tls(acc_tls);
    let a_path = acc
        .prepare(Some(Uri::parse("msrps://127.0.0.1:0/acc;tcp").unwrap()))
        .unwrap();
    let port = a_path[0].port.expect("the acceptor's port");
    (acc, a_path, port, fa)
}

/// A TLS client (self-signed certificate) connected to a loopback port,
/// checking the server by fingerprint: a peer that is not a libmsrp
/// transport, to send exactly the bytes a test wants.
async fn tls_client(
    port: u16,
    server: Fingerprint,
) -> Result<Box<tokio_rustls::client::TlsStream<msrp::engine::stream::Sock>>, Error> {
    use msrp::engine::stream::Conn;
    let mut client_tls = TlsSettings::default();
    client_tls
        .generate_self_signed("connector.example")
        .unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
    match msrp::engine::stream::connect(tcp, &client_tls, "127.0.0.1", vec![server]).await? {
        Conn::Client(s) => Ok(s),
        _ => panic!("a client connection"),
    }
}

fn exchange(a: &Transport, b: &Transport, ctx: &Arc<Context>) {
    let data = vec![7u8; 200_000];
    let c = body_chunk(a, &data);
    ctx.block_on(T, a.write_chunk(&c)).unwrap();
    let r = ctx.block_on(T, b.read_chunk(usize::MAX)).unwrap();
    assert_eq!(r.chunk.data(), &data[..]);
}

#[test]
fn fingerprints_on_both_sides_match() {
    let a = self_signed("acceptor.example");
    let c = self_signed("connector.example");
    let (fa, fc) = (fp(&a), fp(&c));
    let (rc, ra) = connect("127.0.0.1", a, c, Some(fc), Some(fa));
    let (tc, ta) = (rc.unwrap(), ra.unwrap());
    let ctx = ctx();
    exchange(&tc, &ta, &ctx);
    exchange(&ta, &tc, &ctx);
}

/// RFC 8122 §5: an SDP may carry several a=fingerprint lines; a
/// certificate with any one of them passes (here the right one is second),
/// and one with none of them fails.
#[test]
fn several_peer_fingerprints_any_one_passes() {
    let a = self_signed("acceptor.example");
    let c = self_signed("connector.example");
    let (fa, fc) = (fp(&a), fp(&c));
    let other = || fp(&self_signed("someone-else.example"));
    let fa1 = a.fingerprint(HashAlg::Sha1).unwrap();
    let (rc, ra) = connect_any("127.0.0.1", a, c, vec![other(), fc], vec![other(), fa1, fa]);
    let (tc, ta) = (rc.unwrap(), ra.unwrap());
    exchange(&tc, &ta, &ctx());
    let a = self_signed("acceptor.example");
    let (rc, ra) = connect_any(
        "127.0.0.1",
        a,
        TlsSettings::default(),
        Vec::new(),
        vec![other(), other()],
    );
    assert_eq!(rc.unwrap_err().kind, ErrorKind::TlsFingerprint);
    assert_eq!(ra.unwrap_err().kind, ErrorKind::TlsRejected);
}

#[test]
fn sha1_fingerprint_of_an_old_peer_is_accepted() {
    let a = self_signed("acceptor.example");
    let fa = a.fingerprint(HashAlg::Sha1).unwrap();
    assert!(fa.to_string().starts_with("sha-1 "));
    let (rc, ra) = connect("127.0.0.1", a, TlsSettings::default(), None, Some(fa));
    rc.unwrap();
    ra.unwrap();
}

#[test]
fn server_fingerprint_mismatch_fails_on_both_sides() {
    let a = self_signed("acceptor.example");
    let other = fp(&self_signed("someone-else.example"));
    let (rc, ra) = connect("127.0.0.1", a, TlsSettings::default(), None, Some(other));
    assert_eq!(rc.unwrap_err().kind, ErrorKind::TlsFingerprint);
    assert_eq!(ra.unwrap_err().kind, ErrorKind::TlsRejected);
}

#[test]
fn client_fingerprint_mismatch_fails_on_both_sides() {
    let a = self_signed("acceptor.example");
    let c = self_signed("connector.example");
    let fa = fp(&a);
    let other = fp(&self_signed("someone-else.example"));
    let (rc, ra) = connect("127.0.0.1", a, c, Some(other), Some(fa));
    assert_eq!(ra.unwrap_err().kind, ErrorKind::TlsFingerprint);
    let e = rc.unwrap_err();
    assert_eq!(e.kind, ErrorKind::TlsRejected, "{e}");
}

#[test]
fn client_without_certificate_fails_when_a_fingerprint_is_expected() {
    let a = self_signed("acceptor.example");
    let fa = fp(&a);
    let other = fp(&self_signed("someone-else.example"));
    let (rc, ra) = connect(
        "127.0.0.1",
        a,
        TlsSettings::default(),
        Some(other),
        Some(fa),
    );
    assert_eq!(ra.unwrap_err().kind, ErrorKind::TlsFingerprint);
    assert!(matches!(
        rc.unwrap_err().kind,
        ErrorKind::TlsRejected | ErrorKind::Tls
    ));
}

#[test]
fn ca_verification_right_name_passes() {
    let ca = Ca::new("Test CA");
    let (rc, ra) = ca.connect_leaf(&ca, "localhost", &["localhost"], false);
    rc.unwrap();
    ra.unwrap();
}

#[test]
fn ca_verification_ip_address_name_passes() {
    let ca = Ca::new("Test CA");
    let (rc, ra) = ca.connect_leaf(&ca, "127.0.0.1", &["127.0.0.1"], false);
    rc.unwrap();
    ra.unwrap();
}

#[test]
fn ca_verification_wrong_name_fails() {
    let ca = Ca::new("Test CA");
    let (rc, ra) = ca.connect_leaf(&ca, "localhost", &["relay.example.org"], false);
    let e = rc.unwrap_err();
    assert_eq!(e.kind, ErrorKind::TlsCertificate, "{e}");
    assert!(e.msg.contains("NotValidForName"), "{e}");
    assert_eq!(ra.unwrap_err().kind, ErrorKind::TlsRejected);
}

#[test]
fn ca_verification_expired_fails() {
    let ca = Ca::new("Test CA");
    let (rc, _ra) = ca.connect_leaf(&ca, "localhost", &["localhost"], true);
    let e = rc.unwrap_err();
    assert_eq!(e.kind, ErrorKind::TlsCertificate, "{e}");
    assert!(e.msg.contains("Expired"), "{e}");
}

#[test]
fn ca_verification_unknown_issuer_fails() {
    let ca = Ca::new("Test CA");
    let other = Ca::new("Other CA");
    let (rc, _ra) = ca.connect_leaf(&other, "localhost", &["localhost"], false);
    let e = rc.unwrap_err();
    assert_eq!(e.kind, ErrorKind::TlsCertificate, "{e}");
    assert!(e.msg.contains("UnknownIssuer"), "{e}");
}

#[test]
fn self_signed_without_fingerprint_fails_unless_insecure() {
    let mut client = TlsSettings::default();
    client
        .add_ca_pem(Ca::new("Test CA").pem().as_bytes())
        .unwrap();
    let (rc, _) = connect(
        "localhost",
        self_signed("localhost"),
        client.clone(),
        None,
        None,
    );
    assert_eq!(rc.unwrap_err().kind, ErrorKind::TlsCertificate);
    client.set_insecure(true);
    let (rc, ra) = connect("localhost", self_signed("localhost"), client, None, None);
    rc.unwrap();
    ra.unwrap();
}

#[test]
fn msrps_acceptor_without_certificate_is_refused_at_prepare() {
    let ctx = ctx();
    let acc = Connector::new(&ctx, Role::Passive, false, None);
    let e = acc
        .prepare(Some(Uri::parse("msrps://127.0.0.1:0/x;tcp").unwrap()))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadState);
    acc.set_tls(TlsSettings::default());
    let e = acc
        .prepare(Some(Uri::parse("msrps://127.0.0.1:0/x;tcp").unwrap()))
        .unwrap_err();
    assert!(e.msg.contains("certificate"), "{e}");
}

#[test]
fn shared_server_over_tls_checks_fingerprints_per_session() {
    let ctx = ctx();
    let server_tls = self_signed("server.example");
    let fs = fp(&server_tls);
    let server = Arc::new(Server::new(&ctx, None, false));
    server.set_tls(server_tls);
    let good = self_signed("good.example");
    let bad = self_signed("bad.example");
    let mut paths = Vec::new();
    for id in ["s1", "s2"] {
        let p = server
            .prepare(Some(
                Uri::parse(&format!("msrps://127.0.0.1:0/{id};tcp")).unwrap(),
            ))
            .unwrap();
        server.set_peer_fingerprint(&p[0], Some(fp(&good))).unwrap();
        paths.push(p);
    }
    // Both sessions share one port.
    assert_eq!(paths[0][0].port, paths[1][0].port);
    // An msrp URI cannot share the msrps port.
    let plain = Uri::parse(&format!(
        "msrp://127.0.0.1:{}/s3;tcp",
        paths[0][0].port.unwrap()
    ))
    .unwrap();
    assert_eq!(
        server.prepare(Some(plain)).unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
    let mut results = Vec::new();
    for (i, creds) in [good, bad].into_iter().enumerate() {
        let con = Connector::new(&ctx, Role::Active, false, None);
        con.set_tls(creds);
        con.set_peer_fingerprint(Some(fs.clone()));
        let cp = con
            .prepare(Some(
                Uri::parse(&format!("msrps://127.0.0.1:9/c{i};tcp")).unwrap(),
            ))
            .unwrap();
        let srv = server.clone();
        let cp2 = cp.clone();
        let h = std::thread::spawn(move || srv.context().clone().block_on(T, srv.complete(cp2)));
        let rc = ctx.block_on(T, con.complete(paths[i].clone()));
        results.push((rc, h.join().unwrap()));
    }
    let (rc, rs) = results.remove(0);
    let (tc, ts) = (rc.unwrap(), rs.unwrap());
    exchange(&tc, &ts, &ctx);
    let (rc, rs) = results.remove(0);
    assert_eq!(rs.unwrap_err().kind, ErrorKind::TlsFingerprint);
    let e = rc.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BindRejected);
    assert!(e.msg.contains("403"), "{e}");
}

#[test]
fn a_large_chunk_to_a_slow_reader_arrives_whole() {
    // Back-pressure through TLS: the reader is slower than the writer, so
    // the socket and the read queue fill up while a chunk larger than both
    // is written; every byte must still arrive, with no later write to push
    // the last TLS records out.
    let a = self_signed("acceptor.example");
    let c = self_signed("connector.example");
    let (fa, fc) = (fp(&a), fp(&c));
    let (rc, ra) = connect("127.0.0.1", a, c, Some(fc), Some(fa));
    let (tc, ta) = (Arc::new(rc.unwrap()), ra.unwrap());
    let ctx = ctx();
    for round in 0..2 {
        // Larger than what loopback socket buffers and our read queue hold.
        let data: Vec<u8> = (0..24 * 1024 * 1024u32)
            .map(|i| (i % 253) as u8 ^ round)
            .collect();
        let chunk = body_chunk(&tc, &data);
        let tc2 = tc.clone();
        let ctx2 = ctx.clone();
        let writer = std::thread::spawn(move || ctx2.block_on(T, tc2.write_chunk(&chunk)));
        std::thread::sleep(Duration::from_millis(100));
        // A slow reader: 64 KiB at a time with a pause, so the socket stays
        // full while the writer finishes.
        let mut got = Vec::with_capacity(data.len());
        loop {
            let r = ctx
                .block_on(Duration::from_secs(5), ta.read_chunk(64 * 1024))
                .expect("the rest of the chunk arrives");
            got.extend_from_slice(r.chunk.data());
            if r.complete {
                break;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        assert!(got == data);
        writer.join().unwrap().unwrap();
    }
}

#[test]
fn chunks_of_every_size_arrive_byte_for_byte() {
    // Over TLS chunks are decoded where rustls decrypted them, one record
    // (16 KiB) at a time, up to 256 KiB per read: sizes around record and
    // read boundaries, patterned bodies.
    let (a, b) = (self_signed("a.invalid"), self_signed("b.invalid"));
    let (fa, fb) = (fp(&a), fp(&b));
    let (rc, ra) = connect("127.0.0.1", a, b, Some(fb), Some(fa));
    let (c, s) = (rc.unwrap(), ra.unwrap());
    let ctx = c.context().clone();
    let sizes = [
        0usize, 1, 100, 16_383, 16_384, 16_385, 16_400, 32_768, 49_000, 65_536, 65_537, 100_000,
        262_100, 262_144, 262_145, 300_000, 1_000,
    ];
    let body = |i: usize, n: usize| -> Vec<u8> {
        (0..n)
            .map(|k| (k.wrapping_mul(31) ^ i.wrapping_mul(7)) as u8)
            .collect()
    };
    let chunks: Vec<_> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| body_chunk(&c, &body(i, n)))
        .collect();
    let writer = {
        let ctx = ctx.clone();
        let c = Arc::new(c);
        std::thread::spawn(move || {
            for ch in &chunks {
                ctx.block_on(T, c.write_chunk(ch)).unwrap();
            }
            c
        })
    };
    for (i, &n) in sizes.iter().enumerate() {
        let r = ctx.block_on(T, s.read_chunk(usize::MAX)).unwrap();
        assert_eq!(r.chunk.size(), n, "chunk {i}");
        assert!(
            r.chunk.data() == &body(i, n)[..],
            "chunk {i} ({n} bytes) differs"
        );
    }
    let _ = writer.join().unwrap();
}

#[test]
fn both_directions_at_once_share_the_tls_session() {
    // Each end writes large chunks while it reads the other's, so its
    // reading and writing halves keep finding the one TLS session in use by
    // the other half (a half that does waits as a task and is woken when
    // the other is done): every chunk must arrive intact, nothing may stall.
    let (a, b) = (self_signed("a.invalid"), self_signed("b.invalid"));
    let (fa, fb) = (fp(&a), fp(&b));
    let (rc, ra) = connect("127.0.0.1", a, b, Some(fb), Some(fa));
    let (c, s) = (Arc::new(rc.unwrap()), Arc::new(ra.unwrap()));
    let ctx = c.context().clone();
    const N: usize = 24;
    let body = |side: usize, i: usize| -> Vec<u8> {
        (0..1_000_000 + i * 4_099)
            .map(|k| (k.wrapping_mul(13) ^ i ^ (side << 7)) as u8)
            .collect()
    };
    let mut threads = Vec::new();
    for (side, (from, to)) in [(c.clone(), s.clone()), (s.clone(), c.clone())]
        .into_iter()
        .enumerate()
    {
        let ctx_w = ctx.clone();
        threads.push(std::thread::spawn(move || {
            for i in 0..N {
                let ch = body_chunk(&from, &body(side, i));
                ctx_w.block_on(T, from.write_chunk(&ch)).unwrap();
            }
        }));
        let ctx_r = ctx.clone();
        threads.push(std::thread::spawn(move || {
            for i in 0..N {
                let r = ctx_r
                    .block_on(T, to.read_chunk(usize::MAX))
                    .expect("each chunk arrives");
                assert!(
                    r.chunk.data() == &body(side, i)[..],
                    "chunk {i} from side {side} differs"
                );
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn chunks_decrypted_before_a_corrupt_record_arrive_and_then_the_tls_error() {
    // The reader decodes record after record where rustls decrypted them.
    // Once bound, a peer sends, in one write, a record with a 10 KB SEND
    // and then a record that cannot be decrypted (larger than what the first
    // read can bring along, so the good record is decoded first): the chunk
    // must arrive, and the failure must come after it as a TLS error.
    use std::io::Write as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let io = |e: std::io::Error| Error::new(ErrorKind::Io, e.to_string());
    let ctx = ctx();
    let (acc, a_path, port, fa) = tls_acceptor(&ctx);
    let c_path = vec![Uri::parse("msrps://127.0.0.1:9/con;tcp").unwrap()];
    let (acc2, c2) = (acc.clone(), c_path.clone());
    let accepting =
        std::thread::spawn(move || acc2.context().clone().block_on(T, acc2.complete(c2)));
    let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let (mut binding, mut payload) = (Vec::new(), Vec::new());
    make_chunk(&c_path, &a_path, &ChunkParams::default())
        .unwrap()
        .encode(&mut binding)
        .unwrap();
    let params = ChunkParams {
        data: &body,
        ..Default::default()
    };
    make_chunk(&c_path, &a_path, &params)
        .unwrap()
        .encode(&mut payload)
        .unwrap();
    let client = ctx
        .block_on(T, async {
            let mut s = tls_client(port, fa).await?;
            // Bound first (the 200 comes back), so that what follows is read
            // by the transport's reader, not by the handshake.
            s.write_all(&binding).await.map_err(io)?;
            s.flush().await.map_err(io)?;
            let mut got = Vec::new();
            while !got.windows(6).any(|w| w == b"200 OK") {
                let mut b = [0u8; 512];
                let n = s.read(&mut b).await.map_err(io)?;
                assert!(n > 0, "the binding is answered");
                got.extend_from_slice(&b[..n]);
            }
            let (tcp, tls) = s.get_mut();
            tls.writer().write_all(&payload).unwrap();
            let mut wire = Vec::new();
            while tls.wants_write() {
                tls.write_tls(&mut wire).unwrap();
            }
            // An application-data record of the largest size whose contents
            // are not what the key encrypts.
            wire.extend_from_slice(&[0x17, 0x03, 0x03, 0x40, 0x00]);
            wire.extend(std::iter::repeat_n(0x55u8, 0x4000));
            tcp.write_all(&wire).await.map_err(io)?;
            Ok(s)
        })
        .expect("handshake, binding and write");
    let t = accepting.join().unwrap().expect("bound");
    let r = ctx
        .block_on(T, t.read_chunk(usize::MAX))
        .expect("the 10 KB SEND arrives");
    assert!(r.chunk.data() == &body[..], "its body intact");
    let e = ctx
        .block_on(T, t.read_chunk(usize::MAX))
        .expect_err("then the corrupt record ends the connection");
    assert_eq!(e.kind, ErrorKind::Tls, "{e}");
    drop(client);
}

#[test]
fn chunks_written_just_before_a_close_arrive_and_then_the_end() {
    // The writer queues chunks and closes at once: the records and the TLS
    // close_notify reach the reader together, and it decodes record after
    // record before it meets the end. Every chunk must arrive, then a clean
    // "the peer closed the connection" (not an error in the middle of a chunk).
    let (a, b) = (self_signed("a.invalid"), self_signed("b.invalid"));
    let (fa, fb) = (fp(&a), fp(&b));
    let (rc, ra) = connect("127.0.0.1", a, b, Some(fb), Some(fa));
    let (c, s) = (rc.unwrap(), ra.unwrap());
    let ctx = c.context().clone();
    let bodies: Vec<Vec<u8>> = (0..3u8)
        .map(|i| (0..30_000u32).map(|k| (k % 241) as u8 ^ i).collect())
        .collect();
    for b in &bodies {
        c.write_chunk_nowait(&body_chunk(&c, b)).unwrap();
    }
    c.close();
    for (i, b) in bodies.iter().enumerate() {
        let r = ctx
            .block_on(T, s.read_chunk(usize::MAX))
            .unwrap_or_else(|e| panic!("chunk {i} arrives: {e}"));
        assert!(r.chunk.data() == &b[..], "chunk {i} intact");
    }
    let e = ctx
        .block_on(T, s.read_chunk(usize::MAX))
        .expect_err("then the end of the connection");
    assert_eq!(e.kind, ErrorKind::Closed, "{e}");
    assert!(
        e.msg.contains("the peer closed the connection") && !e.msg.contains("middle"),
        "{e}"
    );
}

#[test]
fn chunks_written_while_the_reader_waits_all_arrive_in_order() {
    // `write_chunk` over TLS writes from the calling thread when the writer
    // task is idle, and queues when it is not or the socket is full: 25 MiB
    // of chunks against a reader that starts late, so that both ways are
    // taken in turn. Every chunk must arrive, in order, intact.
    let (a, b) = (self_signed("a.invalid"), self_signed("b.invalid"));
    let (fa, fb) = (fp(&a), fp(&b));
    let (rc, ra) = connect("127.0.0.1", a, b, Some(fb), Some(fa));
    let (c, s) = (Arc::new(rc.unwrap()), ra.unwrap());
    let ctx = c.context().clone();
    const N: usize = 400;
    let body = |i: usize| -> Vec<u8> {
        (0..64 * 1024 + i)
            .map(|k| (k.wrapping_mul(7) ^ i) as u8)
            .collect()
    };
    let writer = {
        let (c, ctx) = (c.clone(), ctx.clone());
        std::thread::spawn(move || {
            for i in 0..N {
                let ch = body_chunk(&c, &body(i));
                ctx.block_on(T, c.write_chunk(&ch))
                    .unwrap_or_else(|e| panic!("chunk {i} written: {e}"));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..N {
        let r = ctx
            .block_on(T, s.read_chunk(usize::MAX))
            .unwrap_or_else(|e| panic!("chunk {i} arrives: {e}"));
        assert!(
            r.chunk.data() == &body(i)[..],
            "chunk {i} intact and in order"
        );
    }
    writer.join().unwrap();
}

#[test]
fn write_chunk_waits_for_records_rustls_took_but_the_socket_did_not() {
    // Small socket buffers and no reader yet: rustls takes a 200 KB chunk
    // whole (it holds up to 256 KiB of records) while the socket takes a few
    // KB. The call must wait until the writer task has sent the rest, and
    // the chunk must arrive whole once the peer reads, with no later write
    // to push it out.
    write_chunk_waits_for_a_late_reader(true, 200_000);
}

#[test]
fn write_chunk_copies_and_queues_what_rustls_did_not_take() {
    // 600 KB is more than rustls takes at once: the rest of the caller's
    // chunk is copied and queued; it arrives whole, in order.
    write_chunk_waits_for_a_late_reader(true, 600_000);
}

#[test]
fn write_chunk_over_tcp_copies_and_queues_what_the_socket_did_not_take() {
    // Plain TCP: the socket takes a few KB of the caller's chunk at once and
    // the rest is copied and queued; the call waits until it is sent.
    write_chunk_waits_for_a_late_reader(false, 600_000);
}

/// Writes one chunk of `len` patterned bytes over connections with small
/// socket buffers and no reader yet: `write_chunk` must not return before
/// the peer has read it, and the chunk must arrive byte for byte.
fn write_chunk_waits_for_a_late_reader(tls: bool, len: u32) {
    use msrp::engine::stream::Conn;
    use std::os::fd::AsRawFd;
    let small = |conn: &Conn| {
        let v: libc::c_int = 16 * 1024;
        for opt in [libc::SO_SNDBUF, libc::SO_RCVBUF] {
            // SAFETY: a valid socket descriptor and an int option.
            let r = unsafe {
                libc::setsockopt(
                    conn.tcp().as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&v as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(r, 0);
        }
    };
    let ctx = ctx();
    let scheme = if tls { "msrps" } else { "msrp" };
    let me = msrp::proto::uri::parse_path(&format!("{scheme}://127.0.0.1:1/me;tcp")).unwrap();
    let them = msrp::proto::uri::parse_path(&format!("{scheme}://127.0.0.1:9/them;tcp")).unwrap();
    let (ours, theirs) = ctx
        .block_on(T, async { Ok(conn_pair::conn_pair(tls).await) })
        .unwrap();
    small(&ours);
    small(&theirs);
    let c = Arc::new(Transport::start(
        &ctx,
        ours,
        me.clone(),
        them.clone(),
        false,
        None,
    ));
    let data: Vec<u8> = (0..len).map(|i| (i % 239) as u8).collect();
    let chunk = body_chunk(&c, &data);
    let (tx, rx) = std::sync::mpsc::channel();
    let h = {
        let (c, ctx) = (c.clone(), ctx.clone());
        std::thread::spawn(move || {
            let r = ctx.block_on(T, c.write_chunk(&chunk));
            tx.send(()).unwrap();
            r
        })
    };
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "write_chunk returned before the chunk was sent"
    );
    // Now the peer reads.
    let s = Transport::start(&ctx, theirs, them, me, false, None);
    let r = ctx
        .block_on(T, s.read_chunk(usize::MAX))
        .expect("the chunk arrives");
    assert!(r.chunk.data() == &data[..], "whole");
    h.join()
        .unwrap()
        .expect("write_chunk returns once it is sent");
}

/// The hostile-peers issue, item 1, over msrps: after the TLS handshake, a
/// connection that is not bound sends a SEND head for an unknown To-Path
/// and a body that never ends. The acceptor checks the To-Path on the head
/// (at most 16 KiB of body read first), answers 481 and closes: the peer
/// cannot go on writing. Before, the whole first chunk was read first.
#[test]
fn an_unbound_msrps_connection_with_an_endless_body_is_closed_after_its_head() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let io = |e: std::io::Error| Error::new(ErrorKind::Io, e.to_string());
    let ctx = ctx();
    let (acc, a_path, port, fa) = tls_acceptor(&ctx);
    let c_path = vec![Uri::parse("msrps://127.0.0.1:9/con;tcp").unwrap()];
    let acc2 = acc.clone();
    // The acceptor waits for another peer meanwhile (and keeps listening).
    let accepting = std::thread::spawn(move || {
        let until = std::time::Instant::now() + Duration::from_secs(3);
        let c = acc2.context().clone();
        c.block_on(T, acc2.complete_until(c_path, Some(until)))
    });
    let mut wrong = a_path.clone();
    wrong[0].session_id = Some("nosuchsession".into());
    let mut head = Vec::new();
    let mut send = make_chunk(
        &[Uri::parse("msrps://127.0.0.1:9/stranger;tcp").unwrap()],
        &wrong,
        &ChunkParams::default(),
    )
    .unwrap();
    send.set_content_type("application/octet-stream").unwrap();
    send.encode_start(&mut head);
    head.extend_from_slice(b"\r\n");
    let (sent, answer) = ctx
        .block_on(Duration::from_secs(30), async {
            let mut s = tls_client(port, fa).await?;
            s.write_all(&head).await.map_err(io)?;
            let junk = vec![b'j'; 64 * 1024];
            let mut sent = 0usize;
            let limit = 256 << 20;
            while sent < limit {
                match tokio::time::timeout(Duration::from_secs(3), s.write_all(&junk)).await {
                    Ok(Ok(())) => sent += junk.len(),
                    _ => break,
                }
            }
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut answer)).await;
            Ok((sent, answer))
        })
        .expect("the handshake");
    assert!(sent < 256 << 20, "the acceptor kept reading ({sent} bytes)");
    // (The 481 itself may be lost to the reset that closing with unread
    // bytes sends; the acceptor's own report names it.)
    let _ = answer;
    let e = accepting.join().unwrap().unwrap_err();
    assert!(e.msg.contains("481"), "{e}");
}
