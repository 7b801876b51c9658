//! C API for outgoing messages of a session (reference `send_message`,
//! `send_file` with `OutgoingFile`): their options and callbacks, the
//! sources of files (path, descriptor, read callback), cancelling them.

use std::ffi::{c_char, c_void};
use std::io::{Seek, SeekFrom};

use super::callback::UserData;
use super::chunk::{msrp_report, msrp_report_arg};
use super::error::{FfiError, msrp_result};
use super::handle::{borrow, bytes, opt_text, out_ok, text};
use super::panic::run;
use super::session::msrp_session;
use super::session_callbacks::msrp_message_callbacks;
use super::session_events::{MsgCbs, lock};
use crate::engine::session::{PathSupplier, ReadSupplier, Reader, Supplier, read_full};
use crate::proto::header::ReportMode;
use crate::proto::session::{OutgoingMessage, Piece, SendRefused, Source};

/// An extra header for an outgoing message's chunks (name and value,
/// NUL-terminated), e.g. `Content-ID` or an extension header.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct msrp_extra_header {
    /// Header name (e.g. "Content-ID").
    pub name: *const c_char,
    /// Header value.
    pub value: *const c_char,
}

/// Options of an outgoing message; start from `msrp_message_options_default()`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct msrp_message_options {
    /// Message-ID (NULL: a random one).
    pub message_id: *const c_char,
    /// Ask for a success REPORT (Success-Report: yes).
    pub success_report: bool,
    /// Failure-Report (an `msrp_report`; default `MSRP_REPORT_YES`).
    pub failure_report: msrp_report_arg,
    /// Content-Disposition header (NULL: none), e.g. "attachment; filename=\"a.txt\"".
    pub content_disposition: *const c_char,
    /// Further headers for every chunk of the message (Content-ID,
    /// Content-Description, extension headers; NULL when `headers_len` is 0).
    /// To-Path, From-Path, Message-ID, Byte-Range, the report headers and
    /// Content-Type are the session's and are refused here.
    pub headers: *const msrp_extra_header,
    /// Number of entries in `headers`.
    pub headers_len: usize,
}

/// The default message options.
#[unsafe(no_mangle)]
pub extern "C" fn msrp_message_options_default() -> msrp_message_options {
    msrp_message_options {
        message_id: std::ptr::null(),
        success_report: false,
        failure_report: msrp_report_arg(msrp_report::Yes as u32),
        content_disposition: std::ptr::null(),
        headers: std::ptr::null(),
        headers_len: 0,
    }
}

/// Reads file data for `msrp_session_send_file`: fill up to `len` bytes at
/// `buf` and return how many (0 at the end, `SIZE_MAX` on error). Runs on a
/// libmsrp thread that runs connections (also with `queued_callbacks`): a
/// read that waits holds up that thread's other connections, so give bytes
/// from memory or a local file, not from the network. On entry `buf` holds
/// zeros or bytes this callback gave earlier for the same message (buffers
/// are reused within a message, never across messages).
pub type msrp_read_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, buf: *mut u8, len: usize) -> usize>;

/// An outgoing file (reference `OutgoingFile`): from `path`, else from `fd`
/// (when >= 0; libmsrp reads a duplicate and leaves yours open), else from
/// the `read` callback.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct msrp_outgoing_file {
    /// File to send (NULL: use `fd` or `read`).
    pub path: *const c_char,
    /// Open descriptor to read from (Unix; -1: none).
    pub fd: i32,
    /// Read callback (used when `path` is NULL and `fd` < 0).
    pub read: msrp_read_fn,
    /// Userdata for `read`.
    pub read_userdata: *mut c_void,
    /// Total size of the whole file; 0: taken from the file, or unknown (`*`) with a read callback.
    pub size: u64,
    /// Resume: the first byte to send (0-based); a file or descriptor is
    /// positioned there, a read callback must start there itself.
    pub position: u64,
    /// Content-Type (NULL: application/octet-stream).
    pub content_type: *const c_char,
}

