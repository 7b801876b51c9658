//! The MSRP chunk (reference `MSRPData`): model, builder, accessors and encoder.
//!
//! Sans-IO. A chunk is a request (SEND, REPORT, AUTH, NICKNAME or any
//! extension method) or a response (code and comment), with headers, body
//! bytes and a continuation flag. Header text lives in one string arena so a
//! decoded chunk costs a handful of allocations; headers are written in the
//! order peers require: To-Path, From-Path, the rest, MIME headers, and
//! Content-Type last.

use std::fmt;

use smallvec::SmallVec;

use super::header::{
    ByteRange, DigestParams, HeaderError, HeaderName, ReportMode, Status, is_ident, parse_expires,
    validate,
};
use super::ids;
use super::uri::{Uri, format_path, parse_path};

/// Continuation flag of a chunk's end-line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Flag {
    /// `$`: last chunk of the message.
    End = b'$',
    /// `+`: more chunks follow.
    More = b'+',
    /// `#`: the message is aborted.
    Abort = b'#',
}

impl Flag {
    /// From the wire character.
    pub fn from_byte(b: u8) -> Option<Flag> {
        match b {
            b'$' => Some(Flag::End),
            b'+' => Some(Flag::More),
            b'#' => Some(Flag::Abort),
            _ => None,
        }
    }
}

/// What went wrong building, checking or encoding a chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChunkError {
    /// A method must be one or more upper-case letters.
    InvalidMethod,
    /// A transaction id must be an RFC 4975 `ident` (4 to 32 characters).
    InvalidTransactionId,
    /// A response code must have three digits (100 to 999).
    InvalidCode,
    /// A comment or header value contains CR or LF.
    LineBreakInValue,
    /// A header name is not a token.
    InvalidHeaderName,
    /// A header value is malformed.
    Header(HeaderError),
    /// A required header is missing.
    MissingHeader(&'static str),
    /// The body contains this chunk's end-line; pick another transaction id.
    EndLineInBody,
    /// The operation applies to requests only (or responses only).
    WrongKind(&'static str),
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::InvalidMethod => f.write_str("method must be one or more upper-case letters A-Z"),
            ChunkError::InvalidTransactionId => f.write_str(
                "transaction id must be 4 to 32 characters of A-Z a-z 0-9 . - + % =, starting with a letter or digit",
            ),
            ChunkError::InvalidCode => f.write_str("response code must be a number from 100 to 999"),
            ChunkError::LineBreakInValue => f.write_str("value contains CR or LF, which would break the framing"),
            ChunkError::InvalidHeaderName => f.write_str("header name must be a non-empty token (letters, digits, - . ! % * _ + ` ' ~)"),
            ChunkError::Header(e) => write!(f, "{e}"),
            ChunkError::MissingHeader(h) => write!(f, "missing {h} header"),
            ChunkError::EndLineInBody => f.write_str(
                "the body contains this chunk's end-line; give the chunk another transaction id",
            ),
            ChunkError::WrongKind(w) => write!(f, "{w}"),
        }
    }
}

impl std::error::Error for ChunkError {}

