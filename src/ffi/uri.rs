//! C API for MSRP URIs (`msrp_uri`) and paths (space-separated URI lists,
//! as in SDP `a=path` and the To-Path/From-Path headers).

use std::ffi::c_char;

use super::error::{FfiError, msrp_result};
use super::handle::{
    borrow, borrow_mut, free, into_raw, opt_text, out_ok, text, write, write_string,
};
use super::panic::{run, run_or};
use crate::proto::uri::{Host, Uri, format_path, parse_path};

/// An MSRP URI (RFC 4975 §9): `msrp[s]://[user@]host[:port][/session-id];transport[;param[=value]]*`.
///
/// Created by `msrp_uri_parse`, `msrp_uri_new`, `msrp_uri_clone` or
/// `msrp_path_get`; owned by the caller and released with `msrp_uri_free`.
/// Setters validate and leave the URI unchanged when they fail.
/// A URI may be used from any thread, but not from two threads at once.
pub struct msrp_uri {
    pub(crate) inner: Uri,
}

/// Parses `text` into a new URI written to `*out`. On `MSRP_RESULT_INVALID_URI`
/// the last error message gives the byte offset and what was expected there.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_parse(
    text_: *const c_char,
    out: *mut *mut msrp_uri,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let t = unsafe { text(text_, "text") }?;
        let inner = Uri::parse(t)?;
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_uri { inner }), "out") }
    })
}

/// A new URI `msrp[s]://host;tcp` (no port, no session id). `host` is a
/// name, an IPv4 address or an IPv6 address (brackets optional).
///
/// # Safety
/// `host` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_new(
    host: *const c_char,
    use_tls: bool,
    out: *mut *mut msrp_uri,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let h = Host::parse(unsafe { text(host, "host") }?)?;
        let inner = Uri::new(use_tls, h, None, None);
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_uri { inner }), "out") }
    })
}

/// Copies `uri` into a new URI written to `*out`.
///
/// # Safety
/// `uri` is NULL or a live URI; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_clone(
    uri: *const msrp_uri,
    out: *mut *mut msrp_uri,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let u = unsafe { borrow(uri, "uri") }?;
        // SAFETY: checked non-NULL.
        unsafe {
            write(
                out,
                into_raw(msrp_uri {
                    inner: u.inner.clone(),
                }),
                "out",
            )
        }
    })
}

/// Frees a URI. NULL is ignored.
///
/// # Safety
/// `uri` is NULL or a URI from libmsrp not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_free(uri: *mut msrp_uri) {
    // SAFETY: caller contract.
    run_or((), || unsafe { free(uri) })
}

/// Formats the URI as text (scheme lower-case); free with `msrp_string_free`.
///
/// # Safety
/// `uri` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_format(
    uri: *const msrp_uri,
    out: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let u = unsafe { borrow(uri, "uri") }?;
        // SAFETY: caller contract.
        unsafe { write_string(out, &u.inner.to_string(), "out") }
    })
}

/// True for an `msrps` URI; false for `msrp` or when `uri` is NULL.
///
/// # Safety
/// `uri` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_use_tls(uri: *const msrp_uri) -> bool {
    // SAFETY: caller contract.
    run_or(false, || {
        unsafe { uri.as_ref() }.is_some_and(|u| u.inner.secure)
    })
}

/// Switches between `msrp` (false) and `msrps` (true).
///
/// # Safety
/// `uri` is NULL or live and not used elsewhere during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_set_use_tls(uri: *mut msrp_uri, use_tls: bool) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        unsafe { borrow_mut(uri, "uri") }?.inner.secure = use_tls;
        Ok(())
    })
}

/// The host (IPv6 without brackets); free with `msrp_string_free`.
///
/// # Safety
/// `uri` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_host(uri: *const msrp_uri, out: *mut *mut c_char) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let u = unsafe { borrow(uri, "uri") }?;
        let h = match &u.inner.host {
            Host::Name(n) => n.clone(),
            Host::V4(a) => a.to_string(),
            Host::V6(a) => a.to_string(),
        };
        // SAFETY: caller contract.
        unsafe { write_string(out, &h, "out") }
    })
}

/// Replaces the host (name, IPv4, or IPv6 with or without brackets).
///
/// # Safety
/// `uri` is NULL or live; `host` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_set_host(uri: *mut msrp_uri, host: *const c_char) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let u = unsafe { borrow_mut(uri, "uri") }?;
        // SAFETY: caller contract.
        u.inner.host = Host::parse(unsafe { text(host, "host") }?)?;
        Ok(())
    })
}

