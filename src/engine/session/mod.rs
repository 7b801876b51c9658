//! Drives a sans-IO [`Session`] over a [`Transport`]: a reader task feeds
//! incoming chunks in, a writer task writes what the session wants sent
//! (one chunk at a time, so memory stays bounded) and runs its deadlines,
//! and an event task hands events to the application in order, never while
//! the session is locked (so callbacks may call back into the session).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};
use tokio::task::AbortHandle;

mod events;

use events::{Budget, CloseOnDrop, EventQueue};
pub use events::{DriverEvent, EventSink, Permit};

use super::context::Context;
use super::error::{Error, ErrorKind};
use super::logger::Level;
use super::transport::Transport;
use crate::proto::session::{
    DataRequest, Frame, MsgId, OutgoingMessage, Piece, Session, SessionConfig, SessionEvent,
    keepalive_failure,
};

/// Most bytes the writer queues on the transport before it waits for them to be written.
const WRITE_BATCH: usize = 256 * 1024;

/// Larger chunks reach the session in parts of this size, so that memory
/// stays bounded whatever a peer sends (a huge chunk, a body that never ends).
const SEGMENT: usize = 256 * 1024;

/// How many bytes of received messages may wait for the application before
/// the session stops reading from the connection (backpressure).
pub const RECEIVE_BUDGET: usize = 1024 * 1024;

/// Where the bytes of a message sent with [`SessionDriver::send_from`]
/// come from: a file, a descriptor, an application's read callback. It is
/// read on a runtime thread, never while the session is locked, so a read
/// callback may call into the session.
pub type Reader = Box<dyn Supplier>;

/// Gives the bytes of a message sent with [`SessionDriver::send_from`],
/// a piece at a time.
pub trait Supplier: Send {
    /// The next `want` bytes, fewer only where the source ends.
    fn next_piece(&mut self, want: usize) -> std::io::Result<Piece>;
}

/// A [`Supplier`] of what a reader gives, each piece in a buffer of its
/// own (recycled: a file or descriptor is read by the kernel, which
/// overwrites exactly what it reports, so the buffer is not zeroed first).
pub struct ReadSupplier<R>(pub R);

impl<R: std::io::Read + Send> Supplier for ReadSupplier<R> {
    fn next_piece(&mut self, want: usize) -> std::io::Result<Piece> {
        let mut buf = crate::proto::bufpool::take_sized(want);
        let got = read_full(&mut self.0, &mut buf)?;
        buf.truncate(got);
        Ok(Piece::Own(buf))
    }
}

/// A file named by its path, opened when its message's turn comes (its
/// first piece is asked for), read from `position` on and closed as soon as
/// it was read up to `end` (the message's size) or to its end: a queued or
/// fully read file holds no descriptor, so more files can be queued than
/// the process may have open. (The caller checks it opens when queued.)
/// It reads `PATH_READ` bytes at a time and hands out pieces of them, in
/// buffers of its own that come back once their pieces were written.
pub struct PathSupplier {
    path: std::path::PathBuf,
    /// Bytes handed out so far (from the file's start).
    position: u64,
    end: u64,
    file: Option<std::fs::File>,
    /// Bytes read and not handed out yet (they follow `position`).
    ahead: bytes::Bytes,
    bufs: std::sync::Arc<crate::proto::bufpool::Private>,
}

/// Bytes a [`PathSupplier`] reads at once: a quarter of the system calls
/// of a read per 64 KiB piece, and one round of the session's read-ahead.
const PATH_READ: usize = 256 * 1024;

impl PathSupplier {
    /// The file at `path`, from byte `position` (0-based) to `end`.
    pub fn new(path: impl Into<std::path::PathBuf>, position: u64, end: u64) -> PathSupplier {
        PathSupplier {
            path: path.into(),
            position,
            end,
            file: None,
            ahead: bytes::Bytes::new(),
            bufs: crate::proto::bufpool::Private::new(),
        }
    }

    /// Reads on so that `ahead` holds at least `want` bytes, unless the
    /// file or `end` comes first (then the file is closed).
    fn read_ahead(&mut self, want: usize) -> std::io::Result<()> {
        let from = self.position + self.ahead.len() as u64;
        let left = usize::try_from(self.end.saturating_sub(from)).unwrap_or(usize::MAX);
        let more = (want - self.ahead.len()).max(PATH_READ).min(left);
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                use std::io::{Seek, SeekFrom};
                let opened = std::fs::File::open(&self.path).and_then(|mut f| {
                    f.seek(SeekFrom::Start(from))?;
                    Ok(f)
                });
                let f = opened.map_err(|e| {
                    std::io::Error::other(format!("cannot open '{}': {e}", self.path.display()))
                })?;
                self.file.insert(f)
            }
        };
        let kept = self.ahead.len();
        let mut buf = self.bufs.take(kept + more);
        buf[..kept].copy_from_slice(&self.ahead);
        let got = read_full(file, &mut buf[kept..])?;
        if got < more || from + got as u64 >= self.end {
            // Read to the end: its descriptor goes now, not when the
            // message is done.
            self.file = None;
            self.end = from + got as u64;
        }
        self.ahead = self.bufs.lend(buf, kept + got);
        Ok(())
    }
}

impl Supplier for PathSupplier {
    fn next_piece(&mut self, want: usize) -> std::io::Result<Piece> {
        if self.ahead.len() < want && self.position + (self.ahead.len() as u64) < self.end {
            self.read_ahead(want)?;
        }
        let piece = self.ahead.split_to(want.min(self.ahead.len()));
        self.position += piece.len() as u64;
        Ok(Piece::Shared(piece))
    }
}

