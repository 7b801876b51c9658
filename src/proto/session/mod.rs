//! The MSRP session (reference `MSRPSession`), sans-IO: chunks in, chunks to
//! send out, events for the application, deadlines — time comes in as an
//! argument. The driver (engine) moves chunks between this state machine
//! and a transport.
//!
//! Sending: messages are cut into chunks of `chunk_size`; a message that
//! fits in one chunk goes before the next chunk of a large one, so chat is
//! never stuck behind a file (the large one continues later in a new
//! transaction with the next Byte-Range). A window bounds the transactions
//! waiting for a response. Every transaction gets a response or a local one
//! at its deadline: 408 when Failure-Report is `yes`, 200 when `partial` or
//! `no` (the reference's rule).
//!
//! Receiving: REPORTs go to the application unanswered; unknown methods get
//! 501; malformed requests 400; wrong paths 481; unacceptable or missing
//! Content-Type 415; messages over the size limit 413. SEND chunks are
//! reassembled by Message-ID and Byte-Range offsets (out of order and
//! overlapping chunks are fine), or handed over one by one in streaming
//! mode. With Success-Report `yes`, a REPORT with `000 200 OK` and the
//! whole message's Byte-Range goes back once the message is complete.
//!
//! Files: `send.rs` (outgoing messages and chunks), `receive.rs` (incoming
//! requests, reassembly, reports); this one holds the state they share,
//! transactions and their deadlines, and closing.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::chunk::{Chunk, Flag};
use super::fasthash::LocalMap;
use super::header::{ByteRange, HeaderName, ReportMode, Status, is_ident, validate};
use super::ids;
use super::transport::{PathCheck, check_incoming, wants_error_response, wants_success_response};
use super::uri::Uri;

mod receive;
mod send;

use receive::Incoming;
pub use send::{DataRequest, Frame, INTERRUPTIBLE, OutgoingMessage, PIECE, Piece, Source, TURN};
use send::{OpenChunk, OutMsg};

/// Session settings.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Largest body of an outgoing chunk (default 128 KiB; through a relay
    /// use 8 KiB or less). Chunks are streamed and interrupted for other
    /// traffic ([`Session::poll_frame`]), so chat never waits for a whole
    /// chunk; larger ones save transactions, but up to `window` of them
    /// may sit in socket buffers ahead of a chat line.
    pub chunk_size: usize,
    /// Most outgoing transactions waiting for a response at once (default 32).
    pub window: usize,
    /// How long to wait for a transaction response (default 30 s).
    pub response_timeout: Duration,
    /// Acceptable media types: `*`, `type/*` or `type/subtype` (default `*`).
    pub accept_types: Vec<String>,
    /// Largest incoming message accepted, in bytes (413 beyond; default 64 MiB).
    pub max_message_size: u64,
    /// Most bytes held at once for incoming messages that arrive in several
    /// chunks and are reassembled in memory, all of them together (default
    /// 128 MiB, twice `max_message_size`, so that a peer with the same
    /// settings sending two large messages at a time is never refused). The
    /// message whose chunk would cross it gets 413 and frees what it held.
    /// Messages that arrive whole in one chunk do not count: they are read
    /// already.
    pub max_receive_memory: u64,
    /// Most incoming messages open at once (some chunks received, not yet
    /// complete, aborted or expired); the next one gets 413 (default 32).
    /// Each costs bookkeeping whatever its size.
    pub max_incomplete: usize,
    /// An incoming message that gets no new chunk for this long is dropped,
    /// with a [`SessionEvent::Incomplete`] event (default 120 s).
    pub incomplete_timeout: Duration,
    /// Most outgoing messages larger than one chunk sent at a time; the
    /// others wait their turn (default 2). Messages that fit in one chunk
    /// are never held back.
    pub max_concurrent_sends: usize,
    /// Hand each accepted SEND chunk to the application as it arrives
    /// instead of reassembling whole messages.
    pub streaming: bool,
    /// Messages that arrive in more than one chunk, or in one chunk of
    /// more than [`ANNOUNCE_ABOVE`] bytes, are announced
    /// ([`SessionEvent::MessageStart`]) and handed over chunk by chunk
    /// ([`SessionEvent::MessagePart`], [`SessionEvent::MessageEnd`]) for the
    /// application to put where it wants (a file, a descriptor, a callback,
    /// or memory), instead of being reassembled here; `max_message_size` and
    /// `max_receive_memory` then apply to the other messages only (the
    /// receiver of the parts decides about the rest). Other messages are
    /// delivered whole as usual. Ignored in streaming mode.
    pub announce: bool,
    /// Compare only session ids in path checks (sessmatch).
    pub sessmatch: bool,
    /// What the peer accepts, from its SDP `a=accept-types` (RFC 4975
    /// §8.6): messages of other types are refused before they are queued
    /// ([`Session::check_outgoing`]). Empty: anything (default).
    pub peer_accept_types: Vec<String>,
    /// The peer's SDP `a=max-size`: larger messages are refused before
    /// they are queued. `None`: no limit (default).
    pub peer_max_size: Option<u64>,
    /// What the peer accepts only inside a wrapper such as `message/cpim`
    /// (its `a=accept-wrapped-types`, RFC 4975 §8.6).
    pub peer_accept_wrapped_types: Vec<String>,
    /// A chat-room focus: NICKNAME requests with a well-formed
    /// Use-Nickname (RFC 7701 §7.1) wait for the application's answer
    /// ([`SessionEvent::Nickname`], [`Session::answer_nickname`]) instead of
    /// getting 200 at once.
    pub nickname_by_application: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            chunk_size: 128 * 1024,
            window: 32,
            response_timeout: Duration::from_secs(30),
            accept_types: vec!["*".into()],
            max_message_size: 64 * 1024 * 1024,
            max_receive_memory: 128 * 1024 * 1024,
            max_incomplete: 32,
            incomplete_timeout: Duration::from_secs(120),
            max_concurrent_sends: 2,
            streaming: false,
            announce: false,
            sessmatch: false,
            peer_accept_types: Vec::new(),
            peer_max_size: None,
            peer_accept_wrapped_types: Vec::new(),
            nickname_by_application: false,
        }
    }
}

