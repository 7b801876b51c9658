//! Protocol rules of the transport and connection layer, sans-IO: comparing
//! paths, the binding SEND and its check, the reference's `make_chunk`
//! defaults, the incoming-SEND check, and cutting received chunks into the
//! reference's "virtual" segments.

use super::chunk::{Chunk, ChunkError, Flag};
use super::header::{ByteRange, HeaderName, ReportMode};
use super::ids;
use super::uri::Uri;

/// Whether two paths are equal URI by URI (RFC 4975 §6.1).
pub fn paths_equivalent(a: &[Uri], b: &[Uri]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equivalent(y))
}

/// Session matching of draft-ietf-simple-msrp-sessmatch: only the session
/// ids of the URIs are compared (hosts and ports may differ, as behind NATs
/// and B2BUAs).
pub fn paths_session_match(a: &[Uri], b: &[Uri]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.session_id.is_some() && x.session_id == y.session_id)
}

/// Whether two paths name the same session: URI by URI (RFC 4975 §6.1), or
/// by session ids only when `sessmatch` (reference `use_sessmatch`, for
/// peers behind NATs that rewrite addresses).
pub fn paths_match(a: &[Uri], b: &[Uri], sessmatch: bool) -> bool {
    if sessmatch {
        paths_session_match(a, b)
    } else {
        paths_equivalent(a, b)
    }
}

/// The To-Path of requests we send (RFC 4976 §5): our own relays (the full
/// local path without its last URI, which is ours) followed by the peer's
/// full path. Without relays it is simply the peer's path.
pub fn outgoing_to_path(local: &[Uri], remote: &[Uri]) -> Vec<Uri> {
    let relays = &local[..local.len().saturating_sub(1)];
    relays.iter().chain(remote).cloned().collect()
}

/// The From-Path of requests we send: our own URI, the last of the full
/// local path (relays put themselves in front as the request travels).
pub fn outgoing_from_path(local: &[Uri]) -> &[Uri] {
    &local[local.len().saturating_sub(1)..]
}

/// The From-Path an incoming request carries when it comes from the peer:
/// our relays in reverse order (the last one touched it first), then the
/// peer's full path.
pub fn incoming_from_path(local: &[Uri], remote: &[Uri]) -> Vec<Uri> {
    let relays = &local[..local.len().saturating_sub(1)];
    relays.iter().rev().chain(remote).cloned().collect()
}

/// How an incoming binding or SEND was judged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathCheck {
    /// The chunk belongs to this connection.
    Ok,
    /// Answer with this code (400 malformed, 481 not ours); the text says why.
    Reject(u16, String),
}

/// Reference `check_incoming_SEND_chunk`: To-Path must be our own URI and
/// From-Path our relays (reversed) followed by the peer's full path (§6.1
/// comparison, or session ids only with `sessmatch`). A path we cannot
/// parse is a 400; a different one a 481.
pub fn check_incoming(chunk: &Chunk, local: &[Uri], remote: &[Uri], sessmatch: bool) -> PathCheck {
    let expected_from = incoming_from_path(local, remote);
    let remote = expected_from.as_slice();
    let local = outgoing_from_path(local);
    let to = match chunk.to_path() {
        Ok(p) => p,
        Err(e) => return PathCheck::Reject(400, e.to_string()),
    };
    let from = match chunk.from_path() {
        Ok(p) => p,
        Err(e) => return PathCheck::Reject(400, e.to_string()),
    };
    let same = |a: &[Uri], b: &[Uri]| paths_match(a, b, sessmatch);
    if !same(&to, local) {
        return PathCheck::Reject(
            481,
            format!(
                "To-Path {} is not this session's path {}",
                super::uri::format_path(&to),
                super::uri::format_path(local)
            ),
        );
    }
    if !same(&from, remote) {
        return PathCheck::Reject(
            481,
            format!(
                "From-Path {} is not the expected peer path {}",
                super::uri::format_path(&from),
                super::uri::format_path(remote)
            ),
        );
    }
    PathCheck::Ok
}

