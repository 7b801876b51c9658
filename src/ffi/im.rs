//! C API for instant messaging on a session: sending `message/cpim` with
//! IMDN requests (RFC 3862, RFC 5438), answering with notifications, and
//! routing incoming CPIM and IMDNs to the application's callbacks.

use std::ffi::{c_char, c_void};
use std::sync::{Arc, Mutex};

use super::callback::{UserData, cstring};
use super::chunk::msrp_chunk;
use super::cpim::msrp_cpim;
use super::error::{FfiError, msrp_result};
use super::handle::{borrow, text};
use super::message::{message_opts, refused, register_message, send_quiet};
use super::panic::run;
use super::session::msrp_session;
use super::session_callbacks::{msrp_message_callbacks, msrp_session_callbacks};
use super::session_events::{MsgCbs, Registry, lock};
use crate::engine::session::SessionDriver;
use crate::proto::Chunk;
use crate::proto::cpim::Cpim;
use crate::proto::header::ReportMode;
use crate::proto::imdn::{self, Disposition, Notification, Request};
use crate::proto::session::{Source, is_media_type};

/// The kind of an IMDN (RFC 5438 §5).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum msrp_imdn_kind {
    /// A delivery notification (`delivered`, `failed`, `forbidden`, `error`).
    Delivery = 0,
    /// A display notification (`displayed`, `forbidden`, `error`).
    Display = 1,
    /// A processing notification, from intermediaries (`processed`,
    /// `stored`, `forbidden`, `error`).
    Processing = 2,
}

/// An `msrp_imdn_kind` as C passes it (a value outside the enum is an
/// argument error).
#[repr(transparent)]
#[derive(Clone, Copy, Debug)]
pub struct msrp_imdn_kind_arg(pub u32);

/// Ask for a positive delivery notification (`msrp_session_send_cpim`).
pub const MSRP_IMDN_POSITIVE_DELIVERY: u32 = 1;
/// Ask for a negative delivery notification.
pub const MSRP_IMDN_NEGATIVE_DELIVERY: u32 = 2;
/// Ask for a display notification.
pub const MSRP_IMDN_DISPLAY: u32 = 4;

fn kind_of(d: Disposition) -> msrp_imdn_kind {
    match d {
        Disposition::Delivery => msrp_imdn_kind::Delivery,
        Disposition::Display => msrp_imdn_kind::Display,
        Disposition::Processing => msrp_imdn_kind::Processing,
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Queues the CPIM message `m` as `message/cpim` (Content-Type of the SEND),
/// with the IMDN requests in `imdn` (`MSRP_IMDN_*` flags, 0: none): then
/// `imdn.Message-ID` (random, unless `m` has one), `DateTime` (unless `m`
/// has one) and `imdn.Disposition-Notification` are added to the copy that
/// is sent, and the notifications that come back reach `callbacks`'
/// `on_notification` (for the 1024 most recent such messages). `m` is
/// copied and stays yours. Refused at once with
/// `MSRP_RESULT_NOT_ACCEPTED_BY_PEER` when the peer's SDP accepts neither
/// `message/cpim` nor, inside it, the content's type (session options
/// `peer_accept_types`, `peer_accept_wrapped_types`). Otherwise as
/// `msrp_session_send_message`.
///
/// # Safety
/// As for `msrp_session_send_message`; `m` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_send_cpim(
    s: *const msrp_session,
    m: *const msrp_cpim,
    imdn: u32,
    options: *const super::message::msrp_message_options,
    callbacks: *const msrp_message_callbacks,
    userdata: *mut c_void,
    message: *mut u64,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let mut c = unsafe { borrow(m, "m") }?.inner.clone();
        if imdn & !(MSRP_IMDN_POSITIVE_DELIVERY | MSRP_IMDN_NEGATIVE_DELIVERY | MSRP_IMDN_DISPLAY)
            != 0
        {
            return Err(FfiError::new(
                msrp_result::InvalidArgument,
                format!("imdn {imdn:#x} holds bits that are not MSRP_IMDN_* flags"),
            ));
        }
        let inner_type = c.content_type().unwrap_or("").to_owned();
        s.driver
            .with_any(|sess| sess.check_wrapped(&inner_type))
            .map_err(refused)?;
        let req = Request {
            positive_delivery: imdn & MSRP_IMDN_POSITIVE_DELIVERY != 0,
            negative_delivery: imdn & MSRP_IMDN_NEGATIVE_DELIVERY != 0,
            display: imdn & MSRP_IMDN_DISPLAY != 0,
            processing: false,
        };
        let imdn_id = if req.any() {
            let fresh = crate::proto::ids::message_id().to_string();
            imdn::request(&mut c, req, &fresh, now_unix());
            c.header_in(imdn::IMDN_NS, "Message-ID").map(|h| h.text())
        } else {
            None
        };
        // SAFETY: caller contract.
        let opts = unsafe { message_opts(options) }?;
        let out = opts.message("message/cpim".into(), Source::Bytes(c.to_bytes()), None, 0);
        // SAFETY: caller contract.
        unsafe { register_message(s, out, None, callbacks, userdata, message, imdn_id) }
    })
}

