//! C API for the settings of relay connections (reference
//! `MSRPRelaySettings`, RFC 4976): what `msrp_connector_new_relay` takes.

use std::ffi::c_char;

use super::error::{FfiError, msrp_result};
use super::handle::opt_text;
use super::tls::msrp_tls;
use crate::engine::relay::RelaySettings;
use crate::engine::tls::Fingerprint;

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
    /// Reach the relay over WebSocket (RFC 7977; WSS with `use_tls`, with
    /// the same certificate checks): the relay's URI and ours carry `;ws`,
    /// and the relay's Use-Path tells other hops how to reach it. For
    /// relays (MSRP WebSocket servers) that listen for WebSocket clients.
    pub websocket: bool,
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
        websocket: false,
    }
}

pub(crate) unsafe fn settings_from_c(s: &msrp_relay_settings) -> Result<RelaySettings, FfiError> {
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
        websocket: s.websocket,
        tls,
        fingerprint,
        expires: (s.expires != 0).then_some(s.expires as u64),
        no_refresh: s.no_refresh,
        nameserver,
    })
}
