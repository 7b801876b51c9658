//! C API for the shared-port server (`msrp_server`, reference
//! `MSRPServer`): one listening socket per local address, shared by the
//! sessions whose bindings name them.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::connector::{
    complete_async, complete_blocking, msrp_complete_cb, parse_local_uri, remote_path,
};
use super::context::msrp_context;
use super::error::{FfiError, msrp_result};
use super::handle::{borrow, free, into_raw, out_ok, text, write, write_string};
use super::logger::{logger_ref, msrp_logger};
use super::panic::{run, run_or};
use super::tls::{msrp_tls, opt_fingerprint};
use super::transport::{msrp_transport, timeout};
use crate::engine::server::Server;
use crate::engine::tls::Fingerprint;
use crate::proto::uri::{Uri, format_path};

/// The shared-port server: one listening socket per local address shared
/// by many sessions.
///
/// Create it with `msrp_server_new` (set TLS settings before an `msrps`
/// path); for each session call `msrp_server_prepare` (its path for SDP),
/// then `msrp_server_complete` or its `_async` form with the peer's path:
/// the binding SEND is matched to the prepared path, and the transport
/// returned. `msrp_server_cleanup` drops a prepared path that will not be
/// completed. `msrp_server_free` closes every port and ends waiting
/// completions with `MSRP_RESULT_CLOSED`; transports already handed out
/// stay open. Completion callbacks run like every libmsrp callback (on a
/// libmsrp thread, or from `msrp_context_dispatch`) and may call any
/// non-blocking function. Safe to use from several threads.
pub struct msrp_server {
    pub(crate) inner: Arc<Server>,
}

/// Creates a shared-port server. `use_sessmatch` and `logger` as for `msrp_connector_new`.
///
/// # Safety
/// `ctx` is NULL or live; `logger` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_server_new(
    ctx: *const msrp_context,
    use_sessmatch: bool,
    logger: *const msrp_logger,
    out: *mut *mut msrp_server,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let ctx = unsafe { borrow(ctx, "ctx") }?;
        ctx.inner.check_open()?;
        // SAFETY: caller contract.
        let inner = Arc::new(Server::new(
            &ctx.inner,
            unsafe { logger_ref(logger) },
            use_sessmatch,
        ));
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_server { inner }), "out") }
    })
}

/// Reference `MSRPServer.prepare`: registers `local_uri` (may be NULL) as an
/// expected local URI and gives the full local path for SDP. The listening
/// socket for its address is opened only if the server has none there yet;
/// port 0 (or no URI) shares the port already open on that address. A
/// missing session id is generated. Connections whose binding To-Path is
/// not registered get 481.
///
/// # Safety
/// `s` is NULL or live; `local_uri` is NULL or a NUL-terminated string; `full_local_path` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_server_prepare(
    s: *const msrp_server,
    local_uri: *const c_char,
    full_local_path: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        out_ok(full_local_path, "full_local_path")?;
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let path = s.inner.prepare(unsafe { parse_local_uri(local_uri) }?)?;
        // SAFETY: checked non-NULL.
        unsafe { write_string(full_local_path, &format_path(&path), "full_local_path") }
    })
}

/// Reference `MSRPServer.complete`: waits (at most `timeout_ms`; 0: 30 s)
/// for the connection whose binding comes from `full_remote_path` (it may
/// already have arrived), answers it 200 and gives its transport. A binding
/// SEND that carries a message is not answered here but handed to the
/// transport's first read (or the session made from it), like any SEND.
/// The server checks a binding's To-Path as soon as its head (and at most
/// 16 KiB of its body) arrived: an unknown session gets 481 and the
/// connection is closed at once.
///
/// # Safety
/// `s` is NULL or live; `full_remote_path` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_server_complete(
    s: *const msrp_server,
    full_remote_path: *const c_char,
    timeout_ms: u32,
    out: *mut *mut msrp_transport,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let remote = unsafe { remote_path(full_remote_path) }?;
        let ctx = s.inner.context().clone();
        complete_blocking(&ctx, timeout(timeout_ms), s.inner.complete(remote), out)
    })
}

