//! A bound MSRP connection (reference `MSRPTransport`): a reader that
//! decodes the byte stream and a writer that sends encoded chunks in order.
//! Protocol rules (segments, make_chunk, checks) live in `proto::transport`;
//! this file only moves bytes and events.
//!
//! Reading: a reader task decodes the socket into event batches (one per
//! read) until a session takes the socket over with
//! [`Transport::read_directly`]; from then on the session's own task reads
//! (one task hand-off less per chunk). Writing: a chunk is written at once
//! from the calling thread when nothing is queued ahead of it and the caller
//! asks for it; otherwise the writer task writes the queue in batches with
//! vectored writes. Bodies larger than 4 KiB are never copied on the way out.
//!
//! Memory is bounded: the reader task stops reading when the application
//! has not taken [`EVENT_QUEUE`] batches (one read each).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::AbortHandle;

mod read;
pub mod shared;
mod write;

use crate::proto::transport::{Awaited, Claim};
use read::*;
use write::*;

use super::context::Context;
use super::error::{Error, ErrorKind};
use super::logger::{Level, LoggerRef, effective};
use super::stream::Conn;
use crate::proto::Chunk;
use crate::proto::chunk::encode_end_line;
use crate::proto::session::Frame;
use crate::proto::uri::Uri;

/// Batches of decoded events (one batch per socket read) buffered between
/// the reader task and the application.
pub const EVENT_QUEUE: usize = 4;
/// Room for this many entries is kept by an empty read or write queue.
const KEEP_QUEUE_ROOM: usize = 8;

/// A chunk returned by [`Transport::read_chunk`] (whole, or a segment).
pub use crate::proto::assembly::Received;

/// A bound connection.
pub struct Transport {
    id: u64,
    ctx: Arc<Context>,
    local: Vec<Uri>,
    remote: Vec<Uri>,
    sessmatch: bool,
    logger: Option<LoggerRef>,
    read: tokio::sync::Mutex<ReadState>,
    out: Arc<Out>,
    reader: Mutex<Option<AbortHandle>>,
    pending: Arc<Pending>,
    /// Set when this is one session's view of a shared connection.
    member: Option<shared::Member>,
}

/// Responses that a [`Requester`] waits for (the rules are
/// [`Awaited`]'s): the reader task hands them over directly instead of
/// queueing them for `read_chunk`. `count` lets every other chunk pass
/// without taking the lock.
#[derive(Default)]
struct Pending {
    count: AtomicUsize,
    waiting: Mutex<Awaited<oneshot::Sender<Chunk>>>,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, Awaited<oneshot::Sender<Chunk>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends every wait (the connection is gone).
    fn drop_all(&self) {
        self.lock().clear();
        self.count.store(0, Ordering::Release);
    }

    /// Takes a response that someone waits for; gives it back otherwise.
    fn claim(&self, c: Chunk) -> Option<Chunk> {
        if self.count.load(Ordering::Acquire) == 0 {
            return Some(c);
        }
        let claimed = self.lock().claim(c);
        match claimed {
            Claim::Taken(tx, c) => {
                self.count.fetch_sub(1, Ordering::AcqRel);
                let _ = tx.send(c);
                None
            }
            Claim::NotAwaited(c) => Some(c),
        }
    }
}

/// Sends requests on a transport and gets their responses, whoever reads
/// the transport (used for AUTH refreshes while a session owns it).
#[derive(Clone)]
pub struct Requester {
    out: Arc<Out>,
    pending: Arc<Pending>,
}

impl Requester {
    /// Sends `req` and waits for its response (the caller bounds the wait).
    pub async fn request(&self, req: &Chunk) -> Result<Chunk, Error> {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect(req.transaction_id(), tx);
        self.pending.count.fetch_add(1, Ordering::AcqRel);
        let forget = || {
            if self.pending.lock().forget(req.transaction_id()) {
                self.pending.count.fetch_sub(1, Ordering::AcqRel);
            }
        };
        if let Err(e) = self.out.enqueue(req.clone(), None) {
            forget();
            return Err(e);
        }
        struct Forget<F: Fn()>(F);
        impl<F: Fn()> Drop for Forget<F> {
            fn drop(&mut self) {
                (self.0)()
            }
        }
        let _guard = Forget(forget);
        rx.await.map_err(|_| self.out.closed.error())
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.out.closed.is() || self.out.ctx.is_closed()
    }
}

