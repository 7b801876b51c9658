//! Streaming MSRP decoder: bytes in, events out (chunk head, body slices,
//! end with flag), in any segmentation, without buffering bodies.
//!
//! Sans-IO. The caller pushes whatever bytes it has with [`Decoder::decode`]
//! and gets back how many it consumed and at most one event; it calls again
//! with the rest. Body data is returned as slices of the caller's input (or,
//! for a few bytes that looked like the start of an end-line and were not, of
//! the decoder's own buffer), so bodies are never copied here.
//!
//! Framing: a body ends only at the complete end-line `CRLF "-------" tid
//! flag CRLF` of the chunk's own transaction id. A partial match at the end
//! of one push is held and continued on the next. A stream that cannot be
//! framed any more gives a fatal [`DecodeError`]; after that the decoder only
//! answers [`DecodeError::Failed`]. A malformed header inside a well-framed
//! chunk is not fatal: the head event carries it so the caller can answer 400.

use std::fmt;

use super::chunk::{Chunk, Flag, is_method};
use super::header::{ByteRange, HeaderError, HeaderName, is_ident, validate};

/// Bounds on what the decoder buffers for one chunk head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest start line or header line, CRLF included (default 16 KiB).
    pub max_line: usize,
    /// Most header lines in one chunk (default 64).
    pub max_headers: usize,
    /// Largest head: start line and all header lines (default 64 KiB).
    pub max_head: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: 16 * 1024,
            max_headers: 64,
            max_head: 64 * 1024,
        }
    }
}

/// A fatal decoding error: the stream can no longer be framed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The start line is not `MSRP <tid> <METHOD>` or `MSRP <tid> <code> [comment]`.
    BadStartLine(&'static str),
    /// A line ends with LF but no CR.
    BareLineFeed,
    /// A line is longer than [`Limits::max_line`].
    LineTooLong,
    /// More header lines than [`Limits::max_headers`].
    TooManyHeaders,
    /// The head is larger than [`Limits::max_head`].
    HeadTooLarge,
    /// A line starting with `-------` does not end this chunk.
    BadEndLine,
    /// An earlier fatal error stopped the decoder.
    Failed,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadStartLine(w) => write!(f, "malformed MSRP start line: {w}"),
            DecodeError::BareLineFeed => f.write_str("line ends with LF without CR"),
            DecodeError::LineTooLong => f.write_str("line longer than the configured limit"),
            DecodeError::TooManyHeaders => {
                f.write_str("more header lines than the configured limit")
            }
            DecodeError::HeadTooLarge => f.write_str("chunk head larger than the configured limit"),
            DecodeError::BadEndLine => {
                f.write_str("end-line does not match the chunk's transaction id or flag")
            }
            DecodeError::Failed => f.write_str("decoder stopped by an earlier error"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// What the decoder found.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A chunk's start line and headers; its data is empty. `error` holds the
    /// first malformed header, if any (answer such a request with 400).
    Head {
        /// The chunk without body (boxed: a chunk keeps up to eight
        /// header entries inline, and moving it through each return and
        /// match cost more than its allocation).
        chunk: Box<Chunk>,
        /// First header problem found, if any (boxed: rare, and the event
        /// is moved on every return).
        error: Option<Box<HeaderError>>,
        /// The body length its Byte-Range announces (`end - start + 1`),
        /// when that header is valid and has a known end: what the decoder
        /// parsed, so that the body's room can be sized without parsing it
        /// again.
        announced: Option<u64>,
    },
    /// Body bytes of the current chunk.
    Data(&'a [u8]),
    /// The end-line of the current chunk, with its flag.
    End(Flag),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Start,
    Headers,
    Body,
    Failed,
}

/// The streaming decoder for one byte stream (one connection).
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    state: State,
    carry: Vec<u8>,
    chunk: Option<Box<Chunk>>,
    header_error: Option<HeaderError>,
    /// See [`Event::Head`]'s `announced`.
    announced: Option<u64>,
    head_bytes: usize,
    header_lines: usize,
    seen: u32,
    /// Last value that passed validation for To-Path, From-Path and
    /// Content-Type: chunks on one connection repeat them, and the same bytes
    /// get the same verdict, so they are checked once.
    valid_cache: [Vec<u8>; 3],
    pending_end: Option<Flag>,
    pat: Vec<u8>,
    flag_pos: usize,
    /// A substring searcher for `pat` up to its flag, made for the first
    /// large input of a body (see [`FINDER_MIN`]).
    finder: Option<memchr::memmem::Finder<'static>>,
    held: usize,
    held_virtual: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Limits::default())
    }
}

