//! C API for chunks (`msrp_chunk`, reference `MSRPData`): build requests and
//! responses, read and set headers (typed and raw), body, flag, and encode.

use std::ffi::c_char;

use super::error::{FfiError, msrp_result};
use super::handle::{
    borrow, borrow_mut, bytes, fill_buffer, free, into_raw, opt_text, out_ok, text, write,
    write_string,
};
use super::panic::{run, run_or};
use crate::proto::header::{ByteRange, HeaderName, ReportMode, Status};
use crate::proto::uri::parse_path;
use crate::proto::{Chunk, Flag};

/// One MSRP chunk: a request (SEND, REPORT, AUTH, NICKNAME or an extension
/// method) or a response, with headers, body and continuation flag.
///
/// Owned by the caller; release with `msrp_chunk_free`. Pointers returned by
/// `msrp_chunk_data` stay valid until the chunk is changed or freed. Strings
/// returned through `char **` are copies, freed with `msrp_string_free`.
/// A chunk may be used from any thread, but not from two threads at once.
///
/// A chunk received over plain TCP with a body of 32 KiB or more keeps its
/// body where the connection read it, in a buffer of up to 256 KiB shared
/// with the chunks read along with it (one copy less per byte). The buffer
/// is freed, or read into again, once every chunk that has a piece of it is
/// freed or changed. An application that keeps such chunks for long keeps
/// up to that much memory for each: copy the body and free the chunk.
pub struct msrp_chunk {
    pub(crate) inner: Chunk,
}

impl Drop for msrp_chunk {
    fn drop(&mut self) {
        // A large body's buffer is kept for the next chunk read.
        crate::proto::bufpool::give(self.inner.take_buffer());
    }
}

/// Continuation flag `$`: the last chunk of a message.
pub const MSRP_FLAG_END: u8 = b'$';
/// Continuation flag `+`: more chunks of this message follow.
pub const MSRP_FLAG_MORE: u8 = b'+';
/// Continuation flag `#`: the message is aborted.
pub const MSRP_FLAG_ABORT: u8 = b'#';
/// Byte-Range end or total given as `*` (unknown).
pub const MSRP_BYTE_RANGE_UNKNOWN: u64 = u64::MAX;

/// Values of Success-Report and Failure-Report.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum msrp_report {
    /// `no`
    No = 0,
    /// `yes`
    Yes = 1,
    /// `partial` (Failure-Report only)
    Partial = 2,
}

/// An `msrp_report` as C passes it: typed `msrp_report` in the header, an
/// integer here, so that a value outside the enum is an argument error
/// (`MSRP_RESULT_INVALID_ARGUMENT`), not undefined behaviour.
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct msrp_report_arg(pub u32);

/// An `msrp_header` as C passes it (see [`msrp_report_arg`]).
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct msrp_header_arg(pub u32);

fn header_sel(v: msrp_header_arg) -> Result<HeaderName, FfiError> {
    let v = v.0;
    HeaderName::from_u32(v).ok_or_else(|| {
        FfiError::new(
            msrp_result::InvalidArgument,
            format!("{v} is not an msrp_header value (0 to 17)"),
        )
    })
}

fn new_chunk(out: *mut *mut msrp_chunk, inner: Chunk) -> Result<(), FfiError> {
    // SAFETY: callers check `out` first; writing a pointer is all that happens.
    unsafe { write(out, into_raw(msrp_chunk { inner }), "out") }
}

/// Writes an optional text property of a chunk, or NOT_FOUND naming `what`.
unsafe fn get_text(
    chunk: *const msrp_chunk,
    out: *mut *mut c_char,
    what: &'static str,
    f: fn(&Chunk) -> Option<&str>,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: forwarded caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        let v = f(&c.inner)
            .ok_or_else(|| FfiError::new(msrp_result::NotFound, format!("no {what}")))?;
        // SAFETY: forwarded caller contract.
        unsafe { write_string(out, v, "out") }
    })
}

/// Sets a text property of a chunk through `f`, reporting its errors.
unsafe fn set_text(
    chunk: *mut msrp_chunk,
    value: *const c_char,
    name: &'static str,
    f: fn(&mut Chunk, &str) -> Result<(), crate::proto::ChunkError>,
) -> msrp_result {
    run(|| {
        // SAFETY: forwarded caller contract.
        let c = unsafe { borrow_mut(chunk, "chunk") }?;
        // SAFETY: forwarded caller contract.
        f(&mut c.inner, unsafe { text(value, name) }?)?;
        Ok(())
    })
}