/// Whether `content_type` (parameters ignored, any case) is `media_type`.
pub fn is_media_type(content_type: &str, media_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case(media_type)
}

/// Reference `contains_mime_type`: case-insensitive, parameters ignored,
/// `*` and `type/*` patterns.
pub fn accepts(patterns: &[String], content_type: &str) -> bool {
    let mt = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .as_bytes();
    patterns.iter().any(|p| {
        let p = p.trim().as_bytes();
        if p == b"*" || p.eq_ignore_ascii_case(mt) {
            return true;
        }
        // `type/*`: the media type starts with `type/`, any case.
        let Some(prefix) = p.strip_suffix(b"*").filter(|x| x.ends_with(b"/")) else {
            return false;
        };
        mt.len() >= prefix.len() && mt[..prefix.len()].eq_ignore_ascii_case(prefix)
    })
}

/// Checks an extra header for an outgoing message: a valid name and value,
/// and none of the headers the session writes itself.
pub fn check_extra_header(name: &str, value: &str) -> Result<(), super::chunk::ChunkError> {
    use super::chunk::ChunkError;
    let own = matches!(
        HeaderName::from_wire(name),
        HeaderName::ToPath
            | HeaderName::FromPath
            | HeaderName::MessageId
            | HeaderName::ByteRange
            | HeaderName::SuccessReport
            | HeaderName::FailureReport
            | HeaderName::ContentType
    );
    if own {
        return Err(ChunkError::WrongKind(
            "the session writes this header itself: use the message's options",
        ));
    }
    let mut probe = Chunk::request("SEND").expect("SEND is valid");
    probe.add_header_raw(name, value)?;
    Ok(())
}

/// The media types of an `accept-types` list as an application writes it
/// (RFC 4975 §8.6 separates them by spaces; commas and tabs are taken too).
pub fn parse_accept_types(s: &str) -> Vec<String> {
    s.split([' ', ',', '\t'])
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether a REPORT says the whole message arrived (RFC 4975 §7.1.2):
/// Status 200 and a Byte-Range that ends at the known total.
pub fn report_covers_whole_message(r: &Chunk) -> bool {
    let ok = r.status().ok().flatten().is_some_and(|s| s.code == 200);
    let whole = r
        .byte_range()
        .ok()
        .flatten()
        .is_some_and(|b| b.total.is_some() && b.end == b.total);
    ok && whole
}

/// Why a message may not be sent to this peer (see [`Session::check_outgoing`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendRefused {
    /// Its Content-Type is not among the peer's accept-types.
    NotAccepted(String),
    /// It is larger than the peer's max-size.
    TooLarge {
        /// The message's size.
        size: u64,
        /// The peer's max-size.
        max: u64,
    },
}

