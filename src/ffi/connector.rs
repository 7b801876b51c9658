//! C API for connectors (`msrp_connector`): direct ones (reference
//! `ConnectorDirect` and `AcceptorDirect`) and relay connections (reference
//! `RelayConnection`, RFC 4976), with their TLS and fingerprint settings.
//! The shared-port server is in `server.rs`, the relay settings in
//! `relay.rs`.

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
use super::relay::{msrp_relay_settings, settings_from_c};
use super::tls::{msrp_tls, opt_fingerprint};
use super::transport::{msrp_transport, timeout};
use crate::engine::any_connector::AnyConnector;
use crate::engine::connector::{Connector, Role};
use crate::engine::relay::RelayConnector;
use crate::engine::tls::Fingerprint;
use crate::engine::transport::Transport;
use crate::engine::{Context, Error};
use crate::proto::uri::{Host, Uri, format_path, parse_path};

/// Which side a connector takes.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum msrp_connector_kind {
    /// Connects to the peer and sends the binding SEND (reference `ConnectorDirect`).
    Active = 0,
    /// Listens and waits for the peer's binding SEND (reference `AcceptorDirect`).
    Passive = 1,
}

/// An `msrp_connector_kind` as C passes it: typed in the header, an integer
/// here, so that a value outside the enum is an argument error, not
/// undefined behaviour.
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct msrp_connector_kind_arg(pub u32);

/// The role of a connector kind C passed.
fn role_of(kind: msrp_connector_kind_arg) -> Result<Role, FfiError> {
    match kind.0 {
        k if k == msrp_connector_kind::Active as u32 => Ok(Role::Active),
        k if k == msrp_connector_kind::Passive as u32 => Ok(Role::Passive),
        k => Err(FfiError::new(
            msrp_result::InvalidArgument,
            format!("{k} is not an msrp_connector_kind"),
        )),
    }
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

/// The direct connector of `c`, for calls that only apply to direct ones.
fn direct<'a>(c: &'a AnyConnector, what: &str) -> Result<&'a Arc<Connector>, FfiError> {
    match c {
        AnyConnector::Direct(c) => Ok(c),
        AnyConnector::Relay(_) => Err(FfiError::new(
            msrp_result::WrongKind,
            format!(
                "{what} applies to direct connectors; a relay connection takes these settings in msrp_relay_settings"
            ),
        )),
    }
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

pub(crate) unsafe fn parse_local_uri(local_uri: *const c_char) -> Result<Option<Uri>, FfiError> {
    // SAFETY: forwarded contract.
    Ok(match unsafe { opt_text(local_uri, "local_uri") }? {
        Some(s) => Some(Uri::parse(s)?),
        None => None,
    })
}

pub(crate) unsafe fn remote_path(path: *const c_char) -> Result<Vec<Uri>, FfiError> {
    // SAFETY: forwarded contract.
    Ok(parse_path(unsafe { text(path, "full_remote_path") }?)?)
}

/// Added to a connector's own wait for the outer bound of `complete`.
pub(crate) const BACKSTOP: Duration = Duration::from_secs(1);

pub(crate) fn complete_blocking<F>(
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

pub(crate) fn complete_async<F>(
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
    once.fire_within(wait, "binding", f);
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
    kind: msrp_connector_kind_arg,
    use_sessmatch: bool,
    logger: *const msrp_logger,
    out: *mut *mut msrp_connector,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let ctx = unsafe { borrow(ctx, "ctx") }?;
        let role = role_of(kind)?;
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
/// certificate on a passive connector (`msrp_connector_set_tls`). The
/// transport parameter is `tcp` or `ws` (RFC 7977): a passive connector
/// with a `;ws` URI is a WebSocket server (WSS with `msrps`), and the
/// active side connects over WebSocket when the remote path's first URI
/// says `;ws`. Any other transport gives `MSRP_RESULT_UNSUPPORTED`.
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

/// Gives a connector TLS settings (copied) for `msrps`: an acceptor needs
/// a certificate before `msrp_connector_prepare` with an `msrps` URI; a
/// connector uses its certificate, when it has one, as client certificate.
///
/// # Safety
/// `c` and `tls` are NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_connector_set_tls(
    c: *const msrp_connector,
    tls: *const msrp_tls,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow(c, "c") }?;
        // SAFETY: caller contract.
        let t = unsafe { borrow(tls, "tls") }?;
        direct(&c.inner, "msrp_connector_set_tls")?.set_tls(t.snapshot());
        Ok(())
    })
}