/// Queues `m` and writes its handle to `out` (may be NULL) before any of
/// its chunks can leave: the writer waits for the session's lock, held
/// here, so no callback about the message runs before `*out` is set.
///
/// # Safety
/// `cbs` is NULL or readable; `out` is NULL or writable.
pub(crate) unsafe fn register_message(
    s: &msrp_session,
    mut m: OutgoingMessage,
    reader: Option<Reader>,
    cbs: *const msrp_message_callbacks,
    userdata: *mut c_void,
    out: *mut u64,
    imdn_id: Option<String>,
) -> Result<(), FfiError> {
    // What the peer's SDP allows (RFC 4975 §8.6, max-size): refused before
    // anything is queued.
    let size = match &m.source {
        Source::Bytes(b) => Some(m.start + b.len() as u64),
        Source::Shared(b) => Some(m.start + b.len() as u64),
        Source::Supplied => m.size,
    };
    s.driver
        .with_any(|sess| sess.check_outgoing(&m.content_type, size))
        .map_err(refused)?;
    if !super::composing::is_composing_type(&m.content_type) {
        s.composing.message_sent();
    }
    // SAFETY: caller contract of the exported functions.
    let cbs = unsafe { cbs.as_ref() }.copied().unwrap_or_default();
    let reg = s.registry.clone();
    let ud = UserData(userdata);
    let reports = cbs.on_report.is_some();
    let notified = cbs.on_notification.is_some();
    let listen = cbs.on_progress.is_some() || cbs.on_done.is_some() || reports || notified;
    // Nobody listens: the session makes no events for it at all; without
    // on_progress, no progress events (one per chunk, each a hand-off to
    // the event task for nothing).
    m.quiet = !listen;
    m.no_progress = cbs.on_progress.is_none();
    let register = move |sess: &mut crate::proto::session::Session, id| {
        if listen {
            let mid = sess.message_id_of(id).filter(|_| reports);
            let mut r = lock(&reg);
            r.listen(id, MsgCbs { cbs, ud }, mid);
            if let Some(i) = imdn_id.as_deref().filter(|_| notified) {
                r.listen_notifications(i, id, MsgCbs { cbs, ud });
            }
        }
        if !out.is_null() {
            // SAFETY: non-NULL and writable per the contract.
            unsafe { out.write(id) };
        }
        #[cfg(test)]
        super::session::tests::pause_before_publishing();
    };
    match reader {
        Some(r) => s.driver.send_from(m, r, register)?,
        None => s.driver.with(move |sess| {
            let id = sess.send_message(m);
            register(sess, id)
        })?,
    }
    Ok(())
}

/// Why the peer's SDP does not allow a message, as a result.
pub(crate) fn refused(e: SendRefused) -> FfiError {
    let code = match e {
        SendRefused::NotAccepted(_) => msrp_result::NotAcceptedByPeer,
        SendRefused::TooLarge { .. } => msrp_result::PeerMaxSize,
    };
    FfiError::new(code, e.to_string())
}

/// Sends a message the library makes itself (a notification, a typing
/// indication) on `driver`'s session: checked against the peer's SDP, no
/// events for it.
pub(crate) fn send_quiet(
    driver: &crate::engine::session::SessionDriver,
    content_type: &str,
    body: Vec<u8>,
    failure_report: ReportMode,
) -> Result<(), FfiError> {
    driver
        .with_any(|s| s.check_outgoing(content_type, Some(body.len() as u64)))
        .map_err(refused)?;
    let m = OutgoingMessage {
        failure_report,
        quiet: true,
        no_progress: true,
        ..OutgoingMessage::from_bytes(content_type, body)
    };
    driver.with(|s| {
        s.send_message(m);
    })?;
    Ok(())
}

/// The options of an outgoing message, read from C.
pub(crate) struct MsgOpts {
    message_id: Option<String>,
    success_report: bool,
    failure_report: ReportMode,
    headers: Vec<(String, String)>,
}

impl MsgOpts {
    pub(crate) fn message(
        self,
        content_type: String,
        source: Source,
        size: Option<u64>,
        start: u64,
    ) -> OutgoingMessage {
        OutgoingMessage {
            message_id: self.message_id,
            content_type,
            headers: self.headers,
            source,
            size,
            start,
            success_report: self.success_report,
            failure_report: self.failure_report,
            quiet: false,
            no_progress: false,
        }
    }
}