/// Whether the connection ended, and the first reason it did (later
/// calls report that reason, e.g. a TLS alert, not just "closed").
#[derive(Default)]
struct CloseState {
    flag: AtomicBool,
    /// The reading side ended (the peer closed, or reading failed): what
    /// was read before is still there to be read.
    input: AtomicBool,
    why: Mutex<Option<Error>>,
}

impl CloseState {
    fn set(&self, e: &Error) {
        let mut w = self.why.lock().unwrap_or_else(|p| p.into_inner());
        if w.is_none() {
            *w = Some(e.clone());
        }
        self.flag.store(true, Ordering::Release);
    }

    fn is(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// TLS failures keep their kind (the application must learn that a
    /// certificate was refused); everything else reads as "closed", with
    /// the reason in the message.
    fn error(&self) -> Error {
        match &*self.why.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(e)
                if matches!(
                    e.kind,
                    ErrorKind::Tls
                        | ErrorKind::TlsRejected
                        | ErrorKind::TlsFingerprint
                        | ErrorKind::TlsCertificate
                ) =>
            {
                e.clone()
            }
            Some(e) => Error::closed(format!("the connection is closed: {}", e.msg)),
            None => Error::closed("the connection is closed"),
        }
    }
}

impl Transport {
    /// Starts the reader and writer tasks on `stream`. Must be called on the runtime.
    pub fn start(
        ctx: &Arc<Context>,
        stream: Conn,
        local: Vec<Uri>,
        remote: Vec<Uri>,
        sessmatch: bool,
        logger: Option<LoggerRef>,
    ) -> Transport {
        let id = ctx.next_id();
        let (out, reader, pending) = open(ctx, stream, id, &logger);
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let (handoff_tx, handoff_rx) = oneshot::channel();
        let reader = ctx.spawn(read_task(reader, ev_tx, handoff_rx));
        Transport {
            id,
            ctx: ctx.clone(),
            local,
            remote,
            sessmatch,
            logger: logger.clone(),
            read: tokio::sync::Mutex::new(ReadState::new(ReadSource::Task {
                rx: ev_rx,
                handoff: Some(handoff_tx),
            })),
            out,
            reader: Mutex::new(reader),
            pending,
            member: None,
        }
    }

    /// Bytes queued for writing and not yet handed to the operating system.
    pub fn queued_bytes(&self) -> usize {
        self.out.queued.bytes.load(Ordering::Acquire)
    }

    /// Waits until the queued bytes are at most `limit` (or the connection closed).
    pub async fn drained_to(&self, limit: usize) {
        loop {
            let n = self.out.queued.drained.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if self.queued_bytes() <= limit || self.is_closed() {
                return;
            }
            n.await;
        }
    }

    /// Sets the paths once the binding told them (shared-port server).
    pub(crate) fn set_paths(&mut self, local: Vec<Uri>, remote: Vec<Uri>) {
        self.local = local;
        self.remote = remote;
    }

    /// The transport's id (as given to logger callbacks).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The context this transport runs on.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Our full path.
    pub fn local_path(&self) -> &[Uri] {
        &self.local
    }

    /// The peer's full path.
    pub fn remote_path(&self) -> &[Uri] {
        &self.remote
    }

    /// Whether session matching (session ids only) is used for checks.
    pub fn sessmatch(&self) -> bool {
        self.sessmatch
    }

    /// Whether the connection is closed (locally, by the peer, or by an error).
    pub fn is_closed(&self) -> bool {
        self.out.closed.is()
            || self.ctx.is_closed()
            || self.member.as_ref().is_some_and(|m| m.has_left())
    }

    /// Whether this is one session's view of a connection that carries
    /// several ([`shared`]): it sends whole chunks only.
    pub fn is_shared(&self) -> bool {
        self.member.is_some()
    }

    /// Fails when this member of a shared connection has left it.
    fn check_member(&self) -> Result<(), Error> {
        match &self.member {
            Some(m) if m.has_left() => Err(Error::closed("the session left the shared connection")),
            _ => Ok(()),
        }
    }

    /// Whether the reading side ended (the peer closed, or reading failed)
    /// rather than a local close: chunks read before are still handed out
    /// by the next reads, and the close comes after them.
    pub fn input_ended(&self) -> bool {
        self.out.closed.input.load(Ordering::Acquire) && !self.ctx.is_closed()
    }

    pub(crate) fn log(&self, level: Level, msg: &str) {
        super::logger::log(&self.logger, level, msg);
    }

