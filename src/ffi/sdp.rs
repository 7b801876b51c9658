//! C API for SDP (`msrp_sdp_media`, `msrp_negotiation`): reading the MSRP
//! media description of a peer's SDP, making our offer or answer, and
//! applying what they settled to a connector and the session options. The
//! rules are [`crate::proto::sdp`]'s and [`crate::proto::negotiation`]'s.

use std::ffi::{CString, c_char};

use super::connector::msrp_connector;
use super::error::{FfiError, msrp_result};
use super::handle::{borrow, free, into_raw, opt_text, out_ok, text, write, write_string};
use super::panic::{run, run_or};
use super::sdp_file::{FileText, file_from_c, msrp_sdp_file, write_file};
use super::session::msrp_session_options;
use super::tls::msrp_tls;
use crate::engine::any_connector::AnyConnector;
use crate::engine::connector::{Connector, Role};
use crate::engine::tls::{Fingerprint, HashAlg};
use crate::proto::negotiation::{self, LocalMedia, Negotiated, NegotiationError};
use crate::proto::sdp::{Direction, MsrpMedia, Sdp, SdpError, SdpFingerprint, minimal_sdp};
use crate::proto::session::parse_accept_types;
use crate::proto::uri::{format_path, parse_path};

/// An MSRP media description (RFC 4975 §8): read from a peer's SDP with
/// `msrp_sdp_media_parse`, or made by `msrp_sdp_offer` / `msrp_sdp_answer`.
/// Free with `msrp_sdp_media_free`. Not to be used from two threads at once.
pub struct msrp_sdp_media {
    inner: MsrpMedia,
    /// Its file description for `msrp_sdp_media_file`.
    file: Option<FileText>,
}

impl msrp_sdp_media {
    fn new(inner: MsrpMedia) -> msrp_sdp_media {
        let sends = inner.direction == Some(Direction::SendOnly);
        let file = FileText::of(&inner.file, sends);
        msrp_sdp_media { inner, file }
    }
}

/// What an offer and its answer settled (`msrp_sdp_negotiate`); free with
/// `msrp_negotiation_free`. Not to be used from two threads at once.
pub struct msrp_negotiation {
    inner: Negotiated,
    /// `peer_accept_types` for `msrp_negotiation_apply`, kept alive here.
    accept_types: CString,
    /// `peer_accept_wrapped_types`, likewise.
    wrapped_types: CString,
    /// Its file description for `msrp_negotiation_file`.
    file: Option<FileText>,
}

/// Our side of an MSRP media description, for `msrp_sdp_offer` and
/// `msrp_sdp_answer`. Start from `msrp_sdp_local_default()`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct msrp_sdp_local {
    /// Our full path, as `msrp_connector_prepare` gave it (required).
    pub full_local_path: *const c_char,
    /// Media types we accept, separated by spaces (NULL: `*`).
    pub accept_types: *const c_char,
    /// Media types we accept only inside a container (NULL: none).
    pub accept_wrapped_types: *const c_char,
    /// The largest message we take (0: no `a=max-size`).
    pub max_size: u64,
    /// For `msrps`: our TLS settings, whose certificate's sha-256
    /// fingerprint goes into `a=fingerprint` (NULL for `msrp`).
    pub tls: *const msrp_tls,
    /// We can take a connection at our path's address: `actpass` in an
    /// offer, `passive` in an answer; false: `active` (RFC 6135 §4.2.2).
    pub can_accept: bool,
    /// We support CEMA (RFC 6714).
    pub cema: bool,
    /// A file to offer or to ask for (RFC 5547), read by `msrp_sdp_offer`
    /// (an answer takes the offer's file); NULL: a chat, no file.
    pub file: *const msrp_sdp_file,
    /// We are a chat room (RFC 7701 §8): the `a=chatroom` tokens separated
    /// by spaces, e.g. "nickname private-messages" ("" for the attribute
    /// without tokens; NULL: not a chat room).
    pub chatroom: *const c_char,
}

/// The default local settings: everything NULL, 0 or false.
#[unsafe(no_mangle)]
pub extern "C" fn msrp_sdp_local_default() -> msrp_sdp_local {
    msrp_sdp_local {
        full_local_path: std::ptr::null(),
        accept_types: std::ptr::null(),
        accept_wrapped_types: std::ptr::null(),
        max_size: 0,
        tls: std::ptr::null(),
        can_accept: false,
        cema: false,
        file: std::ptr::null(),
        chatroom: std::ptr::null(),
    }
}

