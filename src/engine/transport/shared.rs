//! One connection carrying several sessions (RFC 4975 §5.4). A demultiplexer
//! task reads the connection and hands each chunk to the session its To-Path
//! names (`proto::share`); each session sees a [`Transport`] of its own (a
//! member) whose reads come from that task and whose writes share the
//! connection's one write queue. Members send whole chunks only (never a
//! chunk streamed in pieces, which another member's chunk could cut), so the
//! queue holds whole chunks from any session in the order they were sent.
//!
//! Active side: the context keeps a registry of shared connections by
//! authority (scheme, host, port, WebSocket, where to connect, TLS identity);
//! a connector that opts in joins one with room, or opens one. The
//! connection closes when its last session leaves. Passive side (a server
//! that opts in): a SEND for a session id the connection does not carry yet
//! makes a new member, which the server judges as a binding like the first
//! chunk of a new connection. A passive connection that carries no session
//! for [`IDLE_CLOSE`] is closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::read::{Batch, InEvent, ReadSource, ReadState, Reader};
use super::{EVENT_QUEUE, Out, Pending, Transport, open};
use crate::engine::context::Context;
use crate::engine::error::Error;
use crate::engine::logger::{Level, LoggerRef, log};
use crate::engine::stream::Conn;
use crate::proto::share::{self, Unknown};
use crate::proto::uri::Uri;

/// Most sessions a connection we opened carries; the next one opens
/// another connection.
pub const SESSIONS_PER_CONNECTION: usize = 4096;
/// Most sessions a connection we accepted carries; a binding beyond gets 481.
const PASSIVE_SESSIONS: usize = 4 * SESSIONS_PER_CONNECTION;
/// A connection we accepted that carries no session for this long closes.
pub const IDLE_CLOSE: Duration = Duration::from_secs(30);

/// Called with each new member of a passive shared connection (to be
/// judged as a binding).
pub type OnNew = Box<dyn Fn(Transport) + Send + Sync>;

/// A connection that carries several sessions.
pub struct SharedConn {
    id: u64,
    ctx: Arc<Context>,
    out: Arc<Out>,
    members: Mutex<Members>,
    reader: Mutex<Option<AbortHandle>>,
    sessmatch: bool,
    logger: Option<LoggerRef>,
    /// Passive side: where new sessions go.
    on_new: Option<OnNew>,
    /// Active side: the registry and key (the entry goes with the last session).
    key: Option<(Weak<Registry>, String)>,
}

#[derive(Default)]
struct Members {
    map: HashMap<String, mpsc::Sender<Batch>>,
    /// No session may join any more (the last one left, or the input ended).
    closing: bool,
    /// Counts joins, so that an idle close sees whether one came meanwhile.
    joins: u64,
}

/// A member's link to its connection.
pub(super) struct Member {
    conn: Arc<SharedConn>,
    sid: String,
    left: AtomicBool,
}

impl Member {
    pub(super) fn has_left(&self) -> bool {
        self.left.load(Ordering::Acquire)
    }

    /// Leaves the connection (once): no more chunks come to this member;
    /// the connection closes when it was the last of an active side's.
    pub(super) fn leave(&self) {
        if !self.left.swap(true, Ordering::AcqRel) {
            self.conn.leave(&self.sid);
        }
    }
}

impl SharedConn {
    fn lock(&self) -> std::sync::MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the demultiplexer on `stream`. Must be called on the runtime.
    pub fn start(
        ctx: &Arc<Context>,
        stream: Conn,
        sessmatch: bool,
        logger: Option<LoggerRef>,
        on_new: Option<OnNew>,
        key: Option<(Weak<Registry>, String)>,
    ) -> Arc<SharedConn> {
        let id = ctx.next_id();
        let (out, reader, _pending) = open(ctx, stream, id, &logger);
        let conn = Arc::new(SharedConn {
            id,
            ctx: ctx.clone(),
            out,
            members: Mutex::new(Members::default()),
            reader: Mutex::new(None),
            sessmatch,
            logger,
            on_new,
            key,
        });
        // The task keeps the connection until it ends or is aborted (close).
        let task = ctx.spawn(demux(conn.clone(), reader));
        *conn.reader.lock().unwrap_or_else(|p| p.into_inner()) = task;
        if conn.on_new.is_some() {
            conn.close_when_idle(0);
        }
        conn
    }

    /// The connection's id (as given to logger callbacks).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// How many sessions the connection carries.
    pub fn sessions(&self) -> usize {
        self.lock().map.len()
    }

    fn is_closed(&self) -> bool {
        self.out.closed.is() || self.ctx.is_closed() || self.lock().closing
    }