/// The canonical name of a known header ("To-Path", "Message-ID", …), static; NULL for an unknown value.
#[unsafe(no_mangle)]
pub extern "C" fn msrp_header_name(header: msrp_header_arg) -> *const c_char {
    static NAMES: std::sync::OnceLock<Vec<std::ffi::CString>> = std::sync::OnceLock::new();
    run_or(std::ptr::null(), || {
        let names = NAMES.get_or_init(|| {
            (0..)
                .map_while(HeaderName::from_u32)
                .filter_map(|h| h.canonical())
                .map(|n| std::ffi::CString::new(n).expect("header names have no NUL"))
                .collect()
        });
        names
            .get(header.0 as usize)
            .map_or(std::ptr::null(), |c| c.as_ptr())
    })
}

/// A new request with `method` (upper-case letters, e.g. "SEND", "REPORT",
/// "AUTH", "NICKNAME") and a random 16-character transaction id. It has no
/// headers yet; add To-Path and From-Path before sending.
///
/// # Safety
/// `method` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_new_request(
    method: *const c_char,
    out: *mut *mut msrp_chunk,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let m = unsafe { text(method, "method") }?;
        new_chunk(out, Chunk::request(m)?)
    })
}

/// A new response for `transaction_id` with `code` (100 to 999) and an
/// optional `comment` (NULL for none; no CR or LF).
///
/// # Safety
/// `transaction_id` and `comment` are NULL or NUL-terminated strings; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_new_response(
    transaction_id: *const c_char,
    code: u16,
    comment: *const c_char,
    out: *mut *mut msrp_chunk,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let tid = unsafe { text(transaction_id, "transaction_id") }?;
        // SAFETY: caller contract.
        let c = unsafe { opt_text(comment, "comment") }?;
        new_chunk(out, Chunk::response(tid, code, c)?)
    })
}

/// The response to `request` as RFC 4975 §7.2 builds it: same transaction
/// id, To-Path = first URI of the request's From-Path, From-Path = first URI
/// of its To-Path. `comment` may be NULL.
///
/// # Safety
/// `request` is NULL or live; `comment` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_make_response(
    request: *const msrp_chunk,
    code: u16,
    comment: *const c_char,
    out: *mut *mut msrp_chunk,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let r = unsafe { borrow(request, "request") }?;
        // SAFETY: caller contract.
        let c = unsafe { opt_text(comment, "comment") }?;
        new_chunk(out, r.inner.make_response(code, c)?)
    })
}

/// Copies a chunk, body included (reference `copy`).
///
/// # Safety
/// `chunk` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_copy(
    chunk: *const msrp_chunk,
    out: *mut *mut msrp_chunk,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        new_chunk(out, c.inner.clone())
    })
}

/// Frees a chunk. NULL is ignored.
///
/// # Safety
/// `chunk` is NULL or a chunk from libmsrp not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_free(chunk: *mut msrp_chunk) {
    // SAFETY: caller contract.
    run_or((), || unsafe { free(chunk) })
}

/// True for a request, false for a response or NULL.
///
/// # Safety
/// `chunk` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_is_request(chunk: *const msrp_chunk) -> bool {
    // SAFETY: caller contract.
    run_or(false, || {
        unsafe { chunk.as_ref() }.is_some_and(|c| c.inner.is_request())
    })
}

/// The transaction id; free with `msrp_string_free`.
///
/// # Safety
/// `chunk` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_transaction_id(
    chunk: *const msrp_chunk,
    out: *mut *mut c_char,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe { get_text(chunk, out, "transaction id", |c| Some(c.transaction_id())) }
}

/// Replaces the transaction id (4 to 32 characters of A-Z a-z 0-9 . - + % =).
///
/// # Safety
/// `chunk` is NULL or live; `transaction_id` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_set_transaction_id(
    chunk: *mut msrp_chunk,
    transaction_id: *const c_char,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe {
        set_text(
            chunk,
            transaction_id,
            "transaction_id",
            Chunk::set_transaction_id,
        )
    }
}

