//! Sending: outgoing messages and their sources, cutting them into chunks
//! in turn (small ones first, at most `max_concurrent_sends` large ones at
//! once), asking the driver for supplied bytes, and the raw chunks of
//! `send_chunk`.

use super::*;

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

pub(super) struct OutMsg {
    pub(super) id: MsgId,
    pub(super) message_id: ids::Id,
    pub(super) content_type: String,
    /// `content_type` was found valid when the message was queued.
    pub(super) content_type_ok: bool,
    pub(super) headers: Vec<(String, String)>,
    pub(super) source: Source,
    pub(super) size: Option<u64>,
    /// Next byte to send, counting from 0 at the start of the whole message.
    pub(super) offset: u64,
    pub(super) start: u64,
    /// Supplied pieces not sent yet (see [`Source::Supplied`]).
    pub(super) supplied: VecDeque<Piece>,
    /// The driver reported the end of the source.
    pub(super) ended: bool,
    /// How much each [`DataRequest::Read`] not answered yet asked for, in order.
    pub(super) asked: VecDeque<usize>,
    /// The driver could not read the source.
    pub(super) read_error: Option<String>,
    pub(super) acked: u64,
    pub(super) outstanding: usize,
    pub(super) sent_last: bool,
    pub(super) cancelled: bool,
    pub(super) failed: Option<(u16, String)>,
    pub(super) sr: bool,
    pub(super) fr: ReportMode,
    pub(super) quiet: bool,
    /// No Progress events (see `OutgoingMessage::no_progress`).
    pub(super) no_progress: bool,
}

/// Body bytes of an outgoing chunk: read into a buffer of their own, or a
/// piece of a message in memory (not copied).
pub enum Piece {
    /// A buffer of its own.
    Own(Vec<u8>),
    /// A piece of a shared buffer.
    Shared(bytes::Bytes),
}

impl Piece {
    /// No bytes.
    pub fn empty() -> Piece {
        Piece::Own(Vec::new())
    }

    /// How many bytes.
    pub fn len(&self) -> usize {
        match self {
            Piece::Own(v) => v.len(),
            Piece::Shared(b) => b.len(),
        }
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Piece::Own(v) => v,
            Piece::Shared(b) => b,
        }
    }
}

impl std::fmt::Debug for Piece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Piece({})", self.len())
    }
}

/// One step of what a session writes (see [`Session::poll_frame`]): whole
/// chunks, or a long chunk streamed in pieces and ended when the message
/// ends, the chunk reaches `chunk_size`, or other traffic waits (RFC 4975
/// §7.1.1's interruptible chunks).
#[derive(Debug)]
pub enum Frame {
    /// A whole chunk: start line, headers, body, end-line.
    Chunk(Chunk),
    /// The start of a long chunk: start line, headers and the first piece
    /// of its body; its Byte-Range ends in `*`. Its body goes on in
    /// [`Frame::Body`]s, the last of which carries its end-line. Nothing
    /// else is written on the connection until then.
    Open(Chunk),
    /// More body of the open chunk, then its end-line when `end` is set
    /// (with an empty body: the chunk is interrupted there).
    Body {
        /// The open chunk's transaction id.
        tid: ids::Id,
        /// The bytes.
        data: Piece,
        /// The flag of the end-line that follows them, if the chunk ends here.
        end: Option<Flag>,
    },
}

impl Frame {
    /// Bytes this frame puts on the wire, about (headers counted roughly).
    pub fn wire_size(&self) -> usize {
        match self {
            Frame::Chunk(c) | Frame::Open(c) => c.size() + 256,
            Frame::Body { data, end, .. } => data.len() + if end.is_some() { 48 } else { 0 },
        }
    }
}

/// Bodies larger than this are sent in chunks whose Byte-Range ends in `*`
/// (RFC 4975 §7.1.1: a sender must be prepared to interrupt them).
pub const INTERRUPTIBLE: usize = 2048;

