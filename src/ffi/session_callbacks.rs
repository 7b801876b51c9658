//! The callbacks an application gives a session and its outgoing messages,
//! and the owner of their userdata (released once, after the last callback).

use std::ffi::{c_char, c_void};

use super::chunk::msrp_chunk;
use super::cpim::msrp_cpim;
use super::error::msrp_result;
use super::im::msrp_imdn_kind;
use super::incoming::msrp_incoming;
use super::logger::msrp_userdata_free_fn;

/// Session callbacks (reference `on_incoming_cb`). Any may be NULL. They run
/// on a libmsrp thread, or from `msrp_context_dispatch` with queued callbacks;
/// they may call any non-blocking libmsrp function, this session's included.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct msrp_session_callbacks {
    /// A whole incoming message: `head` holds its first chunk's headers
    /// (Content-Type, Message-ID, …); `data` its bytes. Both valid during the call.
    pub on_message: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            head: *const msrp_chunk,
            data: *const u8,
            len: usize,
        ),
    >,
    /// An accepted incoming request handed over as it came (SEND chunks in
    /// streaming mode, NICKNAME). The chunk is yours: free it. (Free it
    /// soon, or copy what you need: see `msrp_chunk` on the memory a
    /// received chunk can keep.)
    pub on_chunk: Option<unsafe extern "C" fn(userdata: *mut c_void, chunk: *mut msrp_chunk)>,
    /// An incoming REPORT (Message-ID, Byte-Range and Status tell which
    /// message and how it went). The chunk is yours: free it.
    pub on_report: Option<unsafe extern "C" fn(userdata: *mut c_void, report: *mut msrp_chunk)>,
    /// The sender aborted an incoming message (flag '#').
    pub on_aborted: Option<unsafe extern "C" fn(userdata: *mut c_void, message_id: *const c_char)>,
    /// The session ended (peer closed, error, shutdown or free): called once,
    /// last; `userdata_free` runs after it.
    pub on_closed: Option<
        unsafe extern "C" fn(userdata: *mut c_void, reason: msrp_result, message: *const c_char),
    >,
    /// An incoming message that will not complete: it got no chunk for
    /// `incomplete_timeout_ms` (`reason` `MSRP_RESULT_TIMEOUT`; its later
    /// chunks get 413), the session closed first (`MSRP_RESULT_CLOSED`;
    /// called before `on_closed`, once for each such message), or its sink
    /// failed (`MSRP_RESULT_IO` when writing failed, `MSRP_RESULT_TOO_LARGE`
    /// when it went to memory and passed the session's limits; its later
    /// chunks get 413). `head` holds the headers of its first chunk that
    /// arrived (NULL when none did), `received` the bytes that did, `total`
    /// its size (`MSRP_BYTE_RANGE_UNKNOWN` when not known), `why` says what
    /// happened. A file it was written to is left as it is. Pointers are
    /// valid during the call.
    pub on_incomplete: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            head: *const msrp_chunk,
            message_id: *const c_char,
            received: u64,
            total: u64,
            reason: msrp_result,
            why: *const c_char,
        ),
    >,
    /// Set it to choose where incoming messages that arrive in more than
    /// one chunk, or in one chunk of more than 64 KiB, go (files of any
    /// size): it is called when such a message's first chunk arrived, with that chunk's headers (Content-Type,
    /// Content-Disposition, …), the Message-ID and the total size
    /// (`MSRP_BYTE_RANGE_UNKNOWN` when not announced). During the call,
    /// choose with one of `msrp_incoming_to_path`, `msrp_incoming_to_fd`,
    /// `msrp_incoming_to_callback` or `msrp_incoming_refuse` on `in` (valid
    /// only during the call). Without a choice the message is reassembled
    /// in memory and reaches `on_message`, within `max_message_size` and
    /// `max_receive_memory`. A message that goes to a file or a callback
    /// has no size limit; progress goes to `on_incoming_progress`, the end
    /// to `on_message_saved`, a failure to
    /// `on_incomplete`. When NULL (the default), every message is
    /// reassembled in memory as before. Ignored in streaming mode.
    pub on_message_start: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            head: *const msrp_chunk,
            message_id: *const c_char,
            total: u64,
            r#in: *mut msrp_incoming,
        ),
    >,
    /// Bytes of an incoming message chosen in `on_message_start` received
    /// and written so far, and its total (`MSRP_BYTE_RANGE_UNKNOWN` when not
    /// known). Called after each chunk's bytes were written.
    pub on_incoming_progress: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            message_id: *const c_char,
            received: u64,
            total: u64,
        ),
    >,
    /// An incoming message that went to a file, a descriptor or a callback
    /// is complete: every byte was written (a file opened by
    /// `msrp_incoming_to_path` is closed). `head` holds its first chunk's
    /// headers; valid during the call.
    pub on_message_saved: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            head: *const msrp_chunk,
            message_id: *const c_char,
            size: u64,
        ),
    >,
    /// A whole incoming `message/cpim` message (RFC 3862), read: its
    /// headers and content in `message`, valid during the call (answer it
    /// with `msrp_session_send_imdn` from here, or keep a copy with
    /// `msrp_cpim_encode` / `msrp_cpim_parse`). When set, `message/cpim`
    /// messages come here instead of `on_message`; a body that is not
    /// valid CPIM still goes to `on_message` as it is. IMDNs about messages
    /// sent with `msrp_session_send_cpim` go to those messages'
    /// `on_notification` instead.
    pub on_cpim: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            head: *const msrp_chunk,
            message: *const msrp_cpim,
        ),
    >,
    /// The peer started (`active` true) or stopped composing a message
    /// (RFC 3994): on its `active` indication, and on its `idle`, its next
    /// message or when its refresh ran out (120 s without one).
    /// `content_type` (may be NULL) is what it composes, when it said.
    /// When set, is-composing indications (`application/im-iscomposing+xml`,
    /// also inside CPIM) come here instead of `on_message` / `on_cpim`.
    pub on_composing: Option<
        unsafe extern "C" fn(userdata: *mut c_void, active: bool, content_type: *const c_char),
    >,
    /// With `nickname_by_application` (a chat-room focus, RFC 7701 §7.1):
    /// a participant asks for `nickname` (unquoted); answer with
    /// `msrp_session_answer_nickname(session, transaction_id, code, …)`,
    /// here or later. Both strings are valid during the call. Malformed
    /// requests were already answered (400, 424).
    pub on_nickname: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            transaction_id: *const c_char,
            nickname: *const c_char,
        ),
    >,
}