/// Takes events that need no application code (internal waiters) at once,
/// under the session lock; returns true when it consumed the event.
pub type FastPath = Box<dyn Fn(&SessionEvent) -> bool + Send + Sync>;

struct Shared {
    session: Mutex<Session>,
    /// Where events go: the event task calls it; when the context shuts
    /// down, [`SessionHook`] delivers what is left through it. Replaced by
    /// a no-op after the Closed event (dropping what the application's
    /// callbacks hold, so its `userdata_free` runs then).
    sink: Mutex<EventSink>,
    wake: Notify,
    closing: AtomicBool,
    closed: AtomicBool,
    drained: Notify,
    events: Arc<EventQueue>,
    budget: Arc<Budget>,
    /// Parts of messages for sinks were queued since the read loop last looked.
    parts_queued: AtomicBool,
    fast: Option<FastPath>,
    /// Transaction responses for the fast path, held until the session lock
    /// is released: the caller they wake goes straight for that lock, and
    /// woken while it is still held it would sleep again at once.
    deferred: Mutex<Vec<SessionEvent>>,
    /// Set by the writer task when it sleeps with no deadline to watch.
    writer_unarmed: AtomicBool,
    /// When the writer task wakes next by itself (while armed).
    writer_until: Mutex<Option<Instant>>,
    /// Local handle of the last keep-alive SEND (0: none yet).
    keepalive_tx: std::sync::atomic::AtomicU64,
    /// A keep-alive that failed: the session ends with this reason.
    keepalive_failed: Mutex<Option<Error>>,
    /// The sources of messages whose bytes the engine supplies
    /// ([`crate::proto::session::Source::Supplied`]): read by the writer
    /// task with the session unlocked. Locked after the session, never
    /// before it.
    sources: Mutex<std::collections::HashMap<MsgId, Reader>>,
    /// Rounds of the writer task (tests count the wake-ups of quiet sessions).
    #[cfg(test)]
    writer_passes: std::sync::atomic::AtomicU64,
}

/// Delivers a session's last events when its context shuts down (the
/// runtime's tasks are gone by then): what is pending fails locally, then
/// `Closed`, all on the thread that frees the context.
struct SessionHook {
    shared: std::sync::Weak<Shared>,
    transport: std::sync::Weak<Transport>,
}