/// Gives the chunk fresh random transaction ids until its body no longer
/// contains its end-line; `*changed` tells whether the id changed.
///
/// # Safety
/// `chunk` is NULL or live; `changed` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_ensure_unique_transaction_id(
    chunk: *mut msrp_chunk,
    changed: *mut bool,
) -> msrp_result {
    run(|| {
        out_ok(changed, "changed")?;
        // SAFETY: caller contract.
        let c = unsafe { borrow_mut(chunk, "chunk") }?;
        let v = c.inner.ensure_unique_transaction_id();
        // SAFETY: checked non-NULL.
        unsafe { write(changed, v, "changed") }
    })
}

/// The method of a request; `MSRP_RESULT_WRONG_KIND` for a response.
///
/// # Safety
/// `chunk` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_method(
    chunk: *const msrp_chunk,
    out: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        let m = c
            .inner
            .method()
            .ok_or_else(|| FfiError::new(msrp_result::WrongKind, "a response has no method"))?;
        // SAFETY: caller contract.
        unsafe { write_string(out, m, "out") }
    })
}

/// The code of a response; `MSRP_RESULT_WRONG_KIND` for a request.
///
/// # Safety
/// `chunk` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_code(chunk: *const msrp_chunk, out: *mut u16) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        let code = c
            .inner
            .code()
            .ok_or_else(|| FfiError::new(msrp_result::WrongKind, "a request has no status code"))?;
        // SAFETY: checked non-NULL.
        unsafe { write(out, code, "out") }
    })
}

/// The comment of a response; `MSRP_RESULT_NOT_FOUND` when it has none,
/// `MSRP_RESULT_WRONG_KIND` for a request.
///
/// # Safety
/// `chunk` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_comment(
    chunk: *const msrp_chunk,
    out: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        if c.inner.is_request() {
            return Err(FfiError::new(
                msrp_result::WrongKind,
                "a request has no comment",
            ));
        }
        let m = c
            .inner
            .comment()
            .ok_or_else(|| FfiError::new(msrp_result::NotFound, "the response has no comment"))?;
        // SAFETY: caller contract.
        unsafe { write_string(out, m, "out") }
    })
}

/// Sets header `name` to `value` (reference `add_header`): a header of the
/// same name, in any case, is replaced; otherwise it is appended. Known
/// headers are checked (`MSRP_RESULT_INVALID_HEADER` says what is wrong);
/// names must be tokens; values may not contain CR or LF.
///
/// # Safety
/// `chunk` is NULL or live; `name` and `value` are NULL or NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_add_header(
    chunk: *mut msrp_chunk,
    name: *const c_char,
    value: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow_mut(chunk, "chunk") }?;
        // SAFETY: caller contract.
        let n = unsafe { text(name, "name") }?;
        // SAFETY: caller contract.
        let v = unsafe { text(value, "value") }?;
        c.inner.add_header_raw(n, v)?;
        Ok(())
    })
}

/// Removes every header called `name` (any case). `MSRP_RESULT_NOT_FOUND` when there was none.
///
/// # Safety
/// `chunk` is NULL or live; `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_remove_header(
    chunk: *mut msrp_chunk,
    name: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow_mut(chunk, "chunk") }?;
        // SAFETY: caller contract.
        let n = unsafe { text(name, "name") }?;
        if c.inner.remove_header(n) == 0 {
            return Err(FfiError::new(
                msrp_result::NotFound,
                format!("no '{n}' header"),
            ));
        }
        Ok(())
    })
}

/// The raw value of the first header called `name` (any case; known or
/// extension). `MSRP_RESULT_NOT_FOUND` when absent. Free with `msrp_string_free`.
///
/// # Safety
/// `chunk` is NULL or live; `name` is NULL or a NUL-terminated string; `value` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_header(
    chunk: *const msrp_chunk,
    name: *const c_char,
    value: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        out_ok(value, "value")?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        // SAFETY: caller contract.
        let n = unsafe { text(name, "name") }?;
        let v = c
            .inner
            .header_by_name(n)
            .ok_or_else(|| FfiError::new(msrp_result::NotFound, format!("no '{n}' header")))?;
        // SAFETY: caller contract.
        unsafe { write_string(value, v, "value") }
    })
}

/// Number of headers (0 for NULL).
///
/// # Safety
/// `chunk` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_header_count(chunk: *const msrp_chunk) -> usize {
    // SAFETY: caller contract.
    run_or(0, || {
        unsafe { chunk.as_ref() }.map_or(0, |c| c.inner.header_count())
    })
}