/// The fingerprint the peer's certificate must have, from its SDP
/// `a=fingerprint` ("sha-256 AB:CD:…"); NULL removes it (back to CA
/// verification for a connector, no check for an acceptor). Set it before
/// `msrp_connector_complete`; an acceptor checks it during the handshake
/// when it is set by then, and again after it. A mismatch ends `complete`
/// with `MSRP_RESULT_TLS_FINGERPRINT_MISMATCH`; the peer sees
/// `MSRP_RESULT_TLS_REJECTED`.
///
/// # Safety
/// `c` is NULL or live; `fingerprint` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_connector_set_peer_fingerprint(
    c: *const msrp_connector,
    fingerprint: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow(c, "c") }?;
        // SAFETY: caller contract.
        direct(&c.inner, "msrp_connector_set_peer_fingerprint")?
            .set_peer_fingerprint(unsafe { opt_fingerprint(fingerprint) }?);
        Ok(())
    })
}

/// Connect to `host` and `port` instead of the first hop of the peer's
/// path: under CEMA (RFC 6714 §4) an active side connects to the peer's
/// SDP `c=` address and `m=` port (an SBC on the way), while the binding
/// still names the paths (give the acceptor `use_sessmatch` when the SBC
/// rewrites addresses). `host` NULL goes back to the path. An active
/// direct connector only.
///
/// # Safety
/// `c` is NULL or live; `host` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_connector_set_connect_address(
    c: *const msrp_connector,
    host: *const c_char,
    port: u16,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow(c, "c") }?;
        // SAFETY: caller contract.
        let to = match unsafe { opt_text(host, "host") }? {
            Some(h) => Some((Host::parse(h)?, port)),
            None => None,
        };
        direct(&c.inner, "msrp_connector_set_connect_address")?.set_connect_address(to);
        Ok(())
    })
}

/// Connection sharing (RFC 4975 §5.4), for an active direct connector:
/// with `share` true, `msrp_connector_complete` binds the session on a
/// connection of the same context to the same peer authority (scheme,
/// host, port, `;ws` or not, connect address, TLS settings and expected
/// fingerprints) when one is open and carries fewer than 4096 sessions, and
/// otherwise opens one that later sharing connectors may use. Such a
/// connection closes when its last session ends. Sessions on it send whole
/// chunks of 64 KiB by default (1 MiB at most; never streamed `*` chunks,
/// which another session's chunk would cut), and a session fills the
/// connection's queue only to 128 KiB, so another session's chat line waits
/// behind at most that and one chunk. The peer must demultiplex by To-Path: a libmsrp server with
/// `msrp_server_set_share_connections`, or any RFC 4975 endpoint that does;
/// a peer that does not answers a second session's binding with 481, and
/// `complete` fails with `MSRP_RESULT_BIND_REJECTED` (the sessions already
/// on the connection go on).
/// Default false: each session has a connection of its own. Takes effect
/// at the next `complete`.
///
/// # Safety
/// `c` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_connector_set_share_connection(
    c: *const msrp_connector,
    share: bool,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow(c, "c") }?;
        direct(&c.inner, "msrp_connector_set_share_connection")?.set_share(share)?;
        Ok(())
    })
}

/// One more fingerprint the peer's certificate may have: an SDP may carry
/// several `a=fingerprint` lines (RFC 8122 §5), and a certificate with any
/// one of them passes. `msrp_connector_set_peer_fingerprint` replaces them
/// all with one (or none).
///
/// # Safety
/// `c` is NULL or live; `fingerprint` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_connector_add_peer_fingerprint(
    c: *const msrp_connector,
    fingerprint: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow(c, "c") }?;
        // SAFETY: caller contract.
        let fp = Fingerprint::parse(unsafe { text(fingerprint, "fingerprint") }?)?;
        direct(&c.inner, "msrp_connector_add_peer_fingerprint")?.add_peer_fingerprint(fp);
        Ok(())
    })
}

