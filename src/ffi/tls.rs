//! C API for TLS settings (`msrp_tls`) used by `msrps` connectors,
//! acceptors and servers: our certificate, CA roots, and the fingerprint
//! helpers for SDP `a=fingerprint` (RFC 8122).

use std::ffi::c_char;
use std::sync::Mutex;

use super::error::{FfiError, msrp_result};
use super::handle::{borrow, bytes, free, into_raw, opt_text, out_ok, text, write, write_string};
use super::panic::run;
use crate::engine::tls::{Fingerprint, HashAlg, TlsSettings};

/// TLS settings: our certificate and key, the CA roots that check peers
/// found by name, and whether checking may be skipped.
///
/// Connectors and servers take a copy when given the settings
/// (`msrp_connector_set_tls`, `msrp_server_set_tls`); later changes do not
/// affect them. How peers are checked:
/// - a connector checks the server by the fingerprint given with
///   `msrp_connector_set_peer_fingerprint`, otherwise by the CA roots and
///   the host name of the first hop;
/// - an acceptor or server asks for a client certificate and, when a
///   fingerprint was given for the peer, requires it to match.
///
/// Safe to use from several threads, but not to free while in use.
pub struct msrp_tls {
    inner: Mutex<TlsSettings>,
}

impl msrp_tls {
    pub(crate) fn snapshot(&self) -> TlsSettings {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

unsafe fn with_tls(
    t: *const msrp_tls,
    f: impl FnOnce(&mut TlsSettings) -> Result<(), FfiError>,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let t = unsafe { borrow(t, "tls") }?;
        f(&mut t.inner.lock().unwrap_or_else(|p| p.into_inner()))
    })
}

/// New, empty TLS settings: no certificate, system CA roots (used when no
/// bundle is given), verification on.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_tls_new(out: *mut *mut msrp_tls) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        let t = msrp_tls {
            inner: Mutex::new(TlsSettings::default()),
        };
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(t), "out") }
    })
}

/// Frees TLS settings. NULL is ignored. Connectors and servers that were
/// given them keep their copy.
///
/// # Safety
/// `tls` is NULL or live and not used after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_tls_free(tls: *mut msrp_tls) {
    // SAFETY: caller contract.
    unsafe { free(tls) }
}

/// Sets our certificate chain (leaf first) and private key (PKCS#8, PKCS#1
/// or SEC1) from PEM files. Fails with `MSRP_RESULT_INVALID_ARGUMENT` when
/// a file cannot be read or holds no usable certificate or key.
///
/// # Safety
/// `tls` is NULL or live; paths are NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_tls_set_certificate_files(
    tls: *const msrp_tls,
    chain_pem_path: *const c_char,
    key_pem_path: *const c_char,
) -> msrp_result {
    // SAFETY: caller contract.
    unsafe {
        with_tls(tls, |s| {
            let c = text(chain_pem_path, "chain_pem_path")?;
            let k = text(key_pem_path, "key_pem_path")?;
            Ok(s.set_certificate_files(c, k)?)
        })
    }
}

/// Sets our certificate chain and private key from PEM data in memory
/// (copied).
///
/// # Safety
/// `tls` is NULL or live; each buffer is NULL (only with length 0) or holds its length in bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_tls_set_certificate_pem(
    tls: *const msrp_tls,
    chain_pem: *const u8,
    chain_len: usize,
    key_pem: *const u8,
    key_len: usize,
) -> msrp_result {
    // SAFETY: caller contract.
    unsafe {
        with_tls(tls, |s| {
            let c = bytes(chain_pem, chain_len, "chain_pem")?;
            let k = bytes(key_pem, key_len, "key_pem")?;
            Ok(s.set_certificate_pem(c, k)?)
        })
    }
}

