//! A session's events turned into the application's C callbacks: each is
//! looked up in the session's routes and handed to the context to run (at
//! once, or queued for `msrp_context_dispatch`).

use std::sync::{Arc, Mutex};

use super::callback::{UserData, cstring};
use super::chunk::{MSRP_BYTE_RANGE_UNKNOWN, msrp_chunk};
use super::error::{FfiError, msrp_result};
use super::handle::into_raw;
use super::incoming::{Choice, msrp_incoming};
use super::session_callbacks::{
    Owner, msrp_message_callbacks, msrp_response_cb, msrp_session_callbacks,
};
use crate::engine::Context;
use crate::engine::routes::Routes;
use crate::engine::session::DriverEvent;
use crate::engine::sink::{Failed, Finished, PartOutcome, Sink, SinkError, Sinks};
use crate::engine::slot::SlotTx;
use crate::proto::Chunk;
use crate::proto::session::SessionEvent;

pub(crate) enum Waiter {
    C(msrp_response_cb, UserData),
    Internal(SlotTx<(u16, String, bool)>),
}

#[derive(Clone, Copy)]
pub(crate) struct MsgCbs {
    pub(crate) cbs: msrp_message_callbacks,
    pub(crate) ud: UserData,
}

/// The session's routes: waiters for responses, message callbacks.
pub(crate) type Registry = Routes<Waiter, MsgCbs>;

