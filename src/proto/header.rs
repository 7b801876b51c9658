//! MSRP header names and typed header values (RFC 4975 §9, RFC 4976 §5).
//!
//! Sans-IO. Every known header has a canonical name (written on the wire),
//! a parser from its wire value and a formatter. Unknown headers are not
//! handled here; the chunk keeps them raw.

use std::fmt;

use super::uri::{UriError, for_each_path_uri};

/// The headers libmsrp knows. `Other` covers every extension header.
///
/// In C this is `msrp_header` (`MSRP_HEADER_TO_PATH`, …), the selector taken by
/// `msrp_chunk_expires`, `msrp_chunk_digest_param` and `msrp_header_name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum HeaderName {
    /// `To-Path`
    ToPath = 0,
    /// `From-Path`
    FromPath = 1,
    /// `Message-ID`
    MessageId = 2,
    /// `Success-Report`
    SuccessReport = 3,
    /// `Failure-Report`
    FailureReport = 4,
    /// `Byte-Range`
    ByteRange = 5,
    /// `Status`
    Status = 6,
    /// `Expires`
    Expires = 7,
    /// `Min-Expires`
    MinExpires = 8,
    /// `Max-Expires`
    MaxExpires = 9,
    /// `Use-Path`
    UsePath = 10,
    /// `WWW-Authenticate`
    WwwAuthenticate = 11,
    /// `Authorization`
    Authorization = 12,
    /// `Authentication-Info`
    AuthenticationInfo = 13,
    /// `Content-Type`
    ContentType = 14,
    /// `Content-ID`
    ContentId = 15,
    /// `Content-Description`
    ContentDescription = 16,
    /// `Content-Disposition`
    ContentDisposition = 17,
    /// Any other header (name kept as received).
    Other = 18,
}

const KNOWN: [(HeaderName, &str); 18] = [
    (HeaderName::ToPath, "To-Path"),
    (HeaderName::FromPath, "From-Path"),
    (HeaderName::MessageId, "Message-ID"),
    (HeaderName::SuccessReport, "Success-Report"),
    (HeaderName::FailureReport, "Failure-Report"),
    (HeaderName::ByteRange, "Byte-Range"),
    (HeaderName::Status, "Status"),
    (HeaderName::Expires, "Expires"),
    (HeaderName::MinExpires, "Min-Expires"),
    (HeaderName::MaxExpires, "Max-Expires"),
    (HeaderName::UsePath, "Use-Path"),
    (HeaderName::WwwAuthenticate, "WWW-Authenticate"),
    (HeaderName::Authorization, "Authorization"),
    (HeaderName::AuthenticationInfo, "Authentication-Info"),
    (HeaderName::ContentType, "Content-Type"),
    (HeaderName::ContentId, "Content-ID"),
    (HeaderName::ContentDescription, "Content-Description"),
    (HeaderName::ContentDisposition, "Content-Disposition"),
];

impl HeaderName {
    /// Looks a name up case-insensitively; `Other` when unknown.
    pub fn from_wire(name: &str) -> HeaderName {
        // Dispatch on length and first letter so that one comparison decides
        // (two names share each of (11, 'm') and (19, 'c')).
        let b = name.as_bytes();
        let first = b.first().map_or(0, u8::to_ascii_lowercase);
        let candidates: &[HeaderName] = match (b.len(), first) {
            (7, b't') => &[HeaderName::ToPath],
            (9, b'f') => &[HeaderName::FromPath],
            (10, b'm') => &[HeaderName::MessageId],
            (14, b's') => &[HeaderName::SuccessReport],
            (14, b'f') => &[HeaderName::FailureReport],
            (10, b'b') => &[HeaderName::ByteRange],
            (6, b's') => &[HeaderName::Status],
            (7, b'e') => &[HeaderName::Expires],
            (11, b'm') => &[HeaderName::MinExpires, HeaderName::MaxExpires],
            (8, b'u') => &[HeaderName::UsePath],
            (16, b'w') => &[HeaderName::WwwAuthenticate],
            (13, b'a') => &[HeaderName::Authorization],
            (19, b'a') => &[HeaderName::AuthenticationInfo],
            (12, b'c') => &[HeaderName::ContentType],
            (10, b'c') => &[HeaderName::ContentId],
            (19, b'c') => &[
                HeaderName::ContentDescription,
                HeaderName::ContentDisposition,
            ],
            _ => &[],
        };
        candidates
            .iter()
            .copied()
            .find(|h| same_name(KNOWN[*h as usize].1.as_bytes(), b))
            .unwrap_or(HeaderName::Other)
    }