impl std::fmt::Display for SendRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendRefused::NotAccepted(why) => f.write_str(why),
            SendRefused::TooLarge { size, max } => write!(
                f,
                "the message ({size} bytes) is larger than the peer's a=max-size ({max} bytes)"
            ),
        }
    }
}

/// Whether the response to a keep-alive ends the session: anything but a
/// 2xx does, except the local code 0 of a session that is closing anyway.
/// The text says why, for the application; `local` marks codes made
/// locally (408: no answer in time).
pub fn keepalive_failure(code: u16, comment: &str, local: bool) -> Option<(bool, String)> {
    if (200..300).contains(&code) || code == 0 {
        return None;
    }
    Some(if local && code == 408 {
        (
            true,
            "the peer did not answer a keep-alive SEND in time; the session was closed".into(),
        )
    } else {
        (
            false,
            format!(
                "the peer answered a keep-alive SEND with {code} {comment}; the session was closed"
            ),
        )
    })
}

/// Local handle of an outgoing message.
pub type MsgId = u64;
/// Local handle of a chunk sent with [`Session::send_chunk`].
pub type TxId = u64;

/// What the session tells the application.
#[derive(Debug)]
pub enum SessionEvent {
    /// The response (received, or made locally at the deadline) to a chunk sent with `send_chunk`.
    ChunkResponse {
        /// The handle.
        tx: TxId,
        /// The status code.
        code: u16,
        /// Comment of the response.
        comment: String,
        /// Whether the response was made locally (timeout or closed connection).
        local: bool,
    },
    /// Bytes of an outgoing message were sent or acknowledged.
    Progress {
        /// The message.
        msg: MsgId,
        /// Bytes sent so far (counting from `start`).
        sent: u64,
        /// Bytes acknowledged so far.
        acked: u64,
        /// Total, when known.
        total: Option<u64>,
    },
    /// An outgoing message finished: 200 when every chunk was accepted,
    /// otherwise the first failure (a peer's code, 408 on timeout, or a local
    /// code when cancelled or closed).
    MessageDone {
        /// The message.
        msg: MsgId,
        /// Its Message-ID.
        message_id: String,
        /// Final status code.
        code: u16,
        /// Explanation.
        comment: String,
    },
    /// A whole incoming message (reassembly mode): the first chunk's head
    /// (headers; no body) and all the bytes.
    Message {
        /// Headers of the message's first chunk.
        head: Chunk,
        /// The reassembled body.
        data: Vec<u8>,
    },
    /// An accepted incoming request handed over as it came: SEND chunks in
    /// streaming mode, NICKNAME and other accepted requests.
    Chunk(Chunk),
    /// A NICKNAME request (RFC 7701 §7.1) waiting for the application's
    /// answer ([`SessionConfig::nickname_by_application`]).
    Nickname {
        /// Its transaction id, to answer it by.
        transaction_id: String,
        /// The nickname asked for, unquoted.
        nickname: String,
    },
    /// An incoming message was aborted by its sender (`#`).
    MessageAborted {
        /// Its Message-ID.
        message_id: String,
    },
    /// An incoming REPORT.
    Report(Chunk),
    /// The first chunk of a message in several chunks arrived (`announce`
    /// mode): its parts follow as `MessagePart`, then `MessageEnd`.
    MessageStart {
        /// Its Message-ID.
        message_id: String,
        /// The head of that chunk (headers, no body).
        head: Chunk,
        /// The message's total size, when the chunk announced it.
        total: Option<u64>,
    },
    /// An accepted chunk of an announced message (its Byte-Range says where
    /// its bytes go).
    MessagePart(Chunk),
    /// Every byte of an announced message arrived.
    MessageEnd {
        /// Its Message-ID.
        message_id: String,
        /// The head of its first chunk (headers, no body).
        head: Chunk,
        /// Its size.
        total: u64,
    },
    /// An incoming message will not complete: it got no new chunk for
    /// `incomplete_timeout` (`expired`), or the session closed first. What
    /// it held is freed; later chunks of an expired one get 413.
    Incomplete {
        /// Its Message-ID.
        message_id: String,
        /// The head of its first chunk that arrived (headers, no body).
        head: Option<Chunk>,
        /// Bytes received.
        received: u64,
        /// Its total size, when known.
        total: Option<u64>,
        /// true: it stopped progressing; false: the session closed.
        expired: bool,
    },
}

