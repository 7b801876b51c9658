//! Binding a connection to a session (RFC 4975 §5.4), sans-IO: the empty
//! SEND the active side sends and how its response is read, and how the
//! passive side judges the first chunk on a connection (one expected
//! session, or several on a shared listening port) and answers it. The
//! engine reads the chunks, writes the answers these rules make, and
//! closes the connection when they say so.

use super::chunk::Chunk;
use super::transport::{PathCheck, check_incoming};
use super::uri::{Uri, format_path};

pub use super::transport::{binding_send, paths_match};

/// Most body bytes of the first SEND read before its To-Path is checked:
/// the binding is read in parts of this size, so that a connection that is
/// not bound yet cannot make the process hold a large body (the
/// connection's read buffers come on top; see the reliability notes in the
/// docs).
pub const BIND_PART: usize = 16 * 1024;

/// Whether the binding SEND carries a message (RFC 4975 §5.4 allows it):
/// then it is given back to the transport for the session (or the
/// application reading the transport) to take and answer like any SEND.
/// `complete` says whether the chunk was read whole.
pub fn carries_body(chunk: &Chunk, complete: bool) -> bool {
    !complete || chunk.size() > 0 || chunk.content_type().is_some()
}

/// The response `req` gets with `code`, or `None` when its report headers
/// ask for none (RFC 4975 §7.2: Failure-Report `no` wants no response,
/// `partial` no 200; REPORTs are never answered).
pub fn reply(req: &Chunk, code: u16, comment: &str) -> Option<Chunk> {
    use super::transport::{wants_error_response, wants_success_response};
    let wanted = if (200..300).contains(&code) {
        wants_success_response(req)
    } else {
        wants_error_response(req)
    };
    wanted
        .then(|| req.make_response(code, Some(comment)).ok())
        .flatten()
}

/// What the response to our binding SEND says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answered {
    /// Not the response to the binding (a request, or another transaction):
    /// ignore it and wait on.
    NotYet,
    /// 200: the connection is bound.
    Bound,
    /// Any other code: the peer refused; the text says with what.
    Refused(String),
}

/// Reads `c`, received while waiting for the response to `bind`.
pub fn binding_answered(bind: &Chunk, c: &Chunk) -> Answered {
    if c.is_request() || c.transaction_id() != bind.transaction_id() {
        return Answered::NotYet;
    }
    match c.code() {
        Some(200) => Answered::Bound,
        code => Answered::Refused(format!(
            "the peer answered the binding SEND with {}{}",
            code.unwrap_or(0),
            c.comment().map(|s| format!(" {s}")).unwrap_or_default()
        )),
    }
}

/// How the passive side judges the first chunk on a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FirstChunk {
    /// Not a SEND: close without an answer.
    NotSend,
    /// The session's binding: send `reply` if any, or, when it carries a
    /// body (`carries_body`), give it back for the session to answer.
    Bound {
        /// The 200 to send (none when the chunk asks for none or carries a body).
        reply: Option<Chunk>,
        /// The chunk carries a message: give it back to be read again.
        carries_body: bool,
    },
    /// Not this session's (481) or malformed (400): send `reply` if any,
    /// then close.
    Refused {
        /// The code.
        code: u16,
        /// Why, for the log and the error.
        why: String,
        /// The response to send, when the chunk wants one.
        reply: Option<Chunk>,
    },
}

fn comment_for(code: u16) -> &'static str {
    match code {
        200 => "OK",
        481 => "No Such Session",
        _ => "Bad Request",
    }
}

/// Judges the first chunk on a connection accepted for one session, whose
/// paths are `local` and `remote` (RFC 4975 §5.4 and §7.3.1: To-Path must
/// be our URI, From-Path the peer's path).
pub fn judge_first(
    c: &Chunk,
    complete: bool,
    local: &[Uri],
    remote: &[Uri],
    sessmatch: bool,
) -> FirstChunk {
    if c.method() != Some("SEND") {
        return FirstChunk::NotSend;
    }
    match check_incoming(c, local, remote, sessmatch) {
        PathCheck::Ok => {
            let carries_body = carries_body(c, complete);
            FirstChunk::Bound {
                reply: if carries_body {
                    None
                } else {
                    reply(c, 200, comment_for(200))
                },
                carries_body,
            }
        }
        PathCheck::Reject(code, why) => FirstChunk::Refused {
            code,
            reply: reply(c, code, comment_for(code)),
            why,
        },
    }
}

