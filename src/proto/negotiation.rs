//! SDP offer/answer for MSRP, sans-IO: the offer from our settings, the
//! answer to a peer's offer, and what an offer and its answer settle —
//! who connects, the paths, where to connect, TLS, the peer's
//! fingerprints, content types and size limit, the file transfer.
//!
//! The rules: the media line (RFC 4975 §8.1), content types (§8.6),
//! connection roles by `a=setup` (RFC 6135 §4.2, with RFC 4975 §5.4's
//! default when the peer sends none), connecting to the `c=`/`m=` address
//! when both sides use CEMA (RFC 6714 §4), and the direction of a file
//! transfer (RFC 5547 §8).

use super::sdp::{
    AddrType, Connection, Direction, FileAttrs, MsrpMedia, MsrpTransport, SdpFingerprint, Setup,
};
use super::session::accepts;
use super::uri::{Host, Uri};

/// Our side of an MSRP media description.
#[derive(Clone, Debug, Default)]
pub struct LocalMedia {
    /// Our full path (the relays' Use-Path first, our URI last), as the
    /// connector prepared it.
    pub path: Vec<Uri>,
    /// Media types we accept (RFC 4975 §8.6; `*` when empty).
    pub accept_types: Vec<String>,
    /// Media types we accept only wrapped.
    pub accept_wrapped_types: Vec<String>,
    /// The largest message we take, if limited.
    pub max_size: Option<u64>,
    /// Our certificate's fingerprints, for `msrps`.
    pub fingerprints: Vec<SdpFingerprint>,
    /// We can take a connection at our path's address (not behind a NAT
    /// or through a relay): `actpass` in offers and `passive` in answers;
    /// otherwise `active` (RFC 6135 §4.2.2).
    pub can_accept: bool,
    /// We support CEMA (RFC 6714).
    pub cema: bool,
    /// A file we offer to send or ask for.
    pub file: Option<FileTransfer>,
    /// We are a chat room (RFC 7701 §8): `a=chatroom` with these tokens
    /// (`nickname`, `private-messages`, …).
    pub chatroom: Option<Vec<String>>,
}

/// A file transfer (RFC 5547).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileTransfer {
    /// We send the file (`sendonly` in our offer); else we ask for it.
    pub send: bool,
    /// The file's attributes (at least a file-selector and an id).
    pub attrs: FileAttrs,
}

/// Why an offer or answer cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegotiationError(pub String);

impl std::fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NegotiationError {}

fn fail<T>(what: impl Into<String>) -> Result<T, NegotiationError> {
    Err(NegotiationError(what.into()))
}

/// What an offer and its answer settled, seen from our side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// We open the connection and send the binding SEND.
    pub active: bool,
    /// Our path.
    pub local_path: Vec<Uri>,
    /// The peer's path.
    pub remote_path: Vec<Uri>,
    /// Where an active side connects: the first hop of the peer's path, or
    /// the peer's `c=` address and `m=` port when both sides use CEMA.
    pub connect_to: (Host, u16),
    /// The connection is `msrps`.
    pub tls: bool,
    /// The peer's certificate fingerprints (any may match).
    pub peer_fingerprints: Vec<SdpFingerprint>,
    /// What the peer accepts (RFC 4975 §8.6): we may send only these.
    pub peer_accept_types: Vec<String>,
    /// What the peer accepts wrapped.
    pub peer_accept_wrapped_types: Vec<String>,
    /// The largest message the peer takes.
    pub peer_max_size: Option<u64>,
    /// Our direction (what we may do).
    pub direction: Direction,
    /// The file transfer, when the media is one.
    pub file: Option<FileTransfer>,
    /// The peer is a chat room (RFC 7701 §8): its `a=chatroom` tokens.
    pub peer_chatroom: Option<Vec<String>>,
}

/// The m-line protocol for our URI: RFC 7977 §5.2.2 defines none for
/// WebSocket (a `;ws` URI goes in the path; the m-line says TCP/MSRP or
/// TCP/TLS/MSRP, what relays speak).
fn transport_of(uri: &Uri) -> MsrpTransport {
    if uri.secure {
        MsrpTransport::Tls
    } else {
        MsrpTransport::Tcp
    }
}