fn fail(state: &mut State, e: DecodeError) -> DecodeError {
    *state = State::Failed;
    e
}

impl Decoder {
    /// A decoder with the given limits.
    pub fn new(limits: Limits) -> Decoder {
        Decoder {
            limits,
            state: State::Start,
            carry: Vec::new(),
            chunk: None,
            header_error: None,
            announced: None,
            head_bytes: 0,
            header_lines: 0,
            seen: 0,
            valid_cache: Default::default(),
            pending_end: None,
            pat: Vec::with_capacity(48),
            flag_pos: 0,
            finder: None,
            held: 0,
            held_virtual: false,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Changes the limits; they apply from the next line on.
    pub fn set_limits(&mut self, l: Limits) {
        self.limits = l;
    }

    /// True between chunks (nothing partial is buffered): a connection that
    /// closes now closed cleanly.
    pub fn is_idle(&self) -> bool {
        self.state == State::Start && self.carry.is_empty() && self.pending_end.is_none()
    }

    /// True inside a chunk's body with no body bytes held back as a
    /// possible start of the end-line: the decoder needs nothing from
    /// earlier input, so the next body bytes may be decoded wherever they
    /// lie (the engine reads them straight into the chunk's own buffer).
    pub fn body_clear(&self) -> bool {
        self.state == State::Body
            && self.pending_end.is_none()
            && (self.held == 0 || (self.held_virtual && self.held == 2))
    }

    /// True after a fatal error.
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Decodes from `input`. Returns the number of bytes consumed and at most
    /// one event. Call again with `&input[consumed..]` until everything is
    /// consumed; `(input.len(), None)` means "give me more bytes".
    pub fn decode<'a>(
        &'a mut self,
        input: &'a [u8],
    ) -> Result<(usize, Option<Event<'a>>), DecodeError> {
        let mut pos = 0;
        loop {
            match self.state {
                State::Failed => return Err(DecodeError::Failed),
                State::Body => return self.body(input, pos),
                State::Start | State::Headers => {
                    let rest = &input[pos..];
                    if rest.is_empty() {
                        return Ok((pos, None));
                    }
                    if let Some(f) = self.pending_end.take() {
                        // The LF of the end-line was left unconsumed when the
                        // head was returned, so that the caller calls again.
                        debug_assert_eq!(rest[0], b'\n');
                        self.reset_chunk();
                        return Ok((pos + 1, Some(Event::End(f))));
                    }
                    let Some(nl) = memchr::memchr(b'\n', rest) else {
                        self.carry_partial(rest)?;
                        return Ok((input.len(), None));
                    };
                    let used = nl + 1;
                    let line_len = self.carry.len() + used;
                    if line_len > self.limits.max_line {
                        return Err(fail(&mut self.state, DecodeError::LineTooLong));
                    }
                    self.head_bytes += line_len;
                    if self.state == State::Headers && self.head_bytes > self.limits.max_head {
                        return Err(fail(&mut self.state, DecodeError::HeadTooLarge));
                    }
                    pos += used;
                    let ev = if self.carry.is_empty() {
                        self.line(&rest[..used])?
                    } else {
                        let mut line = std::mem::take(&mut self.carry);
                        line.extend_from_slice(&rest[..used]);
                        let r = self.line(&line);
                        line.clear();
                        self.carry = line;
                        r?
                    };
                    if ev {
                        let ev = self.head_event();
                        if self.pending_end.is_some() {
                            // Head of a chunk without body: keep the end-line's
                            // LF for the End event of the next call.
                            return Ok((pos - 1, Some(ev)));
                        }
                        return Ok((pos, Some(ev)));
                    }
                }
            }
        }
    }

    fn carry_partial(&mut self, rest: &[u8]) -> Result<(), DecodeError> {
        if self.carry.len() + rest.len() > self.limits.max_line {
            return Err(fail(&mut self.state, DecodeError::LineTooLong));
        }
        if self.state == State::Headers
            && self.head_bytes + self.carry.len() + rest.len() > self.limits.max_head
        {
            return Err(fail(&mut self.state, DecodeError::HeadTooLarge));
        }
        self.carry.extend_from_slice(rest);
        // Reject garbage early rather than after a whole line of it.
        if self.state == State::Start {
            let n = self.carry.len().min(5);
            if self.carry[..n] != b"MSRP "[..n] && !(n <= 2 && self.carry[..n] == b"\r\n"[..n]) {
                return Err(fail(
                    &mut self.state,
                    DecodeError::BadStartLine("does not begin with \"MSRP \""),
                ));
            }
        }
        Ok(())
    }

    fn reset_chunk(&mut self) {
        self.state = State::Start;
        self.chunk = None;
        self.header_error = None;
        self.announced = None;
        self.head_bytes = 0;
        self.header_lines = 0;
        self.seen = 0;
        self.held = 0;
        self.held_virtual = false;
    }

    /// Handles one complete line (with its LF). Returns true when the head
    /// is done (the chunk stays in `self.chunk` for [`Decoder::head_event`]:
    /// returning it from here would copy it through every line's result).
    fn line(&mut self, raw: &[u8]) -> Result<bool, DecodeError> {
        let n = raw.len();
        if n < 2 || raw[n - 2] != b'\r' {
            return Err(fail(&mut self.state, DecodeError::BareLineFeed));
        }
        let line = &raw[..n - 2];
        match self.state {
            State::Start => {
                if line.is_empty() {
                    // Stray CRLF between chunks: tolerated.
                    self.head_bytes = 0;
                    return Ok(false);
                }
                let chunk = parse_start_line(line).map_err(|e| fail(&mut self.state, e))?;
                self.chunk = Some(Box::new(chunk));
                self.state = State::Headers;
                Ok(false)
            }
            State::Headers => {
                if line.is_empty() {
                    let chunk = self.chunk.as_mut().expect("chunk in Headers state");
                    chunk.mark_body();
                    self.flag_pos = end_pattern(&mut self.pat, chunk.transaction_id());
                    self.finder = None;
                    // The blank line's CRLF may double as the CRLF before the
                    // end-line (peers that send an empty body that way):
                    // start as if it matched, and drop it silently if the
                    // match fails.
                    self.held = 2;
                    self.held_virtual = true;
                    self.state = State::Body;
                    return Ok(true);
                }
                if line.starts_with(b"-------") {
                    let chunk = self.chunk.as_ref().expect("chunk in Headers state");
                    let tid = chunk.transaction_id().as_bytes();
                    let rest = &line[7..];
                    if rest.len() != tid.len() + 1 || &rest[..tid.len()] != tid {
                        return Err(fail(&mut self.state, DecodeError::BadEndLine));
                    }
                    let Some(flag) = Flag::from_byte(rest[tid.len()]) else {
                        return Err(fail(&mut self.state, DecodeError::BadEndLine));
                    };
                    self.pending_end = Some(flag);
                    return Ok(true);
                }
                self.header_lines += 1;
                if self.header_lines > self.limits.max_headers {
                    return Err(fail(&mut self.state, DecodeError::TooManyHeaders));
                }
                self.header_line(line);
                Ok(false)
            }
            State::Body | State::Failed => unreachable!("line() outside head states"),
        }
    }

    /// The head event for the chunk just read, carrying (and marking the
    /// chunk with) the first header problem found.
    fn head_event(&mut self) -> Event<'static> {
        let mut chunk = self.chunk.take().expect("a head was read");
        let error = self.header_error.take().map(Box::new);
        if let Some(e) = &error {
            chunk.mark_malformed((**e).clone());
        }
        Event::Head {
            chunk,
            error,
            announced: self.announced.take(),
        }
    }