impl From<SdpError> for FfiError {
    fn from(e: SdpError) -> Self {
        FfiError::new(msrp_result::InvalidSdp, e.to_string())
    }
}

impl From<NegotiationError> for FfiError {
    fn from(e: NegotiationError) -> Self {
        FfiError::new(msrp_result::SdpNotNegotiable, e.0)
    }
}

/// The MSRP media descriptions of `sdp`, all of them.
fn msrp_media_of(sdp: &str) -> Result<Vec<MsrpMedia>, FfiError> {
    Ok(Sdp::parse(sdp)?
        .msrp_media()?
        .into_iter()
        .map(|(_, m)| m)
        .collect())
}

/// Writes to `*out` a new string made from the handle `p` (named `name`).
unsafe fn text_of<T>(
    p: *const T,
    name: &'static str,
    out: *mut *mut c_char,
    f: impl FnOnce(&T) -> String,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: forwarded caller contract.
        let v = f(unsafe { borrow(p, name) }?);
        // SAFETY: checked non-NULL.
        unsafe { write_string(out, &v, "out") }
    })
}

/// How many MSRP media descriptions (`m=message … TCP/…MSRP`) `sdp` has.
/// `MSRP_RESULT_INVALID_SDP` names the line that is wrong.
///
/// # Safety
/// `sdp` is NULL or a NUL-terminated string; `count` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_sdp_media_count(
    sdp: *const c_char,
    count: *mut usize,
) -> msrp_result {
    run(|| {
        out_ok(count, "count")?;
        // SAFETY: caller contract.
        let n = msrp_media_of(unsafe { text(sdp, "sdp") }?)?.len();
        // SAFETY: checked non-NULL.
        unsafe { write(count, n, "count") }
    })
}

/// Reads the `index`-th MSRP media description of `sdp` (from 0).
/// `MSRP_RESULT_NOT_FOUND` when there are not that many;
/// `MSRP_RESULT_INVALID_SDP` names the line that is wrong.
///
/// # Safety
/// `sdp` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_sdp_media_parse(
    sdp: *const c_char,
    index: usize,
    out: *mut *mut msrp_sdp_media,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let mut all = msrp_media_of(unsafe { text(sdp, "sdp") }?)?;
        if index >= all.len() {
            return Err(FfiError::new(
                msrp_result::NotFound,
                format!("the SDP has {} MSRP media descriptions", all.len()),
            ));
        }
        let inner = all.swap_remove(index);
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_sdp_media::new(inner)), "out") }
    })
}

/// Frees a media description (NULL is fine).
///
/// # Safety
/// `m` is NULL or a media description not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_sdp_media_free(m: *mut msrp_sdp_media) {
    // SAFETY: caller contract.
    run_or((), || unsafe { free(m) })
}

/// The media description as SDP lines (`m=`, `c=`, `a=…`, each ended by
/// CRLF), to put into the SIP stack's own SDP. Free with `msrp_string_free`.
///
/// # Safety
/// `m` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_sdp_media_lines(
    m: *const msrp_sdp_media,
    out: *mut *mut c_char,
) -> msrp_result {
    // SAFETY: forwarded caller contract.
    unsafe { text_of(m, "m", out, |m| m.inner.to_lines()) }
}

/// A whole minimal SDP around the media description (`v=`, `o=` with
/// `user` and `session_id`, `s=`, `c=`, `t=`), for tools and tests; a SIP
/// stack uses `msrp_sdp_media_lines` in its own. Free with `msrp_string_free`.
///
/// # Safety
/// `m` is NULL or live; `user` is NULL or a NUL-terminated string; `out`
/// is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_sdp_media_to_sdp(
    m: *const msrp_sdp_media,
    user: *const c_char,
    session_id: u64,
    out: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let m = unsafe { borrow(m, "m") }?;
        // SAFETY: caller contract.
        let user = unsafe { text(user, "user") }?;
        if user.is_empty() || user.contains([' ', '\r', '\n']) {
            return Err(FfiError::new(
                msrp_result::InvalidArgument,
                "user must be one word (the o= line's username)",
            ));
        }
        // SAFETY: checked non-NULL.
        unsafe { write_string(out, &minimal_sdp(user, session_id, &m.inner), "out") }
    })
}