    /// A handle that sends requests on this connection and receives their
    /// responses directly, even while someone else reads the connection.
    pub fn requester(&self) -> Requester {
        Requester {
            out: self.out.clone(),
            pending: self.pending.clone(),
        }
    }

    /// Queues `chunk` for sending and returns at once (order is kept).
    pub fn write_chunk_nowait(&self, chunk: &Chunk) -> Result<(), Error> {
        self.check_member()?;
        self.out.enqueue(chunk.clone(), None)
    }

    /// Queues `chunks` in order, taking them (bodies are written from their
    /// own buffers, not copied). With `direct`, when nothing else is queued
    /// they are written at once from the calling thread (one system call);
    /// pass it when no more chunks are expected right away, so that a burst
    /// still leaves in batches.
    pub fn send_chunks(
        &self,
        chunks: impl IntoIterator<Item = Chunk>,
        direct: bool,
    ) -> Result<(), Error> {
        self.send_chunks_framed(chunks, direct, Framing::Check)
    }

    /// [`Transport::send_chunks`] for chunks whose bodies were already
    /// checked against their end-lines (a session picks each transaction
    /// id with `ensure_unique_transaction_id`): a large body is not
    /// scanned a second time. Debug builds check anyway.
    pub fn send_checked_chunks(
        &self,
        chunks: impl IntoIterator<Item = Chunk>,
        direct: bool,
    ) -> Result<(), Error> {
        self.send_chunks_framed(chunks, direct, Framing::Checked)
    }

    /// Queues a session's frames in order (see
    /// [`crate::proto::session::Session::poll_frame`]), as
    /// [`Transport::send_checked_chunks`] does whole chunks: bodies were
    /// checked against their end-lines, small pieces are packed into one
    /// buffer, large ones written from where they are.
    pub fn send_frames(
        &self,
        frames: impl IntoIterator<Item = Frame>,
        direct: bool,
    ) -> Result<(), Error> {
        self.check_member()?;
        let log = self.out.log;
        let mut jobs = Vec::new();
        let mut packed: Vec<u8> = Vec::new();
        let flush = |packed: &mut Vec<u8>, jobs: &mut Vec<WriteJob>| {
            if !packed.is_empty() {
                jobs.push(WriteJob::packed(std::mem::take(packed)));
            }
        };
        for f in frames {
            let small = !log && f.wire_size() <= INLINE_BODY + 256;
            match f {
                Frame::Chunk(c) if small => {
                    if packed.capacity() == 0 {
                        packed.reserve(PACKED_ROOM);
                    }
                    c.encode_start(&mut packed);
                    packed.extend_from_slice(c.data());
                    c.encode_end(c.flag(), &mut packed);
                }
                Frame::Body { tid, data, end } if small => {
                    packed.extend_from_slice(data.as_slice());
                    if let Some(flag) = end {
                        encode_end_line(&tid, flag, true, &mut packed);
                    }
                }
                Frame::Chunk(c) => {
                    flush(&mut packed, &mut jobs);
                    jobs.push(self.out.job_framed(c, None, Framing::Checked)?);
                }
                Frame::Open(c) => {
                    flush(&mut packed, &mut jobs);
                    debug_assert!(!c.body_contains_end_line(c.data()));
                    jobs.push(WriteJob::open(c, log));
                }
                Frame::Body { tid, data, end } => {
                    flush(&mut packed, &mut jobs);
                    jobs.push(WriteJob::more(tid, data, end, log));
                }
            }
            if packed.len() >= PACKED_LIMIT {
                flush(&mut packed, &mut jobs);
            }
        }
        flush(&mut packed, &mut jobs);
        if jobs.is_empty() {
            return Ok(());
        }
        self.out.enqueue_jobs(jobs, direct)
    }