    fn note_error(&mut self, name: &str, what: &str) {
        if self.header_error.is_none() {
            self.header_error = Some(HeaderError {
                name: name.to_owned(),
                what: what.to_owned(),
            });
        }
    }

    fn header_line(&mut self, line: &[u8]) {
        let Some(colon) = memchr::memchr(b':', line) else {
            self.note_error("(unnamed)", "header line without ':'");
            return;
        };
        let name_b = &line[..colon];
        if name_b.is_empty() || !super::chars::all(name_b, super::chars::TOKEN) {
            self.note_error("(unnamed)", "header name is not a token");
            return;
        }
        // Token characters are ASCII, so this cannot fail.
        let name = super::chars::utf8(name_b).unwrap_or("");
        let mut v = &line[colon + 1..];
        while let [b' ' | b'\t', rest @ ..] = v {
            v = rest;
        }
        while let [rest @ .., b' ' | b'\t'] = v {
            v = rest;
        }
        let known = HeaderName::from_wire(name);
        let value: std::borrow::Cow<'_, str> = match super::chars::utf8(v) {
            Ok(s) => s.into(),
            Err(_) => {
                self.note_error(name, "value is not valid UTF-8");
                String::from_utf8_lossy(v)
            }
        };
        let bit = 1u32 << (known as u32);
        if known != HeaderName::Other && self.seen & bit != 0 {
            let canon = known.canonical().unwrap_or(name);
            self.note_error(canon, "header appears twice");
        } else {
            let slot = match known {
                HeaderName::ToPath => Some(0),
                HeaderName::FromPath => Some(1),
                HeaderName::ContentType => Some(2),
                _ => None,
            };
            let cached = slot.is_some_and(|i| self.valid_cache[i] == value.as_bytes());
            if known == HeaderName::ByteRange {
                match ByteRange::parse(&value) {
                    Ok(r) => {
                        self.announced = r.end.map(|e| e.saturating_sub(r.start).saturating_add(1));
                    }
                    Err(e) => {
                        if self.header_error.is_none() {
                            self.header_error = Some(e);
                        }
                    }
                }
            } else if !cached {
                match validate(known, &value) {
                    Ok(()) => {
                        if let Some(i) = slot {
                            self.valid_cache[i].clear();
                            self.valid_cache[i].extend_from_slice(value.as_bytes());
                        }
                    }
                    Err(e) => {
                        if self.header_error.is_none() {
                            self.header_error = Some(e);
                        }
                    }
                }
            }
        }
        self.seen |= bit;
        let chunk = self.chunk.as_mut().expect("chunk in Headers state");
        chunk.push_header_checked(known, name, &value);
    }

    /// Compares `bytes` with the pattern at `off`; the flag position accepts
    /// `$`, `+` or `#` and records it.
    fn match_at(&mut self, off: usize, bytes: &[u8]) -> bool {
        let end = off + bytes.len();
        let fp = self.flag_pos;
        if end <= fp || off > fp {
            return self.pat[off..end] == *bytes;
        }
        let k = fp - off;
        if self.pat[off..fp] != bytes[..k] {
            return false;
        }
        if Flag::from_byte(bytes[k]).is_none() {
            return false;
        }
        if self.pat[fp + 1..end] != bytes[k + 1..] {
            return false;
        }
        self.pat[fp] = bytes[k];
        true
    }

    fn finish(&mut self, consumed: usize) -> (usize, Option<Event<'static>>) {
        let flag = Flag::from_byte(self.pat[self.flag_pos]).expect("flag checked when matched");
        self.reset_chunk();
        (consumed, Some(Event::End(flag)))
    }

    fn body<'a>(
        &'a mut self,
        input: &'a [u8],
        mut pos: usize,
    ) -> Result<(usize, Option<Event<'a>>), DecodeError> {
        let plen = self.pat.len();
        if self.held > 0 {
            let inp = &input[pos..];
            if inp.is_empty() {
                return Ok((pos, None));
            }
            let need = plen - self.held;
            let avail = need.min(inp.len());
            if self.match_at(self.held, &inp[..avail]) {
                pos += avail;
                if avail == need {
                    return Ok(self.finish(pos));
                }
                self.held += avail;
                return Ok((pos, None));
            }
            let n = self.held;
            // A virtual hold's first two bytes are the blank line, not data.
            let skip = if self.held_virtual { 2 } else { 0 };
            self.held = 0;
            self.held_virtual = false;
            if n > skip {
                // The held bytes were data after all; the new input is rescanned.
                return Ok((pos, Some(Event::Data(&self.pat[skip..n]))));
            }
        }
        let inp = &input[pos..];
        if inp.is_empty() {
            return Ok((pos, None));
        }
        // A scan for CR costs nothing to set up and runs fastest where CR
        // is rare; once it has stopped at SWITCH_AFTER CRs that were not
        // the end-line (binary data has one in about 256 bytes), the rest
        // of a large input is searched for the end-line itself.
        let mut from = 0;
        let mut misses = 0;
        while let Some(i) = memchr::memchr(b'\r', &inp[from..]) {
            if let Some(r) = self.at_candidate(input.len(), pos, inp, from + i) {
                return Ok(r);
            }
            from += i + 1;
            misses += 1;
            if misses >= SWITCH_AFTER && inp.len() - from >= FINDER_MIN {
                return Ok(self.search_rest(input.len(), pos, inp, from));
            }
        }
        Ok((input.len(), Some(Event::Data(inp))))
    }

    /// The rest of `inp` from `from` searched with a substring searcher
    /// for the end-line up to its flag (two of its bytes at a time), then
    /// its last bytes for the start of an end-line.
    fn search_rest<'a>(
        &mut self,
        input_len: usize,
        pos: usize,
        inp: &'a [u8],
        mut from: usize,
    ) -> (usize, Option<Event<'a>>) {
        if self.finder.is_none() {
            let fp = self.flag_pos;
            self.finder = Some(memchr::memmem::Finder::new(&self.pat[..fp]).into_owned());
        }
        while let Some(i) = self.finder.as_ref().and_then(|f| f.find(&inp[from..])) {
            if let Some(r) = self.at_candidate(input_len, pos, inp, from + i) {
                return r;
            }
            from += i + 1;
        }
        // No whole end-line up to its flag: only a part of one can be
        // there, at the very end.
        from = from.max(inp.len().saturating_sub(self.pat.len() - 1));
        while let Some(i) = memchr::memchr(b'\r', &inp[from..]) {
            if let Some(r) = self.at_candidate(input_len, pos, inp, from + i) {
                return r;
            }
            from += i + 1;
        }
        (input_len, Some(Event::Data(inp)))
    }

    /// Whether the end-line (or the start of it, at the end of the input)
    /// is at `cand` of `inp` (which starts at `pos` of an input of
    /// `input_len` bytes): the body's data before it, the end, or nothing
    /// while the rest of the end-line is awaited.
    fn at_candidate<'a>(
        &mut self,
        input_len: usize,
        pos: usize,
        inp: &'a [u8],
        cand: usize,
    ) -> Option<(usize, Option<Event<'a>>)> {
        let plen = self.pat.len();
        let avail = (inp.len() - cand).min(plen);
        if !self.match_at(0, &inp[cand..cand + avail]) {
            return None;
        }
        if cand > 0 {
            return Some((pos + cand, Some(Event::Data(&inp[..cand]))));
        }
        if avail == plen {
            return Some(self.finish(pos + plen));
        }
        self.held = avail;
        Some((input_len, None))
    }
}