impl super::context::ShutdownHook for SessionHook {
    fn shutdown(&self) {
        let (Some(sh), Some(t)) = (self.shared.upgrade(), self.transport.upgrade()) else {
            return;
        };
        sh.end(&t, Error::closed("the context was freed"));
        let left = sh.events.q.lock().unwrap_or_else(|p| p.into_inner()).take();
        // Busy only when the context is freed from inside one of this
        // session's callbacks: its events are then left undelivered.
        let Ok(mut sink) = sh.sink.try_lock() else {
            return;
        };
        for e in left.into_iter().flatten() {
            let last = matches!(e, DriverEvent::Closed(_));
            (*sink)(e);
            if last {
                *sink = Box::new(|_| {});
                break;
            }
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the session's pending events to the event task, in order.
    fn flush(&self, s: &mut Session) {
        while let Some(e) = s.poll_event() {
            if let SessionEvent::ChunkResponse {
                tx,
                code,
                comment,
                local,
            } = &e
            {
                if *tx == self.keepalive_tx.load(Ordering::Acquire) {
                    self.keepalive_tx.store(0, Ordering::Release);
                    self.keepalive_answered(*code, comment, *local);
                    continue;
                }
            }
            if self.fast.is_some() && matches!(e, SessionEvent::ChunkResponse { .. }) {
                self.deferred
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(e);
                continue;
            }
            if self.fast.as_ref().is_some_and(|f| f(&e)) {
                continue;
            }
            let bytes = match &e {
                SessionEvent::Message { data, .. } => data.len(),
                SessionEvent::Chunk(c) | SessionEvent::MessagePart(c) => c.size(),
                _ => 0,
            };
            if matches!(e, SessionEvent::MessagePart(_)) {
                self.parts_queued.store(true, Ordering::Release);
            }
            let permit = (bytes > 0).then(|| {
                let _was = self.budget.used.fetch_add(bytes, Ordering::AcqRel);
                #[cfg(test)]
                self.budget.peak.fetch_max(_was + bytes, Ordering::Relaxed);
                Permit {
                    budget: self.budget.clone(),
                    bytes,
                }
            });
            self.events.send(DriverEvent::Session(e, permit));
        }
    }

    /// The response to our keep-alive SEND (see [`keepalive_failure`]).
    fn keepalive_answered(&self, code: u16, comment: &str, local: bool) {
        let Some((timeout, why)) = keepalive_failure(code, comment, local) else {
            return;
        };
        let kind = if timeout {
            ErrorKind::Timeout
        } else {
            ErrorKind::Transaction
        };
        *self
            .keepalive_failed
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(Error::new(kind, why));
    }

    /// Ends the session when a keep-alive failed (called with the session unlocked).
    fn check_keepalive(&self, t: &Transport) {
        let failed = self
            .keepalive_failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(e) = failed {
            t.log(Level::Warn, &e.msg);
            self.end(t, e);
        }
    }

    /// Hands over the responses `flush` held back; called after the session
    /// lock is released.
    fn release(&self) {
        let held = {
            let mut d = self.deferred.lock().unwrap_or_else(|p| p.into_inner());
            if d.is_empty() {
                return;
            }
            std::mem::take(&mut *d)
        };
        for e in held {
            if !self.fast.as_ref().is_some_and(|f| f(&e)) {
                self.events.send(DriverEvent::Session(e, None));
            }
        }
    }

    /// Moves what the session wants sent onto the transport, in order (the
    /// caller holds the session lock), until `WRITE_BATCH` bytes are queued
    /// there; the writer task continues when they have gone out.
    fn pump(&self, s: &mut Session, t: &Transport) -> Result<(), Error> {
        self.pump_bounded(s, t, usize::MAX)
    }

    /// As `pump`, but only while at most `busy` bytes are queued: callers on
    /// the hot path send at once when the connection is idle (latency) and
    /// leave busy periods to the writer task, which batches.
    ///
    /// What one call takes from the session is written with one system
    /// call, from this thread, when the connection is idle and no
    /// transaction of ours waits for a response (a lone request or a burst
    /// of responses); otherwise it is queued for the transport's writer, so
    /// that a stream of requests leaves in large batches.
    fn pump_bounded(&self, s: &mut Session, t: &Transport, busy: usize) -> Result<(), Error> {
        // The queue of a shared connection holds other sessions' chunks
        // too: any session may add while at most a batch waits, but fills
        // it only to half a batch, so a chat line of another session never
        // finds it full of one session's file. Chunks go whole there: a
        // chunk streamed in pieces could be cut by another session's.
        let shared = t.is_shared();
        let (busy, batch) = if shared {
            (busy.max(WRITE_BATCH), WRITE_BATCH / 2)
        } else {
            (busy, WRITE_BATCH)
        };
        if t.queued_bytes() > busy {
            return Ok(());
        }
        let now = Instant::now();
        let direct = !s.has_pending();
        let mut bytes = t.queued_bytes();
        // Taken from the session as they are encoded (collecting them first
        // would move each chunk head again, and regrow the vector).
        let out = std::iter::from_fn(|| {
            if bytes >= batch {
                return None;
            }
            let f = if shared {
                Frame::Chunk(s.poll_transmit(now)?)
            } else {
                s.poll_frame(now)?
            };
            bytes += f.wire_size();
            Some(f)
        });
        // poll_frame's chunks have transaction ids their bodies do not
        // contain (the session checks each piece).
        t.send_frames(out, direct)
    }

    /// Pumps (when the connection is idle) and flushes after the session
    /// changed outside the writer task.
    fn after_change(&self, s: &mut Session, t: &Transport) -> Result<(), Error> {
        let r = self.pump_bounded(s, t, 0);
        self.flush(s);
        s.trim();
        if s.is_idle() {
            self.drained.notify_waiters();
        }
        r
    }

    /// Pumps whatever fits and flushes (the writer task).
    fn after_change_writer(&self, s: &mut Session, t: &Transport) -> Result<(), Error> {
        let r = self.pump(s, t);
        self.flush(s);
        s.trim();
        if s.is_idle() {
            self.drained.notify_waiters();
        }
        r
    }

    /// Whether the writer task must look again: chunks could go but wait for
    /// room on the transport, or transactions now have a deadline it is not watching
    /// (new deadlines are never earlier than ones it already watches).
    fn writer_needed(&self, s: &Session) -> bool {
        s.can_send()
            || s.has_data_requests()
            || (s.has_pending() && self.writer_unarmed.load(Ordering::Acquire))
            || s.incoming_deadline().is_some_and(|d| {
                // An incoming message's expiry earlier than the writer's wake-up.
                let until = *self.writer_until.lock().unwrap_or_else(|p| p.into_inner());
                until.is_none_or(|u| d < u)
            })
    }

    /// Waits while received data beyond the budget waits for the application.
    async fn wait_for_budget(&self) {
        loop {
            let freed = self.budget.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.budget.used.load(Ordering::Acquire) <= RECEIVE_BUDGET
                || self.closed.load(Ordering::Acquire)
            {
                return;
            }
            freed.await;
        }
    }

    /// Does what the session asked of its sources (with the session
    /// unlocked while reading) and hands it the bytes. Returns whether
    /// there was anything to do.
    fn serve_data(&self) -> bool {
        let requests: Vec<DataRequest> = {
            let mut s = self.lock();
            std::iter::from_fn(|| s.poll_data_request()).collect()
        };
        if requests.is_empty() {
            return false;
        }
        let mut answers = Vec::new();
        for r in requests {
            match r {
                DataRequest::Read { msg, want } => {
                    let taken = self
                        .sources
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&msg);
                    let answer = match taken {
                        Some(mut src) => {
                            let r = src.next_piece(want).map_err(|e| e.to_string());
                            self.sources
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(msg, src);
                            r
                        }
                        None => Err("the message has no source".into()),
                    };
                    answers.push((msg, answer));
                }
                DataRequest::Release { msg } => {
                    let gone = self
                        .sources
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&msg);
                    drop(gone);
                }
            }
        }
        if !answers.is_empty() {
            let mut s = self.lock();
            for (msg, a) in answers {
                s.supply_piece(msg, a);
            }
        }
        true
    }

    /// Writing failed. When the peer closed, the read loop ends the session
    /// once it has handled everything read before the close (a peer may
    /// send and close at once); otherwise it ends here. Returns whether the
    /// session ended.
    fn write_failed(&self, t: &Transport, why: Error) -> bool {
        if t.input_ended() {
            return false;
        }
        self.end(t, why);
        true
    }

