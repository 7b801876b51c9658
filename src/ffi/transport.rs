//! C API for bound connections (`msrp_transport`, reference `MSRPTransport`).

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::Duration;

use super::callback::{Once, UserData, message};
use super::chunk::msrp_chunk;
use super::error::{FfiError, msrp_result};
use super::handle::{borrow, bytes, free, into_raw, opt_text, out_ok, write, write_string};
use super::panic::{run, run_or};
use crate::engine::connector::DEFAULT_TIMEOUT;
use crate::engine::transport::Transport;
use crate::proto::Flag;
use crate::proto::transport::{ChunkParams, PathCheck, check_incoming, make_chunk};
use crate::proto::uri::format_path;

/// A bound MSRP connection, from `msrp_connector_complete` or
/// `msrp_server_complete`. Owned by the caller; `msrp_transport_free`
/// closes it (queued chunks are still sent) and frees it.
///
/// Blocking calls (`msrp_transport_read_chunk`, `msrp_transport_write_chunk`,
/// `msrp_transport_write_response`) wait at most their timeout (0 means the
/// default, 30 s). Inside a callback on a libmsrp thread, reads must use
/// `msrp_transport_read_chunk_async` (the blocking form returns
/// `MSRP_RESULT_IN_CALLBACK`), and writes are queued and return at once.
/// One transport may be used from several threads: reads are served one at
/// a time, writes go out in the order they were made.
pub struct msrp_transport {
    pub(crate) inner: Arc<Transport>,
}

/// Parameters of `msrp_transport_make_chunk`; zero-initialise for the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct msrp_chunk_params {
    /// Method (NULL: "SEND").
    pub method: *const c_char,
    /// Transaction id (NULL: a random one).
    pub transaction_id: *const c_char,
    /// Message-ID (NULL: a random one).
    pub message_id: *const c_char,
    /// The payload of this chunk (NULL when `data_len` is 0).
    pub data: *const u8,
    /// Payload length.
    pub data_len: usize,
    /// First byte of this chunk within the message, 1-based (0: 1).
    pub start: u64,
    /// Total message length (0: computed as if this chunk ends the message;
    /// `MSRP_BYTE_RANGE_UNKNOWN`: `*`).
    pub total: u64,
    /// Continuation flag (0: '$' when this chunk ends the message, '+' otherwise).
    pub flag: u8,
}

/// Called once with the result of `msrp_transport_read_chunk_async`. On
/// success `chunk` is yours (free it with `msrp_chunk_free`) and `segment`
/// is as for `msrp_transport_read_chunk`; otherwise `chunk` is NULL and
/// `message` (valid during the call) says why.
pub type msrp_read_cb = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        result: msrp_result,
        chunk: *mut msrp_chunk,
        segment: u32,
        message: *const c_char,
    ),
>;

pub(crate) fn timeout(ms: u32) -> Duration {
    if ms == 0 {
        DEFAULT_TIMEOUT
    } else {
        Duration::from_millis(u64::from(ms))
    }
}

/// The transport's id, as passed to logger callbacks (0 for NULL).
///
/// # Safety
/// `t` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_transport_id(t: *const msrp_transport) -> u64 {
    // SAFETY: caller contract.
    run_or(0, || unsafe { t.as_ref() }.map_or(0, |t| t.inner.id()))
}

/// Our full path as text. Free with `msrp_string_free`.
///
/// # Safety
/// `t` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_transport_local_path(
    t: *const msrp_transport,
    out: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let t = unsafe { borrow(t, "t") }?;
        // SAFETY: caller contract.
        unsafe { write_string(out, &format_path(t.inner.local_path()), "out") }
    })
}

/// The peer's full path as text. Free with `msrp_string_free`.
///
/// # Safety
/// `t` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_transport_remote_path(
    t: *const msrp_transport,
    out: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let t = unsafe { borrow(t, "t") }?;
        // SAFETY: caller contract.
        unsafe { write_string(out, &format_path(t.inner.remote_path()), "out") }
    })
}

