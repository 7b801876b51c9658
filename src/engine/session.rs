//! Drives a sans-IO [`Session`] over a [`Transport`]: a reader task feeds
//! incoming chunks in, a writer task writes what the session wants sent
//! (one chunk at a time, so memory stays bounded) and runs its deadlines,
//! and an event task hands events to the application in order, never while
//! the session is locked (so callbacks may call back into the session).

use std::sync::atomic::{AtomicBool, Ordering};
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

/// What the driver reports: session events, and once at the end, the reason it closed.
#[derive(Debug)]
pub enum DriverEvent {
    /// An event of the session.
    Session(SessionEvent),
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
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the session's pending events to the event task, in order.
    fn flush(&self, s: &mut Session) {
        while let Some(e) = s.poll_event() {
            let _ = self.events.send(DriverEvent::Session(e));
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
        let (next, deadline) = {
            let mut s = sh.lock();
            let now = Instant::now();
            s.handle_timeout(now);
            let next = s.poll_transmit(now);
            sh.flush(&mut s);
            if next.is_none() && s.is_idle() {
                sh.drained.notify_waiters();
            }
            (next, s.poll_timeout())
        };
        if let Some(c) = next {
            if let Err(e) = t.write_chunk(&c).await {
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