/// Sends the IMDN of `kind` with `status` about the received message `im`
/// (RFC 5438 §7.2.1): its `imdn.Message-ID` and `DateTime`, From and To
/// swapped, `IMDN-Record-Route` copied to `IMDN-Route`. `status` must be
/// one §11.1.7 allows for `kind` (`delivered`, `failed`, `displayed`,
/// `processed`, `stored`, `forbidden`, `error`). `MSRP_RESULT_NOT_FOUND`
/// when `im` carries no `imdn.Message-ID` (it asked for nothing). Call it
/// from `on_cpim` (with the message given there) or later with a message
/// you kept (`msrp_cpim_parse` of its body).
///
/// # Safety
/// `s` and `im` are NULL or live; `status` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_send_imdn(
    s: *const msrp_session,
    im: *const msrp_cpim,
    kind: msrp_imdn_kind_arg,
    status: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let im = unsafe { borrow(im, "im") }?;
        // SAFETY: caller contract.
        let status = unsafe { text(status, "status") }?;
        let d = match kind.0 {
            0 => Disposition::Delivery,
            1 => Disposition::Display,
            2 => Disposition::Processing,
            k => {
                return Err(FfiError::new(
                    msrp_result::InvalidArgument,
                    format!("{k} is not an msrp_imdn_kind"),
                ));
            }
        };
        send_notification(&s.driver, &im.inner, d, status)
    })
}

/// Sends the notification `d`/`status` about `im` on `driver`'s session.
pub(crate) fn send_notification(
    driver: &SessionDriver,
    im: &Cpim,
    d: Disposition,
    status: &str,
) -> Result<(), FfiError> {
    if !imdn::status_allowed(d, status) {
        return Err(FfiError::new(
            msrp_result::InvalidArgument,
            format!("'{status}' is not a status RFC 5438 §11.1.7 allows for this kind"),
        ));
    }
    let n = Notification::answering(im, d, status).ok_or_else(|| {
        FfiError::new(
            msrp_result::NotFound,
            "the message has no imdn.Message-ID: it asked for no notification",
        )
    })?;
    let id = crate::proto::ids::message_id().to_string();
    let body = n.wrap(im, &id, now_unix()).to_bytes();
    send_quiet(driver, "message/cpim", body, ReportMode::Yes)
}

/// Whether `head` announces `message/cpim`.
pub(crate) fn is_cpim(head: &Chunk) -> bool {
    head.content_type()
        .is_some_and(|t| is_media_type(t, "message/cpim"))
}

/// What the session does with an incoming `message/cpim` message: an IMDN
/// about a message sent with `msrp_session_send_cpim` goes to that
/// message's `on_notification`; a message asking for a positive delivery
/// notification gets one when `auto_delivery` holds the session's driver
/// (the option is on); the rest reaches
/// `on_cpim`. Returns the callback to run, or `None` when the body is not
/// CPIM or nobody takes it (the caller then gives it to `on_message` as it
/// is).
pub(crate) fn incoming_cpim(
    cbs: &msrp_session_callbacks,
    ud: UserData,
    registry: &Mutex<Registry>,
    auto_delivery: Option<Arc<SessionDriver>>,
    composing: &Arc<super::composing::Composing>,
    head: &Chunk,
    data: &[u8],
) -> Option<Box<dyn FnOnce() + Send>> {
    let c = Cpim::parse(data).ok()?;
    if composing.listens()
        && super::composing::is_composing_type(c.content_type().unwrap_or(""))
        && let Ok(doc) = crate::proto::iscomposing::IsComposing::parse(&c.content)
    {
        composing.status(&doc);
        return Some(Box::new(|| {}));
    }
    let is_imdn = c
        .content_type()
        .is_some_and(|t| is_media_type(t, imdn::IMDN_TYPE));
    if is_imdn && let Ok(n) = Notification::parse(&c.content) {
        let found = lock(registry).notification(&n.message_id);
        if let Some((
            msg,
            MsgCbs {
                cbs:
                    msrp_message_callbacks {
                        on_notification: Some(f),
                        ..
                    },
                ud: mud,
            },
        )) = found
        {
            return Some(Box::new(move || {
                let id = cstring(&n.message_id);
                let st = cstring(&n.status);
                // SAFETY: the application's callback with its userdata.
                unsafe {
                    f(
                        mud.ptr(),
                        msg,
                        id.as_ptr(),
                        kind_of(n.disposition),
                        st.as_ptr(),
                    )
                }
            }));
        }
    }
    if !is_imdn
        && imdn::requested(&c).positive_delivery
        && let Some(d) = auto_delivery
    {
        // A failure here (the session closing) leaves nothing to notify.
        let _ = send_notification(&d, &c, Disposition::Delivery, "delivered");
    }
    if !is_imdn {
        composing.peer_message();
    }
    let f = cbs.on_cpim?;
    let h = head.clone();
    Some(Box::new(move || {
        let h = msrp_chunk { inner: h };
        let m = msrp_cpim { inner: c };
        // SAFETY: valid pointers for the duration of the call.
        unsafe { f(ud.ptr(), &h, &m) }
    }))
}

