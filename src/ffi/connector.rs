//! C API for direct connectors (`msrp_connector`, reference
//! `ConnectorDirect` and `AcceptorDirect`) and the shared-port server
//! (`msrp_server`, reference `MSRPServer`).

use std::ffi::{c_char, c_void};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::callback::{Once, UserData, message};
use super::context::msrp_context;
use super::error::{FfiError, msrp_result};
use super::handle::{borrow, free, into_raw, opt_text, out_ok, text, write, write_string};
use super::logger::{logger_ref, msrp_logger};
use super::panic::{run, run_or};
use super::transport::{msrp_transport, timeout};
use crate::engine::connector::{Connector, Role};
use crate::engine::relay::RelayConnector;
use crate::engine::server::Server;
use crate::engine::transport::Transport;
use crate::engine::{Context, Error};
use crate::proto::uri::{Uri, format_path, parse_path};

/// Which side a connector takes.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum msrp_connector_kind {
    /// Connects to the peer and sends the binding SEND (reference `ConnectorDirect`).
    Active = 0,
    /// Listens and waits for the peer's binding SEND (reference `AcceptorDirect`).
    Passive = 1,
}

/// A direct connector (active) or acceptor (passive) for one session.
///
/// Use: `msrp_connector_prepare` gives the local path for SDP `a=path`;
/// after the offer/answer, `msrp_connector_complete` (or its `_async` form)
/// connects or accepts, checks the binding and gives a transport;
/// `msrp_connector_cleanup` releases the listening port when `complete`
/// will not be called. After `complete`, call `prepare` again for another
/// connection. Freeing the connector ends a waiting `complete` with
/// `MSRP_RESULT_CLOSED`.
pub struct msrp_connector {
    pub(crate) inner: AnyConnector,
}

/// A direct connector/acceptor or a relay connection behind one handle
/// type, as the reference gives them one interface.
#[derive(Clone)]
pub(crate) enum AnyConnector {
    Direct(Arc<Connector>),
    Relay(Arc<RelayConnector>),
}

impl AnyConnector {
    pub(crate) fn context(&self) -> &Arc<Context> {
        match self {
            AnyConnector::Direct(c) => c.context(),
            AnyConnector::Relay(r) => r.context(),
        }
    }

    pub(crate) async fn prepare(&self, local: Option<Uri>) -> Result<Vec<Uri>, Error> {
        match self {
            AnyConnector::Direct(c) => c.prepare(local),
            AnyConnector::Relay(r) => r.prepare(local).await,
        }
    }

    /// `complete` with the caller's wait: a direct passive connector then
    /// reports why its last attempt failed rather than only "timed out".
    pub(crate) async fn complete(
        &self,
        remote: Vec<Uri>,
        wait: Duration,
    ) -> Result<Transport, Error> {
        match self {
            AnyConnector::Direct(c) => {
                let deadline = std::time::Instant::now() + wait;
                c.complete_until(remote, Some(deadline)).await
            }
            AnyConnector::Relay(r) => r.complete(remote).await,
        }
    }

    pub(crate) fn cleanup(&self) {
        match self {
            AnyConnector::Direct(c) => c.cleanup(),
            AnyConnector::Relay(r) => r.cleanup(),
        }
    }

    /// The direct connector, for calls that only apply to it.
    pub(crate) fn direct(&self, what: &str) -> Result<&Arc<Connector>, FfiError> {
        match self {
            AnyConnector::Direct(c) => Ok(c),
            AnyConnector::Relay(_) => Err(FfiError::new(
                msrp_result::WrongKind,
                format!(
                    "{what} applies to direct connectors; a relay connection takes these settings in msrp_relay_settings"
                ),
            )),
        }
    }
}

/// The shared-port server: one listening socket per local address shared
/// by many sessions (see `msrp_server_prepare`).
pub struct msrp_server {
    pub(crate) inner: Arc<Server>,
}

/// Called once with the result of a `*_complete_async` call. On success
/// `transport` is yours (free it with `msrp_transport_free`); otherwise it
/// is NULL and `message` (valid during the call) says why.
pub type msrp_complete_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        result: msrp_result,
        transport: *mut msrp_transport,
        message: *const c_char,
    ),
>;