    /// The canonical spelling; `None` for `Other`.
    pub fn canonical(self) -> Option<&'static str> {
        KNOWN.get(self as usize).map(|(_, s)| *s)
    }

    /// From the numeric value used in the C API.
    pub fn from_u32(v: u32) -> Option<HeaderName> {
        KNOWN.get(v as usize).map(|(h, _)| *h)
    }

    /// MIME headers go after the others, Content-Type last (RFC 4975 `content-stuff`).
    pub(crate) fn is_mime(self) -> bool {
        matches!(
            self,
            HeaderName::ContentType
                | HeaderName::ContentId
                | HeaderName::ContentDescription
                | HeaderName::ContentDisposition
        )
    }
}

/// Case-insensitive comparison of a canonical name (letters and '-') with a
/// candidate: folding with `| 0x20` is exact here, because the only byte
/// other than the letter pair that folds onto a canonical character is CR
/// (onto '-'), and CR never reaches this point (it ends the line).
fn same_name(canon: &[u8], name: &[u8]) -> bool {
    // Most peers write the canonical spelling: one comparison.
    canon == name
        || canon.len() == name.len()
            && canon
                .iter()
                .zip(name)
                .all(|(a, b)| (a | 0x20) == (b | 0x20) && *b != b'\r')
}

/// A header value that did not parse: which header and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderError {
    /// The header name as it appeared (or its canonical name).
    pub name: String,
    /// What was wrong.
    pub what: String,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed {} header: {}", self.name, self.what)
    }
}

impl std::error::Error for HeaderError {}

fn herr<T>(name: HeaderName, what: impl Into<String>) -> Result<T, HeaderError> {
    Err(HeaderError {
        name: name.canonical().unwrap_or("extension").to_owned(),
        what: what.into(),
    })
}

/// `Byte-Range: start-end/total`; `end` and `total` may be `*` (unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte of this chunk within the message, 1-based.
    pub start: u64,
    /// Last byte, inclusive; `None` for `*`.
    pub end: Option<u64>,
    /// Total message length; `None` for `*`.
    pub total: Option<u64>,
}

/// The largest number libmsrp accepts in Byte-Range, Expires and similar
/// fields: 2^63 - 1, so that sums of offsets can never overflow.
pub const MAX_NUMBER: u64 = i64::MAX as u64;

fn parse_number(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 {
        return None;
    }
    // At most 19 digits: below 10^19, no overflow.
    let mut v = 0u64;
    for &c in s.as_bytes() {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u64::from(d);
    }
    (v <= MAX_NUMBER).then_some(v)
}

impl ByteRange {
    /// Parses and checks the value: start >= 1, end >= start - 1, end <= total.
    pub fn parse(v: &str) -> Result<ByteRange, HeaderError> {
        let n = HeaderName::ByteRange;
        let v = v.trim_ascii();
        let b = v.as_bytes();
        // A plain scan: the value is a few bytes long, shorter than what a
        // vectorised search needs to pay off (every SEND carries one).
        let (Some(slash), Some(dash)) = (
            b.iter().position(|&c| c == b'/'),
            b.iter().position(|&c| c == b'-'),
        ) else {
            return herr(n, "expected start-end/total");
        };
        if dash > slash {
            return herr(n, "expected start-end/total");
        }
        let (start, end, total) = (&v[..dash], &v[dash + 1..slash], &v[slash + 1..]);
        let Some(start) = parse_number(start) else {
            return herr(n, "start is not a number below 2^63");
        };
        let end = if end == "*" {
            None
        } else {
            match parse_number(end) {
                Some(e) => Some(e),
                None => return herr(n, "end is not a number below 2^63 or '*'"),
            }
        };
        let total = if total == "*" {
            None
        } else {
            match parse_number(total) {
                Some(t) => Some(t),
                None => return herr(n, "total is not a number below 2^63 or '*'"),
            }
        };
        let r = ByteRange { start, end, total };
        r.check()?;
        Ok(r)
    }