    fn end(&self, t: &Transport, why: Error) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        t.close();
        {
            let mut s = self.lock();
            s.close(&why.msg);
            self.flush(&mut s);
        }
        // Files and read callbacks are let go now (the session asked for
        // their release as it closed; the writer may be gone).
        let sources = std::mem::take(&mut *self.sources.lock().unwrap_or_else(|p| p.into_inner()));
        drop(sources);
        self.release();
        self.events.send(DriverEvent::Closed(why));
        self.wake.notify_waiters();
        self.drained.notify_waiters();
    }
}

/// A running session.
pub struct SessionDriver {
    ctx: Arc<Context>,
    transport: Arc<Transport>,
    shared: Arc<Shared>,
    tasks: Mutex<Vec<AbortHandle>>,
    /// Registered with the context (which holds it weakly) while the driver lives.
    _hook: Arc<dyn super::context::ShutdownHook>,
    /// Held until `release_events`: the event task waits for it (or for
    /// its drop) before the first event goes to the sink.
    gate: Mutex<Option<oneshot::Sender<()>>>,
}

impl SessionDriver {
    /// Starts driving `transport` with `cfg`; events go to `sink` (on a
    /// runtime thread, in order). `keepalive` sends an empty SEND after that
    /// much idle time.
    pub fn start(
        transport: Transport,
        cfg: SessionConfig,
        keepalive: Option<Duration>,
        sink: EventSink,
        fast: Option<FastPath>,
    ) -> SessionDriver {
        let d = Self::start_held(transport, cfg, keepalive, sink, fast);
        d.release_events();
        d
    }

    /// As `start`, but no event reaches `sink` before `release_events` (or
    /// before the driver is dropped): the session reads, answers and sends
    /// meanwhile, its events wait. The C API publishes the session's handle
    /// first, so that no callback can run before the application has it.
    pub fn start_held(
        transport: Transport,
        cfg: SessionConfig,
        keepalive: Option<Duration>,
        sink: EventSink,
        fast: Option<FastPath>,
    ) -> SessionDriver {
        let ctx = transport.context().clone();
        let session = Session::new(
            cfg,
            transport.local_path().to_vec(),
            transport.remote_path().to_vec(),
        );
        let events = Arc::new(EventQueue::new());
        let shared = Arc::new(Shared {
            session: Mutex::new(session),
            sink: Mutex::new(sink),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            drained: Notify::new(),
            events: events.clone(),
            budget: Arc::new(Budget::default()),
            parts_queued: AtomicBool::new(false),
            fast,
            deferred: Mutex::new(Vec::new()),
            writer_unarmed: AtomicBool::new(true),
            writer_until: Mutex::new(None),
            keepalive_tx: Default::default(),
            keepalive_failed: Mutex::new(None),
            sources: Mutex::default(),
            #[cfg(test)]
            writer_passes: Default::default(),
        });
        let transport = Arc::new(transport);
        let hook: Arc<dyn super::context::ShutdownHook> = Arc::new(SessionHook {
            shared: Arc::downgrade(&shared),
            transport: Arc::downgrade(&transport),
        });
        ctx.on_shutdown(Arc::downgrade(&hook));
        let mut tasks = Vec::new();
        // The event task ends by itself after the Closed event. (The guard
        // is made here: a task that never runs closes the queue too.)
        let close = CloseOnDrop(events.clone(), ctx.clone());
        let (gate, held) = oneshot::channel();
        let sh = shared.clone();
        ctx.spawn(async move {
            let _close = close;
            // Released or dropped: either way events may flow now.
            let _ = held.await;
            let mut batch = VecDeque::new();
            loop {
                events.take(&mut batch).await;
                while let Some(e) = batch.pop_front() {
                    let last = matches!(e, DriverEvent::Closed(_));
                    let mut sink = sh.sink.lock().unwrap_or_else(|p| p.into_inner());
                    (*sink)(e);
                    if last {
                        *sink = Box::new(|_| {});
                        return;
                    }
                }
            }
        });
        tasks.extend(ctx.spawn(read_loop(transport.clone(), shared.clone())));
        tasks.extend(ctx.spawn(write_loop(transport.clone(), shared.clone(), keepalive)));
        SessionDriver {
            ctx,
            transport,
            shared,
            tasks: Mutex::new(tasks),
            _hook: hook,
            gate: Mutex::new(Some(gate)),
        }
    }

    /// Gives back the data of a [`SessionEvent::Message`] once the
    /// application is done with it: a large buffer is kept for the session's
    /// next large message ([`Session::recycle`]) and freed `SPARE_KEEP`
    /// after the last one came back; others go to the shared pool.
    pub fn recycle(&self, data: Vec<u8>) {
        if data.capacity() < crate::proto::session::SPARE_MIN {
            crate::proto::bufpool::give(data);
            return;
        }
        if self.is_closed() {
            return;
        }
        let kept = self.with_any_mut(|s| s.recycle(data));
        if let Some(generation) = kept {
            let sh = Arc::downgrade(&self.shared);
            self.ctx.spawn(async move {
                tokio::time::sleep(SPARE_KEEP).await;
                if let Some(sh) = sh.upgrade() {
                    sh.lock().release_spare(generation);
                }
            });
        }
    }