pub(crate) fn lock(r: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn make_sink(
    ctx: Arc<Context>,
    cbs: msrp_session_callbacks,
    owner: Arc<Owner>,
    registry: Arc<Mutex<Registry>>,
    sinks: Arc<CSinks>,
    auto_delivery: bool,
    composing: Arc<super::composing::Composing>,
) -> crate::engine::session::EventSink {
    Box::new(move |ev: DriverEvent| {
        let ud = UserData(owner.ud);
        let hold = owner.clone();
        // Each callback is handed to the context as a closure: run on this
        // thread in direct mode (no allocation), queued otherwise.
        match ev {
            DriverEvent::Session(
                SessionEvent::ChunkResponse {
                    tx,
                    code,
                    comment,
                    local,
                },
                _,
            ) => {
                // The registry is unlocked before the callback runs (it may
                // call back into the library).
                let waiter = lock(&registry).take_waiter(tx);
                match waiter {
                    Some(Waiter::Internal(s)) => s.send((code, comment, local)),
                    Some(Waiter::C(Some(cb), cud)) => ctx.deliver(move || {
                        let c = cstring(&comment);
                        // SAFETY: the application's callback with its userdata.
                        unsafe { cb(cud.ptr(), code, c.as_ptr(), local) }
                    }),
                    _ => {}
                }
            }
            DriverEvent::Session(
                SessionEvent::Progress {
                    msg,
                    sent,
                    acked,
                    total,
                },
                _,
            ) => {
                let m = lock(&registry)
                    .listener(msg)
                    .map(|m| (m.cbs.on_progress, m.ud));
                if let Some((Some(f), mud)) = m {
                    ctx.deliver(move || {
                        // SAFETY: the application's callback with its userdata.
                        unsafe {
                            f(
                                mud.ptr(),
                                msg,
                                sent,
                                acked,
                                total.unwrap_or(MSRP_BYTE_RANGE_UNKNOWN),
                            )
                        }
                    })
                }
            }
            DriverEvent::Session(
                SessionEvent::MessageDone {
                    msg,
                    message_id,
                    code,
                    comment,
                },
                _,
            ) => {
                let m = lock(&registry).done(msg, &message_id);
                if let Some(MsgCbs {
                    cbs:
                        msrp_message_callbacks {
                            on_done: Some(f), ..
                        },
                    ud: mud,
                }) = m
                {
                    ctx.deliver(move || {
                        let c = cstring(&comment);
                        let mid = cstring(&message_id);
                        // SAFETY: the application's callback with its userdata.
                        unsafe { f(mud.ptr(), msg, mid.as_ptr(), code, c.as_ptr()) }
                    })
                }
            }
            DriverEvent::Session(SessionEvent::Message { head, data }, permit) => {
                // is-composing: to on_composing when it listens (RFC 3994).
                let ct = head.content_type().unwrap_or("");
                if composing.listens() && super::composing::is_composing_type(ct) {
                    if let Ok(doc) = crate::proto::iscomposing::IsComposing::parse(&data) {
                        composing.status(&doc);
                        crate::proto::bufpool::give(data);
                        return;
                    }
                }
                // message/cpim: read here; an IMDN goes to the message it is
                // about, the rest to on_cpim (else on_message as it is).
                if super::im::is_cpim(&head) {
                    let auto = auto_delivery
                        .then(|| sinks.0.driver.get().and_then(|w| w.upgrade()))
                        .flatten();
                    let taken = super::im::incoming_cpim(
                        &cbs, ud, &registry, auto, &composing, &head, &data,
                    );
                    if let Some(call) = taken {
                        crate::proto::bufpool::give(data);
                        ctx.deliver(move || {
                            let _hold = (hold, permit);
                            call();
                        });
                        return;
                    }
                }
                composing.peer_message();
                if let Some(f) = cbs.on_message {
                    let driver = sinks.0.driver.get().cloned();
                    ctx.deliver(move || {
                        let _hold = (hold, permit);
                        let h = msrp_chunk { inner: head };
                        // SAFETY: valid pointers for the duration of the call.
                        unsafe { f(ud.ptr(), &h, data.as_ptr(), data.len()) };
                        // A large buffer serves the session's next large message.
                        match driver.and_then(|d| d.upgrade()) {
                            Some(d) => d.recycle(data),
                            None => crate::proto::bufpool::give(data),
                        }
                    })
                }
            }
            DriverEvent::Session(
                SessionEvent::Nickname {
                    transaction_id,
                    nickname,
                },
                _,
            ) => {
                let Some(f) = cbs.on_nickname else {
                    // Nobody decides: the request gets what a focus without
                    // nickname support answers (RFC 7701 §7.1).
                    if let Some(d) = sinks.0.driver.get().and_then(|w| w.upgrade()) {
                        let _ = d.with(|s| {
                            s.answer_nickname(&transaction_id, 403, "Nicknames not supported")
                        });
                    }
                    return;
                };
                ctx.deliver(move || {
                    let _hold = hold;
                    let t = cstring(&transaction_id);
                    let n = cstring(&nickname);
                    // SAFETY: valid pointers for the duration of the call.
                    unsafe { f(ud.ptr(), t.as_ptr(), n.as_ptr()) }
                })
            }
            DriverEvent::Session(SessionEvent::Chunk(c), permit) => {
                if let Some(f) = cbs.on_chunk {
                    ctx.deliver(move || {
                        let _hold = (hold, permit);
                        // SAFETY: the chunk is handed over to the application.
                        unsafe { f(ud.ptr(), into_raw(msrp_chunk { inner: c })) }
                    })
                }
            }
            DriverEvent::Session(SessionEvent::Report(c), _) => {
                // The message's own callback first (when it has one), then
                // the session's, which keeps the REPORT.
                let mine = lock(&registry).report(&c);
                let session_cb = cbs.on_report;
                if mine.is_none() && session_cb.is_none() {
                    return;
                }
                ctx.deliver(move || {
                    let _hold = hold;
                    let h = msrp_chunk { inner: c };
                    if let Some((msg, MsgCbs { cbs: mc, ud: mud })) = mine {
                        if let Some(f) = mc.on_report {
                            // SAFETY: the application's callback; the REPORT lives during the call.
                            unsafe { f(mud.ptr(), msg, &h) }
                        }
                    }
                    if let Some(f) = session_cb {
                        // SAFETY: the chunk is handed over to the application.
                        unsafe { f(ud.ptr(), into_raw(h)) }
                    }
                })
            }
            DriverEvent::Session(SessionEvent::MessageAborted { message_id }, _) => {
                let sinks = sinks.clone();
                ctx.deliver(move || {
                    let _hold = hold;
                    sinks.0.forget(&message_id);
                    if let Some(f) = cbs.on_aborted {
                        let m = cstring(&message_id);
                        // SAFETY: valid pointer for the duration of the call.
                        unsafe { f(ud.ptr(), m.as_ptr()) }
                    }
                })
            }
            DriverEvent::Session(
                SessionEvent::Incomplete {
                    message_id,
                    head,
                    received,
                    total,
                    expired,
                },
                _,
            ) => {
                let sinks = sinks.clone();
                ctx.deliver(move || {
                    let _hold = hold;
                    sinks.0.forget(&message_id);
                    let (code, why) = if expired {
                        (msrp_result::Timeout, "no chunk of it arrived in time")
                    } else {
                        (msrp_result::Closed, "the session closed first")
                    };
                    let h = head.as_ref();
                    incomplete(&cbs, ud, h, &message_id, received, total, code, why);
                })
            }
            DriverEvent::Session(
                SessionEvent::MessageStart {
                    message_id,
                    head,
                    total,
                },
                _,
            ) => {
                let sinks = sinks.clone();
                ctx.deliver(move || {
                    let _hold = hold;
                    sinks.start(&cbs, ud, message_id, head, total);
                })
            }
            DriverEvent::Session(SessionEvent::MessagePart(mut c), permit) => {
                let sinks = sinks.clone();
                ctx.deliver(move || {
                    let _hold = (hold, permit);
                    sinks.part(&cbs, ud, &c);
                    // Written: its buffer goes back for the next chunk read.
                    crate::proto::bufpool::give(c.take_buffer());
                })
            }
            DriverEvent::Session(
                SessionEvent::MessageEnd {
                    message_id, total, ..
                },
                _,
            ) => {
                let sinks = sinks.clone();
                ctx.deliver(move || {
                    let _hold = hold;
                    sinks.end(&cbs, ud, &message_id, total);
                })
            }
            DriverEvent::Closed(e) => {
                lock(&registry).closed();
                let code = FfiError::from(e.clone()).code;
                let f = cbs.on_closed;
                let sinks = sinks.clone();
                ctx.deliver(move || {
                    let _hold = hold;
                    // In order: the deliveries queued before this one (the
                    // end of a message to a sink among them) still find
                    // their sinks. Cleared here, not when the event came,
                    // a message completed just before a close was dropped
                    // when callbacks waited for msrp_context_dispatch.
                    sinks.0.clear();
                    if let Some(f) = f {
                        let m = cstring(&e.msg);
                        // SAFETY: the application's callback with its userdata.
                        unsafe { f(ud.ptr(), code, m.as_ptr()) }
                    }
                })
            }
        }
    })
}

/// The session's incoming messages that go to sinks, as the C API drives
/// them: the application chooses each message's sink in `on_message_start`
/// and hears of progress, the end or a failure through its callbacks. The
/// bookkeeping and the limits are [`crate::engine::sink::Sinks`]'s. Only
/// the session's delivery jobs use it, one at a time and in order.
pub(super) struct CSinks(pub(super) Sinks);

impl CSinks {
    /// A message's first chunk arrived: asks the application where it goes.
    pub(super) fn start(
        &self,
        cbs: &msrp_session_callbacks,
        ud: UserData,
        message_id: String,
        head: Chunk,
        total: Option<u64>,
    ) {
        let mut inc = msrp_incoming { choice: None };
        if let Some(f) = cbs.on_message_start {
            let h = msrp_chunk {
                inner: head.clone(),
            };
            let m = cstring(&message_id);
            let t = total.unwrap_or(MSRP_BYTE_RANGE_UNKNOWN);
            // SAFETY: the application's callback; pointers valid during the call.
            unsafe { f(ud.ptr(), &h, m.as_ptr(), t, &mut inc) };
        }
        let sink = match inc.choice {
            Some(Choice::Refuse) => {
                self.0.refuse(&message_id);
                return;
            }
            Some(Choice::File(f)) => Some(Sink::File(f)),
            Some(Choice::Callback(Some(w), wud)) => {
                Some(Sink::Write(Box::new(move |off, d: &[u8]| {
                    // SAFETY: the application's callback with its userdata and a valid buffer.
                    match unsafe { w(wud.ptr(), off, d.as_ptr(), d.len()) } {
                        0 => Ok(()),
                        r => Err(format!("the write callback returned {r}")),
                    }
                })))
            }
            Some(Choice::Callback(None, _)) | None => None,
        };
        let started = self.0.start(message_id.clone(), head.clone(), total, sink);
        if let Err(e) = started {
            let why = e.to_string();
            incomplete(
                cbs,
                ud,
                Some(&head),
                &message_id,
                0,
                total,
                result_of(&e),
                &why,
            );
        }
    }

    /// Writes a chunk of an open message; reports progress, or the failure.
    pub(super) fn part(&self, cbs: &msrp_session_callbacks, ud: UserData, chunk: &Chunk) {
        let mid = chunk.message_id().unwrap_or("");
        match self.0.part(chunk) {
            PartOutcome::None => {}
            PartOutcome::Written {
                received,
                total,
                to_memory,
            } => {
                if let (Some(f), false) = (cbs.on_incoming_progress, to_memory) {
                    let m = cstring(mid);
                    let t = total.unwrap_or(MSRP_BYTE_RANGE_UNKNOWN);
                    // SAFETY: the application's callback; valid pointer during the call.
                    unsafe { f(ud.ptr(), m.as_ptr(), received, t) };
                }
            }
            PartOutcome::Failed(f) => failed(cbs, ud, mid, *f),
        }
    }

    /// Every byte arrived: hands a message in memory to `on_message`, or
    /// closes its sink and calls `on_message_saved`.
    pub(super) fn end(
        &self,
        cbs: &msrp_session_callbacks,
        ud: UserData,
        message_id: &str,
        total: u64,
    ) {
        match self.0.end(message_id, total) {
            None => {}
            Some(Finished::InMemory(head, data)) => {
                if let Some(f) = cbs.on_message {
                    let h = msrp_chunk { inner: head };
                    // SAFETY: the application's callback; valid pointers during the call.
                    unsafe { f(ud.ptr(), &h, data.as_ptr(), data.len()) };
                }
                // A large buffer serves the session's next large message.
                if let Some(d) = self.0.driver.get().and_then(|d| d.upgrade()) {
                    d.recycle(data);
                }
            }
            Some(Finished::Saved(head)) => {
                if let Some(f) = cbs.on_message_saved {
                    let h = msrp_chunk { inner: head };
                    let m = cstring(message_id);
                    // SAFETY: as above.
                    unsafe { f(ud.ptr(), &h, m.as_ptr(), total) };
                }
            }
            Some(Finished::Failed(f)) => failed(cbs, ud, message_id, f),
        }
    }
}

/// The result code for a sink's failure.
fn result_of(e: &SinkError) -> msrp_result {
    match e {
        SinkError::TooLarge(_) => msrp_result::TooLarge,
        SinkError::Io(_) => msrp_result::Io,
    }
}

/// Reports a message whose sink failed to `on_incomplete`.
fn failed(cbs: &msrp_session_callbacks, ud: UserData, message_id: &str, f: Failed) {
    let why = f.error.to_string();
    let code = result_of(&f.error);
    incomplete(
        cbs,
        ud,
        Some(&f.head),
        message_id,
        f.received,
        f.total,
        code,
        &why,
    );
}

/// Calls `on_incomplete`.
#[allow(clippy::too_many_arguments)]
pub(super) fn incomplete(
    cbs: &msrp_session_callbacks,
    ud: UserData,
    head: Option<&Chunk>,
    message_id: &str,
    received: u64,
    total: Option<u64>,
    reason: msrp_result,
    why: &str,
) {
    let Some(f) = cbs.on_incomplete else { return };
    let m = cstring(message_id);
    let w = cstring(why);
    let h = head.map(|c| msrp_chunk { inner: c.clone() });
    let hp = h
        .as_ref()
        .map_or(std::ptr::null(), |h| h as *const msrp_chunk);
    let t = total.unwrap_or(MSRP_BYTE_RANGE_UNKNOWN);
    // SAFETY: the application's callback; valid pointers during the call.
    unsafe { f(ud.ptr(), hp, m.as_ptr(), received, t, reason, w.as_ptr()) }
}