/// Called once with the response to a chunk from `msrp_session_send_chunk`:
/// the peer's code, or a local one (`local` true): 408 at the response
/// timeout when Failure-Report is yes, 200 when partial or no, 0 when the
/// session closed first.
pub type msrp_response_cb = Option<
    unsafe extern "C" fn(userdata: *mut c_void, code: u16, comment: *const c_char, local: bool),
>;

pub(crate) struct Owner {
    pub(crate) ud: *mut c_void,
    pub(crate) free: msrp_userdata_free_fn,
}

/// Per-message callbacks for `msrp_session_send_message` and `msrp_session_send_file`.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct msrp_message_callbacks {
    /// Bytes sent and acknowledged so far (counting from the start position),
    /// and the total (`MSRP_BYTE_RANGE_UNKNOWN` when not known).
    pub on_progress: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            message: u64,
            sent: u64,
            acked: u64,
            total: u64,
        ),
    >,
    /// Called once at the end, with the message's Message-ID: 200 when every
    /// chunk was accepted; otherwise the peer's error code, 408 on timeout,
    /// 0 when cancelled or closed.
    pub on_done: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            message: u64,
            message_id: *const c_char,
            code: u16,
            comment: *const c_char,
        ),
    >,
    /// A REPORT about this message (its Message-ID), from the peer or a
    /// relay: success REPORTs (asked for with `success_report`) and failure
    /// REPORTs. `report` is valid during the call (the session's
    /// `on_report` gets the same REPORT afterwards, to keep). It may run
    /// after `on_done` (a success REPORT usually comes after the last 200):
    /// with `on_report` set, `userdata` must stay valid until a success
    /// REPORT for the whole message came, or the session closed. The
    /// session remembers the 1024 most recent finished messages for this.
    pub on_report: Option<
        unsafe extern "C" fn(userdata: *mut c_void, message: u64, report: *const msrp_chunk),
    >,
    /// An IMDN (RFC 5438) about this message, sent with
    /// `msrp_session_send_cpim` and IMDN requests: `imdn_message_id` is
    /// the message's `imdn.Message-ID`, `status` the status element
    /// (`delivered`, `displayed`, `failed`, …); both valid during the call.
    /// Runs after `on_done` too: with it set, `userdata` must stay valid
    /// until the notifications you wait for came or the session closed
    /// (the session remembers the 1024 most recent such messages).
    pub on_notification: Option<
        unsafe extern "C" fn(
            userdata: *mut c_void,
            message: u64,
            imdn_message_id: *const c_char,
            kind: msrp_imdn_kind,
            status: *const c_char,
        ),
    >,
}

// SAFETY: the application promised its userdata may be used from libmsrp's threads.
unsafe impl Send for Owner {}
// SAFETY: as above; libmsrp only passes the pointer back.
unsafe impl Sync for Owner {}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(f) = self.free {
            // SAFETY: the application's finalizer, once.
            unsafe { f(self.ud) };
        }
    }
}