/// The media description's `a=path` (space-separated URIs). Free with
/// `msrp_string_free`.
///
/// # Safety
/// `m` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_sdp_media_path(
    m: *const msrp_sdp_media,
    out: *mut *mut c_char,
) -> msrp_result {
    // SAFETY: forwarded caller contract.
    unsafe { text_of(m, "m", out, |m| format_path(&m.inner.path)) }
}

/// Reads our side from C.
unsafe fn local_of(l: *const msrp_sdp_local) -> Result<LocalMedia, FfiError> {
    // SAFETY: caller contract.
    let l = unsafe { borrow(l, "local") }?;
    // SAFETY: caller contract.
    let path = parse_path(unsafe { text(l.full_local_path, "local.full_local_path") }?)?;
    let types = |p, what| -> Result<Vec<String>, FfiError> {
        // SAFETY: caller contract: the strings are NULL or NUL-terminated.
        Ok(unsafe { opt_text(p, what) }?
            .map(parse_accept_types)
            .unwrap_or_default())
    };
    // SAFETY: caller contract: `tls` is NULL or live.
    let fingerprints = match unsafe { l.tls.as_ref() } {
        Some(t) => {
            let fp = t.snapshot().fingerprint(HashAlg::Sha256)?;
            vec![SdpFingerprint::parse(&fp.to_string()).ok_or_else(|| {
                FfiError::new(
                    msrp_result::InvalidArgument,
                    "our fingerprint did not format",
                )
            })?]
        }
        None => Vec::new(),
    };
    Ok(LocalMedia {
        path,
        accept_types: types(l.accept_types, "local.accept_types")?,
        accept_wrapped_types: types(l.accept_wrapped_types, "local.accept_wrapped_types")?,
        max_size: (l.max_size != 0).then_some(l.max_size),
        fingerprints,
        can_accept: l.can_accept,
        cema: l.cema,
        // SAFETY: caller contract.
        chatroom: unsafe { opt_text(l.chatroom, "local.chatroom") }?
            .map(|t| t.split_ascii_whitespace().map(str::to_owned).collect()),
        // SAFETY: caller contract: `file` is NULL or readable.
        file: match unsafe { l.file.as_ref() } {
            // SAFETY: as above, with its strings NULL or NUL-terminated.
            Some(f) => Some(unsafe { file_from_c(f) }?),
            None => None,
        },
    })
}

/// Our offer (RFC 6135 §4.2.2: `actpass` when `can_accept`, else
/// `active`).
///
/// # Safety
/// `local` is NULL or readable with its strings NULL or NUL-terminated and
/// `tls` NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_sdp_offer(
    local: *const msrp_sdp_local,
    out: *mut *mut msrp_sdp_media,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let inner = negotiation::offer(&unsafe { local_of(local) }?)?;
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_sdp_media::new(inner)), "out") }
    })
}

/// Our answer to `offer`: roles by RFC 6135 §4.2.2 (RFC 4975 §5.4 when
/// the offer has no `a=setup`), the content types both accept (none:
/// `MSRP_RESULT_SDP_NOT_NEGOTIABLE`, which a SIP stack answers with 488),
/// CEMA only when offered.
///
/// # Safety
/// As for `msrp_sdp_offer`; `offer` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_sdp_answer(
    local: *const msrp_sdp_local,
    offer: *const msrp_sdp_media,
    out: *mut *mut msrp_sdp_media,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let o = unsafe { borrow(offer, "offer") }?;
        // SAFETY: caller contract.
        let inner = negotiation::answer(&unsafe { local_of(local) }?, &o.inner)?;
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(msrp_sdp_media::new(inner)), "out") }
    })
}

/// What our media description `ours` and the peer's `theirs` settled;
/// `we_offered` says which was the offer.
///
/// # Safety
/// `ours` and `theirs` are NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_sdp_negotiate(
    ours: *const msrp_sdp_media,
    theirs: *const msrp_sdp_media,
    we_offered: bool,
    out: *mut *mut msrp_negotiation,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let (a, b) = unsafe { (borrow(ours, "ours")?, borrow(theirs, "theirs")?) };
        let inner = negotiation::negotiate(&a.inner, &b.inner, we_offered)?;
        let accept_types = CString::new(inner.peer_accept_types.join(" ")).map_err(|_| {
            FfiError::new(
                msrp_result::InvalidSdp,
                "the peer's accept-types hold a NUL",
            )
        })?;
        let wrapped_types =
            CString::new(inner.peer_accept_wrapped_types.join(" ")).map_err(|_| {
                FfiError::new(
                    msrp_result::InvalidSdp,
                    "the peer's accept-wrapped-types hold a NUL",
                )
            })?;
        let file = inner
            .file
            .as_ref()
            .and_then(|f| FileText::of(&f.attrs, f.send));
        let n = msrp_negotiation {
            inner,
            accept_types,
            wrapped_types,
            file,
        };
        // SAFETY: checked non-NULL.
        unsafe { write(out, into_raw(n), "out") }
    })
}

