//! A bound MSRP connection (reference `MSRPTransport`): a reader task that
//! decodes the byte stream and a writer task that sends encoded chunks in
//! order. Protocol rules (segments, make_chunk, checks) live in
//! `proto::transport`; this file only moves bytes and events.
//!
//! Memory is bounded: the reader stops reading when the application has not
//! taken [`EVENT_QUEUE`] events (at most 64 KiB each).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::AbortHandle;

use super::context::Context;
use super::error::{Error, ErrorKind};
use super::logger::{Level, LoggerRef, effective};
use super::tls::{Conn, tls_error};
use crate::proto::decoder::{Decoder, Event};
use crate::proto::transport::segment;
use crate::proto::uri::Uri;
use crate::proto::{Chunk, Flag};

/// Decoded events buffered between the reader task and the application.
pub const EVENT_QUEUE: usize = 8;
/// Chunks up to this size are assembled by the reader task and passed on whole.
const WHOLE_LIMIT: usize = 256 * 1024;
const READ_BUF: usize = 128 * 1024;

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

struct ReadState {
    rx: mpsc::Receiver<InEvent>,
    ahead: Option<InEvent>,
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

struct WriteJob {
    bytes: Vec<u8>,
    head_len: usize,
    body_len: usize,
    chunk: Option<Chunk>,
    done: Option<oneshot::Sender<Result<(), Error>>>,
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
    logger: Option<LoggerRef>,
    tx: Mutex<Option<mpsc::UnboundedSender<WriteJob>>>,
    closed: Arc<CloseState>,
    queued: Arc<Queued>,
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
        if let Err(e) = self.out.enqueue(req, None) {
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
    why: Mutex<Option<Error>>,
}

impl Out {
    fn enqueue(
        &self,
        chunk: &Chunk,
        done: Option<oneshot::Sender<Result<(), Error>>>,
    ) -> Result<(), Error> {
        if self.closed.is() || self.ctx.is_closed() {
            return Err(self.closed.error());
        }
        let mut bytes = Vec::with_capacity(chunk.size() + 256);
        chunk.encode_start(&mut bytes);
        let head_len = bytes.len();
        if chunk.body_contains_end_line(chunk.data()) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "the body contains the chunk's end-line; give the chunk another transaction id",
            ));
        }
        bytes.extend_from_slice(chunk.data());
        chunk.encode_end(chunk.flag(), &mut bytes);
        let with_log = effective(&self.logger).is_some();
        let job = WriteJob {
            bytes,
            head_len,
            body_len: chunk.size(),
            chunk: with_log.then(|| chunk.clone()),
            done,
        };
        let len = job.bytes.len();
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        self.queued.bytes.fetch_add(len, Ordering::AcqRel);
        let r = match tx.as_ref() {
            Some(tx) => tx.send(job).map_err(|_| self.closed.error()),
            None => Err(self.closed.error()),
        };
        if r.is_err() {
            self.queued.bytes.fetch_sub(len, Ordering::AcqRel);
        }
        r
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
        let (w_tx, w_rx) = mpsc::unbounded_channel();
        let closed = Arc::new(CloseState::default());
        let lg = effective(&logger);
        let queued = Arc::new(Queued::default());
        let pending = Arc::new(Pending::default());
        // Plain TCP splits without a lock; TLS shares one session state.
        let reader = match stream {
            Conn::Tcp(s) => {
                let (rd, wr) = s.into_split();
                let reader = ctx.spawn(read_loop(
                    rd,
                    ev_tx,
                    id,
                    lg.clone(),
                    closed.clone(),
                    pending.clone(),
                ));
                ctx.spawn(write_loop(wr, w_rx, id, lg, closed.clone(), queued.clone()));
                reader
            }
            tls_conn => {
                let (rd, wr) = tokio::io::split(tls_conn);
                let reader = ctx.spawn(read_loop(
                    rd,
                    ev_tx,
                    id,
                    lg.clone(),
                    closed.clone(),
                    pending.clone(),
                ));
                ctx.spawn(write_loop(wr, w_rx, id, lg, closed.clone(), queued.clone()));
                reader
            }
        };
        Transport {
            id,
            ctx: ctx.clone(),
            local,
            remote,
            sessmatch,
            logger: logger.clone(),
            read: tokio::sync::Mutex::new(ReadState {
                rx: ev_rx,
                ahead: None,
                cur: None,
                done: None,
            }),
            out: Arc::new(Out {
                ctx: ctx.clone(),
                logger: logger.clone(),
                tx: Mutex::new(Some(w_tx)),
                closed,
                queued,
            }),
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

    pub(crate) fn log(&self, level: Level, msg: &str) {
        super::logger::log(&self.logger, level, msg);
    }

    fn enqueue(
        &self,
        chunk: &Chunk,
        done: Option<oneshot::Sender<Result<(), Error>>>,
    ) -> Result<(), Error> {
        if self.is_closed() {
            return Err(self.out.closed.error());
        }
        self.out.enqueue(chunk, done)
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
        self.enqueue(chunk, None)
    }

    /// Sends `chunk` and waits until it was handed to the operating system.
    pub async fn write_chunk(&self, chunk: &Chunk) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(chunk, Some(tx))?;
        rx.await.unwrap_or_else(|_| Err(self.out.closed.error()))
    }