/// The callback form of `msrp_server_complete` (rules as for `msrp_connector_complete_async`).
///
/// # Safety
/// As for `msrp_connector_complete_async`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_server_complete_async(
    s: *const msrp_server,
    full_remote_path: *const c_char,
    timeout_ms: u32,
    cb: msrp_complete_cb,
    userdata: *mut c_void,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?.inner.clone();
        // SAFETY: caller contract.
        let remote = unsafe { remote_path(full_remote_path) }?;
        let ctx = s.context().clone();
        complete_async(
            &ctx,
            timeout(timeout_ms),
            async move { s.complete(remote).await },
            cb,
            userdata,
        )
    })
}

/// Reference `MSRPServer.cleanup`: forgets `local_uri` (as returned by
/// `msrp_server_prepare`); the port closes when no prepared URI uses it.
/// `MSRP_RESULT_NOT_FOUND` when it was not prepared.
///
/// # Safety
/// `s` is NULL or live; `local_uri` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_server_cleanup(
    s: *const msrp_server,
    local_uri: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let u = Uri::parse(unsafe { text(local_uri, "local_uri") }?)?;
        if !s.inner.cleanup(&u) {
            return Err(FfiError::new(
                msrp_result::NotFound,
                format!("{u} was not prepared on this server"),
            ));
        }
        Ok(())
    })
}

/// Closes every port, ends waiting `complete` calls with `MSRP_RESULT_CLOSED`
/// and frees the server. Transports already handed out stay open. NULL is ignored.
///
/// # Safety
/// `s` is NULL or a server from libmsrp not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_server_free(s: *mut msrp_server) {
    run_or((), || {
        // SAFETY: caller contract.
        if let Some(s) = unsafe { s.as_ref() } {
            s.inner.close();
        }
        // SAFETY: caller contract.
        unsafe { free(s) }
    })
}

/// With `share` true, connections the server accepts from now on may carry
/// several sessions (RFC 4975 §5.4; peers that share connections, e.g.
/// libmsrp with `msrp_connector_set_share_connection`): each session's
/// first SEND on a connection binds it exactly as the first SEND of a new
/// connection does (`msrp_server_complete` finds it by the peer's path),
/// chunks reach their session by To-Path, and a request for no session on
/// the connection gets 481 (§7.3). Freeing one session's transport leaves
/// the connection to the others; it closes when the peer closes it, or
/// after carrying no session for 30 s. Default false: one session per
/// connection, as RFC 4975 peers that do not share expect.
///
/// # Safety
/// `s` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_server_set_share_connections(
    s: *const msrp_server,
    share: bool,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        s.inner.set_share(share);
        Ok(())
    })
}

/// Gives the server TLS settings (copied) with a certificate; needed before
/// `msrp_server_prepare` with an `msrps` URI. An `msrp` and an `msrps` URI
/// cannot share a port.
///
/// # Safety
/// `s` and `tls` are NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_server_set_tls(
    s: *const msrp_server,
    tls: *const msrp_tls,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let t = unsafe { borrow(tls, "tls") }?;
        s.inner.set_tls(t.snapshot());
        Ok(())
    })
}

/// The fingerprint that the peer binding to the prepared `local_uri` must
/// show (NULL removes it). Checked in `msrp_server_complete`: a mismatch
/// answers the binding with 403 and ends `complete` with
/// `MSRP_RESULT_TLS_FINGERPRINT_MISMATCH` (the peer's connector gets
/// `MSRP_RESULT_BIND_REJECTED` with "403" in its message).
///
/// # Safety
/// `s` is NULL or live; strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_server_set_peer_fingerprint(
    s: *const msrp_server,
    local_uri: *const c_char,
    fingerprint: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let uri = Uri::parse(unsafe { text(local_uri, "local_uri") }?)?;
        // SAFETY: caller contract.
        let fp = unsafe { opt_fingerprint(fingerprint) }?;
        Ok(s.inner.set_peer_fingerprint(&uri, fp)?)
    })
}

/// One more fingerprint the peer binding to `local_uri` may show (RFC 8122
/// §5: any one of several passes); see `msrp_connector_add_peer_fingerprint`.
///
/// # Safety
/// `s` is NULL or live; strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_server_add_peer_fingerprint(
    s: *const msrp_server,
    local_uri: *const c_char,
    fingerprint: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let uri = Uri::parse(unsafe { text(local_uri, "local_uri") }?)?;
        // SAFETY: caller contract.
        let fp = Fingerprint::parse(unsafe { text(fingerprint, "fingerprint") }?)?;
        Ok(s.inner.add_peer_fingerprint(&uri, fp)?)
    })
}