    /// Lets the events of a driver from `start_held` reach its sink.
    pub fn release_events(&self) {
        if let Some(g) = self.gate.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = g.send(());
        }
    }

    /// The context.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// The transport underneath.
    pub fn transport(&self) -> &Arc<Transport> {
        &self.transport
    }

    /// Whether the session ended.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Acquire) || self.ctx.is_closed()
    }

    /// Runs `f` on the session (to queue messages or chunks) and wakes the writer.
    pub fn with<R>(&self, f: impl FnOnce(&mut Session) -> R) -> Result<R, Error> {
        if self.is_closed() || self.shared.closing.load(Ordering::Acquire) {
            return Err(Error::closed("the session is closed"));
        }
        let (r, sent, wake) = {
            let mut s = self.shared.lock();
            let r = f(&mut s);
            let sent = self.shared.after_change(&mut s, &self.transport);
            (r, sent, self.shared.writer_needed(&s))
        };
        self.shared.release();
        if let Err(e) = sent {
            self.shared.write_failed(&self.transport, e);
        } else if wake {
            self.shared.wake.notify_one();
        }
        Ok(r)
    }

    /// Queues `m`, whose source is [`crate::proto::session::Source::Supplied`],
    /// with the reader its bytes come from, then runs `f` with its handle
    /// (in the same hold of the session, so no event of it comes first).
    pub fn send_from<R>(
        &self,
        m: OutgoingMessage,
        reader: Reader,
        f: impl FnOnce(&mut Session, MsgId) -> R,
    ) -> Result<R, Error> {
        let sources = &self.shared.sources;
        self.with(move |s| {
            let id = s.send_message(m);
            sources
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(id, reader);
            f(s, id)
        })
    }

    /// Reads the session's state (also once it closed).
    pub fn with_any<R>(&self, f: impl FnOnce(&Session) -> R) -> R {
        f(&self.shared.lock())
    }

    /// Changes the session's state without sending anything (also once it
    /// closed): for state the writer does not act on.
    pub fn with_any_mut<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        f(&mut self.shared.lock())
    }

    /// Reference `shutdown`: with `sync`, what is queued is sent and answered
    /// first (bounded by the caller's timeout), then the connection closes;
    /// without, it closes now and everything pending fails locally.
    pub async fn shutdown(&self, sync: bool) {
        if sync && !self.is_closed() {
            self.shared.closing.store(true, Ordering::Release);
            self.shared.wake.notify_one();
            loop {
                let drained = self.shared.drained.notified();
                if self.is_closed() || self.shared.lock().is_idle() {
                    break;
                }
                drained.await;
            }
        }
        self.close("the session was shut down locally");
    }

    /// Closes now: everything pending fails locally.
    pub fn close(&self, why: &str) {
        self.shared.end(&self.transport, Error::closed(why));
    }
}