/// Generates a self-signed certificate (ECDSA P-256) with `name` as its
/// subject alternative name (NULL: "libmsrp") and uses it, as softphones do
/// when they have no certificate. Send its fingerprint in SDP
/// (`msrp_tls_fingerprint`).
///
/// # Safety
/// `tls` is NULL or live; `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_tls_generate_self_signed(
    tls: *const msrp_tls,
    name: *const c_char,
) -> msrp_result {
    // SAFETY: caller contract.
    unsafe {
        with_tls(tls, |s| {
            let n = opt_text(name, "name")?.unwrap_or("libmsrp");
            Ok(s.generate_self_signed(n)?)
        })
    }
}

/// Adds the CA certificates of a PEM bundle file to the trusted roots.
/// Once a bundle is given, the system's roots are used only after
/// `msrp_tls_use_system_roots(tls, true)`.
///
/// # Safety
/// `tls` is NULL or live; `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_tls_add_ca_file(
    tls: *const msrp_tls,
    path: *const c_char,
) -> msrp_result {
    // SAFETY: caller contract.
    unsafe { with_tls(tls, |s| Ok(s.add_ca_file(text(path, "path")?)?)) }
}

/// Adds the CA certificates of PEM data in memory to the trusted roots.
///
/// # Safety
/// `tls` is NULL or live; `pem` is NULL (only with length 0) or holds `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_tls_add_ca_pem(
    tls: *const msrp_tls,
    pem: *const u8,
    len: usize,
) -> msrp_result {
    // SAFETY: caller contract.
    unsafe { with_tls(tls, |s| Ok(s.add_ca_pem(bytes(pem, len, "pem")?)?)) }
}

/// Whether the system's CA roots are trusted too (they are by default
/// when no bundle was added).
///
/// # Safety
/// `tls` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_tls_use_system_roots(tls: *const msrp_tls, on: bool) -> msrp_result {
    // SAFETY: caller contract.
    unsafe {
        with_tls(tls, |s| {
            s.use_system_roots(on);
            Ok(())
        })
    }
}

/// INSECURE: with `on`, a connector accepts any server certificate when no
/// peer fingerprint is given (the connection is encrypted but the peer is
/// not authenticated). For tests and lab setups only; off by default.
/// Fingerprints, when given, are still checked.
///
/// # Safety
/// `tls` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_tls_set_insecure_skip_verify(
    tls: *const msrp_tls,
    on: bool,
) -> msrp_result {
    // SAFETY: caller contract.
    unsafe {
        with_tls(tls, |s| {
            s.set_insecure(on);
            Ok(())
        })
    }
}

/// The fingerprint of our certificate in the SDP attribute format, e.g.
/// "sha-256 4A:AD:…" (put it after `a=fingerprint:`). `hash` is an RFC 8122
/// hash name ("sha-256", "sha-384", "sha-512", "sha-1"); NULL means
/// "sha-256". Free the text with `msrp_string_free`. Fails with
/// `MSRP_RESULT_BAD_STATE` when there is no certificate yet.
///
/// # Safety
/// `tls` is NULL or live; `hash` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_tls_fingerprint(
    tls: *const msrp_tls,
    hash: *const c_char,
    out: *mut *mut c_char,
) -> msrp_result {
    // SAFETY: caller contract.
    unsafe {
        with_tls(tls, |s| {
            out_ok(out, "out")?;
            let alg = HashAlg::parse(opt_text(hash, "hash")?.unwrap_or("sha-256"))?;
            write_string(out, &s.fingerprint(alg)?.to_string(), "out")
        })
    }
}

/// Checks the text of a fingerprint ("sha-256 AB:CD:…", with or without
/// `a=fingerprint:`): `MSRP_RESULT_OK` when it is well formed, otherwise
/// `MSRP_RESULT_INVALID_ARGUMENT` with the reason.
///
/// # Safety
/// `fingerprint` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_fingerprint_check(fingerprint: *const c_char) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        Fingerprint::parse(unsafe { text(fingerprint, "fingerprint") }?)?;
        Ok(())
    })
}

pub(crate) unsafe fn opt_fingerprint(fp: *const c_char) -> Result<Option<Fingerprint>, FfiError> {
    // SAFETY: forwarded contract.
    Ok(match unsafe { opt_text(fp, "fingerprint") }? {
        Some(t) => Some(Fingerprint::parse(t)?),
        None => None,
    })
}
