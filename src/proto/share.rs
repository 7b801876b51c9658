//! Several sessions on one connection (RFC 4975 §5.4: a sender that already
//! has a connection to the same host, port and scheme SHOULD reuse it): which
//! session a chunk on a shared connection belongs to, and what becomes of a
//! chunk for no session the connection carries (§7.3: a request whose
//! To-Path maps to no session associated with the connection gets 481).

use super::binding;
use super::chunk::Chunk;
use super::header::HeaderName;
use super::uri::UriRef;

/// The session a chunk is for: the session id of the last URI of its
/// To-Path (on arrival at an endpoint the To-Path holds that endpoint's URI
/// alone, §7.3; relays take themselves off it). `None` when the To-Path is
/// missing or its last URI cannot be read or has no session id.
pub fn session_of(c: &Chunk) -> Option<&str> {
    let to = c.header(HeaderName::ToPath)?;
    let last = to.split_ascii_whitespace().next_back()?;
    UriRef::parse(last).ok()?.session_id
}

/// What to do with a chunk for a session the connection does not carry.
#[derive(Debug)]
pub enum Unknown {
    /// A SEND on a connection that takes new sessions (the passive side of
    /// a shared connection): judge it as a binding (§5.4: the first SEND of
    /// a session binds it to the connection it arrives on).
    Bind,
    /// A request for no session here: answer it with the chunk (481, when
    /// its report headers want an answer, §7.2) and drop it.
    Refuse(Option<Box<Chunk>>),
    /// A response to a transaction of a session that has gone, or a chunk
    /// without a To-Path session: drop it.
    Ignore,
}

/// Judges a chunk whose session the connection does not carry; `takes_new`
/// says whether new sessions may bind on this connection.
pub fn unknown(c: &Chunk, takes_new: bool) -> Unknown {
    if !c.is_request() {
        return Unknown::Ignore;
    }
    if takes_new && c.method() == Some("SEND") && session_of(c).is_some() {
        return Unknown::Bind;
    }
    Unknown::Refuse(binding::reply(c, 481, "No Such Session").map(Box::new))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::uri::parse_path;

    fn send_to(path: &str) -> Chunk {
        let mut c = Chunk::request("SEND").unwrap();
        c.set_to_path(&parse_path(path).unwrap());
        c.set_from_path(&parse_path("msrp://a.example:1/them;tcp").unwrap());
        c
    }

    #[test]
    fn a_chunk_belongs_to_the_session_of_its_last_to_path_uri() {
        let c = send_to("msrp://relay.example:2/r1;tcp msrp://b.example:3/ours;tcp");
        assert_eq!(session_of(&c), Some("ours"));
        let none = send_to("msrp://b.example:3;tcp");
        assert_eq!(session_of(&none), None);
    }

    /// RFC 4975 §7.3: a request for no session of the connection gets 481;
    /// REPORTs and requests with Failure-Report "no" get no answer (§7.2);
    /// responses are dropped; a SEND binds where the connection takes new
    /// sessions.
    #[test]
    fn chunks_for_unknown_sessions() {
        let c = send_to("msrp://b.example:3/gone;tcp");
        assert!(matches!(unknown(&c, true), Unknown::Bind));
        match unknown(&c, false) {
            Unknown::Refuse(Some(r)) => assert_eq!(r.code(), Some(481)),
            other => panic!("{other:?}"),
        }
        let mut quiet = c.clone();
        quiet.add_header_raw("Failure-Report", "no").unwrap();
        assert!(matches!(unknown(&quiet, false), Unknown::Refuse(None)));
        let mut report = send_to("msrp://b.example:3/gone;tcp");
        report = {
            let mut r = Chunk::request("REPORT").unwrap();
            r.set_to_path(&report.to_path().unwrap());
            r
        };
        assert!(matches!(unknown(&report, true), Unknown::Refuse(None)));
        let resp = c.make_response(200, Some("OK")).unwrap();
        assert!(matches!(unknown(&resp, true), Unknown::Ignore));
    }
}