    fn send_chunks_framed(
        &self,
        chunks: impl IntoIterator<Item = Chunk>,
        direct: bool,
        framing: Framing,
    ) -> Result<(), Error> {
        self.check_member()?;
        let chunks = chunks.into_iter();
        if self.out.log {
            // The logger is told about each chunk as it is written.
            let jobs = chunks
                .into_iter()
                .map(|c| self.out.job_framed(c, None, framing))
                .collect::<Result<Vec<_>, _>>()?;
            if jobs.is_empty() {
                return Ok(());
            }
            return self.out.enqueue_jobs(jobs, direct);
        }
        // Small chunks in a row are encoded into one buffer: one allocation
        // and one queue entry for a burst of messages or responses.
        let mut jobs = Vec::new();
        let mut packed: Vec<u8> = Vec::new();
        // Room for a whole burst when the count is not known (a pump takes
        // the session's chunks one by one): regrowing a buffer on the way
        // to `PACKED_LIMIT` copied it twice. A job that then waits in the
        // queue gives back what it did not use (`WriteJob::trim`).
        let hint = match chunks.size_hint().0 {
            0 => PACKED_ROOM,
            n => (n * 384).min(PACKED_ROOM),
        };
        for c in chunks {
            if c.size() > INLINE_BODY {
                if !packed.is_empty() {
                    jobs.push(WriteJob::packed(std::mem::take(&mut packed)));
                }
                jobs.push(self.out.job_framed(c, None, framing)?);
                continue;
            }
            if framing.contains_end_line(&c) {
                return Err(end_line_in_body());
            }
            if packed.capacity() == 0 {
                packed.reserve(hint);
            }
            c.encode_start(&mut packed);
            packed.extend_from_slice(c.data());
            c.encode_end(c.flag(), &mut packed);
            if packed.len() >= PACKED_LIMIT {
                jobs.push(WriteJob::packed(std::mem::take(&mut packed)));
            }
        }
        if !packed.is_empty() {
            jobs.push(WriteJob::packed(packed));
        }
        if jobs.is_empty() {
            return Ok(());
        }
        self.out.enqueue_jobs(jobs, direct)
    }

    /// Sends `chunk` and waits until it was handed to the operating system.
    pub async fn write_chunk(&self, chunk: &Chunk) -> Result<(), Error> {
        self.check_member()?;
        if chunk.body_contains_end_line(chunk.data()) {
            return Err(end_line_in_body());
        }
        let (tx, rx) = oneshot::channel();
        // Written at once from this thread when the writer is idle, from
        // the caller's chunk; otherwise a copy is queued.
        match self.out.write_borrowed_now(chunk, tx)? {
            Direct::Sent => return Ok(()),
            Direct::Waiting => {}
            Direct::Busy(tx) => {
                let job = self
                    .out
                    .job_framed(chunk.clone(), Some(tx), Framing::Checked)?;
                self.out.enqueue_now(job)?;
            }
        }
        rx.await.unwrap_or_else(|_| Err(self.out.closed.error()))
    }

    /// Reads the next chunk. A chunk with more than `size` body bytes is
    /// handed out in "virtual" segments of at most `size` bytes as they
    /// arrive (flag `+`, Byte-Range moved, segment number counting from 1);
    /// `usize::MAX` reads whole chunks.
    pub async fn read_chunk(&self, size: usize) -> Result<Received, Error> {
        let mut guard = self.read.lock().await;
        let st = &mut *guard;
        if let Some(r) = st.back.take() {
            return Ok(r);
        }
        loop {
            if let Some(r) = self.step(st, size) {
                return r;
            }
            match &mut st.source {
                ReadSource::Task { rx, .. } => match rx.recv().await {
                    Some(evs) if st.ahead.is_empty() => st.ahead = evs,
                    Some(evs) => st.ahead.extend(evs),
                    None => st
                        .ahead
                        .push_back(InEvent::Closed(Error::closed("the connection is closed"))),
                },
                ReadSource::Gone => st.ahead.push_back(InEvent::Closed(self.out.closed.error())),
                ReadSource::Direct(r) => {
                    // A local close ends a read that is waiting.
                    let shut = self.out.shut.notified();
                    tokio::pin!(shut);
                    shut.as_mut().enable();
                    if self.out.closed.is() {
                        st.ahead.push_back(InEvent::Closed(self.out.closed.error()));
                    } else {
                        let closed = tokio::select! {
                            _ = r.read_batch(&mut st.ahead) => false,
                            _ = shut => true,
                        };
                        if closed {
                            st.ahead.push_back(InEvent::Closed(self.out.closed.error()));
                        }
                    }
                }
            }
        }
    }

    /// Frees the reading side of a closed connection: its socket (once the
    /// writer is done too) and read buffers; reads give "closed" from now on.
    /// A session calls it when it ends, so that a session the application
    /// has not freed yet keeps no connection.
    pub async fn release_input(&self) {
        if let Some(m) = &self.member {
            m.leave();
        }
        let mut st = self.read.lock().await;
        st.source = ReadSource::Gone;
        st.ahead = VecDeque::new();
        st.assembly.clear();
        st.back = None;
        if let Some(h) = self.reader.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
    }

