//! Library-wide functions: version and freeing strings that libmsrp returned.

use std::ffi::{CString, c_char};

use super::panic::run_or;

/// Major version; equals the major part of `msrp_version()`.
pub const MSRP_VERSION_MAJOR: u32 = 0;
/// Minor version.
pub const MSRP_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const MSRP_VERSION_PATCH: u32 = 0;

static VERSION_C: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// The library's version as "MAJOR.MINOR.PATCH" (static; never NULL).
/// Compare it with the `MSRP_VERSION_*` macros to detect a header/library mismatch.
#[unsafe(no_mangle)]
pub extern "C" fn msrp_version() -> *const c_char {
    VERSION_C.as_ptr().cast()
}

/// Frees a string that libmsrp returned through a `char **` out-parameter.
/// NULL is ignored. Passing any other pointer, or freeing twice, is undefined
/// behaviour, as with `free()`.
///
/// # Safety
/// `s` is NULL or a string returned by libmsrp and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_string_free(s: *mut c_char) {
    run_or((), || {
        if !s.is_null() {
            // SAFETY: s came from CString::into_raw in handle::write_string.
            drop(unsafe { CString::from_raw(s) });
        }
    })
}
