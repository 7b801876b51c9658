//! A session's events turned into the application's C callbacks: each is
//! looked up in the session's routes and handed to the context to run (at
//! once, or queued for `msrp_context_dispatch`).

use std::sync::{Arc, Mutex};

use super::callback::{UserData, cstring};
use super::chunk::{MSRP_BYTE_RANGE_UNKNOWN, msrp_chunk};
use super::error::{FfiError, msrp_result};
use super::handle::into_raw;
use super::incoming::{CSinks, incomplete};
use super::message::msrp_message_callbacks;
use super::session::{Owner, msrp_response_cb, msrp_session_callbacks};
use crate::engine::Context;
use crate::engine::routes::Routes;
use crate::engine::session::DriverEvent;
use crate::engine::slot::SlotTx;
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
                if let Some(f) = cbs.on_message {
                    ctx.deliver(move || {
                        let _hold = (hold, permit);
                        let h = msrp_chunk { inner: head };
                        // SAFETY: valid pointers for the duration of the call.
                        unsafe { f(ud.ptr(), &h, data.as_ptr(), data.len()) };
                        crate::proto::bufpool::give(data);
                    })
                }
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
            DriverEvent::Session(SessionEvent::MessagePart(c), permit) => {
                let sinks = sinks.clone();
                ctx.deliver(move || {
                    let _hold = (hold, permit);
                    sinks.part(&cbs, ud, &c);
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
                sinks.0.clear();
                let code = FfiError::from(e.clone()).code;
                let f = cbs.on_closed;
                ctx.deliver(move || {
                    let _hold = hold;
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