    /// Gives back what a read returned (the binding SEND when it carries a
    /// body): the next read returns it, then what follows it.
    pub async fn unread(&self, r: Received) {
        self.read.lock().await.back = Some(r);
    }

    /// From now on the callers of `read_chunk` read the socket themselves
    /// instead of the reader task (a session does this: it reads all the
    /// time, and saves a task hand-off per chunk). Nothing is lost or
    /// reordered on the way.
    pub async fn read_directly(&self) {
        self.switch_to_direct(self.read.lock().await).await;
    }

    /// As [`Transport::read_directly`], but gives up, changing nothing and
    /// returning false, when the reads in progress do not end within `wait`.
    /// (Only the wait for them is bounded: the reader task answers a
    /// hand-off at once, and a hand-off cut short would lose the reader.)
    pub async fn read_directly_within(&self, wait: std::time::Duration) -> bool {
        match tokio::time::timeout(wait, self.read.lock()).await {
            Ok(st) => {
                self.switch_to_direct(st).await;
                true
            }
            Err(_) => false,
        }
    }

    async fn switch_to_direct(&self, mut st: tokio::sync::MutexGuard<'_, ReadState>) {
        let ReadSource::Task { rx, handoff } = &mut st.source else {
            return;
        };
        let Some(h) = handoff.take() else { return };
        let (back_tx, back_rx) = oneshot::channel();
        if h.send(back_tx).is_err() {
            return; // the reader task ended: the connection is closed
        }
        let Ok((reader, held)) = back_rx.await else {
            return;
        };
        // The task has stopped: take the batches it delivered, then the one it held.
        let mut evs = VecDeque::new();
        while let Some(b) = rx.recv().await {
            evs.extend(b);
        }
        evs.extend(held);
        st.ahead.extend(evs);
        st.source = ReadSource::Direct(reader);
    }

    /// Waits for the next chunk as [`Transport::read_chunk`], then adds
    /// what else has already arrived, up to `max` in all (without waiting),
    /// so that a busy reader handles a burst in one go.
    pub async fn read_chunks(
        &self,
        size: usize,
        max: usize,
        out: &mut Vec<Result<Received, Error>>,
    ) {
        let first = self.read_chunk(size).await;
        let stop = first.is_err();
        out.push(first);
        if stop {
            return;
        }
        let mut st = self.read.lock().await;
        // Room for what is decoded already, at once (chunks are large to
        // move, and a burst's vector would otherwise grow step by step).
        out.reserve(st.ahead.len().min(max.saturating_sub(out.len())));
        while out.len() < max {
            match self.step(&mut st, size) {
                Some(r) => {
                    let stop = r.is_err();
                    out.push(r);
                    if stop {
                        break;
                    }
                }
                None => match &mut st.source {
                    ReadSource::Task { rx, .. } => match rx.try_recv() {
                        Ok(evs) => st.ahead.extend(evs),
                        Err(_) => break,
                    },
                    // Reading the socket could wait: hand out what is here.
                    ReadSource::Direct(_) | ReadSource::Gone => break,
                },
            }
        }
        // A burst's room is not kept while the connection waits. (A
        // connection read directly keeps it while reads bring data: its
        // reader gives it back when a read has to wait, see `Reader::idle`.)
        if matches!(st.source, ReadSource::Task { .. }) {
            Reader::idle(&mut st.ahead);
        }
    }

    /// Makes progress with the events at hand, without waiting: a chunk or
    /// segment when one is complete, `None` when more events are needed.
    fn step(&self, st: &mut ReadState, size: usize) -> Option<Result<Received, Error>> {
        let r = st.assembly.step(&mut st.ahead, size)?;
        if let Err(e) = &r {
            match &self.member {
                // The connection's state is the demultiplexer's to set.
                Some(m) => m.leave(),
                None => self.out.closed.set(e),
            }
        }
        Some(r)
    }

    /// Closes the connection: queued chunks are still written, then the
    /// socket is shut down; reads and writes give "closed" from now on.
    pub fn close(&self) {
        if let Some(m) = &self.member {
            // Others use the connection: this session only leaves it.
            m.leave();
            return;
        }
        self.out
            .closed
            .set(&Error::closed("the connection was closed locally"));
        self.out.close();
        self.out.shut.notify_waiters();
        self.pending.drop_all();
        if let Some(h) = self.reader.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
    }
}