/// The empty SEND that binds a connection (RFC 4975 §5.4): To-Path is the
/// peer's full path, From-Path ours, `Byte-Range: 1-0/0`, a fresh Message-ID.
pub fn binding_send(local: &[Uri], remote: &[Uri]) -> Chunk {
    let mut c = Chunk::request("SEND").expect("SEND is a valid method");
    c.set_to_path(&outgoing_to_path(local, remote));
    c.set_from_path(outgoing_from_path(local));
    c.set_message_id(&ids::message_id())
        .expect("generated ids are valid");
    c.set_byte_range(ByteRange {
        start: 1,
        end: Some(0),
        total: Some(0),
    })
    .expect("1-0/0 is valid");
    c
}

/// Requests whose responses someone awaits, outside a session's own
/// transactions (a relay connection's AUTH refreshes while a session reads
/// the connection): a response goes to whoever sent the request with its
/// transaction id (RFC 4975 §7.2); requests and other responses are not
/// claimed. `W` is what the driver wakes with the response.
#[derive(Debug)]
pub struct Awaited<W> {
    waiting: std::collections::HashMap<String, W>,
}

/// What [`Awaited::claim`] did with a chunk.
#[derive(Debug)]
pub enum Claim<W> {
    /// A response someone awaits: who, and the response.
    Taken(W, Chunk),
    /// Not awaited: the chunk, given back.
    NotAwaited(Chunk),
}

impl<W> Default for Awaited<W> {
    fn default() -> Self {
        Awaited {
            waiting: std::collections::HashMap::new(),
        }
    }
}

impl<W> Awaited<W> {
    /// `w` awaits the response to the request with transaction id `tid`.
    pub fn expect(&mut self, tid: &str, w: W) {
        self.waiting.insert(tid.to_owned(), w);
    }

    /// Stops awaiting `tid`; whether it was awaited.
    pub fn forget(&mut self, tid: &str) -> bool {
        self.waiting.remove(tid).is_some()
    }

    /// Takes `c` for whoever awaits it, or gives it back.
    pub fn claim(&mut self, c: Chunk) -> Claim<W> {
        if c.is_request() {
            return Claim::NotAwaited(c);
        }
        match self.waiting.remove(c.transaction_id()) {
            Some(w) => Claim::Taken(w, c),
            None => Claim::NotAwaited(c),
        }
    }

    /// Nobody awaits anything any more (the connection is gone).
    pub fn clear(&mut self) {
        self.waiting.clear();
    }
}

/// Parameters of the reference's `make_chunk` (requests).
#[derive(Clone, Debug, Default)]
pub struct ChunkParams<'a> {
    /// Method; `None` means SEND.
    pub method: Option<&'a str>,
    /// Transaction id; `None` means a random one.
    pub transaction_id: Option<&'a str>,
    /// Message-ID; `None` means a random one.
    pub message_id: Option<&'a str>,
    /// The payload of this chunk.
    pub data: &'a [u8],
    /// First byte of this chunk in the message (1-based); 0 means 1.
    pub start: u64,
    /// Total message length; `None` computes it as if this chunk ends the
    /// message; `Some(None)` writes `*`.
    pub total: Option<Option<u64>>,
    /// Continuation flag; `None` picks `$` when this chunk ends the message, `+` otherwise.
    pub flag: Option<Flag>,
}

/// Reference `make_chunk`: To-Path, From-Path, Message-ID and Byte-Range
/// filled from the transport's paths and the parameters.
pub fn make_chunk(local: &[Uri], remote: &[Uri], p: &ChunkParams<'_>) -> Result<Chunk, ChunkError> {
    let mut c = match p.transaction_id {
        Some(t) => Chunk::request_with_id(t, p.method.unwrap_or("SEND"))?,
        None => Chunk::request(p.method.unwrap_or("SEND"))?,
    };
    c.set_to_path(&outgoing_to_path(local, remote));
    c.set_from_path(outgoing_from_path(local));
    match p.message_id {
        Some(m) => c.set_message_id(m)?,
        None => c.set_message_id(&ids::message_id())?,
    }
    let start = p.start.max(1);
    if start > super::header::MAX_NUMBER {
        return Err(ChunkError::Header(super::header::HeaderError {
            name: "Byte-Range".into(),
            what: "start is not a number below 2^63".into(),
        }));
    }
    let len = p.data.len() as u64;
    let end = start + len - 1;
    let total = match p.total {
        None => Some(end),
        Some(t) => t,
    };
    c.set_byte_range(ByteRange {
        start,
        end: Some(end),
        total,
    })?;
    c.set_data(p.data);
    let last = total == Some(end);
    c.set_flag(p.flag.unwrap_or(if last { Flag::End } else { Flag::More }));
    Ok(c)
}