    /// Checks the numbers as [`ByteRange::parse`] does: each below 2^63,
    /// start >= 1, end >= start - 1, end <= total, start <= total + 1.
    pub fn check(&self) -> Result<(), HeaderError> {
        let n = HeaderName::ByteRange;
        let ByteRange { start, end, total } = *self;
        if start == 0 {
            return herr(n, "start must be 1 or more (byte ranges are 1-based)");
        }
        if [Some(start), end, total]
            .into_iter()
            .flatten()
            .any(|v| v > MAX_NUMBER)
        {
            return herr(n, "numbers must be below 2^63");
        }
        if let Some(e) = end {
            if e + 1 < start {
                return herr(n, "end is before start");
            }
            if let Some(t) = total {
                if e > t {
                    return herr(n, "end is past the total length");
                }
            }
        }
        if let Some(t) = total {
            if start > t + 1 {
                return herr(n, "start is past the total length");
            }
        }
        Ok(())
    }
}

/// Writes the decimal digits of `v` at `out[at..]` (without the formatting
/// machinery: every chunk sent carries a Byte-Range); returns the new end.
fn put_decimal(out: &mut [u8; 64], at: usize, mut v: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let n = digits.len() - i;
    out[at..at + n].copy_from_slice(&digits[i..]);
    at + n
}

/// Appends the decimal digits of `v`.
#[cfg(test)]
pub(crate) fn push_decimal(out: &mut String, v: u64) {
    let mut buf = [0u8; 64];
    let n = put_decimal(&mut buf, 0, v);
    out.push_str(std::str::from_utf8(&buf[..n]).expect("digits"));
}

impl ByteRange {
    /// The header value (`start-end/total`, `*` for unknowns) written into
    /// `buf` (two 20-digit numbers and a star fit with room to spare).
    pub fn write_into<'a>(&self, buf: &'a mut [u8; 64]) -> &'a str {
        fn number_or_star(buf: &mut [u8; 64], at: usize, v: Option<u64>) -> usize {
            match v {
                Some(v) => put_decimal(buf, at, v),
                None => {
                    buf[at] = b'*';
                    at + 1
                }
            }
        }
        let mut at = put_decimal(buf, 0, self.start);
        buf[at] = b'-';
        at = number_or_star(buf, at + 1, self.end);
        buf[at] = b'/';
        at = number_or_star(buf, at + 1, self.total);
        std::str::from_utf8(&buf[..at]).expect("digits, '-', '/' and '*'")
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 64];
        f.write_str(self.write_into(&mut buf))
    }
}

/// `Status: namespace code [comment]` (REPORTs; namespace is `000`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Three-digit namespace, normally 0.
    pub namespace: u16,
    /// Three-digit status code.
    pub code: u16,
    /// Optional reason text.
    pub comment: Option<String>,
}