enum PendingKind {
    Message { msg: MsgId, len: u64 },
    Raw { tx: TxId },
}

struct Pending {
    kind: PendingKind,
    /// Matches the entry in `deadlines` (a transaction id may be reused later).
    seq: u64,
    fr: ReportMode,
}

/// The session state machine.
pub struct Session {
    cfg: SessionConfig,
    /// NICKNAME requests waiting for the application's answer.
    nicknames: Vec<Chunk>,
    local: Vec<Uri>,
    remote: Vec<Uri>,
    /// The paths as header text, formatted once.
    local_text: String,
    remote_text: String,
    /// To-Path and From-Path texts of the last request that passed the path
    /// check: chunks of one session repeat them, and the same text gets the
    /// same verdict.
    accepted_paths: Option<(String, String)>,
    /// Transaction deadlines in the order they were set (they only grow),
    /// so the earliest live one is found at the front.
    deadlines: VecDeque<(Instant, ids::Id, u64)>,
    /// The request arriving in parts right now: its transaction id, and
    /// whether it was refused (its remaining parts are then dropped).
    part: Option<(String, bool)>,
    control: VecDeque<Chunk>,
    raw: VecDeque<(TxId, Chunk)>,
    /// Outgoing messages by handle, until they are done.
    /// (Boxed: taking one out and putting it back moves a pointer.)
    msgs: LocalMap<MsgId, Box<OutMsg>>,
    /// Messages that finish in their next chunk (or were cancelled): sent first.
    urgent: VecDeque<MsgId>,
    /// Messages that fit in one chunk, not sent yet (held here, not in
    /// `msgs`, which then only holds what is in flight or large: a long
    /// queue of chat messages costs no map look-ups). In handle order.
    small: VecDeque<Box<OutMsg>>,
    /// Larger messages being sent, taking turns one chunk at a time (at
    /// most `max_concurrent_sends`, plus entries of messages that finished
    /// since, dropped when their turn comes).
    rotation: VecDeque<MsgId>,
    /// Larger messages waiting for their turn to be sent.
    waiting: VecDeque<MsgId>,
    /// Messages in turn that wait for the driver to supply their next
    /// piece (out of `rotation` until it comes).
    starved: Vec<MsgId>,
    /// What the driver is asked to do for supplied sources.
    data_requests: VecDeque<DataRequest>,
    /// The long chunk being streamed (see [`Session::poll_frame`]).
    open: Option<OpenChunk>,
    pending: LocalMap<ids::Id, Pending>,
    waiting_for_window: usize,
    incoming: HashMap<String, Incoming>,
    incoming_bytes: u64,
    /// Buffers of large messages reassembled here, given back by the
    /// driver once the application had them (see [`Session::recycle`]).
    spare: Vec<Vec<u8>>,
    /// Counts [`Session::recycle`] calls that kept a buffer.
    spare_gen: u64,
    /// Message-IDs of incoming messages refused part-way or expired, most
    /// recent last (at most `REFUSED_KEPT`): their later chunks get 413.
    refused: VecDeque<String>,
    events: VecDeque<SessionEvent>,
    next: u64,
    closed: bool,
}

const FAILED_READ: u16 = 500;

/// In `announce` mode, a message that arrives whole in one chunk is
/// announced too when it is larger than this (64 KiB).
pub const ANNOUNCE_ABOVE: u64 = 64 * 1024;

/// Message-IDs of refused or expired incoming messages remembered (see
/// `Session::refused`); a chunk of an older one starts a new message, which
/// costs what any new message costs.
const REFUSED_KEPT: usize = 64;

/// Room for this many entries is kept by an empty queue or map (see
/// [`Session::trim`]).
const KEEP_ROOM: usize = 8;