/// The Failure-Report mode in force; a malformed value counts as the default `yes`.
fn failure_mode(chunk: &Chunk) -> ReportMode {
    chunk.failure_report().unwrap_or(ReportMode::Yes)
}

/// Whether a request asks for a response: Failure-Report `no` and `partial`
/// want no 200 (RFC 4975 §7.2); REPORTs are never answered.
pub fn wants_success_response(chunk: &Chunk) -> bool {
    chunk.method() != Some("REPORT") && failure_mode(chunk) == ReportMode::Yes
}

/// Whether a request may get a negative response (anything but Failure-Report `no`, and not a REPORT).
pub fn wants_error_response(chunk: &Chunk) -> bool {
    chunk.method() != Some("REPORT") && failure_mode(chunk) != ReportMode::No
}

/// Cuts a received chunk into the reference's "virtual" segments: given the
/// head of a chunk, the bytes of it already returned (`offset`) and the next
/// piece, builds the segment chunk with its Byte-Range moved to the piece and
/// the flag `+` (or the real flag when `last`).
pub fn segment(head: &Chunk, offset: u64, piece: &[u8], last: bool, real_flag: Flag) -> Chunk {
    let mut c = head.clone();
    c.set_data(piece);
    c.set_flag(if last { real_flag } else { Flag::More });
    if let Ok(Some(r)) = head.byte_range() {
        let start = r.start + offset;
        let end = if last && r.end.is_none() {
            None
        } else {
            Some(start + piece.len() as u64 - 1)
        };
        // The head was valid, and the moved range stays inside it.
        let _ = c.set_byte_range(ByteRange {
            start,
            end,
            total: r.total,
        });
    }
    c
}