    /// A member for session `sid`, or `None` when the connection takes no
    /// more sessions (closing, full, or `sid` is on it already).
    pub fn join(
        self: &Arc<Self>,
        sid: &str,
        local: Vec<Uri>,
        remote: Vec<Uri>,
    ) -> Option<Transport> {
        let limit = if self.on_new.is_some() {
            PASSIVE_SESSIONS
        } else {
            SESSIONS_PER_CONNECTION
        };
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        {
            let mut m = self.lock();
            if m.closing || self.out.closed.is() || m.map.len() >= limit || m.map.contains_key(sid)
            {
                return None;
            }
            m.map.insert(sid.to_string(), tx);
            m.joins += 1;
        }
        Some(Transport {
            id: self.ctx.next_id(),
            ctx: self.ctx.clone(),
            local,
            remote,
            sessmatch: self.sessmatch,
            logger: self.logger.clone(),
            read: tokio::sync::Mutex::new(ReadState::new(ReadSource::Task { rx, handoff: None })),
            out: self.out.clone(),
            reader: Mutex::new(None),
            pending: Arc::new(Pending::default()),
            member: Some(Member {
                conn: self.clone(),
                sid: sid.to_string(),
                left: AtomicBool::new(false),
            }),
        })
    }

    fn leave(self: &Arc<Self>, sid: &str) {
        let (empty, joins) = {
            let mut m = self.lock();
            m.map.remove(sid);
            let empty = m.map.is_empty();
            if empty && self.on_new.is_none() {
                m.closing = true;
            }
            (empty, m.joins)
        };
        if !empty {
            return;
        }
        match &self.key {
            // Ours: it goes with its last session.
            Some((reg, key)) if self.on_new.is_none() => {
                if let Some(reg) = reg.upgrade() {
                    reg.remove(key, self.id);
                }
                self.close();
            }
            _ => self.close_when_idle(joins),
        }
    }

    /// Closes the connection if no session joins it within [`IDLE_CLOSE`]
    /// (after `joins` joins so far).
    fn close_when_idle(self: &Arc<Self>, joins: u64) {
        let conn = Arc::downgrade(self);
        self.ctx.spawn(async move {
            tokio::time::sleep(IDLE_CLOSE).await;
            let Some(c) = conn.upgrade() else { return };
            let idle = {
                let mut m = c.lock();
                let idle = m.map.is_empty() && m.joins == joins;
                if idle {
                    m.closing = true;
                }
                idle
            };
            if idle {
                log(
                    &c.logger,
                    Level::Info,
                    &format!(
                        "shared connection {} carried no session for {IDLE_CLOSE:?}; closed",
                        c.id
                    ),
                );
                c.close();
            }
        });
    }

    /// Closes the connection: queued chunks are still written.
    fn close(&self) {
        self.out
            .closed
            .set(&Error::closed("the shared connection was closed locally"));
        self.out.close();
        self.out.shut.notify_waiters();
        if let Some(h) = self.reader.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
        let mut m = self.lock();
        m.closing = true;
        m.map.clear();
    }

    /// The member a chunk goes to (see [`SharedConn::unrouted`] for a
    /// chunk of no member).
    fn route(self: &Arc<Self>, ch: &crate::proto::Chunk) -> Option<mpsc::Sender<Batch>> {
        let known = share::session_of(ch).and_then(|sid| self.lock().map.get(sid).cloned());
        known.or_else(|| self.unrouted(ch))
    }

    /// Where a chunk for no member goes: a new member (passive side, a
    /// SEND), an answer, or nowhere.
    fn unrouted(self: &Arc<Self>, c: &crate::proto::Chunk) -> Option<mpsc::Sender<Batch>> {
        match share::unknown(c, self.on_new.is_some()) {
            Unknown::Bind => {
                let sid = share::session_of(c)?.to_string();
                // Paths come from the binding (the server sets them).
                match self.join(&sid, Vec::new(), Vec::new()) {
                    Some(t) => {
                        let tx = self.lock().map.get(&sid).cloned();
                        if let Some(f) = &self.on_new {
                            f(t);
                        }
                        tx
                    }
                    None => {
                        self.refuse(c);
                        None
                    }
                }
            }
            Unknown::Refuse(reply) => {
                log(
                    &self.logger,
                    Level::Info,
                    &format!(
                        "shared connection {}: a {} for no session on it{}",
                        self.id,
                        c.method().unwrap_or("request"),
                        if reply.is_some() { ": 481" } else { "" }
                    ),
                );
                if let Some(r) = reply {
                    let _ = self.out.enqueue(*r, None);
                }
                None
            }
            Unknown::Ignore => None,
        }
    }

    fn refuse(&self, c: &crate::proto::Chunk) {
        if let Some(r) = crate::proto::binding::reply(c, 481, "No Such Session") {
            let _ = self.out.enqueue(r, None);
        }
    }
}