    /// Reads the next chunk. A chunk with more than `size` body bytes is
    /// handed out in "virtual" segments of at most `size` bytes as they
    /// arrive (flag `+`, Byte-Range moved, segment number counting from 1);
    /// `usize::MAX` reads whole chunks.
    pub async fn read_chunk(&self, size: usize) -> Result<Received, Error> {
        let mut st = self.read.lock().await;
        loop {
            // More than `size` bytes of the current chunk are here: hand out
            // `size` of them as a segment. When the chunk's end has also
            // arrived, the last piece (at most `size`) carries its real flag.
            if let Some(cur) = st.cur.as_mut() {
                let step = size.max(1);
                let left = cur.buf.len() - cur.pos;
                if let (Some(flag), true) = (cur.end, left <= step) {
                    return Ok(finish(st.cur.take().expect("current chunk"), flag));
                }
                if size != usize::MAX && left > step {
                    let piece = &cur.buf[cur.pos..cur.pos + step];
                    let seg = segment(&cur.head, cur.offset, piece, false, Flag::More);
                    cur.pos += step;
                    cur.offset += step as u64;
                    cur.segment += 1;
                    return Ok(Received {
                        chunk: seg,
                        segment: cur.segment,
                        complete: false,
                    });
                }
            }
            if let Some(e) = &st.done {
                return Err(e.clone());
            }
            let ev = match st.ahead.take() {
                Some(ev) => ev,
                None => match st.rx.recv().await {
                    Some(ev) => ev,
                    None => InEvent::Closed(Error::closed("the connection is closed")),
                },
            };
            match ev {
                InEvent::Closed(e) => {
                    self.out.closed.set(&e);
                    st.cur = None;
                    st.done = Some(e.clone());
                    return Err(e);
                }
                InEvent::Whole(c) if size == usize::MAX || c.size() <= size.max(1) => {
                    return Ok(Received {
                        chunk: c,
                        segment: 0,
                        complete: true,
                    });
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
                    if size != usize::MAX && cur.buf.len() > size {
                        // Before cutting, see whether the end is already
                        // here, so the last segment carries the real flag.
                        match st.rx.try_recv() {
                            Ok(InEvent::End(f)) => {
                                st.cur.as_mut().expect("current chunk").end = Some(f);
                            }
                            Ok(other) => st.ahead = Some(other),
                            Err(_) => {}
                        }
                    }
                }
                InEvent::End(f) => {
                    if let Some(cur) = st.cur.take() {
                        return Ok(finish(cur, f));
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
        self.out.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
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

async fn read_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    tx: mpsc::Sender<InEvent>,
    id: u64,
    logger: Option<LoggerRef>,
    closed: Arc<CloseState>,
    pending: Arc<Pending>,
) {
    let mut dec = Decoder::default();
    let mut buf = vec![0u8; READ_BUF];
    let mut tid = String::new();
    // The chunk being assembled, while it is small enough to pass on whole.
    let mut asm: Option<Chunk> = None;
    let mut pending_head: Option<Chunk> = None;
    let end = |e: Error| {
        closed.set(&e);
        pending.drop_all();
        if let Some(l) = &logger {
            l.log(Level::Info, &format!("transport {id}: {e}"));
        }
        InEvent::Closed(e)
    };
    loop {
        let n = match rd.read(&mut buf).await {
            Ok(0) => {
                let why = if dec.is_idle() {
                    "the peer closed the connection"
                } else {
                    "the peer closed the connection in the middle of a chunk"
                };
                let _ = tx.send(end(Error::closed(why))).await;
                return;
            }
            Ok(n) => n,
            Err(e) => {
                let err = if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
                    tls_error(&e, "reading")
                } else {
                    Error::new(
                        ErrorKind::Io,
                        format!("reading from the connection failed: {e}"),
                    )
                };
                let _ = tx.send(end(err)).await;
                return;
            }
        };
        let mut input = &buf[..n];
        while !input.is_empty() {
            let (used, out) = match dec.decode(input) {
                Ok((used, ev)) => {
                    let out = match ev {
                        None => None,
                        Some(Event::Head { chunk, .. }) => {
                            if let Some(l) = &logger {
                                let mut head = Vec::new();
                                chunk.encode_start(&mut head);
                                l.received_new_chunk(id, &head, &chunk);
                                tid = chunk.transaction_id().to_owned();
                            }
                            asm = Some(chunk);
                            None
                        }
                        Some(Event::Data(d)) => {
                            if let Some(l) = &logger {
                                l.received_chunk_data(id, d, &tid);
                            }
                            match asm.as_mut() {
                                Some(c) if c.size() + d.len() <= WHOLE_LIMIT => {
                                    c.append_data(d);
                                    None
                                }
                                Some(_) => {
                                    // Too big to hold: pass the head and what
                                    // came so far on, and stream the rest.
                                    let mut c = asm.take().expect("checked");
                                    let mut so_far = c.take_data();
                                    so_far.extend_from_slice(d);
                                    pending_head = Some(c);
                                    Some(InEvent::Data(so_far))
                                }
                                None => Some(InEvent::Data(d.to_vec())),
                            }
                        }
                        Some(Event::End(f)) => {
                            if let Some(l) = &logger {
                                let line = format!("-------{tid}{}\r\n", f as u8 as char);
                                l.received_chunk_end(id, line.as_bytes(), &tid);
                            }
                            match asm.take() {
                                Some(mut c) => {
                                    c.set_flag(f);
                                    // A response a Requester waits for goes to it.
                                    pending.claim(c).map(InEvent::Whole)
                                }
                                None => Some(InEvent::End(f)),
                            }
                        }
                    };
                    (used, out)
                }
                Err(e) => {
                    let msg = format!(
                        "the peer sent data that is not MSRP ({e}); the connection was closed"
                    );
                    let _ = tx.send(end(Error::new(ErrorKind::Protocol, msg))).await;
                    return;
                }
            };
            input = &input[used..];
            if let Some(h) = pending_head.take() {
                if tx.send(InEvent::Head(h)).await.is_err() {
                    return;
                }
            }
            if let Some(out) = out {
                if tx.send(out).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Largest batch of queued small chunks written with one system call.
const WRITE_BATCH: usize = 256 * 1024;

async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::UnboundedReceiver<WriteJob>,
    id: u64,
    logger: Option<LoggerRef>,
    closed: Arc<CloseState>,
    queued: Arc<Queued>,
) {
    let mut batch: Vec<WriteJob> = Vec::new();
    let mut joined = Vec::new();
    while let Some(first) = rx.recv().await {
        // Take what else is queued (up to a bound), so that many small
        // chunks leave in one write.
        let mut total = first.bytes.len();
        batch.push(first);
        while total < WRITE_BATCH {
            match rx.try_recv() {
                Ok(j) => {
                    total += j.bytes.len();
                    batch.push(j);
                }
                Err(_) => break,
            }
        }
        let r = if batch.len() == 1 {
            wr.write_all(&batch[0].bytes).await
        } else {
            joined.clear();
            for j in &batch {
                joined.extend_from_slice(&j.bytes);
            }
            wr.write_all(&joined).await
        };
        // TLS may keep the last records of a write in its buffer when the
        // socket was full (write_all only hands over the plaintext): flush
        // so they go out now, not with the next write. A no-op on TCP.
        let r = match r {
            Ok(()) => wr.flush().await,
            e => e,
        };
        queued.bytes.fetch_sub(total, Ordering::AcqRel);
        queued.drained.notify_waiters();
        if let Err(e) = r {
            let err = if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
                tls_error(&e, "writing")
            } else {
                Error::closed(format!("writing to the connection failed: {e}"))
            };
            closed.set(&err);
            if let Some(l) = &logger {
                l.log(Level::Warn, &format!("transport {id}: {err}"));
            }
            rx.close();
            while let Ok(j) = rx.try_recv() {
                batch.push(j);
            }
            for j in batch.drain(..) {
                if let Some(d) = j.done {
                    let _ = d.send(Err(err.clone()));
                }
            }
            return;
        }
        for job in batch.drain(..) {
            if let (Some(l), Some(c)) = (&logger, &job.chunk) {
                let (head, rest) = job.bytes.split_at(job.head_len);
                let (body, tail) = rest.split_at(job.body_len);
                l.sent_new_chunk(id, head, c);
                if !body.is_empty() {
                    l.sent_chunk_data(id, body, c.transaction_id());
                }
                l.sent_chunk_end(id, tail, c.transaction_id());
            }
            if let Some(d) = job.done {
                let _ = d.send(Ok(()));
            }
        }
        if joined.capacity() > 4 * WRITE_BATCH {
            joined = Vec::new();
        }
    }
    let _ = wr.shutdown().await;
}