/// CRs a body scan passes before it searches the rest of a large input
/// for the end-line with a substring searcher (set up once per chunk) ...
const SWITCH_AFTER: usize = 16;
/// ... when at least this much of the input is left.
const FINDER_MIN: usize = 2048;

/// Writes the end-line that closes a body with transaction id `tid`
/// (CR LF first) into `pat`; returns the position of its flag.
fn end_pattern(pat: &mut Vec<u8>, tid: &str) -> usize {
    pat.clear();
    pat.extend_from_slice(b"\r\n-------");
    pat.extend_from_slice(tid.as_bytes());
    let flag_pos = pat.len();
    pat.extend_from_slice(b"$\r\n");
    flag_pos
}

fn parse_start_line(line: &[u8]) -> Result<Chunk, DecodeError> {
    let Some(rest) = line.strip_prefix(b"MSRP ") else {
        return Err(DecodeError::BadStartLine("does not begin with \"MSRP \""));
    };
    let Some(sp) = memchr::memchr(b' ', rest) else {
        return Err(DecodeError::BadStartLine(
            "no method or status code after the transaction id",
        ));
    };
    let tid = super::chars::utf8(&rest[..sp]).unwrap_or("");
    if !is_ident(tid) {
        return Err(DecodeError::BadStartLine(
            "transaction id is not 4 to 32 ident characters",
        ));
    }
    let tail = &rest[sp + 1..];
    if tail.len() >= 3
        && tail[..3].iter().all(u8::is_ascii_digit)
        && (tail.len() == 3 || tail[3] == b' ')
    {
        let code = u16::from(tail[0] - b'0') * 100
            + u16::from(tail[1] - b'0') * 10
            + u16::from(tail[2] - b'0');
        let comment = if tail.len() > 4 {
            match super::chars::utf8(&tail[4..]) {
                Ok(c) => Some(c),
                Err(_) => {
                    return Err(DecodeError::BadStartLine(
                        "response comment is not valid UTF-8",
                    ));
                }
            }
        } else {
            None
        };
        return Ok(Chunk::new_response_unchecked(tid, code, comment, 256));
    }
    let method = super::chars::utf8(tail).unwrap_or("");
    if !is_method(method) {
        return Err(DecodeError::BadStartLine(
            "method must be upper-case letters, or a three-digit code",
        ));
    }
    Ok(Chunk::new_request_unchecked(tid, method, 256))
}