/// Reassembly buffers of at least this capacity are kept for the next
/// large message when the driver gives them back ([`Session::recycle`]).
pub const SPARE_MIN: usize = 4 << 20;

/// Most reassembly buffers kept at once (a message that starts while the
/// one before it is with the application finds the one before that).
const SPARE_KEPT: usize = 2;

impl Session {
    /// A session between `local` and `remote` paths.
    pub fn new(cfg: SessionConfig, local: Vec<Uri>, remote: Vec<Uri>) -> Session {
        // The paths our requests carry (relays included, RFC 4976).
        let local_text = super::uri::format_path(super::transport::outgoing_from_path(&local));
        let remote_text =
            super::uri::format_path(&super::transport::outgoing_to_path(&local, &remote));
        Session {
            nicknames: Vec::new(),
            cfg,
            local,
            remote,
            local_text,
            remote_text,
            accepted_paths: None,
            deadlines: VecDeque::new(),
            part: None,
            control: VecDeque::new(),
            raw: VecDeque::new(),
            msgs: LocalMap::default(),
            urgent: VecDeque::new(),
            small: VecDeque::new(),
            rotation: VecDeque::new(),
            waiting: VecDeque::new(),
            starved: Vec::new(),
            data_requests: VecDeque::new(),
            open: None,
            pending: LocalMap::default(),
            waiting_for_window: 0,
            incoming: HashMap::new(),
            incoming_bytes: 0,
            spare: Vec::new(),
            spare_gen: 0,
            refused: VecDeque::new(),
            events: VecDeque::new(),
            next: 1,
            closed: false,
        }
    }

    /// Our full path.
    pub fn local_path(&self) -> &[Uri] {
        &self.local
    }

    /// The peer's full path.
    pub fn remote_path(&self) -> &[Uri] {
        &self.remote
    }

    /// The settings.
    pub fn config(&self) -> &SessionConfig {
        &self.cfg
    }

    fn next_id(&mut self) -> u64 {
        let n = self.next;
        self.next += 1;
        n
    }

    /// Frees the room of queues and maps that are empty again after a burst
    /// made them large, so that a session that goes quiet keeps little
    /// memory (one that carried a few hundred messages kept about 30 KiB
    /// here before). Cheap: call it after every change.
    pub fn trim(&mut self) {
        fn queue<T>(q: &mut VecDeque<T>) {
            if q.is_empty() && q.capacity() > KEEP_ROOM {
                *q = VecDeque::new();
            }
        }
        fn map<K, V, S: Default>(m: &mut HashMap<K, V, S>) {
            if m.is_empty() && m.capacity() > KEEP_ROOM {
                *m = HashMap::default();
            }
        }
        if self.pending.is_empty() {
            // Every deadline left belongs to an answered transaction.
            self.deadlines.clear();
        }
        queue(&mut self.deadlines);
        queue(&mut self.control);
        queue(&mut self.raw);
        queue(&mut self.urgent);
        queue(&mut self.small);
        queue(&mut self.rotation);
        queue(&mut self.waiting);
        queue(&mut self.refused);
        queue(&mut self.events);
        map(&mut self.msgs);
        map(&mut self.pending);
        map(&mut self.incoming);
    }

    /// Whether a message of `content_type` and `size` (when known) may be
    /// sent to this peer: RFC 4975 §8.6 forbids sending a type the peer's
    /// accept-types do not list (as the root type; wrapped types go inside
    /// a listed container), and a message over the peer's max-size should
    /// not be sent either. Checked before a message is queued, so nothing
    /// of it goes out.
    pub fn check_outgoing(&self, content_type: &str, size: Option<u64>) -> Result<(), SendRefused> {
        let types = &self.cfg.peer_accept_types;
        if !types.is_empty() && !accepts(types, content_type) {
            return Err(SendRefused::NotAccepted(format!(
                "the peer does not accept '{content_type}' (its a=accept-types: {})",
                types.join(" ")
            )));
        }
        match (size, self.cfg.peer_max_size) {
            (Some(size), Some(max)) if size > max => Err(SendRefused::TooLarge { size, max }),
            _ => Ok(()),
        }
    }