/// Frees a negotiation (NULL is fine).
///
/// # Safety
/// `n` is NULL or a negotiation not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_negotiation_free(n: *mut msrp_negotiation) {
    // SAFETY: caller contract.
    run_or((), || unsafe { free(n) })
}

/// Whether this side connects and sends the binding SEND (make an active
/// connector) rather than waiting for the peer (a passive one). false for
/// NULL.
///
/// # Safety
/// `n` is NULL or live.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_negotiation_is_active(n: *const msrp_negotiation) -> bool {
    // SAFETY: caller contract.
    run_or(false, || {
        unsafe { n.as_ref() }.is_some_and(|n| n.inner.active)
    })
}

/// The peer's full path, for `msrp_connector_complete`. Free with
/// `msrp_string_free`.
///
/// # Safety
/// `n` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_negotiation_remote_path(
    n: *const msrp_negotiation,
    out: *mut *mut c_char,
) -> msrp_result {
    // SAFETY: forwarded caller contract.
    unsafe { text_of(n, "n", out, |n| format_path(&n.inner.remote_path)) }
}

/// The role the negotiation gives this side.
fn role_of(neg: &Negotiated) -> Role {
    if neg.active {
        Role::Active
    } else {
        Role::Passive
    }
}

/// Gives `d` the peer's fingerprints (replacing any) and, under CEMA, the
/// address to connect to.
fn settle(neg: &Negotiated, d: &Connector) {
    d.set_peer_fingerprint(None);
    for f in neg
        .peer_fingerprints
        .iter()
        .filter_map(|f| Fingerprint::parse(&f.text()).ok())
    {
        d.add_peer_fingerprint(f);
    }
    let cema_address = neg
        .remote_path
        .first()
        .is_some_and(|hop| hop.host != neg.connect_to.0 || hop.port != Some(neg.connect_to.1));
    d.set_connect_address(cema_address.then(|| neg.connect_to.clone()));
}

/// Applies what was settled: to `c` (may be NULL) the peer's fingerprints
/// (replacing any given before) and, under CEMA, the address to connect
/// to; to `options` (may be NULL) the peer's accept-types, wrapped types
/// and max-size (`options->peer_accept_types` and
/// `peer_accept_wrapped_types` then point into `n`: keep `n` until
/// `msrp_session_new` returned). `MSRP_RESULT_WRONG_KIND` when `c` has the
/// other role than the negotiation gives this side.
///
/// # Safety
/// `n` is NULL or live; `c` is NULL or live; `options` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_negotiation_apply(
    n: *const msrp_negotiation,
    c: *const msrp_connector,
    options: *mut msrp_session_options,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let n = unsafe { borrow(n, "n") }?;
        let neg = &n.inner;
        // SAFETY: caller contract.
        if let Some(c) = unsafe { c.as_ref() } {
            let AnyConnector::Direct(d) = &c.inner else {
                return Err(FfiError::new(
                    msrp_result::WrongKind,
                    "a relay connection is set up by its relay settings",
                ));
            };
            if d.role() != role_of(neg) {
                return Err(FfiError::new(
                    msrp_result::WrongKind,
                    format!(
                        "the negotiation makes this side {}: use a connector of that kind (msrp_negotiation_connector makes it)",
                        if neg.active { "active" } else { "passive" }
                    ),
                ));
            }
            settle(neg, d);
        }
        // SAFETY: caller contract.
        if let Some(o) = unsafe { options.as_mut() } {
            o.peer_accept_types = if neg.peer_accept_types.is_empty() {
                std::ptr::null()
            } else {
                n.accept_types.as_ptr()
            };
            o.peer_max_size = neg.peer_max_size.unwrap_or(0);
            o.peer_accept_wrapped_types = if neg.peer_accept_wrapped_types.is_empty() {
                std::ptr::null()
            } else {
                n.wrapped_types.as_ptr()
            };
        }
        Ok(())
    })
}