unsafe fn parse_local_uri(local_uri: *const c_char) -> Result<Option<Uri>, FfiError> {
    // SAFETY: forwarded contract.
    Ok(match unsafe { opt_text(local_uri, "local_uri") }? {
        Some(s) => Some(Uri::parse(s)?),
        None => None,
    })
}

unsafe fn remote_path(path: *const c_char) -> Result<Vec<Uri>, FfiError> {
    // SAFETY: forwarded contract.
    Ok(parse_path(unsafe { text(path, "full_remote_path") }?)?)
}

/// Added to a connector's own wait for the outer bound of `complete`.
const BACKSTOP: Duration = Duration::from_secs(1);

fn complete_blocking<F>(
    ctx: &Arc<Context>,
    wait: Duration,
    f: F,
    out: *mut *mut msrp_transport,
) -> Result<(), FfiError>
where
    F: Future<Output = Result<Transport, Error>>,
{
    let t = ctx.block_on(wait, f)?;
    // SAFETY: callers checked `out` first.
    unsafe { write(out, into_raw(msrp_transport { inner: Arc::new(t) }), "out") }
}

fn complete_async<F>(
    ctx: &Arc<Context>,
    wait: Duration,
    f: F,
    cb: msrp_complete_cb,
    userdata: *mut c_void,
) -> Result<(), FfiError>
where
    F: Future<Output = Result<Transport, Error>> + Send + 'static,
{
    let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
    ctx.check_open()?;
    let ud = UserData(userdata);
    let once = Once::new(
        ctx,
        Box::new(move |r: Result<Transport, FfiError>| {
            let ud = ud;
            match r {
                Ok(t) => {
                    let h = into_raw(msrp_transport { inner: Arc::new(t) });
                    // SAFETY: the application's callback with its own userdata.
                    unsafe { cb(ud.0, msrp_result::Ok, h, c"".as_ptr()) }
                }
                Err(e) => {
                    let m = message(&e);
                    // SAFETY: as above.
                    unsafe { cb(ud.0, e.code, std::ptr::null_mut(), m.as_ptr()) }
                }
            }
        }),
    );
    let dur = wait;
    ctx.spawn(async move {
        let r = match tokio::time::timeout(dur, f).await {
            Ok(r) => r.map_err(FfiError::from),
            Err(_) => Err(FfiError::new(
                msrp_result::Timeout,
                format!("no binding within {} ms", dur.as_millis()),
            )),
        };
        once.fire(r);
    });
    Ok(())
}

/// Creates a connector of `kind` (an `msrp_connector_kind`). With
/// `use_sessmatch`, bindings are matched on session ids only
/// (draft-ietf-simple-msrp-sessmatch), so a peer behind a NAT or B2BUA with
/// another host in its URI is still accepted. `logger` may be NULL (the
/// default logger is used); the connector keeps its own reference.
///
/// # Safety
/// `ctx` is NULL or live; `logger` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_connector_new(
    ctx: *const msrp_context,
    kind: u32,
    use_sessmatch: bool,
    logger: *const msrp_logger,
    out: *mut *mut msrp_connector,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let ctx = unsafe { borrow(ctx, "ctx") }?;
        let role = match kind {
            0 => Role::Active,
            1 => Role::Passive,
            _ => {
                return Err(FfiError::new(
                    msrp_result::InvalidArgument,
                    format!("{kind} is not an msrp_connector_kind"),
                ));
            }
        };
        ctx.inner.check_open()?;
        // SAFETY: caller contract.
        let inner = AnyConnector::Direct(Arc::new(Connector::new(
            &ctx.inner,
            role,
            use_sessmatch,
            unsafe { logger_ref(logger) },
        )));
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_connector { inner }), "out") }
    })
}