/// Header number `index` in stored order (received order for decoded
/// chunks): its name (known headers in canonical case) and raw value.
/// Both strings are freed with `msrp_string_free`.
///
/// # Safety
/// `chunk` is NULL or live; `name` and `value` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_header_at(
    chunk: *const msrp_chunk,
    index: usize,
    name: *mut *mut c_char,
    value: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        out_ok(name, "name")?;
        out_ok(value, "value")?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        let (n, v) = c.inner.header_at(index).ok_or_else(|| {
            FfiError::new(
                msrp_result::NotFound,
                format!(
                    "the chunk has {} headers; index {index} is past the end",
                    c.inner.header_count()
                ),
            )
        })?;
        // Both strings are checked before either is written.
        if v.contains('\0') {
            return Err(FfiError::new(
                msrp_result::EmbeddedNul,
                "the header value contains a NUL byte",
            ));
        }
        // SAFETY: caller contract.
        unsafe { write_string(name, n, "name") }?;
        // SAFETY: caller contract.
        unsafe { write_string(value, v, "value") }
    })
}

unsafe fn set_path(chunk: *mut msrp_chunk, path: *const c_char, which: HeaderName) -> msrp_result {
    run(|| {
        // SAFETY: forwarded contract.
        let c = unsafe { borrow_mut(chunk, "chunk") }?;
        // SAFETY: forwarded contract.
        let p = parse_path(unsafe { text(path, "path") }?)?;
        match which {
            HeaderName::ToPath => c.inner.set_to_path(&p),
            HeaderName::FromPath => c.inner.set_from_path(&p),
            _ => c.inner.set_use_path(&p),
        }
        Ok(())
    })
}

/// Sets To-Path from path text ("URI URI …"), checking every URI.
///
/// # Safety
/// `chunk` is NULL or live; `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_set_to_path(
    chunk: *mut msrp_chunk,
    path: *const c_char,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe { set_path(chunk, path, HeaderName::ToPath) }
}

/// Sets From-Path from path text, checking every URI.
///
/// # Safety
/// `chunk` is NULL or live; `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_set_from_path(
    chunk: *mut msrp_chunk,
    path: *const c_char,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe { set_path(chunk, path, HeaderName::FromPath) }
}

/// Sets Use-Path (relay AUTH responses) from path text, checking every URI.
///
/// # Safety
/// `chunk` is NULL or live; `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_set_use_path(
    chunk: *mut msrp_chunk,
    path: *const c_char,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe { set_path(chunk, path, HeaderName::UsePath) }
}

/// The Message-ID; `MSRP_RESULT_NOT_FOUND` when absent.
///
/// # Safety
/// `chunk` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_message_id(
    chunk: *const msrp_chunk,
    out: *mut *mut c_char,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe { get_text(chunk, out, "Message-ID header", Chunk::message_id) }
}

/// Sets the Message-ID (4 to 32 ident characters), or a fresh random one when `message_id` is NULL.
///
/// # Safety
/// `chunk` is NULL or live; `message_id` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_set_message_id(
    chunk: *mut msrp_chunk,
    message_id: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow_mut(chunk, "chunk") }?;
        // SAFETY: caller contract.
        let id = match unsafe { opt_text(message_id, "message_id") }? {
            Some(s) => s.to_owned(),
            None => crate::proto::ids::message_id().to_string(),
        };
        c.inner.set_message_id(&id)?;
        Ok(())
    })
}

/// The Byte-Range: `start` is 1-based; `end` and `total` are
/// `MSRP_BYTE_RANGE_UNKNOWN` for `*`. `MSRP_RESULT_NOT_FOUND` when absent,
/// `MSRP_RESULT_INVALID_HEADER` when malformed. Out-parameters may be NULL
/// individually when not wanted.
///
/// # Safety
/// `chunk` is NULL or live; each out-parameter is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_byte_range(
    chunk: *const msrp_chunk,
    start: *mut u64,
    end: *mut u64,
    total: *mut u64,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        let r = c
            .inner
            .byte_range()?
            .ok_or_else(|| FfiError::new(msrp_result::NotFound, "no Byte-Range header"))?;
        let unknown = MSRP_BYTE_RANGE_UNKNOWN;
        for (p, v) in [
            (start, r.start),
            (end, r.end.unwrap_or(unknown)),
            (total, r.total.unwrap_or(unknown)),
        ] {
            if !p.is_null() {
                // SAFETY: non-NULL out-parameter, writable per the contract.
                unsafe { p.write(v) };
            }
        }
        Ok(())
    })
}

