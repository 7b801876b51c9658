//! C API for the streaming decoder (`msrp_decoder`): feed bytes, get events.

use super::chunk::msrp_chunk;
use super::error::{FfiError, msrp_result};
use super::handle::{borrow, borrow_mut, bytes, free, into_raw, out_ok, write};
use super::panic::{run, run_or};
use crate::proto::decoder::{Decoder, Event, Limits};

/// A streaming MSRP decoder for one byte stream (one connection).
///
/// Feed it bytes with `msrp_decoder_decode` in whatever pieces they arrive;
/// it returns one event at a time. Created with `msrp_decoder_new`, released
/// with `msrp_decoder_free`. Not for use by two threads at once.
pub struct msrp_decoder {
    inner: Decoder,
}

/// Kinds of decoder events.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum msrp_decoder_event_kind {
    /// Nothing yet: all input was consumed; feed more bytes.
    None = 0,
    /// A chunk's start line and headers arrived: `chunk` is a new chunk
    /// without body, owned by the caller (free it with `msrp_chunk_free`).
    Head = 1,
    /// Body bytes of the current chunk: `data`/`data_len`.
    Data = 2,
    /// The current chunk ended: `flag` is '$', '+' or '#'.
    End = 3,
}

/// One decoder event, filled by `msrp_decoder_decode`.
#[repr(C)]
#[derive(Debug)]
pub struct msrp_decoder_event {
    /// What happened.
    pub kind: msrp_decoder_event_kind,
    /// `HEAD`: the new chunk (caller owns it). NULL otherwise.
    pub chunk: *mut msrp_chunk,
    /// `HEAD`: `MSRP_RESULT_OK`, or `MSRP_RESULT_INVALID_HEADER` when a header
    /// is malformed (answer a request with 400; `msrp_last_error_message()`
    /// names the header). The stream itself is still in sync.
    pub header_error: msrp_result,
    /// `DATA`: the bytes. They point into the input buffer passed to this
    /// call or into the decoder, and stay valid until the next call on this
    /// decoder and while that input buffer is unchanged.
    pub data: *const u8,
    /// `DATA`: number of bytes.
    pub data_len: usize,
    /// `END`: the continuation flag.
    pub flag: u8,
}

/// Default limits: 16384-byte lines, 64 headers, 65536-byte heads.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_decoder_new(out: *mut *mut msrp_decoder) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: checked non-NULL.
        unsafe {
            write(
                out,
                into_raw(msrp_decoder {
                    inner: Decoder::default(),
                }),
                "out",
            )
        }
    })
}

/// Frees a decoder. NULL is ignored.
///
/// # Safety
/// `decoder` is NULL or a decoder from libmsrp not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_decoder_free(decoder: *mut msrp_decoder) {
    // SAFETY: caller contract.
    run_or((), || unsafe { free(decoder) })
}

/// Changes the limits: longest line (`max_line`, CRLF included), most header
/// lines per chunk (`max_headers`), largest head (`max_head`). Each must be
/// at least 64, 2 and 128 respectively; a 0 keeps the current value.
/// Exceeding a limit is a fatal decoding error with its own result code.
///
/// # Safety
/// `decoder` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_decoder_set_limits(
    decoder: *mut msrp_decoder,
    max_line: usize,
    max_headers: usize,
    max_head: usize,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let d = unsafe { borrow_mut(decoder, "decoder") }?;
        let cur = d.inner.limits();
        let pick = |v: usize, old: usize, min: usize, what: &str| -> Result<usize, FfiError> {
            match v {
                0 => Ok(old),
                v if v < min => Err(FfiError::new(
                    msrp_result::InvalidArgument,
                    format!("{what} must be at least {min} (or 0 to keep the current value)"),
                )),
                v => Ok(v),
            }
        };
        let l = Limits {
            max_line: pick(max_line, cur.max_line, 64, "max_line")?,
            max_headers: pick(max_headers, cur.max_headers, 2, "max_headers")?,
            max_head: pick(max_head, cur.max_head, 128, "max_head")?,
        };
        d.inner.set_limits(l);
        Ok(())
    })
}

/// Decodes from `len` bytes at `buf`, writes how many were consumed to
/// `*consumed` and at most one event to `*event`. Call it again with the
/// remaining bytes (`buf + *consumed`) until they are all consumed; an event
/// of kind `MSRP_DECODER_EVENT_KIND_NONE` means everything was consumed and
/// more input is needed.
///
/// A fatal error (the stream cannot be framed any more: bad start line,
/// limits exceeded, …) returns its `MSRP_RESULT_DECODE_*` code; the decoder
/// then refuses all input with `MSRP_RESULT_DECODE_FAILED`, and the
/// connection should be closed.
///
/// # Safety
/// `decoder` is NULL or live; `buf` points to `len` readable bytes (NULL when
/// `len` is 0); `consumed` and `event` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_decoder_decode(
    decoder: *mut msrp_decoder,
    buf: *const u8,
    len: usize,
    consumed: *mut usize,
    event: *mut msrp_decoder_event,
) -> msrp_result {
    run(|| {
        out_ok(consumed, "consumed")?;
        out_ok(event, "event")?;
        // SAFETY: caller contract.
        let d = unsafe { borrow_mut(decoder, "decoder") }?;
        // SAFETY: caller contract.
        let input = unsafe { bytes(buf, len, "buf") }?;
        let (n, ev) = d.inner.decode(input)?;
        let mut out = msrp_decoder_event {
            kind: msrp_decoder_event_kind::None,
            chunk: std::ptr::null_mut(),
            header_error: msrp_result::Ok,
            data: std::ptr::null(),
            data_len: 0,
            flag: 0,
        };
        match ev {
            None => {}
            Some(Event::Head { chunk, error, .. }) => {
                out.kind = msrp_decoder_event_kind::Head;
                if let Some(e) = error {
                    super::error::set_last_error(&e.to_string());
                    out.header_error = msrp_result::InvalidHeader;
                }
                out.chunk = into_raw(msrp_chunk { inner: *chunk });
            }
            Some(Event::Data(b)) => {
                out.kind = msrp_decoder_event_kind::Data;
                out.data = b.as_ptr();
                out.data_len = b.len();
            }
            Some(Event::End(f)) => {
                out.kind = msrp_decoder_event_kind::End;
                out.flag = f as u8;
            }
        }
        // SAFETY: both checked non-NULL.
        unsafe {
            consumed.write(n);
            event.write(out);
        }
        Ok(())
    })
}

/// True when the decoder is between chunks (a connection closing now closed
/// cleanly); false in the middle of a chunk, after a fatal error, or for NULL.
///
/// # Safety
/// `decoder` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_decoder_is_idle(decoder: *const msrp_decoder) -> bool {
    // SAFETY: caller contract.
    run_or(false, || {
        unsafe { borrow(decoder, "decoder") }.is_ok_and(|d| d.inner.is_idle())
    })
}
