//! SDP offer/answer for MSRP: roles, content types, CEMA, file transfer
//! direction, both sides through real SDP text.

use msrp::proto::negotiation::{
    FileTransfer, LocalMedia, Negotiated, answer, intersect_types, negotiate, offer,
};
use msrp::proto::sdp::{
    Direction, FileAttrs, FileSelector, MsrpMedia, Sdp, SdpFingerprint, Setup, minimal_sdp,
};
use msrp::proto::uri::{Host, parse_path};

fn alice(can_accept: bool) -> LocalMedia {
    LocalMedia {
        path: parse_path("msrp://192.0.2.1:7394/alice1;tcp").unwrap(),
        accept_types: vec!["text/plain".into(), "message/cpim".into()],
        can_accept,
        ..Default::default()
    }
}

fn bob(can_accept: bool) -> LocalMedia {
    LocalMedia {
        path: parse_path("msrp://198.51.100.2:8493/bob1;tcp").unwrap(),
        accept_types: vec!["*".into()],
        can_accept,
        ..Default::default()
    }
}

/// Through SDP text, as a SIP stack would carry it.
fn wire(m: &MsrpMedia) -> MsrpMedia {
    let text = minimal_sdp("x", 1, m);
    Sdp::parse(&text).unwrap().msrp_media().unwrap().remove(0).1
}

/// Offer from `a`, answer from `b`, and what each side settles.
fn exchange(a: &LocalMedia, b: &LocalMedia) -> (MsrpMedia, MsrpMedia, Negotiated, Negotiated) {
    let o = offer(a).unwrap();
    let got_o = wire(&o);
    let ans = answer(b, &got_o).unwrap();
    let got_a = wire(&ans);
    let na = negotiate(&o, &got_a, true).unwrap();
    let nb = negotiate(&ans, &got_o, false).unwrap();
    assert_ne!(na.active, nb.active, "exactly one side connects");
    assert_eq!(na.remote_path, b.path);
    assert_eq!(nb.remote_path, a.path);
    (o, ans, na, nb)
}

/// RFC 6135 §4.2.2: an offerer that can take a connection offers actpass
/// (never passive); the answerer answers passive when it can take one too,
/// else active; an offerer that cannot offers active.
#[test]
fn setup_roles() {
    let (o, ans, na, nb) = exchange(&alice(true), &bob(true));
    assert_eq!(
        (o.setup, ans.setup),
        (Some(Setup::ActPass), Some(Setup::Passive))
    );
    assert!(na.active && !nb.active);
    assert_eq!(
        na.connect_to,
        (
            "198.51.100.2"
                .parse::<std::net::Ipv4Addr>()
                .map(Host::V4)
                .unwrap(),
            8493
        ),
        "the first hop of the peer's path"
    );
    let (_, ans, na, nb) = exchange(&alice(true), &bob(false));
    assert_eq!(ans.setup, Some(Setup::Active));
    assert!(
        !na.active && nb.active,
        "the answerer behind a NAT connects"
    );
    let (o, ans, na, _) = exchange(&alice(false), &bob(true));
    assert_eq!(
        (o.setup, ans.setup),
        (Some(Setup::Active), Some(Setup::Passive))
    );
    assert!(na.active);
    // RFC 4975 §5.4: a peer without a=setup (or with holdconn, which RFC
    // 6135 §4.2.1 says to ignore) — the offerer connects.
    for setup in [None, Some(Setup::HoldConn)] {
        let mut o = offer(&alice(true)).unwrap();
        o.setup = setup;
        let ans = answer(&bob(true), &o).unwrap();
        assert_eq!(ans.setup, Some(Setup::Passive));
        assert!(!negotiate(&ans, &o, false).unwrap().active);
        let mut plain = ans.clone();
        plain.setup = None;
        assert!(negotiate(&o, &plain, true).unwrap().active);
    }
}

/// RFC 4975 §8.6: explicit types and wildcards.
#[test]
fn content_types_intersect_with_wildcards() {
    let v = |s: &[&str]| s.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    assert_eq!(
        intersect_types(&v(&["text/plain", "message/cpim"]), &v(&["*"])),
        v(&["text/plain", "message/cpim"])
    );
    assert_eq!(
        intersect_types(&v(&["*"]), &v(&["text/plain", "text/html"])),
        v(&["text/plain", "text/html"])
    );
    assert_eq!(
        intersect_types(&v(&["text/*"]), &v(&["text/plain", "image/png"])),
        v(&["text/plain"])
    );
    assert_eq!(intersect_types(&v(&["*"]), &v(&["*"])), v(&["*"]));
    assert!(intersect_types(&v(&["text/plain"]), &v(&["image/png"])).is_empty());
    // Nothing in common: the offer cannot be answered (SIP would say 488).
    let mut only_png = bob(true);
    only_png.accept_types = v(&["image/png"]);
    let e = answer(&only_png, &offer(&alice(true)).unwrap()).unwrap_err();
    assert!(e.0.contains("no content type in common"), "{e}");
    // What the peer accepts and its max-size reach the negotiation.
    let mut a = alice(true);
    a.max_size = Some(4096);
    let (_, _, _, nb) = exchange(&a, &bob(true));
    assert_eq!(nb.peer_accept_types, v(&["text/plain", "message/cpim"]));
    assert_eq!(nb.peer_max_size, Some(4096));
}