/// Decodes every complete chunk in `bytes` (test and tooling helper): each
/// chunk gets its data and flag. Returns the chunks with their header errors.
pub fn decode_all(
    bytes: &[u8],
    limits: Limits,
) -> Result<Vec<(Chunk, Option<HeaderError>)>, DecodeError> {
    let mut d = Decoder::new(limits);
    let mut out: Vec<(Chunk, Option<HeaderError>)> = Vec::new();
    let mut cur: Option<(Chunk, Option<HeaderError>)> = None;
    let mut off = 0;
    while off < bytes.len() {
        let (n, ev) = d.decode(&bytes[off..])?;
        off += n;
        match ev {
            Some(Event::Head { chunk, error, .. }) => cur = Some((*chunk, error.map(|e| *e))),
            Some(Event::Data(b)) => {
                if let Some((c, _)) = cur.as_mut() {
                    c.append_data(b);
                }
            }
            Some(Event::End(f)) => {
                if let Some((mut c, e)) = cur.take() {
                    c.set_flag(f);
                    out.push((c, e));
                }
            }
            None => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(b: &[u8]) -> Vec<(Chunk, Option<HeaderError>)> {
        decode_all(b, Limits::default()).unwrap()
    }

    const SEND: &[u8] = b"MSRP a786hjs2 SEND\r\n\
To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n\
From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n\
Message-ID: 87652491\r\n\
Byte-Range: 1-25/25\r\n\
Content-Type: text/plain\r\n\
\r\n\
Hey Bob, are you there?\r\n\
-------a786hjs2$\r\n";

    #[test]
    fn decodes_rfc_example() {
        let v = all(SEND);
        assert_eq!(v.len(), 1);
        let (c, e) = &v[0];
        assert!(e.is_none());
        assert_eq!(c.method(), Some("SEND"));
        assert_eq!(c.transaction_id(), "a786hjs2");
        assert_eq!(c.message_id(), Some("87652491"));
        assert_eq!(c.data(), b"Hey Bob, are you there?");
        assert_eq!(c.flag(), Flag::End);
    }

    /// The head's `announced` length for a chunk whose Byte-Range line is
    /// `range` (and whether that line was a header problem).
    fn announced(range: &str) -> (Option<u64>, bool) {
        let wire = format!(
            "MSRP tid1 SEND\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:1/s;tcp\r\n{range}Content-Type: text/plain\r\n\r\nx\r\n-------tid1$\r\n"
        );
        let mut d = Decoder::new(Limits::default());
        let mut at = 0;
        loop {
            let (n, ev) = d.decode(&wire.as_bytes()[at..]).unwrap();
            at += n;
            if let Some(Event::Head {
                announced, error, ..
            }) = ev
            {
                return (announced, error.is_some());
            }
            assert!(at < wire.len(), "no head");
        }
    }

    #[test]
    fn head_carries_the_announced_body_length() {
        assert_eq!(announced("Byte-Range: 1-25/25\r\n"), (Some(25), false));
        assert_eq!(announced("Byte-Range: 11-20/*\r\n"), (Some(10), false));
        assert_eq!(announced("Byte-Range: 1-*/100\r\n"), (None, false));
        assert_eq!(announced(""), (None, false));
        assert_eq!(announced("Byte-Range: 1-x/3\r\n"), (None, true));
        // The first of two counts (the second is a header problem).
        assert_eq!(
            announced("Byte-Range: 1-4/4\r\nByte-Range: 1-9/9\r\n"),
            (Some(4), true)
        );
        // A chunk after one with a Byte-Range does not inherit its length.
        let wire = b"MSRP tid1 SEND\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:1/s;tcp\r\nByte-Range: 1-1/1\r\nContent-Type: text/plain\r\n\r\nx\r\n-------tid1$\r\nMSRP tid2 200 OK\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:1/s;tcp\r\n-------tid2$\r\n";
        let mut d = Decoder::new(Limits::default());
        let (mut at, mut heads) = (0, Vec::new());
        while at < wire.len() {
            let (n, ev) = d.decode(&wire[at..]).unwrap();
            at += n;
            if let Some(Event::Head { announced, .. }) = ev {
                heads.push(announced);
            }
        }
        assert_eq!(heads, vec![Some(1), None]);
    }

    #[test]
    fn decodes_response_and_empty_send() {
        let v = all(b"MSRP abcd 200 OK\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:1/s;tcp\r\n-------abcd$\r\n\
MSRP efgh SEND\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:1/s;tcp\r\nByte-Range: 1-0/0\r\n-------efgh$\r\n\
MSRP ijkl 481\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:1/s;tcp\r\n-------ijkl$\r\n");
        assert_eq!(v.len(), 3);
        assert_eq!((v[0].0.code(), v[0].0.comment()), (Some(200), Some("OK")));
        assert_eq!(v[1].0.method(), Some("SEND"));
        assert!(!v[1].0.has_body());
        assert_eq!((v[2].0.code(), v[2].0.comment()), (Some(481), None));
    }

    #[test]
    fn body_containing_dashes_and_other_end_lines_is_data() {
        let tricky: &[u8] = b"-------\r\n-------a786hjs2\r\n-------a786hjs2X\r\n-------zzzz$\r\n-------a786hjs2$ \r\n\r\n--";
        ends_only_at_the_end_line(tricky);
        // The same in a body large enough for the substring search
        // (FINDER_MIN), with CR bytes all over it.
        let pad: Vec<u8> = (0..3000u32)
            .map(|i| if i % 7 == 0 { b'\r' } else { (i % 251) as u8 })
            .collect();
        let big = [&pad[..], tricky, &pad[..], b"\r\n-------a786hjs2"].concat();
        ends_only_at_the_end_line(&big);
    }

    /// Decodes a SEND with `body` split in two at every offset: the body
    /// comes out whole and the chunk ends only at its real end-line.
    fn ends_only_at_the_end_line(body: &[u8]) {
        let mut wire = Vec::new();
        wire.extend_from_slice(b"MSRP a786hjs2 SEND\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:1/s;tcp\r\nContent-Type: text/plain\r\n\r\n");
        wire.extend_from_slice(body);
        wire.extend_from_slice(b"\r\n-------a786hjs2+\r\n");
        for split in 0..wire.len() {
            let mut d = Decoder::default();
            let mut data = Vec::new();
            let mut ended = None;
            for part in [&wire[..split], &wire[split..]] {
                let mut off = 0;
                while off < part.len() {
                    let (n, ev) = d.decode(&part[off..]).unwrap();
                    off += n;
                    match ev {
                        Some(Event::Data(b)) => data.extend_from_slice(b),
                        Some(Event::End(f)) => ended = Some(f),
                        _ => {}
                    }
                }
            }
            assert_eq!(data, body, "split at {split}");
            assert_eq!(ended, Some(Flag::More));
        }
    }

    #[test]
    fn blank_line_followed_directly_by_end_line_is_an_empty_body() {
        let v = all(b"MSRP abcd SEND\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:1/s;tcp\r\nContent-Type: text/plain\r\n\r\n-------abcd$\r\n");
        assert_eq!(v.len(), 1);
        assert!(v[0].0.data().is_empty());
        let v = all(b"MSRP abcd SEND\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:1/s;tcp\r\nContent-Type: text/plain\r\n\r\n\r\n-------abcd#\r\n");
        assert!(v[0].0.data().is_empty());
        assert_eq!(v[0].0.flag(), Flag::Abort);
    }

    #[test]
    fn header_names_any_case_and_unknown_headers_kept_in_order() {
        let v = all(b"MSRP abcd SEND\r\nto-path: msrp://a:1/s;tcp\r\nFROM-PATH:msrp://b:1/s;tcp\r\nX-B: 2\r\nX-A:  1 \r\n-------abcd$\r\n");
        let c = &v[0].0;
        assert!(v[0].1.is_none());
        let hs: Vec<_> = c.headers().collect();
        assert_eq!(
            hs,
            [
                ("To-Path", "msrp://a:1/s;tcp"),
                ("From-Path", "msrp://b:1/s;tcp"),
                ("X-B", "2"),
                ("X-A", "1")
            ]
        );
    }

    #[test]
    fn malformed_known_header_is_reported_not_fatal() {
        let v = all(b"MSRP abcd SEND\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:1/s;tcp\r\nByte-Range: 0-1/1\r\nContent-Type: text/plain\r\n\r\nx\r\n-------abcd$\r\nMSRP efgh 200 OK\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:1/s;tcp\r\n-------efgh$\r\n");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].1.as_ref().unwrap().name, "Byte-Range");
        assert_eq!(v[0].0.data(), b"x");
        assert!(v[1].1.is_none());
        for (line, name) in [
            (&b"Message-ID: x"[..], "Message-ID"),
            (b"Garbage", "(unnamed)"),
            (b"Bad Name: x", "(unnamed)"),
            (b"To-Path: msrp://c:1/s;tcp", "To-Path"),
            (b"X-U: \xff\xfe", "X-U"),
        ] {
            let mut w =
                b"MSRP abcd SEND\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:1/s;tcp\r\n"
                    .to_vec();
            w.extend_from_slice(line);
            w.extend_from_slice(b"\r\n-------abcd$\r\n");
            let v = all(&w);
            assert_eq!(
                v[0].1.as_ref().map(|e| e.name.as_str()),
                Some(name),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn validation_cache_never_hides_a_bad_value() {
        let good = b"MSRP abcd SEND\r\nTo-Path: msrp://a:1/s;tcp\r\nFrom-Path: msrp://b:1/s;tcp\r\nContent-Type: text/plain\r\n\r\nx\r\n-------abcd$\r\n";
        let bad = b"MSRP efgh SEND\r\nTo-Path: msrp://a:1/s\r\nFrom-Path: msrp://b:1/s;tcp\r\nContent-Type: text\r\n\r\nx\r\n-------efgh$\r\n";
        let mut w = Vec::new();
        for part in [&good[..], &good[..], &bad[..], &bad[..], &good[..]] {
            w.extend_from_slice(part);
        }
        let v = all(&w);
        let names: Vec<_> = v
            .iter()
            .map(|(_, e)| e.as_ref().map(|e| e.name.clone()))
            .collect();
        assert_eq!(
            names,
            [
                None,
                None,
                Some("To-Path".into()),
                Some("To-Path".into()),
                None
            ]
        );
    }

    fn err_of(b: &[u8], l: Limits) -> DecodeError {
        decode_all(b, l).unwrap_err()
    }

    #[test]
    fn fatal_errors_are_distinct() {
        let l = Limits::default();
        assert!(matches!(
            err_of(b"HTTP/1.1 200 OK\r\n", l),
            DecodeError::BadStartLine(_)
        ));
        assert!(matches!(err_of(b"GET", l), DecodeError::BadStartLine(_)));
        assert!(matches!(
            err_of(b"MSRP ab SEND\r\n", l),
            DecodeError::BadStartLine(_)
        ));
        assert!(matches!(
            err_of(b"MSRP abcd send\r\n", l),
            DecodeError::BadStartLine(_)
        ));
        assert!(matches!(
            err_of(b"MSRP abcd\r\n", l),
            DecodeError::BadStartLine(_)
        ));
        assert_eq!(err_of(b"MSRP abcd SEND\n", l), DecodeError::BareLineFeed);
        assert_eq!(
            err_of(b"MSRP abcd SEND\r\n-------abce$\r\n", l),
            DecodeError::BadEndLine
        );
        assert_eq!(
            err_of(b"MSRP abcd SEND\r\n-------abcd!\r\n", l),
            DecodeError::BadEndLine
        );
        let small = Limits {
            max_line: 40,
            max_headers: 2,
            max_head: 100,
        };
        assert_eq!(
            err_of(
                b"MSRP abcd SEND\r\nX-Long: 0123456789012345678901234567890\r\n",
                small
            ),
            DecodeError::LineTooLong
        );
        assert_eq!(
            err_of(
                b"MSRP abcd SEND\r\nX-Long: 0123456789012345678901234567890123456789",
                small
            ),
            DecodeError::LineTooLong
        );
        assert_eq!(
            err_of(b"MSRP abcd SEND\r\nA: 1\r\nB: 2\r\nC: 3\r\n", small),
            DecodeError::TooManyHeaders
        );
        let small = Limits {
            max_line: 100,
            max_headers: 10,
            max_head: 60,
        };
        assert_eq!(
            err_of(
                b"MSRP abcd SEND\r\nA: 11111111111111111111\r\nB: 22222222222222222222222\r\n",
                small
            ),
            DecodeError::HeadTooLarge
        );
        let mut d = Decoder::default();
        assert!(d.decode(b"XX").is_err());
        assert!(d.is_failed());
        assert_eq!(
            d.decode(b"MSRP abcd SEND\r\n").unwrap_err(),
            DecodeError::Failed
        );
    }

    #[test]
    fn idle_only_between_chunks() {
        let mut d = Decoder::default();
        assert!(d.is_idle());
        let (n, _) = d.decode(&SEND[..30]).unwrap();
        assert_eq!(n, 30);
        assert!(!d.is_idle());
        let mut off = 30;
        while off < SEND.len() {
            off += d.decode(&SEND[off..]).unwrap().0;
        }
        assert!(d.is_idle());
    }
}