/// Starts the writer task on `stream` and makes its reader (for the
/// caller's task to run): the output, the reader, and the responses that
/// requesters wait for.
fn open(
    ctx: &Arc<Context>,
    stream: Conn,
    id: u64,
    logger: &Option<LoggerRef>,
) -> (Arc<Out>, Box<Reader>, Arc<Pending>) {
    let _ = stream.tcp().set_nodelay(true);
    let closed = Arc::new(CloseState::default());
    let lg = effective(logger);
    let pending = Arc::new(Pending::default());
    let out = Arc::new(Out {
        ctx: ctx.clone(),
        log: lg.is_some(),
        q: Mutex::new(WriteQueue {
            jobs: VecDeque::new(),
            busy: false,
            open: true,
            direct: None,
            direct_tls: None,
        }),
        wake: Notify::new(),
        shut: Notify::new(),
        closed: closed.clone(),
        queued: Queued::default(),
    });
    // Plain TCP splits without a lock; TLS shares one session state.
    let src = match stream {
        Conn::Tcp(s) => {
            let (rd, wr) = s.into_split();
            let wr = Arc::new(wr);
            if lg.is_none() {
                out.lock().direct = Some(wr.clone());
            }
            ctx.spawn(write_loop(TcpSink(wr), out.clone(), id, lg.clone()));
            Source::Stream(Box::new(rd))
        }
        // WebSocket: no direct writes (each chunk goes in a message
        // of its own, cut by the connection).
        Conn::Ws(ws) => {
            let (rd, wr) = tokio::io::split(*ws);
            ctx.spawn(write_loop(StreamSink(wr), out.clone(), id, lg.clone()));
            Source::Stream(Box::new(rd))
        }
        tls_conn => {
            let (rd, wr) = super::stream::split(tls_conn);
            if lg.is_none() {
                out.lock().direct_tls = Some(wr.handle());
            }
            ctx.spawn(write_loop(StreamSink(wr), out.clone(), id, lg.clone()));
            Source::Tls(rd)
        }
    };
    let reader = Box::new(Reader::new(src, id, lg, closed, pending.clone()));
    (out, reader, pending)
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("id", &self.id)
            .field("local", &crate::proto::uri::format_path(&self.local))
            .field("remote", &crate::proto::uri::format_path(&self.remote))
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Drop for Transport {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A switch to direct reads that cannot take the read side within its
    /// wait (a read is in progress) changes nothing: the reader task goes on
    /// reading, and a later switch takes over with nothing lost or reordered.
    #[test]
    fn a_switch_to_direct_reads_that_times_out_changes_nothing() {
        use crate::proto::transport::{ChunkParams, make_chunk};
        const T: Duration = Duration::from_secs(10);
        let (ctx, a, p) = crate::engine::connector::loopback_context(2);
        let send = |text: &str| {
            let prm = ChunkParams {
                data: text.as_bytes(),
                ..Default::default()
            };
            let c = make_chunk(a.local_path(), a.remote_path(), &prm).unwrap();
            ctx.block_on(T, a.write_chunk(&c)).unwrap();
        };
        let read = || {
            let r = ctx.block_on(T, p.read_chunk(usize::MAX)).unwrap();
            String::from_utf8(r.chunk.data().to_vec()).unwrap()
        };
        send("one");
        // A read in progress holds the read side.
        let held = ctx.block_on(T, async { Ok(p.read.lock().await) }).unwrap();
        let switched = ctx
            .block_on(T, async {
                Ok(p.read_directly_within(Duration::from_millis(50)).await)
            })
            .unwrap();
        assert!(!switched);
        drop(held);
        assert!(matches!(
            ctx.block_on(T, async {
                Ok(matches!(
                    p.read.lock().await.source,
                    ReadSource::Task { .. }
                ))
            }),
            Ok(true)
        ));
        send("two");
        assert_eq!(read(), "one");
        send("three");
        send("four");
        std::thread::sleep(Duration::from_millis(50)); // read ahead by the task, most likely
        let switched = ctx
            .block_on(T, async { Ok(p.read_directly_within(T).await) })
            .unwrap();
        assert!(switched);
        assert!(matches!(
            ctx.block_on(T, async {
                Ok(matches!(p.read.lock().await.source, ReadSource::Direct(_)))
            }),
            Ok(true)
        ));
        send("five");
        for want in ["two", "three", "four", "five"] {
            assert_eq!(read(), want);
        }
    }
}