/// Asks the chat room for `nickname` (RFC 7701 §7.1: a NICKNAME request
/// with `Use-Nickname`, quoted and escaped here, 1 to 1023 characters) and
/// returns at once; `cb` (may be NULL) gets the focus's answer: 200 (the
/// nickname is yours), 403 (nicknames not allowed), 423, 424 (malformed),
/// 425 (reserved or in use), or a local 408 / 0 as for
/// `msrp_session_send_chunk`.
///
/// # Safety
/// `s` is NULL or live; `nickname` is NULL or NUL-terminated; `cb` and
/// `userdata` may be used from libmsrp's threads.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_nickname(
    s: *const msrp_session,
    nickname: *const c_char,
    cb: super::session_callbacks::msrp_response_cb,
    userdata: *mut c_void,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let nick = unsafe { text(nickname, "nickname") }?;
        let n = nick.chars().count();
        if n == 0 || n > 1023 || nick.chars().any(|c| c.is_control() && c != '\t') {
            return Err(FfiError::new(
                msrp_result::InvalidArgument,
                "a nickname is 1 to 1023 characters without control characters (RFC 7701 §7.1)",
            ));
        }
        let quoted = format!("\"{}\"", nick.replace('\\', "\\\\").replace('"', "\\\""));
        let t = s.driver.transport();
        let mut c = Chunk::request("NICKNAME")?;
        c.set_to_path(&crate::proto::transport::outgoing_to_path(
            t.local_path(),
            t.remote_path(),
        ));
        c.set_from_path(crate::proto::transport::outgoing_from_path(t.local_path()));
        c.add_header_raw("Use-Nickname", &quoted)?;
        super::session::send_request(s, c, cb, userdata)
    })
}

/// Answers the NICKNAME request `transaction_id` given to `on_nickname`
/// with `code` (200 to grant it; 403, 423, 424 or 425 to refuse, RFC 7701
/// §7.1) and `comment` (may be NULL). `MSRP_RESULT_NOT_FOUND` when no such
/// request waits (answered already, or the session closed).
///
/// # Safety
/// `s` is NULL or live; the strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_session_answer_nickname(
    s: *const msrp_session,
    transaction_id: *const c_char,
    code: u16,
    comment: *const c_char,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let s = unsafe { borrow(s, "s") }?;
        // SAFETY: caller contract.
        let tx = unsafe { text(transaction_id, "transaction_id") }?;
        // SAFETY: caller contract.
        let comment = unsafe { super::handle::opt_text(comment, "comment") }?;
        if !matches!(code, 200 | 403 | 423 | 424 | 425) {
            return Err(FfiError::new(
                msrp_result::InvalidCode,
                format!("{code} is not an answer to NICKNAME (200, 403, 423, 424, 425)"),
            ));
        }
        let comment = comment.unwrap_or(match code {
            200 => "OK",
            403 => "Forbidden",
            423 => "Interval Out-of-Bounds",
            424 => "Malformed Nickname",
            _ => "Nickname reserved or already in use",
        });
        if comment.contains(['\r', '\n']) {
            return Err(FfiError::new(
                msrp_result::InvalidArgument,
                "the comment holds a line break",
            ));
        }
        let found = s
            .driver
            .with(|sess| sess.answer_nickname(tx, code, comment))?;
        if found {
            Ok(())
        } else {
            Err(FfiError::new(
                msrp_result::NotFound,
                format!("no NICKNAME request {tx} waits for an answer"),
            ))
        }
    })
}