fn picture() -> FileAttrs {
    FileAttrs {
        selector: Some(FileSelector {
            name: Some("My cool picture.jpg".into()),
            media_type: Some("image/jpeg".into()),
            size: Some(4092),
            hash: Some((
                "sha-1".into(),
                "72:24:5F:E8:65:3D:DA:F3:71:36:2F:86:D4:71:91:3E:E4:A2:CE:2E".into(),
            )),
        }),
        transfer_id: Some("Q6LMoGymJdh0IKIgD6wD0jkcfgva4xvE".into()),
        ..Default::default()
    }
}

/// RFC 5547 §8.2 and §8.3: a file offered for sending is sendonly and
/// answered recvonly with the same selector and id; a file asked for is
/// recvonly and answered sendonly — each side learns whether it sends.
#[test]
fn file_transfer_directions() {
    let mut a = alice(true);
    a.file = Some(FileTransfer {
        send: true,
        attrs: picture(),
    });
    let (o, ans, na, nb) = exchange(&a, &bob(true));
    assert_eq!(o.direction, Some(Direction::SendOnly));
    assert_eq!(ans.direction, Some(Direction::RecvOnly));
    assert_eq!(ans.file.selector, picture().selector);
    assert_eq!(ans.file.transfer_id, picture().transfer_id);
    assert!(na.file.as_ref().unwrap().send);
    assert!(!nb.file.as_ref().unwrap().send);
    assert_eq!(nb.file.as_ref().unwrap().attrs.selector, picture().selector);
    a.file = Some(FileTransfer {
        send: false,
        attrs: picture(),
    });
    let (o, ans, na, nb) = exchange(&a, &bob(true));
    assert_eq!(o.direction, Some(Direction::RecvOnly));
    assert_eq!(ans.direction, Some(Direction::SendOnly));
    assert!(!na.file.unwrap().send);
    assert!(nb.file.unwrap().send);
    // A file offer that says neither is refused.
    let mut bad = offer(&a).unwrap();
    bad.direction = None;
    assert!(answer(&bob(true), &bad).is_err());
}

/// RFC 6714 §4: when offer and answer both carry msrp-cema, the active
/// side connects to the peer's c=/m= address (an SBC), not the path's
/// host; with a relay the c=/m= lines show the relay.
#[test]
fn cema_connects_to_the_c_and_m_address() {
    let mut a = alice(true);
    a.cema = true;
    let mut b = bob(true);
    b.cema = true;
    let mut o = offer(&a).unwrap();
    assert!(o.cema);
    let mut ans = answer(&b, &o).unwrap();
    assert!(ans.cema);
    // An SBC on the way rewrote the answer's c= and m= lines.
    ans.connection.as_mut().unwrap().address = "203.0.113.9".into();
    ans.port = 40000;
    let na = negotiate(&o, &wire(&ans), true).unwrap();
    assert!(na.active);
    assert_eq!(
        na.connect_to,
        (Host::V4("203.0.113.9".parse().unwrap()), 40000)
    );
    // Without CEMA on both sides the path decides.
    o.cema = false;
    let ans = answer(&b, &o).unwrap();
    assert!(!ans.cema, "CEMA is answered only when offered");
    let na = negotiate(&o, &ans, true).unwrap();
    assert_eq!(na.connect_to.1, 8493);
    // A relay: c=/m= show the first hop under CEMA.
    let mut r = alice(true);
    r.cema = true;
    r.path = parse_path("msrp://relay.example.com:2855/r1;tcp msrp://192.0.2.1:7394/alice1;tcp")
        .unwrap();
    let o = offer(&r).unwrap();
    assert_eq!(o.connection.as_ref().unwrap().address, "relay.example.com");
    assert_eq!(o.port, 2855);
}

/// msrps: the TLS media line, our fingerprints offered, the peer's
/// reaching the negotiation; an msrp path cannot answer an msrps offer.
#[test]
fn tls_and_fingerprints() {
    let fp = SdpFingerprint::parse("sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF").unwrap();
    let mut a = alice(true);
    a.path = parse_path("msrps://192.0.2.1:7394/alice1;tcp").unwrap();
    a.fingerprints = vec![fp.clone()];
    let mut b = bob(true);
    b.path = parse_path("msrps://198.51.100.2:8493/bob1;tcp").unwrap();
    b.fingerprints = vec![fp.clone(), fp.clone()];
    let (o, _, na, nb) = exchange(&a, &b);
    assert_eq!(o.transport.proto(), "TCP/TLS/MSRP");
    assert!(na.tls && nb.tls);
    assert_eq!(nb.peer_fingerprints, vec![fp.clone()]);
    assert_eq!(na.peer_fingerprints.len(), 2);
    let e = answer(&bob(true), &o).unwrap_err();
    assert!(e.0.contains("msrps"), "{e}");
    // A refused media line (port 0).
    let mut refused = answer(&b, &o).unwrap();
    refused.port = 0;
    assert!(negotiate(&o, &refused, true).is_err());
}