fn three_digits(s: &str) -> Option<u16> {
    (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

impl Status {
    /// Parses `000 200 OK`.
    pub fn parse(v: &str) -> Result<Status, HeaderError> {
        let n = HeaderName::Status;
        let v = v.trim();
        let mut it = v.splitn(3, ' ');
        let Some(ns) = it.next().and_then(three_digits) else {
            return herr(n, "expected a three-digit namespace such as 000");
        };
        let Some(code) = it.next().and_then(three_digits) else {
            return herr(n, "expected a three-digit status code after the namespace");
        };
        let comment = it.next().map(str::to_owned).filter(|c| !c.is_empty());
        Ok(Status {
            namespace: ns,
            code,
            comment,
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {:03}", self.namespace, self.code)?;
        if let Some(c) = &self.comment {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

/// Value of Failure-Report (default `yes`) or Success-Report (default `no`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ReportMode {
    /// `no`
    No = 0,
    /// `yes`
    Yes = 1,
    /// `partial` (Failure-Report only)
    Partial = 2,
}

impl ReportMode {
    /// The wire word.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportMode::No => "no",
            ReportMode::Yes => "yes",
            ReportMode::Partial => "partial",
        }
    }

    fn parse(name: HeaderName, v: &str) -> Result<ReportMode, HeaderError> {
        let v = v.trim();
        if v.eq_ignore_ascii_case("yes") {
            Ok(ReportMode::Yes)
        } else if v.eq_ignore_ascii_case("no") {
            Ok(ReportMode::No)
        } else if name == HeaderName::FailureReport && v.eq_ignore_ascii_case("partial") {
            Ok(ReportMode::Partial)
        } else if name == HeaderName::FailureReport {
            herr(name, "expected yes, no or partial")
        } else {
            herr(name, "expected yes or no")
        }
    }

    /// Parses a Success-Report value.
    pub fn parse_success(v: &str) -> Result<ReportMode, HeaderError> {
        Self::parse(HeaderName::SuccessReport, v)
    }

    /// Parses a Failure-Report value.
    pub fn parse_failure(v: &str) -> Result<ReportMode, HeaderError> {
        Self::parse(HeaderName::FailureReport, v)
    }
}

/// Parameters of a digest header (`WWW-Authenticate`, `Authorization`,
/// `Authentication-Info`), in order. Quoted values are unquoted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DigestParams {
    /// The scheme word (`Digest`); empty for Authentication-Info, which has none.
    pub scheme: String,
    /// Name/value pairs.
    pub params: Vec<(String, String)>,
}

impl DigestParams {
    /// Looks a parameter up by name, case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Parses `Digest a=b, c="d"`; `with_scheme` is false for Authentication-Info.
    pub fn parse(
        name: HeaderName,
        v: &str,
        with_scheme: bool,
    ) -> Result<DigestParams, HeaderError> {
        let mut s = v.trim();
        let mut out = DigestParams::default();
        if with_scheme {
            let end = s.find([' ', '\t']).unwrap_or(s.len());
            let scheme = &s[..end];
            if scheme.is_empty() || !scheme.bytes().all(super::uri::is_token_char) {
                return herr(name, "expected an authentication scheme such as Digest");
            }
            out.scheme = scheme.to_owned();
            s = s[end..].trim_start();
        }
        while !s.is_empty() {
            let Some(eq) = s.find('=') else {
                return herr(name, "expected name=value");
            };
            let key = s[..eq].trim();
            if key.is_empty() || !key.bytes().all(super::uri::is_token_char) {
                return herr(name, "parameter name is not a token");
            }
            s = s[eq + 1..].trim_start();
            let value;
            if let Some(rest) = s.strip_prefix('"') {
                let mut val = String::new();
                let mut chars = rest.char_indices();
                let mut close = None;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some((_, e)) => val.push(e),
                            None => break,
                        },
                        '"' => {
                            close = Some(i);
                            break;
                        }
                        c => val.push(c),
                    }
                }
                let Some(close) = close else {
                    return herr(name, "unterminated quoted string");
                };
                value = val;
                s = rest[close + 1..].trim_start();
            } else {
                let end = s.find(',').unwrap_or(s.len());
                let tok = s[..end].trim();
                if tok.is_empty()
                    || !tok.bytes().all(|b| {
                        super::uri::is_token_char(b) || b == b'/' || b == b':' || b == b'='
                    })
                {
                    return herr(
                        name,
                        "parameter value is neither a token nor a quoted string",
                    );
                }
                value = tok.to_owned();
                s = &s[end..];
            }
            out.params.push((key.to_owned(), value));
            if let Some(rest) = s.strip_prefix(',') {
                s = rest.trim_start();
                if s.is_empty() {
                    return herr(name, "trailing ','");
                }
            } else if !s.is_empty() {
                return herr(name, "expected ',' between parameters");
            }
        }
        if out.params.is_empty() {
            return herr(name, "no parameters");
        }
        Ok(out)
    }
}