/// Reads `msrp_chunk_params` (NULL: all defaults) into the core's form.
///
/// # Safety
/// `params` is NULL or readable, with valid strings and data for `'a`.
pub(crate) unsafe fn chunk_params<'a>(
    params: *const msrp_chunk_params,
) -> Result<ChunkParams<'a>, FfiError> {
    let mut p = ChunkParams::default();
    // SAFETY: caller contract.
    if let Some(cp) = unsafe { params.as_ref() } {
        // SAFETY: caller contract for each field.
        unsafe {
            p.method = opt_text(cp.method, "params.method")?;
            p.transaction_id = opt_text(cp.transaction_id, "params.transaction_id")?;
            p.message_id = opt_text(cp.message_id, "params.message_id")?;
            p.data = bytes(cp.data, cp.data_len, "params.data")?;
        }
        p.start = cp.start;
        p.total = match cp.total {
            0 => None,
            super::chunk::MSRP_BYTE_RANGE_UNKNOWN => Some(None),
            n => Some(Some(n)),
        };
        p.flag = match cp.flag {
            0 => None,
            f => Some(Flag::from_byte(f).ok_or_else(|| {
                FfiError::new(
                    msrp_result::InvalidArgument,
                    format!("params.flag {f} is not '$', '+' or '#'"),
                )
            })?),
        };
    }
    Ok(p)
}

/// Reference `make_chunk`: a new request with To-Path and From-Path from
/// this transport, a Message-ID and the Byte-Range computed from `params`
/// (NULL: an empty SEND).
///
/// # Safety
/// `t` is NULL or live; `params` is NULL or readable with valid strings and
/// data; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_transport_make_chunk(
    t: *const msrp_transport,
    params: *const msrp_chunk_params,
    out: *mut *mut msrp_chunk,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let t = unsafe { borrow(t, "t") }?;
        // SAFETY: caller contract.
        let p = unsafe { chunk_params(params) }?;
        let c = make_chunk(t.inner.local_path(), t.inner.remote_path(), &p)?;
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_chunk { inner: c }), "out") }
    })
}

fn send(t: &Arc<Transport>, chunk: &crate::proto::Chunk, timeout_ms: u32) -> Result<(), FfiError> {
    if crate::engine::context::on_library_thread() {
        t.write_chunk_nowait(chunk)?;
    } else {
        t.context()
            .block_on(timeout(timeout_ms), t.write_chunk(chunk))?;
    }
    Ok(())
}

/// Sends `chunk` and waits until it is handed to the operating system (at
/// most `timeout_ms`; 0 means 30 s). Without a logger, when nothing else
/// is queued, the calling thread writes it itself, straight from the
/// chunk's buffers (over msrps it also encrypts it, when the connection is
/// not busy reading); only what the socket does not take at once is copied,
/// and finished by the library's writer. Otherwise a copy is queued: the
/// chunk is never used after the call returns, even on a timeout. Inside a
/// callback it is queued and the call returns at once. `MSRP_RESULT_CLOSED`
/// after either side closed.
///
/// # Safety
/// `t` and `chunk` are NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_transport_write_chunk(
    t: *const msrp_transport,
    chunk: *const msrp_chunk,
    timeout_ms: u32,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let t = unsafe { borrow(t, "t") }?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        send(&t.inner, &c.inner, timeout_ms)
    })
}

/// Reference `write_response`: sends the response with `code` (and
/// `comment`, may be NULL) to the request `request`, as
/// `msrp_chunk_make_response` builds it. Waits as `msrp_transport_write_chunk`.
///
/// # Safety
/// `t` and `request` are NULL or live; `comment` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_transport_write_response(
    t: *const msrp_transport,
    request: *const msrp_chunk,
    code: u16,
    comment: *const c_char,
    timeout_ms: u32,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let t = unsafe { borrow(t, "t") }?;
        // SAFETY: caller contract.
        let req = unsafe { borrow(request, "request") }?;
        // SAFETY: caller contract.
        let cm = unsafe { opt_text(comment, "comment") }?;
        let resp = req.inner.make_response(code, cm)?;
        send(&t.inner, &resp, timeout_ms)
    })
}