pub(crate) unsafe fn message_opts(o: *const msrp_message_options) -> Result<MsgOpts, FfiError> {
    // SAFETY: caller contract.
    let o = unsafe { o.as_ref() }
        .copied()
        .unwrap_or_else(|| msrp_message_options_default());
    let fr = match o.failure_report.0 {
        0 => ReportMode::No,
        1 => ReportMode::Yes,
        2 => ReportMode::Partial,
        v => {
            return Err(FfiError::new(
                msrp_result::InvalidArgument,
                format!("failure_report {v} is not an msrp_report value"),
            ));
        }
    };
    // SAFETY: caller contract.
    let id = unsafe { opt_text(o.message_id, "options.message_id") }?.map(str::to_owned);
    if let Some(i) = &id {
        if !crate::proto::header::is_ident(i) {
            return Err(FfiError::new(
                msrp_result::InvalidHeader,
                "options.message_id must be 4 to 32 ident characters",
            ));
        }
    }
    let mut headers = Vec::new();
    // SAFETY: caller contract.
    if let Some(d) = unsafe { opt_text(o.content_disposition, "options.content_disposition") }? {
        crate::proto::header::validate(crate::proto::HeaderName::ContentDisposition, d)?;
        headers.push(("Content-Disposition".to_owned(), d.to_owned()));
    }
    if o.headers_len > 0 {
        if o.headers.is_null() {
            return Err(FfiError::null("options.headers"));
        }
        // SAFETY: caller contract: `headers_len` readable entries.
        let list = unsafe { std::slice::from_raw_parts(o.headers, o.headers_len) };
        for h in list {
            // SAFETY: caller contract.
            let name = unsafe { text(h.name, "options.headers[].name") }?;
            // SAFETY: caller contract.
            let value = unsafe { text(h.value, "options.headers[].value") }?;
            crate::proto::session::check_extra_header(name, value)?;
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    Ok(MsgOpts {
        message_id: id,
        success_report: o.success_report,
        failure_report: fr,
        headers,
    })
}

fn check_content_type(ct: &str) -> Result<(), FfiError> {
    crate::proto::header::validate(crate::proto::HeaderName::ContentType, ct)?;
    Ok(())
}

/// Queues a message of `len` bytes (copied; see
/// `msrp_session_send_message_nocopy` for large buffers) with `content_type`, and
/// returns at once; it is cut into chunks and interleaved with other
/// messages (small ones never wait behind large ones). `options` and
/// `callbacks` may be NULL; `*message` (may be NULL) gets the message's
/// handle, as passed to the callbacks and to `msrp_session_cancel`; it is
/// written before any callback about the message can run.
///
/// # Safety
/// `s` is NULL or live; `data` points to `len` bytes; strings are NULL or
/// NUL-terminated; callbacks and userdata may be used from libmsrp's threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_send_message(
    s: *const msrp_session,
    data: *const u8,
    len: usize,
    content_type: *const c_char,
    options: *const msrp_message_options,
    callbacks: *const msrp_message_callbacks,
    userdata: *mut c_void,
    message: *mut u64,
) -> msrp_result {
    run(|| {
        let body = || {
            // SAFETY: caller contract.
            let data = unsafe { bytes(data, len, "data") }?;
            Ok(Source::Bytes(crate::proto::bufpool::copy_of(data)))
        };
        // SAFETY: caller contract.
        unsafe { queue_bytes(s, body, content_type, options, callbacks, userdata, message) }
    })
}

/// What both `msrp_session_send_message` calls do once their bytes are
/// ready: the session, the body (`body`), content type and options are
/// checked in that order, then the message is queued.
///
/// # Safety
/// As `msrp_session_send_message`.
unsafe fn queue_bytes(
    s: *const msrp_session,
    body: impl FnOnce() -> Result<Source, FfiError>,
    content_type: *const c_char,
    options: *const msrp_message_options,
    callbacks: *const msrp_message_callbacks,
    userdata: *mut c_void,
    message: *mut u64,
) -> Result<(), FfiError> {
    // SAFETY: caller contract.
    let s = unsafe { borrow(s, "s") }?;
    let body = body()?;
    // SAFETY: caller contract.
    let ct = unsafe { text(content_type, "content_type") }?.to_owned();
    check_content_type(&ct)?;
    // SAFETY: caller contract.
    let opts = unsafe { message_opts(options) }?;
    let m = opts.message(ct, body, None, 0);
    // SAFETY: caller contract.
    unsafe { register_message(s, m, None, callbacks, userdata, message, None) }
}

/// The application's buffer of a message sent without a copy: read while
/// the message is sent, given back with `release` when dropped.
struct Lent {
    data: *const u8,
    len: usize,
    release: super::logger::msrp_userdata_free_fn,
    userdata: *mut c_void,
}

// SAFETY: the application promises (header) that the buffer stays valid and
// unchanged until `release`, and that `release` may run on any thread.
unsafe impl Send for Lent {}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: caller contract (valid and unchanged until released).
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(f) = self.release.take() {
            // SAFETY: the application's function with its userdata, once.
            unsafe { f(self.userdata) };
        }
    }
}

