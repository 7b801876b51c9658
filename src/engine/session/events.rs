//! What a session driver reports to the front end: events with a permit
//! for the received bytes they hold (the receive budget that holds the
//! connection back), and the queue that carries them to the event task
//! without keeping the room of a burst.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::super::context::Context;
use super::super::error::Error;
use crate::proto::session::SessionEvent;

#[derive(Default)]
pub(super) struct Budget {
    pub(super) used: AtomicUsize,
    pub(super) freed: Notify,
    /// The most `used` has been (tests).
    #[cfg(test)]
    pub(super) peak: AtomicUsize,
}

/// Holds received bytes against the session's budget until it is dropped,
/// which the application side does once its callback has run.
#[derive(Debug)]
pub struct Permit {
    pub(super) budget: Arc<Budget>,
    pub(super) bytes: usize,
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
// Events are moved a few times and never stored in bulk; boxing the chunk
// they carry would cost an allocation per event instead.
#[allow(clippy::large_enum_variant)]
pub enum DriverEvent {
    /// An event of the session.
    Session(SessionEvent, Option<Permit>),
    /// The session ended (last event).
    Closed(Error),
}

/// Where driver events go.
pub type EventSink = Box<dyn FnMut(DriverEvent) + Send>;

/// The queue from the session to its event task. Unlike tokio's unbounded
/// channel, which allocates room for 32 events (about 10 KiB for this
/// event type) when it is made and keeps it, it takes memory only while
/// events wait: a quiet session keeps room for at most `KEEP_EVENTS` events
/// here and as many in its task.
pub(super) struct EventQueue {
    /// Waiting events; `None` once the event task is gone (events are dropped).
    pub(super) q: Mutex<Option<VecDeque<DriverEvent>>>,
    pub(super) ready: Notify,
}

impl EventQueue {
    pub(super) fn new() -> Self {
        EventQueue {
            q: Mutex::new(Some(VecDeque::new())),
            ready: Notify::new(),
        }
    }

    pub(super) fn send(&self, e: DriverEvent) {
        let mut g = self.q.lock().unwrap_or_else(|p| p.into_inner());
        let Some(q) = g.as_mut() else { return };
        let was_empty = q.is_empty();
        q.push_back(e);
        drop(g);
        if was_empty {
            // Stored as a permit when the task is not waiting yet.
            self.ready.notify_one();
        }
    }

    /// Waits until events are queued and moves them all into `into`
    /// (empty), which leaves its room to the queue. While events keep
    /// coming both keep the room of a burst; before waiting, both give
    /// back what is more than `KEEP_EVENTS`.
    pub(super) async fn take(&self, into: &mut VecDeque<DriverEvent>) {
        loop {
            {
                let mut g = self.q.lock().unwrap_or_else(|p| p.into_inner());
                match g.as_mut() {
                    Some(q) if !q.is_empty() => {
                        std::mem::swap(q, into);
                        return;
                    }
                    Some(q) => {
                        shrink(q);
                        shrink(into);
                    }
                    None => {}
                }
            }
            self.ready.notified().await;
        }
    }

    /// The event task is gone: drops what waits and what comes.
    pub(super) fn close(&self) {
        let left = self.q.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(left);
    }
}

/// Room for this many events is kept by an empty queue; more is freed.
pub(super) const KEEP_EVENTS: usize = 4;

/// Frees the room of an empty queue that a burst left larger than `KEEP_EVENTS`.
pub(super) fn shrink(q: &mut VecDeque<DriverEvent>) {
    if q.capacity() > KEEP_EVENTS {
        *q = VecDeque::new();
    }
}

/// Closes the event queue when the event task ends, however it ends;
/// except when the context shuts down, which drops the task: then the
/// queue stays open for [`SessionHook`] to deliver what it holds.
pub(super) struct CloseOnDrop(pub(super) Arc<EventQueue>, pub(super) Arc<Context>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        if !self.1.is_closed() {
            self.0.close();
        }
    }
}
