//! C API for the file-transfer attributes of RFC 5547 (`msrp_sdp_file`):
//! offering a file or asking for one in `msrp_sdp_local`, reading what a
//! peer's offer and a negotiation say about the file, and the SHA-1 hash
//! that `a=file-selector` carries.

use std::ffi::{CString, c_char};
use std::io::Read;

use super::error::{FfiError, msrp_result};
use super::handle::{opt_text, out_ok, text, write_string};
use super::panic::run;
use crate::proto::negotiation::FileTransfer;
use crate::proto::sdp::{FileAttrs, FileRange, FileSelector, parse_dates, parse_file_hash};

/// A file transfer (RFC 5547): what `a=file-selector` and the attributes
/// next to it say. Given in `msrp_sdp_local.file` to offer a file or to
/// ask for one; filled by `msrp_sdp_media_file` and `msrp_negotiation_file`
/// with strings that live as long as the handle they came from. Start from
/// `msrp_sdp_file_default()`. A NULL string is an attribute not given.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct msrp_sdp_file {
    /// This side sends the file: in `msrp_sdp_local`, we offer it
    /// (`sendonly`); false asks the peer for it (`recvonly`). Read from a
    /// media description: its writer sends. Read from a negotiation: we send.
    pub send: bool,
    /// The file name (`name:`), without any directory.
    pub name: *const c_char,
    /// The media type (`type:`), e.g. `application/pdf`.
    pub media_type: *const c_char,
    /// Whether `size` is given.
    pub has_size: bool,
    /// The size in bytes (`size:`).
    pub size: u64,
    /// The hash (`hash:`) as `<algorithm>:<hex bytes>`, e.g. `sha-1:72:24:…`
    /// (`msrp_file_hash` makes one; compare with `strcasecmp`).
    pub hash: *const c_char,
    /// `a=file-transfer-id`; NULL in an offer: a random one is made.
    pub transfer_id: *const c_char,
    /// `a=file-disposition` (`render` or `attachment`; absent means render).
    pub disposition: *const c_char,
    /// `a=file-date`'s value: `creation:"<RFC 5322 date>"`, `modification:`
    /// and `read:` separated by spaces.
    pub dates: *const c_char,
    /// `a=file-icon` (a `cid:` URL).
    pub icon: *const c_char,
    /// `a=file-range`'s first byte, from 1 (0: no `a=file-range`).
    pub range_start: u64,
    /// `a=file-range`'s last byte (0: `*`, to the end).
    pub range_stop: u64,
}

/// The default file description: nothing given.
#[unsafe(no_mangle)]
pub extern "C" fn msrp_sdp_file_default() -> msrp_sdp_file {
    msrp_sdp_file {
        send: false,
        name: std::ptr::null(),
        media_type: std::ptr::null(),
        has_size: false,
        size: 0,
        hash: std::ptr::null(),
        transfer_id: std::ptr::null(),
        disposition: std::ptr::null(),
        dates: std::ptr::null(),
        icon: std::ptr::null(),
        range_start: 0,
        range_stop: 0,
    }
}

fn bad(what: impl Into<std::borrow::Cow<'static, str>>) -> FfiError {
    FfiError::new(msrp_result::InvalidArgument, what)
}

/// Reads a file description from C (`f` readable, its strings NULL or
/// NUL-terminated).
pub(crate) unsafe fn file_from_c(f: &msrp_sdp_file) -> Result<FileTransfer, FfiError> {
    // SAFETY: caller contract for every string below.
    let s = |p, what| unsafe { opt_text(p, what) }.map(|o| o.map(str::to_owned));
    let hash = match s(f.hash, "file.hash")? {
        Some(h) => Some(
            parse_file_hash(&h)
                .ok_or_else(|| bad(format!("file.hash '{h}' is not <algorithm>:<hex bytes>")))?,
        ),
        None => None,
    };
    let media_type = s(f.media_type, "file.media_type")?;
    if media_type
        .as_deref()
        .is_some_and(|t| !t.contains('/') || t.contains(' '))
    {
        return Err(bad("file.media_type is not type/subtype"));
    }
    let dates = match s(f.dates, "file.dates")? {
        Some(d) => parse_dates(&d, 0).map_err(|e| bad(format!("file.dates: {}", e.what)))?,
        None => Vec::new(),
    };
    let token = |v: Option<String>, what: &str| match v {
        Some(t) if t.is_empty() || t.contains([' ', '\r', '\n']) => {
            Err(bad(format!("{what} must be one word")))
        }
        v => Ok(v),
    };
    let range = match (f.range_start, f.range_stop) {
        (0, 0) => None,
        (0, _) => return Err(bad("file.range_stop without file.range_start")),
        (a, b) if b != 0 && b < a => return Err(bad("file.range_stop is before range_start")),
        (a, b) => Some(FileRange {
            start: a,
            stop: (b != 0).then_some(b),
        }),
    };
    let transfer_id = token(s(f.transfer_id, "file.transfer_id")?, "file.transfer_id")?
        .unwrap_or_else(crate::proto::ids::session_id);
    let name = s(f.name, "file.name")?;
    if name.as_deref().is_some_and(|n| n.contains(['/', '\\'])) {
        return Err(bad("file.name is a name without a directory"));
    }
    Ok(FileTransfer {
        send: f.send,
        attrs: FileAttrs {
            selector: Some(FileSelector {
                name,
                media_type,
                size: f.has_size.then_some(f.size),
                hash,
            }),
            transfer_id: Some(transfer_id),
            disposition: token(s(f.disposition, "file.disposition")?, "file.disposition")?,
            dates,
            icon: token(s(f.icon, "file.icon")?, "file.icon")?,
            range,
        },
    })
}