/// The port; `MSRP_RESULT_NOT_FOUND` when the URI has none.
///
/// # Safety
/// `uri` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_port(uri: *const msrp_uri, out: *mut u16) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let u = unsafe { borrow(uri, "uri") }?;
        let p = u
            .inner
            .port
            .ok_or_else(|| FfiError::new(msrp_result::NotFound, "the URI has no port"))?;
        // SAFETY: checked non-NULL.
        unsafe { write(out, p, "out") }
    })
}

/// Sets the port (0 to 65535), or removes it when `port` is -1.
///
/// # Safety
/// `uri` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_set_port(uri: *mut msrp_uri, port: i32) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let u = unsafe { borrow_mut(uri, "uri") }?;
        u.inner.port = match port {
            -1 => None,
            0..=65535 => Some(port as u16),
            _ => {
                return Err(FfiError::new(
                    msrp_result::InvalidArgument,
                    format!("port {port} is out of range: use 0 to 65535, or -1 for none"),
                ));
            }
        };
        Ok(())
    })
}

type Field = fn(&Uri) -> Option<&str>;

unsafe fn get_field(
    uri: *const msrp_uri,
    out: *mut *mut c_char,
    what: &'static str,
    f: Field,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: forwarded caller contract.
        let u = unsafe { borrow(uri, "uri") }?;
        let v = f(&u.inner).ok_or_else(|| {
            FfiError::new(msrp_result::NotFound, format!("the URI has no {what}"))
        })?;
        // SAFETY: forwarded caller contract.
        unsafe { write_string(out, v, "out") }
    })
}

unsafe fn set_field(
    uri: *mut msrp_uri,
    value: *const c_char,
    nullable: bool,
    set: fn(&mut Uri, Option<String>),
) -> msrp_result {
    run(|| {
        // SAFETY: forwarded caller contract.
        let u = unsafe { borrow_mut(uri, "uri") }?;
        // SAFETY: forwarded caller contract.
        let v = unsafe { opt_text(value, "value") }?;
        if v.is_none() && !nullable {
            return Err(FfiError::null("value"));
        }
        let mut candidate = u.inner.clone();
        set(&mut candidate, v.map(str::to_owned));
        u.inner = candidate.validated()?;
        Ok(())
    })
}

/// The userinfo part; `MSRP_RESULT_NOT_FOUND` when absent. Free with `msrp_string_free`.
///
/// # Safety
/// `uri` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_user(uri: *const msrp_uri, out: *mut *mut c_char) -> msrp_result {
    // SAFETY: forwarded.
    unsafe { get_field(uri, out, "userinfo", |u| u.user.as_deref()) }
}

/// Sets the userinfo part, or removes it when `user` is NULL.
///
/// # Safety
/// `uri` is NULL or live; `user` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_set_user(uri: *mut msrp_uri, user: *const c_char) -> msrp_result {
    // SAFETY: forwarded.
    unsafe { set_field(uri, user, true, |u, v| u.user = v) }
}

/// The session id; `MSRP_RESULT_NOT_FOUND` when absent. Free with `msrp_string_free`.
///
/// # Safety
/// `uri` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_session_id(
    uri: *const msrp_uri,
    out: *mut *mut c_char,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe { get_field(uri, out, "session id", |u| u.session_id.as_deref()) }
}

/// Sets the session id, or removes it when `session_id` is NULL.
///
/// # Safety
/// `uri` is NULL or live; `session_id` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_set_session_id(
    uri: *mut msrp_uri,
    session_id: *const c_char,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe { set_field(uri, session_id, true, |u, v| u.session_id = v) }
}

/// The transport (`tcp`, `ws`, …). Free with `msrp_string_free`.
///
/// # Safety
/// `uri` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_transport(
    uri: *const msrp_uri,
    out: *mut *mut c_char,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe { get_field(uri, out, "transport", |u| Some(u.transport.as_str())) }
}

/// Sets the transport (letters and digits; not NULL).
///
/// # Safety
/// `uri` is NULL or live; `transport` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_set_transport(
    uri: *mut msrp_uri,
    transport: *const c_char,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe {
        set_field(uri, transport, false, |u, v| {
            u.transport = v.unwrap_or_default()
        })
    }
}

/// The value of URI parameter `name` (case-insensitive). `MSRP_RESULT_NOT_FOUND`
/// when absent; a parameter without value gives success with `*value` set to NULL.
///
/// # Safety
/// `uri` is NULL or live; `name` is NULL or a NUL-terminated string; `value` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_param(
    uri: *const msrp_uri,
    name: *const c_char,
    value: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        out_ok(value, "value")?;
        // SAFETY: caller contract.
        let u = unsafe { borrow(uri, "uri") }?;
        // SAFETY: caller contract.
        let n = unsafe { text(name, "name") }?;
        match u.inner.param(n) {
            None => Err(FfiError::new(
                msrp_result::NotFound,
                format!("the URI has no parameter '{n}'"),
            )),
            // SAFETY: checked non-NULL.
            Some(None) => unsafe { write(value, std::ptr::null_mut(), "value") },
            // SAFETY: checked non-NULL.
            Some(Some(v)) => unsafe { write_string(value, v, "value") },
        }
    })
}

