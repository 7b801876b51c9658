//! C API for sessions (`msrp_session`, reference `MSRPSession`): options,
//! callbacks, starting one on a transport, raw chunks and reports, closing.
//! Outgoing messages are in `message.rs`, the dispatch of events to the
//! callbacks in `session_events.rs`.

use crate::engine::slot::{SpinHint, slot};
use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::callback::UserData;
use super::chunk::msrp_chunk;
use super::composing::Composing;
use super::error::{FfiError, msrp_result};
use super::handle::{borrow, free, into_raw, opt_text, out_ok, text, write};
use super::logger::msrp_userdata_free_fn;
use super::panic::{run, run_or};
use super::session_callbacks::{Owner, msrp_response_cb, msrp_session_callbacks};
use super::session_events::{CSinks, Registry, Waiter, lock, make_sink};
use super::transport::{msrp_chunk_params, msrp_transport, timeout};
use crate::engine::session::chunk_size_for;
use crate::engine::session::{SessionDriver, transaction_error};
use crate::engine::sink::Sinks;
use crate::proto::header::ReportMode;
use crate::proto::session::{SessionConfig, SessionEvent, parse_accept_types};
use crate::proto::transport::make_chunk;

/// Default chunk body size when the path goes through a relay.
pub const MSRP_RELAY_CHUNK_SIZE: usize = 8192;
const _: () = assert!(MSRP_RELAY_CHUNK_SIZE == crate::engine::session::RELAY_CHUNK_SIZE);

/// The port MSRP URIs and relays use when none is given.
pub const MSRP_DEFAULT_PORT: u16 = 2855;
const _: () = assert!(MSRP_DEFAULT_PORT == crate::engine::connector::DEFAULT_PORT);

/// Session settings; start from `msrp_session_options_default()`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct msrp_session_options {
    /// Acceptable media types, separated by spaces or commas: `*` (any),
    /// a whole type (`text/` followed by `*`: any `text` subtype) or
    /// `type/subtype` (NULL: `*`). Others get 415.
    pub accept_types: *const c_char,
    /// Largest body of an outgoing chunk (0, the default: 131072, or
    /// `MSRP_RELAY_CHUNK_SIZE` when the path goes through a relay, or 65536
    /// on a WebSocket connection, where each chunk is one WebSocket message
    /// and at most 1 MiB is used whatever is asked). A
    /// large message is written in chunks of this size whose Byte-Range
    /// ends in `*`; a chunk in progress is ended early (`+`) whenever a
    /// response, a report or another message waits (RFC 4975 §7.1.1), so
    /// chat never waits for a whole chunk. Larger chunks mean fewer
    /// transactions, but up to `window` of them may sit in socket buffers
    /// ahead of a chat line (see docs/performance.md for measurements).
    pub chunk_size: usize,
    /// Most outgoing transactions waiting for a response (default 32).
    pub window: u32,
    /// How long to wait for a transaction response, in ms (default 30000).
    pub response_timeout_ms: u32,
    /// Largest incoming message, in bytes; bigger ones get 413 (and free
    /// what they held at once). 0 (the default) means 64 MiB when whole
    /// messages are reassembled and no limit in streaming mode.
    pub max_message_size: u64,
    /// false (default): whole messages reach `on_message`. true: each SEND
    /// chunk reaches `on_chunk` as it arrives (for large transfers).
    pub streaming: bool,
    /// Compare only session ids in path checks (sessmatch).
    pub use_sessmatch: bool,
    /// Send an empty SEND after this many ms without traffic (0: never, the default).
    pub keepalive_ms: u32,
    /// Most bytes held at once for incoming messages that arrive in several
    /// chunks and are reassembled in memory, all together (0, the default:
    /// twice `max_message_size`, 128 MiB). The message whose chunk would
    /// cross it gets 413 and frees its share; others go on. Messages that
    /// arrive in one chunk do not count. After `on_message` returns, the
    /// buffer of a message of 4 MiB or more is kept for the session's next
    /// message of about its size (at most two buffers, freed 1 s after the
    /// last one came back, or when the session closes).
    pub max_receive_memory: u64,
    /// Most incoming messages open at once (some chunks received, not yet
    /// complete); the next one gets 413 (0, the default: 32).
    pub max_incomplete: u32,
    /// An incoming message that gets no chunk for this many ms is dropped
    /// and reported to `on_incomplete` (0, the default: 120000).
    pub incomplete_timeout_ms: u32,
    /// Most outgoing messages larger than one chunk sent at a time; the
    /// others wait their turn, so that a peer with the same settings never
    /// refuses them for arriving together (0, the default: 2). Messages that
    /// fit in one chunk are never held back.
    pub max_concurrent_sends: u32,
    /// What the peer accepts, from its SDP `a=accept-types` (RFC 4975
    /// §8.6), separated by spaces: `msrp_session_send_message` and
    /// `msrp_session_send_file` refuse other content types at once with
    /// `MSRP_RESULT_NOT_ACCEPTED_BY_PEER` (NULL, the default: anything).
    pub peer_accept_types: *const c_char,
    /// The peer's SDP `a=max-size`: larger messages are refused at once
    /// with `MSRP_RESULT_PEER_MAX_SIZE` (0, the default: no limit).
    pub peer_max_size: u64,
    /// What the peer accepts only inside a wrapper, from its SDP
    /// `a=accept-wrapped-types`, separated by spaces:
    /// `msrp_session_send_cpim` refuses content of other types (unless in
    /// `peer_accept_types`) with `MSRP_RESULT_NOT_ACCEPTED_BY_PEER` (NULL,
    /// the default: no such limit when `peer_accept_types` is NULL too).
    pub peer_accept_wrapped_types: *const c_char,
    /// Answer each incoming `message/cpim` message that asks for a positive
    /// delivery notification (RFC 5438) with one, at once (default false:
    /// the application sends it with `msrp_session_send_imdn`).
    pub imdn_auto_delivery: bool,
    /// After this many ms without `msrp_session_composing`, the session
    /// tells the peer we are idle (RFC 3994 §3.2; 0, the default: 15000).
    pub composing_idle_ms: u32,
    /// While the user types, refresh `active` this often, in seconds (at
    /// least 60, RFC 3994 §3.2; 0, the default: no refreshes, and the peer
    /// assumes idle after 120 s).
    pub composing_refresh_s: u32,
    /// A chat-room focus (RFC 7701): NICKNAME requests go to
    /// `on_nickname` and wait for `msrp_session_answer_nickname` (default
    /// false: each well-formed one gets 200 at once and reaches `on_chunk`).
    pub nickname_by_application: bool,
}