    /// Whether content of `inner_type` may go to this peer inside a
    /// wrapper (RFC 4975 §8.6): when the peer's SDP was given, the type must
    /// be among its accept-wrapped-types or its accept-types.
    pub fn check_wrapped(&self, inner_type: &str) -> Result<(), SendRefused> {
        let (types, wrapped) = (
            &self.cfg.peer_accept_types,
            &self.cfg.peer_accept_wrapped_types,
        );
        if types.is_empty() && wrapped.is_empty() {
            return Ok(());
        }
        if accepts(wrapped, inner_type) || accepts(types, inner_type) {
            return Ok(());
        }
        Err(SendRefused::NotAccepted(format!(
            "the peer does not accept '{inner_type}' inside a wrapper (its a=accept-wrapped-types: {})",
            if wrapped.is_empty() {
                "none".to_owned()
            } else {
                wrapped.join(" ")
            }
        )))
    }

    /// A number that changes whenever a message or chunk is queued or a
    /// transaction starts (to tell a session in use from a quiet one).
    pub fn activity(&self) -> u64 {
        self.next
    }

    /// Whether nothing is queued or waiting for a response.
    pub fn is_idle(&self) -> bool {
        self.control.is_empty()
            && self.raw.is_empty()
            && self.msgs.is_empty()
            && self.small.is_empty()
            && self.pending.is_empty()
    }

    /// Whether [`Session::poll_transmit`] would give a chunk now: a response
    /// or report is waiting, or requests are and the window has room.
    pub fn can_send(&self) -> bool {
        if self.open.is_some() {
            return self.open_can_step();
        }
        !self.control.is_empty()
            || (!self.closed
                && !self.window_full()
                && (!self.raw.is_empty()
                    || !self.urgent.is_empty()
                    || !self.small.is_empty()
                    || !self.rotation.is_empty()
                    || !self.waiting.is_empty()))
    }

    /// Incoming messages being reassembled, and the bytes they hold.
    pub fn incoming_in_progress(&self) -> (usize, u64) {
        (self.incoming.len(), self.incoming_bytes)
    }

