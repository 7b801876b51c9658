//! Drives a sans-IO [`Session`] over a [`Transport`]: a reader task feeds
//! incoming chunks in, a writer task writes what the session wants sent
//! (one chunk at a time, so memory stays bounded) and runs its deadlines,
//! and an event task hands events to the application in order, never while
//! the session is locked (so callbacks may call back into the session).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};
use tokio::task::AbortHandle;

use super::context::Context;
use super::error::{Error, ErrorKind};
use super::logger::Level;
use super::transport::Transport;
use crate::proto::Chunk;
use crate::proto::session::{Session, SessionConfig, SessionEvent};
use crate::proto::transport::binding_send;

/// Most bytes the writer queues on the transport before it waits for them to be written.
const WRITE_BATCH: usize = 256 * 1024;

/// How many bytes of received messages may wait for the application before
/// the session stops reading from the connection (backpressure).
pub const RECEIVE_BUDGET: usize = 2 * 1024 * 1024;

#[derive(Default)]
struct Budget {
    used: AtomicUsize,
    freed: Notify,
}

/// Holds received bytes against the session's budget until it is dropped,
/// which the application side does once its callback has run.
#[derive(Debug)]
pub struct Permit {
    budget: Arc<Budget>,
    bytes: usize,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Budget({})", self.used.load(Ordering::Relaxed))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        self.budget.freed.notify_waiters();
    }
}

/// What the driver reports: session events (with a budget permit for the
/// ones that carry received data), and once at the end, the reason it closed.
#[derive(Debug)]
pub enum DriverEvent {
    /// An event of the session.
    Session(SessionEvent, Option<Permit>),
    /// The session ended (last event).
    Closed(Error),
}

/// Where driver events go.
pub type EventSink = Box<dyn FnMut(DriverEvent) + Send>;

struct Shared {
    session: Mutex<Session>,
    wake: Notify,
    closing: AtomicBool,
    closed: AtomicBool,
    drained: Notify,
    events: mpsc::UnboundedSender<DriverEvent>,
    budget: Arc<Budget>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the session's pending events to the event task, in order.
    fn flush(&self, s: &mut Session) {
        while let Some(e) = s.poll_event() {
            let bytes = match &e {
                SessionEvent::Message { data, .. } => data.len(),
                SessionEvent::Chunk(c) => c.size(),
                _ => 0,
            };
            let permit = (bytes > 0).then(|| {
                self.budget.used.fetch_add(bytes, Ordering::AcqRel);
                Permit {
                    budget: self.budget.clone(),
                    bytes,
                }
            });
            let _ = self.events.send(DriverEvent::Session(e, permit));
        }
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
        let _ = self.events.send(DriverEvent::Closed(why));
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
}

impl SessionDriver {
    /// Starts driving `transport` with `cfg`; events go to `sink` (on a
    /// runtime thread, in order). `keepalive` sends an empty SEND after that
    /// much idle time.
    pub fn start(
        transport: Transport,
        cfg: SessionConfig,
        keepalive: Option<Duration>,
        mut sink: EventSink,
    ) -> SessionDriver {
        let ctx = transport.context().clone();
        let session = Session::new(
            cfg,
            transport.local_path().to_vec(),
            transport.remote_path().to_vec(),
        );
        let (tx, mut rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            session: Mutex::new(session),
            wake: Notify::new(),
            closing: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            drained: Notify::new(),
            events: tx,
            budget: Arc::new(Budget::default()),
        });
        let transport = Arc::new(transport);
        let mut tasks = Vec::new();
        // The event task ends by itself after the Closed event.
        ctx.spawn(async move {
            while let Some(e) = rx.recv().await {
                let last = matches!(e, DriverEvent::Closed(_));
                sink(e);
                if last {
                    break;
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
        let r = {
            let mut s = self.shared.lock();
            let r = f(&mut s);
            self.shared.flush(&mut s);
            r
        };
        self.shared.wake.notify_one();
        Ok(r)
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

async fn read_loop(t: Arc<Transport>, sh: Arc<Shared>) {
    loop {
        sh.wait_for_budget().await;
        match t.read_chunk(usize::MAX).await {
            Ok(r) => {
                {
                    let mut s = sh.lock();
                    s.handle_chunk(r.chunk, Instant::now());
                    sh.flush(&mut s);
                    if s.is_idle() {
                        sh.drained.notify_waiters();
                    }
                }
                sh.wake.notify_one();
            }
            Err(e) => {
                sh.end(&t, e);
                return;
            }
        }
    }
}

async fn write_loop(t: Arc<Transport>, sh: Arc<Shared>, keepalive: Option<Duration>) {
    let mut last_activity = Instant::now();
    loop {
        if sh.closed.load(Ordering::Acquire) {
            return;
        }
        let wake = sh.wake.notified();
        // Take a batch of chunks (bounded in bytes, so memory stays bounded),
        // queue all but the last, and wait until the last one is written.
        let (batch, deadline) = {
            let mut s = sh.lock();
            let now = Instant::now();
            s.handle_timeout(now);
            let mut batch = Vec::new();
            let mut bytes = 0;
            while bytes < WRITE_BATCH {
                match s.poll_transmit(now) {
                    Some(c) => {
                        bytes += c.size() + 200;
                        batch.push(c);
                    }
                    None => break,
                }
            }
            sh.flush(&mut s);
            if batch.is_empty() && s.is_idle() {
                sh.drained.notify_waiters();
            }
            (batch, s.poll_timeout())
        };
        if let Some((last, rest)) = batch.split_last() {
            let mut r = Ok(());
            for c in rest {
                r = r.and_then(|_| t.write_chunk_nowait(c));
            }
            if r.is_ok() {
                r = t.write_chunk(last).await;
            }
            if let Err(e) = r {
                sh.end(&t, e);
                return;
            }
            last_activity = Instant::now();
            continue;
        }
        let keepalive_at = keepalive.map(|k| last_activity + k);
        let until = match (deadline, keepalive_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match until {
            Some(at) => {
                tokio::select! {
                    _ = wake => {}
                    _ = tokio::time::sleep_until(at.into()) => {
                        if keepalive_at.is_some_and(|k| k <= Instant::now()) {
                            let ka = binding_send(t.local_path(), t.remote_path());
                            let mut s = sh.lock();
                            s.send_chunk(keep_alive(ka));
                            t.log(Level::Debug, "sending a keep-alive SEND");
                            last_activity = Instant::now();
                        }
                    }
                }
            }
            None => wake.await,
        }
    }
}

fn keep_alive(mut c: Chunk) -> Chunk {
    let _ = c.add_header_raw("Keep-Alive", "yes");
    c
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