impl From<HeaderError> for ChunkError {
    fn from(e: HeaderError) -> Self {
        ChunkError::Header(e)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Request { method: Span },
    Response { code: u16, comment: Option<Span> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    name: HeaderName,
    raw_name: Span,
    value: Span,
}

/// A chunk's body: a buffer of its own, a piece of a buffer shared with
/// other chunks, or several such pieces in order. A large body received on
/// plain TCP is left where it was read (see `engine::transport`), in
/// pieces when it came in several reads; whatever changes it makes it a
/// buffer of its own first.
enum Body {
    Own(Vec<u8>),
    Shared(bytes::Bytes),
    Pieces(Box<Pieces>),
}

/// A body that came in several reads, left in the read buffers.
struct Pieces {
    parts: SmallVec<[bytes::Bytes; 4]>,
    len: usize,
    /// The pieces as one slice, made the first time someone asks for the
    /// body that way (`Chunk::data`); writers to files and callbacks take
    /// the pieces as they are (`Chunk::data_pieces`).
    flat: std::sync::OnceLock<Vec<u8>>,
}

impl Pieces {
    /// The pieces in one recycled buffer, with room for `more` bytes.
    fn joined(&self, more: usize) -> Vec<u8> {
        let mut v = super::bufpool::take(self.len + more);
        for part in &self.parts {
            v.extend_from_slice(part);
        }
        v
    }
}

/// Most pieces a body keeps; one more makes it a buffer of its own.
const MAX_PIECES: usize = 4;

impl Body {
    fn as_slice(&self) -> &[u8] {
        match self {
            Body::Own(v) => v,
            Body::Shared(b) => b,
            Body::Pieces(p) => p.flat.get_or_init(|| p.joined(0)),
        }
    }

    fn len(&self) -> usize {
        match self {
            Body::Own(v) => v.len(),
            Body::Shared(b) => b.len(),
            Body::Pieces(p) => p.len,
        }
    }

    /// The body as a buffer of its own (shared pieces are copied into a
    /// recycled buffer, with room for `more` bytes).
    fn own(&mut self, more: usize) -> &mut Vec<u8> {
        match self {
            Body::Own(_) => {}
            Body::Shared(b) => {
                let mut v = super::bufpool::take(b.len() + more);
                v.extend_from_slice(b);
                *self = Body::Own(v);
            }
            Body::Pieces(p) => {
                let mut v = p.flat.take().unwrap_or_else(|| p.joined(more));
                v.reserve(more);
                *self = Body::Own(v);
            }
        }
        match self {
            Body::Own(v) => v,
            _ => unreachable!("made own above"),
        }
    }

    /// Appends a piece of a shared buffer without copying what is there.
    fn push_shared(&mut self, piece: bytes::Bytes) {
        match self {
            Body::Own(v) if v.is_empty() => *self = Body::Shared(piece),
            Body::Shared(first) => {
                let len = first.len() + piece.len();
                let first = std::mem::take(first);
                *self = Body::Pieces(Box::new(Pieces {
                    parts: SmallVec::from_iter([first, piece]),
                    len,
                    flat: std::sync::OnceLock::new(),
                }));
            }
            Body::Pieces(p) if p.parts.len() < MAX_PIECES && p.flat.get().is_none() => {
                p.len += piece.len();
                p.parts.push(piece);
            }
            _ => self.own(piece.len()).extend_from_slice(&piece),
        }
    }
}

impl PartialEq for Body {
    fn eq(&self, other: &Body) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for Body {}

/// One MSRP chunk: a request or a response.
#[derive(PartialEq, Eq)]
pub struct Chunk {
    text: String,
    tid: Span,
    kind: Kind,
    /// Up to eight entries stay inline (a SEND usually has five to seven), so
    /// a chunk costs one allocation for its text and one for its body.
    headers: SmallVec<[Entry; 8]>,
    data: Body,
    flag: Flag,
    body: bool,
    /// The first header problem the decoder found (verify_headers reports it).
    malformed: Option<Box<HeaderError>>,
    /// Every header value was validated when it was added (or its problem
    /// is in `malformed`): `verify_headers` need not look at them again.
    checked: bool,
}

impl Clone for Chunk {
    /// A large body's copy goes into a recycled buffer: the engine copies a
    /// chunk the application keeps for every write of it, and gives the
    /// copy's buffer back once written, so writing the same chunk again and
    /// again no longer allocates a new body each time.
    /// (A shared body's copy shares it too.)
    fn clone(&self) -> Chunk {
        let data = match &self.data {
            Body::Own(v) => {
                let mut data = super::bufpool::take(v.len());
                data.extend_from_slice(v);
                Body::Own(data)
            }
            Body::Shared(b) => Body::Shared(b.clone()),
            Body::Pieces(p) => Body::Pieces(Box::new(Pieces {
                parts: p.parts.clone(),
                len: p.len,
                flat: std::sync::OnceLock::new(),
            })),
        };
        Chunk {
            text: self.text.clone(),
            tid: self.tid,
            kind: self.kind,
            headers: self.headers.clone(),
            data,
            flag: self.flag,
            body: self.body,
            malformed: self.malformed.clone(),
            checked: self.checked,
        }
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Chunk");
        d.field("tid", &self.transaction_id());
        match self.kind {
            Kind::Request { .. } => d.field("method", &self.method()),
            Kind::Response { code, .. } => d.field("code", &code).field("comment", &self.comment()),
        };
        d.field("headers", &self.headers().collect::<Vec<_>>())
            .field("data_len", &self.size())
            .field("flag", &self.flag)
            .finish()
    }
}

/// Whether `s` is a valid request method (RFC 4975: 1*UPALPHA).
pub fn is_method(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase())
}

fn check_value(v: &str) -> Result<(), ChunkError> {
    if v.bytes().any(|b| b == b'\r' || b == b'\n') {
        Err(ChunkError::LineBreakInValue)
    } else {
        Ok(())
    }
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(super::uri::is_token_char)
}

impl Chunk {
    fn push_text(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        Span {
            start,
            len: s.len() as u32,
        }
    }

    fn get(&self, s: Span) -> &str {
        &self.text[s.start as usize..(s.start + s.len) as usize]
    }

    fn blank(tid: &str, capacity: usize) -> Chunk {
        let mut c = Chunk {
            text: String::with_capacity(capacity),
            tid: Span::default(),
            kind: Kind::Response {
                code: 0,
                comment: None,
            },
            headers: SmallVec::new(),
            data: Body::Own(Vec::new()),
            flag: Flag::End,
            body: false,
            malformed: None,
            checked: true,
        };
        c.tid = c.push_text(tid);
        c
    }

    /// A new request with a random transaction id.
    pub fn request(method: &str) -> Result<Chunk, ChunkError> {
        Chunk::request_with_id(&ids::transaction_id(), method)
    }

    /// A new request with the given transaction id.
    pub fn request_with_id(tid: &str, method: &str) -> Result<Chunk, ChunkError> {
        if !is_ident(tid) {
            return Err(ChunkError::InvalidTransactionId);
        }
        if !is_method(method) {
            return Err(ChunkError::InvalidMethod);
        }
        Ok(Chunk::new_request_unchecked(tid, method, 256))
    }

    pub(crate) fn new_request_unchecked(tid: &str, method: &str, capacity: usize) -> Chunk {
        let mut c = Chunk::blank(tid, capacity);
        let m = c.push_text(method);
        c.kind = Kind::Request { method: m };
        c
    }

    /// A new response. `comment` must not contain CR or LF.
    pub fn response(tid: &str, code: u16, comment: Option<&str>) -> Result<Chunk, ChunkError> {
        if !is_ident(tid) {
            return Err(ChunkError::InvalidTransactionId);
        }
        if !(100..=999).contains(&code) {
            return Err(ChunkError::InvalidCode);
        }
        if let Some(c) = comment {
            check_value(c)?;
        }
        Ok(Chunk::new_response_unchecked(tid, code, comment, 256))
    }

    pub(crate) fn new_response_unchecked(
        tid: &str,
        code: u16,
        comment: Option<&str>,
        capacity: usize,
    ) -> Chunk {
        let mut c = Chunk::blank(tid, capacity);
        let comment = comment.map(|s| c.push_text(s));
        c.kind = Kind::Response { code, comment };
        c
    }

    /// The response to this request that RFC 4975 §7.2 describes: same
    /// transaction id, To-Path = first URI of the request's From-Path,
    /// From-Path = first URI of its To-Path.
    pub fn make_response(&self, code: u16, comment: Option<&str>) -> Result<Chunk, ChunkError> {
        if !self.is_request() {
            return Err(ChunkError::WrongKind("only a request can be answered"));
        }
        let from = self
            .header(HeaderName::FromPath)
            .ok_or(ChunkError::MissingHeader("From-Path"))?;
        let to = self
            .header(HeaderName::ToPath)
            .ok_or(ChunkError::MissingHeader("To-Path"))?;
        fn first(s: &str) -> &str {
            // Path URIs are separated by spaces (RFC 4975 `1*SP`); tabs
            // are taken too.
            let s = s.trim_ascii_start();
            let end = memchr::memchr2(b' ', b'\t', s.as_bytes());
            &s[..end.unwrap_or(s.len())]
        }
        let (from_first, to_first) = (first(from), first(to));
        if !(100..=999).contains(&code) {
            return Err(ChunkError::InvalidCode);
        }
        if let Some(c) = comment {
            check_value(c)?;
        }
        // This chunk's transaction id is valid (checked when it was set).
        let cap = 64 + from_first.len() + to_first.len() + comment.map_or(0, str::len);
        let mut r = Chunk::new_response_unchecked(self.transaction_id(), code, comment, cap);
        if self.malformed.is_none() {
            // Every header of this chunk passed validation (builder or
            // decoder), so its paths need no second check.
            r.push_header_checked(HeaderName::ToPath, "", from_first);
            r.push_header_checked(HeaderName::FromPath, "", to_first);
        } else {
            r.add_header_raw("To-Path", from_first)?;
            r.add_header_raw("From-Path", to_first)?;
        }
        Ok(r)
    }

    /// True for requests.
    pub fn is_request(&self) -> bool {
        matches!(self.kind, Kind::Request { .. })
    }

    /// The transaction id.
    pub fn transaction_id(&self) -> &str {
        self.get(self.tid)
    }

    /// Replaces the transaction id (must be an RFC 4975 ident).
    pub fn set_transaction_id(&mut self, tid: &str) -> Result<(), ChunkError> {
        if !is_ident(tid) {
            return Err(ChunkError::InvalidTransactionId);
        }
        self.tid = self.push_text(tid);
        Ok(())
    }

    /// The method of a request.
    pub fn method(&self) -> Option<&str> {
        match self.kind {
            Kind::Request { method } => Some(self.get(method)),
            Kind::Response { .. } => None,
        }
    }

    /// The code of a response.
    pub fn code(&self) -> Option<u16> {
        match self.kind {
            Kind::Response { code, .. } => Some(code),
            Kind::Request { .. } => None,
        }
    }

    /// The comment of a response, if any.
    pub fn comment(&self) -> Option<&str> {
        match self.kind {
            Kind::Response {
                comment: Some(c), ..
            } => Some(self.get(c)),
            _ => None,
        }
    }

    /// Body bytes.
    pub fn data(&self) -> &[u8] {
        self.data.as_slice()
    }

    /// Replaces the body.
    pub fn set_data(&mut self, data: &[u8]) {
        if let Body::Own(v) = &mut self.data {
            v.clear();
            v.extend_from_slice(data);
        } else {
            self.data = Body::Own(data.to_vec());
        }
    }

    /// Replaces the body with `data` without copying it.
    pub fn set_data_vec(&mut self, data: Vec<u8>) {
        self.data = Body::Own(data);
    }

    /// Replaces the body with a piece of a shared buffer (not copied).
    pub(crate) fn set_data_shared(&mut self, data: bytes::Bytes) {
        self.data = Body::Shared(data);
    }

    /// Appends a piece of a shared buffer to the body without copying
    /// either (a body of its own gets the piece copied onto its end).
    pub(crate) fn append_shared(&mut self, piece: bytes::Bytes) {
        self.data.push_shared(piece);
    }

    /// The body lies in shared buffers (is not a buffer of its own).
    pub(crate) fn body_is_shared(&self) -> bool {
        !matches!(self.data, Body::Own(_))
    }

    /// The body in the pieces it is held in, in order (one for a body of
    /// its own): for writers that take it piece by piece, so that a body
    /// left in several read buffers is not copied into one first.
    pub fn data_pieces(&self) -> impl Iterator<Item = &[u8]> {
        let (one, parts): (Option<&[u8]>, &[bytes::Bytes]) = match &self.data {
            Body::Own(v) => (Some(v), &[]),
            Body::Shared(b) => (Some(b), &[]),
            Body::Pieces(p) => (None, &p.parts),
        };
        one.into_iter().chain(parts.iter().map(|b| &b[..]))
    }

    /// The shared buffer the body is a piece of, if it is one (tests).
    #[cfg(test)]
    pub(crate) fn shared_data(&self) -> Option<&bytes::Bytes> {
        match &self.data {
            Body::Shared(b) => Some(b),
            _ => None,
        }
    }

    /// How many pieces of shared buffers the body is held in (tests).
    #[cfg(test)]
    pub(crate) fn shared_pieces(&self) -> usize {
        match &self.data {
            Body::Own(_) => 0,
            Body::Shared(_) => 1,
            Body::Pieces(p) => p.parts.len(),
        }
    }

    /// Reserves room for `n` more body bytes.
    pub fn reserve_data(&mut self, n: usize) {
        self.data.own(n).reserve(n);
    }

    /// Makes sure the body is a buffer of its own with room for `n` bytes
    /// in all, moving it into a recycled buffer (`bufpool`) when it has
    /// less, so that appending up to `n` never regrows it.
    pub(crate) fn ensure_data_room(&mut self, n: usize) {
        if let Body::Own(v) = &self.data {
            if v.capacity() >= n {
                return;
            }
        }
        let mut buf = super::bufpool::take(n);
        for piece in self.data_pieces() {
            buf.extend_from_slice(piece);
        }
        let old = std::mem::replace(&mut self.data, Body::Own(buf));
        if let Body::Own(v) = old {
            super::bufpool::give(v);
        }
    }

    /// Appends to the body.
    pub fn append_data(&mut self, data: &[u8]) {
        self.data.own(data.len()).extend_from_slice(data);
    }

    /// The body buffer itself (the engine reads into its spare capacity).
    pub(crate) fn data_vec_mut(&mut self) -> &mut Vec<u8> {
        self.data.own(0)
    }

    /// Takes a shared body out without copying it (`None`, and nothing
    /// changed, when the body is a buffer of its own).
    pub(crate) fn take_shared(&mut self) -> Option<bytes::Bytes> {
        match std::mem::replace(&mut self.data, Body::Own(Vec::new())) {
            Body::Shared(b) => Some(b),
            own => {
                self.data = own;
                None
            }
        }
    }

    /// Takes the body, leaving it empty (a shared body is copied).
    pub fn take_data(&mut self) -> Vec<u8> {
        std::mem::take(self.data.own(0))
    }

    /// Drops the body, returning its buffer when it had one of its own (to
    /// be recycled); a shared piece is only let go, never copied.
    pub fn take_buffer(&mut self) -> Vec<u8> {
        match std::mem::replace(&mut self.data, Body::Own(Vec::new())) {
            Body::Own(v) => v,
            Body::Pieces(p) => p.flat.into_inner().unwrap_or_default(),
            Body::Shared(_) => Vec::new(),
        }
    }

    /// Number of body bytes (reference `size`).
    pub fn size(&self) -> usize {
        self.data.len()
    }

    /// The continuation flag.
    pub fn flag(&self) -> Flag {
        self.flag
    }

    /// Sets the continuation flag.
    pub fn set_flag(&mut self, f: Flag) {
        self.flag = f;
    }

    /// Whether the chunk is framed with a body section (blank line, body, CRLF):
    /// true when it has data, a Content-Type, or was received with a blank line.
    pub fn has_body(&self) -> bool {
        self.body || self.size() > 0 || self.header(HeaderName::ContentType).is_some()
    }

    pub(crate) fn mark_body(&mut self) {
        self.body = true;
    }

    pub(crate) fn mark_malformed(&mut self, e: HeaderError) {
        self.malformed = Some(Box::new(e));
    }

    /// The first value of a known header.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.headers
            .iter()
            .find(|e| e.name == name)
            .map(|e| self.get(e.value))
    }

    /// The first value of the header called `name` (any case; known or extension).
    pub fn header_by_name(&self, name: &str) -> Option<&str> {
        let known = HeaderName::from_wire(name);
        if known != HeaderName::Other {
            return self.header(known);
        }
        self.headers
            .iter()
            .find(|e| {
                e.name == HeaderName::Other && self.get(e.raw_name).eq_ignore_ascii_case(name)
            })
            .map(|e| self.get(e.value))
    }

    fn entry_name(&self, e: &Entry) -> &str {
        e.name.canonical().unwrap_or_else(|| self.get(e.raw_name))
    }

    /// Every header in stored order as (name, value); known names in canonical case.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.headers
            .iter()
            .map(|e| (self.entry_name(e), self.get(e.value)))
    }