/// The default session settings.
#[unsafe(no_mangle)]
pub extern "C" fn msrp_session_options_default() -> msrp_session_options {
    let d = SessionConfig::default();
    msrp_session_options {
        accept_types: std::ptr::null(),
        chunk_size: 0,
        window: d.window as u32,
        response_timeout_ms: d.response_timeout.as_millis() as u32,
        max_message_size: 0,
        streaming: false,
        use_sessmatch: false,
        keepalive_ms: 0,
        max_receive_memory: 0,
        max_incomplete: 0,
        incomplete_timeout_ms: 0,
        max_concurrent_sends: 0,
        peer_accept_types: std::ptr::null(),
        peer_max_size: 0,
        peer_accept_wrapped_types: std::ptr::null(),
        imdn_auto_delivery: false,
        composing_idle_ms: 0,
        composing_refresh_s: 0,
        nickname_by_application: false,
    }
}

/// A running session over a transport (reference `MSRPSession`).
///
/// Created from a transport by `msrp_session_new` (which takes the
/// transport over). Released with `msrp_session_free`, which closes the
/// connection; `on_closed` then still runs once, and `userdata_free` after it.
/// A session may be used from several threads at once.
pub struct msrp_session {
    pub(crate) driver: Arc<SessionDriver>,
    pub(crate) registry: Arc<Mutex<Registry>>,
    /// Incoming messages going to sinks (see `on_message_start`).
    sinks: Arc<CSinks>,
    /// How long the last `deliver_chunk` waited.
    spin: SpinHint,
    /// Typing indications (RFC 3994).
    pub(crate) composing: Arc<Composing>,
}