/// Whether `h` is a header that marks the chunk as a binding or keep-alive
/// (an empty SEND): no body and Byte-Range `1-0/0` or none.
pub fn is_empty_send(chunk: &Chunk) -> bool {
    chunk.method() == Some("SEND")
        && chunk.size() == 0
        && chunk.header(HeaderName::ContentType).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::uri::parse_path;

    fn path(s: &str) -> Vec<Uri> {
        parse_path(s).unwrap()
    }

    #[test]
    fn binding_send_is_an_empty_send_with_both_paths() {
        let local = path("msrp://127.0.0.1:1/a;tcp");
        let remote = path("msrp://127.0.0.1:2/b;tcp");
        let c = binding_send(&local, &remote);
        assert!(is_empty_send(&c));
        assert_eq!(c.header(HeaderName::ByteRange), Some("1-0/0"));
        assert!(!c.has_body());
        // From the peer's side, the paths are swapped.
        assert_eq!(check_incoming(&c, &remote, &local, false), PathCheck::Ok);
        assert!(matches!(
            check_incoming(&c, &local, &remote, false),
            PathCheck::Reject(481, _)
        ));
    }

    #[test]
    fn sessmatch_ignores_hosts_but_not_session_ids() {
        let c = binding_send(
            &path("msrp://10.0.0.1:1/a;tcp"),
            &path("msrp://10.0.0.2:2/b;tcp"),
        );
        let me = path("msrp://192.168.1.9:7/b;tcp");
        let peer = path("msrp://172.16.0.1:9/a;tcp");
        assert!(matches!(
            check_incoming(&c, &me, &peer, false),
            PathCheck::Reject(481, _)
        ));
        assert_eq!(check_incoming(&c, &me, &peer, true), PathCheck::Ok);
        let other = path("msrp://172.16.0.1:9/zz;tcp");
        assert!(matches!(
            check_incoming(&c, &me, &other, true),
            PathCheck::Reject(481, _)
        ));
    }

    #[test]
    fn malformed_paths_get_400() {
        let mut c = Chunk::request("SEND").unwrap();
        c.push_header_unchecked(HeaderName::ToPath, "", "garbage");
        c.push_header_unchecked(HeaderName::FromPath, "", "msrp://a:1/s;tcp");
        let p = path("msrp://a:1/s;tcp");
        assert!(matches!(
            check_incoming(&c, &p, &p, false),
            PathCheck::Reject(400, _)
        ));
    }

    #[test]
    fn make_chunk_fills_byte_range_and_flag_like_the_reference() {
        let l = path("msrp://a:1/s;tcp");
        let r = path("msrp://b:1/t;tcp");
        let c = make_chunk(
            &l,
            &r,
            &ChunkParams {
                data: b"hello",
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.header(HeaderName::ByteRange), Some("1-5/5"));
        assert_eq!(c.flag(), Flag::End);
        assert_eq!(c.to_path().unwrap(), r);
        assert!(c.message_id().is_some());
        let c = make_chunk(
            &l,
            &r,
            &ChunkParams {
                data: b"hello",
                start: 6,
                total: Some(Some(20)),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.header(HeaderName::ByteRange), Some("6-10/20"));
        assert_eq!(c.flag(), Flag::More);
        let c = make_chunk(
            &l,
            &r,
            &ChunkParams {
                data: b"x",
                total: Some(None),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.header(HeaderName::ByteRange), Some("1-1/*"));
        assert_eq!(c.flag(), Flag::More);
        let c = make_chunk(&l, &r, &ChunkParams::default()).unwrap();
        assert_eq!(c.header(HeaderName::ByteRange), Some("1-0/0"));
        assert!(
            make_chunk(
                &l,
                &r,
                &ChunkParams {
                    method: Some("bad"),
                    ..Default::default()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn segments_move_the_byte_range() {
        let l = path("msrp://a:1/s;tcp");
        let r = path("msrp://b:1/t;tcp");
        let mut head = make_chunk(
            &l,
            &r,
            &ChunkParams {
                data: b"0123456789",
                start: 11,
                total: Some(Some(30)),
                ..Default::default()
            },
        )
        .unwrap();
        head.set_data(b"");
        let s1 = segment(&head, 0, b"0123", false, Flag::End);
        assert_eq!(s1.header(HeaderName::ByteRange), Some("11-14/30"));
        assert_eq!(s1.flag(), Flag::More);
        let s2 = segment(&head, 4, b"456789", true, Flag::End);
        assert_eq!(s2.header(HeaderName::ByteRange), Some("15-20/30"));
        assert_eq!(s2.flag(), Flag::End);
    }

    #[test]
    fn response_rules_follow_failure_report() {
        let mut c = Chunk::request("SEND").unwrap();
        assert!(wants_success_response(&c) && wants_error_response(&c));
        c.set_failure_report(ReportMode::Partial);
        assert!(!wants_success_response(&c) && wants_error_response(&c));
        c.set_failure_report(ReportMode::No);
        assert!(!wants_success_response(&c) && !wants_error_response(&c));
        let r = Chunk::request("REPORT").unwrap();
        assert!(!wants_success_response(&r) && !wants_error_response(&r));
    }

    /// RFC 4975 §7.2: a response carries its request's transaction id; it
    /// goes to whoever awaits that id, once. Requests with the same id, and
    /// responses nobody awaits, are not taken.
    #[test]
    fn awaited_responses_are_claimed_by_transaction_id_once() {
        let mut a: Awaited<u8> = Awaited::default();
        a.expect("tid1", 1);
        a.expect("tid2", 2);
        let mut req = Chunk::request("SEND").unwrap();
        req.set_transaction_id("tid1").unwrap();
        assert!(
            matches!(a.claim(req), Claim::NotAwaited(_)),
            "a request is never a response"
        );
        let r1 = Chunk::response("tid1", 200, None).unwrap();
        match a.claim(r1.clone()) {
            Claim::Taken(w, c) => assert_eq!((w, c.code()), (1, Some(200))),
            other => panic!("{other:?}"),
        }
        assert!(matches!(a.claim(r1), Claim::NotAwaited(_)), "claimed once");
        assert!(a.forget("tid2"));
        assert!(!a.forget("tid2"));
        let r2 = Chunk::response("tid2", 200, None).unwrap();
        assert!(matches!(a.claim(r2), Claim::NotAwaited(_)));
    }
}