/// Reference `prepare`: the full local path for SDP `a=path`, as text (free
/// with `msrp_string_free`). `local_uri` (may be NULL) gives the host, port
/// and session id to use: a missing session id is generated; a passive
/// connector opens its listening socket here and puts the real port in the
/// path when the port is 0. Without `local_uri`: `msrp://127.0.0.1:9/<random>;tcp`
/// (active; port 9 per RFC 6135) or `msrp://127.0.0.1:<free port>/<random>;tcp` (passive).
/// For a relay connection (`msrp_connector_new_relay`) this connects to the
/// relay and authenticates, waiting at most 30 s, and the path starts with
/// the relay's Use-Path; it is then a blocking call (from a callback use
/// `msrp_connector_prepare_async`). An `msrps` URI needs TLS settings with a
/// certificate on a passive connector (`msrp_connector_set_tls`).
///
/// # Safety
/// `c` is NULL or live; `local_uri` is NULL or a NUL-terminated string; `full_local_path` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_connector_prepare(
    c: *const msrp_connector,
    local_uri: *const c_char,
    full_local_path: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        out_ok(full_local_path, "full_local_path")?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(c, "c") }?;
        // SAFETY: caller contract.
        let local = unsafe { parse_local_uri(local_uri) }?;
        let path = match &c.inner {
            AnyConnector::Direct(d) => d.prepare(local)?,
            // A relay connection authenticates here: bounded like other waits.
            AnyConnector::Relay(r) => r.context().block_on(timeout(0), r.prepare(local))?,
        };
        // SAFETY: checked non-NULL.
        unsafe { write_string(full_local_path, &format_path(&path), "full_local_path") }
    })
}

/// Reference `complete`: connects to the first URI of `full_remote_path`
/// and binds (active), or accepts connections until one binds with the
/// expected paths (passive: To-Path must be our path and From-Path the
/// peer's). A passive connector answers a wrong binding with 481 and closes
/// that connection, closes connections that send something else or fail
/// their TLS handshake, drops one that sends no binding within 10 s, and
/// keeps listening (up to 16 connections are checked at once), so a stray
/// or hostile connection cannot end the wait for the real peer. Waits at
/// most `timeout_ms` (0: 30 s): `MSRP_RESULT_TIMEOUT` when no connection
/// bound by then (the logger says why each attempt failed). A binding SEND
/// that carries a message (RFC 4975 §5.4) is not answered here: the first
/// read of the transport — or the session made from it — gets it like any
/// SEND, and answers it.
///
/// # Safety
/// `c` is NULL or live; `full_remote_path` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_connector_complete(
    c: *const msrp_connector,
    full_remote_path: *const c_char,
    timeout_ms: u32,
    out: *mut *mut msrp_transport,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(c, "c") }?;
        // SAFETY: caller contract.
        let remote = unsafe { remote_path(full_remote_path) }?;
        // The connector ends its own wait (with a better reason); the outer
        // bound is a backstop.
        let wait = timeout(timeout_ms);
        complete_blocking(
            c.inner.context(),
            wait + BACKSTOP,
            c.inner.complete(remote, wait),
            out,
        )
    })
}

/// The callback form of `msrp_connector_complete`: returns at once; `cb`
/// runs exactly once (on a libmsrp thread, or from `msrp_context_dispatch`
/// with queued callbacks) unless this returns an error.
///
/// # Safety
/// `c` is NULL or live; `full_remote_path` is NULL or a NUL-terminated
/// string; `cb` and `userdata` may be used from libmsrp's threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_connector_complete_async(
    c: *const msrp_connector,
    full_remote_path: *const c_char,
    timeout_ms: u32,
    cb: msrp_complete_cb,
    userdata: *mut c_void,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow(c, "c") }?.inner.clone();
        // SAFETY: caller contract.
        let remote = unsafe { remote_path(full_remote_path) }?;
        let ctx = c.context().clone();
        let wait = timeout(timeout_ms);
        complete_async(
            &ctx,
            wait + BACKSTOP,
            async move { c.complete(remote, wait).await },
            cb,
            userdata,
        )
    })
}

/// Reference `cleanup`: releases what `prepare` took (the listening port)
/// and ends a waiting `complete` with `MSRP_RESULT_CLOSED`.
///
/// # Safety
/// `c` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_connector_cleanup(c: *const msrp_connector) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        unsafe { borrow(c, "c") }?.inner.cleanup();
        Ok(())
    })
}

/// Cleans up and frees the connector. NULL is ignored.
///
/// # Safety
/// `c` is NULL or a connector from libmsrp not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_connector_free(c: *mut msrp_connector) {
    run_or((), || {
        // SAFETY: caller contract.
        if let Some(c) = unsafe { c.as_ref() } {
            c.inner.cleanup();
        }
        // SAFETY: caller contract.
        unsafe { free(c) }
    })
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