/// Starts a session on `transport`, which the session takes over: from
/// now on do not use or free the transport handle (it is freed here, also
/// when this fails). `options` and `callbacks` may be NULL (defaults, no
/// callbacks); `userdata` goes to every session callback; `userdata_free`
/// (may be NULL) runs once after `on_closed`. No callback runs before
/// `*out` holds the handle, so callbacks may use it (for instance to answer
/// a message the peer sent before this call). A transport the peer has
/// closed since it was bound still gives a session: the chunks it read
/// before the close are handled and delivered, messages left incomplete go
/// to `on_incomplete`, then `on_closed` runs. `MSRP_RESULT_CLOSED` only
/// when the transport was closed locally (or the context was freed).
///
/// # Safety
/// `transport` is NULL or a live transport not used elsewhere; the option
/// strings are NULL or NUL-terminated; callbacks and userdata may be used
/// from libmsrp's threads; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_new(
    transport: *mut msrp_transport,
    options: *const msrp_session_options,
    callbacks: *const msrp_session_callbacks,
    userdata: *mut c_void,
    userdata_free: msrp_userdata_free_fn,
    out: *mut *mut msrp_session,
) -> msrp_result {
    run(|| {
        let owner = Arc::new(Owner {
            ud: userdata,
            free: userdata_free,
        });
        if transport.is_null() {
            return Err(FfiError::null("transport"));
        }
        // SAFETY: caller contract: the transport is handed over and freed here.
        let t = unsafe { Box::from_raw(transport) };
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let o = unsafe { options.as_ref() }
            .copied()
            .unwrap_or_else(|| msrp_session_options_default());
        // SAFETY: caller contract.
        let cbs = unsafe { callbacks.as_ref() }.copied().unwrap_or_default();
        // SAFETY: caller contract.
        let types = unsafe { opt_text(o.accept_types, "options.accept_types") }?
            .map_or_else(|| vec!["*".into()], parse_accept_types);
        if types.is_empty() {
            return Err(FfiError::new(
                msrp_result::InvalidArgument,
                "options.accept_types lists no media type",
            ));
        }
        // SAFETY: caller contract.
        let peer_types = unsafe { opt_text(o.peer_accept_types, "options.peer_accept_types") }?
            .map(parse_accept_types)
            .unwrap_or_default();
        // SAFETY: caller contract.
        let peer_wrapped = unsafe {
            opt_text(
                o.peer_accept_wrapped_types,
                "options.peer_accept_wrapped_types",
            )
        }?
        .map(parse_accept_types)
        .unwrap_or_default();
        let d = SessionConfig::default();
        let max_message_size = match o.max_message_size {
            // Streaming receivers hold nothing, so only an explicit limit applies.
            0 if o.streaming => u64::MAX,
            0 => d.max_message_size,
            n => n,
        };
        let cfg = SessionConfig {
            chunk_size: chunk_size_for(&t.inner, o.chunk_size),
            window: if o.window == 0 {
                d.window
            } else {
                o.window as usize
            },
            response_timeout: if o.response_timeout_ms == 0 {
                d.response_timeout
            } else {
                Duration::from_millis(u64::from(o.response_timeout_ms))
            },
            accept_types: types,
            max_message_size,
            max_receive_memory: match o.max_receive_memory {
                0 => max_message_size.saturating_mul(2),
                n => n,
            },
            max_incomplete: match o.max_incomplete {
                0 => d.max_incomplete,
                n => n as usize,
            },
            incomplete_timeout: match o.incomplete_timeout_ms {
                0 => d.incomplete_timeout,
                n => Duration::from_millis(u64::from(n)),
            },
            max_concurrent_sends: match o.max_concurrent_sends {
                0 => d.max_concurrent_sends,
                n => n as usize,
            },
            streaming: o.streaming,
            announce: cbs.on_message_start.is_some() && !o.streaming,
            sessmatch: o.use_sessmatch || t.inner.sessmatch(),
            peer_accept_types: peer_types,
            peer_max_size: (o.peer_max_size != 0).then_some(o.peer_max_size),
            peer_accept_wrapped_types: peer_wrapped,
            nickname_by_application: o.nickname_by_application,
        };
        let keepalive =
            (o.keepalive_ms > 0).then(|| Duration::from_millis(u64::from(o.keepalive_ms)));
        let engine_t = Arc::try_unwrap(t.inner).map_err(|_| {
            FfiError::new(
                msrp_result::BadState,
                "the transport is still in use by a pending read; wait for it first",
            )
        })?;
        let ctx = engine_t.context().clone();
        ctx.check_open()?;
        // A transport the peer closed still gives a session: what it read
        // before the close is delivered, then `on_closed` runs.
        if engine_t.is_closed() && !engine_t.input_ended() {
            return Err(FfiError::new(
                msrp_result::Closed,
                "the transport is already closed",
            ));
        }
        let registry = Arc::new(Mutex::new(Registry::default()));
        let sinks = Arc::new(CSinks(Sinks::new(
            cfg.max_message_size,
            cfg.max_receive_memory,
        )));
        let composing = Arc::new(Composing::new(
            &ctx,
            cbs.on_composing,
            UserData(owner.ud),
            &owner,
            o.composing_idle_ms,
            o.composing_refresh_s,
        ));
        let sink = make_sink(
            ctx.clone(),
            cbs,
            owner,
            registry.clone(),
            sinks.clone(),
            o.imdn_auto_delivery,
            composing.clone(),
        );
        // Blocking callers (deliver_chunk) are woken at once, not through the
        // application's callback queue.
        let reg = registry.clone();
        let fast: crate::engine::session::FastPath = Box::new(move |e: &SessionEvent| match e {
            // Events about messages nobody asked to hear about are dropped here.
            SessionEvent::Progress { msg, .. } | SessionEvent::MessageDone { msg, .. } => {
                !lock(&reg).is_listened(*msg)
            }
            _ => response_now(&reg, e),
        });
        // The peer may have sent already: its events wait until the
        // application holds the handle its callbacks may want to use.
        let driver = Arc::new(SessionDriver::start_held(
            engine_t,
            cfg,
            keepalive,
            sink,
            Some(fast),
        ));
        let _ = sinks.0.driver.set(Arc::downgrade(&driver));
        let _ = composing.driver.set(Arc::downgrade(&driver));
        let events = driver.clone();
        // SAFETY: checked non-NULL.
        unsafe {
            write(
                out,
                into_raw(msrp_session {
                    driver,
                    registry,
                    sinks,
                    spin: SpinHint::default(),
                    composing,
                }),
                "out",
            )
        }?;
        #[cfg(test)]
        tests::pause_before_publishing();
        events.release_events();
        Ok(())
    })
}