/// The most body bytes one step of a streamed chunk hands over (a
/// [`Frame::Open`]'s first piece or a [`Frame::Body`]): chat and responses
/// wait at most for the pieces already handed to the connection. Also the
/// largest message sent as one whole chunk ahead of large ones.
pub const PIECE: usize = 64 * 1024;

/// A long chunk of one large message ends after this many bytes when
/// another large message waits for its turn.
pub const TURN: usize = 256 * 1024;

/// The chunk being streamed ([`Frame::Open`] given, its end-line not yet).
pub(super) struct OpenChunk {
    pub(super) msg: MsgId,
    pub(super) tid: ids::Id,
    /// Body bytes so far.
    pub(super) len: u64,
    /// The last bytes of its body (up to the end-line's marker length
    /// minus one), to find a marker split between two pieces.
    tail: [u8; 40],
    tail_len: usize,
}

impl OpenChunk {
    fn new(msg: MsgId, tid: ids::Id, first: &[u8]) -> OpenChunk {
        let mut o = OpenChunk {
            msg,
            tid,
            len: 0,
            tail: [0; 40],
            tail_len: 0,
        };
        o.push(first);
        o
    }

    fn marker_len(&self) -> usize {
        7 + self.tid.len()
    }

    /// Counts `data` as sent and keeps its tail.
    fn push(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        let keep = self.marker_len() - 1;
        if data.len() >= keep {
            self.tail[..keep].copy_from_slice(&data[data.len() - keep..]);
            self.tail_len = keep;
        } else {
            let mut joined = [0u8; 80];
            let n = self.tail_len + data.len();
            joined[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
            joined[self.tail_len..n].copy_from_slice(data);
            let from = n.saturating_sub(keep);
            self.tail[..n - from].copy_from_slice(&joined[from..n]);
            self.tail_len = n - from;
        }
    }

    /// Whether appending `data` would put the end-line's marker in the body.
    fn would_contain_end_line(&self, data: &[u8]) -> bool {
        if crate::proto::chunk::contains_end_line(&self.tid, data) {
            return true;
        }
        let keep = self.marker_len() - 1;
        let mut joined = [0u8; 80];
        let head = data.len().min(keep);
        joined[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
        joined[self.tail_len..self.tail_len + head].copy_from_slice(&data[..head]);
        crate::proto::chunk::contains_end_line(&self.tid, &joined[..self.tail_len + head])
    }
}

/// Why a streamed chunk ended before its message did.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Interrupted {
    /// Other traffic waits, or the chunk is as long as allowed: the same
    /// message goes on next.
    ForTraffic,
    /// Another large message gets its turn.
    ForTurn,
}

impl OutMsg {
    pub(super) fn remaining(&self) -> Option<u64> {
        self.size.map(|s| s.saturating_sub(self.offset))
    }

    /// Bytes asked of the driver and not supplied yet.
    fn asked_bytes(&self) -> u64 {
        self.asked.iter().map(|&n| n as u64).sum()
    }

    /// Asks the driver for more of a supplied source, so that up to
    /// `ahead` pieces of `size` are supplied or on their way (a message of
    /// known size no further than its end).
    pub(super) fn ask_ahead(&mut self, size: usize, ahead: usize, out: &mut VecDeque<DataRequest>) {
        if !matches!(self.source, Source::Supplied) || self.ended || self.read_error.is_some() {
            return;
        }
        while self.supplied.len() + self.asked.len() < ahead {
            let want = match self.size {
                Some(total) => {
                    let buffered: u64 = self.supplied.iter().map(|p| p.len() as u64).sum();
                    let left = total.saturating_sub(self.offset + buffered + self.asked_bytes());
                    left.min(size as u64) as usize
                }
                None => size,
            };
            if want == 0 {
                // All of a known size is supplied or asked for.
                return;
            }
            self.asked.push_back(want);
            out.push_back(DataRequest::Read { msg: self.id, want });
        }
    }

