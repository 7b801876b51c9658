//! C API for incoming messages that go to a sink (`msrp_incoming`, chosen
//! in `on_message_start`): a file, a descriptor, an application callback,
//! or memory; and the session's delivery jobs that write their chunks and
//! report progress, the end or a failure. The writing, the bookkeeping and
//! the limits are [`crate::engine::sink`]'s; this file converts.

use std::ffi::{c_char, c_void};

use super::callback::{UserData, cstring};
use super::chunk::{MSRP_BYTE_RANGE_UNKNOWN, msrp_chunk};
use super::error::{FfiError, msrp_result};
use super::handle::text;
use super::panic::run;
use super::session::msrp_session_callbacks;
use crate::engine::sink::{Failed, Finished, PartOutcome, Sink, SinkError, Sinks};
use crate::proto::Chunk;

/// Where one incoming message goes, chosen in `on_message_start` (see
/// `msrp_session_callbacks`); valid only during that call.
pub struct msrp_incoming {
    choice: Option<Choice>,
}

/// What the application chose for an incoming message.
enum Choice {
    File(std::fs::File),
    Callback(msrp_write_fn, UserData),
    Refuse,
}

/// Writes bytes of an incoming message for `msrp_incoming_to_callback`:
/// `len` bytes at `offset` (0-based; chunks may come out of order). Return
/// 0 to go on, anything else to refuse the rest of the message (its later
/// chunks get 413, `on_incomplete` reports `MSRP_RESULT_IO`). Runs where
/// session callbacks run.
pub type msrp_write_fn = Option<
    unsafe extern "C" fn(userdata: *mut c_void, offset: u64, data: *const u8, len: usize) -> i32,
>;

fn choose(i: *mut msrp_incoming, c: Choice) -> Result<(), FfiError> {
    // SAFETY: caller contract: `in` is the handle of the running `on_message_start`.
    let i = unsafe { i.as_mut() }.ok_or_else(|| FfiError::null("in"))?;
    i.choice = Some(c);
    Ok(())
}

/// Writes the incoming message to the file at `path` (created, or
/// truncated when it exists) as its chunks arrive. `MSRP_RESULT_IO` when it
/// cannot be opened (then nothing is chosen: choose again or let the message
/// go to memory).
///
/// # Safety
/// `in` is the handle given to the running `on_message_start` (or NULL);
/// `path` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_incoming_to_path(
    r#in: *mut msrp_incoming,
    path: *const c_char,
) -> msrp_result {
    run(|| {
        if r#in.is_null() {
            return Err(FfiError::null("in"));
        }
        // SAFETY: caller contract.
        let p = unsafe { text(path, "path") }?;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(p)
            .map_err(|e| FfiError::new(msrp_result::Io, format!("cannot open '{p}': {e}")))?;
        choose(r#in, Choice::File(f))
    })
}

/// Writes the incoming message to the open descriptor `fd` (Unix; libmsrp
/// writes a duplicate at the message's offsets from where the file starts,
/// and leaves yours open), as its chunks arrive.
///
/// # Safety
/// `in` is the handle given to the running `on_message_start` (or NULL);
/// `fd` is an open descriptor for the duration of the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_incoming_to_fd(r#in: *mut msrp_incoming, fd: i32) -> msrp_result {
    run(|| {
        if r#in.is_null() {
            return Err(FfiError::null("in"));
        }
        #[cfg(unix)]
        {
            use std::os::fd::BorrowedFd;
            if fd < 0 {
                return Err(FfiError::new(
                    msrp_result::InvalidArgument,
                    "fd is not a descriptor",
                ));
            }
            // SAFETY: the caller promises `fd` is open for the duration of the call.
            let owned = unsafe { BorrowedFd::borrow_raw(fd) }
                .try_clone_to_owned()
                .map_err(|e| {
                    FfiError::new(
                        msrp_result::Io,
                        format!("cannot duplicate the descriptor: {e}"),
                    )
                })?;
            choose(r#in, Choice::File(std::fs::File::from(owned)))
        }
        #[cfg(not(unix))]
        {
            let _ = fd;
            Err(FfiError::new(
                msrp_result::Unsupported,
                "file descriptors are only supported on Unix",
            ))
        }
    })
}

