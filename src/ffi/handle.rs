//! Conversions at the boundary: raw pointers to references, C strings to
//! `&str`, byte pointers to slices, and values into out-parameters.
//! Every function here checks for NULL and reports it as an error.

use std::ffi::{CStr, CString, c_char};

use super::error::{FfiError, msrp_result};

/// Moves `v` to the heap and gives the pointer to C.
pub(crate) fn into_raw<T>(v: T) -> *mut T {
    Box::into_raw(Box::new(v))
}

/// Frees a pointer made by [`into_raw`]; NULL is ignored.
///
/// # Safety
/// `p` is NULL or came from `into_raw::<T>` and was not freed before.
pub(crate) unsafe fn free<T>(p: *mut T) {
    if !p.is_null() {
        // SAFETY: per the contract, p came from Box::into_raw and is freed once.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// # Safety
/// `p` is NULL or points to a live `T` not mutated during `'a`.
pub(crate) unsafe fn borrow<'a, T>(p: *const T, name: &'static str) -> Result<&'a T, FfiError> {
    // SAFETY: per the contract.
    unsafe { p.as_ref() }.ok_or_else(|| FfiError::null(name))
}

/// # Safety
/// `p` is NULL or points to a live `T` with no other reference during `'a`.
pub(crate) unsafe fn borrow_mut<'a, T>(
    p: *mut T,
    name: &'static str,
) -> Result<&'a mut T, FfiError> {
    // SAFETY: per the contract.
    unsafe { p.as_mut() }.ok_or_else(|| FfiError::null(name))
}

/// # Safety
/// `p` is NULL or a NUL-terminated string live during `'a`.
pub(crate) unsafe fn text<'a>(p: *const c_char, name: &'static str) -> Result<&'a str, FfiError> {
    if p.is_null() {
        return Err(FfiError::null(name));
    }
    // SAFETY: p is non-NULL and NUL-terminated per the contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|e| {
        FfiError::new(
            msrp_result::InvalidUtf8,
            format!(
                "argument '{name}' is not valid UTF-8 (bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

/// Like [`text`] but NULL gives `None`.
///
/// # Safety
/// As for [`text`].
pub(crate) unsafe fn opt_text<'a>(
    p: *const c_char,
    name: &'static str,
) -> Result<Option<&'a str>, FfiError> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded contract.
        unsafe { text(p, name) }.map(Some)
    }
}

/// # Safety
/// `p` is NULL (only when `len` is 0) or points to `len` readable bytes live during `'a`.
pub(crate) unsafe fn bytes<'a>(
    p: *const u8,
    len: usize,
    name: &'static str,
) -> Result<&'a [u8], FfiError> {
    if len == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(FfiError::null(name));
    }
    // SAFETY: p is non-NULL and points to len bytes per the contract.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// Checks that an out-parameter is not NULL (before any work is done).
pub(crate) fn out_ok<T>(p: *mut T, name: &'static str) -> Result<(), FfiError> {
    if p.is_null() {
        Err(FfiError::null(name))
    } else {
        Ok(())
    }
}

/// Writes `v` to a non-NULL out-parameter.
///
/// # Safety
/// `p` is NULL or valid for a write of `T`.
pub(crate) unsafe fn write<T>(p: *mut T, v: T, name: &'static str) -> Result<(), FfiError> {
    out_ok(p, name)?;
    // SAFETY: non-NULL and writable per the contract.
    unsafe { p.write(v) };
    Ok(())
}

/// Copies `s` into a new C string for the caller (freed with `msrp_string_free`).
///
/// # Safety
/// `out` is NULL or valid for a pointer write.
pub(crate) unsafe fn write_string(
    out: *mut *mut c_char,
    s: &str,
    name: &'static str,
) -> Result<(), FfiError> {
    out_ok(out, name)?;
    let c = CString::new(s).map_err(|_| {
        FfiError::new(
            msrp_result::EmbeddedNul,
            "the text contains a NUL byte; read it as bytes instead",
        )
    })?;
    // SAFETY: checked non-NULL above; writable per the contract.
    unsafe { out.write(c.into_raw()) };
    Ok(())
}

/// Copies `src` into a caller buffer of `cap` bytes, writing the length to
/// `len`. When `buf` is NULL or too small, writes the needed length and fails
/// with `BufferTooSmall` (so a first call with NULL asks for the size).
///
/// # Safety
/// `buf` is NULL or valid for `cap` byte writes; `len` is NULL or writable.
pub(crate) unsafe fn fill_buffer(
    src: &[u8],
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
) -> Result<(), FfiError> {
    out_ok(len, "len")?;
    // SAFETY: len is non-NULL and writable.
    unsafe { len.write(src.len()) };
    if buf.is_null() || cap < src.len() {
        return Err(FfiError::new(
            msrp_result::BufferTooSmall,
            format!(
                "buffer of {cap} bytes is too small; {} bytes are needed",
                src.len()
            ),
        ));
    }
    // SAFETY: buf holds at least src.len() bytes and does not overlap src (caller memory).
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), buf, src.len()) };
    Ok(())
}
