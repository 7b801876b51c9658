//! C API for relay connections (reference `MSRPRelaySettings` and
//! `RelayConnection`): an `msrp_connector` made by
//! `msrp_connector_new_relay` that goes through our MSRP relay (RFC 4976),
//! and `msrp_connector_prepare_async` for every kind of connector.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::callback::{Once, UserData, message};
use super::connector::{AnyConnector, msrp_connector, msrp_connector_kind};
use super::context::msrp_context;
use super::error::{FfiError, msrp_result};
use super::handle::{borrow, into_raw, opt_text, out_ok, write};
use super::logger::{logger_ref, msrp_logger};
use super::panic::run;
use super::tls::msrp_tls;
use super::transport::timeout;
use crate::engine::connector::Role;
use crate::engine::relay::{RelayConnector, RelaySettings};
use crate::engine::tls::Fingerprint;
use crate::proto::uri::{Uri, format_path};

/// How to reach and log in to our relay (reference `MSRPRelaySettings`).
/// Start from `msrp_relay_settings_default()`. Strings are copied by
/// `msrp_connector_new_relay`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct msrp_relay_settings {
    /// Our domain: without `host`, the relay is found by DNS SRV
    /// (`_msrps._tcp.<domain>` with TLS, `_msrp._tcp.<domain>` without),
    /// falling back to the domain's own address on port 2855.
    pub domain: *const c_char,
    /// Digest user name (required).
    pub username: *const c_char,
    /// Digest password (required).
    pub password: *const c_char,
    /// The relay's host name or address; NULL: discover it from `domain`.
    pub host: *const c_char,
    /// The relay's port; 0: 2855 (or the SRV record's).
    pub port: u16,
    /// Connect with TLS (`msrps`), as RFC 4976 asks of real deployments.
    /// Off by default here because many lab relays listen on plain TCP.
    pub use_tls: bool,
    /// TLS settings for `use_tls` (CA roots, our certificate); NULL: the
    /// system's CA roots. Copied.
    pub tls: *const msrp_tls,
    /// The relay certificate's fingerprint ("sha-256 AB:…") instead of CA
    /// verification; NULL: CA verification with the relay's host name.
    pub fingerprint: *const c_char,
    /// The Expires to ask for, in seconds; 0: the relay's default. A 423
    /// answer is retried once with a value the relay accepts.
    pub expires: u32,
    /// Do not refresh the AUTH before it expires (default: refresh at
    /// about 80 % of Expires, over the same connection).
    pub no_refresh: bool,
    /// DNS server for discovery as "address:port" (e.g. "127.0.0.1:5353");
    /// NULL: the system's resolver configuration.
    pub nameserver: *const c_char,
}

/// The default relay settings (all NULL/0/false).
#[unsafe(no_mangle)]
pub extern "C" fn msrp_relay_settings_default() -> msrp_relay_settings {
    msrp_relay_settings {
        domain: std::ptr::null(),
        username: std::ptr::null(),
        password: std::ptr::null(),
        host: std::ptr::null(),
        port: 0,
        use_tls: false,
        tls: std::ptr::null(),
        fingerprint: std::ptr::null(),
        expires: 0,
        no_refresh: false,
        nameserver: std::ptr::null(),
    }
}

unsafe fn settings_from_c(s: &msrp_relay_settings) -> Result<RelaySettings, FfiError> {
    // SAFETY (every block below): the caller's strings are NULL or NUL-terminated.
    let username = unsafe { opt_text(s.username, "settings.username") }?
        .ok_or_else(|| FfiError::null("settings.username"))?;
    let password = unsafe { opt_text(s.password, "settings.password") }?
        .ok_or_else(|| FfiError::null("settings.password"))?;
    let domain = unsafe { opt_text(s.domain, "settings.domain") }?.unwrap_or("");
    let host = unsafe { opt_text(s.host, "settings.host") }?;
    if host.is_none() && domain.is_empty() {
        return Err(FfiError::new(
            msrp_result::InvalidArgument,
            "the relay settings need a host or a domain to discover the relay from",
        ));
    }
    let fingerprint = match unsafe { opt_text(s.fingerprint, "settings.fingerprint") }? {
        Some(f) => Some(Fingerprint::parse(f)?),
        None => None,
    };
    let nameserver = match unsafe { opt_text(s.nameserver, "settings.nameserver") }? {
        Some(n) => Some(n.parse().map_err(|_| {
            FfiError::new(
                msrp_result::InvalidArgument,
                format!("nameserver '{n}' is not 'address:port' (e.g. 127.0.0.1:53 or [::1]:53)"),
            )
        })?),
        None => None,
    };
    // SAFETY: NULL or a live msrp_tls.
    let tls = unsafe { s.tls.as_ref() }.map(msrp_tls::snapshot);
    Ok(RelaySettings {
        domain: domain.to_owned(),
        username: username.to_owned(),
        password: password.to_owned(),
        host: host.map(str::to_owned),
        port: (s.port != 0).then_some(s.port),
        use_tls: s.use_tls,
        tls,
        fingerprint,
        expires: (s.expires != 0).then_some(s.expires as u64),
        no_refresh: s.no_refresh,
        nameserver,
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
    kind: u32,
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
        let role = match kind {
            k if k == msrp_connector_kind::Active as u32 => Role::Active,
            k if k == msrp_connector_kind::Passive as u32 => Role::Passive,
            _ => {
                return Err(FfiError::new(
                    msrp_result::InvalidArgument,
                    format!("{kind} is not an msrp_connector_kind"),
                ));
            }
        };
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
        let dur = timeout(timeout_ms);
        ctx.spawn(async move {
            let r = match tokio::time::timeout(dur, c.prepare(local)).await {
                Ok(r) => r.map(|p| format_path(&p)).map_err(FfiError::from),
                Err(_) => {
                    c.cleanup();
                    Err(FfiError::new(
                        msrp_result::Timeout,
                        format!("prepare did not finish within {} ms", dur.as_millis()),
                    ))
                }
            };
            once.fire(r);
        });
        Ok(())
    })
}