/// Makes `*c` — the connector whose path went into our SDP — ready for
/// `msrp_connector_complete` with the peer's path
/// (`msrp_negotiation_remote_path`): the peer's fingerprints and, under
/// CEMA, the address to connect to are set. When we offered `actpass`
/// with a passive connector and the answer made us active (RFC 6135
/// §4.2.2), `*c` is replaced by a new active connector with the same path,
/// TLS settings and logger, and the passive one is freed (its listening
/// port closed). A relay connection (`msrp_connector_new_relay`) of the
/// role the negotiation gives is already ready and stays as it is.
/// `MSRP_RESULT_WRONG_KIND` when an active connector was made passive (we
/// offered `active`, so a correct answer cannot do that) or a relay
/// connection has the other role; `*c` is then unchanged.
///
/// # Safety
/// `n` is NULL or live; `c` is NULL or points to NULL or a live connector
/// that no other thread uses during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_negotiation_connector(
    n: *const msrp_negotiation,
    c: *mut *mut msrp_connector,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let neg = &unsafe { borrow(n, "n") }?.inner;
        out_ok(c, "c")?;
        // SAFETY: checked non-NULL; caller contract.
        let conn = unsafe { borrow(*c, "*c") }?;
        let d = match &conn.inner {
            AnyConnector::Direct(d) => d,
            AnyConnector::Relay(r) if r.role() == role_of(neg) => return Ok(()),
            AnyConnector::Relay(_) => {
                return Err(FfiError::new(
                    msrp_result::WrongKind,
                    format!(
                        "the negotiation makes this side {} but its relay connection was made for the other role: offer `active` through a relay (can_accept false) and answer with a passive relay connection",
                        if neg.active { "active" } else { "passive" }
                    ),
                ));
            }
        };
        match (d.role(), role_of(neg)) {
            (have, want) if have == want => {
                settle(neg, d);
                Ok(())
            }
            (Role::Passive, Role::Active) => {
                let twin = d.active_twin()?;
                settle(neg, &twin);
                let new = into_raw(msrp_connector {
                    inner: AnyConnector::Direct(std::sync::Arc::new(twin)),
                });
                // SAFETY: `*c` is live and ours to replace (caller contract).
                unsafe {
                    free(*c);
                    *c = new;
                }
                Ok(())
            }
            _ => Err(FfiError::new(
                msrp_result::WrongKind,
                "the negotiation makes this side passive but its connector is active: offer with a passive connector (can_accept) to be able to listen",
            )),
        }
    })
}

/// The file transfer the media description describes (RFC 5547: it has an
/// `a=file-selector`), for deciding whether to take a peer's offer; the
/// strings in `*out` live as long as `m`. `MSRP_RESULT_NOT_FOUND` when it
/// is not a file transfer.
///
/// # Safety
/// `m` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_sdp_media_file(
    m: *const msrp_sdp_media,
    out: *mut msrp_sdp_file,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let m = unsafe { borrow(m, "m") }?;
        write_file(m.file.as_ref(), out)
    })
}

/// The negotiated file transfer (`out->send`: we send it), with the
/// offer's file attributes; the strings in `*out` live as long as `n`.
/// `MSRP_RESULT_NOT_FOUND` when the media is not a file transfer.
///
/// # Safety
/// `n` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_negotiation_file(
    n: *const msrp_negotiation,
    out: *mut msrp_sdp_file,
) -> msrp_result {
    run(|| {
        // SAFETY: caller contract.
        let n = unsafe { borrow(n, "n") }?;
        write_file(n.file.as_ref(), out)
    })
}

/// The peer's `a=chatroom` tokens (RFC 7701 §8), separated by spaces ("" for
/// the attribute without tokens): the peer is a chat room, and with
/// `nickname` it takes NICKNAME requests (`msrp_session_nickname`). Free with
/// `msrp_string_free`. `MSRP_RESULT_NOT_FOUND` when the peer is no chat room.
///
/// # Safety
/// `n` is NULL or live; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_negotiation_chatroom(
    n: *const msrp_negotiation,
    out: *mut *mut c_char,
) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let n = unsafe { borrow(n, "n") }?;
        let t = n.inner.peer_chatroom.as_ref().ok_or_else(|| {
            FfiError::new(msrp_result::NotFound, "the peer's SDP has no a=chatroom")
        })?;
        // SAFETY: checked non-NULL.
        unsafe { write_string(out, &t.join(" "), "out") }
    })
}