/// Like `msrp_transport_make_chunk`, with this session's paths.
///
/// # Safety
/// As for `msrp_transport_make_chunk`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_make_chunk(
    s: *const msrp_session,
    params: *const msrp_chunk_params,
    out: *mut *mut msrp_chunk,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let p = unsafe { super::transport::chunk_params(params) }?;
        let t = s.driver.transport();
        let c = make_chunk(t.local_path(), t.remote_path(), &p)?;
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_chunk { inner: c }), "out") }
    })
}

/// Reference `send_chunk`: queues a copy of `chunk` (a request) and returns
/// at once. `cb` (may be NULL) is called exactly once with the response (see
/// `msrp_response_cb`); not for REPORTs, which get no response. The chunk
/// gets a fresh transaction id if its own is in use or appears in its body.
///
/// # Safety
/// `s` and `chunk` are NULL or live; `cb` and `userdata` may be used from libmsrp's threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_send_chunk(
    s: *const msrp_session,
    chunk: *const msrp_chunk,
    cb: msrp_response_cb,
    userdata: *mut c_void,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?.inner.clone();
        if !c.is_request() {
            return Err(FfiError::new(
                msrp_result::WrongKind,
                "send_chunk takes requests; use msrp_transport_write_response for responses",
            ));
        }
        send_request(s, c, cb, userdata)
    })
}

/// Queues the request `c` on `s`; `cb` (may be None) gets its response.
pub(crate) fn send_request(
    s: &msrp_session,
    c: crate::proto::Chunk,
    cb: msrp_response_cb,
    userdata: *mut c_void,
) -> Result<(), FfiError> {
    let reg = s.registry.clone();
    let ud = UserData(userdata);
    s.driver.with(move |sess| {
        let tx = sess.send_chunk(c);
        if cb.is_some() {
            lock(&reg).expect_response(tx, Waiter::C(cb, ud));
        }
    })?;
    Ok(())
}