/// What the first chunk on a shared listening port names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SharedFirst {
    /// Not a SEND: close without an answer.
    NotSend,
    /// A SEND whose paths cannot be read: answer `reply` (400) if any, close.
    Malformed(Option<Chunk>),
    /// A SEND for none of the expected URIs: answer `reply` (481) if any,
    /// close; the text says what it named.
    Unknown(String, Option<Chunk>),
    /// A SEND for `expected[index]`, from the peer path `from`: park it
    /// until the session's `complete` claims it by that path.
    Ours {
        /// Which of the expected local URIs it names.
        index: usize,
        /// The peer's From-Path.
        from: Vec<Uri>,
    },
}

/// Judges the first chunk on a connection to a listening port shared by
/// the sessions whose local URIs are `expected` (RFC 4975 §5.4: the To-Path
/// of the binding names the session).
pub fn judge_shared_first(c: &Chunk, expected: &[Uri], sessmatch: bool) -> SharedFirst {
    if c.method() != Some("SEND") {
        return SharedFirst::NotSend;
    }
    let (Ok(to), Ok(from)) = (c.to_path(), c.from_path()) else {
        return SharedFirst::Malformed(reply(c, 400, comment_for(400)));
    };
    let index = expected
        .iter()
        .position(|u| to.len() == 1 && paths_match(std::slice::from_ref(u), &to, sessmatch));
    match index {
        Some(index) => SharedFirst::Ours { index, from },
        None => SharedFirst::Unknown(
            format!("binding for unknown To-Path {}", format_path(&to)),
            reply(c, 481, comment_for(481)),
        ),
    }
}

/// The answer to a parked binding once the session claims it: a 200, or
/// nothing when it carries a body (its session answers it) or asks for no
/// response.
pub fn accept_parked(c: &Chunk, complete: bool) -> Option<Chunk> {
    if carries_body(c, complete) {
        None
    } else {
        reply(c, 200, comment_for(200))
    }
}