    /// Number of headers.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// Header `i` in stored order.
    pub fn header_at(&self, i: usize) -> Option<(&str, &str)> {
        self.headers
            .get(i)
            .map(|e| (self.entry_name(e), self.get(e.value)))
    }

    /// Appends a header without checking its value; `verify_headers` checks
    /// it later.
    #[cfg(test)]
    pub(crate) fn push_header_unchecked(&mut self, name: HeaderName, raw_name: &str, value: &str) {
        self.checked = false;
        self.push_header_checked(name, raw_name, value);
    }

    /// Appends a header whose value the caller has validated (or whose
    /// problem the decoder recorded with `mark_malformed`).
    pub(crate) fn push_header_checked(&mut self, name: HeaderName, raw_name: &str, value: &str) {
        let raw_name = if name == HeaderName::Other {
            self.push_text(raw_name)
        } else {
            Span::default()
        };
        let value = self.push_text(value);
        self.headers.push(Entry {
            name,
            raw_name,
            value,
        });
    }

    /// Sets a header by name (reference `add_header`): a header of the same
    /// name (any case) is replaced in place, otherwise it is appended. Known
    /// headers are validated; names must be tokens; values may not contain CR/LF.
    pub fn add_header_raw(&mut self, name: &str, value: &str) -> Result<(), ChunkError> {
        if !is_header_name(name) {
            return Err(ChunkError::InvalidHeaderName);
        }
        check_value(value)?;
        let known = HeaderName::from_wire(name);
        validate(known, value)?;
        self.set_entry(known, name, value);
        Ok(())
    }