/// Reference `read_chunk`: waits (at most `timeout_ms`; 0 means 30 s) for
/// the next chunk, request or response. A chunk with more than `size` body
/// bytes is handed out in "virtual" segments of at most `size` bytes, each
/// returned as soon as its bytes are here: flag '+', Byte-Range moved to the
/// segment, and `*segment` counting from 1 (the last segment carries the
/// chunk's real flag). Chunks of at most `size` bytes come whole, with
/// `*segment` 0. `SIZE_MAX` always reads whole chunks. `segment` may be NULL.
/// Errors: `MSRP_RESULT_TIMEOUT` (nothing lost; call again),
/// `MSRP_RESULT_CLOSED` once the connection ended (after every chunk that
/// arrived before was read), `MSRP_RESULT_PROTOCOL` when the peer sent
/// non-MSRP data.
///
/// # Safety
/// `t` is NULL or live; `out` is NULL or writable; `segment` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_transport_read_chunk(
    t: *const msrp_transport,
    size: usize,
    timeout_ms: u32,
    out: *mut *mut msrp_chunk,
    segment: *mut u32,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let t = unsafe { borrow(t, "t") }?;
        let r = t
            .inner
            .context()
            .block_on(timeout(timeout_ms), t.inner.read_chunk(size))?;
        if !segment.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { segment.write(r.segment) };
        }
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_chunk { inner: r.chunk }), "out") }
    })
}

/// Makes the callers of `msrp_transport_read_chunk` (and the libmsrp task
/// behind `msrp_transport_read_chunk_async`) read and decode the connection
/// themselves, instead of libmsrp's reader task, which reads ahead and
/// hands what it decoded to the reading thread. For an application that
/// reads all the time, such as a bulk transfer, this saves a thread
/// hand-off per batch of chunks and keeps the decoding (over msrps, the
/// decryption) on the reading thread: measured on loopback, TLS bulk
/// through `msrp_transport_read_chunk` is about a quarter faster (see the
/// benchmarks in docs/performance.md). Sessions always read this way.
///
/// In exchange, nothing is read while no read is in progress: a close by
/// the peer is noticed (and `msrp_transport_is_closed` turns true) by the
/// next read, and through a relay, the response to an AUTH refresh waits
/// for the next read too. Use it only when some thread (or an async read)
/// is reading whenever data may come. Chunks that arrived before the switch
/// are kept and are read first, in order. The switch cannot be undone;
/// switching again does nothing. Waits at most `timeout_ms` (0 means 30 s)
/// for reads in progress on other threads to end (the reader task itself
/// hands over at once); on `MSRP_RESULT_TIMEOUT` the transport stays as it
/// was.
///
/// # Safety
/// `t` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_transport_read_directly(
    t: *const msrp_transport,
    timeout_ms: u32,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let t = unsafe { borrow(t, "t") }?;
        let wait = timeout(timeout_ms);
        // The bound is on the wait for other reads (see read_directly_within);
        // the outer one is only a backstop.
        let switched = t.inner.context().block_on(wait * 2, async {
            Ok(t.inner.read_directly_within(wait).await)
        })?;
        if switched {
            Ok(())
        } else {
            Err(FfiError::new(
                msrp_result::Timeout,
                format!(
                    "reads in progress on this transport did not end within {} ms; nothing was changed",
                    wait.as_millis()
                ),
            ))
        }
    })
}