/// Reference `deliver_chunk`: sends a copy of `chunk` and waits (at most
/// `timeout_ms`; 0: 30 s) for its response. Returns `MSRP_RESULT_OK` for a
/// 2xx response, `MSRP_RESULT_TRANSACTION_FAILED` for another code,
/// `MSRP_RESULT_TIMEOUT` for the local 408, `MSRP_RESULT_CLOSED` when the
/// session ended; `*code` (may be NULL) gets the code either way. With
/// Failure-Report `no` it returns at once (code 200). Called inside a
/// libmsrp callback, where waiting would block the thread that delivers the
/// response, it returns `MSRP_RESULT_IN_CALLBACK` without sending anything
/// (use `msrp_session_send_chunk` there); with Failure-Report `no` nothing is
/// waited for, so it sends as usual. While the session's responses come
/// within 100 µs, the wait starts with up to 100 µs of busy-waiting
/// (`msrp_context_options.no_busy_wait` turns that off).
///
/// # Safety
/// `s` and `chunk` are NULL or live; `code` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_deliver_chunk(
    s: *const msrp_session,
    chunk: *const msrp_chunk,
    timeout_ms: u32,
    code: *mut u16,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?.inner.clone();
        let no_reports =
            c.failure_report().is_ok_and(|f| f == ReportMode::No) || c.method() == Some("REPORT");
        let reg = s.registry.clone();
        if !no_reports {
            // Refused inside a callback before anything is sent.
            s.driver.context().check_may_block()?;
        }
        let (tx, rx) = slot();
        s.driver.with(move |sess| {
            let id = sess.send_chunk(c);
            if !no_reports {
                lock(&reg).expect_response(id, Waiter::Internal(tx));
            }
        })?;
        let set = |v: u16| {
            if !code.is_null() {
                // SAFETY: non-NULL and writable per the contract.
                unsafe { code.write(v) };
            }
        };
        if no_reports {
            set(200);
            return Ok(());
        }
        // Waited for on this thread directly (no runtime timer, no wake of a
        // runtime thread): the response wakes it once, or finds it still
        // checking when the last response of this session came quickly.
        let (rc, comment, local) = s.driver.context().wait_slot(
            timeout(timeout_ms),
            rx,
            "the session ended",
            Some(&s.spin),
        )?;
        set(rc);
        if (200..300).contains(&rc) {
            Ok(())
        } else {
            Err(transaction_error(rc, &comment, local).into())
        }
    })
}

/// Wakes a blocking caller waiting for this response at once; drops
/// responses nobody waits for. Returns whether the event was consumed.
fn response_now(reg: &Mutex<Registry>, e: &SessionEvent) -> bool {
    let SessionEvent::ChunkResponse {
        tx,
        code,
        comment,
        local,
    } = e
    else {
        return false;
    };
    let waiter = {
        let mut r = lock(reg);
        match r.waiter(*tx) {
            Some(Waiter::C(..)) => return false,
            Some(Waiter::Internal(_)) => r.take_waiter(*tx),
            None => return true,
        }
    };
    // Woken with the registry unlocked: the caller's next request takes it.
    if let Some(Waiter::Internal(s)) = waiter {
        s.send((*code, comment.clone(), *local));
    }
    true
}

/// Reference `send_report`: sends a REPORT about `chunk`, a SEND request
/// this session received (e.g. the head given to `on_message`, or a chunk
/// from `on_chunk`), with `code` and `comment` (may be NULL) in its Status
/// and the chunk's Byte-Range. As in the reference, the REPORT goes out only
/// when the chunk asked for it: Success-Report `yes`, or Failure-Report
/// `yes`/`partial` with a code other than 200 — the way to report a failure
/// found after the transaction was answered (the session's own success
/// REPORTs for whole messages are automatic). For the head given to
/// `on_message` the REPORT covers the whole message; for a chunk, its bytes. `sent` (may be NULL) tells
/// whether a REPORT was queued. Errors: `MSRP_RESULT_WRONG_KIND` for a
/// chunk that is not a SEND, `MSRP_RESULT_MISSING_HEADER` without a
/// Message-ID, `MSRP_RESULT_INVALID_CODE`, `MSRP_RESULT_CLOSED`.
///
/// # Safety
/// `s` and `chunk` are NULL or live; `comment` is NULL or a NUL-terminated
/// string; `sent` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_send_report(
    s: *const msrp_session,
    chunk: *const msrp_chunk,
    code: u16,
    comment: *const c_char,
    sent: *mut bool,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        // SAFETY: caller contract.
        let comment = unsafe { opt_text(comment, "comment") }?;
        let queued = s
            .driver
            .with(|sess| sess.send_report(&c.inner, code, comment))??;
        if !sent.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { sent.write(queued) };
        }
        Ok(())
    })
}