    fn set_entry(&mut self, known: HeaderName, name: &str, value: &str) {
        let pos = self.headers.iter().position(|e| {
            e.name == known
                && (known != HeaderName::Other || self.get(e.raw_name).eq_ignore_ascii_case(name))
        });
        let v = self.push_text(value);
        match pos {
            Some(i) => {
                self.headers[i].value = v;
                // Drop later duplicates so that "set" means one value.
                let mut j = i + 1;
                while j < self.headers.len() {
                    let e = self.headers[j];
                    let same = e.name == known
                        && (known != HeaderName::Other
                            || self.get(e.raw_name).eq_ignore_ascii_case(name));
                    if same {
                        self.headers.remove(j);
                    } else {
                        j += 1;
                    }
                }
            }
            None => {
                let raw = if known == HeaderName::Other {
                    self.push_text(name)
                } else {
                    Span::default()
                };
                self.headers.push(Entry {
                    name: known,
                    raw_name: raw,
                    value: v,
                });
            }
        }
    }

    /// Removes every header called `name` (any case); returns how many were removed.
    pub fn remove_header(&mut self, name: &str) -> usize {
        let known = HeaderName::from_wire(name);
        let before = self.headers.len();
        let text = &self.text;
        self.headers.retain(|e| {
            let same = e.name == known
                && (known != HeaderName::Other
                    || text
                        [e.raw_name.start as usize..(e.raw_name.start + e.raw_name.len) as usize]
                        .eq_ignore_ascii_case(name));
            !same
        });
        before - self.headers.len()
    }

    fn set_known(&mut self, name: HeaderName, value: &str) {
        self.set_entry(name, "", value);
    }

