//! Loggers: the reference's eleven logger methods as a trait, a per-object
//! logger with a process-wide default, and the library's own diagnostics.
//!
//! Logger methods run synchronously on the thread where the event happens
//! (a library thread, or the application thread that made a call); they
//! must be quick and thread-safe.

use std::sync::{Arc, RwLock};

use crate::proto::Chunk;

/// Severity of a diagnostic message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Details for debugging.
    Debug,
    /// Normal events.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// An operation failed.
    Error,
    /// The library cannot go on.
    Fatal,
}

/// The reference's logger interface. Every method has an empty default.
/// `transport` is the id of the transport (`msrp_transport_id` in C).
pub trait Logger: Send + Sync {
    /// The start of a chunk arrived: `data` is its head, as on the wire.
    fn received_new_chunk(&self, _transport: u64, _data: &[u8], _chunk: &Chunk) {}
    /// Body bytes of a chunk arrived.
    fn received_chunk_data(&self, _transport: u64, _data: &[u8], _transaction_id: &str) {}
    /// The end-line of a chunk arrived.
    fn received_chunk_end(&self, _transport: u64, _data: &[u8], _transaction_id: &str) {}
    /// The start of a chunk was sent.
    fn sent_new_chunk(&self, _transport: u64, _data: &[u8], _chunk: &Chunk) {}
    /// Body bytes of a chunk were sent.
    fn sent_chunk_data(&self, _transport: u64, _data: &[u8], _transaction_id: &str) {}
    /// The end-line of a chunk was sent.
    fn sent_chunk_end(&self, _transport: u64, _data: &[u8], _transaction_id: &str) {}
    /// A diagnostic message.
    fn log(&self, _level: Level, _message: &str) {}
}

/// A shared logger.
pub type LoggerRef = Arc<dyn Logger>;

static DEFAULT: RwLock<Option<LoggerRef>> = RwLock::new(None);

/// Sets (or with `None` clears) the process-wide default logger, used by
/// objects that have no logger of their own.
pub fn set_default(l: Option<LoggerRef>) {
    *DEFAULT.write().unwrap_or_else(|p| p.into_inner()) = l;
}

/// The logger in force: the object's own, else the default.
pub fn effective(own: &Option<LoggerRef>) -> Option<LoggerRef> {
    own.clone()
        .or_else(|| DEFAULT.read().unwrap_or_else(|p| p.into_inner()).clone())
}

/// Logs a diagnostic through `own` or the default logger.
pub fn log(own: &Option<LoggerRef>, level: Level, message: &str) {
    if let Some(l) = effective(own) {
        l.log(level, message);
    }
}
