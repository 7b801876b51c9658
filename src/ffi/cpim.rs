//! C API for `message/cpim` (`msrp_cpim`, RFC 3862): building a wrapped
//! message, reading one, its headers, addresses and content. Sending one
//! with IMDN requests is `msrp_session_send_cpim` (in `im.rs`).

use std::ffi::c_char;

use super::error::{FfiError, msrp_result};
use super::handle::{
    borrow, borrow_mut, bytes, fill_buffer, free, into_raw, opt_text, out_ok, text, write,
    write_string,
};
use super::panic::{run, run_or};
use crate::proto::cpim::{self, Cpim, CpimError, CpimHeader, MimeHeader};
use crate::proto::xml::XmlError;

/// A `message/cpim` message (RFC 3862): message headers (From, To, cc,
/// DateTime, Subject, NS, Require, namespaced ones such as
/// `imdn.Message-ID`), the content's MIME headers and the content. Made by
/// `msrp_cpim_new` or `msrp_cpim_parse` (a parsed message encodes back to
/// the same bytes); free with `msrp_cpim_free`. One received in
/// `on_cpim` belongs to the session and lives during the call. Not to be
/// used from two threads at once.
pub struct msrp_cpim {
    pub(crate) inner: Cpim,
}

impl From<CpimError> for FfiError {
    fn from(e: CpimError) -> Self {
        FfiError::new(msrp_result::InvalidCpim, e.to_string())
    }
}

impl From<XmlError> for FfiError {
    fn from(e: XmlError) -> Self {
        FfiError::new(msrp_result::InvalidXml, e.0)
    }
}

fn bad(what: String) -> FfiError {
    FfiError::new(msrp_result::InvalidArgument, what)
}

/// A header name as RFC 3862 §3.1 allows: `Name` or `Prefix.Name`.
fn check_name(name: &str) -> Result<(), FfiError> {
    if cpim::is_header_name(name) {
        Ok(())
    } else {
        Err(bad(format!(
            "'{name}' is not a CPIM header name (Name or Prefix.Name, RFC 3862 §3.1)"
        )))
    }
}

/// A new message whose content is `len` bytes of `content_type` (copied),
/// with no message headers yet (add From, To, … with `msrp_cpim_add_address`
/// and `msrp_cpim_add_header`).
///
/// # Safety
/// `content_type` is NULL or NUL-terminated; `content` points to `len`
/// bytes; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_cpim_new(
    content_type: *const c_char,
    content: *const u8,
    len: usize,
    out: *mut *mut msrp_cpim,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let ct = unsafe { text(content_type, "content_type") }?;
        crate::proto::header::validate(crate::proto::HeaderName::ContentType, ct)?;
        // SAFETY: caller contract.
        let body = unsafe { bytes(content, len, "content") }?;
        let inner = Cpim::new(ct, body);
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_cpim { inner }), "out") }
    })
}

/// Reads a `message/cpim` body (the body of a SEND whose Content-Type is
/// `message/cpim`). `MSRP_RESULT_INVALID_CPIM` says what is wrong and at
/// which byte.
///
/// # Safety
/// `body` points to `len` bytes; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_cpim_parse(
    body: *const u8,
    len: usize,
    out: *mut *mut msrp_cpim,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let inner = Cpim::parse(unsafe { bytes(body, len, "body") }?)?;
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_cpim { inner }), "out") }
    })
}

/// Frees a message (NULL is fine).
///
/// # Safety
/// `m` is NULL or a message from `msrp_cpim_new` / `msrp_cpim_parse` not
/// freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_cpim_free(m: *mut msrp_cpim) {
    // SAFETY: caller contract.
    run_or((), || unsafe { free(m) })
}

/// Adds the message header `name: value` at the end (`name` as RFC 3862
/// §3.1 allows, e.g. `Subject` or `MyFeatures.Option`; `value` is escaped
/// as §2.3.1 asks). A prefix needs its `NS` header (`msrp_cpim_add_header(m,
/// "NS", "MyFeatures <mid:…>")`).
///
/// # Safety
/// `m` is NULL or live; `name` and `value` are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_cpim_add_header(
    m: *mut msrp_cpim,
    name: *const c_char,
    value: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let m = unsafe { borrow_mut(m, "m") }?;
        // SAFETY: caller contract.
        let (name, value) = unsafe { (text(name, "name")?, text(value, "value")?) };
        check_name(name)?;
        m.inner.push(name, value);
        Ok(())
    })
}

/// Adds an address header (`From`, `To` or `cc`, RFC 3862 §4.1–4.3):
/// `display_name <uri>`, the name quoted when needed; `display_name` may be
/// NULL.
///
/// # Safety
/// `m` is NULL or live; the strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_cpim_add_address(
    m: *mut msrp_cpim,
    name: *const c_char,
    display_name: *const c_char,
    uri: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let m = unsafe { borrow_mut(m, "m") }?;
        // SAFETY: caller contract.
        let (name, uri) = unsafe { (text(name, "name")?, text(uri, "uri")?) };
        // SAFETY: caller contract.
        let display = unsafe { opt_text(display_name, "display_name") }?;
        if !matches!(name, "From" | "To" | "cc") {
            return Err(bad(format!("'{name}' is not From, To or cc")));
        }
        if uri.is_empty() || uri.contains(['<', '>', ' ', '\r', '\n']) {
            return Err(bad(format!("'{uri}' is not a URI")));
        }
        m.inner.headers.push(CpimHeader {
            name: name.to_owned(),
            params: String::new(),
            value: cpim::format_address(display, uri),
            sep: " ".into(),
        });
        Ok(())
    })
}