fn connection_of(uri: &Uri) -> Connection {
    match &uri.host {
        Host::V4(a) => Connection {
            addr_type: AddrType::Ip4,
            address: a.to_string(),
        },
        Host::V6(a) => Connection {
            addr_type: AddrType::Ip6,
            address: a.to_string(),
        },
        Host::Name(n) => Connection {
            addr_type: AddrType::Ip4,
            address: n.clone(),
        },
    }
}

/// The media description for our side: `m=`/`c=` from our URI (RFC 4975
/// §8.1), or from the first relay under CEMA (RFC 6714 §4.2), then the
/// attributes.
fn describe(local: &LocalMedia, setup: Setup) -> Result<MsrpMedia, NegotiationError> {
    let Some(ours) = local.path.last() else {
        return fail("the local path is empty: prepare the connector first");
    };
    if !ours.transport.eq_ignore_ascii_case("tcp") && !ours.transport.eq_ignore_ascii_case("ws") {
        return fail(format!(
            "our path uses the transport '{}': libmsrp carries MSRP over TCP and WebSocket (tcp, ws) only",
            ours.transport
        ));
    }
    let shown = if local.cema { &local.path[0] } else { ours };
    let port = shown.port.unwrap_or(super::uri::DEFAULT_PORT);
    let mut m = MsrpMedia::new(port, transport_of(ours), local.path.clone());
    m.connection = Some(connection_of(shown));
    m.accept_types = if local.accept_types.is_empty() {
        vec!["*".into()]
    } else {
        local.accept_types.clone()
    };
    m.accept_wrapped_types = local.accept_wrapped_types.clone();
    m.max_size = local.max_size;
    m.setup = Some(setup);
    m.fingerprints = if ours.secure {
        local.fingerprints.clone()
    } else {
        Vec::new()
    };
    m.cema = local.cema;
    m.chatroom = local.chatroom.clone();
    Ok(m)
}

/// Our offer (RFC 6135 §4.2.2: `actpass` when we can take a connection,
/// else `active`; never `passive`). A file we send is offered `sendonly`,
/// one we ask for `recvonly` (RFC 5547 §8.2).
pub fn offer(local: &LocalMedia) -> Result<MsrpMedia, NegotiationError> {
    let setup = if local.can_accept {
        Setup::ActPass
    } else {
        Setup::Active
    };
    let mut m = describe(local, setup)?;
    if let Some(f) = &local.file {
        m.direction = Some(if f.send {
            Direction::SendOnly
        } else {
            Direction::RecvOnly
        });
        m.file = f.attrs.clone();
    }
    Ok(m)
}

/// The types both sides can use (RFC 4975 §8.6): each of ours the peer
/// accepts (its `*` and `type/*` match), and each of the peer's explicit
/// types our wildcards cover.
pub fn intersect_types(ours: &[String], theirs: &[String]) -> Vec<String> {
    let mut out: Vec<String> = ours
        .iter()
        .filter(|t| accepts(theirs, t) || (t.ends_with('*') && theirs.iter().any(|p| p == *t)))
        .cloned()
        .collect();
    for t in theirs {
        if !t.contains('*') && accepts(ours, t) && !out.iter().any(|o| o.eq_ignore_ascii_case(t)) {
            out.push(t.clone());
        }
    }
    out
}

