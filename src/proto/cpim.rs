//! `message/cpim` (RFC 3862), sans-IO: the message headers (From, To, cc,
//! DateTime, Subject, NS, Require and any namespaced header), the
//! encapsulated MIME headers and the content. A parsed message builds back
//! to the same bytes: every header keeps its name, parameters, the
//! whitespace after the colon and its value as written.
//!
//! In MSRP the SEND's own `Content-Type: message/cpim` is the "MIME
//! headers for the overall message" of RFC 3862 §2; the body starts with
//! the message headers, then a blank line, the content's MIME headers, a
//! blank line and the content.

use std::fmt;

/// The largest header block (message headers plus content headers) read.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// The most headers (message plus content) read.
pub const MAX_HEADERS: usize = 256;

/// The namespace of the RFC 3862 core headers.
pub const CORE_NS: &str = "urn:ietf:params:cpim-headers:";

/// Why a body is not `message/cpim`: what and at which byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpimError {
    /// The byte offset in the body where the problem is.
    pub offset: usize,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for CpimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "message/cpim: {} (at byte {})", self.what, self.offset)
    }
}

impl std::error::Error for CpimError {}

fn err<T>(offset: usize, what: impl Into<String>) -> Result<T, CpimError> {
    Err(CpimError {
        offset,
        what: what.into(),
    })
}

/// One message header (RFC 3862 §3): `name:params<sep>value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpimHeader {
    /// The full name with its namespace prefix, e.g. `imdn.Message-ID`.
    pub name: String,
    /// The parameters as written, each with its `;`, e.g. `;lang=fr`.
    pub params: String,
    /// The value as written (escapes not decoded: see [`unescape`]).
    pub value: String,
    /// The whitespace between the parameters and the value (one space in
    /// the RFC's syntax; kept as written).
    pub sep: String,
}

impl CpimHeader {
    /// A header `name: value` with `value` escaped as RFC 3862 §2.3.1 asks.
    pub fn new(name: &str, value: &str) -> CpimHeader {
        CpimHeader {
            name: name.to_owned(),
            params: String::new(),
            value: escape(value),
            sep: " ".into(),
        }
    }

    /// The prefix and the local name (`imdn`, `Message-ID`), or no prefix.
    pub fn split_name(&self) -> (Option<&str>, &str) {
        match self.name.split_once('.') {
            Some((p, n)) => (Some(p), n),
            None => (None, &self.name),
        }
    }

    /// The `lang=` parameter (RFC 3862 §3.3).
    pub fn lang(&self) -> Option<&str> {
        self.params.split(';').find_map(|p| p.strip_prefix("lang="))
    }

    /// The value with its escapes decoded.
    pub fn text(&self) -> String {
        unescape(&self.value)
    }
}

/// One MIME header of the content (`Content-Type: text/plain`), as written:
/// folded lines stay in the value with their line breaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MimeHeader {
    /// The name as written.
    pub name: String,
    /// The whitespace after the colon.
    pub sep: String,
    /// The value as written.
    pub value: String,
}

/// A `message/cpim` body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cpim {
    /// The message headers, in order.
    pub headers: Vec<CpimHeader>,
    /// The content's MIME headers, in order (at least Content-Type).
    pub content_headers: Vec<MimeHeader>,
    /// The content.
    pub content: Vec<u8>,
}

/// NAMECHAR of RFC 3862 §3.6: US-ASCII except `.`, CTLs and separators.
fn is_namechar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Whether `name` is a message header name (RFC 3862 §3.1, §3.6):
/// `Name` or `Prefix.Name`, each of NAMECHARs.
pub fn is_header_name(name: &str) -> bool {
    let mut parts = name.split('.');
    let ok = |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(is_namechar));
    ok(parts.next()) && {
        let second = parts.next();
        second.is_none() || (ok(second) && parts.next().is_none())
    }
}

/// Reads one CRLF-ended line at `pos`; returns it (without CRLF) and the
/// next position.
fn line(body: &[u8], pos: usize) -> Result<(&[u8], usize), CpimError> {
    let rest = &body[pos..];
    let Some(lf) = memchr::memchr(b'\n', rest) else {
        return err(pos, "a header line has no end (CRLF)");
    };
    if lf == 0 || rest[lf - 1] != b'\r' {
        return err(pos + lf, "a line ends with LF without CR");
    }
    Ok((&rest[..lf - 1], pos + lf + 1))
}

fn utf8(b: &[u8], at: usize) -> Result<&str, CpimError> {
    std::str::from_utf8(b).map_err(|e| CpimError {
        offset: at + e.valid_up_to(),
        what: "a header is not UTF-8".into(),
    })
}