/// Hands the incoming message's bytes to `write` (with `userdata`) as its
/// chunks arrive; see `msrp_write_fn`.
///
/// # Safety
/// `in` is the handle given to the running `on_message_start` (or NULL);
/// `write` and `userdata` may be used where session callbacks run until the
/// message ends (`on_message_saved` or `on_incomplete`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_incoming_to_callback(
    r#in: *mut msrp_incoming,
    write: msrp_write_fn,
    userdata: *mut c_void,
) -> msrp_result {
    run(|| {
        if write.is_none() {
            return Err(FfiError::null("write"));
        }
        choose(r#in, Choice::Callback(write, UserData(userdata)))
    })
}

/// Refuses the incoming message: its later chunks get 413 (the chunk that
/// started it was accepted already) and nothing more is reported about it.
///
/// # Safety
/// `in` is the handle given to the running `on_message_start` (or NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_incoming_refuse(r#in: *mut msrp_incoming) -> msrp_result {
    run(|| choose(r#in, Choice::Refuse))
}

/// The session's incoming messages that go to sinks, as the C API drives
/// them: the application chooses each message's sink in `on_message_start`
/// and hears of progress, the end or a failure through its callbacks. The
/// bookkeeping and the limits are [`crate::engine::sink::Sinks`]'s. Only
/// the session's delivery jobs use it, one at a time and in order.
pub(super) struct CSinks(pub(super) Sinks);

impl CSinks {
    /// A message's first chunk arrived: asks the application where it goes.
    pub(super) fn start(
        &self,
        cbs: &msrp_session_callbacks,
        ud: UserData,
        message_id: String,
        head: Chunk,
        total: Option<u64>,
    ) {
        let mut inc = msrp_incoming { choice: None };
        if let Some(f) = cbs.on_message_start {
            let h = msrp_chunk {
                inner: head.clone(),
            };
            let m = cstring(&message_id);
            let t = total.unwrap_or(MSRP_BYTE_RANGE_UNKNOWN);
            // SAFETY: the application's callback; pointers valid during the call.
            unsafe { f(ud.ptr(), &h, m.as_ptr(), t, &mut inc) };
        }
        let sink = match inc.choice {
            Some(Choice::Refuse) => {
                self.0.refuse(&message_id);
                return;
            }
            Some(Choice::File(f)) => Some(Sink::File(f)),
            Some(Choice::Callback(Some(w), wud)) => {
                Some(Sink::Write(Box::new(move |off, d: &[u8]| {
                    // SAFETY: the application's callback with its userdata and a valid buffer.
                    match unsafe { w(wud.ptr(), off, d.as_ptr(), d.len()) } {
                        0 => Ok(()),
                        r => Err(format!("the write callback returned {r}")),
                    }
                })))
            }
            Some(Choice::Callback(None, _)) | None => None,
        };
        let started = self.0.start(message_id.clone(), head.clone(), total, sink);
        if let Err(e) = started {
            let why = e.to_string();
            incomplete(
                cbs,
                ud,
                Some(&head),
                &message_id,
                0,
                total,
                result_of(&e),
                &why,
            );
        }
    }

    /// Writes a chunk of an open message; reports progress, or the failure.
    pub(super) fn part(&self, cbs: &msrp_session_callbacks, ud: UserData, chunk: &Chunk) {
        let mid = chunk.message_id().unwrap_or("");
        match self.0.part(chunk) {
            PartOutcome::None => {}
            PartOutcome::Written {
                received,
                total,
                to_memory,
            } => {
                if let (Some(f), false) = (cbs.on_incoming_progress, to_memory) {
                    let m = cstring(mid);
                    let t = total.unwrap_or(MSRP_BYTE_RANGE_UNKNOWN);
                    // SAFETY: the application's callback; valid pointer during the call.
                    unsafe { f(ud.ptr(), m.as_ptr(), received, t) };
                }
            }
            PartOutcome::Failed(f) => failed(cbs, ud, mid, *f),
        }
    }

    /// Every byte arrived: hands a message in memory to `on_message`, or
    /// closes its sink and calls `on_message_saved`.
    pub(super) fn end(
        &self,
        cbs: &msrp_session_callbacks,
        ud: UserData,
        message_id: &str,
        total: u64,
    ) {
        match self.0.end(message_id, total) {
            None => {}
            Some(Finished::InMemory(head, data)) => {
                if let Some(f) = cbs.on_message {
                    let h = msrp_chunk { inner: head };
                    // SAFETY: the application's callback; valid pointers during the call.
                    unsafe { f(ud.ptr(), &h, data.as_ptr(), data.len()) };
                }
            }
            Some(Finished::Saved(head)) => {
                if let Some(f) = cbs.on_message_saved {
                    let h = msrp_chunk { inner: head };
                    let m = cstring(message_id);
                    // SAFETY: as above.
                    unsafe { f(ud.ptr(), &h, m.as_ptr(), total) };
                }
            }
            Some(Finished::Failed(f)) => failed(cbs, ud, message_id, f),
        }
    }
}

/// The result code for a sink's failure.
fn result_of(e: &SinkError) -> msrp_result {
    match e {
        SinkError::TooLarge(_) => msrp_result::TooLarge,
        SinkError::Io(_) => msrp_result::Io,
    }
}

/// Reports a message whose sink failed to `on_incomplete`.
fn failed(cbs: &msrp_session_callbacks, ud: UserData, message_id: &str, f: Failed) {
    let why = f.error.to_string();
    let code = result_of(&f.error);
    incomplete(
        cbs,
        ud,
        Some(&f.head),
        message_id,
        f.received,
        f.total,
        code,
        &why,
    );
}

/// Calls `on_incomplete`.
#[allow(clippy::too_many_arguments)]
pub(super) fn incomplete(
    cbs: &msrp_session_callbacks,
    ud: UserData,
    head: Option<&Chunk>,
    message_id: &str,
    received: u64,
    total: Option<u64>,
    reason: msrp_result,
    why: &str,
) {
    let Some(f) = cbs.on_incomplete else { return };
    let m = cstring(message_id);
    let w = cstring(why);
    let h = head.map(|c| msrp_chunk { inner: c.clone() });
    let hp = h
        .as_ref()
        .map_or(std::ptr::null(), |h| h as *const msrp_chunk);
    let t = total.unwrap_or(MSRP_BYTE_RANGE_UNKNOWN);
    // SAFETY: the application's callback; valid pointers during the call.
    unsafe { f(ud.ptr(), hp, m.as_ptr(), received, t, reason, w.as_ptr()) }
}