/// As `msrp_session_send_message`, without copying `data`: libmsrp reads
/// the `len` bytes there while it sends the message and calls
/// `release(release_userdata)` once it no longer will — after the message
/// was sent, refused or cancelled, or when the session is freed. `release`
/// is called exactly once whatever this returns (at once, on this thread,
/// when the call fails), so the buffer is never the caller's to free after
/// the call; until `release` runs it must stay valid and unchanged.
/// `release` may be NULL (a buffer that outlives the session) and may be
/// called on a libmsrp thread, before or after the message's `on_done`. For
/// large messages this saves a copy and, for fresh memory, its page faults
/// (docs/performance.md).
///
/// # Safety
/// As `msrp_session_send_message`; `data` stays valid and unchanged until
/// `release` is called; `release` may be called from libmsrp's threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_send_message_nocopy(
    s: *const msrp_session,
    data: *const u8,
    len: usize,
    release: super::logger::msrp_userdata_free_fn,
    release_userdata: *mut c_void,
    content_type: *const c_char,
    options: *const msrp_message_options,
    callbacks: *const msrp_message_callbacks,
    userdata: *mut c_void,
    message: *mut u64,
) -> msrp_result {
    // Owned from here on: every return below drops it (and so releases it)
    // unless the message took it.
    let lent = Lent {
        data,
        len,
        release,
        userdata: release_userdata,
    };
    run(move || {
        let body = move || {
            // SAFETY: caller contract (checks `data` against `len`).
            unsafe { bytes(data, len, "data") }?;
            Ok(Source::Shared(bytes::Bytes::from_owner(lent)))
        };
        // SAFETY: caller contract.
        unsafe { queue_bytes(s, body, content_type, options, callbacks, userdata, message) }
    })
}

/// A read callback's message. Each piece is read into a buffer of the
/// message's own: a buffer that comes back after its piece was written is
/// read into again as it is, and one new to the message is zeroed first.
/// So a callback that reports more bytes than it wrote sends zeros or
/// bytes it gave earlier for the same message, never another message's or
/// session's. (Zeroing every piece cost bulk transfers about a tenth of
/// their speed, see docs/performance.md.)
struct CRead {
    f: unsafe extern "C" fn(*mut c_void, *mut u8, usize) -> usize,
    ud: UserData,
    bufs: std::sync::Arc<crate::proto::bufpool::Private>,
}

impl std::io::Read for CRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: the application's read callback with a valid buffer.
        let n = unsafe { (self.f)(self.ud.0, buf.as_mut_ptr(), buf.len()) };
        if n == usize::MAX || n > buf.len() {
            return Err(std::io::Error::other("the read callback reported an error"));
        }
        Ok(n)
    }
}

impl Supplier for CRead {
    fn next_piece(&mut self, want: usize) -> std::io::Result<Piece> {
        let mut buf = self.bufs.take(want);
        let got = read_full(self, &mut buf)?;
        Ok(Piece::Shared(self.bufs.lend(buf, got)))
    }
}

