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

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::chunk::{Chunk, Flag};
use super::fasthash::LocalMap;
use super::header::{ByteRange, HeaderName, ReportMode, Status, is_ident, validate};
use super::ids;
use super::transport::{PathCheck, check_incoming, wants_error_response, wants_success_response};
use super::uri::Uri;

/// Session settings.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Largest body of an outgoing chunk (default 64 KiB; through a relay use 8 KiB or less).
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
    /// Messages that arrive in more than one chunk are announced
    /// ([`SessionEvent::MessageStart`]) and handed over chunk by chunk
    /// ([`SessionEvent::MessagePart`], [`SessionEvent::MessageEnd`]) for the
    /// application to put where it wants (a file, a descriptor, a callback,
    /// or memory), instead of being reassembled here; `max_message_size` and
    /// `max_receive_memory` then apply to whole messages in one chunk only
    /// (the receiver of the parts decides about the rest). Messages in one
    /// chunk are delivered whole as usual. Ignored in streaming mode.
    pub announce: bool,
    /// Compare only session ids in path checks (sessmatch).
    pub sessmatch: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            chunk_size: 64 * 1024,
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
        }
    }
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

/// Where an outgoing message's bytes come from.
pub enum Source {
    /// Bytes in memory.
    Bytes(Vec<u8>),
    /// Bytes in memory, sent as pieces of the buffer without copies (a
    /// message's `Bytes` become this when it is queued).
    Shared(bytes::Bytes),
    /// Bytes the driver supplies as chunks are sent (a file, a pipe, an
    /// application callback it reads): the session asks for each piece with
    /// a [`DataRequest`] and takes it with [`Session::supply`]. The session
    /// does no IO itself.
    Supplied,
}

/// What the session asks of its driver for messages whose bytes it supplies
/// ([`Source::Supplied`]); taken with [`Session::poll_data_request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataRequest {
    /// Read up to `want` bytes of `msg`'s source, stopping early only at
    /// its end, and give them to [`Session::supply`] (fewer than `want`,
    /// or none, says the source ended).
    Read {
        /// The message.
        msg: MsgId,
        /// How much to read.
        want: usize,
    },
    /// `msg` needs no more data: its source may be closed.
    Release {
        /// The message.
        msg: MsgId,
    },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Bytes(b) => write!(f, "Bytes({})", b.len()),
            Source::Shared(b) => write!(f, "Shared({})", b.len()),
            Source::Supplied => f.write_str("Supplied"),
        }
    }
}

/// A message to send (reference `OutgoingFile` and `send_message`).
#[derive(Debug)]
pub struct OutgoingMessage {
    /// Message-ID (a random one when `None`).
    pub message_id: Option<String>,
    /// Content-Type of the message.
    pub content_type: String,
    /// Further headers for every chunk (Content-Disposition, …).
    pub headers: Vec<(String, String)>,
    /// The bytes.
    pub source: Source,
    /// Total size when known (for supplied bytes); `None` sends `*` totals.
    pub size: Option<u64>,
    /// Byte offset the source starts at within the whole message (resume).
    pub start: u64,
    /// Ask for a success REPORT.
    pub success_report: bool,
    /// Failure-Report mode.
    pub failure_report: ReportMode,
    /// No Progress or MessageDone events for this message (nobody listens).
    pub quiet: bool,
    /// No Progress events (only the end is listened to).
    pub no_progress: bool,
}

impl OutgoingMessage {
    /// A message of `data` with the defaults: a random Message-ID, no extra
    /// headers, Failure-Report `yes`, no success report, every event.
    pub fn from_bytes(content_type: &str, data: Vec<u8>) -> Self {
        OutgoingMessage {
            message_id: None,
            content_type: content_type.to_owned(),
            headers: Vec::new(),
            source: Source::Bytes(data),
            size: None,
            start: 0,
            success_report: false,
            failure_report: ReportMode::Yes,
            quiet: false,
            no_progress: false,
        }
    }
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

struct OutMsg {
    id: MsgId,
    message_id: ids::Id,
    content_type: String,
    /// `content_type` was found valid when the message was queued.
    content_type_ok: bool,
    headers: Vec<(String, String)>,
    source: Source,
    size: Option<u64>,
    /// Next byte to send, counting from 0 at the start of the whole message.
    offset: u64,
    start: u64,
    /// Supplied pieces not sent yet (see [`Source::Supplied`]).
    supplied: VecDeque<Vec<u8>>,
    /// The driver reported the end of the source.
    ended: bool,
    /// A [`DataRequest::Read`] for it is out.
    requested: bool,
    /// How much that request asked for.
    asked: usize,
    /// The driver could not read the source.
    read_error: Option<String>,
    acked: u64,
    outstanding: usize,
    sent_last: bool,
    cancelled: bool,
    failed: Option<(u16, String)>,
    sr: bool,
    fr: ReportMode,
    quiet: bool,
    /// No Progress events (see `OutgoingMessage::no_progress`).
    no_progress: bool,
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

#[derive(Default)]
struct Incoming {
    head: Option<Chunk>,
    data: Vec<u8>,
    /// Received byte intervals [start, end) (0-based), merged.
    have: Vec<(u64, u64)>,
    /// Length of the message once its last chunk arrived (or its total is known).
    end: Option<u64>,
    success_report: bool,
    /// When its last chunk arrived (it expires `incomplete_timeout` later).
    last: Option<Instant>,
}

impl Incoming {
    fn add(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        self.have.push((start, end));
        self.have.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.have.len());
        for &(s, e) in &self.have {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.have = merged;
    }