    // ---- typed accessors ----

    /// To-Path as URIs.
    pub fn to_path(&self) -> Result<Vec<Uri>, ChunkError> {
        self.path(HeaderName::ToPath, "To-Path")
    }

    /// From-Path as URIs.
    pub fn from_path(&self) -> Result<Vec<Uri>, ChunkError> {
        self.path(HeaderName::FromPath, "From-Path")
    }

    /// Use-Path as URIs.
    pub fn use_path(&self) -> Result<Vec<Uri>, ChunkError> {
        self.path(HeaderName::UsePath, "Use-Path")
    }

    fn path(&self, h: HeaderName, name: &'static str) -> Result<Vec<Uri>, ChunkError> {
        let v = self.header(h).ok_or(ChunkError::MissingHeader(name))?;
        parse_path(v).map_err(|e| {
            ChunkError::Header(HeaderError {
                name: name.into(),
                what: e.to_string(),
            })
        })
    }

    /// Sets To-Path.
    pub fn set_to_path(&mut self, path: &[Uri]) {
        self.set_known(HeaderName::ToPath, &format_path(path));
    }

    /// Sets From-Path.
    pub fn set_from_path(&mut self, path: &[Uri]) {
        self.set_known(HeaderName::FromPath, &format_path(path));
    }

    /// Sets Use-Path.
    pub fn set_use_path(&mut self, path: &[Uri]) {
        self.set_known(HeaderName::UsePath, &format_path(path));
    }

    /// Message-ID.
    pub fn message_id(&self) -> Option<&str> {
        self.header(HeaderName::MessageId).map(str::trim)
    }

    /// Sets Message-ID (must be an RFC 4975 ident).
    pub fn set_message_id(&mut self, id: &str) -> Result<(), ChunkError> {
        validate(HeaderName::MessageId, id)?;
        self.set_known(HeaderName::MessageId, id);
        Ok(())
    }

    /// Byte-Range, if present.
    pub fn byte_range(&self) -> Result<Option<ByteRange>, ChunkError> {
        self.header(HeaderName::ByteRange)
            .map(ByteRange::parse)
            .transpose()
            .map_err(ChunkError::from)
    }

    /// Sets Byte-Range after checking it.
    pub fn set_byte_range(&mut self, r: ByteRange) -> Result<(), ChunkError> {
        r.check()?;
        let mut buf = [0u8; 64];
        self.set_known(HeaderName::ByteRange, r.write_into(&mut buf));
        Ok(())
    }

    /// Status, if present.
    pub fn status(&self) -> Result<Option<Status>, ChunkError> {
        self.header(HeaderName::Status)
            .map(Status::parse)
            .transpose()
            .map_err(ChunkError::from)
    }

    /// Sets Status.
    pub fn set_status(&mut self, s: &Status) -> Result<(), ChunkError> {
        if s.namespace > 999 || !(100..=999).contains(&s.code) {
            return Err(ChunkError::InvalidCode);
        }
        if let Some(c) = &s.comment {
            check_value(c)?;
        }
        self.set_known(HeaderName::Status, &s.to_string());
        Ok(())
    }

    /// Failure-Report, with its implied default `yes`.
    pub fn failure_report(&self) -> Result<ReportMode, ChunkError> {
        match self.header(HeaderName::FailureReport) {
            None => Ok(ReportMode::Yes),
            Some(v) => Ok(ReportMode::parse_failure(v)?),
        }
    }

    /// Success-Report, with its implied default `no`.
    pub fn success_report(&self) -> Result<ReportMode, ChunkError> {
        match self.header(HeaderName::SuccessReport) {
            None => Ok(ReportMode::No),
            Some(v) => Ok(ReportMode::parse_success(v)?),
        }
    }

    /// Sets Failure-Report.
    pub fn set_failure_report(&mut self, m: ReportMode) {
        self.set_known(HeaderName::FailureReport, m.as_str());
    }

    /// Sets Success-Report (`partial` is not a Success-Report value).
    pub fn set_success_report(&mut self, m: ReportMode) -> Result<(), ChunkError> {
        if m == ReportMode::Partial {
            return Err(ChunkError::Header(HeaderError {
                name: "Success-Report".into(),
                what: "expected yes or no".into(),
            }));
        }
        self.set_known(HeaderName::SuccessReport, m.as_str());
        Ok(())
    }

    /// Content-Type, if present.
    pub fn content_type(&self) -> Option<&str> {
        self.header(HeaderName::ContentType).map(str::trim)
    }

    /// Sets Content-Type.
    pub fn set_content_type(&mut self, ct: &str) -> Result<(), ChunkError> {
        self.add_header_raw("Content-Type", ct)
    }

    /// Expires / Min-Expires / Max-Expires.
    pub fn expires(&self, which: HeaderName) -> Result<Option<u64>, ChunkError> {
        match which {
            HeaderName::Expires | HeaderName::MinExpires | HeaderName::MaxExpires => {}
            _ => return Err(ChunkError::WrongKind("not an Expires header")),
        }
        self.header(which)
            .map(|v| parse_expires(which, v))
            .transpose()
            .map_err(ChunkError::from)
    }

    /// Digest parameters of WWW-Authenticate, Authorization or Authentication-Info.
    pub fn digest(&self, which: HeaderName) -> Result<Option<DigestParams>, ChunkError> {
        let with_scheme = match which {
            HeaderName::WwwAuthenticate | HeaderName::Authorization => true,
            HeaderName::AuthenticationInfo => false,
            _ => return Err(ChunkError::WrongKind("not a digest header")),
        };
        self.header(which)
            .map(|v| DigestParams::parse(which, v, with_scheme))
            .transpose()
            .map_err(ChunkError::from)
    }