/// The callback form of `msrp_transport_read_chunk`: returns at once and
/// calls `cb` exactly once (on a libmsrp thread, or from
/// `msrp_context_dispatch` with queued callbacks) — unless it returns an
/// error, in which case `cb` is never called.
///
/// # Safety
/// `t` is NULL or live; `cb` and `userdata` may be used from libmsrp's threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_transport_read_chunk_async(
    t: *const msrp_transport,
    size: usize,
    timeout_ms: u32,
    cb: msrp_read_cb,
    userdata: *mut c_void,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let t = unsafe { borrow(t, "t") }?.inner.clone();
        let cb = cb.ok_or_else(|| FfiError::null("cb"))?;
        let ctx = t.context().clone();
        ctx.check_open()?;
        let ud = UserData(userdata);
        let once = Once::new(
            &ctx,
            Box::new(
                move |r: Result<crate::engine::transport::Received, FfiError>| {
                    let ud = ud;
                    match r {
                        // SAFETY: the application's callback with its own userdata.
                        Ok(r) => unsafe {
                            cb(
                                ud.0,
                                msrp_result::Ok,
                                into_raw(msrp_chunk { inner: r.chunk }),
                                r.segment,
                                c"".as_ptr(),
                            )
                        },
                        Err(e) => {
                            let m = message(&e);
                            // SAFETY: as above.
                            unsafe { cb(ud.0, e.code, std::ptr::null_mut(), 0, m.as_ptr()) }
                        }
                    }
                },
            ),
        );
        once.fire_within(timeout(timeout_ms), "chunk", async move {
            t.read_chunk(size).await
        });
        Ok(())
    })
}

/// Reference `check_incoming_SEND_chunk`: writes to `*response_code` 200
/// when To-Path and From-Path of `chunk` belong to this connection, else the
/// code to answer with (400 malformed, 481 not this session); then
/// `msrp_last_error_message()` says why.
///
/// # Safety
/// `t` and `chunk` are NULL or live; `response_code` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_transport_check_incoming_send_chunk(
    t: *const msrp_transport,
    chunk: *const msrp_chunk,
    response_code: *mut u16,
) -> msrp_result {
    run(|| {
        out_ok(response_code, "response_code")?;
        // SAFETY: caller contract.
        let t = unsafe { borrow(t, "t") }?;
        // SAFETY: caller contract.
        let c = unsafe { borrow(chunk, "chunk") }?;
        let code = match check_incoming(
            &c.inner,
            t.inner.local_path(),
            t.inner.remote_path(),
            t.inner.sessmatch(),
        ) {
            PathCheck::Ok => 200,
            PathCheck::Reject(code, why) => {
                super::error::set_last_error(&why);
                code
            }
        };
        // SAFETY: checked non-NULL.
        unsafe { write(response_code, code, "response_code") }
    })
}

/// True once the connection is closed (by you, the peer, an error, or the
/// context); true for NULL.
///
/// # Safety
/// `t` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_transport_is_closed(t: *const msrp_transport) -> bool {
    // SAFETY: caller contract.
    run_or(true, || {
        unsafe { t.as_ref() }.is_none_or(|t| t.inner.is_closed())
    })
}

/// Closes the connection: chunks already written still go out, then the
/// socket is shut down; waiting reads end with `MSRP_RESULT_CLOSED`. The
/// handle stays valid until `msrp_transport_free`.
///
/// # Safety
/// `t` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_transport_close(t: *const msrp_transport) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        unsafe { borrow(t, "t") }?.inner.close();
        Ok(())
    })
}

/// Closes (as `msrp_transport_close`) and frees the transport. NULL is ignored.
///
/// # Safety
/// `t` is NULL or a transport from libmsrp not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_transport_free(t: *mut msrp_transport) {
    run_or((), || {
        // SAFETY: caller contract.
        if let Some(t) = unsafe { t.as_ref() } {
            t.inner.close();
        }
        // SAFETY: caller contract.
        unsafe { free(t) }
    })
}