/// Sets URI parameter `name` to `value` (NULL: a parameter without value),
/// replacing one of the same name or appending. Both must be tokens.
///
/// # Safety
/// `uri` is NULL or live; `name` and `value` are NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_set_param(
    uri: *mut msrp_uri,
    name: *const c_char,
    value: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let u = unsafe { borrow_mut(uri, "uri") }?;
        // SAFETY: caller contract.
        let n = unsafe { text(name, "name") }?;
        // SAFETY: caller contract.
        let v = unsafe { opt_text(value, "value") }?;
        let mut candidate = u.inner.clone();
        let entry = (n.to_owned(), v.map(str::to_owned));
        match candidate
            .params
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
        {
            Some(slot) => *slot = entry,
            None => candidate.params.push(entry),
        }
        u.inner = candidate.validated()?;
        Ok(())
    })
}

/// Removes URI parameter `name`; `MSRP_RESULT_NOT_FOUND` when absent.
///
/// # Safety
/// `uri` is NULL or live; `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_remove_param(
    uri: *mut msrp_uri,
    name: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let u = unsafe { borrow_mut(uri, "uri") }?;
        // SAFETY: caller contract.
        let n = unsafe { text(name, "name") }?;
        let before = u.inner.params.len();
        u.inner.params.retain(|(k, _)| !k.eq_ignore_ascii_case(n));
        if u.inner.params.len() == before {
            return Err(FfiError::new(
                msrp_result::NotFound,
                format!("the URI has no parameter '{n}'"),
            ));
        }
        Ok(())
    })
}

/// True when `a` and `b` are equivalent by RFC 4975 §6.1: scheme and host
/// case-insensitive, userinfo and extra parameters ignored, session id
/// case-sensitive, ports equal (or both absent), same transport. False when
/// either is NULL.
///
/// # Safety
/// `a` and `b` are NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_uri_equal(a: *const msrp_uri, b: *const msrp_uri) -> bool {
    run_or(false, || {
        // SAFETY: caller contract.
        match unsafe { (a.as_ref(), b.as_ref()) } {
            (Some(a), Some(b)) => a.inner.equivalent(&b.inner),
            _ => false,
        }
    })
}

/// Counts the URIs in a path (`a=path` value or path header value), checking
/// every one. `MSRP_RESULT_INVALID_URI` names the byte offset of the problem.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `count` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_path_count(path: *const c_char, count: *mut usize) -> msrp_result {
    run(|| {
        out_ok(count, "count")?;
        // SAFETY: caller contract.
        let v = parse_path(unsafe { text(path, "path") }?)?;
        // SAFETY: checked non-NULL.
        unsafe { write(count, v.len(), "count") }
    })
}

/// Parses URI number `index` (0-based) of a path into a new URI.
/// `MSRP_RESULT_NOT_FOUND` when the path is shorter.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_path_get(
    path: *const c_char,
    index: usize,
    out: *mut *mut msrp_uri,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let mut v = parse_path(unsafe { text(path, "path") }?)?;
        if index >= v.len() {
            return Err(FfiError::new(
                msrp_result::NotFound,
                format!(
                    "the path has {} URIs; index {index} is past the end",
                    v.len()
                ),
            ));
        }
        let inner = v.swap_remove(index);
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_uri { inner }), "out") }
    })
}

/// Joins `count` URIs into path text ("URI URI …"); free with `msrp_string_free`.
///
/// # Safety
/// `uris` is NULL (only when `count` is 0) or points to `count` live URI pointers; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_path_join(
    uris: *const *const msrp_uri,
    count: usize,
    out: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        if count == 0 {
            return Err(FfiError::new(
                msrp_result::InvalidArgument,
                "a path needs at least one URI",
            ));
        }
        if uris.is_null() {
            return Err(FfiError::null("uris"));
        }
        // SAFETY: uris points to count pointers per the contract.
        let ptrs = unsafe { std::slice::from_raw_parts(uris, count) };
        let mut v = Vec::with_capacity(count);
        for (i, p) in ptrs.iter().enumerate() {
            // SAFETY: each pointer is NULL or live per the contract.
            match unsafe { p.as_ref() } {
                Some(u) => v.push(u.inner.clone()),
                None => {
                    return Err(FfiError::new(
                        msrp_result::NullArgument,
                        format!("uris[{i}] is NULL"),
                    ));
                }
            }
        }
        // SAFETY: checked non-NULL.
        unsafe { write_string(out, &format_path(&v), "out") }
    })
}