/// Refuses the rest of an incoming message (its Message-ID as given to
/// `on_message_start`, `on_incoming_progress` or a chunk's headers): its
/// later chunks get 413, so the sender stops; what the session holds of it
/// is freed and its sink (a file opened for it) is closed as it is. Nothing
/// more is reported about it. `MSRP_RESULT_NOT_FOUND` when it is not open
/// (complete, refused or expired already).
///
/// # Safety
/// `s` is NULL or live; `message_id` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_refuse_incoming(
    s: *const msrp_session,
    message_id: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let mid = unsafe { text(message_id, "message_id") }?;
        let open = s.driver.with(|sess| sess.refuse_incoming(mid))?;
        s.sinks.0.forget(mid);
        if open {
            Ok(())
        } else {
            Err(FfiError::new(
                msrp_result::NotFound,
                format!("no incoming message {mid} is open"),
            ))
        }
    })
}

/// Reference `shutdown`: with `sync`, waits (at most `timeout_ms`; 0: 30 s)
/// until what was queued is sent and answered, then closes; without, closes
/// now and pending callbacks get local errors. New sends fail from now on.
/// The sync form is a blocking call: inside a libmsrp callback it returns
/// `MSRP_RESULT_IN_CALLBACK` and changes nothing (what was queued is still
/// sent; call it without sync there, or from another thread). When the
/// wait times out, the session is closed anyway and `MSRP_RESULT_TIMEOUT`
/// returned.
///
/// # Safety
/// `s` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_shutdown(
    s: *const msrp_session,
    sync: bool,
    timeout_ms: u32,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        if !sync {
            s.driver.close("the session was shut down locally");
            return Ok(());
        }
        // Refused inside a callback before anything changes.
        s.driver.context().check_may_block()?;
        let d = s.driver.clone();
        let r = s
            .driver
            .context()
            .block_on(timeout(timeout_ms), async move {
                d.shutdown(true).await;
                Ok(())
            });
        if r.is_err() {
            s.driver
                .close("the session was shut down locally (flush timed out)");
        }
        Ok(r?)
    })
}

/// True once the session ended (true for NULL).
///
/// # Safety
/// `s` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_is_closed(s: *const msrp_session) -> bool {
    // SAFETY: caller contract.
    run_or(true, || {
        unsafe { s.as_ref() }.is_none_or(|s| s.driver.is_closed())
    })
}