impl Drop for SessionDriver {
    fn drop(&mut self) {
        self.close("the session was freed");
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

/// Most received chunks handled under one lock (their responses leave together).
const READ_BURST: usize = 64;

/// How long the buffers of large messages given back with
/// [`SessionDriver::recycle`] are kept when no other comes back: long enough
/// for the next of a series, short enough that a session which received
/// one large message does not hold its memory.
const SPARE_KEEP: Duration = Duration::from_secs(1);
/// Room for this many received chunks is kept between bursts; a larger
/// burst's room (about 270 bytes a chunk, 17 KiB for a full burst) is freed,
/// so that a session that goes quiet does not keep it.
const KEEP_BURST_ROOM: usize = 4;

async fn read_loop(t: Arc<Transport>, sh: Arc<Shared>) {
    read_until_closed(&t, &sh).await;
    // The session ended: the connection's socket and buffers go now, not
    // when the application frees the session.
    t.release_input().await;
}

async fn read_until_closed(t: &Arc<Transport>, sh: &Arc<Shared>) {
    let mut got = Vec::new();
    // This task reads all the time: it takes the socket over from the
    // transport's reader task (one hand-off less per chunk).
    t.read_directly().await;
    loop {
        sh.wait_for_budget().await;
        t.read_chunks(SEGMENT, READ_BURST, &mut got).await;
        // Responses to what arrived go out from here, at once.
        let mut failed = None;
        let (sent, wake) = {
            let mut s = sh.lock();
            // One clock reading for the burst (it read at once).
            let now = Instant::now();
            s.expect_requests(got.len());
            for r in got.drain(..) {
                match r {
                    Ok(r) => s.handle_part(r.chunk, r.segment <= 1, r.complete, now),
                    Err(e) => failed = Some(e),
                }
            }
            let sent = sh.after_change(&mut s, t);
            (sent, sh.writer_needed(&s))
        };
        sh.release();
        sh.check_keepalive(t);
        if got.capacity() > KEEP_BURST_ROOM {
            got = Vec::new();
        }
        if let Some(e) = failed {
            sh.end(t, e);
            return;
        }
        if let Err(e) = sent {
            if sh.write_failed(t, e) {
                return;
            }
        }
        if wake {
            sh.wake.notify_one();
        }
        // Parts of messages for sinks wait in the event queue: let the
        // event task write them now, on this thread, while they are still
        // in the cache, instead of reading on until the budget is used up.
        // The read buffers they hold are then free again for the next read
        // (two alternate instead of five or six in a file transfer, whose
        // copies in and out of them cost 1.7 times raw TCP's before). The
        // task wakes itself and goes to the back of this worker's queue,
        // behind the event task just woken; `tokio::task::yield_now` would
        // also wait for a poll of the I/O driver (a system call per read:
        // in-process bulk to a callback sink fell from 1.01x raw TCP to
        // 0.91x with it, and rose to 1.05x with this).
        if sh.parts_queued.swap(false, Ordering::AcqRel) {
            let mut once = false;
            std::future::poll_fn(|cx| {
                if std::mem::replace(&mut once, true) {
                    std::task::Poll::Ready(())
                } else {
                    cx.waker().wake_by_ref();
                    std::task::Poll::Pending
                }
            })
            .await;
        }
    }
}

/// Response timeouts from this length up are watched by waking once per
/// timeout; shorter ones have the writer woken for each new transaction.
const PATROL_MIN: Duration = Duration::from_secs(1);

/// Runs deadlines and keep-alives, and continues sending when the transport
/// has room again.
async fn write_loop(t: Arc<Transport>, sh: Arc<Shared>, keepalive: Option<Duration>) {
    let mut last_activity = Instant::now();
    let mut seen = None;
    // Whether the session asked for bytes of a supplied message when it was
    // last looked at (each pass ends by looking): only then is it asked
    // again here, so a pass without files takes the session lock once.
    let mut reads = true;
    loop {
        if sh.closed.load(Ordering::Acquire) {
            return;
        }
        #[cfg(test)]
        sh.writer_passes.fetch_add(1, Ordering::Relaxed);
        let wake = sh.wake.notified();
        if reads {
            sh.serve_data();
        }
        let (sent, deadline, queued, wanted) = {
            let mut s = sh.lock();
            s.handle_timeout(Instant::now());
            let before = t.queued_bytes();
            let sent = sh.after_change_writer(&mut s, &t);
            if t.queued_bytes() != before {
                last_activity = Instant::now();
            }
            // Transactions that start while this task sleeps end no earlier
            // than one response timeout from now: waking by then covers them,
            // so senders need not wake this task for each new request. Only
            // while the session is in use, though: after a whole timeout
            // without new messages or transactions this task sleeps until a
            // sender wakes it, so a quiet session costs no wake-ups.
            let timeout = s.config().response_timeout;
            let active = seen.replace(s.activity()) != Some(s.activity());
            let patrol = (timeout >= PATROL_MIN && active).then(|| Instant::now() + timeout);
            let deadline = s.poll_timeout().or(patrol);
            sh.writer_unarmed
                .store(deadline.is_none(), Ordering::Release);
            *sh.writer_until.lock().unwrap_or_else(|p| p.into_inner()) = deadline;
            (sent, deadline, s.can_send(), s.has_data_requests())
        };
        sh.release();
        sh.check_keepalive(&t);
        if let Err(e) = sent {
            // Nothing more can be written; the read loop ends the session
            // when the peer closed (see `write_failed`).
            sh.write_failed(&t, e);
            return;
        }
        reads = wanted;
        if reads {
            // The session waits for bytes of a message: read them now.
            continue;
        }
        let keepalive_at = keepalive.map(|k| last_activity + k);
        let until = match (deadline, keepalive_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let sleep = async {
            match until {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        // (A shared connection's queue is filled to half a batch: see `pump_bounded`.)
        let low = if t.is_shared() {
            WRITE_BATCH / 4
        } else {
            WRITE_BATCH / 2
        };
        let room = async {
            if queued {
                t.drained_to(low).await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            _ = wake => {}
            _ = room => {}
            _ = sleep => {
                // One keep-alive at a time: the next waits for the answer
                // (or the response timeout) to the last.
                let waiting = sh.keepalive_tx.load(Ordering::Acquire) != 0;
                if keepalive_at.is_some_and(|k| k <= Instant::now()) && !waiting {
                    let mut s = sh.lock();
                    let tx = s.send_keepalive();
                    sh.keepalive_tx.store(tx, Ordering::Release);
                    drop(s);
                    t.log(Level::Debug, "sending a keep-alive SEND");
                    last_activity = Instant::now();
                } else if waiting {
                    last_activity = Instant::now();
                }
            }
        }
    }
}

/// Reads into all of `buf` unless the reader ends first; returns how much.
pub fn read_full(r: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// The chunk body size on paths through a relay: relays limit the frames
/// they pass on (Kamailio's msrp module takes about 11 KB).
pub const RELAY_CHUNK_SIZE: usize = 8192;

/// The largest chunk on a WebSocket connection (each goes in one WebSocket
/// message, which a WebSocket server holds whole, RFC 7977 §5.1) and on a
/// shared connection (a chunk goes whole, ahead of other sessions' chat).
pub const WS_CHUNK_LIMIT: usize = 1024 * 1024;

/// The chunk size a session on `t` uses: `requested` (0: the default),
/// small through a relay (a path of more than one URI), 64 KiB by default
/// and at most [`WS_CHUNK_LIMIT`] on a WebSocket or shared connection.
pub fn chunk_size_for(t: &Transport, requested: usize) -> usize {
    use crate::engine::connector::is_ws;
    let ws = t.remote_path().first().is_some_and(is_ws) || t.local_path().iter().any(is_ws);
    let size = match requested {
        0 if t.remote_path().len() > 1 || t.local_path().len() > 1 => RELAY_CHUNK_SIZE,
        0 if ws || t.is_shared() => crate::proto::session::PIECE,
        0 => SessionConfig::default().chunk_size,
        n => n,
    };
    if ws || t.is_shared() {
        size.min(WS_CHUNK_LIMIT)
    } else {
        size
    }
}

/// Maps a transaction outcome to an error for blocking callers.
pub fn transaction_error(code: u16, comment: &str, local: bool) -> Error {
    let kind = if code == 0 {
        ErrorKind::Closed
    } else if code == 408 && local {
        ErrorKind::Timeout
    } else {
        ErrorKind::Transaction
    };
    Error::new(
        kind,
        format!(
            "{} {code} {comment}",
            if local { "local response" } else { "response" }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A file by path: opened at the first piece, from its position, and
    /// read `PATH_READ` bytes at a time, handed out in the pieces asked
    /// for; its descriptor let go once read to the end it was given (or to
    /// the file's end); a file gone by its turn is an error naming it.
    #[test]
    fn a_path_is_opened_at_its_turn_and_closed_when_read() {
        let dir = std::env::temp_dir().join(format!("msrp_path_supplier_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let bytes: Vec<u8> = (0..PATH_READ + 10).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let end = bytes.len() as u64 - 1;
        let mut s = PathSupplier::new(&path, 2, end);
        assert!(s.file.is_none(), "not opened when made");
        assert_eq!(s.next_piece(5).unwrap().as_slice(), &bytes[2..7]);
        assert!(s.file.is_some(), "open while the rest is not read");
        assert_eq!(s.ahead.len(), PATH_READ - 5, "one read of PATH_READ bytes");
        // A piece longer than what was read ahead: the rest read on.
        let p = s.next_piece(PATH_READ).unwrap();
        assert_eq!(p.as_slice(), &bytes[7..7 + PATH_READ]);
        assert_eq!(
            s.next_piece(PATH_READ).unwrap().as_slice(),
            &bytes[7 + PATH_READ..end as usize]
        );
        assert!(s.file.is_none(), "closed at the end it was given");
        assert!(s.next_piece(3).unwrap().is_empty());
        // A file shorter than the end given: closed at its own end.
        let from = PATH_READ - 20;
        let mut short = PathSupplier::new(&path, from as u64, bytes.len() as u64 + 100);
        assert_eq!(
            short.next_piece(8).unwrap().as_slice(),
            &bytes[from..from + 8]
        );
        assert!(short.file.is_none(), "read to its end at once");
        assert_eq!(short.next_piece(64).unwrap().as_slice(), &bytes[from + 8..]);
        assert!(short.next_piece(64).unwrap().is_empty());
        std::fs::remove_file(&path).unwrap();
        let mut gone = PathSupplier::new(&path, 0, 10);
        let e = gone.next_piece(4).unwrap_err().to_string();
        assert!(
            e.contains("cannot open") && e.contains("msrp_path_supplier"),
            "{e}"
        );
        std::fs::remove_dir(&dir).unwrap();
    }

    fn aborted(i: usize) -> DriverEvent {
        DriverEvent::Session(
            SessionEvent::MessageAborted {
                message_id: i.to_string(),
            },
            None,
        )
    }

    fn id(e: &DriverEvent) -> usize {
        match e {
            DriverEvent::Session(SessionEvent::MessageAborted { message_id }, _) => {
                message_id.parse().unwrap()
            }
            _ => panic!("unexpected event"),
        }
    }

    /// Events come out in order, a waiting taker is woken by the next one,
    /// a burst's memory is freed once it has been taken, and after `close`
    /// events are dropped.
    #[test]
    fn the_event_queue_keeps_order_and_gives_back_the_room_of_a_burst() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let q = Arc::new(EventQueue::new());
            let mut batch = VecDeque::new();
            for i in 0..100 {
                q.send(aborted(i));
            }
            q.take(&mut batch).await;
            assert_eq!(
                batch.iter().map(id).collect::<Vec<_>>(),
                (0..100).collect::<Vec<_>>()
            );
            // While events keep coming, the burst's room goes back into the
            // queue with the next take (it does not grow again from nothing).
            batch.clear();
            assert!(batch.capacity() >= 100);
            for i in 0..3 {
                q.send(aborted(i));
            }
            q.take(&mut batch).await;
            assert_eq!(batch.len(), 3);
            let kept = q.q.lock().unwrap().as_ref().unwrap().capacity();
            assert!(kept >= 100, "the queue kept room for {kept} events");
            batch.clear();
            // Nothing queued: the taker waits until the next event, and
            // neither it nor the queue keeps the room of the burst meanwhile.
            let q2 = q.clone();
            let sender = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                q2.send(aborted(100));
            });
            q.take(&mut batch).await;
            assert_eq!(batch.iter().map(id).collect::<Vec<_>>(), vec![100]);
            sender.await.unwrap();
            let kept = q.q.lock().unwrap().as_ref().unwrap().capacity();
            assert!(
                kept <= events::KEEP_EVENTS,
                "the queue kept room for {kept} events"
            );
            assert!(batch.capacity() <= events::KEEP_EVENTS);
            q.close();
            q.send(aborted(101));
            assert!(
                q.q.lock().unwrap().is_none(),
                "nothing is queued after close"
            );
        });
    }

    /// Two drivers on a loopback connection of a context with `workers`
    /// threads; the count adds up what `count` makes of each session event
    /// the second one delivers.
    fn counting_pair(
        workers: usize,
        cfg_a: SessionConfig,
        cfg_b: SessionConfig,
        count: impl Fn(&SessionEvent) -> usize + Send + 'static,
    ) -> (Arc<Context>, SessionDriver, SessionDriver, Arc<AtomicUsize>) {
        let (ctx, ta, tb) = crate::engine::connector::loopback_context(workers);
        let got = Arc::new(AtomicUsize::new(0));
        let g = got.clone();
        let a = SessionDriver::start(ta, cfg_a, None, Box::new(|_| {}), None);
        let b = SessionDriver::start(
            tb,
            cfg_b,
            None,
            Box::new(move |e| {
                if let DriverEvent::Session(e, _) = &e {
                    g.fetch_add(count(e), Ordering::AcqRel);
                }
            }),
            None,
        );
        (ctx, a, b, got)
    }

    /// A receiver hands the parts of a message for a sink that a read
    /// brought to the event task before it reads on, while the bytes are
    /// still in the cache, instead of reading ahead until the receive budget
    /// is used up: then the read buffers its chunks hold are free again for
    /// the next read (a file transfer used five or six in turn, and its
    /// copies out of them cost 1.7 times raw TCP's). 16 MiB in 64 KiB
    /// chunks, received as announced parts: never more than about two
    /// reads' worth (`SEGMENT`) waits for the application (1.25 MiB before).
    /// On one worker thread, so that what is pinned is what the read loop
    /// does: with two, which thread runs the event task when is the
    /// scheduler's choice (a loaded machine made it 576 KiB once).
    #[test]
    fn received_data_is_handed_over_before_the_next_reads() {
        use crate::proto::session::OutgoingMessage;
        const SIZE: usize = 16 << 20;
        let cfg = SessionConfig {
            chunk_size: 64 * 1024,
            ..Default::default()
        };
        let receiver = SessionConfig {
            announce: true,
            ..cfg.clone()
        };
        let (_ctx, a, b, got) = counting_pair(1, cfg, receiver, |e| match e {
            SessionEvent::MessagePart(c) => c.size(),
            _ => 0,
        });
        let body: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
        a.with(|s| {
            s.send_message(OutgoingMessage {
                quiet: true,
                no_progress: true,
                ..OutgoingMessage::from_bytes("application/octet-stream", body)
            })
        })
        .unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        while got.load(Ordering::Acquire) < SIZE && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(got.load(Ordering::Acquire), SIZE);
        let peak = b.shared.budget.peak.load(Ordering::Relaxed);
        assert!(peak > 0, "the parts were counted against the budget");
        assert!(
            peak <= 2 * SEGMENT,
            "{peak} bytes waited for the application at once (budget {RECEIVE_BUDGET})"
        );
    }

    /// A large buffer given back after its message is kept for the
    /// session's next large message, and freed about `SPARE_KEEP` after the
    /// last one came back: a session that received one large message does
    /// not keep its memory. (That a buffer coming back meanwhile keeps the
    /// others is `Session::release_spare`'s, tested in `session_sim`.)
    #[test]
    fn a_recycled_buffer_is_freed_when_no_other_comes_back() {
        use crate::proto::session::SPARE_MIN;
        let (_ctx, ta, _tb) = crate::engine::connector::loopback_context(1);
        let d = SessionDriver::start(ta, SessionConfig::default(), None, Box::new(|_| {}), None);
        let spare = |d: &SessionDriver| d.with_any(|s| s.spare_bytes());
        let start = Instant::now();
        d.recycle(Vec::with_capacity(SPARE_MIN));
        assert_eq!(spare(&d), SPARE_MIN, "kept");
        let until = start + SPARE_KEEP * 10;
        while spare(&d) > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(spare(&d), 0, "freed after SPARE_KEEP");
        assert!(start.elapsed() >= SPARE_KEEP, "not before SPARE_KEEP");
        // A small buffer is not kept.
        d.recycle(vec![0; 1000]);
        assert_eq!(spare(&d), 0);
    }

    /// After a response timeout without new messages or transactions, a
    /// session's writer task sleeps until it is needed: a quiet session
    /// costs no periodic wake-ups (with a 30 s timeout, 10,000 idle sessions
    /// would otherwise wake 333 times a second), and still sends at once.
    #[test]
    fn a_quiet_session_stops_waking_its_writer() {
        use crate::proto::session::OutgoingMessage;
        const T: Duration = Duration::from_secs(10);
        let cfg = SessionConfig {
            response_timeout: Duration::from_secs(1),
            ..Default::default()
        };
        let (_ctx, a, b, got) = counting_pair(1, cfg.clone(), cfg, |e| {
            usize::from(matches!(e, SessionEvent::Message { .. }))
        });
        let send = || {
            a.with(|s| {
                s.send_message(OutgoingMessage {
                    quiet: true,
                    no_progress: true,
                    ..OutgoingMessage::from_bytes("text/plain", b"hello".to_vec())
                })
            })
            .unwrap();
        };
        let wait_for = |n: usize| {
            let until = Instant::now() + T;
            while got.load(Ordering::Acquire) < n && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(got.load(Ordering::Acquire), n);
        };
        send();
        wait_for(1);
        // One more round after the last activity (about 2 s from the start),
        // then quiet.
        std::thread::sleep(Duration::from_millis(3500));
        let passes = |d: &SessionDriver| d.shared.writer_passes.load(Ordering::Relaxed);
        let (pa, pb) = (passes(&a), passes(&b));
        std::thread::sleep(Duration::from_millis(2500));
        assert_eq!(passes(&a) - pa, 0, "the sender's writer woke while quiet");
        assert_eq!(passes(&b) - pb, 0, "the receiver's writer woke while quiet");
        // Still sends at once, and its transaction is watched again.
        send();
        wait_for(2);
        assert!(!a.is_closed() && !b.is_closed());
    }
}