    /// Whether transactions wait for a response.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether chunks wait to be sent (as opposed to responses only).
    pub fn has_queued(&self) -> bool {
        self.open.is_some()
            || !self.control.is_empty()
            || !self.raw.is_empty()
            || !self.urgent.is_empty()
            || !self.small.is_empty()
            || !self.rotation.is_empty()
            || !self.waiting.is_empty()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// The earliest deadline: of a transaction, or of an incoming message
    /// that expires unless it progresses.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        // Drop the fronts that were answered already.
        while let Some((_, tid, seq)) = self.deadlines.front() {
            if self.pending.get(tid).is_some_and(|p| p.seq == *seq) {
                break;
            }
            self.deadlines.pop_front();
        }
        let tx = self.deadlines.front().map(|(d, _, _)| *d);
        match (tx, self.incoming_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the incoming message that progressed least recently expires.
    /// (At most `max_incomplete` messages are open: a scan is cheap.)
    pub fn incoming_deadline(&self) -> Option<Instant> {
        let oldest = self.incoming.values().filter_map(|i| i.last).min()?;
        Some(oldest + self.cfg.incomplete_timeout)
    }

    fn window_full(&self) -> bool {
        self.waiting_for_window >= self.cfg.window.max(1)
    }

    fn track(&mut self, chunk: &Chunk, kind: PendingKind, now: Instant) -> bool {
        self.track_until(chunk, kind, Some(now + self.cfg.response_timeout))
    }

    /// Starts a transaction for `chunk` (not for REPORTs and responses);
    /// without a deadline, the caller sets one later.
    fn track_until(&mut self, chunk: &Chunk, kind: PendingKind, deadline: Option<Instant>) -> bool {
        if chunk.method() == Some("REPORT") || !chunk.is_request() {
            return false;
        }
        // Transaction ids are `ident`s, at most 32 characters.
        let Some(tid) = ids::Id::new(chunk.transaction_id()) else {
            return false;
        };
        let fr = chunk.failure_report().unwrap_or(ReportMode::Yes);
        if fr == ReportMode::Yes {
            self.waiting_for_window += 1;
        }
        let seq = self.next_id();
        if let Some(deadline) = deadline {
            self.deadlines.push_back((deadline, tid, seq));
        }
        self.pending.insert(tid, Pending { kind, seq, fr });
        true
    }

    fn settle(&mut self, tid: &str, code: u16, comment: &str, local: bool) {
        let Some(p) = self.pending.remove(tid) else {
            return;
        };
        if p.fr == ReportMode::Yes {
            self.waiting_for_window = self.waiting_for_window.saturating_sub(1);
        }
        match p.kind {
            PendingKind::Raw { tx } => self.events.push_back(SessionEvent::ChunkResponse {
                tx,
                code,
                comment: comment.to_owned(),
                local,
            }),
            PendingKind::Message { msg, len } => {
                let Some(m) = self.msgs.get_mut(&msg) else {
                    return;
                };
                m.outstanding -= 1;
                if (200..300).contains(&code) {
                    if m.fr != ReportMode::No {
                        m.acked += len;
                    }
                    if !m.quiet && !m.no_progress {
                        let ev = SessionEvent::Progress {
                            msg,
                            sent: m.offset - m.start,
                            acked: m.acked,
                            total: m.size.map(|t| t - m.start),
                        };
                        self.events.push_back(ev);
                    }
                } else if m.failed.is_none() {
                    // The peer refused a chunk (413 included): stop sending it.
                    m.failed = Some((code, comment.to_owned()));
                }
                if m.outstanding == 0 && (m.sent_last || m.failed.is_some()) {
                    let m = self.msgs.remove(&msg).expect("present");
                    self.finish(m);
                }
            }
        }
    }

    /// Ends transactions whose deadline passed: 408 when Failure-Report is
    /// `yes`, 200 when `partial` or `no`; drops incoming messages that made
    /// no progress for `incomplete_timeout` ([`SessionEvent::Incomplete`]).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.incoming_deadline().is_some_and(|d| d <= now) {
            let limit = self.cfg.incomplete_timeout;
            let mut stale: Vec<(String, Instant)> = self
                .incoming
                .iter()
                .filter_map(|(k, i)| i.last.map(|l| (k.clone(), l)))
                .filter(|(_, l)| *l + limit <= now)
                .collect();
            stale.sort_unstable_by_key(|(_, l)| *l);
            for (message_id, _) in stale {
                if let Some(inc) = self.forget_incoming(&message_id) {
                    self.events.push_back(inc.into_event(message_id, true));
                }
            }
        }
        while let Some((deadline, _, _)) = self.deadlines.front() {
            if *deadline > now {
                break;
            }
            let (_, tid, seq) = self.deadlines.pop_front().expect("front exists");
            let Some(fr) = self
                .pending
                .get(&tid)
                .filter(|p| p.seq == seq)
                .map(|p| p.fr)
            else {
                continue;
            };
            if fr == ReportMode::Yes {
                self.settle(
                    &tid,
                    408,
                    "Timed out while waiting for transaction response",
                    true,
                );
            } else {
                self.settle(&tid, 200, "OK", true);
            }
        }
    }

    /// The connection ended: every waiting transaction and message ends
    /// with a local failure; nothing more will be sent.
    pub fn close(&mut self, why: &str) {
        self.closed = true;
        self.open = None;
        self.spare = Vec::new();
        self.control.clear();
        while let Some((tx, c)) = self.raw.pop_front() {
            if c.method() != Some("REPORT") {
                self.events.push_back(SessionEvent::ChunkResponse {
                    tx,
                    code: 0,
                    comment: why.into(),
                    local: true,
                });
            }
        }
        self.deadlines.clear();
        let tids: Vec<ids::Id> = self.pending.keys().copied().collect();
        for tid in tids {
            self.settle(&tid, 0, why, true);
        }
        let mut all: Vec<Box<OutMsg>> = self.msgs.drain().map(|(_, m)| m).collect();
        all.extend(self.small.drain(..));
        all.sort_unstable_by_key(|m| m.id);
        for mut m in all {
            if m.failed.is_none() {
                m.failed = Some((0, why.into()));
            }
            m.outstanding = 0;
            self.finish(m);
        }
        self.urgent.clear();
        self.rotation.clear();
        self.waiting.clear();
        let mut left: Vec<(String, Incoming)> = self.incoming.drain().collect();
        left.sort_unstable_by_key(|(_, inc)| inc.last);
        for (message_id, inc) in left {
            self.events.push_back(inc.into_event(message_id, false));
        }
        self.incoming_bytes = 0;
    }
}