    fn into_event(self, message_id: String, expired: bool) -> SessionEvent {
        SessionEvent::Incomplete {
            received: self.received(),
            total: self.end,
            head: self.head,
            message_id,
            expired,
        }
    }

    fn received(&self) -> u64 {
        self.have.iter().map(|(s, e)| e - s).sum()
    }

    fn complete(&self) -> bool {
        match self.end {
            Some(0) => true,
            Some(n) => self.have.len() == 1 && self.have[0] == (0, n),
            None => false,
        }
    }
}

/// The session state machine.
pub struct Session {
    cfg: SessionConfig,
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
    /// queue of chat messages costs no map look-ups).
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
    pending: LocalMap<ids::Id, Pending>,
    waiting_for_window: usize,
    incoming: HashMap<String, Incoming>,
    incoming_bytes: u64,
    /// Message-IDs of incoming messages refused part-way or expired, most
    /// recent last (at most `REFUSED_KEPT`): their later chunks get 413.
    refused: VecDeque<String>,
    events: VecDeque<SessionEvent>,
    next: u64,
    closed: bool,
}

const FAILED_READ: u16 = 500;

/// Message-IDs of refused or expired incoming messages remembered (see
/// `Session::refused`); a chunk of an older one starts a new message, which
/// costs what any new message costs.
const REFUSED_KEPT: usize = 64;

/// Room for this many entries is kept by an empty queue or map (see
/// [`Session::trim`]).
const KEEP_ROOM: usize = 8;

impl Session {
    /// A session between `local` and `remote` paths.
    pub fn new(cfg: SessionConfig, local: Vec<Uri>, remote: Vec<Uri>) -> Session {
        // The paths our requests carry (relays included, RFC 4976).
        let local_text = super::uri::format_path(super::transport::outgoing_from_path(&local));
        let remote_text =
            super::uri::format_path(&super::transport::outgoing_to_path(&local, &remote));
        Session {
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
            pending: LocalMap::default(),
            waiting_for_window: 0,
            incoming: HashMap::new(),
            incoming_bytes: 0,
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

    /// Queues a message; returns its handle. Its chunks go out through
    /// [`Session::poll_transmit`].
    pub fn send_message(&mut self, m: OutgoingMessage) -> MsgId {
        let id = self.next_id();
        // An id that is not a valid `ident` is replaced once, here.
        let message_id = m
            .message_id
            .filter(|s| is_ident(s))
            .and_then(|s| ids::Id::new(&s))
            .unwrap_or_else(ids::message_id);
        let size = match &m.source {
            Source::Bytes(b) => Some(m.start + b.len() as u64),
            Source::Shared(b) => Some(m.start + b.len() as u64),
            Source::Supplied => m.size,
        };
        // Pieces of a message in memory are cut from it, not copied.
        let source = match m.source {
            Source::Bytes(b) => Source::Shared(bytes::Bytes::from(b)),
            other => other,
        };
        let closed = self.closed;
        let m = OutMsg {
            id,
            message_id,
            // (An extra header named Content-Type is replaced by this one,
            // the slower way.)
            content_type_ok: validate(HeaderName::ContentType, &m.content_type).is_ok()
                && !m
                    .headers
                    .iter()
                    .any(|(k, _)| HeaderName::from_wire(k) == HeaderName::ContentType),
            content_type: m.content_type,
            headers: m.headers,
            source,
            size,
            offset: m.start,
            start: m.start,
            supplied: VecDeque::new(),
            ended: false,
            requested: false,
            asked: 0,
            read_error: None,
            acked: 0,
            outstanding: 0,
            sent_last: false,
            cancelled: false,
            failed: closed.then(|| (0, "the session is closed".into())),
            sr: m.success_report,
            fr: m.failure_report,
            quiet: m.quiet,
            no_progress: m.no_progress,
        };
        if closed {
            self.finish(Box::new(m));
        } else {
            let small = m
                .remaining()
                .is_some_and(|r| r <= self.cfg.chunk_size.max(1) as u64);
            if small {
                self.small.push_back(Box::new(m));
            } else {
                self.msgs.insert(id, Box::new(m));
                self.waiting.push_back(id);
            }
        }
        id
    }

    /// Queues a keep-alive: an empty SEND on the session's paths, as the
    /// binding (RFC 4975 §5.4), marked `Keep-Alive: yes` (the reference's
    /// keep-alive). Its response comes as a [`SessionEvent::ChunkResponse`]
    /// for the returned handle; see [`keepalive_failure`].
    pub fn send_keepalive(&mut self) -> TxId {
        let mut c = super::transport::binding_send(&self.local, &self.remote);
        c.add_header_raw("Keep-Alive", "yes")
            .expect("a valid extension header");
        self.send_chunk(c)
    }

    /// Reference `send_chunk`: queues a chunk as it is (its To-Path and
    /// From-Path are the application's business). A [`SessionEvent::ChunkResponse`]
    /// follows exactly once for requests other than REPORT.
    pub fn send_chunk(&mut self, chunk: Chunk) -> TxId {
        let tx = self.next_id();
        if self.closed {
            if chunk.method() != Some("REPORT") {
                self.events.push_back(SessionEvent::ChunkResponse {
                    tx,
                    code: 0,
                    comment: "the session is closed".into(),
                    local: true,
                });
            }
        } else {
            self.raw.push_back((tx, chunk));
        }
        tx
    }

    /// The Message-ID of an outgoing message, while it is being sent
    /// (until its `MessageDone`).
    pub fn message_id_of(&self, msg: MsgId) -> Option<&str> {
        if let Some(m) = self.msgs.get(&msg) {
            return Some(&m.message_id);
        }
        self.small
            .iter()
            .find(|m| m.id == msg)
            .map(|m| &*m.message_id)
    }

    /// Aborts an outgoing message: no more chunks; if some were sent, the
    /// next one carries the `#` flag. Returns false when it was already done.
    pub fn cancel(&mut self, msg: MsgId) -> bool {
        if let Some(i) = self.small.iter().position(|m| m.id == msg) {
            // Nothing of it was sent: it ends here.
            let mut m = self.small.remove(i).expect("found");
            m.failed = Some((0, "cancelled".into()));
            self.finish(m);
            return true;
        }
        match self.msgs.get_mut(&msg) {
            Some(m) if !m.cancelled && m.failed.is_none() && !m.sent_last => {
                m.cancelled = true;
                self.urgent.push_front(msg);
                true
            }
            _ => false,
        }
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
        !self.control.is_empty()
            || !self.raw.is_empty()
            || !self.urgent.is_empty()
            || !self.small.is_empty()
            || !self.rotation.is_empty()
            || !self.waiting.is_empty()
    }

    /// The next thing the driver is asked to do for a message whose bytes
    /// it supplies ([`Source::Supplied`]).
    pub fn poll_data_request(&mut self) -> Option<DataRequest> {
        self.data_requests.pop_front()
    }

    /// Whether [`Session::poll_data_request`] has something.
    pub fn has_data_requests(&self) -> bool {
        !self.data_requests.is_empty()
    }

    /// The driver's answer to a [`DataRequest::Read`] for `msg`: the bytes
    /// read (fewer than asked for: the source ended after them), or why
    /// reading failed (the message then ends with that reason, with a `#`
    /// chunk if part of it was sent). An answer for a message that is done
    /// is dropped.
    pub fn supply(&mut self, msg: MsgId, data: Result<Vec<u8>, String>) {
        let Some(m) = self.msgs.get_mut(&msg) else {
            return;
        };
        if !m.requested {
            return;
        }
        m.requested = false;
        match data {
            Ok(d) => {
                m.ended = d.len() < m.asked;
                if !d.is_empty() {
                    m.supplied.push_back(d);
                }
            }
            Err(e) => m.read_error = Some(e),
        }
        if let Some(i) = self.starved.iter().position(|&id| id == msg) {
            self.starved.swap_remove(i);
            self.rotation.push_back(msg);
        }
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
        let deadline = now + self.cfg.response_timeout;
        let seq = self.next_id();
        self.deadlines.push_back((deadline, tid, seq));
        self.pending.insert(tid, Pending { kind, seq, fr });
        true
    }

    /// The next chunk to write, or `None` when nothing may go now (queues
    /// empty, or the window is full).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Chunk> {
        if let Some(c) = self.control.pop_front() {
            return Some(c);
        }
        if self.closed {
            return None;
        }
        if self.window_full() {
            return None;
        }
        if let Some((tx, mut c)) = self.raw.pop_front() {
            if self.pending.contains_key(c.transaction_id()) {
                c.set_transaction_id(&ids::transaction_id())
                    .expect("generated ids are valid");
            }
            c.ensure_unique_transaction_id();
            self.track(&c, PendingKind::Raw { tx }, now);
            return Some(c);
        }
        // A message that finishes in its next chunk (or is cancelled) goes
        // first; otherwise the large messages take turns, one chunk each.
        // Handles of messages that are done sending are dropped on the way.
        loop {
            let (id, mut m) = if let Some(id) = self.urgent.pop_front() {
                match self.msgs.remove(&id) {
                    Some(m) => (id, m),
                    None => continue,
                }
            } else if let Some(m) = self.small.pop_front() {
                (m.id, m)
            } else {
                // Messages waiting for their turn start when one of those
                // in turn is done (seen when its entry comes round).
                while self.rotation.len() + self.starved.len()
                    < self.cfg.max_concurrent_sends.max(1)
                {
                    match self.waiting.pop_front() {
                        Some(id) => self.rotation.push_back(id),
                        None => break,
                    }
                }
                let id = self.rotation.pop_front()?;
                match self.msgs.remove(&id) {
                    Some(m) => (id, m),
                    None => continue,
                }
            };
            if m.sent_last || m.failed.is_some() {
                self.msgs.insert(id, m);
                continue;
            }
            let chunk = self.next_chunk(&mut m, now);
            if m.sent_last || m.failed.is_some() {
                if m.outstanding == 0 {
                    self.finish(m);
                } else {
                    self.msgs.insert(id, m);
                }
            } else if chunk.is_none() && m.requested {
                // Its turn comes again when the driver supplies the piece.
                self.starved.push(id);
                self.msgs.insert(id, m);
            } else {
                self.msgs.insert(id, m);
                self.rotation.push_back(id);
            }
            if chunk.is_some() {
                return chunk;
            }
        }
    }

    fn next_chunk(&mut self, m: &mut OutMsg, now: Instant) -> Option<Chunk> {
        if m.sent_last || m.failed.is_some() {
            return None;
        }
        let sent_any = m.offset > m.start;
        if m.cancelled {
            m.failed = Some((0, "cancelled".into()));
            if !sent_any {
                return None;
            }
            // An empty chunk with the '#' flag tells the peer to drop the message.
            let mut c = self.message_chunk(m, Piece::empty(), Flag::Abort);
            c.ensure_unique_transaction_id();
            m.sent_last = true;
            return Some(c);
        }
        let size = self.cfg.chunk_size.max(1);
        let (piece, last) = match m.take_piece(size) {
            Ok(Some(p)) => p,
            Ok(None) => {
                // Not supplied yet: ask the driver (once).
                if !m.requested {
                    m.requested = true;
                    let buffered: u64 = m.supplied.iter().map(|p| p.len() as u64).sum();
                    let want = match m.size {
                        Some(total) => {
                            total.saturating_sub(m.offset + buffered).min(size as u64) as usize
                        }
                        None => size,
                    };
                    m.asked = want;
                    self.data_requests
                        .push_back(DataRequest::Read { msg: m.id, want });
                }
                return None;
            }
            Err(e) => {
                m.failed = Some((FAILED_READ, format!("reading the message failed: {e}")));
                if sent_any {
                    let c = self.message_chunk(m, Piece::empty(), Flag::Abort);
                    m.sent_last = true;
                    return Some(c);
                }
                return None;
            }
        };
        if !last && piece.is_empty() {
            // The source ended before its announced size.
            m.failed = Some((
                FAILED_READ,
                "the source ended before the announced size".into(),
            ));
            return sent_any.then(|| {
                m.sent_last = true;
                self.message_chunk(m, Piece::empty(), Flag::Abort)
            });
        }
        let len = piece.len() as u64;
        let mut c = self.message_chunk(m, piece, if last { Flag::End } else { Flag::More });
        c.ensure_unique_transaction_id();
        m.offset += len;
        m.sent_last = last;
        if self.track(&c, PendingKind::Message { msg: m.id, len }, now) {
            m.outstanding += 1;
            if m.fr == ReportMode::No {
                m.acked += len;
            }
        } else {
            m.acked += len;
        }
        if !m.quiet && !m.no_progress {
            self.events.push_back(SessionEvent::Progress {
                msg: m.id,
                sent: m.offset - m.start,
                acked: m.acked,
                total: m.size.map(|t| t - m.start),
            });
        }
        Some(c)
    }

    fn message_chunk(&self, m: &OutMsg, piece: Piece, flag: Flag) -> Chunk {
        // A fresh chunk whose values are checked here or were checked when
        // the message was queued: headers go in without another check.
        let mut c = Chunk::new_request_unchecked(&ids::transaction_id(), "SEND", 256);
        self.set_paths(&mut c);
        c.push_header_checked(HeaderName::MessageId, "", &m.message_id);
        let start = m.offset + 1;
        let end = m.offset + piece.len() as u64;
        let total = m.size.or(if flag == Flag::End { Some(end) } else { None });
        let range = ByteRange {
            start,
            end: Some(end),
            total,
        };
        if range.check().is_ok() {
            let mut buf = [0u8; 64];
            c.push_header_checked(HeaderName::ByteRange, "", range.write_into(&mut buf));
        }
        if m.sr {
            c.push_header_checked(HeaderName::SuccessReport, "", ReportMode::Yes.as_str());
        }
        if m.fr != ReportMode::Yes {
            c.push_header_checked(HeaderName::FailureReport, "", m.fr.as_str());
        }
        for (k, v) in &m.headers {
            let _ = c.add_header_raw(k, v);
        }
        if m.content_type_ok {
            c.push_header_checked(HeaderName::ContentType, "", &m.content_type);
        } else {
            let _ = c.set_content_type(&m.content_type);
        }
        match piece {
            Piece::Own(v) => c.set_data_vec(v),
            Piece::Shared(b) => c.set_data_shared(b),
        }
        c.set_flag(flag);
        c
    }

    /// To-Path and From-Path of a request from this session (texts formatted once).
    fn set_paths(&self, c: &mut Chunk) {
        c.push_header_checked(HeaderName::ToPath, "", &self.remote_text);
        c.push_header_checked(HeaderName::FromPath, "", &self.local_text);
    }

    fn finish(&mut self, m: Box<OutMsg>) {
        let m = *m;
        if matches!(m.source, Source::Supplied) {
            self.starved.retain(|&id| id != m.id);
            self.data_requests
                .push_back(DataRequest::Release { msg: m.id });
        }
        if m.quiet {
            return;
        }
        let (code, comment) = m.failed.unwrap_or((200, "OK".into()));
        self.events.push_back(SessionEvent::MessageDone {
            msg: m.id,
            message_id: m.message_id.to_string(),
            code,
            comment,
        });
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

    /// Makes room for the responses to `n` requests about to be handled
    /// (a burst read at once), so the queue does not regrow step by step.
    pub fn expect_requests(&mut self, n: usize) {
        self.control.reserve(n);
    }

    fn respond(&mut self, req: &Chunk, code: u16, comment: &str) {
        let ok = (200..300).contains(&code);
        let send = if ok {
            wants_success_response(req)
        } else {
            wants_error_response(req)
        };
        if send {
            // A request too broken to take its paths from is answered along
            // this session's own paths.
            let r = req.make_response(code, Some(comment)).or_else(|_| {
                let mut r = Chunk::response(req.transaction_id(), code, Some(comment))?;
                let to = super::transport::outgoing_to_path(&self.local, &self.remote);
                r.set_to_path(&to[..to.len().min(1)]);
                r.set_from_path(super::transport::outgoing_from_path(&self.local));
                Ok::<Chunk, super::chunk::ChunkError>(r)
            });
            if let Ok(r) = r {
                self.control.push_back(r);
            }
        }
    }

    /// Handles one part of a chunk that arrives in pieces (the driver reads
    /// large chunks in bounded segments, each with its Byte-Range moved, so
    /// that memory stays bounded whatever a peer sends). The checks and any
    /// error response happen on the first part; a refused chunk's other
    /// parts are dropped; the 200 (one per transaction) goes with the last.
    pub fn handle_part(&mut self, chunk: Chunk, first: bool, last: bool, now: Instant) {
        if first && last {
            return self.handle_chunk(chunk, now);
        }
        let tid = chunk.transaction_id().to_owned();
        let continuing = self
            .part
            .as_ref()
            .filter(|(t, _)| *t == tid)
            .map(|(_, refused)| *refused);
        if !first && continuing == Some(true) {
            if last {
                self.part = None;
            }
            return;
        }
        if chunk.method() != Some("SEND") {
            // Only SEND bodies may be large: other requests in parts are
            // refused on their first part; a response is taken on its last.
            if !chunk.is_request() {
                if last {
                    self.handle_chunk(chunk, now);
                }
            } else if first {
                self.respond(&chunk, 413, "Request Too Large");
                self.part = (!last).then_some((tid, true));
            }
            return;
        }
        let message_id = chunk.message_id().unwrap_or("").to_owned();
        let accepted = self.incoming_send(chunk, last, now);
        if !accepted && !first {
            // Earlier parts were taken; the message can no longer complete.
            self.forget_incoming(&message_id);
        }
        self.part = if last { None } else { Some((tid, !accepted)) };
    }

    /// Handles a chunk that arrived on the connection.
    pub fn handle_chunk(&mut self, chunk: Chunk, now: Instant) {
        if !chunk.is_request() {
            let code = chunk.code().unwrap_or(0);
            self.settle(
                chunk.transaction_id(),
                code,
                chunk.comment().unwrap_or(""),
                false,
            );
            return;
        }
        match chunk.method() {
            Some("REPORT") => self.events.push_back(SessionEvent::Report(chunk)),
            Some("SEND") => {
                self.incoming_send(chunk, true, now);
            }
            Some("NICKNAME") => {
                let ok = chunk.header_by_name("Use-Nickname").is_some()
                    && chunk.header(HeaderName::SuccessReport).is_none()
                    && chunk.header(HeaderName::FailureReport).is_none();
                if !ok {
                    self.respond(&chunk, 400, "Bad Request");
                } else if let Some((code, why)) = self.check_paths(&chunk) {
                    self.respond(&chunk, code, &why);
                } else {
                    self.respond(&chunk, 200, "OK");
                    self.events.push_back(SessionEvent::Chunk(chunk));
                }
            }
            _ => self.respond(&chunk, 501, "Method Not Implemented"),
        }
    }

    fn check_paths(&mut self, chunk: &Chunk) -> Option<(u16, String)> {
        let to = chunk.header(HeaderName::ToPath).unwrap_or("");
        let from = chunk.header(HeaderName::FromPath).unwrap_or("");
        if self
            .accepted_paths
            .as_ref()
            .is_some_and(|(t, f)| t == to && f == from)
        {
            return None;
        }
        match check_incoming(chunk, &self.local, &self.remote, self.cfg.sessmatch) {
            PathCheck::Ok => {
                self.accepted_paths = Some((to.to_owned(), from.to_owned()));
                None
            }
            PathCheck::Reject(code, why) => Some((code, why)),
        }
    }

    /// Checks and takes an incoming SEND (or one part of it); answers errors,
    /// and 200 when `answer_ok`. Returns whether it was accepted.
    fn incoming_send(&mut self, chunk: Chunk, answer_ok: bool, now: Instant) -> bool {
        if chunk.verify_headers().is_err() {
            {
                self.respond(&chunk, 400, "Bad Request");
                return false;
            }
        }
        if let Some((code, _)) = self.check_paths(&chunk) {
            let comment = if code == 481 {
                "No Such Session"
            } else {
                "Bad Request"
            };
            {
                self.respond(&chunk, code, comment);
                return false;
            }
        }
        let has_body = !chunk.data().is_empty() || chunk.content_type().is_some();
        if !has_body {
            // An empty SEND: a binding or keep-alive.
            if answer_ok {
                self.respond(&chunk, 200, "OK");
            }
            return true;
        }
        let refusal = match chunk.content_type() {
            None => Some("Content-Type header missing"),
            Some(ct) if !accepts(&self.cfg.accept_types, ct) => Some("Unsupported Media Type"),
            _ => None,
        };
        if let Some(why) = refusal {
            self.respond(&chunk, 415, why);
            return false;
        }
        let len = chunk.size() as u64;
        let range = match chunk.byte_range() {
            Ok(Some(r)) => r,
            Ok(None) => ByteRange {
                start: 1,
                end: Some(len),
                total: Some(len),
            },
            Err(_) => {
                self.respond(&chunk, 400, "Bad Request");
                return false;
            }
        };
        let start0 = range.start - 1;
        let end0 = start0 + len;
        // RFC 4975 §7.3.1: a chunk's real length is its body's; a body
        // shorter than the range-end says was interrupted. One longer than
        // the range cannot be, and is refused.
        if range.end.is_some_and(|e| end0 > e) && chunk.flag() != Flag::Abort {
            self.respond(&chunk, 400, "Byte-Range does not match the body length");
            return false;
        }
        let message_id = chunk.message_id().unwrap_or("").to_owned();
        let max = self.cfg.max_message_size;
        let whole = range.start == 1 && chunk.flag() == Flag::End;
        // Announced messages go where the application puts them: it decides
        // about their size.
        let announced = self.announces() && (!whole || self.incoming.contains_key(&message_id));
        if !announced && (range.total.is_some_and(|t| t > max) || end0 > max) {
            self.refuse(&chunk, &message_id, "Message Too Large");
            return false;
        }
        if chunk.flag() == Flag::Abort {
            if answer_ok {
                self.respond(&chunk, 200, "OK");
            }
            if let Some(inc) = self.incoming.remove(&message_id) {
                self.incoming_bytes -= inc.data.len() as u64;
            }
            self.events
                .push_back(SessionEvent::MessageAborted { message_id });
            return true;
        }
        let single = range.start == 1
            && chunk.flag() == Flag::End
            && !self.incoming.contains_key(&message_id);
        if !single && !self.incoming.contains_key(&message_id) {
            // A new message in several chunks: one that was refused or
            // expired stays refused, and only so many may be open.
            if self.refused.contains(&message_id) {
                self.respond(&chunk, 413, "Message Too Large");
                return false;
            }
            if self.incoming.len() >= self.cfg.max_incomplete.max(1) {
                self.refuse(&chunk, &message_id, "Too Many Incomplete Messages");
                return false;
            }
        }
        // Memory bound for reassembly across all messages in progress
        // (whole messages in one chunk are read already and do not count).
        if !self.cfg.streaming && !single && !announced {
            let grow = end0.saturating_sub(
                self.incoming
                    .get(&message_id)
                    .map_or(0, |i| i.data.len() as u64),
            );
            if self.incoming_bytes + grow > self.cfg.max_receive_memory {
                self.refuse(&chunk, &message_id, "Message Too Large");
                return false;
            }
        }
        if answer_ok {
            self.respond(&chunk, 200, "OK");
        }
        let sr = chunk.success_report().unwrap_or(ReportMode::No) == ReportMode::Yes;
        if single {
            // The whole message in one chunk: no bookkeeping.
            if sr {
                self.success_report(&chunk, &message_id, len);
            }
            if self.cfg.streaming {
                self.events.push_back(SessionEvent::Chunk(chunk));
            } else {
                let mut head = chunk;
                let data = head.take_data();
                self.events.push_back(SessionEvent::Message { head, data });
            }
            return true;
        }
        let inc = self.incoming.entry(message_id.clone()).or_default();
        inc.last = Some(now);
        inc.success_report |= sr;
        if let Some(t) = range.total {
            inc.end = Some(t);
        }
        if chunk.flag() == Flag::End {
            inc.end = Some(end0);
        }
        inc.add(start0, end0);
        let streaming = self.cfg.streaming;
        if announced {
            if inc.head.is_none() {
                let mut h = chunk.clone();
                h.set_data(&[]);
                self.events.push_back(SessionEvent::MessageStart {
                    message_id: message_id.clone(),
                    head: h.clone(),
                    total: range.total,
                });
                inc.head = Some(h);
            }
            self.events.push_back(SessionEvent::MessagePart(chunk));
        } else if streaming {
            if inc.head.is_none() {
                let mut h = chunk.clone();
                h.set_data(&[]);
                inc.head = Some(h);
            }
            self.events.push_back(SessionEvent::Chunk(chunk));
        } else {
            let before = inc.data.len() as u64;
            if inc.data.capacity() == 0 {
                // Room for the whole message at once when its size is
                // announced (at most `max_message_size`, checked above):
                // growing step by step would copy it again and again.
                if let Some(t) = range.total {
                    inc.data.reserve_exact(t as usize);
                }
            }
            if inc.data.len() < end0 as usize {
                inc.data.resize(end0 as usize, 0);
            }
            inc.data[start0 as usize..end0 as usize].copy_from_slice(chunk.data());
            let after = inc.data.len() as u64;
            if inc.head.is_none() || range.start == 1 {
                let mut h = chunk;
                h.set_data(&[]);
                inc.head = Some(h);
            }
            self.incoming_bytes += after - before;
        }
        let inc = self.incoming.get(&message_id).expect("just inserted");
        if inc.complete() {
            let mut inc = self.incoming.remove(&message_id).expect("present");
            self.incoming_bytes -= inc.data.len() as u64;
            let total = inc.end.unwrap_or(0);
            let head = inc.head.take().expect("a chunk arrived");
            if inc.success_report {
                self.success_report(&head, &message_id, total);
            }
            if announced {
                self.events.push_back(SessionEvent::MessageEnd {
                    message_id,
                    head,
                    total,
                });
            } else if !streaming {
                inc.data.truncate(total as usize);
                self.events.push_back(SessionEvent::Message {
                    head,
                    data: inc.data,
                });
            }
        }
        true
    }

    fn announces(&self) -> bool {
        self.cfg.announce && !self.cfg.streaming
    }

    /// The application refuses an incoming message part-way (its sink
    /// failed, or it does not want the rest): what the session held of it
    /// is freed and its later chunks get 413. Returns whether it was open.
    pub fn refuse_incoming(&mut self, message_id: &str) -> bool {
        self.forget_incoming(message_id).is_some()
    }

    /// Answers 413 to a chunk of a message that cannot be taken, frees what
    /// the message held, and remembers it so its later chunks get 413 too.
    fn refuse(&mut self, chunk: &Chunk, message_id: &str, why: &str) {
        self.respond(chunk, 413, why);
        self.forget_incoming(message_id);
    }

    /// Drops an incoming message that will not complete, freeing its share
    /// at once; its later chunks get 413.
    fn forget_incoming(&mut self, message_id: &str) -> Option<Incoming> {
        let inc = self.incoming.remove(message_id);
        if let Some(i) = &inc {
            self.incoming_bytes -= i.data.len() as u64;
        }
        if !self.refused.iter().any(|m| m == message_id) {
            if self.refused.len() >= REFUSED_KEPT {
                self.refused.pop_front();
            }
            self.refused.push_back(message_id.to_owned());
        }
        inc
    }

    /// Reference `send_report`: queues a REPORT about a SEND chunk we
    /// received, with `code` in its Status and the chunk's own Byte-Range.
    /// As the reference's `make_report`, a REPORT goes out only when the
    /// chunk asked for one: Success-Report `yes`, or Failure-Report `yes` or
    /// `partial` with a code other than 200 (a failure found after the
    /// transaction was answered, e.g. the message could not be delivered to
    /// the user). Returns whether a REPORT was queued.
    pub fn send_report(
        &mut self,
        chunk: &Chunk,
        code: u16,
        comment: Option<&str>,
    ) -> Result<bool, super::chunk::ChunkError> {
        use super::chunk::ChunkError;
        if chunk.method() != Some("SEND") {
            return Err(ChunkError::WrongKind(
                "REPORTs are sent about SEND requests only",
            ));
        }
        if !(100..=999).contains(&code) {
            return Err(ChunkError::InvalidCode);
        }
        let success = chunk.success_report().unwrap_or(ReportMode::No) == ReportMode::Yes;
        let failure = matches!(
            chunk.failure_report().unwrap_or(ReportMode::Yes),
            ReportMode::Yes | ReportMode::Partial
        );
        if !(success || (failure && code != 200)) {
            return Ok(false);
        }
        let message_id = chunk
            .message_id()
            .ok_or(ChunkError::MissingHeader("Message-ID"))?
            .to_owned();
        let size = chunk.size() as u64;
        let range = match chunk.byte_range()? {
            // The head of a whole message (as on_message gives it) carries
            // no body: the REPORT is about the whole message.
            Some(r) if size == 0 && r.total.is_some_and(|t| t > 0) => ByteRange {
                start: 1,
                end: r.total,
                total: r.total,
            },
            Some(r) => ByteRange {
                start: r.start,
                end: Some(r.start.saturating_add(size).saturating_sub(1)),
                total: r.total,
            },
            None => ByteRange {
                start: 1,
                end: Some(size),
                total: Some(size),
            },
        };
        let mut r = Chunk::request("REPORT").expect("REPORT is valid");
        self.set_paths(&mut r);
        r.set_message_id(&message_id)?;
        r.set_byte_range(range)?;
        r.set_status(&Status {
            namespace: 0,
            code,
            comment: comment.map(str::to_owned),
        })?;
        self.control.push_back(r);
        Ok(true)
    }

    fn success_report(&mut self, send: &Chunk, message_id: &str, total: u64) {
        let mut r = Chunk::request("REPORT").expect("REPORT is valid");
        self.set_paths(&mut r);
        let _ = r.set_message_id(message_id);
        let _ = r.set_byte_range(ByteRange {
            start: 1,
            end: Some(total),
            total: Some(total),
        });
        let _ = r.set_status(&Status {
            namespace: 0,
            code: 200,
            comment: Some("OK".into()),
        });
        let _ = send;
        self.control.push_back(r);
    }
}

/// The bytes of one outgoing chunk: read into a buffer of its own, or a
/// piece of a message in memory.
enum Piece {
    Own(Vec<u8>),
    Shared(bytes::Bytes),
}

impl Piece {
    fn empty() -> Piece {
        Piece::Own(Vec::new())
    }

    fn len(&self) -> usize {
        match self {
            Piece::Own(v) => v.len(),
            Piece::Shared(b) => b.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl OutMsg {
    fn remaining(&self) -> Option<u64> {
        self.size.map(|s| s.saturating_sub(self.offset))
    }

    /// The next piece of up to `size` bytes and whether it is the message's
    /// last, or `None` when the driver has not supplied it yet. A message of
    /// unknown size is cut only when the piece after it (or the end) is
    /// known, so that its last chunk carries the `$` flag.
    fn take_piece(&mut self, size: usize) -> Result<Option<(Piece, bool)>, String> {
        let piece = match &self.source {
            Source::Shared(b) => {
                let from = ((self.offset - self.start) as usize).min(b.len());
                let to = (from + size).min(b.len());
                Piece::Shared(b.slice(from..to))
            }
            Source::Bytes(b) => {
                let from = (self.offset - self.start) as usize;
                let to = (from + size).min(b.len());
                Piece::Own(b[from.min(to)..to].to_vec())
            }
            Source::Supplied => {
                if let Some(e) = self.read_error.take() {
                    return Err(e);
                }
                let ready = match self.size {
                    Some(_) => !self.supplied.is_empty() || self.ended,
                    None => self.supplied.len() >= 2 || self.ended,
                };
                if !ready {
                    return Ok(None);
                }
                let p = Piece::Own(self.supplied.pop_front().unwrap_or_default());
                let last = match self.size {
                    Some(total) => self.offset + p.len() as u64 >= total,
                    None => self.supplied.is_empty(),
                };
                return Ok(Some((p, last)));
            }
        };
        let last = match self.size {
            Some(total) => self.offset + piece.len() as u64 >= total,
            None => true,
        };
        Ok(Some((piece, last)))
    }
}