impl Cpim {
    /// Reads a `message/cpim` body.
    pub fn parse(body: &[u8]) -> Result<Cpim, CpimError> {
        let mut out = Cpim::default();
        let mut pos = 0;
        let mut count = 0;
        let limit = |pos: usize, count: usize| {
            if pos > MAX_HEADER_BYTES {
                return err(pos, format!("the headers exceed {MAX_HEADER_BYTES} bytes"));
            }
            if count > MAX_HEADERS {
                return err(pos, format!("more than {MAX_HEADERS} headers"));
            }
            Ok(())
        };
        // Message headers, up to the blank line.
        loop {
            let (l, next) = line(body, pos)?;
            if l.is_empty() {
                pos = next;
                break;
            }
            out.headers.push(Self::message_header(utf8(l, pos)?, pos)?);
            count += 1;
            limit(next, count)?;
            pos = next;
        }
        if out.headers.is_empty() {
            return err(0, "no message headers before the blank line");
        }
        // Content headers, up to the blank line; folded lines continue.
        loop {
            let (l, next) = line(body, pos)?;
            if l.is_empty() {
                pos = next;
                break;
            }
            if matches!(l[0], b' ' | b'\t') {
                let Some(last) = out.content_headers.last_mut() else {
                    return err(pos, "a folded line before any content header");
                };
                last.value.push_str("\r\n");
                last.value.push_str(utf8(l, pos)?);
            } else {
                let s = utf8(l, pos)?;
                let Some(colon) = s.find(':') else {
                    return err(pos, "a content header has no colon");
                };
                let name = &s[..colon];
                if name.is_empty() || !name.bytes().all(|b| is_namechar(b) || b == b'.') {
                    return err(pos, format!("'{name}' is not a header name"));
                }
                let rest = &s[colon + 1..];
                let v = rest.trim_start_matches([' ', '\t']);
                out.content_headers.push(MimeHeader {
                    name: name.to_owned(),
                    sep: rest[..rest.len() - v.len()].to_owned(),
                    value: v.to_owned(),
                });
                count += 1;
            }
            limit(next, count)?;
            pos = next;
        }
        if out.content_type().is_none() {
            return err(pos, "the content has no Content-Type (RFC 3862 §2.4)");
        }
        out.content = body[pos..].to_vec();
        Ok(out)
    }