/// The strings of a file description, kept by the handle that hands out
/// pointers to them.
#[derive(Debug, Default)]
pub(crate) struct FileText {
    send: bool,
    size: Option<u64>,
    range: Option<FileRange>,
    name: Option<CString>,
    media_type: Option<CString>,
    hash: Option<CString>,
    transfer_id: Option<CString>,
    disposition: Option<CString>,
    dates: Option<CString>,
    icon: Option<CString>,
}

/// A C string of `s`, cut at a NUL (parsed SDP holds none).
fn c(s: Option<&str>) -> Option<CString> {
    s.map(|s| CString::new(s.split('\0').next().unwrap_or("")).unwrap_or_default())
}

impl FileText {
    /// The strings of `attrs` when it describes a file (`None` when it has
    /// no file-selector); `send` as `msrp_sdp_file.send` says.
    pub(crate) fn of(attrs: &FileAttrs, send: bool) -> Option<FileText> {
        let sel = attrs.selector.as_ref()?;
        Some(FileText {
            send,
            size: sel.size,
            range: attrs.range,
            name: c(sel.name.as_deref()),
            media_type: c(sel.media_type.as_deref()),
            hash: c(sel
                .hash
                .as_ref()
                .map(|(a, h)| format!("{a}:{h}"))
                .as_deref()),
            transfer_id: c(attrs.transfer_id.as_deref()),
            disposition: c(attrs.disposition.as_deref()),
            dates: c((!attrs.dates.is_empty())
                .then(|| attrs.dates_text())
                .as_deref()),
            icon: c(attrs.icon.as_deref()),
        })
    }

    /// The C view, pointing into `self`.
    pub(crate) fn view(&self) -> msrp_sdp_file {
        let p = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        msrp_sdp_file {
            send: self.send,
            name: p(&self.name),
            media_type: p(&self.media_type),
            has_size: self.size.is_some(),
            size: self.size.unwrap_or(0),
            hash: p(&self.hash),
            transfer_id: p(&self.transfer_id),
            disposition: p(&self.disposition),
            dates: p(&self.dates),
            icon: p(&self.icon),
            range_start: self.range.map_or(0, |r| r.start),
            range_stop: self.range.and_then(|r| r.stop).unwrap_or(0),
        }
    }
}

/// Writes the file description `f` to `out` (checked non-NULL), or
/// `MSRP_RESULT_NOT_FOUND` when there is none.
pub(crate) fn write_file(f: Option<&FileText>, out: *mut msrp_sdp_file) -> Result<(), FfiError> {
    out_ok(out, "out")?;
    let f = f.ok_or_else(|| {
        FfiError::new(
            msrp_result::NotFound,
            "this media description is not a file transfer (no a=file-selector)",
        )
    })?;
    // SAFETY: checked non-NULL; the caller gives a writable struct.
    unsafe { out.write(f.view()) };
    Ok(())
}

/// The SHA-1 hash of the file at `path` as `a=file-selector` carries it
/// (RFC 5547 §6): `sha-1:` and the 20 bytes in upper-case hex separated by
/// colons. Free with `msrp_string_free`. Reads the whole file: a blocking
/// call (do not make it from a callback for a large file).
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn msrp_file_hash(path: *const c_char, out: *mut *mut c_char) -> msrp_result {
    run(|| {
        out_ok(out, "out")?;
        // SAFETY: caller contract.
        let path = unsafe { text(path, "path") }?;
        let io = |e: std::io::Error| FfiError::new(msrp_result::Io, format!("{path}: {e}"));
        let mut f = std::fs::File::open(path).map_err(io)?;
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(e)),
            };
            ctx.update(&buf[..n]);
        }
        let hex: Vec<String> = ctx
            .finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        // SAFETY: checked non-NULL.
        unsafe { write_string(out, &format!("sha-1:{}", hex.join(":")), "out") }
    })
}