/// Creates a connector that goes through our relay (reference
/// `RelayConnection`): `msrp_connector_prepare` connects to the relay,
/// authenticates (answering its digest challenge) and returns the full
/// local path for SDP, the relay's Use-Path first; `msrp_connector_complete`
/// binds through the relay, sending the binding SEND (`kind` active) or
/// waiting for it (passive). The AUTH is refreshed before it expires for as
/// long as the transport lives. Sessions on such a transport send chunks of
/// at most `MSRP_RELAY_CHUNK_SIZE` by default. A refused password ends
/// `prepare` with `MSRP_RESULT_AUTH_FAILED`, failed discovery with
/// `MSRP_RESULT_DNS_FAILED`.
///
/// # Safety
/// `ctx`, `logger` are NULL or live; `settings` is NULL or readable, with
/// its strings NULL or NUL-terminated; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_connector_new_relay(
    ctx: *const msrp_context,
    kind: msrp_connector_kind_arg,
    use_sessmatch: bool,
    logger: *const msrp_logger,
    settings: *const msrp_relay_settings,
    out: *mut *mut msrp_connector,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let ctx = unsafe { borrow(ctx, "ctx") }?;
        // SAFETY: caller contract.
        let s = unsafe { borrow(settings, "settings") }?;
        let role = role_of(kind)?;
        // SAFETY: caller contract.
        let settings = unsafe { settings_from_c(s) }?;
        ctx.inner.check_open()?;
        let inner = AnyConnector::Relay(Arc::new(RelayConnector::new(
            &ctx.inner,
            role,
            use_sessmatch,
            // SAFETY: caller contract.
            unsafe { logger_ref(logger) },
            settings,
        )));
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_connector { inner }), "out") }
    })
}

/// Called once with the result of `msrp_connector_prepare_async`: on
/// success `full_local_path` (valid during the call; copy it) is the path
/// for SDP; otherwise it is NULL and `message` says why.
pub type msrp_prepare_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        result: msrp_result,
        full_local_path: *const c_char,
        message: *const c_char,
    ),
>;

/// The callback form of `msrp_connector_prepare`, for connectors whose
/// prepare waits on the network (relay connections: connect, AUTH). Waits
/// at most `timeout_ms` (0: 30 s). `cb` runs exactly once, on a libmsrp
/// thread or from `msrp_context_dispatch`, unless this returns an error.
///
/// # Safety
/// `c` is NULL or live; `local_uri` is NULL or a NUL-terminated string;
/// `cb` and `userdata` may be used from libmsrp's threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_connector_prepare_async(
    c: *const msrp_connector,
    local_uri: *const c_char,
    timeout_ms: u32,
    cb: msrp_prepare_cb,
    userdata: *mut c_void,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow(c, "c") }?.inner.clone();
        let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
        // SAFETY: caller contract.
        let local = match unsafe { opt_text(local_uri, "local_uri") }? {
            Some(s) => Some(Uri::parse(s)?),
            None => None,
        };
        let ctx = c.context().clone();
        ctx.check_open()?;
        let ud = UserData(userdata);
        let once = Once::new(
            &ctx,
            Box::new(move |r: Result<String, FfiError>| {
                let ud = ud;
                match r {
                    Ok(path) => {
                        let p = std::ffi::CString::new(path).unwrap_or_default();
                        // SAFETY: the application's callback with its own userdata.
                        unsafe { cb(ud.0, msrp_result::Ok, p.as_ptr(), c"".as_ptr()) }
                    }
                    Err(e) => {
                        let m = message(&e);
                        // SAFETY: as above.
                        unsafe { cb(ud.0, e.code, std::ptr::null(), m.as_ptr()) }
                    }
                }
            }),
        );
        once.fire_within(
            timeout(timeout_ms),
            "relay connection and AUTH",
            async move { c.prepare(local).await.map(|p| format_path(&p)) },
        );
        Ok(())
    })
}
