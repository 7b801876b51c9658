//! C API for the runtime context (`msrp_context`).

use std::sync::Arc;

use super::error::{FfiError, msrp_result};
use super::handle::{borrow, free, into_raw, out_ok, write};
use super::panic::{run, run_or};
use crate::engine::{Context, ContextOptions, DeliveryMode};

/// The runtime that drives every connection: a small pool of libmsrp
/// threads, and the way callbacks reach you.
///
/// Create one per application with `msrp_context_new`; every connector,
/// server and transport is created from it. `msrp_context_free` shuts it
/// down: connections close, pending operations end and their callbacks
/// fire with `MSRP_RESULT_CLOSED`, the threads are joined, and no callback
/// runs after it returns. Objects created from a freed context stay valid
/// to free, and their calls return `MSRP_RESULT_CLOSED`. Do not free the
/// context while other threads are inside calls on its objects, or from
/// inside a callback.
pub struct msrp_context {
    pub(crate) inner: Arc<Context>,
}

/// Options for `msrp_context_new`; zero-initialise for the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct msrp_context_options {
    /// Threads that run connections (0 means 1, the default; more help when
    /// many connections are busy at once, or when callbacks may take long:
    /// while a callback runs on one, that thread moves no other connection).
    pub worker_threads: u32,
    /// false (default): callbacks run at once on the libmsrp thread where
    /// the event happened, one of those that run connections, so keep them
    /// short (hand long work to a thread of your own).
    /// true: callbacks wait in a queue until you call `msrp_context_dispatch`
    /// on your own thread; `msrp_context_fd` gives a descriptor that is
    /// readable while callbacks wait, for poll/select/epoll loops.
    pub queued_callbacks: bool,
    /// false (default): a thread blocked in `msrp_session_deliver_chunk`
    /// checks for the response without sleeping for up to 100 µs before it
    /// sleeps, when the session's previous response came within 100 µs (a
    /// peer on the same host or a fast LAN) and the machine has more than
    /// one CPU. A sleeping thread is woken 10–20 µs after its response
    /// arrives, as long again as a round trip on one host. Costs at most
    /// 100 µs of CPU per call, and nothing once responses are slower.
    /// true: such threads always sleep at once.
    pub no_busy_wait: bool,
}

/// Creates a context. `options` may be NULL for the defaults.
///
/// On POSIX systems, if SIGPIPE is still at its default action (which ends
/// the process when a peer resets a connection during a write), it is set
/// to ignored; a handler the application installed is left alone. Either
/// way the library never raises SIGPIPE itself: its threads block it and
/// writes made on the caller's thread use MSG_NOSIGNAL (a broken connection
/// gives MSRP_RESULT_CLOSED).
///
/// # Safety
/// `options` is NULL or readable; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_context_new(
    options: *const msrp_context_options,
    out: *mut *mut msrp_context,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let o = unsafe { options.as_ref() }.copied().unwrap_or_default();
        let opts = ContextOptions {
            worker_threads: (o.worker_threads as usize).max(1),
            delivery: if o.queued_callbacks {
                DeliveryMode::Queued
            } else {
                DeliveryMode::Direct
            },
            busy_wait: !o.no_busy_wait,
        };
        let inner = Context::new(opts)?;
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_context { inner }), "out") }
    })
}

/// Shuts the context down (see `msrp_context`) and frees it. NULL is ignored.
///
/// # Safety
/// `ctx` is NULL or a context from libmsrp not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_context_free(ctx: *mut msrp_context) {
    run_or((), || {
        // SAFETY: caller contract.
        if let Some(c) = unsafe { ctx.as_ref() } {
            c.inner.shutdown();
        }
        // SAFETY: caller contract.
        unsafe { free(ctx) };
        // Recycled body buffers are not kept past a context.
        crate::proto::bufpool::clear();
    })
}

/// How many shared connections this context has open that it opened itself
/// (active connectors with `msrp_connector_set_share_connection`), and how
/// many sessions they carry in all. Either pointer may be NULL.
///
/// # Safety
/// `ctx` is NULL or live; `connections` and `sessions` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_context_shared_connections(
    ctx: *const msrp_context,
    connections: *mut usize,
    sessions: *mut usize,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let ctx = unsafe { borrow(ctx, "ctx") }?;
        let (c, s) = ctx
            .inner
            .extension::<crate::engine::transport::shared::Registry>()
            .counts();
        // SAFETY: caller contract (NULL skipped).
        unsafe {
            if let Some(p) = connections.as_mut() {
                *p = c;
            }
            if let Some(p) = sessions.as_mut() {
                *p = s;
            }
        }
        Ok(())
    })
}

/// Queued mode: a file descriptor that is readable while callbacks wait.
/// Watch it for reading, then call `msrp_context_dispatch`. Do not read from
/// or close it. `MSRP_RESULT_WRONG_KIND` when callbacks are not queued;
/// `MSRP_RESULT_UNSUPPORTED` where there are no file descriptors.
///
/// # Safety
/// `ctx` is NULL or live; `fd` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_context_fd(ctx: *const msrp_context, fd: *mut i32) -> msrp_result {
    run(|| {
        out_ok(fd, "fd")?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(ctx, "ctx") }?;
        if !c.inner.is_queued() {
            return Err(FfiError::new(
                msrp_result::WrongKind,
                "callbacks are not queued: create the context with queued_callbacks = true",
            ));
        }
        #[cfg(unix)]
        {
            let raw = c
                .inner
                .wake_fd()
                .ok_or_else(|| FfiError::new(msrp_result::Unsupported, "no descriptor"))?;
            // SAFETY: checked non-NULL.
            unsafe { write(fd, raw, "fd") }
        }
        #[cfg(not(unix))]
        Err(FfiError::new(
            msrp_result::Unsupported,
            "file descriptors are only available on Unix",
        ))
    })
}

/// Queued mode: runs up to `max` waiting callbacks on the calling thread
/// (0 means all) and writes how many ran to `*ran` (may be NULL). Callbacks
/// may call any libmsrp function, including blocking ones.
///
/// # Safety
/// `ctx` is NULL or live; `ran` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_context_dispatch(
    ctx: *const msrp_context,
    max: usize,
    ran: *mut usize,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow(ctx, "ctx") }?.inner.clone();
        let n = c.dispatch(if max == 0 { usize::MAX } else { max });
        if !ran.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { ran.write(n) };
        }
        Ok(())
    })
}

/// Queued mode: how many callbacks wait (0 for NULL or direct mode).
///
/// # Safety
/// `ctx` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_context_pending_callbacks(ctx: *const msrp_context) -> usize {
    // SAFETY: caller contract.
    run_or(0, || {
        unsafe { ctx.as_ref() }.map_or(0, |c| c.inner.pending_callbacks())
    })
}