impl fmt::Display for DigestParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.scheme.is_empty() {
            write!(f, "{} ", self.scheme)?;
        }
        for (i, (k, v)) in self.params.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            // Tokens that are safe unquoted stay unquoted (qop, nc, algorithm);
            // everything else is quoted with escapes.
            let bare = !v.is_empty()
                && matches!(
                    k.to_ascii_lowercase().as_str(),
                    "qop" | "nc" | "algorithm" | "stale"
                )
                && v.bytes().all(super::uri::is_token_char);
            if bare {
                write!(f, "{k}={v}")?;
            } else {
                write!(f, "{k}=\"")?;
                for c in v.chars() {
                    if c == '"' || c == '\\' {
                        f.write_str("\\")?;
                    }
                    write!(f, "{c}")?;
                }
                f.write_str("\"")?;
            }
        }
        Ok(())
    }
}

/// `Content-Disposition: type *(; param[=value])`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentDisposition {
    /// The disposition type (`inline`, `attachment`, `render`, …).
    pub disposition: String,
    /// Parameters in order; quoted values are kept with their quotes.
    pub params: Vec<(String, Option<String>)>,
}

impl ContentDisposition {
    /// Parses the value.
    pub fn parse(v: &str) -> Result<ContentDisposition, HeaderError> {
        let n = HeaderName::ContentDisposition;
        let mut parts = split_params(v);
        let first = parts.next().unwrap_or("").trim();
        if first.is_empty() || !first.bytes().all(super::uri::is_token_char) {
            return herr(n, "expected a disposition type token");
        }
        let mut params = Vec::new();
        for p in parts {
            let p = p.trim();
            if p.is_empty() {
                return herr(n, "empty parameter");
            }
            match p.split_once('=') {
                Some((k, v)) => params.push((k.trim().to_owned(), Some(v.trim().to_owned()))),
                None => params.push((p.to_owned(), None)),
            }
        }
        Ok(ContentDisposition {
            disposition: first.to_owned(),
            params,
        })
    }
}

/// Splits on `;` outside double quotes.
fn split_params(v: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(v);
    std::iter::from_fn(move || {
        let s = rest?;
        let mut quoted = false;
        for (i, c) in s.char_indices() {
            match c {
                '"' => quoted = !quoted,
                ';' if !quoted => {
                    rest = Some(&s[i + 1..]);
                    return Some(&s[..i]);
                }
                _ => {}
            }
        }
        rest = None;
        Some(s)
    })
}

/// Checks a media type `type/subtype *(;param)`.
fn check_content_type(v: &str) -> Result<(), HeaderError> {
    let n = HeaderName::ContentType;
    let mut parts = split_params(v);
    let mt = parts.next().unwrap_or("").trim();
    let Some((t, s)) = mt.split_once('/') else {
        return herr(n, "expected type/subtype");
    };
    let tok = |x: &str| !x.is_empty() && x.bytes().all(super::uri::is_token_char);
    if !tok(t) || !tok(s) {
        return herr(n, "type and subtype must be tokens");
    }
    for p in parts {
        let p = p.trim();
        match p.split_once('=') {
            Some((k, v)) if tok(k.trim()) && !v.trim().is_empty() => {}
            _ => return herr(n, "media type parameter must be name=value"),
        }
    }
    Ok(())
}

/// RFC 4975 `ident`: ALPHANUM then 3 to 31 of ALPHANUM . - + % =.
pub fn is_ident(s: &str) -> bool {
    let b = s.as_bytes();
    (4..=32).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && super::chars::all(&b[1..], super::chars::IDENT)
}

fn path_error(name: HeaderName, e: UriError) -> HeaderError {
    HeaderError {
        name: name.canonical().unwrap_or("path").to_owned(),
        what: e.to_string(),
    }
}

/// Parses an Expires, Min-Expires or Max-Expires value.
pub fn parse_expires(name: HeaderName, v: &str) -> Result<u64, HeaderError> {
    match parse_number(v.trim()) {
        Some(x) if x <= u64::from(u32::MAX) => Ok(x),
        _ => herr(name, "expected a number of seconds (0 to 4294967295)"),
    }
}

