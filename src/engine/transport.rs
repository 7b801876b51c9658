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
use std::io::IoSlice;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::AbortHandle;

use super::context::Context;
use super::error::{Error, ErrorKind};
use super::logger::{Level, LoggerRef, effective};
use super::stream::{Conn, tls_error, try_send_vectored};
use crate::proto::decoder::{Decoder, Event};
use crate::proto::transport::segment;
use crate::proto::uri::Uri;
use crate::proto::{Chunk, Flag};

/// Batches of decoded events (one batch per socket read) buffered between
/// the reader task and the application.
pub const EVENT_QUEUE: usize = 4;
/// Chunks up to this size are assembled by the reader task and passed on whole.
const WHOLE_LIMIT: usize = 256 * 1024;
/// Socket reads through the read buffer take up to this much. Measured on
/// 1 GiB bulk transfers in 64 KiB chunks: 256 KiB reads make about 40 %
/// fewer read and send calls than 128 KiB (the sender then writes larger
/// pieces too), and 64 KiB twice as many. The buffer is never zeroed (reads
/// go into its spare capacity), and a connection holds it only while reads
/// bring data: when a read has to wait it goes back to a pool (see
/// `Reader::poll_read_lent`). Measured with 200 connection pairs that each
/// carried one 1 MiB chunk and then went quiet: 274 KiB of memory per pair
/// while the buffer stayed with its connection, a few KiB once lent.
const READ_BUF: usize = 256 * 1024;
/// Room for this many entries is kept by an empty read or write queue.
const KEEP_QUEUE_ROOM: usize = 8;

enum InEvent {
    /// A complete chunk (data and flag set), assembled by the reader.
    Whole(Chunk),
    Head(Chunk),
    Data(Vec<u8>),
    End(Flag),
    Closed(Error),
}

struct Current {
    head: Chunk,
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out as segments.
    pos: usize,
    offset: u64,
    segment: u32,
    /// The chunk's flag once its end-line arrived (the rest is in `buf`).
    end: Option<Flag>,
}

/// Where decoded events come from: the reader task (any transport, so that
/// a closed connection is noticed and relay AUTH responses are taken even
/// while nobody reads), or, once a session drives the transport, the
/// reading caller itself (one task hand-off less per chunk).
enum ReadSource {
    Task {
        rx: mpsc::Receiver<Batch>,
        /// Asks the reader task to stop and give its reader back.
        handoff: Option<oneshot::Sender<Handoff>>,
    },
    Direct(Box<Reader>),
    /// Released after the connection closed ([`Transport::release_input`]):
    /// the socket and the read buffers are gone.
    Gone,
}

/// The reader task's answer to a handoff: the reader and a batch it had not delivered yet.
type Handoff = oneshot::Sender<(Box<Reader>, Batch)>;

/// Events from one read. A deque, so that a session reading the socket
/// itself decodes straight into the queue it takes chunks from (events
/// carry whole chunk heads: moving them again costs).
type Batch = VecDeque<InEvent>;

struct ReadState {
    source: ReadSource,
    /// A chunk or segment given back with [`Transport::unread`]: the next read returns it.
    back: Option<Received>,
    /// Events received and not yet handled, in order.
    ahead: VecDeque<InEvent>,
    cur: Option<Current>,
    done: Option<Error>,
}

/// A chunk returned by [`Transport::read_chunk`]; `segment` is 0 for a whole
/// chunk and counts from 1 for the reference's "virtual" segments.
#[derive(Debug)]
pub struct Received {
    /// The chunk (or segment).
    pub chunk: Chunk,
    /// Segment number (0: not segmented).
    pub segment: u32,
    /// Whether the chunk's end-line was read: true for whole chunks and for
    /// the last segment of a segmented one.
    pub complete: bool,
}

/// One encoded chunk waiting to be written. Small bodies are copied next to
/// the head (one buffer); larger ones stay in the chunk's own buffer and go
/// out with a vectored write, so body bytes are never copied on the way out.
struct WriteJob {
    /// Start line and headers; with `inline`, also the body and the end-line.
    head: Vec<u8>,
    body: Vec<u8>,
    /// The body, when it is a piece of a shared buffer (then `body` is empty).
    shared: Option<Bytes>,
    tail: Vec<u8>,
    inline: bool,
    head_len: usize,
    body_len: usize,
    /// Bytes already written (a direct write that did not finish).
    sent: usize,
    chunk: Option<Chunk>,
    done: Option<oneshot::Sender<Result<(), Error>>>,
}

/// Bodies up to this size are copied into the head buffer.
const INLINE_BODY: usize = 4096;
/// Small chunks sent together share a buffer up to about this size.
const PACKED_LIMIT: usize = 64 * 1024;
/// Room for a buffer of small chunks: the limit and a last chunk that
/// crosses it (its body is inline, its head of usual size).
const PACKED_ROOM: usize = PACKED_LIMIT + INLINE_BODY + 1024;

/// How a write from the caller's thread went.
enum Direct {
    /// Everything is with the operating system.
    Sent,
    /// Part of it is: the rest waits in the queue with the call's waiter.
    Waiting,
    /// Nothing was written (the connection is busy, or logged); the waiter
    /// is handed back.
    Busy(oneshot::Sender<Result<(), Error>>),
}

/// Whether a chunk's body still has to be checked for its end-line before
/// it is framed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Scan the body.
    Check,
    /// The caller checked it (debug builds verify the claim).
    Checked,
}

impl Framing {
    fn contains_end_line(self, c: &Chunk) -> bool {
        match self {
            Framing::Check => c.body_contains_end_line(c.data()),
            Framing::Checked => {
                debug_assert!(
                    !c.body_contains_end_line(c.data()),
                    "a chunk passed as checked contains its end-line"
                );
                false
            }
        }
    }
}

/// What is left of `parts` (written in order) once `sent` bytes are written.
fn left_after(parts: [&[u8]; 3], mut sent: usize) -> impl Iterator<Item = &[u8]> {
    parts.into_iter().filter_map(move |p| {
        if sent >= p.len() {
            sent -= p.len();
            return None;
        }
        let rest = &p[sent..];
        sent = 0;
        Some(rest)
    })
}

fn end_line_in_body() -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        "the body contains the chunk's end-line; give the chunk another transaction id",
    )
}

impl WriteJob {
    fn new(mut chunk: Chunk, log: bool, done: Option<oneshot::Sender<Result<(), Error>>>) -> Self {
        let body_len = chunk.size();
        let inline = body_len <= INLINE_BODY;
        let mut head = Vec::with_capacity(256 + if inline { body_len } else { 0 });
        chunk.encode_start(&mut head);
        let head_len = head.len();
        let mut tail = Vec::new();
        let mut shared = None;
        let body = if inline {
            head.extend_from_slice(chunk.data());
            chunk.encode_end(chunk.flag(), &mut head);
            Vec::new()
        } else {
            chunk.encode_end(chunk.flag(), &mut tail);
            if log {
                chunk.data().to_vec()
            } else {
                // A shared body (a piece of a message in memory, or of a read
                // buffer) is written from where it is.
                shared = chunk.take_shared();
                if shared.is_some() {
                    Vec::new()
                } else {
                    chunk.take_data()
                }
            }
        };
        WriteJob {
            head,
            body,
            shared,
            tail,
            inline,
            head_len,
            body_len,
            sent: 0,
            chunk: log.then_some(chunk),
            done,
        }
    }