/// Reference `send_file` with `OutgoingFile`: queues a file (from a path, a
/// descriptor or a read callback) and returns at once. It is read as its
/// chunks are sent, at most 256 KiB ahead, on a libmsrp thread with the
/// session unlocked (a read callback may call the session's functions), so
/// memory stays bounded whatever its size; `position`
/// resumes a transfer. A file given by `path` must open now (else
/// `MSRP_RESULT_IO`), but is opened again only when its turn to be sent
/// comes, so queued files hold no descriptors and any number can wait; a
/// descriptor is duplicated now. Progress and the final status reach
/// `callbacks`; `*message` (may be NULL) gets the handle as for
/// `msrp_session_send_message`.
///
/// # Safety
/// `s` and `file` are NULL or live; strings NULL or NUL-terminated; `read`,
/// callbacks and userdata may be used from libmsrp's threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_send_file(
    s: *const msrp_session,
    file: *const msrp_outgoing_file,
    options: *const msrp_message_options,
    callbacks: *const msrp_message_callbacks,
    userdata: *mut c_void,
    message: *mut u64,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let f = unsafe { borrow(file, "file") }?;
        // SAFETY: caller contract.
        let ct = unsafe { opt_text(f.content_type, "file.content_type") }?
            .unwrap_or("application/octet-stream")
            .to_owned();
        check_content_type(&ct)?;
        // SAFETY: caller contract.
        let opts = unsafe { message_opts(options) }?;
        let io =
            |e: std::io::Error, what: &str| FfiError::new(msrp_result::Io, format!("{what}: {e}"));
        // SAFETY: caller contract.
        let (reader, size) = if let Some(p) = unsafe { opt_text(f.path, "file.path") }? {
            // Checked now, opened again when its turn comes (a queued file
            // holds no descriptor).
            let file = std::fs::File::open(p).map_err(|e| io(e, &format!("cannot open '{p}'")))?;
            let len = file
                .metadata()
                .map_err(|e| io(e, "cannot read the file's size"))?
                .len();
            let size = if f.size == 0 { len } else { f.size };
            (
                Box::new(PathSupplier::new(p, f.position, size)) as Reader,
                Some(size),
            )
        } else if f.fd >= 0 {
            #[cfg(unix)]
            {
                use std::os::fd::BorrowedFd;
                // SAFETY: the caller promises `fd` is an open descriptor for the duration of the call.
                let owned = unsafe { BorrowedFd::borrow_raw(f.fd) }
                    .try_clone_to_owned()
                    .map_err(|e| io(e, "cannot duplicate the descriptor"))?;
                let mut file = std::fs::File::from(owned);
                let len = match f.size {
                    0 => file
                        .metadata()
                        .map_err(|e| io(e, "cannot read the file's size"))?
                        .len(),
                    n => n,
                };
                file.seek(SeekFrom::Start(f.position))
                    .map_err(|e| io(e, "cannot seek to the start position"))?;
                (Box::new(ReadSupplier(file)) as Reader, Some(len))
            }
            #[cfg(not(unix))]
            return Err(FfiError::new(
                msrp_result::Unsupported,
                "file descriptors are only supported on Unix",
            ));
        } else if let Some(rf) = f.read {
            let r = CRead {
                f: rf,
                ud: UserData(f.read_userdata),
                bufs: crate::proto::bufpool::Private::new(),
            };
            (Box::new(r) as Reader, (f.size != 0).then_some(f.size))
        } else {
            return Err(FfiError::new(
                msrp_result::InvalidArgument,
                "the file has no path, no descriptor and no read callback",
            ));
        };
        if size.is_some_and(|n| f.position > n) {
            return Err(FfiError::new(
                msrp_result::InvalidArgument,
                "position is past the end of the file",
            ));
        }
        let m = opts.message(ct, Source::Supplied, size, f.position);
        // SAFETY: caller contract.
        unsafe { register_message(s, m, Some(reader), callbacks, userdata, message, None) }
    })
}

/// The Message-ID of an outgoing message (the handle from
/// `msrp_session_send_message` or `msrp_session_send_file`) into `*out`
/// (free with `msrp_string_free`), while it is being sent — until its
/// `on_done`, which carries it too. `MSRP_RESULT_NOT_FOUND` after that.
///
/// # Safety
/// `s` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_message_id(
    s: *const msrp_session,
    message: u64,
    out: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        let mid = s
            .driver
            .with_any(|sess| sess.message_id_of(message).map(str::to_owned));
        let mid = mid.ok_or_else(|| {
            FfiError::new(
                msrp_result::NotFound,
                format!("message {message} is not being sent"),
            )
        })?;
        // SAFETY: checked non-NULL.
        unsafe { super::handle::write_string(out, &mid, "out") }
    })
}

/// Cancels an outgoing message: no more of its chunks are sent; if some
/// were, the peer gets a chunk with the '#' flag. Its `on_done` reports code
/// 0. `MSRP_RESULT_NOT_FOUND` when it already finished.
///
/// # Safety
/// `s` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_cancel(s: *const msrp_session, message: u64) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        if s.driver.with(|sess| sess.cancel(message))? {
            Ok(())
        } else {
            Err(FfiError::new(
                msrp_result::NotFound,
                format!("message {message} is not being sent"),
            ))
        }
    })
}