/// Closes the session (as `msrp_session_shutdown` without sync) and frees it. NULL is ignored.
///
/// # Safety
/// `s` is NULL or a session from libmsrp not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_free(s: *mut msrp_session) {
    run_or((), || {
        // SAFETY: caller contract.
        if let Some(s) = unsafe { s.as_ref() } {
            s.driver.close("the session was freed");
        }
        // SAFETY: caller contract.
        unsafe { free(s) }
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ffi::message::msrp_session_send_message;
    use crate::ffi::session_callbacks::msrp_message_callbacks;
    use std::cell::Cell;
    use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU64, Ordering};

    thread_local! {
        static PAUSE: Cell<bool> = const { Cell::new(false) };
    }

    /// Called where a handle has been made and is about to be (or has just
    /// been) given to the application: a test widens that moment so that a
    /// callback that could come before the handle would surely do so.
    pub(crate) fn pause_before_publishing() {
        if PAUSE.with(Cell::get) {
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    fn paused<R>(f: impl FnOnce() -> R) -> R {
        PAUSE.with(|p| p.set(true));
        let r = f();
        PAUSE.with(|p| p.set(false));
        r
    }

    /// 0: no callback yet; 1: the callback saw the handle; 2: it did not.
    fn wait_for(state: &AtomicU8) -> u8 {
        for _ in 0..1000 {
            match state.load(Ordering::Acquire) {
                0 => std::thread::sleep(Duration::from_millis(10)),
                s => return s,
            }
        }
        0
    }

    struct Probe {
        session: AtomicPtr<msrp_session>,
        message: AtomicU64,
        state: AtomicU8,
    }

    unsafe extern "C" fn on_message(ud: *mut c_void, _: *const msrp_chunk, _: *const u8, _: usize) {
        // SAFETY: the test's probe outlives the session.
        let p = unsafe { &*(ud as *const Probe) };
        let seen = !p.session.load(Ordering::Acquire).is_null();
        let _ = p.state.compare_exchange(
            0,
            if seen { 1 } else { 2 },
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    unsafe extern "C" fn on_done(
        ud: *mut c_void,
        message: u64,
        _: *const c_char,
        _: u16,
        _: *const c_char,
    ) {
        // SAFETY: as above.
        let p = unsafe { &*(ud as *const Probe) };
        let seen = p.message.load(Ordering::Acquire) == message;
        let _ = p.state.compare_exchange(
            0,
            if seen { 1 } else { 2 },
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// A message that is already on its way when the session starts (the
    /// peer sent at once) reaches `on_message` only after `*out` holds the
    /// session's handle, and `on_done` of a message only runs after
    /// `*message` holds the message's handle. (msrpcat's echo once answered
    /// a message before it had its session's handle.)
    #[test]
    fn no_callback_runs_before_the_application_has_the_handle() {
        let (_ctx, ta, tb) = crate::engine::connector::loopback_context(2);
        let wrap = |t| into_raw(msrp_transport { inner: Arc::new(t) });
        let probe = |session| Probe {
            session: AtomicPtr::new(session),
            message: AtomicU64::new(0),
            state: AtomicU8::new(0),
        };

        let alice_probe = probe(std::ptr::null_mut());
        let mut alice = std::ptr::null_mut();
        // SAFETY: a fresh transport; NULL options and callbacks are allowed.
        let r = unsafe {
            msrp_session_new(
                wrap(ta),
                std::ptr::null(),
                std::ptr::null(),
                std::ptr::null_mut(),
                None,
                &mut alice,
            )
        };
        assert_eq!(r, msrp_result::Ok);
        // SAFETY: a live session; the text and type are NUL-terminated.
        let r = unsafe {
            msrp_session_send_message(
                alice,
                b"hi".as_ptr(),
                2,
                c"text/plain".as_ptr(),
                std::ptr::null(),
                std::ptr::null(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(r, msrp_result::Ok);

        let bob_probe = probe(std::ptr::null_mut());
        let cbs = msrp_session_callbacks {
            on_message: Some(on_message),
            ..Default::default()
        };
        // SAFETY: a fresh transport; the probe outlives the session, and
        // its slot has the layout of a session pointer.
        let r = paused(|| unsafe {
            msrp_session_new(
                wrap(tb),
                std::ptr::null(),
                &cbs,
                &bob_probe as *const Probe as *mut c_void,
                None,
                bob_probe.session.as_ptr(),
            )
        });
        assert_eq!(r, msrp_result::Ok);
        assert_eq!(
            wait_for(&bob_probe.state),
            1,
            "on_message ran before the session's handle was written"
        );

        let mcbs = msrp_message_callbacks {
            on_done: Some(on_done),
            ..Default::default()
        };
        // SAFETY: a live session; the probe outlives it; its slot has the layout of a u64.
        let r = paused(|| unsafe {
            msrp_session_send_message(
                alice,
                b"hello".as_ptr(),
                5,
                c"text/plain".as_ptr(),
                std::ptr::null(),
                &mcbs,
                &alice_probe as *const Probe as *mut c_void,
                alice_probe.message.as_ptr(),
            )
        });
        assert_eq!(r, msrp_result::Ok);
        assert_eq!(
            wait_for(&alice_probe.state),
            1,
            "on_done ran before the message's handle was written"
        );
        // SAFETY: live sessions, freed once.
        unsafe {
            msrp_session_free(alice);
            msrp_session_free(bob_probe.session.load(Ordering::Acquire));
        }
    }
}