    /// Whole encoded chunks, written as they are (no logging, no waiter).
    fn packed(bytes: Vec<u8>) -> Self {
        WriteJob {
            head_len: bytes.len(),
            head: bytes,
            body: Vec::new(),
            shared: None,
            tail: Vec::new(),
            inline: false,
            body_len: 0,
            sent: 0,
            chunk: None,
            done: None,
        }
    }

    /// The head, body and end-line as written.
    fn parts(&self) -> [&[u8]; 3] {
        if self.inline {
            let (h, rest) = self.head.split_at(self.head_len);
            let (b, t) = rest.split_at(self.body_len);
            [h, b, t]
        } else {
            [&self.head, self.body(), &self.tail]
        }
    }

    /// The body, when it is not inline.
    fn body(&self) -> &[u8] {
        self.shared.as_deref().unwrap_or(&self.body)
    }

    /// Gives back room reserved for a burst of small chunks that did not
    /// come, before the job waits in the queue (a job written at once is
    /// freed anyway).
    fn trim(&mut self) {
        if self.head.capacity() - self.head.len() > INLINE_BODY {
            self.head.shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        self.head.len() + self.body().len() + self.tail.len()
    }

    /// Appends what is left to write of this job.
    fn slices<'a>(&'a self, out: &mut Vec<IoSlice<'a>>) {
        let parts = [&self.head[..], self.body(), &self.tail[..]];
        out.extend(left_after(parts, self.sent).map(IoSlice::new));
    }

    fn finish(mut self, r: Result<(), Error>) {
        if let Some(d) = self.done.take() {
            let _ = d.send(r);
        }
    }
}

impl Drop for WriteJob {
    fn drop(&mut self) {
        // A large body's buffer goes back for the next piece or read.
        crate::proto::bufpool::give(std::mem::take(&mut self.body));
    }
}

/// What waits for the writer task.
struct WriteQueue {
    jobs: VecDeque<WriteJob>,
    /// The writer task is writing jobs it took from here.
    busy: bool,
    /// False once closed locally: the writer writes what is queued, then shuts down.
    open: bool,
    /// Plain TCP without logging: the socket, so that a caller can write
    /// at once when nothing is queued or being written (saves a task hand-off).
    direct: Option<Arc<OwnedWriteHalf>>,
    /// TLS without logging: the writing half, for `write_chunk` to write at
    /// once in the same case (see `Out::enqueue_now`).
    direct_tls: Option<super::stream::ConnHalf>,
}

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
}

/// The sending side, shared with [`Requester`]s.
struct Out {
    ctx: Arc<Context>,
    /// Whether the writer logs what it writes (a logger was set at start).
    log: bool,
    q: Mutex<WriteQueue>,
    /// Wakes the writer task when jobs are queued or the queue closes.
    wake: Notify,
    /// Wakes a caller reading the socket directly when the transport closes.
    shut: Notify,
    closed: Arc<CloseState>,
    queued: Queued,
}

/// Responses that a [`Requester`] waits for: the reader task hands them
/// over directly instead of queueing them for `read_chunk`.
#[derive(Default)]
struct Pending {
    count: AtomicUsize,
    waiting: Mutex<std::collections::HashMap<String, oneshot::Sender<Chunk>>>,
}

impl Pending {
    /// Ends every wait (the connection is gone).
    fn drop_all(&self) {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.count.store(0, Ordering::Release);
    }