/// Sets the Byte-Range. `start` >= 1; `end` and `total` may be
/// `MSRP_BYTE_RANGE_UNKNOWN` (`*`); end >= start - 1; end <= total; all below 2^63.
///
/// # Safety
/// `chunk` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_set_byte_range(
    chunk: *mut msrp_chunk,
    start: u64,
    end: u64,
    total: u64,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow_mut(chunk, "chunk") }?;
        let opt = |v: u64| (v != MSRP_BYTE_RANGE_UNKNOWN).then_some(v);
        c.inner.set_byte_range(ByteRange {
            start,
            end: opt(end),
            total: opt(total),
        })?;
        Ok(())
    })
}

/// The Status header of a REPORT: its code and, when `comment` is not NULL,
/// its comment (NULL when there is none; free with `msrp_string_free`).
/// `MSRP_RESULT_NOT_FOUND` when absent.
///
/// # Safety
/// `chunk` is NULL or live; `code` is NULL or writable; `comment` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_status(
    chunk: *const msrp_chunk,
    code: *mut u16,
    comment: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        out_ok(code, "code")?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        let s = c
            .inner
            .status()?
            .ok_or_else(|| FfiError::new(msrp_result::NotFound, "no Status header"))?;
        if !comment.is_null() {
            match &s.comment {
                // SAFETY: non-NULL, writable per the contract.
                Some(t) => unsafe { write_string(comment, t, "comment") }?,
                // SAFETY: non-NULL, writable per the contract.
                None => unsafe { comment.write(std::ptr::null_mut()) },
            }
        }
        // SAFETY: checked non-NULL.
        unsafe { write(code, s.code, "code") }
    })
}

/// Sets `Status: 000 <code> [comment]` (`comment` may be NULL).
///
/// # Safety
/// `chunk` is NULL or live; `comment` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_set_status(
    chunk: *mut msrp_chunk,
    code: u16,
    comment: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow_mut(chunk, "chunk") }?;
        // SAFETY: caller contract.
        let cm = unsafe { opt_text(comment, "comment") }?;
        c.inner.set_status(&Status {
            namespace: 0,
            code,
            comment: cm.map(str::to_owned),
        })?;
        Ok(())
    })
}

fn report_out(m: ReportMode) -> msrp_report {
    match m {
        ReportMode::No => msrp_report::No,
        ReportMode::Yes => msrp_report::Yes,
        ReportMode::Partial => msrp_report::Partial,
    }
}

fn report_in(v: u32) -> Result<ReportMode, FfiError> {
    match v {
        0 => Ok(ReportMode::No),
        1 => Ok(ReportMode::Yes),
        2 => Ok(ReportMode::Partial),
        _ => Err(FfiError::new(
            msrp_result::InvalidArgument,
            format!("{v} is not an msrp_report value"),
        )),
    }
}

/// Writes a report mode read through `f`.
unsafe fn get_report(
    chunk: *const msrp_chunk,
    out: *mut msrp_report,
    f: fn(&Chunk) -> Result<ReportMode, crate::proto::ChunkError>,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: forwarded caller contract.
        let m = f(&unsafe { borrow(chunk, "chunk") }?.inner)?;
        // SAFETY: checked non-NULL.
        unsafe { write(out, report_out(m), "out") }
    })
}

/// Sets a report mode (an `msrp_report` value) through `f`.
unsafe fn set_report(
    chunk: *mut msrp_chunk,
    report: u32,
    f: fn(&mut Chunk, ReportMode) -> Result<(), crate::proto::ChunkError>,
) -> msrp_result {
    run(|| {
        // SAFETY: forwarded caller contract.
        let c = unsafe { borrow_mut(chunk, "chunk") }?;
        f(&mut c.inner, report_in(report)?)?;
        Ok(())
    })
}

/// Failure-Report with its implied default (`MSRP_REPORT_YES` when absent).
///
/// # Safety
/// `chunk` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_failure_report(
    chunk: *const msrp_chunk,
    out: *mut msrp_report,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe { get_report(chunk, out, Chunk::failure_report) }
}

/// Success-Report with its implied default (`MSRP_REPORT_NO` when absent).
///
/// # Safety
/// `chunk` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_success_report(
    chunk: *const msrp_chunk,
    out: *mut msrp_report,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe { get_report(chunk, out, Chunk::success_report) }
}

