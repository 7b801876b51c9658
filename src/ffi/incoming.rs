//! C API for incoming messages that go to a sink (`msrp_incoming`, chosen
//! in `on_message_start`): a file, a descriptor, an application callback,
//! or memory; and the session's delivery jobs that write their chunks and
//! report progress, the end or a failure. The writing, the bookkeeping and
//! the limits are [`crate::engine::sink`]'s; this file converts.

use std::ffi::{c_char, c_void};

use super::callback::UserData;
use super::error::{FfiError, msrp_result};
use super::handle::text;
use super::panic::run;

/// Where one incoming message goes, chosen in `on_message_start` (see
/// `msrp_session_callbacks`); valid only during that call.
pub struct msrp_incoming {
    pub(super) choice: Option<Choice>,
}

/// What the application chose for an incoming message.
pub(super) enum Choice {
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