/// The answer to a parked binding no session claimed in time (481), and
/// to one whose TLS certificate does not have the fingerprint given for the
/// session (403, "not allowed", RFC 4975 §10.3).
pub fn refuse_parked(c: &Chunk, fingerprint_mismatch: bool) -> Option<Chunk> {
    if fingerprint_mismatch {
        reply(c, 403, "Certificate Fingerprint Mismatch")
    } else {
        reply(c, 481, comment_for(481))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::header::ReportMode;

    fn uri(s: &str) -> Uri {
        Uri::parse(s).unwrap()
    }

    fn ours() -> Vec<Uri> {
        vec![uri("msrp://127.0.0.1:2855/ours;tcp")]
    }

    fn theirs() -> Vec<Uri> {
        vec![uri("msrp://127.0.0.1:3000/theirs;tcp")]
    }

    /// The peer's binding SEND for us: what `binding_send` makes on its side.
    fn peer_binding() -> Chunk {
        binding_send(&theirs(), &ours())
    }

    /// RFC 4975 §5.4: the first SEND binds the connection when its To-Path
    /// is our URI and its From-Path the peer's; an empty one gets a 200.
    #[test]
    fn the_expected_binding_is_answered_200() {
        let b = peer_binding();
        match judge_first(&b, true, &ours(), &theirs(), false) {
            FirstChunk::Bound {
                reply: Some(r),
                carries_body: false,
            } => {
                assert_eq!(r.code(), Some(200));
                assert_eq!(r.transaction_id(), b.transaction_id());
            }
            other => panic!("{other:?}"),
        }
        // §7.2: Failure-Report: no asks for no response at all.
        let mut quiet = peer_binding();
        quiet.set_failure_report(ReportMode::No);
        assert_eq!(
            judge_first(&quiet, true, &ours(), &theirs(), false),
            FirstChunk::Bound {
                reply: None,
                carries_body: false
            }
        );
    }

    /// §5.4 lets the binding SEND carry a message: it is not answered here
    /// but given back for the session to take (and answer) like any SEND;
    /// so is one read only in part.
    #[test]
    fn a_binding_that_carries_a_message_is_given_back() {
        let mut b = peer_binding();
        b.set_data(b"hello");
        assert_eq!(
            judge_first(&b, true, &ours(), &theirs(), false),
            FirstChunk::Bound {
                reply: None,
                carries_body: true
            }
        );
        let empty = peer_binding();
        assert!(carries_body(&empty, false), "a part of a larger SEND");
        assert!(!carries_body(&empty, true));
        let mut typed = peer_binding();
        typed.set_content_type("text/plain").unwrap();
        assert!(
            carries_body(&typed, true),
            "an empty typed message is a message"
        );
    }

    #[test]
    fn a_binding_for_another_session_or_from_another_peer_is_481() {
        let b = binding_send(&theirs(), &[uri("msrp://127.0.0.1:2855/other;tcp")]);
        match judge_first(&b, true, &ours(), &theirs(), false) {
            FirstChunk::Refused {
                code: 481,
                reply: Some(r),
                why,
            } => {
                assert_eq!(r.code(), Some(481));
                assert!(why.contains("To-Path"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        let b = binding_send(&[uri("msrp://127.0.0.1:3001/intruder;tcp")], &ours());
        assert!(matches!(
            judge_first(&b, true, &ours(), &theirs(), false),
            FirstChunk::Refused { code: 481, .. }
        ));
        // With session matching, addresses may differ but session ids not.
        let natted = binding_send(&[uri("msrp://10.0.0.9:4000/theirs;tcp")], &ours());
        assert!(matches!(
            judge_first(&natted, true, &ours(), &theirs(), true),
            FirstChunk::Bound { .. }
        ));
        assert!(matches!(
            judge_first(&natted, true, &ours(), &theirs(), false),
            FirstChunk::Refused { code: 481, .. }
        ));
        // Not a SEND at all: closed without an answer.
        let mut r = Chunk::request("REPORT").unwrap();
        r.set_to_path(&ours());
        r.set_from_path(&theirs());
        assert_eq!(
            judge_first(&r, true, &ours(), &theirs(), false),
            FirstChunk::NotSend
        );
    }

    /// A listening port shared by several sessions: the To-Path names one.
    #[test]
    fn a_shared_port_finds_the_session_the_to_path_names() {
        let expected = vec![
            uri("msrp://127.0.0.1:2855/first;tcp"),
            uri("msrp://127.0.0.1:2855/ours;tcp"),
        ];
        match judge_shared_first(&peer_binding(), &expected, false) {
            SharedFirst::Ours { index, from } => {
                assert_eq!(index, 1);
                assert_eq!(from, theirs());
            }
            other => panic!("{other:?}"),
        }
        let stranger = binding_send(&theirs(), &[uri("msrp://127.0.0.1:2855/gone;tcp")]);
        match judge_shared_first(&stranger, &expected, false) {
            SharedFirst::Unknown(why, Some(r)) => {
                assert_eq!(r.code(), Some(481));
                assert!(why.contains("/gone"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        let mut no_to = Chunk::request("SEND").unwrap();
        no_to.set_from_path(&theirs());
        // Unreadable paths: a 400 could not be addressed either (its paths
        // come from the request's), so the connection is only closed.
        assert_eq!(
            judge_shared_first(&no_to, &expected, false),
            SharedFirst::Malformed(None)
        );
        let mut r = Chunk::request("NICKNAME").unwrap();
        r.set_to_path(&expected[..1]);
        r.set_from_path(&theirs());
        assert_eq!(
            judge_shared_first(&r, &expected, false),
            SharedFirst::NotSend
        );
        // Claimed later: 200, or 403 on a certificate mismatch, 481 unclaimed.
        let b = peer_binding();
        assert_eq!(accept_parked(&b, true).unwrap().code(), Some(200));
        assert_eq!(refuse_parked(&b, true).unwrap().code(), Some(403));
        assert_eq!(refuse_parked(&b, false).unwrap().code(), Some(481));
    }

    /// The active side waits for the response with its transaction id;
    /// anything else is ignored, any code but 200 is a refusal.
    #[test]
    fn the_active_side_reads_only_its_response() {
        let bind = binding_send(&ours(), &theirs());
        assert_eq!(binding_answered(&bind, &peer_binding()), Answered::NotYet);
        let other = Chunk::response("other1", 200, None).unwrap();
        assert_eq!(binding_answered(&bind, &other), Answered::NotYet);
        let ok = bind.make_response(200, Some("OK")).unwrap();
        assert_eq!(binding_answered(&bind, &ok), Answered::Bound);
        let no = bind.make_response(481, Some("No Such Session")).unwrap();
        match binding_answered(&bind, &no) {
            Answered::Refused(why) => assert!(why.contains("481 No Such Session"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