    /// Reference `verify_headers`: To-Path and From-Path are present and
    /// every known header is well formed.
    pub fn verify_headers(&self) -> Result<(), ChunkError> {
        if let Some(e) = &self.malformed {
            return Err(ChunkError::Header((**e).clone()));
        }
        if self.header(HeaderName::ToPath).is_none() {
            return Err(ChunkError::MissingHeader("To-Path"));
        }
        if self.header(HeaderName::FromPath).is_none() {
            return Err(ChunkError::MissingHeader("From-Path"));
        }
        if !self.checked {
            for e in &self.headers {
                validate(e.name, self.get(e.value))?;
            }
        }
        Ok(())
    }

    // ---- encoding ----

    /// Appends the start line, the headers in wire order and, when the chunk
    /// has a body, the blank line (reference `encode_start`).
    pub fn encode_start(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"MSRP ");
        out.extend_from_slice(self.transaction_id().as_bytes());
        out.push(b' ');
        match self.kind {
            Kind::Request { method } => out.extend_from_slice(self.get(method).as_bytes()),
            Kind::Response { code, comment } => {
                let mut b = [0u8; 3];
                b[0] = b'0' + (code / 100 % 10) as u8;
                b[1] = b'0' + (code / 10 % 10) as u8;
                b[2] = b'0' + (code % 10) as u8;
                out.extend_from_slice(&b);
                if let Some(c) = comment {
                    out.push(b' ');
                    out.extend_from_slice(self.get(c).as_bytes());
                }
            }
        }
        out.extend_from_slice(b"\r\n");
        let mut put = |e: &Entry| {
            out.extend_from_slice(self.entry_name(e).as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(self.get(e.value).as_bytes());
            out.extend_from_slice(b"\r\n");
        };
        // To-Path, From-Path, the other headers, MIME headers, Content-Type.
        // Extension headers named Content-* are MIME headers too (RFC 4975 `Other-Mime-header`).
        let rank = |e: &Entry| match e.name {
            HeaderName::ToPath => 0,
            HeaderName::FromPath => 1,
            HeaderName::ContentType => 4,
            n if n.is_mime() => 3,
            HeaderName::Other
                if self.get(e.raw_name).len() > 8
                    && self.get(e.raw_name)[..8].eq_ignore_ascii_case("content-") =>
            {
                3
            }
            _ => 2,
        };
        for r in 0..5 {
            for e in self.headers.iter().filter(|e| rank(e) == r) {
                put(e);
            }
        }
        if self.has_body() {
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Appends the end-line with `flag` (reference `encode_end`), preceded by
    /// the CRLF that closes the body when the chunk has one.
    pub fn encode_end(&self, flag: Flag, out: &mut Vec<u8>) {
        encode_end_line(self.transaction_id(), flag, self.has_body(), out);
    }

    /// Whether `data` contains this chunk's end-line marker (`-------` and
    /// the transaction id). Checked conservatively: any occurrence counts.
    pub fn body_contains_end_line(&self, data: &[u8]) -> bool {
        contains_end_line(self.transaction_id(), data)
    }

    /// Picks fresh random transaction ids until the body no longer contains
    /// the end-line. Returns whether the id was changed.
    pub fn ensure_unique_transaction_id(&mut self) -> bool {
        let mut changed = false;
        while self.body_contains_end_line(self.data.as_slice()) {
            let tid = ids::transaction_id();
            self.tid = self.push_text(&tid);
            changed = true;
        }
        changed
    }

    /// The whole chunk (reference `encode`): start, body, end-line with the
    /// chunk's flag. Fails when the body contains the end-line.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ChunkError> {
        let data = self.data.as_slice();
        if self.body_contains_end_line(data) {
            return Err(ChunkError::EndLineInBody);
        }
        out.reserve(self.text.len() + data.len() + 64);
        self.encode_start(out);
        out.extend_from_slice(data);
        self.encode_end(self.flag, out);
        Ok(())
    }

    /// [`Chunk::encode`] into a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ChunkError> {
        let mut v = Vec::new();
        self.encode(&mut v)?;
        Ok(v)
    }
}

/// Writes the end-line of a chunk with transaction id `tid` (after the
/// CRLF that ends a body, when there is one).
pub fn encode_end_line(tid: &str, flag: Flag, has_body: bool, out: &mut Vec<u8>) {
    if has_body {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"-------");
    out.extend_from_slice(tid.as_bytes());
    out.push(flag as u8);
    out.extend_from_slice(b"\r\n");
}

