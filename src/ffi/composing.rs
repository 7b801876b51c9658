//! Typing indications on a session (RFC 3994): the application says when
//! its user types (`msrp_session_composing`), the session sends `active`
//! and later `idle` or refreshes, and tells the application when the peer
//! starts or stops composing (`on_composing`). The rules are
//! [`crate::proto::iscomposing`]'s state machines; here a task runs their
//! timers on the context's runtime.

use std::ffi::{c_char, c_void};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::callback::{UserData, cstring};
use super::error::{FfiError, msrp_result};
use super::handle::{borrow, opt_text};
use super::message::send_quiet;
use super::panic::run;
use super::session::msrp_session;
use super::session_callbacks::Owner;
use crate::engine::Context;
use crate::engine::session::SessionDriver;
use crate::proto::iscomposing::{Composer, ISCOMPOSING_TYPE, IsComposing, Watcher};

/// The application's `on_composing`.
pub(crate) type ComposingCb =
    Option<unsafe extern "C" fn(userdata: *mut c_void, active: bool, content_type: *const c_char)>;

struct State {
    composer: Composer,
    watcher: Watcher,
}

/// One session's typing state and the timers that drive it.
pub(crate) struct Composing {
    epoch: Instant,
    st: Mutex<State>,
    wake: Arc<Notify>,
    started: AtomicBool,
    ctx: Arc<Context>,
    cb: ComposingCb,
    ud: UserData,
    owner: Weak<Owner>,
    pub(crate) driver: OnceLock<Weak<SessionDriver>>,
}

// SAFETY: the only non-thread-safe part is the application's userdata
// pointer, which the application promised may be used from libmsrp's
// threads (as for every session callback); libmsrp only passes it back.
unsafe impl Sync for Composing {}
// SAFETY: as above.
unsafe impl Send for Composing {}

/// Whether `ct` is the is-composing content type.
pub(crate) fn is_composing_type(ct: &str) -> bool {
    crate::proto::session::is_media_type(ct, ISCOMPOSING_TYPE)
}

impl Composing {
    /// The state of a new session: `idle_ms` without typing makes us idle
    /// (0: 15 s), `refresh_s` between `active` refreshes (0: none).
    pub(crate) fn new(
        ctx: &Arc<Context>,
        cb: ComposingCb,
        ud: UserData,
        owner: &Arc<Owner>,
        idle_ms: u32,
        refresh_s: u32,
    ) -> Composing {
        let idle = if idle_ms == 0 {
            crate::proto::iscomposing::DEFAULT_IDLE_TIMEOUT_MS
        } else {
            u64::from(idle_ms)
        };
        Composing {
            epoch: Instant::now(),
            st: Mutex::new(State {
                composer: Composer::new(idle, (refresh_s != 0).then_some(refresh_s)),
                watcher: Watcher::default(),
            }),
            wake: Arc::new(Notify::new()),
            started: AtomicBool::new(false),
            ctx: ctx.clone(),
            cb,
            ud,
            owner: Arc::downgrade(owner),
            driver: OnceLock::new(),
        }
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the application listens to the peer's typing.
    pub(crate) fn listens(&self) -> bool {
        self.cb.is_some()
    }

    /// Our user typed: `active` goes out when we were idle.
    fn typed(self: &Arc<Self>, content_type: Option<&str>) -> Result<(), FfiError> {
        let doc = self.lock().composer.typed(self.now());
        if let Some(mut d) = doc {
            if let Some(t) = content_type {
                d.content_type = Some(t.to_owned());
            }
            if let Err(e) = self.send(&d) {
                // Not sent: still idle as far as the peer knows.
                self.lock().composer.message_sent();
                return Err(e);
            }
        }
        self.arm();
        Ok(())
    }

    /// We sent a content message: idle without a notice (RFC 3994 §3.2).
    pub(crate) fn message_sent(&self) {
        self.lock().composer.message_sent();
    }

    /// A status document from the peer.
    pub(crate) fn status(self: &Arc<Self>, doc: &IsComposing) {
        let changed = self.lock().watcher.status(doc, self.now());
        if changed {
            self.tell(doc.active, doc.content_type.clone());
        }
        self.arm();
    }

    /// A content message from the peer: it stopped composing (§3.3).
    pub(crate) fn peer_message(&self) {
        if self.cb.is_some() && self.lock().watcher.message() {
            self.tell(false, None);
        }
    }

    fn tell(&self, active: bool, content_type: Option<String>) {
        let (Some(f), Some(owner)) = (self.cb, self.owner.upgrade()) else {
            return;
        };
        let ud = self.ud;
        self.ctx.deliver(move || {
            let _hold = owner;
            let ct = content_type.as_deref().map(cstring);
            let p = ct.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
            // SAFETY: the application's callback with its userdata.
            unsafe { f(ud.ptr(), active, p) }
        });
    }

    fn send(&self, doc: &IsComposing) -> Result<(), FfiError> {
        let driver = self
            .driver
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| FfiError::new(msrp_result::Closed, "the session is closed"))?;
        send_quiet(
            &driver,
            ISCOMPOSING_TYPE,
            doc.to_xml().into_bytes(),
            crate::proto::header::ReportMode::No,
        )
    }

    /// Starts the timer task on first use, and wakes it to look at the new
    /// deadlines.
    fn arm(self: &Arc<Self>) {
        if !self.started.swap(true, Ordering::AcqRel) {
            let me = Arc::downgrade(self);
            let wake = self.wake.clone();
            self.ctx.spawn(async move {
                loop {
                    let wait = {
                        let Some(c) = me.upgrade() else { return };
                        let now = c.now();
                        let (sent, tell) = {
                            let mut st = c.lock();
                            let doc = st.composer.tick(now);
                            let expired = st.watcher.tick(now);
                            (doc, expired)
                        };
                        if let Some(d) = sent {
                            // The session may be closing: nothing to tell then.
                            let _ = c.send(&d);
                        }
                        if tell {
                            c.tell(false, None);
                        }
                        let st = c.lock();
                        [st.composer.next_deadline(), st.watcher.next_deadline()]
                            .into_iter()
                            .flatten()
                            .min()
                            .map(|d| Duration::from_millis(d.saturating_sub(now)))
                    };
                    match wait {
                        Some(d) => {
                            tokio::select! {
                                _ = tokio::time::sleep(d) => {}
                                _ = wake.notified() => {}
                            }
                        }
                        None => wake.notified().await,
                    }
                }
            });
        }
        self.wake.notify_one();
    }
}

impl Drop for Composing {
    fn drop(&mut self) {
        // The timer task ends when it wakes and finds the state gone.
        self.wake.notify_one();
    }
}

/// The user of session `s` is typing (call it on each keystroke, or as
/// often as convenient): the first call sends an `active` indication
/// (RFC 3994 §3.2; `content_type` — NULL: `text/plain` — says what is being
/// composed), and the session sends `idle` by itself once the user stopped
/// for the session's `composing_idle_ms`, or refreshes `active` every
/// `composing_refresh_s` while typing goes on. Sending a message ends the
/// composing state without an `idle`. `MSRP_RESULT_NOT_ACCEPTED_BY_PEER`
/// when the peer's accept-types leave out `application/im-iscomposing+xml`.
///
/// # Safety
/// `s` is NULL or live; `content_type` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_composing(
    s: *const msrp_session,
    content_type: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let ct = unsafe { opt_text(content_type, "content_type") }?;
        if let Some(t) = ct {
            crate::proto::header::validate(crate::proto::HeaderName::ContentType, t)?;
        }
        s.composing.typed(ct)
    })
}