/// Reads the connection and hands each chunk's events to its member, in
/// order; ends when the connection does (every member then reads the close).
async fn demux(c: Arc<SharedConn>, mut reader: Box<Reader>) {
    // The member of the chunk whose body is arriving.
    let mut current: Option<mpsc::Sender<Batch>> = None;
    loop {
        let mut batch = Batch::new();
        reader.read_batch(&mut batch).await;
        // Consecutive events for one member go as one batch.
        let mut runs: Vec<(mpsc::Sender<Batch>, Batch)> = Vec::new();
        let mut push = |tx: &mpsc::Sender<Batch>, ev: InEvent| match runs.last_mut() {
            Some((t, b)) if t.same_channel(tx) => b.push_back(ev),
            _ => runs.push((tx.clone(), Batch::from([ev]))),
        };
        let mut end = None;
        for ev in batch {
            match ev {
                InEvent::Whole(ch) => {
                    current = None;
                    if let Some(tx) = c.route(&ch) {
                        push(&tx, InEvent::Whole(ch));
                    }
                }
                InEvent::Head(ch) => {
                    current = c.route(&ch);
                    if let Some(tx) = &current {
                        push(tx, InEvent::Head(ch));
                    }
                }
                InEvent::Data(d) => {
                    if let Some(tx) = &current {
                        push(tx, InEvent::Data(d));
                    }
                }
                InEvent::End(f) => {
                    if let Some(tx) = current.take() {
                        push(&tx, InEvent::End(f));
                    }
                }
                InEvent::Closed(e) => end = Some(e),
            }
        }
        for (tx, b) in runs {
            // A member that left takes nothing more.
            let _ = tx.send(b).await;
        }
        if let Some(e) = end {
            let members: Vec<_> = {
                let mut m = c.lock();
                m.closing = true;
                m.map.drain().map(|(_, tx)| tx).collect()
            };
            log(
                &c.logger,
                Level::Debug,
                &format!("shared connection {} ended: {e}", c.id),
            );
            for tx in members {
                let _ = tx.send(Batch::from([InEvent::Closed(e.clone())])).await;
            }
            return;
        }
    }
}

/// The context's shared connections that we opened, by authority.
#[derive(Default)]
pub struct Registry {
    conns: Mutex<HashMap<String, Vec<Arc<SharedConn>>>>,
    /// One connection is opened at a time, so that sessions started
    /// together share it rather than each opening one.
    opening: tokio::sync::Mutex<()>,
}

impl Registry {
    fn remove(&self, key: &str, id: u64) {
        let mut map = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = map.get_mut(key) {
            v.retain(|c| c.id != id);
            if v.is_empty() {
                map.remove(key);
            }
        }
    }

    fn try_join(&self, key: &str, sid: &str, local: &[Uri], remote: &[Uri]) -> Option<Transport> {
        let conns: Vec<_> = self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
            .unwrap_or_default();
        conns
            .iter()
            .filter(|c| !c.is_closed())
            .find_map(|c| c.join(sid, local.to_vec(), remote.to_vec()))
    }

    /// A member for session `sid` (our local URI's) on a connection to
    /// `key`'s authority: one already open with room, or a new one made
    /// from what `connect` gives.
    #[allow(clippy::too_many_arguments)]
    pub async fn member<F>(
        self: &Arc<Self>,
        ctx: &Arc<Context>,
        key: String,
        sid: &str,
        local: Vec<Uri>,
        remote: Vec<Uri>,
        sessmatch: bool,
        logger: Option<LoggerRef>,
        connect: F,
    ) -> Result<Transport, Error>
    where
        F: std::future::Future<Output = Result<Conn, Error>>,
    {
        if let Some(t) = self.try_join(&key, sid, &local, &remote) {
            return Ok(t);
        }
        let _one = self.opening.lock().await;
        if let Some(t) = self.try_join(&key, sid, &local, &remote) {
            return Ok(t);
        }
        let stream = connect.await?;
        let conn = SharedConn::start(
            ctx,
            stream,
            sessmatch,
            logger,
            None,
            Some((Arc::downgrade(self), key.clone())),
        );
        let t = conn.join(sid, local, remote).ok_or_else(|| {
            Error::new(
                crate::engine::error::ErrorKind::InvalidArgument,
                format!("session id {sid} is on the new shared connection already"),
            )
        })?;
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default()
            .push(conn);
        Ok(t)
    }

    /// How many connections are open, and how many sessions they carry.
    pub fn counts(&self) -> (usize, usize) {
        let map = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let conns = map.values().map(Vec::len).sum();
        let sessions = map.values().flatten().map(|c| c.sessions()).sum();
        (conns, sessions)
    }
}