/// Whether `data` contains the end-line marker of transaction `tid`
/// (`-------` and the id). Conservative: any occurrence counts.
pub fn contains_end_line(tid: &str, data: &[u8]) -> bool {
    let tid = tid.as_bytes();
    let need = 7 + tid.len();
    // A scan for '-' costs nothing to set up and runs fastest where '-' is
    // rare; after 16 that did not start the marker (binary data has one in
    // about 256 bytes) the rest of a large body is searched for the marker
    // itself, two of its bytes at a time.
    let mut from = 0;
    let mut misses = 0;
    while let Some(i) = memchr::memchr(b'-', &data[from..]) {
        let p = from + i;
        if data.len() - p < need {
            return false;
        }
        if data[p..p + 7] == *b"-------" && data[p + 7..p + need] == *tid {
            return true;
        }
        from = p + 1;
        misses += 1;
        if misses >= 16 && data.len() - from >= 2048 && need <= 7 + 64 {
            let mut marker = [b'-'; 7 + 64];
            marker[7..need].copy_from_slice(tid);
            return memchr::memmem::find(&data[from..], &marker[..need]).is_some();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send() -> Chunk {
        let mut c = Chunk::request_with_id("a786hjs2", "SEND").unwrap();
        c.add_header_raw(
            "From-Path",
            "msrp://alicepc.example.com:7777/iau39soe2843z;tcp",
        )
        .unwrap();
        c.add_header_raw("Content-Type", "text/plain").unwrap();
        c.add_header_raw("To-Path", "msrp://bob.example.com:8888/9di4eae923wzd;tcp")
            .unwrap();
        c.set_message_id("87652491").unwrap();
        c.set_byte_range(ByteRange {
            start: 1,
            end: Some(25),
            total: Some(25),
        })
        .unwrap();
        c.set_data(b"Hey Bob, are you there?");
        c
    }

    /// A body in pieces of shared buffers reads, compares, clones, encodes
    /// and changes as the same bytes in one buffer would.
    #[test]
    fn a_body_in_pieces_behaves_as_one_body() {
        let parts: [&[u8]; 3] = [b"Hey Bob, ", b"are you ", b"there?"];
        let whole: Vec<u8> = parts.concat();
        let mut one = send();
        one.set_data(&whole);
        let mut c = send();
        c.set_data_shared(bytes::Bytes::copy_from_slice(parts[0]));
        for p in &parts[1..] {
            c.append_shared(bytes::Bytes::copy_from_slice(p));
        }
        assert_eq!(c.shared_pieces(), 3);
        assert!(c.body_is_shared());
        assert_eq!(c.size(), whole.len());
        assert_eq!(c.data_pieces().collect::<Vec<_>>(), parts.to_vec());
        // Reading it whole leaves the pieces as they were.
        assert_eq!(c.data(), &whole[..]);
        assert_eq!(c.shared_pieces(), 3);
        assert!(c == one);
        assert_eq!(c.to_bytes().unwrap(), one.to_bytes().unwrap());
        let copy = c.clone();
        assert_eq!(copy.shared_pieces(), 3);
        assert_eq!(copy.data(), &whole[..]);
        // Once read whole, the body is that buffer when it grows; a body
        // not read whole takes pieces up to MAX_PIECES, then becomes a
        // buffer of its own with every byte.
        c.append_shared(bytes::Bytes::from_static(b" 1"));
        assert_eq!(c.shared_pieces(), 0, "the flat copy, grown");
        assert_eq!(c.data(), b"Hey Bob, are you there? 1");
        let mut d = copy.clone();
        d.append_shared(bytes::Bytes::from_static(b" 2"));
        assert_eq!(d.shared_pieces(), MAX_PIECES);
        d.append_shared(bytes::Bytes::from_static(b" 3"));
        assert_eq!(d.shared_pieces(), 0);
        assert_eq!(d.data(), b"Hey Bob, are you there? 2 3");
        // Taken out: the bytes (copied), then an empty body.
        let mut e = copy.clone();
        assert_eq!(e.take_data(), whole);
        assert_eq!(e.size(), 0);
        // Appending to a body in pieces copies them into one buffer.
        let mut f = copy;
        f.append_data(b"!");
        assert!(!f.body_is_shared());
        assert_eq!(f.data(), b"Hey Bob, are you there?!");
    }

    #[test]
    fn encodes_rfc4975_example_with_paths_first_and_content_type_last() {
        let mut c = send();
        c.set_byte_range(ByteRange {
            start: 1,
            end: Some(23),
            total: Some(23),
        })
        .unwrap();
        let wire = String::from_utf8(c.to_bytes().unwrap()).unwrap();
        assert_eq!(
            wire,
            "MSRP a786hjs2 SEND\r\n\
             To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
             From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n\
             Message-ID: 87652491\r\n\
             Byte-Range: 1-23/23\r\n\
             Content-Type: text/plain\r\n\
             \r\n\
             Hey Bob, are you there?\r\n\
             -------a786hjs2$\r\n"
        );
    }

    #[test]
    fn empty_send_has_no_blank_line() {
        let mut c = Chunk::request_with_id("tid1", "SEND").unwrap();
        c.add_header_raw("To-Path", "msrp://b:1/s;tcp").unwrap();
        c.add_header_raw("From-Path", "msrp://a:1/s;tcp").unwrap();
        c.set_byte_range(ByteRange {
            start: 1,
            end: Some(0),
            total: Some(0),
        })
        .unwrap();
        let wire = String::from_utf8(c.to_bytes().unwrap()).unwrap();
        assert_eq!(
            wire,
            "MSRP tid1 SEND\r\nTo-Path: msrp://b:1/s;tcp\r\nFrom-Path: msrp://a:1/s;tcp\r\nByte-Range: 1-0/0\r\n-------tid1$\r\n"
        );
    }

    #[test]
    fn response_line_and_make_response() {
        let c = send();
        let r = c.make_response(200, Some("OK")).unwrap();
        assert_eq!(r.code(), Some(200));
        assert_eq!(r.transaction_id(), "a786hjs2");
        let wire = String::from_utf8(r.to_bytes().unwrap()).unwrap();
        assert_eq!(
            wire,
            "MSRP a786hjs2 200 OK\r\n\
             To-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n\
             From-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
             -------a786hjs2$\r\n"
        );
        assert!(matches!(
            r.make_response(200, None),
            Err(ChunkError::WrongKind(_))
        ));
    }

    #[test]
    fn mime_headers_go_after_the_others_and_before_content_type() {
        let mut c = Chunk::request_with_id("tid1", "SEND").unwrap();
        c.add_header_raw("Content-Type", "text/plain").unwrap();
        c.add_header_raw("Content-Disposition", "inline").unwrap();
        c.add_header_raw("X-Ext", "1").unwrap();
        c.add_header_raw("To-Path", "msrp://b:1/s;tcp").unwrap();
        c.add_header_raw("content-id", "<x@y>").unwrap();
        c.add_header_raw("From-Path", "msrp://a:1/s;tcp").unwrap();
        let mut out = Vec::new();
        c.encode_start(&mut out);
        let names: Vec<_> = String::from_utf8(out)
            .unwrap()
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_owned()))
            .collect();
        assert_eq!(
            names,
            [
                "To-Path",
                "From-Path",
                "X-Ext",
                "Content-Disposition",
                "Content-ID",
                "Content-Type"
            ]
        );
    }

    #[test]
    fn add_header_replaces_same_name_in_any_case() {
        let mut c = send();
        c.add_header_raw("x-thing", "1").unwrap();
        c.add_header_raw("X-Thing", "2").unwrap();
        c.add_header_raw("content-type", "text/html").unwrap();
        assert_eq!(c.header_by_name("X-THING"), Some("2"));
        assert_eq!(c.content_type(), Some("text/html"));
        assert_eq!(
            c.headers()
                .filter(|(n, _)| n.eq_ignore_ascii_case("x-thing"))
                .count(),
            1
        );
        assert_eq!(c.remove_header("X-thing"), 1);
        assert_eq!(c.header_by_name("x-thing"), None);
    }

    #[test]
    fn rejects_bad_builder_input() {
        assert_eq!(
            Chunk::request("send").unwrap_err(),
            ChunkError::InvalidMethod
        );
        assert_eq!(
            Chunk::request_with_id("ab", "SEND").unwrap_err(),
            ChunkError::InvalidTransactionId
        );
        assert_eq!(
            Chunk::response("abcd", 99, None).unwrap_err(),
            ChunkError::InvalidCode
        );
        assert_eq!(
            Chunk::response("abcd", 200, Some("a\r\nb")).unwrap_err(),
            ChunkError::LineBreakInValue
        );
        let mut c = send();
        assert_eq!(
            c.add_header_raw("X-A", "v\nInjected: 1").unwrap_err(),
            ChunkError::LineBreakInValue
        );
        assert_eq!(
            c.add_header_raw("Bad Name", "v").unwrap_err(),
            ChunkError::InvalidHeaderName
        );
        assert!(matches!(
            c.add_header_raw("Byte-Range", "0-1/1"),
            Err(ChunkError::Header(_))
        ));
        assert!(matches!(
            c.add_header_raw("To-Path", "msrp://x"),
            Err(ChunkError::Header(_))
        ));
        assert!(c.set_message_id("x").is_err());
        assert!(c.set_success_report(ReportMode::Partial).is_err());
    }

    #[test]
    fn report_defaults_are_implied() {
        let mut c = send();
        assert_eq!(c.failure_report().unwrap(), ReportMode::Yes);
        assert_eq!(c.success_report().unwrap(), ReportMode::No);
        c.set_failure_report(ReportMode::Partial);
        c.set_success_report(ReportMode::Yes).unwrap();
        assert_eq!(c.failure_report().unwrap(), ReportMode::Partial);
        assert_eq!(c.success_report().unwrap(), ReportMode::Yes);
    }

    #[test]
    fn verify_headers_names_what_is_missing() {
        let mut c = Chunk::request("SEND").unwrap();
        assert_eq!(
            c.verify_headers().unwrap_err(),
            ChunkError::MissingHeader("To-Path")
        );
        c.add_header_raw("To-Path", "msrp://b:1/s;tcp").unwrap();
        assert_eq!(
            c.verify_headers().unwrap_err(),
            ChunkError::MissingHeader("From-Path")
        );
        c.add_header_raw("From-Path", "msrp://a:1/s;tcp").unwrap();
        c.verify_headers().unwrap();
        c.push_header_unchecked(HeaderName::ByteRange, "", "garbage");
        assert!(matches!(c.verify_headers(), Err(ChunkError::Header(_))));
    }

    #[test]
    fn refuses_to_encode_a_body_holding_its_end_line() {
        let mut c = send();
        c.set_data(b"evil\r\n-------a786hjs2$\r\nmore");
        assert_eq!(c.to_bytes().unwrap_err(), ChunkError::EndLineInBody);
        assert!(c.ensure_unique_transaction_id());
        assert_ne!(c.transaction_id(), "a786hjs2");
        assert!(c.to_bytes().is_ok());
    }

    /// Small and large bodies (the two searches) find the marker anywhere,
    /// and only the whole marker of this transaction id.
    #[test]
    fn the_end_line_marker_is_found_in_bodies_of_any_size() {
        for len in [100usize, 5000] {
            let base: Vec<u8> = (0..len)
                .map(|i| {
                    if i % 9 == 0 {
                        b'-'
                    } else {
                        b'a' + (i % 26) as u8
                    }
                })
                .collect();
            assert!(!contains_end_line("a786hjs2", &base), "{len}");
            for at in [0, len / 2, len - 15] {
                let mut d = base.clone();
                d[at..at + 15].copy_from_slice(b"-------a786hjs2");
                assert!(contains_end_line("a786hjs2", &d), "{len} at {at}");
                d[at + 3] = b'x';
                assert!(!contains_end_line("a786hjs2", &d), "{len} at {at}");
                d[at..at + 15].copy_from_slice(b"-------a786hjs3");
                assert!(!contains_end_line("a786hjs2", &d), "{len} at {at}");
            }
            // Cut off at the end: not a marker.
            let mut d = base.clone();
            d[len - 14..].copy_from_slice(b"-------a786hjs");
            assert!(!contains_end_line("a786hjs2", &d));
        }
    }

    #[test]
    fn typed_accessors() {
        let mut c = send();
        assert_eq!(c.to_path().unwrap()[0].port, Some(8888));
        assert_eq!(c.byte_range().unwrap().unwrap().total, Some(25));
        c.set_status(&Status {
            namespace: 0,
            code: 200,
            comment: Some("OK".into()),
        })
        .unwrap();
        assert_eq!(c.status().unwrap().unwrap().code, 200);
        c.add_header_raw("Expires", "600").unwrap();
        assert_eq!(c.expires(HeaderName::Expires).unwrap(), Some(600));
        assert_eq!(c.expires(HeaderName::MinExpires).unwrap(), None);
        c.add_header_raw("WWW-Authenticate", "Digest realm=\"r\", nonce=\"n\"")
            .unwrap();
        assert_eq!(
            c.digest(HeaderName::WwwAuthenticate)
                .unwrap()
                .unwrap()
                .get("realm"),
            Some("r")
        );
        assert!(c.use_path().is_err());
        let u = c.to_path().unwrap();
        c.set_use_path(&u);
        assert_eq!(c.use_path().unwrap(), u);
        let copy = c.clone();
        assert_eq!(copy, c);
    }
}