/// Sets Failure-Report (an `msrp_report` value).
///
/// # Safety
/// `chunk` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_set_failure_report(
    chunk: *mut msrp_chunk,
    report: msrp_report_arg,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe {
        set_report(chunk, report.0, |c, m| {
            c.set_failure_report(m);
            Ok(())
        })
    }
}

/// Sets Success-Report (`MSRP_REPORT_YES` or `MSRP_REPORT_NO`).
///
/// # Safety
/// `chunk` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_set_success_report(
    chunk: *mut msrp_chunk,
    report: msrp_report_arg,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe { set_report(chunk, report.0, Chunk::set_success_report) }
}

/// The Content-Type; `MSRP_RESULT_NOT_FOUND` when absent.
///
/// # Safety
/// `chunk` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_content_type(
    chunk: *const msrp_chunk,
    out: *mut *mut c_char,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe { get_text(chunk, out, "Content-Type header", Chunk::content_type) }
}

/// Sets the Content-Type (`type/subtype` with optional parameters).
///
/// # Safety
/// `chunk` is NULL or live; `content_type` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_set_content_type(
    chunk: *mut msrp_chunk,
    content_type: *const c_char,
) -> msrp_result {
    // SAFETY: forwarded.
    unsafe { set_text(chunk, content_type, "content_type", Chunk::set_content_type) }
}

/// Seconds in Expires, Min-Expires or Max-Expires (`which` is
/// `MSRP_HEADER_EXPIRES`, `MSRP_HEADER_MIN_EXPIRES` or `MSRP_HEADER_MAX_EXPIRES`).
///
/// # Safety
/// `chunk` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_expires(
    chunk: *const msrp_chunk,
    which: msrp_header_arg,
    out: *mut u32,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        let h = header_sel(which)?;
        let v = c.inner.expires(h)?.ok_or_else(|| {
            FfiError::new(
                msrp_result::NotFound,
                format!("no {} header", h.canonical().unwrap_or("?")),
            )
        })?;
        // SAFETY: checked non-NULL; values are at most u32::MAX by parsing.
        unsafe { write(out, v as u32, "out") }
    })
}

/// Parameter `param` (e.g. "realm", "nonce", "rspauth") of a digest header
/// (`which` is `MSRP_HEADER_WWW_AUTHENTICATE`, `MSRP_HEADER_AUTHORIZATION`
/// or `MSRP_HEADER_AUTHENTICATION_INFO`), unquoted. Free with `msrp_string_free`.
///
/// # Safety
/// `chunk` is NULL or live; `param` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_digest_param(
    chunk: *const msrp_chunk,
    which: msrp_header_arg,
    param: *const c_char,
    out: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        // SAFETY: caller contract.
        let p = unsafe { text(param, "param") }?;
        let h = header_sel(which)?;
        let d = c.inner.digest(h)?.ok_or_else(|| {
            FfiError::new(
                msrp_result::NotFound,
                format!("no {} header", h.canonical().unwrap_or("?")),
            )
        })?;
        let v = d
            .get(p)
            .ok_or_else(|| FfiError::new(msrp_result::NotFound, format!("no '{p}' parameter")))?;
        // SAFETY: caller contract.
        unsafe { write_string(out, v, "out") }
    })
}

/// Checks that To-Path and From-Path are present and every known header is
/// well formed (reference `verify_headers`). The last error message names the header.
///
/// # Safety
/// `chunk` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_verify_headers(chunk: *const msrp_chunk) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        unsafe { borrow(chunk, "chunk") }?.inner.verify_headers()?;
        Ok(())
    })
}

/// The body. `*data` stays valid until the chunk is changed or freed; it is
/// NULL when the body is empty.
///
/// # Safety
/// `chunk` is NULL or live; `data` and `len` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_data(
    chunk: *const msrp_chunk,
    data: *mut *const u8,
    len: *mut usize,
) -> msrp_result {
    run(|| {
        out_ok(data, "data")?;
        out_ok(len, "len")?;
        // SAFETY: caller contract.
        let d = unsafe { borrow(chunk, "chunk") }?.inner.data();
        let p = if d.is_empty() {
            std::ptr::null()
        } else {
            d.as_ptr()
        };
        // SAFETY: both checked non-NULL.
        unsafe {
            data.write(p);
            len.write(d.len());
        }
        Ok(())
    })
}