    /// Whether [`OutMsg::take_piece`] would give something now.
    pub(super) fn piece_ready(&self) -> bool {
        match &self.source {
            Source::Supplied => {
                self.read_error.is_some()
                    || self.ended
                    || match self.size {
                        Some(_) => !self.supplied.is_empty(),
                        None => self.supplied.len() >= 2,
                    }
            }
            _ => true,
        }
    }

    /// Puts back a piece taken with [`OutMsg::take_piece`] and not sent.
    fn unread(&mut self, piece: Piece) {
        // Pieces of a message in memory are cut at `offset`, which did not move.
        if matches!(self.source, Source::Supplied) {
            self.supplied.push_front(piece);
        }
    }

    /// The next piece of up to `size` bytes and whether it is the message's
    /// last, or `None` when the driver has not supplied it yet. A message of
    /// unknown size is cut only when the piece after it (or the end) is
    /// known, so that its last chunk carries the `$` flag.
    pub(super) fn take_piece(&mut self, size: usize) -> Result<Option<(Piece, bool)>, String> {
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
                if !self.piece_ready() {
                    return Ok(None);
                }
                let p = self.supplied.pop_front().unwrap_or_else(Piece::empty);
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

/// Bytes of a supplied source asked for ahead of the chunk being sent:
/// the driver reads up to this much (in pieces of a chunk) per round, so a
/// file costs this much memory while it is sent.
pub(super) const SUPPLY_AHEAD: usize = 256 * 1024;

/// Pieces of `size` asked for ahead (see [`SUPPLY_AHEAD`]).
fn supply_ahead(size: usize) -> usize {
    (SUPPLY_AHEAD / size.max(1)).clamp(2, 32)
}

impl Session {
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
            asked: VecDeque::new(),
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
            let small = m.remaining().is_some_and(|r| r <= self.piece_size() as u64);
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
        let mut c = crate::proto::transport::binding_send(&self.local, &self.remote);
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
        self.small_index(msg).map(|i| &*self.small[i].message_id)
    }

    /// Where small message `msg` waits in `small`: found by halving, as
    /// handles grow and messages join at the back (a search from the front
    /// for each new message made queueing 200,000 of them at once take
    /// half a minute; halving still cost 7 % of the sender's time at
    /// 500,000, the reason for looking at the back first).
    fn small_index(&self, msg: MsgId) -> Option<usize> {
        // Most often the message just queued, at the back.
        let last = self.small.len().checked_sub(1)?;
        if self.small[last].id == msg {
            return Some(last);
        }
        self.small.binary_search_by_key(&msg, |m| m.id).ok()
    }

    /// Aborts an outgoing message: no more chunks; if some were sent, the
    /// next one carries the `#` flag. Returns false when it was already done.
    pub fn cancel(&mut self, msg: MsgId) -> bool {
        if let Some(i) = self.small_index(msg) {
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
        self.supply_piece(msg, data.map(Piece::Own));
    }

    /// [`Session::supply`] with bytes that may be shared (a buffer the
    /// driver gets back once they are written).
    pub fn supply_piece(&mut self, msg: MsgId, data: Result<Piece, String>) {
        let Some(m) = self.msgs.get_mut(&msg) else {
            return;
        };
        let Some(asked) = m.asked.pop_front() else {
            return;
        };
        match data {
            // Nothing is taken after the end (nor after a failure).
            _ if m.ended || m.read_error.is_some() => {}
            Ok(d) => {
                m.ended = d.len() < asked;
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

    /// The largest message sent as one whole chunk ahead of large ones,
    /// and the most bytes one step of a streamed chunk hands over.
    pub(super) fn piece_size(&self) -> usize {
        self.cfg.chunk_size.clamp(1, PIECE)
    }

    /// The next whole chunk to write, or `None` when nothing may go now
    /// (queues empty, or the window is full). Messages are cut into
    /// chunks of `chunk_size`; for drivers that cannot stream a chunk (see
    /// [`Session::poll_frame`]). Chunks over 2048 bytes carry `*` as
    /// range-end but are never interrupted.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Chunk> {
        match self.poll_next(now, false)? {
            Frame::Chunk(c) => Some(c),
            other => {
                debug_assert!(false, "a whole-chunk poll gave {other:?}");
                None
            }
        }
    }

    /// The next thing to write, or `None` when nothing may go now. A large
    /// message streams in long chunks (up to `chunk_size`, Byte-Range end
    /// `*`) handed over a piece at a time; when responses, REPORTs, other
    /// requests or small messages are waiting, the chunk in flight is ended
    /// at once with `+` and they go first (RFC 4975 §7.1.1). Write every
    /// frame, in order, before the next.
    pub fn poll_frame(&mut self, now: Instant) -> Option<Frame> {
        if self.open.is_some() {
            return self.continue_open(now);
        }
        self.poll_next(now, true)
    }

    fn poll_next(&mut self, now: Instant, stream: bool) -> Option<Frame> {
        if let Some(c) = self.control.pop_front() {
            return Some(Frame::Chunk(c));
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
            return Some(Frame::Chunk(c));
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
            let chunk = self.next_chunk(&mut m, now, stream);
            if m.sent_last || m.failed.is_some() {
                if m.outstanding == 0 {
                    self.finish(m);
                } else {
                    self.msgs.insert(id, m);
                }
            } else if matches!(chunk, Some(Frame::Open(_))) {
                // Its turn goes on until the chunk ends (`continue_open`).
                self.msgs.insert(id, m);
            } else if chunk.is_none() && !m.asked.is_empty() {
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

    /// The message's next chunk: whole, or (with `stream`) the start of a
    /// long one when more than a piece of it is left.
    fn next_chunk(&mut self, m: &mut OutMsg, now: Instant, stream: bool) -> Option<Frame> {
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
            return Some(Frame::Chunk(c));
        }
        let cap = self.cfg.chunk_size.max(1);
        let size = if stream { self.piece_size() } else { cap };
        let (piece, last) = match m.take_piece(size) {
            Ok(Some(p)) => p,
            Ok(None) => {
                // Not supplied yet: ask the driver.
                m.ask_ahead(size, supply_ahead(size), &mut self.data_requests);
                return None;
            }
            Err(e) => {
                m.failed = Some((FAILED_READ, format!("reading the message failed: {e}")));
                if sent_any {
                    let c = self.message_chunk(m, Piece::empty(), Flag::Abort);
                    m.sent_last = true;
                    return Some(Frame::Chunk(c));
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
                Frame::Chunk(self.message_chunk(m, Piece::empty(), Flag::Abort))
            });
        }
        let len = piece.len() as u64;
        // A chunk that can grow beyond this piece is streamed.
        let open = stream && !last && piece.len() < cap;
        let mut c = self.message_chunk(m, piece, if last { Flag::End } else { Flag::More });
        c.ensure_unique_transaction_id();
        m.offset += len;
        m.sent_last = last;
        if !last {
            // Read on while this piece goes out.
            m.ask_ahead(size, supply_ahead(size), &mut self.data_requests);
        }
        // An open chunk's response deadline starts when its end-line is
        // written (`end_open`).
        let deadline = (!open).then(|| now + self.cfg.response_timeout);
        if self.track_until(&c, PendingKind::Message { msg: m.id, len }, deadline) {
            m.outstanding += 1;
            if m.fr == ReportMode::No {
                m.acked += len;
            }
        } else {
            m.acked += len;
        }
        self.progress(m);
        if open {
            let tid = ids::Id::new(c.transaction_id()).expect("generated ids fit");
            self.open = Some(OpenChunk::new(m.id, tid, c.data()));
            return Some(Frame::Open(c));
        }
        Some(Frame::Chunk(c))
    }

    fn progress(&mut self, m: &OutMsg) {
        if !m.quiet && !m.no_progress {
            self.events.push_back(SessionEvent::Progress {
                msg: m.id,
                sent: m.offset - m.start,
                acked: m.acked,
                total: m.size.map(|t| t - m.start),
            });
        }
    }

    /// The next step of the open chunk: more of its body, its end, or
    /// `None` while its message waits for the driver's bytes and nothing
    /// else waits.
    fn continue_open(&mut self, now: Instant) -> Option<Frame> {
        let id = self.open.as_ref().expect("a chunk is open").msg;
        let Some(mut m) = self.msgs.remove(&id) else {
            // Its message ended (the peer answered the chunk before its
            // end): nothing more of it goes.
            return Some(self.end_open(Piece::empty(), Flag::Abort, now));
        };
        let step = self.open_step(&mut m, now);
        if self.open.is_some() || m.sent_last || m.failed.is_some() {
            if self.open.is_none() && m.outstanding == 0 {
                self.finish(m);
            } else {
                self.msgs.insert(id, m);
            }
        } else {
            // Interrupted: the message goes on after what waits, or after
            // the other large messages' turns.
            match step {
                (_, Some(Interrupted::ForTurn)) if !m.piece_ready() && !m.asked.is_empty() => {
                    self.starved.push(id)
                }
                (_, Some(Interrupted::ForTurn)) => self.rotation.push_back(id),
                _ => self.rotation.push_front(id),
            }
            self.msgs.insert(id, m);
        }
        step.0
    }

    fn open_step(&mut self, m: &mut OutMsg, now: Instant) -> (Option<Frame>, Option<Interrupted>) {
        let cap = self.cfg.chunk_size.max(1) as u64;
        if m.cancelled || m.failed.is_some() {
            // RFC 4975 §10.5: a message refused while its chunk is being
            // sent is interrupted at once.
            if m.failed.is_none() {
                m.failed = Some((0, "cancelled".into()));
            }
            m.sent_last = true;
            return (Some(self.end_open(Piece::empty(), Flag::Abort, now)), None);
        }
        let len = self.open.as_ref().expect("a chunk is open").len;
        let others_wait = !self.control.is_empty()
            || (!self.closed
                && !self.window_full()
                && (!self.raw.is_empty() || !self.small.is_empty()));
        if others_wait || len >= cap {
            let f = self.end_open(Piece::empty(), Flag::More, now);
            return (Some(f), Some(Interrupted::ForTraffic));
        }
        let turn_waits = !self.rotation.is_empty();
        if turn_waits && len >= TURN as u64 {
            let f = self.end_open(Piece::empty(), Flag::More, now);
            return (Some(f), Some(Interrupted::ForTurn));
        }
        let size = (self.piece_size() as u64).min(cap - len) as usize;
        let (piece, last) = match m.take_piece(size) {
            Ok(Some(p)) => p,
            Ok(None) => {
                m.ask_ahead(size, supply_ahead(size), &mut self.data_requests);
                if turn_waits {
                    let f = self.end_open(Piece::empty(), Flag::More, now);
                    return (Some(f), Some(Interrupted::ForTurn));
                }
                return (None, None);
            }
            Err(e) => {
                m.failed = Some((FAILED_READ, format!("reading the message failed: {e}")));
                m.sent_last = true;
                return (Some(self.end_open(Piece::empty(), Flag::Abort, now)), None);
            }
        };
        if !last && piece.is_empty() {
            m.failed = Some((
                FAILED_READ,
                "the source ended before the announced size".into(),
            ));
            m.sent_last = true;
            return (Some(self.end_open(Piece::empty(), Flag::Abort, now)), None);
        }
        let o = self.open.as_mut().expect("a chunk is open");
        if o.would_contain_end_line(piece.as_slice()) {
            // The rest goes in a new chunk, with another transaction id.
            m.unread(piece);
            let f = self.end_open(Piece::empty(), Flag::More, now);
            return (Some(f), Some(Interrupted::ForTraffic));
        }
        o.push(piece.as_slice());
        let tid = o.tid;
        let n = piece.len() as u64;
        m.offset += n;
        if let Some(Pending {
            kind: PendingKind::Message { len, .. },
            ..
        }) = self.pending.get_mut(&tid)
        {
            *len += n;
        }
        if m.fr == ReportMode::No {
            m.acked += n;
        }
        self.progress(m);
        if last {
            m.sent_last = true;
            return (Some(self.end_open(piece, Flag::End, now)), None);
        }
        m.ask_ahead(size, supply_ahead(size), &mut self.data_requests);
        (
            Some(Frame::Body {
                tid,
                data: piece,
                end: None,
            }),
            None,
        )
    }

    /// Ends the open chunk after `data` with `flag`; its response deadline
    /// starts now.
    fn end_open(&mut self, data: Piece, flag: Flag, now: Instant) -> Frame {
        let o = self.open.take().expect("a chunk is open");
        if let Some(p) = self.pending.get(&o.tid) {
            let seq = p.seq;
            self.deadlines
                .push_back((now + self.cfg.response_timeout, o.tid, seq));
        }
        Frame::Body {
            tid: o.tid,
            data,
            end: Some(flag),
        }
    }

    /// Whether the open chunk can take a step now (see `continue_open`).
    pub(super) fn open_can_step(&self) -> bool {
        let Some(o) = &self.open else {
            return false;
        };
        let Some(m) = self.msgs.get(&o.msg) else {
            return true;
        };
        m.cancelled
            || m.failed.is_some()
            || !self.control.is_empty()
            || (!self.closed
                && !self.window_full()
                && (!self.raw.is_empty() || !self.small.is_empty()))
            || o.len >= self.cfg.chunk_size.max(1) as u64
            || !self.rotation.is_empty()
            || m.piece_ready()
    }

    pub(super) fn message_chunk(&self, m: &OutMsg, piece: Piece, flag: Flag) -> Chunk {
        // A fresh chunk whose values are checked here or were checked when
        // the message was queued: headers go in without another check.
        let mut c = Chunk::new_request_unchecked(&ids::transaction_id(), "SEND", 256);
        self.set_paths(&mut c);
        c.push_header_checked(HeaderName::MessageId, "", &m.message_id);
        let start = m.offset + 1;
        let end = m.offset + piece.len() as u64;
        let total = m.size.or(if flag == Flag::End { Some(end) } else { None });
        // RFC 4975 §7.1.1: a body over 2048 bytes has `*` as range-end.
        let range = ByteRange {
            start,
            end: (piece.len() <= INTERRUPTIBLE).then_some(end),
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
    pub(super) fn set_paths(&self, c: &mut Chunk) {
        c.push_header_checked(HeaderName::ToPath, "", &self.remote_text);
        c.push_header_checked(HeaderName::FromPath, "", &self.local_text);
    }

    pub(super) fn finish(&mut self, m: Box<OutMsg>) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_line_split_between_two_pieces_is_found() {
        let tid = ids::Id::new("abcDEF123").unwrap();
        let mut o = OpenChunk::new(1, tid, b"first piece ends with \r\n----");
        assert!(o.would_contain_end_line(b"---abcDEF123+ and more"));
        assert!(
            !o.would_contain_end_line(b"---abcDEF12"),
            "a prefix is not the marker"
        );
        assert!(!o.would_contain_end_line(b"--abcDEF123"), "one dash short");
        assert!(
            o.would_contain_end_line(b"x-------abcDEF123"),
            "inside the piece"
        );
        // Small pieces keep the tail across several of them.
        o.push(b"--");
        o.push(b"-");
        assert!(o.would_contain_end_line(b"abcDEF123"));
        o.push(b"z");
        assert!(!o.would_contain_end_line(b"abcDEF123"));
        assert_eq!(o.len, 32);
    }
}