/// Checks the value of a known header; extension headers always pass.
pub fn validate(name: HeaderName, v: &str) -> Result<(), HeaderError> {
    match name {
        HeaderName::ToPath | HeaderName::FromPath | HeaderName::UsePath => {
            for_each_path_uri(v, |_| {}).map_err(|e| path_error(name, e))
        }
        HeaderName::MessageId => {
            if is_ident(v.trim_ascii()) {
                Ok(())
            } else {
                herr(name, "expected 4 to 32 characters of A-Z a-z 0-9 . - + % =")
            }
        }
        HeaderName::SuccessReport => ReportMode::parse_success(v).map(drop),
        HeaderName::FailureReport => ReportMode::parse_failure(v).map(drop),
        HeaderName::ByteRange => ByteRange::parse(v).map(drop),
        HeaderName::Status => Status::parse(v).map(drop),
        HeaderName::Expires | HeaderName::MinExpires | HeaderName::MaxExpires => {
            parse_expires(name, v).map(drop)
        }
        HeaderName::WwwAuthenticate | HeaderName::Authorization => {
            DigestParams::parse(name, v, true).map(drop)
        }
        HeaderName::AuthenticationInfo => DigestParams::parse(name, v, false).map(drop),
        HeaderName::ContentType => check_content_type(v),
        HeaderName::ContentDisposition => ContentDisposition::parse(v).map(drop),
        HeaderName::ContentId | HeaderName::ContentDescription | HeaderName::Other => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_canonical() {
        assert_eq!(HeaderName::from_wire("to-path"), HeaderName::ToPath);
        assert_eq!(HeaderName::from_wire("MESSAGE-id"), HeaderName::MessageId);
        assert_eq!(
            HeaderName::from_wire("www-authenticate"),
            HeaderName::WwwAuthenticate
        );
        assert_eq!(HeaderName::from_wire("X-Foo"), HeaderName::Other);
        assert_eq!(HeaderName::MessageId.canonical(), Some("Message-ID"));
        assert_eq!(HeaderName::Other.canonical(), None);
        for v in 0..18 {
            let h = HeaderName::from_u32(v).unwrap();
            assert_eq!(h as u32, v);
            assert_eq!(HeaderName::from_wire(h.canonical().unwrap()), h);
        }
        assert_eq!(HeaderName::from_u32(18), None);
    }

    #[test]
    fn byte_range_check_agrees_with_parse() {
        let r = |start, end, total| ByteRange { start, end, total };
        for (range, ok) in [
            (r(1, Some(10), Some(10)), true),
            (r(1, Some(0), Some(0)), true),
            (r(11, Some(10), Some(10)), true),
            (r(5, None, None), true),
            (r(0, Some(3), Some(3)), false),
            (r(5, Some(3), None), false),
            (r(1, Some(11), Some(10)), false),
            (r(12, None, Some(10)), false),
            (r(MAX_NUMBER + 1, None, None), false),
            (r(1, Some(MAX_NUMBER + 1), None), false),
        ] {
            assert_eq!(range.check().is_ok(), ok, "{range:?}");
            let mut buf = [0u8; 64];
            assert_eq!(
                ByteRange::parse(range.write_into(&mut buf)).is_ok(),
                ok,
                "{range:?}"
            );
        }
    }

    #[test]
    fn byte_range_parses_stars_and_checks_bounds() {
        assert_eq!(
            ByteRange::parse("1-*/*").unwrap(),
            ByteRange {
                start: 1,
                end: None,
                total: None
            }
        );
        assert_eq!(ByteRange::parse("1-0/0").unwrap().to_string(), "1-0/0");
        assert_eq!(ByteRange::parse("5-10/20").unwrap().to_string(), "5-10/20");
        assert_eq!(ByteRange::parse("11-*/20").unwrap().to_string(), "11-*/20");
        for v in [0, 9, 10, 12345, u64::MAX] {
            let mut d = String::new();
            push_decimal(&mut d, v);
            assert_eq!(d, v.to_string());
        }
        let big = format!("1-{}/{}", MAX_NUMBER, MAX_NUMBER);
        assert_eq!(ByteRange::parse(&big).unwrap().to_string(), big);
        assert_eq!(ByteRange::parse("1-9/*").unwrap().to_string(), "1-9/*");
        assert_eq!(
            ByteRange::parse("10-109/100000").unwrap().to_string(),
            "10-109/100000"
        );
        for bad in [
            "",
            "1-2",
            "0-1/2",
            "3-1/5",
            "1-6/5",
            "7-*/5",
            "a-1/2",
            "1-b/2",
            "1-2/c",
            "-1-2/3",
            "1-2/9223372036854775808",
            "99999999999999999999-1/2",
            " 1 -2/3",
        ] {
            assert!(ByteRange::parse(bad).is_err(), "{bad}");
        }
        assert!(ByteRange::parse("1-9223372036854775807/9223372036854775807").is_ok());
    }

    #[test]
    fn status_parses_namespace_code_and_comment() {
        let s = Status::parse("000 200 OK all good").unwrap();
        assert_eq!(
            (s.namespace, s.code, s.comment.as_deref()),
            (0, 200, Some("OK all good"))
        );
        assert_eq!(s.to_string(), "000 200 OK all good");
        assert_eq!(Status::parse("000 413").unwrap().comment, None);
        for bad in ["200", "00 200", "000 20", "000 2000 x", "abc 200"] {
            assert!(Status::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn report_modes() {
        assert_eq!(
            ReportMode::parse_failure("partial").unwrap(),
            ReportMode::Partial
        );
        assert!(ReportMode::parse_success("partial").is_err());
        assert_eq!(ReportMode::parse_success("YES").unwrap(), ReportMode::Yes);
        assert!(ReportMode::parse_failure("maybe").is_err());
    }

    #[test]
    fn digest_parameters_round_trip() {
        let d = DigestParams::parse(
            HeaderName::WwwAuthenticate,
            r#"Digest realm="relay.example", nonce="a\"b", qop="auth", algorithm=MD5"#,
            true,
        )
        .unwrap();
        assert_eq!(d.scheme, "Digest");
        assert_eq!(d.get("NONCE"), Some("a\"b"));
        assert_eq!(d.get("algorithm"), Some("MD5"));
        let again = DigestParams::parse(HeaderName::WwwAuthenticate, &d.to_string(), true).unwrap();
        assert_eq!(again, d);
        let info = DigestParams::parse(
            HeaderName::AuthenticationInfo,
            "rspauth=\"ab\", nc=00000001",
            false,
        )
        .unwrap();
        assert_eq!(info.get("nc"), Some("00000001"));
        for bad in [
            "Digest",
            "Digest realm",
            "Digest realm=\"x",
            "Digest a=b,",
            "Digest a=b c=d",
            "Di<gest a=b",
        ] {
            assert!(
                DigestParams::parse(HeaderName::Authorization, bad, true).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn content_type_and_disposition() {
        assert!(validate(HeaderName::ContentType, "text/plain").is_ok());
        assert!(validate(HeaderName::ContentType, "text/plain; charset=utf-8").is_ok());
        assert!(validate(HeaderName::ContentType, "text").is_err());
        assert!(validate(HeaderName::ContentType, "text/").is_err());
        assert!(validate(HeaderName::ContentType, "text/plain; charset").is_err());
        let d = ContentDisposition::parse("attachment; filename=\"a;b.txt\"; size=3").unwrap();
        assert_eq!(d.disposition, "attachment");
        assert_eq!(d.params[0], ("filename".into(), Some("\"a;b.txt\"".into())));
        assert!(ContentDisposition::parse("; x").is_err());
    }

    #[test]
    fn message_id_and_expires() {
        assert!(validate(HeaderName::MessageId, "abcd").is_ok());
        assert!(validate(HeaderName::MessageId, "abc").is_err());
        assert!(validate(HeaderName::MessageId, &"a".repeat(33)).is_err());
        assert!(validate(HeaderName::MessageId, ".abc").is_err());
        assert_eq!(parse_expires(HeaderName::Expires, "3600").unwrap(), 3600);
        assert!(parse_expires(HeaderName::Expires, "-1").is_err());
        assert!(parse_expires(HeaderName::Expires, "4294967296").is_err());
    }

    #[test]
    fn path_headers_are_checked() {
        assert!(validate(HeaderName::ToPath, "msrp://a:1/s;tcp msrp://b:2/t;tcp").is_ok());
        let e = validate(HeaderName::FromPath, "msrp://a:1/s").unwrap_err();
        assert_eq!(e.name, "From-Path");
        assert!(e.what.contains("transport"));
    }
}