    /// Takes a response that someone waits for; gives it back otherwise.
    fn claim(&self, c: Chunk) -> Option<Chunk> {
        if c.is_request() || self.count.load(Ordering::Acquire) == 0 {
            return Some(c);
        }
        let w = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(c.transaction_id());
        match w {
            Some(tx) => {
                self.count.fetch_sub(1, Ordering::AcqRel);
                let _ = tx.send(c);
                None
            }
            None => Some(c),
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
        {
            let mut w = self
                .pending
                .waiting
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            w.insert(req.transaction_id().to_owned(), tx);
            self.pending.count.fetch_add(1, Ordering::AcqRel);
        }
        let forget = || {
            if self
                .pending
                .waiting
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(req.transaction_id())
                .is_some()
            {
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

/// Bytes handed to the writer task and not yet written, with a signal when they go out.
#[derive(Default)]
struct Queued {
    bytes: AtomicUsize,
    drained: Notify,
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

impl Out {
    fn lock(&self) -> std::sync::MutexGuard<'_, WriteQueue> {
        self.q.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enqueue(
        &self,
        chunk: Chunk,
        done: Option<oneshot::Sender<Result<(), Error>>>,
    ) -> Result<(), Error> {
        let job = self.job(chunk, done)?;
        self.enqueue_jobs(vec![job], false)
    }

    fn job(
        &self,
        chunk: Chunk,
        done: Option<oneshot::Sender<Result<(), Error>>>,
    ) -> Result<WriteJob, Error> {
        self.job_framed(chunk, done, Framing::Check)
    }

    fn job_framed(
        &self,
        chunk: Chunk,
        done: Option<oneshot::Sender<Result<(), Error>>>,
        framing: Framing,
    ) -> Result<WriteJob, Error> {
        if framing.contains_end_line(&chunk) {
            return Err(end_line_in_body());
        }
        Ok(WriteJob::new(chunk, self.log, done))
    }

    /// Queues `jobs` in order. With `direct`, when nothing is queued or
    /// being written, writes them at once from this thread instead (one
    /// system call, no hand-off to the writer task); what does not fit in
    /// the socket's buffer is queued.
    fn enqueue_jobs(&self, jobs: Vec<WriteJob>, direct: bool) -> Result<(), Error> {
        if self.closed.is() || self.ctx.is_closed() {
            return Err(self.closed.error());
        }
        let mut q = self.lock();
        if !q.open {
            return Err(self.closed.error());
        }
        let mut jobs = jobs.into_iter().peekable();
        let mut written = Vec::new();
        if let (true, Some(sock), false, true) = (direct, &q.direct, q.busy, q.jobs.is_empty()) {
            let batch: Vec<WriteJob> = jobs.by_ref().take(WRITE_JOBS).collect();
            let mut v = Vec::with_capacity(batch.len() * 3);
            for j in &batch {
                j.slices(&mut v);
            }
            // An error other than a full buffer is met again, and
            // reported, by the writer task.
            let mut n = try_send_vectored((**sock).as_ref(), &v).unwrap_or(0);
            drop(v);
            for mut j in batch {
                let left = j.len();
                if n >= left {
                    n -= left;
                    written.push(j);
                } else {
                    j.sent = n;
                    n = 0;
                    self.queued.bytes.fetch_add(left - j.sent, Ordering::AcqRel);
                    j.trim();
                    q.jobs.push_back(j);
                }
            }
        }
        let queued = jobs.peek().is_some() || !q.jobs.is_empty();
        for mut j in jobs {
            self.queued.bytes.fetch_add(j.len(), Ordering::AcqRel);
            j.trim();
            q.jobs.push_back(j);
        }
        drop(q);
        if queued {
            self.wake.notify_one();
        }
        for j in written {
            j.finish(Ok(()));
        }
        Ok(())
    }

    /// `write_chunk`'s job. Over TLS as over plain TCP it is written from
    /// the calling thread when the writer is idle and the connection free:
    /// rustls takes it (up to its send buffer) and the socket what it can;
    /// what rustls did not take is queued, and records rustls could not send
    /// yet are left to the writer task to flush (an empty job that finishes
    /// the call once they are sent). A session's sends do not come here:
    /// they run on the thread that reads the connection, which would then
    /// wait for the encryption.
    fn enqueue_now(&self, mut job: WriteJob) -> Result<(), Error> {
        if self.closed.is() || self.ctx.is_closed() {
            return Err(self.closed.error());
        }
        let mut q = self.lock();
        let tls = match (&q.direct_tls, q.open, q.busy, q.jobs.is_empty()) {
            (Some(h), true, false, true) => h.handle(),
            _ => {
                drop(q);
                return self.enqueue_jobs(vec![job], true);
            }
        };
        let r = {
            let mut v = Vec::with_capacity(3);
            job.slices(&mut v);
            tls.try_write_now(&v)
        };
        match r {
            Some(Ok((n, unsent))) => {
                job.sent = n.min(job.len());
                let done = if job.sent < job.len() {
                    self.queued
                        .bytes
                        .fetch_add(job.len() - job.sent, Ordering::AcqRel);
                    q.jobs.push_back(job);
                    None
                } else if unsent {
                    // Finished when the writer task has sent the rest of
                    // its records: `write_chunk` still returns only once
                    // the whole chunk is with the operating system.
                    let mut flush = WriteJob::packed(Vec::new());
                    flush.done = job.done.take();
                    q.jobs.push_back(flush);
                    None
                } else {
                    Some(job)
                };
                let wake = !q.jobs.is_empty();
                drop(q);
                if wake {
                    self.wake.notify_one();
                }
                if let Some(job) = done {
                    job.finish(Ok(()));
                }
                Ok(())
            }
            // In use by the reading half, or an error the writer task meets
            // again and reports: queued.
            _ => {
                drop(q);
                self.enqueue_jobs(vec![job], true)
            }
        }
    }

    /// `write_chunk`'s first try, from the caller's thread and without
    /// copying the chunk: when nothing is logged, queued or being written,
    /// its head, body and end-line go straight to the socket (or to rustls,
    /// as in [`Out::enqueue_now`]). Only bytes the socket or rustls did not
    /// take are copied, into a job that carries `done`. The body was
    /// checked for its end-line by the caller.
    fn write_borrowed_now(
        &self,
        chunk: &Chunk,
        done: oneshot::Sender<Result<(), Error>>,
    ) -> Result<Direct, Error> {
        if self.closed.is() || self.ctx.is_closed() {
            return Err(self.closed.error());
        }
        if self.log {
            return Ok(Direct::Busy(done));
        }
        let mut q = self.lock();
        if !q.open || q.busy || !q.jobs.is_empty() {
            return Ok(Direct::Busy(done));
        }
        let mut head = Vec::with_capacity(256);
        chunk.encode_start(&mut head);
        let mut tail = Vec::with_capacity(48);
        chunk.encode_end(chunk.flag(), &mut tail);
        let parts = [&head[..], chunk.data(), &tail[..]];
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let slices = parts.map(IoSlice::new);
        let (n, unsent) = if let Some(sock) = &q.direct {
            // An error other than a full buffer is met again, and
            // reported, by the writer task.
            (
                try_send_vectored((**sock).as_ref(), &slices).unwrap_or(0),
                false,
            )
        } else if let Some(h) = &q.direct_tls {
            match h.handle().try_write_now(&slices) {
                Some(Ok(r)) => r,
                _ => return Ok(Direct::Busy(done)),
            }
        } else {
            return Ok(Direct::Busy(done));
        };
        if n == 0 {
            return Ok(Direct::Busy(done));
        }
        let job = if n < total {
            let mut rest = Vec::with_capacity(total - n);
            for p in left_after(parts, n) {
                rest.extend_from_slice(p);
            }
            self.queued.bytes.fetch_add(rest.len(), Ordering::AcqRel);
            rest
        } else if unsent {
            // rustls holds records the socket did not take: the writer task
            // sends them, and the call ends when it has.
            Vec::new()
        } else {
            return Ok(Direct::Sent);
        };
        let mut job = WriteJob::packed(job);
        job.done = Some(done);
        q.jobs.push_back(job);
        drop(q);
        self.wake.notify_one();
        Ok(Direct::Waiting)
    }

    /// No more jobs: the writer writes what is queued and shuts the connection down.
    fn close(&self) {
        self.lock().open = false;
        self.wake.notify_one();
    }
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
        let _ = stream.tcp().set_nodelay(true);
        let (ev_tx, ev_rx) = mpsc::channel(EVENT_QUEUE);
        let closed = Arc::new(CloseState::default());
        let lg = effective(&logger);
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
            tls_conn => {
                let (rd, wr) = super::stream::split(tls_conn);
                if lg.is_none() {
                    out.lock().direct_tls = Some(wr.handle());
                }
                ctx.spawn(write_loop(StreamSink(wr), out.clone(), id, lg.clone()));
                Source::Tls(rd)
            }
        };
        let reader = Box::new(Reader::new(src, id, lg, closed.clone(), pending.clone()));
        let (handoff_tx, handoff_rx) = oneshot::channel();
        let reader = ctx.spawn(read_task(reader, ev_tx, handoff_rx));
        Transport {
            id,
            ctx: ctx.clone(),
            local,
            remote,
            sessmatch,
            logger: logger.clone(),
            read: tokio::sync::Mutex::new(ReadState {
                source: ReadSource::Task {
                    rx: ev_rx,
                    handoff: Some(handoff_tx),
                },
                back: None,
                ahead: VecDeque::new(),
                cur: None,
                done: None,
            }),
            out,
            reader: Mutex::new(reader),
            pending,
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
        self.out.closed.is() || self.ctx.is_closed()
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

    fn send_chunks_framed(
        &self,
        chunks: impl IntoIterator<Item = Chunk>,
        direct: bool,
        framing: Framing,
    ) -> Result<(), Error> {
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
        let mut st = self.read.lock().await;
        st.source = ReadSource::Gone;
        st.ahead = VecDeque::new();
        st.cur = None;
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
        loop {
            // More than `size` bytes of the current chunk are here: hand out
            // `size` of them as a segment. When the chunk's end has also
            // arrived, the last piece (at most `size`) carries its real flag.
            if let Some(cur) = st.cur.as_mut() {
                let step = size.max(1);
                let left = cur.buf.len() - cur.pos;
                if cur.end.is_none() && left > step {
                    // Before cutting, see whether the end is already here,
                    // so the last segment carries the real flag.
                    if let Some(InEvent::End(f)) = st.ahead.front() {
                        cur.end = Some(*f);
                        st.ahead.pop_front();
                    }
                }
                if let (Some(flag), true) = (cur.end, left <= step) {
                    return Some(Ok(finish(st.cur.take().expect("current chunk"), flag)));
                }
                if size != usize::MAX && left > step {
                    let piece = &cur.buf[cur.pos..cur.pos + step];
                    let seg = segment(&cur.head, cur.offset, piece, false, Flag::More);
                    cur.pos += step;
                    cur.offset += step as u64;
                    cur.segment += 1;
                    return Some(Ok(Received {
                        chunk: seg,
                        segment: cur.segment,
                        complete: false,
                    }));
                }
            }
            if let Some(e) = &st.done {
                return Some(Err(e.clone()));
            }
            let ev = st.ahead.pop_front()?;
            match ev {
                InEvent::Closed(e) => {
                    self.out.closed.set(&e);
                    st.cur = None;
                    st.done = Some(e.clone());
                    return Some(Err(e));
                }
                InEvent::Whole(c) if size == usize::MAX || c.size() <= size.max(1) => {
                    return Some(Ok(Received {
                        chunk: c,
                        segment: 0,
                        complete: true,
                    }));
                }
                InEvent::Whole(mut c) => {
                    let flag = c.flag();
                    let buf = c.take_data();
                    st.cur = Some(Current {
                        head: c,
                        buf,
                        pos: 0,
                        offset: 0,
                        segment: 0,
                        end: Some(flag),
                    });
                }
                InEvent::Head(c) => {
                    st.cur = Some(Current {
                        head: c,
                        buf: Vec::new(),
                        pos: 0,
                        offset: 0,
                        segment: 0,
                        end: None,
                    })
                }
                InEvent::Data(d) => {
                    let Some(cur) = st.cur.as_mut() else { continue };
                    if cur.pos == cur.buf.len() {
                        cur.buf = d;
                        cur.pos = 0;
                    } else {
                        // What is left is at most `size` bytes: move it to
                        // the front before appending.
                        cur.buf.drain(..cur.pos);
                        cur.pos = 0;
                        cur.buf.extend_from_slice(&d);
                    }
                }
                InEvent::End(f) => {
                    if let Some(cur) = st.cur.take() {
                        return Some(Ok(finish(cur, f)));
                    }
                }
            }
        }
    }

    /// Closes the connection: queued chunks are still written, then the
    /// socket is shut down; reads and writes give "closed" from now on.
    pub fn close(&self) {
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

fn finish(mut cur: Current, flag: Flag) -> Received {
    if cur.pos > 0 {
        cur.buf.drain(..cur.pos);
    }
    if cur.segment == 0 {
        let mut c = cur.head;
        c.set_data_vec(cur.buf);
        c.set_flag(flag);
        Received {
            chunk: c,
            segment: 0,
            complete: true,
        }
    } else {
        Received {
            chunk: segment(&cur.head, cur.offset, &cur.buf, true, flag),
            segment: cur.segment + 1,
            complete: true,
        }
    }
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

/// Where a reader's bytes come from.
enum Source {
    /// Read into the read buffer and decoded there (plain TCP).
    Stream(Box<dyn AsyncRead + Send + Unpin>),
    /// TLS: decoded where rustls holds them decrypted, without the copy
    /// into the read buffer (see `Reader::poll_decode_decrypted`).
    Tls(super::stream::ConnHalf),
    /// While a TLS read decodes (the reader needs itself meanwhile).
    Lent,
}

/// Reads the socket and decodes it into events (one batch per read).
struct Reader {
    src: Source,
    dec: Decoder,
    /// The read buffer. Each read goes into its spare room; what was read
    /// is split off and decoded, and large bodies stay there as pieces the
    /// chunks share (see `SHARE_MIN`).
    buf: BytesMut,
    /// `buf` is a buffer taken for reading (it may be full: no room left).
    buf_taken: bool,
    /// Earlier read buffers that chunks still held pieces of when the
    /// reader moved on (at most `SPARE_READ_BUFS`), read into again once
    /// they are free: a session hands chunks to the application while it
    /// reads on, and a new buffer for every read would have its pages
    /// faulted in again.
    spare: Vec<BytesMut>,
    /// Bytes read and not decoded yet (what followed a chunk that was read
    /// in place).
    carry: Vec<u8>,
    /// Transaction id of the chunk being read (for the logger).
    tid: String,
    /// The chunk being assembled, while it is small enough to pass on whole.
    asm: Option<Chunk>,
    /// Body length the assembled chunk's Byte-Range announces (at most
    /// `WHOLE_LIMIT`), if it does.
    expect: Option<usize>,
    /// The assembled chunk's body, as announced, lies whole in what the
    /// last read brought (or no length was announced): its first piece of
    /// data, when large, becomes a piece of the read buffer.
    share: bool,
    id: u64,
    logger: Option<LoggerRef>,
    closed: Arc<CloseState>,
    pending: Arc<Pending>,
    /// A Closed event was produced: nothing more comes.
    ended: bool,
}

/// Body bytes still expected from which a chunk is read straight into its
/// own buffer instead of through the read buffer (one copy less) on plain
/// TCP: a smaller read would cost a system call more for the next head,
/// which a read through the buffer brings along. (TLS decodes where rustls
/// decrypted, which is as few copies.)
const IN_PLACE_MIN: usize = 16 * 1024;
/// Bodies from this size on that lie whole in what one read brought stay
/// in the read buffer: the chunk gets a piece of it instead of a copy (on
/// plain TCP; TLS decodes from rustls' buffer and copies). Measured on
/// 1 GiB session bulk transfers in 64 KiB chunks, where that copy was
/// about 8 % of the CPU time. A chunk the application keeps keeps the
/// whole read buffer it lies in (256 KiB), so smaller bodies, which would
/// keep much more memory than their size, are copied.
const SHARE_MIN: usize = 32 * 1024;
/// A read into the rest of the read buffer (when chunks still hold pieces
/// of the front) takes at least this much room; else a new buffer is taken.
const READ_MIN: usize = 64 * 1024;
/// Read buffers a connection keeps while chunks hold pieces of them (see
/// `Reader::spare`): a session's receive budget is four of them.
const SPARE_READ_BUFS: usize = 8;
/// Room left after the announced body for its end-line (read in the same call).
const END_LINE_ROOM: usize = 48;

impl Reader {
    fn new(
        src: Source,
        id: u64,
        logger: Option<LoggerRef>,
        closed: Arc<CloseState>,
        pending: Arc<Pending>,
    ) -> Reader {
        Reader {
            src,
            dec: Decoder::default(),
            buf: BytesMut::new(),
            buf_taken: false,
            spare: Vec::new(),
            carry: Vec::new(),
            tid: String::new(),
            asm: None,
            expect: None,
            share: false,
            id,
            logger,
            closed,
            pending,
            ended: false,
        }
    }

    fn end(&mut self, e: Error) -> InEvent {
        self.ended = true;
        self.closed.input.store(true, Ordering::Release);
        self.closed.set(&e);
        self.pending.drop_all();
        if let Some(l) = &self.logger {
            l.log(Level::Info, &format!("transport {}: {e}", self.id));
        }
        InEvent::Closed(e)
    }

    fn read_error(&mut self, e: std::io::Error) -> InEvent {
        let err = if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
            tls_error(&e, "reading")
        } else {
            Error::new(
                ErrorKind::Io,
                format!("reading from the connection failed: {e}"),
            )
        };
        self.end(err)
    }

    fn eof(&mut self) -> InEvent {
        let why = if self.dec.is_idle() {
            "the peer closed the connection"
        } else {
            "the peer closed the connection in the middle of a chunk"
        };
        self.end(Error::closed(why))
    }

    fn not_msrp(&mut self, e: crate::proto::DecodeError) -> InEvent {
        let msg = format!("the peer sent data that is not MSRP ({e}); the connection was closed");
        self.end(Error::new(ErrorKind::Protocol, msg))
    }

    /// How many bytes to read straight into the assembled chunk's buffer,
    /// or `None` to read through the read buffer: only inside a body the
    /// decoder holds nothing of, with enough of it announced to be worth it.
    fn in_place_len(&self) -> Option<usize> {
        if !self.carry.is_empty()
            || !self.dec.body_clear()
            || !matches!(self.src, Source::Stream(_))
        {
            return None;
        }
        let have = self.asm.as_ref()?.size();
        let left = self.expect?.checked_sub(have)?;
        let room = WHOLE_LIMIT.saturating_sub(have);
        let min = IN_PLACE_MIN;
        (left >= min && room >= min).then(|| (left + END_LINE_ROOM).min(room))
    }

    /// Reads once and returns the events decoded from what came (possibly
    /// none); the last batch ends with `Closed`. Cancel-safe: the only
    /// wait is the socket read, and nothing is consumed before it returns.
    async fn read_batch(&mut self, batch: &mut Batch) {
        if self.ended {
            batch.push_back(InEvent::Closed(self.closed.error()));
            return;
        }
        if !self.carry.is_empty() {
            let input = std::mem::take(&mut self.carry);
            self.decode_into(&input, batch);
            return;
        }
        if matches!(self.src, Source::Tls(_)) {
            let r = std::future::poll_fn(|cx| self.poll_decode_decrypted(cx, batch)).await;
            self.bytes_read(r, batch);
            return;
        }
        if let Some(want) = self.in_place_len() {
            self.read_in_place(want, batch).await;
            return;
        }
        let r = std::future::poll_fn(|cx| self.poll_read_lent(cx, batch)).await;
        if self.bytes_read(r, batch).is_none() {
            return;
        }
        let input = self.buf.split().freeze();
        self.decode_shared(&input, batch);
    }

    /// TLS: decodes the bytes rustls has decrypted where they lie, record
    /// after record, until it would have to wait or `READ_BUF` bytes were
    /// decoded (as much as one read into the read buffer takes). Returns how
    /// many. The end of the stream (`Ok(0)`) or an error is returned as it
    /// comes: its event goes into the batch after those of the records
    /// before it. Pending only when nothing was decoded, so that a cancelled
    /// read consumed nothing.
    fn poll_decode_decrypted(
        &mut self,
        cx: &mut std::task::Context<'_>,
        batch: &mut Batch,
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        let Source::Tls(half) = std::mem::replace(&mut self.src, Source::Lent) else {
            unreachable!("only TLS readers decode where rustls decrypted");
        };
        let mut total = 0;
        let r = loop {
            match half.poll_lend(cx, |b| self.decode_into(b, batch)) {
                Poll::Ready(Ok(0)) => break Poll::Ready(Ok(0)),
                Poll::Ready(Ok(n)) => {
                    total += n;
                    if total >= READ_BUF || self.ended {
                        break Poll::Ready(Ok(total));
                    }
                }
                Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
                Poll::Pending if total > 0 => break Poll::Ready(Ok(total)),
                Poll::Pending => {
                    Self::idle(batch);
                    break Poll::Pending;
                }
            }
        };
        self.src = Source::Tls(half);
        r
    }

    /// Reads what the socket has into the read buffer, which the connection
    /// holds only while reads bring data: when a read has to wait, the
    /// buffer goes back to the pool and the next read takes one again. A
    /// busy connection keeps its buffer (touched up to its full size); one
    /// waiting for data, which may be for hours, holds none.
    fn poll_read_lent(
        &mut self,
        cx: &mut std::task::Context<'_>,
        batch: &mut Batch,
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.read_room();
        let r = {
            // Dropped unfinished only when it read nothing.
            let Source::Stream(rd) = &mut self.src else {
                unreachable!("TLS readers lend");
            };
            let read = rd.read_buf(&mut self.buf);
            tokio::pin!(read);
            read.poll(cx)
        };
        if r.is_pending() {
            // Back to the pool only when no chunk holds a piece of it;
            // otherwise it is freed with the last of them.
            let spare = std::mem::take(&mut self.spare);
            self.buf_taken = false;
            for mut buf in spare.into_iter().chain([std::mem::take(&mut self.buf)]) {
                if buf.try_reclaim(READ_BUF) {
                    crate::proto::bufpool::give_read(Vec::from(buf));
                }
            }
            Self::idle(batch);
        }
        r
    }

    /// Room for the next read: the whole read buffer again when no chunk
    /// holds a piece of it any more; else the rest of it while that is at
    /// least `READ_MIN`; else a spare buffer that is free again, or a new
    /// one. The buffer left behind becomes a spare while there is room for
    /// it (or is freed with the last chunk that holds a piece of it).
    fn read_room(&mut self) {
        debug_assert!(self.buf.is_empty(), "what was read is split off");
        let room = self.buf.capacity();
        if room >= READ_BUF || self.buf.try_reclaim(READ_BUF) || room >= READ_MIN {
            return;
        }
        // The most recently used free one: its memory is likeliest in cache.
        let next = match self.spare.iter_mut().rposition(|b| b.try_reclaim(READ_BUF)) {
            Some(i) => self.spare.remove(i),
            // (Through `Bytes`, which takes the vector as it is: its room too.)
            None => BytesMut::from(Bytes::from(crate::proto::bufpool::take_read(READ_BUF))),
        };
        let old = std::mem::replace(&mut self.buf, next);
        if std::mem::replace(&mut self.buf_taken, true) && self.spare.len() < SPARE_READ_BUFS {
            self.spare.push(old);
        }
    }

    /// A read has to wait: the room a burst left in the (empty) event
    /// queue is given back, as the read buffer is. While reads bring data
    /// it is kept, instead of growing again from nothing for every burst
    /// (each step moving every event of the burst so far).
    fn idle(batch: &mut Batch) {
        if batch.is_empty() && batch.capacity() > KEEP_QUEUE_ROOM {
            *batch = VecDeque::new();
        }
    }

    /// The count of a read that brought bytes; the end of the stream or an
    /// error goes into `batch` as the last event instead.
    fn bytes_read(&mut self, r: std::io::Result<usize>, batch: &mut Batch) -> Option<usize> {
        match r {
            Ok(0) => batch.push_back(self.eof()),
            Ok(n) => return Some(n),
            Err(e) => batch.push_back(self.read_error(e)),
        }
        None
    }

    /// Reads body bytes straight into the assembled chunk's buffer and
    /// decodes them where they lie. Body bytes come out of the decoder in
    /// stream order, each once, and every byte read sits in the buffer in
    /// stream order, so counting the body bytes the decoder reports is
    /// enough; what follows the end-line is kept for the next batch.
    async fn read_in_place(&mut self, want: usize, batch: &mut Batch) {
        let Some(asm) = self.asm.as_mut() else { return };
        let data = asm.data_vec_mut();
        let start = data.len();
        data.reserve_exact(want);
        let Source::Stream(rd) = &mut self.src else {
            return;
        };
        let r = rd.take(want as u64).read_buf(data).await;
        let Some(n) = self.bytes_read(r, batch) else {
            return;
        };
        let mut valid = start;
        let mut at = start;
        let end = start + n;
        let mut flag = None;
        let mut failed = None;
        {
            let region = &self.asm.as_ref().expect("assembling").data()[..end];
            while at < end && flag.is_none() {
                match self.dec.decode(&region[at..end]) {
                    Ok((used, ev)) => {
                        match ev {
                            Some(Event::Data(d)) => {
                                if let Some(l) = &self.logger {
                                    l.received_chunk_data(self.id, d, &self.tid);
                                }
                                valid += d.len();
                            }
                            Some(Event::End(f)) => flag = Some(f),
                            // A new head cannot come before this body's end.
                            Some(Event::Head { .. }) | None => {}
                        }
                        at += used;
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if flag.is_some() && at < end {
                self.carry.extend_from_slice(&region[at..end]);
            }
        }
        if let Some(e) = failed {
            batch.push_back(self.not_msrp(e));
            return;
        }
        let mut c = self.asm.take().expect("assembling");
        // Bytes the decoder holds back (a possible end-line start) are not
        // body yet; it reports them again, from its own copy, if they are.
        c.data_vec_mut().truncate(valid);
        match flag {
            Some(f) => {
                if let Some(l) = &self.logger {
                    let line = format!("-------{}{}\r\n", self.tid, f as u8 as char);
                    l.received_chunk_end(self.id, line.as_bytes(), &self.tid);
                }
                c.set_flag(f);
                if let Some(c) = self.pending.claim(c) {
                    batch.push_back(InEvent::Whole(c));
                }
            }
            None => self.asm = Some(c),
        }
    }

    /// Decodes what a read brought into the read buffer into `batch`;
    /// large bodies that lie whole in it become pieces of it, not copies.
    fn decode_shared(&mut self, input: &Bytes, batch: &mut Batch) {
        self.decode(input, Some(input), batch);
    }

    /// Decodes `input` (bytes carried, or decrypted by rustls) into `batch`.
    fn decode_into(&mut self, input: &[u8], batch: &mut Batch) {
        self.decode(input, None, batch);
    }

    /// Decodes `input` into `batch`. With `owner` (the buffer `input` lies
    /// in), a body of at least `SHARE_MIN` bytes that lies whole in it is
    /// passed on as a piece of it.
    fn decode(&mut self, input: &[u8], owner: Option<&Bytes>, batch: &mut Batch) {
        let n = input.len();
        let mut at = 0;
        while at < n {
            let (used, ev) = match self.dec.decode(&input[at..n]) {
                Ok(x) => x,
                Err(e) => {
                    batch.push_back(self.not_msrp(e));
                    return;
                }
            };
            match ev {
                None => {}
                Some(Event::Head {
                    chunk, announced, ..
                }) => {
                    if let Some(l) = &self.logger {
                        let mut head = Vec::new();
                        chunk.encode_start(&mut head);
                        l.received_new_chunk(self.id, &head, &chunk);
                        self.tid = chunk.transaction_id().to_owned();
                    }
                    let mut chunk = chunk;
                    // Room for the body at once (no regrowing and copying),
                    // as far as the Byte-Range announces it, within the limit.
                    self.expect = None;
                    self.share = false;
                    if let Some(n) = announced {
                        let n = n.min(WHOLE_LIMIT as u64) as usize;
                        let rest = input.len() - (at + used);
                        if owner.is_some() && n >= SHARE_MIN && rest >= n {
                            // The whole body is here: no buffer of its own.
                            self.share = true;
                        } else if chunk.size() == 0 {
                            // A recycled buffer when one is at hand.
                            chunk.set_data_vec(crate::proto::bufpool::take(n + END_LINE_ROOM));
                        } else {
                            chunk.reserve_data(n + END_LINE_ROOM);
                        }
                        self.expect = Some(n);
                    } else {
                        // No length announced: a large first piece is
                        // shared too (should more follow, it is copied then,
                        // as an unannounced body's growing buffer would be).
                        self.share = owner.is_some();
                    }
                    self.asm = Some(chunk);
                }
                Some(Event::Data(d)) => {
                    if let Some(l) = &self.logger {
                        l.received_chunk_data(self.id, d, &self.tid);
                    }
                    let share = std::mem::take(&mut self.share);
                    match self.asm.as_mut() {
                        Some(c)
                            if share
                                && c.size() == 0
                                && (SHARE_MIN..=WHOLE_LIMIT).contains(&d.len()) =>
                        {
                            match owner.and_then(|o| piece_of(o, d)) {
                                Some(p) => c.set_data_shared(p),
                                None => c.append_data(d),
                            }
                        }
                        Some(c) if c.size() + d.len() <= WHOLE_LIMIT => c.append_data(d),
                        Some(_) => {
                            // Too big to hold: pass the head and what came
                            // so far on, and stream the rest.
                            let mut c = self.asm.take().expect("checked");
                            let mut so_far = c.take_data();
                            so_far.extend_from_slice(d);
                            batch.push_back(InEvent::Head(c));
                            batch.push_back(InEvent::Data(so_far));
                        }
                        None => batch.push_back(InEvent::Data(d.to_vec())),
                    }
                }
                Some(Event::End(f)) => {
                    if let Some(l) = &self.logger {
                        let line = format!("-------{}{}\r\n", self.tid, f as u8 as char);
                        l.received_chunk_end(self.id, line.as_bytes(), &self.tid);
                    }
                    match self.asm.take() {
                        Some(mut c) => {
                            c.set_flag(f);
                            // A response a Requester waits for goes to it.
                            if let Some(c) = self.pending.claim(c) {
                                batch.push_back(InEvent::Whole(c));
                            }
                        }
                        None => batch.push_back(InEvent::End(f)),
                    }
                }
            }
            at += used;
        }
    }
}

/// `d` as a piece of `owner` when it lies in it (the decoder also hands out
/// bytes it held back from an earlier read, which do not).
fn piece_of(owner: &Bytes, d: &[u8]) -> Option<Bytes> {
    let start = (d.as_ptr() as usize).checked_sub(owner.as_ptr() as usize)?;
    (start + d.len() <= owner.len()).then(|| owner.slice(start..start + d.len()))
}

/// The reader task: reads and passes batches on until the connection
/// ends, or until a session takes the reader over (`handoff`).
async fn read_task(
    mut reader: Box<Reader>,
    tx: mpsc::Sender<Batch>,
    mut handoff: oneshot::Receiver<Handoff>,
) {
    loop {
        let mut batch = Batch::new();
        tokio::select! {
            biased;
            h = &mut handoff => {
                if let Ok(back) = h {
                    let _ = back.send((reader, batch));
                }
                return;
            }
            _ = reader.read_batch(&mut batch) => {}
        };
        if batch.is_empty() {
            continue;
        }
        let last = reader.ended;
        // The application may not read for a while (backpressure): a
        // handoff can still come, and then takes this batch along.
        let sent = tokio::select! {
            biased;
            permit = tx.reserve() => match permit {
                Ok(p) => {
                    p.send(batch);
                    true
                }
                Err(_) => false,
            },
            h = &mut handoff => {
                if let Ok(back) = h {
                    let _ = back.send((reader, batch));
                }
                return;
            }
        };
        if !sent || last {
            return;
        }
    }
}

/// Most bytes written with one system call.
const WRITE_BATCH: usize = 256 * 1024;
/// Most jobs in one vectored write (each has up to three parts; IOV_MAX is 1024).
const WRITE_JOBS: usize = 256;

/// Where the writer task writes.
trait Sink: Send {
    /// Writes all of `bufs`.
    fn write_all_vectored(
        &mut self,
        bufs: &mut [IoSlice<'_>],
    ) -> impl std::future::Future<Output = std::io::Result<()>> + Send;
    /// Ends the connection's sending side.
    fn shutdown(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

/// Plain TCP, shared with callers that write directly when the writer is idle.
struct TcpSink(Arc<OwnedWriteHalf>);

impl Sink for TcpSink {
    async fn write_all_vectored(&mut self, mut bufs: &mut [IoSlice<'_>]) -> std::io::Result<()> {
        while !bufs.is_empty() {
            match try_send_vectored(self.0.as_ref().as_ref(), bufs) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.0.writable().await?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn shutdown(&mut self) {
        // The last reference shuts the sending side down when dropped.
    }
}

/// Any stream (TLS): records are flushed after every write, so none stay
/// in rustls' buffer when the queue goes idle.
struct StreamSink<W>(W);

impl<W: AsyncWrite + Unpin + Send> Sink for StreamSink<W> {
    async fn write_all_vectored(&mut self, mut bufs: &mut [IoSlice<'_>]) -> std::io::Result<()> {
        while !bufs.is_empty() {
            let n = self.0.write_vectored(bufs).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut bufs, n);
        }
        self.0.flush().await
    }

    async fn shutdown(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

async fn write_loop<S: Sink>(mut sink: S, out: Arc<Out>, id: u64, logger: Option<LoggerRef>) {
    let mut batch: Vec<WriteJob> = Vec::new();
    loop {
        let wake = out.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let total = {
            let mut q = out.lock();
            if q.jobs.is_empty() {
                q.busy = false;
                if q.jobs.capacity() > KEEP_QUEUE_ROOM {
                    // A burst's room is not kept while the connection is quiet.
                    q.jobs = VecDeque::new();
                }
                if !q.open {
                    q.direct = None;
                    q.direct_tls = None;
                    break;
                }
                None
            } else {
                // Take what is queued (up to a bound), so that many small
                // chunks leave in one write.
                q.busy = true;
                let mut total = 0;
                while total < WRITE_BATCH && batch.len() < WRITE_JOBS {
                    let Some(j) = q.jobs.pop_front() else { break };
                    total += j.len() - j.sent;
                    batch.push(j);
                }
                Some(total)
            }
        };
        let Some(total) = total else {
            wake.await;
            continue;
        };
        let r = {
            let mut slices = Vec::with_capacity(batch.len() * 3);
            for j in &batch {
                j.slices(&mut slices);
            }
            sink.write_all_vectored(&mut slices).await
        };
        out.queued.bytes.fetch_sub(total, Ordering::AcqRel);
        out.queued.drained.notify_waiters();
        if let Err(e) = r {
            let err = if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
                tls_error(&e, "writing")
            } else {
                Error::closed(format!("writing to the connection failed: {e}"))
            };
            out.closed.set(&err);
            if let Some(l) = &logger {
                l.log(Level::Warn, &format!("transport {id}: {err}"));
            }
            let rest: Vec<WriteJob> = {
                let mut q = out.lock();
                q.open = false;
                q.direct = None;
                q.direct_tls = None;
                q.busy = false;
                q.jobs.drain(..).collect()
            };
            for j in batch.drain(..).chain(rest) {
                j.finish(Err(err.clone()));
            }
            return;
        }
        for job in batch.drain(..) {
            if let (Some(l), Some(c)) = (&logger, &job.chunk) {
                let [head, body, tail] = job.parts();
                l.sent_new_chunk(id, head, c);
                if !body.is_empty() {
                    l.sent_chunk_data(id, body, c.transaction_id());
                }
                l.sent_chunk_end(id, tail, c.transaction_id());
            }
            job.finish(Ok(()));
        }
    }
    sink.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::HeaderName;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

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

    /// A SEND with transaction id `tid` and body `body`, encoded.
    fn encoded_send(tid: &str, body: &[u8]) -> Vec<u8> {
        encoded_send_ranged(tid, body, false)
    }

    /// As `encoded_send`, with a Byte-Range header when `ranged`.
    fn encoded_send_ranged(tid: &str, body: &[u8], ranged: bool) -> Vec<u8> {
        let mut c = Chunk::new_request_unchecked(tid, "SEND", 64);
        c.push_header_checked(HeaderName::ToPath, "", "msrp://a.invalid:1/x;tcp");
        c.push_header_checked(HeaderName::FromPath, "", "msrp://b.invalid:1/y;tcp");
        c.push_header_checked(HeaderName::MessageId, "", "m1");
        if ranged {
            let range = format!("1-{}/{}", body.len(), body.len());
            c.push_header_checked(HeaderName::ByteRange, "", &range);
        }
        c.set_data_vec(body.to_vec());
        let mut out = Vec::new();
        c.encode(&mut out).unwrap();
        out
    }

    fn reader_of(r: impl AsyncRead + Send + Unpin + 'static) -> Reader {
        Reader::new(
            Source::Stream(Box::new(r)),
            1,
            None,
            Arc::new(CloseState::default()),
            Arc::new(Pending::default()),
        )
    }

    /// Large bodies stay in the read buffer and small ones are copied; a
    /// chunk the application keeps is never overwritten by later reads,
    /// which reuse a buffer only once no chunk holds a piece of it.
    #[test]
    fn kept_chunks_keep_their_bodies_while_later_reads_reuse_buffers() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // 64 chunks of 40 KiB, each body of its own byte, half of them
            // announcing their length, and after each a small one: 2.6 MiB
            // through ten or more 256 KiB reads.
            let big = |i: usize| vec![i as u8; 40 * 1024];
            let small = |i: usize| vec![b'a' + (i % 26) as u8; 100];
            let mut wire = Vec::new();
            for i in 0..64 {
                wire.extend(encoded_send_ranged(
                    &format!("big{i:05}"),
                    &big(i),
                    i % 2 == 0,
                ));
                wire.extend(encoded_send(&format!("sml{i:05}"), &small(i)));
            }
            let (mut w, r) = tokio::io::duplex(4 * READ_BUF);
            // The writer keeps the connection open: the reader waits at the end.
            let writer = tokio::spawn(async move {
                w.write_all(&wire).await.unwrap();
                w
            });
            let mut rd = reader_of(r);
            let mut kept = Vec::new();
            // Large bodies shared, with and without a Byte-Range.
            let (mut shared, mut whole) = ([0, 0], 0);
            while whole < 128 {
                let mut batch = Batch::new();
                rd.read_batch(&mut batch).await;
                for e in batch {
                    match e {
                        InEvent::Whole(c) => {
                            let i: usize = c.transaction_id()[3..].parse().unwrap();
                            if c.transaction_id().starts_with("big") {
                                shared[i % 2] += usize::from(c.shared_data().is_some());
                                assert_eq!(c.data(), &big(i)[..]);
                            } else {
                                assert!(c.shared_data().is_none(), "small bodies are copied");
                                assert_eq!(c.data(), &small(i)[..]);
                            }
                            whole += 1;
                            // Every third chunk is kept to the end; the rest
                            // are dropped at once, so buffers come free.
                            if whole % 3 == 0 {
                                kept.push(c);
                            }
                        }
                        _ => panic!("only whole chunks come"),
                    }
                }
            }
            let _w = writer.await.unwrap();
            assert_eq!(whole, 128);
            assert!(!rd.spare.is_empty(), "kept chunks held earlier buffers");
            // Nothing more comes: the waiting reader lets go of every buffer
            // (the free ones to the pool; those kept chunks hold, to them).
            let mut batch = Batch::new();
            let waited =
                tokio::time::timeout(Duration::from_millis(50), rd.read_batch(&mut batch)).await;
            assert!(waited.is_err() && batch.is_empty());
            assert!(rd.spare.is_empty() && rd.buf.capacity() == 0);
            assert!(
                shared[0] > 16 && shared[1] > 16,
                "most large bodies are pieces of a read ({shared:?} of 32 each)"
            );
            for c in &kept {
                let i: usize = c.transaction_id()[3..].parse().unwrap();
                let want = if c.transaction_id().starts_with("big") {
                    big(i)
                } else {
                    small(i)
                };
                assert_eq!(c.data(), &want[..], "{} intact", c.transaction_id());
            }
        });
    }

    #[test]
    fn a_read_takes_what_the_socket_has_and_a_waiting_read_holds_no_buffer() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (mut w, r) = tokio::io::duplex(4 * READ_BUF);
            let mut rd = reader_of(r);
            let chunk = encoded_send;
            // Two chunks in the socket, together just under the buffer's
            // size: one read brings both, whole and in order.
            let a = vec![b'a'; READ_BUF / 2];
            let b = vec![b'b'; READ_BUF / 2 - 1024];
            let mut bytes = chunk("t1a2b3c4", &a);
            bytes.extend(chunk("t5d6e7f8", &b));
            assert!(bytes.len() < READ_BUF);
            w.write_all(&bytes).await.unwrap();
            let mut batch = Batch::new();
            rd.read_batch(&mut batch).await;
            let got: Vec<Chunk> = batch
                .into_iter()
                .filter_map(|e| match e {
                    InEvent::Whole(c) => Some(c),
                    _ => None,
                })
                .collect();
            assert_eq!(got.len(), 2, "both chunks from one read");
            assert_eq!(got[0].data(), &a[..]);
            assert_eq!(got[1].data(), &b[..]);
            // Both bodies stay where they were read, in the same buffer.
            let (pa, pb) = (got[0].shared_data().unwrap(), got[1].shared_data().unwrap());
            assert!(
                pa.as_ptr() < pb.as_ptr()
                    && pb.as_ptr() as usize - (pa.as_ptr() as usize) < READ_BUF
            );
            drop(got);
            // Nothing more comes: the read waits, and the connection gives
            // its buffer back meanwhile, and the room a burst left in the
            // (empty) event queue.
            let mut batch = Batch::with_capacity(100);
            let waited =
                tokio::time::timeout(Duration::from_millis(50), rd.read_batch(&mut batch)).await;
            assert!(waited.is_err() && batch.is_empty());
            assert_eq!(
                rd.buf.capacity(),
                0,
                "a waiting connection holds no read buffer"
            );
            assert!(batch.capacity() <= KEEP_QUEUE_ROOM);
            // The next chunk is read with a buffer from the pool; a read
            // that brings data keeps the queue's room.
            w.write_all(&chunk("t9a9b9c9", b"after")).await.unwrap();
            let mut batch = Batch::with_capacity(100);
            rd.read_batch(&mut batch).await;
            assert!(matches!(batch.front(), Some(InEvent::Whole(c)) if c.data() == b"after"));
            assert!(batch.capacity() >= 100);
        });
    }

    #[test]
    fn trimming_a_packed_job_gives_back_room_reserved_for_a_burst() {
        // A pump reserves room for a burst of small chunks before it knows
        // how many come; a lone response must not keep that room while
        // queued (`enqueue_jobs` trims what it queues).
        let mut b = Vec::with_capacity(PACKED_ROOM);
        b.extend_from_slice(&[b'x'; 120]);
        let mut j = WriteJob::packed(b);
        j.trim();
        assert_eq!(j.head.len(), 120);
        assert!(j.head.capacity() < 1024, "{}", j.head.capacity());
        // A full buffer keeps its allocation.
        let mut b = Vec::with_capacity(PACKED_LIMIT);
        b.resize(PACKED_LIMIT - 100, b'y');
        let mut j = WriteJob::packed(b);
        j.trim();
        assert_eq!(j.head.capacity(), PACKED_LIMIT);
    }
}