/// Our answer to `offer` (RFC 6135 §4.2.2: `passive` when we can take a
/// connection and the offer allows it, else `active`; RFC 4975 §5.4: an
/// offer without `a=setup` — or with `holdconn`, which RFC 6135 §4.2.1
/// says to ignore — makes the offerer active). Content types are the
/// intersection (none: the offer is refused, as SIP's 488); a file
/// transfer is answered in the reverse direction with the offer's file
/// attributes (RFC 5547 §8.3); CEMA is answered only when offered.
pub fn answer(local: &LocalMedia, offer: &MsrpMedia) -> Result<MsrpMedia, NegotiationError> {
    let setup = match offer.setup {
        Some(Setup::Active) => Setup::Passive,
        Some(Setup::Passive) => Setup::Active,
        Some(Setup::ActPass) if local.can_accept => Setup::Passive,
        Some(Setup::ActPass) => Setup::Active,
        None | Some(Setup::HoldConn) => Setup::Passive,
    };
    // (An offer of TCP/WS/MSRP or TCP/WSS/MSRP, which some WebSocket
    // clients send although RFC 7977 §5.2.2 asks for TCP/MSRP or
    // TCP/TLS/MSRP, is taken as the latter: the path says how to connect.)
    let ours_secure = local.path.last().is_some_and(|u| u.secure);
    let theirs_secure = matches!(offer.transport, MsrpTransport::Tls | MsrpTransport::Wss);
    if ours_secure != theirs_secure {
        return fail(format!(
            "the offer is {} but our path is {}: prepare the connector with an {} URI",
            offer.transport.proto(),
            if ours_secure { "msrps" } else { "msrp" },
            if theirs_secure { "msrps" } else { "msrp" },
        ));
    }
    let local = LocalMedia {
        cema: local.cema && offer.cema,
        ..local.clone()
    };
    let mut m = describe(&local, setup)?;
    let peer_types = if offer.accept_types.is_empty() {
        vec!["*".to_owned()]
    } else {
        offer.accept_types.clone()
    };
    m.accept_types = intersect_types(&m.accept_types, &peer_types);
    if m.accept_types.is_empty() {
        return fail(format!(
            "no content type in common: the offer accepts {}, we accept {}",
            peer_types.join(" "),
            local.accept_types.join(" ")
        ));
    }
    if offer.file.selector.is_some() {
        m.direction = Some(match offer.direction {
            Some(Direction::SendOnly) => Direction::RecvOnly,
            Some(Direction::RecvOnly) => Direction::SendOnly,
            _ => {
                return fail(
                    "a file transfer offer is neither sendonly nor recvonly (RFC 5547 §8.2)",
                );
            }
        });
        m.file = FileAttrs {
            selector: offer.file.selector.clone(),
            transfer_id: offer.file.transfer_id.clone(),
            ..FileAttrs::default()
        };
    } else if let Some(d) = offer.direction {
        m.direction = Some(match d {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            other => other,
        });
    }
    Ok(m)
}

/// What our media description `ours` and the peer's `theirs` settled;
/// `we_offered` says which one was the offer.
pub fn negotiate(
    ours: &MsrpMedia,
    theirs: &MsrpMedia,
    we_offered: bool,
) -> Result<Negotiated, NegotiationError> {
    if theirs.port == 0 {
        return fail("the peer refused the MSRP media (port 0)");
    }
    let (offer, answer) = if we_offered {
        (ours, theirs)
    } else {
        (theirs, ours)
    };
    // RFC 6135 §4.2: the answer's setup decides; without one (RFC 4975
    // §5.4) the offerer is active.
    let offerer_active = !matches!(answer.setup, Some(Setup::Active));
    let active = offerer_active == we_offered;
    let Some(first) = theirs.path.first() else {
        return fail("the peer's path is empty");
    };
    let cema = offer.cema && answer.cema;
    let connect_to = match (&theirs.connection, cema) {
        (Some(c), true) => {
            let host = Host::parse(&c.address).map_err(|e| {
                NegotiationError(format!("the peer's c= address '{}': {e}", c.address))
            })?;
            (host, theirs.port)
        }
        _ => (
            first.host.clone(),
            first.port.unwrap_or(super::uri::DEFAULT_PORT),
        ),
    };
    let file = (theirs.file.selector.is_some() || ours.file.selector.is_some()).then(|| {
        let dir = ours.direction.unwrap_or(Direction::SendRecv);
        FileTransfer {
            send: dir == Direction::SendOnly,
            attrs: if we_offered {
                ours.file.clone()
            } else {
                theirs.file.clone()
            },
        }
    });
    Ok(Negotiated {
        active,
        local_path: ours.path.clone(),
        remote_path: theirs.path.clone(),
        connect_to,
        tls: matches!(theirs.transport, MsrpTransport::Tls | MsrpTransport::Wss),
        peer_fingerprints: theirs.fingerprints.clone(),
        peer_accept_types: theirs.accept_types.clone(),
        peer_accept_wrapped_types: theirs.accept_wrapped_types.clone(),
        peer_max_size: theirs.max_size,
        direction: ours.direction.unwrap_or(Direction::SendRecv),
        file,
        peer_chatroom: theirs.chatroom.clone(),
    })
}