    fn message_header(s: &str, at: usize) -> Result<CpimHeader, CpimError> {
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() && (is_namechar(b[i]) || b[i] == b'.') {
            i += 1;
        }
        let name = &s[..i];
        if !is_header_name(name) {
            return err(
                at,
                format!("'{name}' is not a CPIM header name (RFC 3862 §3.1)"),
            );
        }
        if b.get(i) != Some(&b':') {
            return err(
                at + i,
                format!("the header '{name}' has no colon after its name"),
            );
        }
        i += 1;
        // Parameters: `;name=value`, a value may be a quoted string.
        let pstart = i;
        while b.get(i) == Some(&b';') {
            i += 1;
            while i < b.len() && b[i] != b';' && b[i] != b' ' {
                if b[i] == b'"' {
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        i += if b[i] == b'\\' { 2 } else { 1 };
                    }
                    if i >= b.len() {
                        return err(at + pstart, "a parameter's quoted string has no end");
                    }
                }
                i += 1;
            }
        }
        let params = &s[pstart..i.min(s.len())];
        let rest = &s[i.min(s.len())..];
        let value = rest.trim_start_matches(' ');
        if let Some(p) = value.bytes().position(|c| c < 0x20 || c == 0x7f) {
            return err(
                at + s.len() - value.len() + p,
                "a control character in a header value must be escaped (RFC 3862 §2.3)",
            );
        }
        Ok(CpimHeader {
            name: name.to_owned(),
            params: params.to_owned(),
            value: value.to_owned(),
            sep: rest[..rest.len() - value.len()].to_owned(),
        })
    }

    /// The body, byte for byte as parsed (or built from the parts).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.content.len());
        for h in &self.headers {
            out.extend_from_slice(h.name.as_bytes());
            out.push(b':');
            out.extend_from_slice(h.params.as_bytes());
            out.extend_from_slice(h.sep.as_bytes());
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        for h in &self.content_headers {
            out.extend_from_slice(h.name.as_bytes());
            out.push(b':');
            out.extend_from_slice(h.sep.as_bytes());
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.content);
        out
    }

    /// A message with `content` of `content_type` and no message headers yet.
    pub fn new(content_type: &str, content: &[u8]) -> Cpim {
        Cpim {
            headers: Vec::new(),
            content_headers: vec![MimeHeader {
                name: "Content-Type".into(),
                sep: " ".into(),
                value: content_type.to_owned(),
            }],
            content: content.to_vec(),
        }
    }

    /// The content's Content-Type (any case of the name, RFC 2045).
    pub fn content_type(&self) -> Option<&str> {
        self.content_header("Content-Type")
    }

    /// A content header's value by name, case-insensitive.
    pub fn content_header(&self, name: &str) -> Option<&str> {
        self.content_headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The namespace URN declared for `prefix` by an `NS` header (RFC 3862
    /// §3.4: `NS: prefix <urn>`); `None` prefix is the default namespace
    /// (`NS: <urn>`), else the core headers' one.
    pub fn namespace_of(&self, prefix: Option<&str>) -> Option<String> {
        self.declarations()
            .filter(|(p, _)| *p == prefix)
            .last()
            .map(|(_, urn)| urn.to_owned())
            .or_else(|| prefix.is_none().then(|| CORE_NS.to_owned()))
    }

    /// The `NS` declarations in order: the prefix (`None`: the default
    /// namespace) and its URN.
    fn declarations(&self) -> impl Iterator<Item = (Option<&str>, &str)> {
        self.headers
            .iter()
            .filter(|h| h.name == "NS")
            .filter_map(|h| {
                let v = h.value.trim();
                let i = v.find('<')?;
                let p = v[..i].trim();
                Some((
                    (!p.is_empty()).then_some(p),
                    v[i + 1..].trim_end_matches('>'),
                ))
            })
    }

    /// Whether `h` is the header `name` of the namespace `urn`.
    fn is_in(&self, h: &CpimHeader, urn: &str, name: &str) -> bool {
        let (p, n) = h.split_name();
        n == name && self.namespace_of(p).as_deref() == Some(urn)
    }

    /// The headers named `name` in the namespace `urn`, whatever prefix the
    /// sender chose for it (RFC 3862 §3.4; RFC 5438 §6.1 asks receivers to
    /// accept any prefix).
    pub fn headers_in<'a>(
        &'a self,
        urn: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a CpimHeader> {
        self.headers
            .iter()
            .filter(move |h| self.is_in(h, urn, name))
    }

    /// The first header named `name` in the namespace `urn`.
    pub fn header_in(&self, urn: &str, name: &str) -> Option<&CpimHeader> {
        self.headers.iter().find(|h| self.is_in(h, urn, name))
    }

    /// The first core header `name` (From, To, DateTime, …).
    pub fn header(&self, name: &str) -> Option<&CpimHeader> {
        self.header_in(CORE_NS, name)
    }

    /// Adds a message header `name: value` (value escaped).
    pub fn push(&mut self, name: &str, value: &str) {
        self.headers.push(CpimHeader::new(name, value));
    }

    /// The prefix declared for `urn`, declaring `wanted` when none is.
    pub fn prefix_for(&mut self, urn: &str, wanted: &str) -> String {
        let declared = self
            .declarations()
            .find_map(|(p, u)| p.filter(|_| u == urn).map(str::to_owned));
        if let Some(p) = declared {
            return p;
        }
        self.headers.push(CpimHeader {
            name: "NS".into(),
            params: String::new(),
            value: format!("{wanted} <{urn}>"),
            sep: " ".into(),
        });
        wanted.to_owned()
    }
}

/// A `Formal-name <URI>` value (From, To, cc, RFC 3862 §4.1): the display
/// name (unquoted and unescaped) and the URI.
pub fn address(value: &str) -> Option<(Option<String>, String)> {
    let v = value.trim();
    let open = v.rfind('<')?;
    let close = v[open..].find('>')? + open;
    let uri = v[open + 1..close].trim();
    if uri.is_empty() {
        return None;
    }
    let name = v[..open].trim();
    let name = name
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(name);
    Some(((!name.is_empty()).then(|| unescape(name)), uri.to_owned()))
}

/// A `Formal-name <URI>` value from a display name and a URI (the name
/// quoted when it is not a run of tokens).
pub fn format_address(name: Option<&str>, uri: &str) -> String {
    match name {
        Some(n) if !n.is_empty() => {
            let tokens = n.split(' ').all(|t| {
                !t.is_empty() && t.bytes().all(|b| is_namechar(b) || b == b'.' || b >= 0x80)
            });
            if tokens {
                format!("{n} <{uri}>")
            } else {
                let q: String = escape(n).replace('"', "\\\"");
                format!("\"{q}\" <{uri}>")
            }
        }
        _ => format!("<{uri}>"),
    }
}

/// Escapes a header value as RFC 3862 §2.3.1 asks: `\\`, `\b`, `\t`, `\n`,
/// `\r`, and `\uxxxx` for the other control characters.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Decodes RFC 3862 §2.3 escapes; an unknown escape stands for the
/// character after the backslash, a final lone backslash is dropped.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            None => {}
            Some('b') => out.push('\u{8}'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let hex: String = it.clone().take(4).collect();
                match (hex.len() == 4)
                    .then(|| u32::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .and_then(char::from_u32)
                {
                    Some(ch) => {
                        out.push(ch);
                        for _ in 0..4 {
                            it.next();
                        }
                    }
                    None => out.push('u'),
                }
            }
            Some(other) => out.push(other),
        }
    }
    out
}

/// A DateTime value (RFC 3862 §4.4, RFC 3339) for `unix_seconds`, in UTC.
pub fn format_datetime(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let secs = unix_seconds % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}
