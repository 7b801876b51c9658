//! C API for loggers (`msrp_logger`): the reference's eleven logger methods
//! as a table of C function pointers with userdata and a finalizer.

use super::callback::cstring;
use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::chunk::msrp_chunk;
use super::error::msrp_result;
use super::handle::{borrow, free, into_raw, out_ok, write};
use super::panic::{run, run_or};
use crate::engine::logger::{Level, Logger, LoggerRef, set_default};
use crate::proto::Chunk;

/// Chunk-start callback: `data` is the chunk's head as on the wire; `chunk`
/// is valid only during the call.
pub type msrp_log_chunk_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        transport_id: u64,
        data: *const u8,
        len: usize,
        chunk: *const msrp_chunk,
    ),
>;
/// Chunk-data or chunk-end callback; `transaction_id` is valid only during the call.
pub type msrp_log_data_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        transport_id: u64,
        data: *const u8,
        len: usize,
        transaction_id: *const c_char,
    ),
>;
/// Message callback; `message` is valid only during the call.
pub type msrp_log_message_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, message: *const c_char)>;

/// The reference's logger methods. Any entry may be NULL (ignored).
///
/// Logger callbacks run synchronously on the thread where the event happens
/// (a libmsrp thread, or yours during a call), even with queued callbacks:
/// keep them quick and thread-safe, and do not call blocking libmsrp
/// functions from them. `transport_id` is `msrp_transport_id()` of the
/// connection concerned.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct msrp_logger_callbacks {
    /// A chunk's start line and headers arrived.
    pub received_new_chunk: msrp_log_chunk_fn,
    /// Body bytes of a chunk arrived.
    pub received_chunk_data: msrp_log_data_fn,
    /// A chunk's end-line arrived.
    pub received_chunk_end: msrp_log_data_fn,
    /// A chunk's start line and headers were sent.
    pub sent_new_chunk: msrp_log_chunk_fn,
    /// Body bytes of a chunk were sent.
    pub sent_chunk_data: msrp_log_data_fn,
    /// A chunk's end-line was sent.
    pub sent_chunk_end: msrp_log_data_fn,
    /// Debug message.
    pub debug: msrp_log_message_fn,
    /// Information message.
    pub info: msrp_log_message_fn,
    /// Warning message.
    pub warn: msrp_log_message_fn,
    /// Error message.
    pub error: msrp_log_message_fn,
    /// Fatal message.
    pub fatal: msrp_log_message_fn,
}

/// Finalizer for userdata: called once, when the last object using the logger lets go of it.
pub type msrp_userdata_free_fn = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

struct CLogger {
    cbs: msrp_logger_callbacks,
    userdata: *mut c_void,
    userdata_free: msrp_userdata_free_fn,
}

// SAFETY: the application promises (header) that its logger callbacks and
// userdata may be used from any thread.
unsafe impl Send for CLogger {}
// SAFETY: as above; libmsrp only passes the pointer back.
unsafe impl Sync for CLogger {}

impl Drop for CLogger {
    fn drop(&mut self) {
        if let Some(f) = self.userdata_free {
            // SAFETY: the application's finalizer, called once for its userdata.
            unsafe { f(self.userdata) };
        }
    }
}

impl CLogger {
    fn chunk(&self, f: msrp_log_chunk_fn, id: u64, data: &[u8], chunk: &Chunk) {
        if let Some(f) = f {
            let c = msrp_chunk {
                inner: chunk.clone(),
            };
            // SAFETY: valid pointers for the duration of the call.
            unsafe { f(self.userdata, id, data.as_ptr(), data.len(), &c) };
        }
    }

    fn data(&self, f: msrp_log_data_fn, id: u64, data: &[u8], tid: &str) {
        if let Some(f) = f {
            let t = cstring(tid);
            // SAFETY: valid pointers for the duration of the call.
            unsafe { f(self.userdata, id, data.as_ptr(), data.len(), t.as_ptr()) };
        }
    }
}

impl Logger for CLogger {
    fn received_new_chunk(&self, t: u64, data: &[u8], chunk: &Chunk) {
        self.chunk(self.cbs.received_new_chunk, t, data, chunk);
    }
    fn received_chunk_data(&self, t: u64, data: &[u8], tid: &str) {
        self.data(self.cbs.received_chunk_data, t, data, tid);
    }
    fn received_chunk_end(&self, t: u64, data: &[u8], tid: &str) {
        self.data(self.cbs.received_chunk_end, t, data, tid);
    }
    fn sent_new_chunk(&self, t: u64, data: &[u8], chunk: &Chunk) {
        self.chunk(self.cbs.sent_new_chunk, t, data, chunk);
    }
    fn sent_chunk_data(&self, t: u64, data: &[u8], tid: &str) {
        self.data(self.cbs.sent_chunk_data, t, data, tid);
    }
    fn sent_chunk_end(&self, t: u64, data: &[u8], tid: &str) {
        self.data(self.cbs.sent_chunk_end, t, data, tid);
    }
    fn log(&self, level: Level, message: &str) {
        let f = match level {
            Level::Debug => self.cbs.debug,
            Level::Info => self.cbs.info,
            Level::Warn => self.cbs.warn,
            Level::Error => self.cbs.error,
            Level::Fatal => self.cbs.fatal,
        };
        if let Some(f) = f {
            let m = cstring(message);
            // SAFETY: valid pointer for the duration of the call.
            unsafe { f(self.userdata, m.as_ptr()) };
        }
    }
}

/// A logger: a table of callbacks with userdata. Connectors, servers and
/// transports that are given one keep their own reference, so the handle
/// may be freed with `msrp_logger_free` right after passing it on;
/// `userdata_free` (may be NULL) runs when the last reference goes.
pub struct msrp_logger {
    pub(crate) inner: LoggerRef,
}

/// Creates a logger from `callbacks` (copied; NULL entries are ignored).
///
/// # Safety
/// `callbacks` is NULL or readable; the function pointers and `userdata` may
/// be used from any thread until `userdata_free` runs; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_logger_new(
    callbacks: *const msrp_logger_callbacks,
    userdata: *mut c_void,
    userdata_free: msrp_userdata_free_fn,
    out: *mut *mut msrp_logger,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let cbs = *unsafe { borrow(callbacks, "callbacks") }?;
        let inner: LoggerRef = Arc::new(CLogger {
            cbs,
            userdata,
            userdata_free,
        });
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_logger { inner }), "out") }
    })
}

/// Releases this handle's reference. NULL is ignored.
///
/// # Safety
/// `logger` is NULL or a logger from libmsrp not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_logger_free(logger: *mut msrp_logger) {
    // SAFETY: caller contract.
    run_or((), || unsafe { free(logger) })
}

/// Sets the process-wide default logger, used by objects created without
/// one (NULL clears it). The library keeps its own reference.
///
/// # Safety
/// `logger` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_logger_set_default(logger: *const msrp_logger) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        set_default(unsafe { logger.as_ref() }.map(|l| l.inner.clone()));
        Ok(())
    })
}

/// The logger behind an optional handle.
///
/// # Safety
/// `logger` is NULL or live.
pub(crate) unsafe fn logger_ref(logger: *const msrp_logger) -> Option<LoggerRef> {
    // SAFETY: caller contract.
    unsafe { logger.as_ref() }.map(|l| l.inner.clone())
}