/// Number of body bytes (reference `size`); 0 for NULL.
///
/// # Safety
/// `chunk` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_size(chunk: *const msrp_chunk) -> usize {
    // SAFETY: caller contract.
    run_or(0, || {
        unsafe { chunk.as_ref() }.map_or(0, |c| c.inner.size())
    })
}

/// Replaces the body with a copy of `len` bytes at `data` (NULL allowed when `len` is 0).
///
/// # Safety
/// `chunk` is NULL or live; `data` points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_set_data(
    chunk: *mut msrp_chunk,
    data: *const u8,
    len: usize,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow_mut(chunk, "chunk") }?;
        // SAFETY: caller contract.
        c.inner.set_data(unsafe { bytes(data, len, "data") }?);
        Ok(())
    })
}

/// Appends a copy of `len` bytes at `data` to the body.
///
/// # Safety
/// `chunk` is NULL or live; `data` points to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_append_data(
    chunk: *mut msrp_chunk,
    data: *const u8,
    len: usize,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow_mut(chunk, "chunk") }?;
        // SAFETY: caller contract.
        c.inner.append_data(unsafe { bytes(data, len, "data") }?);
        Ok(())
    })
}

/// The continuation flag: `MSRP_FLAG_END` ('$'), `MSRP_FLAG_MORE` ('+') or
/// `MSRP_FLAG_ABORT` ('#'); 0 for NULL.
///
/// # Safety
/// `chunk` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_flag(chunk: *const msrp_chunk) -> u8 {
    // SAFETY: caller contract.
    run_or(0, || {
        unsafe { chunk.as_ref() }.map_or(0, |c| c.inner.flag() as u8)
    })
}

fn flag_in(f: u8) -> Result<Flag, FfiError> {
    Flag::from_byte(f).ok_or_else(|| {
        FfiError::new(
            msrp_result::InvalidArgument,
            format!("flag {f} is not '$', '+' or '#'"),
        )
    })
}

/// Sets the continuation flag ('$', '+' or '#').
///
/// # Safety
/// `chunk` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_set_flag(chunk: *mut msrp_chunk, flag: u8) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let c = unsafe { borrow_mut(chunk, "chunk") }?;
        c.inner.set_flag(flag_in(flag)?);
        Ok(())
    })
}

/// Encodes the whole chunk (reference `encode`) into `buf` of `cap` bytes
/// and writes the length to `*len`. With `buf` NULL or too small it writes
/// the needed length and returns `MSRP_RESULT_BUFFER_TOO_SMALL`. Fails with
/// `MSRP_RESULT_END_LINE_IN_BODY` when the body holds the end-line (see
/// `msrp_chunk_ensure_unique_transaction_id`).
///
/// # Safety
/// `chunk` is NULL or live; `buf` is NULL or writable for `cap` bytes; `len` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_encode(
    chunk: *const msrp_chunk,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
) -> msrp_result {
    run(|| {
        out_ok(len, "len")?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        let v = c.inner.to_bytes()?;
        // SAFETY: caller contract.
        unsafe { fill_buffer(&v, buf, cap, len) }
    })
}

/// Encodes the start line, the headers in wire order (To-Path, From-Path,
/// others, Content-Type last) and, when the chunk has a body, the blank line
/// (reference `encode_start`). Buffer rules as for `msrp_chunk_encode`.
///
/// # Safety
/// As for `msrp_chunk_encode`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_encode_start(
    chunk: *const msrp_chunk,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
) -> msrp_result {
    run(|| {
        out_ok(len, "len")?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        let mut v = Vec::new();
        c.inner.encode_start(&mut v);
        // SAFETY: caller contract.
        unsafe { fill_buffer(&v, buf, cap, len) }
    })
}

/// Encodes the end-line with `flag` (reference `encode_end`), preceded by
/// the CRLF that closes the body when the chunk has one. Buffer rules as for
/// `msrp_chunk_encode`.
///
/// # Safety
/// As for `msrp_chunk_encode`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_chunk_encode_end(
    chunk: *const msrp_chunk,
    flag: u8,
    buf: *mut u8,
    cap: usize,
    len: *mut usize,
) -> msrp_result {
    run(|| {
        out_ok(len, "len")?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        let f = flag_in(flag)?;
        let mut v = Vec::new();
        c.inner.encode_end(f, &mut v);
        // SAFETY: caller contract.
        unsafe { fill_buffer(&v, buf, cap, len) }
    })
}