/// The first message header `name` in the namespace `ns` (a URN such as
/// `urn:ietf:params:imdn`, matched whatever prefix the sender declared for
/// it; NULL: the core headers From, To, DateTime, Subject, …), its escapes
/// decoded. Free with `msrp_string_free`. `MSRP_RESULT_NOT_FOUND` when absent.
///
/// # Safety
/// `m` is NULL or live; `ns` is NULL or NUL-terminated; `name` is NULL or
/// NUL-terminated; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_cpim_header(
    m: *const msrp_cpim,
    ns: *const c_char,
    name: *const c_char,
    out: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let m = unsafe { borrow(m, "m") }?;
        // SAFETY: caller contract.
        let name = unsafe { text(name, "name") }?;
        // SAFETY: caller contract.
        let ns = unsafe { opt_text(ns, "ns") }?.unwrap_or(cpim::CORE_NS);
        let h = m.inner.header_in(ns, name).ok_or_else(|| {
            FfiError::new(msrp_result::NotFound, format!("no {name} header in {ns}"))
        })?;
        // SAFETY: checked non-NULL.
        unsafe { write_string(out, &h.text(), "out") }
    })
}

/// The display name (NULL when there is none; `display_name` may be NULL
/// if you do not want it) and the URI of the address header `name` (`From`,
/// `To`, `cc`). Free both with `msrp_string_free`. `MSRP_RESULT_NOT_FOUND`
/// when absent, `MSRP_RESULT_INVALID_CPIM` when it is not `name <uri>`.
///
/// # Safety
/// `m` is NULL or live; `name` is NULL or NUL-terminated; the out
/// parameters are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_cpim_address(
    m: *const msrp_cpim,
    name: *const c_char,
    display_name: *mut *mut c_char,
    uri: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        out_ok(uri, "uri")?;
        // SAFETY: caller contract.
        let m = unsafe { borrow(m, "m") }?;
        // SAFETY: caller contract.
        let name = unsafe { text(name, "name") }?;
        let h = m
            .inner
            .header(name)
            .ok_or_else(|| FfiError::new(msrp_result::NotFound, format!("no {name} header")))?;
        let (d, u) = cpim::address(&h.value).ok_or_else(|| {
            FfiError::new(
                msrp_result::InvalidCpim,
                format!("the {name} header '{}' is not 'name <uri>'", h.value),
            )
        })?;
        if !display_name.is_null() {
            match d {
                // SAFETY: checked non-NULL.
                Some(d) => unsafe { write_string(display_name, &d, "display_name") }?,
                // SAFETY: checked non-NULL.
                None => unsafe { display_name.write(std::ptr::null_mut()) },
            }
        }
        // SAFETY: checked non-NULL.
        unsafe { write_string(uri, &u, "uri") }
    })
}

/// Adds a MIME header of the content (`Content-ID`, `Content-Disposition`,
/// …) after the Content-Type.
///
/// # Safety
/// `m` is NULL or live; `name` and `value` are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_cpim_add_content_header(
    m: *mut msrp_cpim,
    name: *const c_char,
    value: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let m = unsafe { borrow_mut(m, "m") }?;
        // SAFETY: caller contract.
        let (name, value) = unsafe { (text(name, "name")?, text(value, "value")?) };
        check_name(name)?;
        if value.contains(['\r', '\n']) {
            return Err(bad(format!("the value of {name} holds a line break")));
        }
        m.inner.content_headers.push(MimeHeader {
            name: name.to_owned(),
            sep: " ".into(),
            value: value.to_owned(),
        });
        Ok(())
    })
}

/// A MIME header of the content by name (any case), e.g. `Content-Type`.
/// Free with `msrp_string_free`. `MSRP_RESULT_NOT_FOUND` when absent.
///
/// # Safety
/// `m` is NULL or live; `name` is NULL or NUL-terminated; `out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_cpim_content_header(
    m: *const msrp_cpim,
    name: *const c_char,
    out: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let m = unsafe { borrow(m, "m") }?;
        // SAFETY: caller contract.
        let name = unsafe { text(name, "name") }?;
        let v = m.inner.content_header(name).ok_or_else(|| {
            FfiError::new(msrp_result::NotFound, format!("no content header {name}"))
        })?;
        // SAFETY: checked non-NULL.
        unsafe { write_string(out, v, "out") }
    })
}

/// The content (valid while `m` lives and is not changed).
///
/// # Safety
/// `m` is NULL or live; `data` and `len` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_cpim_content(
    m: *const msrp_cpim,
    data: *mut *const u8,
    len: *mut usize,
) -> msrp_result {
    run(|| {
        out_ok(data, "data")?;
        out_ok(len, "len")?;
        // SAFETY: caller contract.
        let m = unsafe { borrow(m, "m") }?;
        // SAFETY: both checked non-NULL.
        unsafe {
            data.write(m.inner.content.as_ptr());
            len.write(m.inner.content.len());
        }
        Ok(())
    })
}

/// The whole body (message headers, blank line, content headers, blank
/// line, content) into `buf` of `cap` bytes; the length goes to `*len`.
/// With `buf` NULL or too small: the needed length and
/// `MSRP_RESULT_BUFFER_TOO_SMALL`.
///
/// # Safety
/// `m` is NULL or live; `buf` is NULL or writable for `cap` bytes; `len` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_cpim_encode(
    m: *const msrp_cpim,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
) -> msrp_result {
    run(|| {
        out_ok(len, "len")?;
        // SAFETY: caller contract.
        let m = unsafe { borrow(m, "m") }?;
        // SAFETY: caller contract.
        unsafe { fill_buffer(&m.inner.to_bytes(), buf, cap, len) }
    })
}
