//! MSRP URIs (RFC 4975 §9): parsing, formatting and §6.1 comparison.
//!
//! Sans-IO: no sockets, no DNS, no clock. Parsing is done in two steps: a
//! borrowing parse ([`UriRef`]) that allocates nothing, used to validate path
//! headers on the hot decode path, and an owned [`Uri`] built from it.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The host part of an MSRP URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name (kept as written; compared case-insensitively).
    Name(String),
    /// A literal IPv4 address.
    V4(Ipv4Addr),
    /// A literal IPv6 address (written in brackets).
    V6(Ipv6Addr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A parsed MSRP URI: `msrp[s]://[user@]host[:port][/session-id];transport[;param[=value]]*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    /// `true` for `msrps` (TLS), `false` for `msrp`.
    pub secure: bool,
    /// The userinfo part, as written (percent-encoding kept).
    pub user: Option<String>,
    /// The host.
    pub host: Host,
    /// The port, when written.
    pub port: Option<u16>,
    /// The session id, when written.
    pub session_id: Option<String>,
    /// The transport (`tcp`, `ws`, …), as written.
    pub transport: String,
    /// Further URI parameters in order, each with an optional value.
    pub params: Vec<(String, Option<String>)>,
}

/// The port of an MSRP URI that gives none (RFC 4975 §9 registers 2855).
pub const DEFAULT_PORT: u16 = 2855;

/// Why a URI did not parse: what was expected and at which byte offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UriError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    /// What was wrong there.
    pub what: &'static str,
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid MSRP URI at byte {}: {}", self.offset, self.what)
    }
}

impl std::error::Error for UriError {}

/// A URI parsed without allocating; the fields borrow from the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UriRef<'a> {
    /// `msrps` when true.
    pub secure: bool,
    /// Userinfo, if any.
    pub user: Option<&'a str>,
    /// Host text without brackets.
    pub host: &'a str,
    /// Host kind: 0 name, 4 IPv4, 6 IPv6.
    host_kind: u8,
    /// Port, if any.
    pub port: Option<u16>,
    /// Session id, if any.
    pub session_id: Option<&'a str>,
    /// Transport.
    pub transport: &'a str,
    /// The raw parameter list after the transport (without the leading `;`), possibly empty.
    pub params: &'a str,
}

/// Dotted-quad check without the standard library's general parser: four
/// groups of 1 to 3 digits, each at most 255, no leading zeros.
fn is_ipv4(s: &[u8]) -> bool {
    let mut groups = 0;
    for part in s.split(|&c| c == b'.') {
        groups += 1;
        if groups > 4 || part.is_empty() || part.len() > 3 || (part.len() > 1 && part[0] == b'0') {
            return false;
        }
        let v = part
            .iter()
            .fold(0u32, |acc, &d| acc * 10 + u32::from(d - b'0'));
        if v > 255 {
            return false;
        }
    }
    groups == 4
}

use super::chars;

fn is_unreserved(b: u8) -> bool {
    chars::is(b, chars::UNRESERVED)
}

/// RFC 4975 `token` characters (used by URI parameters).
pub(crate) fn is_token_char(b: u8) -> bool {
    chars::is(b, chars::TOKEN)
}

/// Checks percent-encoding: every `%` is followed by two hex digits.
fn pct_ok(s: &[u8], i: usize) -> bool {
    s.len() > i + 2 && s[i + 1].is_ascii_hexdigit() && s[i + 2].is_ascii_hexdigit()
}

impl<'a> UriRef<'a> {
    /// Parses `text` as an MSRP URI without allocating.
    pub fn parse(text: &'a str) -> Result<UriRef<'a>, UriError> {
        let b = text.as_bytes();
        let err = |offset, what| Err(UriError { offset, what });
        // The scheme is short: look for "://" by hand (a substring searcher
        // costs more to set up than this whole scan).
        let Some(sep) = b
            .iter()
            .take(8)
            .position(|&c| c == b':')
            .filter(|&i| b[i..].starts_with(b"://"))
        else {
            return err(
                0,
                "expected a scheme followed by \"://\" (msrp:// or msrps://)",
            );
        };
        let scheme = &text[..sep];
        let secure = if scheme.eq_ignore_ascii_case("msrp") {
            false
        } else if scheme.eq_ignore_ascii_case("msrps") {
            true
        } else {
            return err(0, "scheme must be \"msrp\" or \"msrps\"");
        };
        let mut i = sep + 3;
        // userinfo: everything up to the first '@', if there is one.
        let mut user = None;
        if let Some(at) = memchr::memchr(b'@', &b[i..]) {
            let end = i + at;
            let mut j = i;
            while j < end {
                let c = b[j];
                if c == b'%' {
                    if !pct_ok(b, j) {
                        return err(j, "bad percent-encoding in userinfo");
                    }
                    j += 3;
                    continue;
                }
                if !(chars::is(c, chars::UNRESERVED | chars::SUB_DELIM) || c == b':') {
                    return err(j, "character not allowed in userinfo");
                }
                j += 1;
            }
            if end == i {
                return err(i, "empty userinfo before '@'");
            }
            user = Some(&text[i..end]);
            i = end + 1;
        }
        // host
        let host;
        let host_kind;
        if b.get(i) == Some(&b'[') {
            let Some(close) = memchr::memchr(b']', &b[i..]) else {
                return err(i, "IPv6 address without closing ']'");
            };
            let inner = &text[i + 1..i + close];
            if inner.parse::<Ipv6Addr>().is_err() {
                return err(i + 1, "invalid IPv6 address");
            }
            host = inner;
            host_kind = 6;
            i += close + 1;
        } else {
            let start = i;
            while i < b.len() {
                let c = b[i];
                if c == b':' || c == b'/' || c == b';' {
                    break;
                }
                if c == b'%' {
                    if !pct_ok(b, i) {
                        return err(i, "bad percent-encoding in host");
                    }
                    i += 3;
                    continue;
                }
                if !is_unreserved(c) {
                    return err(i, "character not allowed in host");
                }
                i += 1;
            }
            if i == start {
                return err(start, "missing host");
            }
            host = &text[start..i];
            let looks_v4 = host.bytes().all(|c| c.is_ascii_digit() || c == b'.');
            if looks_v4 {
                if !is_ipv4(host.as_bytes()) {
                    return err(start, "invalid IPv4 address");
                }
                host_kind = 4;
            } else {
                host_kind = 0;
            }
        }
        // port
        let mut port = None;
        if b.get(i) == Some(&b':') {
            i += 1;
            let start = i;
            let mut v: u32 = 0;
            while i < b.len() && b[i].is_ascii_digit() {
                v = v * 10 + u32::from(b[i] - b'0');
                if v > 65535 || i - start >= 5 {
                    return err(start, "port out of range (0-65535)");
                }
                i += 1;
            }
            if i == start {
                return err(start, "expected a port number after ':'");
            }
            port = Some(v as u16);
        }
        // session id
        let mut session_id = None;
        if b.get(i) == Some(&b'/') {
            i += 1;
            let start = i;
            while i < b.len() && b[i] != b';' {
                let c = b[i];
                if !chars::is(c, chars::SESSION) {
                    return err(i, "character not allowed in session-id");
                }
                i += 1;
            }
            if i == start {
                return err(start, "empty session-id after '/'");
            }
            session_id = Some(&text[start..i]);
        }
        // transport (mandatory)
        if b.get(i) != Some(&b';') {
            return if i < b.len() {
                err(i, "unexpected character after authority")
            } else {
                err(i, "missing \";transport\" (for example \";tcp\")")
            };
        }
        i += 1;
        let start = i;
        while i < b.len() && chars::is(b[i], chars::ALNUM) {
            i += 1;
        }
        if i == start {
            return err(start, "missing transport after ';'");
        }
        let transport = &text[start..i];
        // parameters
        let mut params = "";
        if i < b.len() {
            if b[i] != b';' {
                return err(i, "unexpected character after transport");
            }
            let pstart = i + 1;
            let mut j = pstart;
            loop {
                let name_start = j;
                while j < b.len() && is_token_char(b[j]) {
                    j += 1;
                }
                if j == name_start {
                    return err(j, "empty URI parameter");
                }
                if j < b.len() && b[j] == b'=' {
                    j += 1;
                    let vstart = j;
                    while j < b.len() && is_token_char(b[j]) {
                        j += 1;
                    }
                    if j == vstart {
                        return err(j, "empty URI parameter value after '='");
                    }
                }
                if j == b.len() {
                    break;
                }
                if b[j] != b';' {
                    return err(j, "character not allowed in URI parameter");
                }
                j += 1;
            }
            params = &text[pstart..];
        }
        Ok(UriRef {
            secure,
            user,
            host,
            host_kind,
            port,
            session_id,
            transport,
            params,
        })
    }

    /// The owned form.
    pub fn to_owned(&self) -> Uri {
        let host = match self.host_kind {
            4 => self.host.parse().map(Host::V4),
            6 => self.host.parse().map(Host::V6),
            _ => Ok(Host::Name(self.host.to_owned())),
        }
        .unwrap_or_else(|_| Host::Name(self.host.to_owned()));
        let params = if self.params.is_empty() {
            Vec::new()
        } else {
            self.params
                .split(';')
                .map(|p| match p.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (p.to_owned(), None),
                })
                .collect()
        };
        Uri {
            secure: self.secure,
            user: self.user.map(str::to_owned),
            host,
            port: self.port,
            session_id: self.session_id.map(str::to_owned),
            transport: self.transport.to_owned(),
            params,
        }
    }
}

/// Decodes `%XX` escapes of unreserved characters and lower-cases ASCII, for
/// comparing host names (RFC 4975 §6.1 applies percent-encoding normalisation).
fn normalised_name(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && pct_ok(b, i) {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
            let v = u8::from_str_radix(hex, 16).unwrap_or(0);
            if is_unreserved(v) {
                out.push(v.to_ascii_lowercase() as char);
                i += 3;
                continue;
            }
            out.push_str(&s[i..i + 3].to_ascii_uppercase());
            i += 3;
            continue;
        }
        out.push(b[i].to_ascii_lowercase() as char);
        i += 1;
    }
    out
}

impl Host {
    /// Parses a host as written in a URI: a name, an IPv4 address, or an
    /// IPv6 address with or without brackets.
    pub fn parse(text: &str) -> Result<Host, UriError> {
        let wrapped;
        let h = if text.contains(':') && !text.starts_with('[') {
            wrapped = format!("[{text}]");
            wrapped.as_str()
        } else {
            text
        };
        let probe = format!("msrp://{h};tcp");
        let u = UriRef::parse(&probe).map_err(|e| UriError {
            offset: e.offset.saturating_sub(7).min(text.len()),
            what: e.what,
        })?;
        if u.user.is_some() || u.port.is_some() || u.session_id.is_some() || !u.params.is_empty() {
            return Err(UriError {
                offset: 0,
                what: "not a bare host name or address",
            });
        }
        Ok(u.to_owned().host)
    }
}

impl Uri {
    /// Parses an MSRP URI.
    pub fn parse(text: &str) -> Result<Uri, UriError> {
        UriRef::parse(text).map(|r| r.to_owned())
    }

    /// A new URI with the given host, TCP transport and no other parts.
    pub fn new(secure: bool, host: Host, port: Option<u16>, session_id: Option<String>) -> Uri {
        Uri {
            secure,
            user: None,
            host,
            port,
            session_id,
            transport: "tcp".into(),
            params: Vec::new(),
        }
    }

    /// RFC 4975 §6.1 equivalence: scheme case-insensitive; userinfo and other
    /// parameters ignored; literal addresses compared as addresses, names
    /// case-insensitively after percent-decoding; a port present in either
    /// URI must be present and equal in both; the session-id compared
    /// case-sensitively (absent never equals present); transport case-insensitive.
    pub fn equivalent(&self, other: &Uri) -> bool {
        if self.secure != other.secure
            || self.port != other.port
            || self.session_id != other.session_id
            || !self.transport.eq_ignore_ascii_case(&other.transport)
        {
            return false;
        }
        match (&self.host, &other.host) {
            (Host::Name(a), Host::Name(b)) => {
                a.eq_ignore_ascii_case(b) || normalised_name(a) == normalised_name(b)
            }
            (Host::V4(a), Host::V4(b)) => a == b,
            (Host::V6(a), Host::V6(b)) => a == b,
            _ => false,
        }
    }

    /// Checks that every part is valid by formatting and parsing again; used
    /// after changing fields one by one.
    pub fn validated(self) -> Result<Uri, UriError> {
        let text = self.to_string();
        let again = Uri::parse(&text)?;
        if again != self {
            return Err(UriError {
                offset: 0,
                what: "a part contains characters that change the URI's structure",
            });
        }
        Ok(self)
    }

    /// The value of parameter `name` (case-insensitive), `Some(None)` when it has no value.
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref())
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "msrps://" } else { "msrp://" })?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let Some(s) = &self.session_id {
            write!(f, "/{s}")?;
        }
        write!(f, ";{}", self.transport)?;
        for (k, v) in &self.params {
            match v {
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        Ok(())
    }
}

/// Parses a space-separated list of URIs (a path header value or SDP `a=path`).
pub fn parse_path(text: &str) -> Result<Vec<Uri>, UriError> {
    let mut out = Vec::new();
    for_each_path_uri(text, |u| out.push(u.to_owned()))?;
    Ok(out)
}

/// Validates a path without allocating; calls `f` for each URI.
pub fn for_each_path_uri<'a>(text: &'a str, mut f: impl FnMut(UriRef<'a>)) -> Result<(), UriError> {
    let b = text.as_bytes();
    let mut any = false;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' || b[i] == b'\t' {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
            i += 1;
        }
        match UriRef::parse(&text[start..i]) {
            Ok(u) => f(u),
            Err(mut e) => {
                e.offset += start;
                return Err(e);
            }
        }
        any = true;
    }
    if !any {
        return Err(UriError {
            offset: 0,
            what: "empty path: expected at least one MSRP URI",
        });
    }
    Ok(())
}

/// Formats a path as space-separated URIs.
pub fn format_path(path: &[Uri]) -> String {
    let mut s = String::new();
    for (i, u) in path.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        use fmt::Write;
        let _ = write!(s, "{u}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Uri {
        Uri::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_every_part() {
        let u = p("msrps://alice%20x@Example.COM:2855/a1B2=+/x;tcp;foo=bar;baz");
        assert!(u.secure);
        assert_eq!(u.user.as_deref(), Some("alice%20x"));
        assert_eq!(u.host, Host::Name("Example.COM".into()));
        assert_eq!(u.port, Some(2855));
        assert_eq!(u.session_id.as_deref(), Some("a1B2=+/x"));
        assert_eq!(u.transport, "tcp");
        assert_eq!(
            u.params,
            vec![("foo".into(), Some("bar".into())), ("baz".into(), None)]
        );
        assert_eq!(u.param("FOO"), Some(Some("bar")));
        assert_eq!(u.param("baz"), Some(None));
        assert_eq!(u.param("nope"), None);
    }

    #[test]
    fn round_trips_through_display() {
        for s in [
            "msrp://127.0.0.1:2855/abc;tcp",
            "msrps://[::1]:0/s;tcp",
            "msrp://host.example;tcp",
            "msrp://u@[2001:db8::1]:9/x;ws;a=b",
            "msrp://h:65535/s;tcp;k",
        ] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn scheme_is_case_insensitive_and_written_lowercase() {
        assert_eq!(p("MSRP://h:1/s;tcp").to_string(), "msrp://h:1/s;tcp");
    }

    #[test]
    fn ipv6_and_ipv4_literals() {
        assert_eq!(
            p("msrp://[::1]:2/s;tcp").host,
            Host::V6(Ipv6Addr::LOCALHOST)
        );
        assert_eq!(
            p("msrp://127.0.0.1:2/s;tcp").host,
            Host::V4(Ipv4Addr::LOCALHOST)
        );
    }

    fn bad(s: &str, offset: usize) {
        match Uri::parse(s) {
            Ok(u) => panic!("{s} parsed as {u:?}"),
            Err(e) => assert_eq!(e.offset, offset, "{s}: {e}"),
        }
    }

    #[test]
    fn rejects_bad_uris_with_position() {
        bad("http://h;tcp", 0);
        bad("msrp:h;tcp", 0);
        bad("msrp://h:1/s", 12);
        bad("msrp://:1/s;tcp", 7);
        bad("msrp://h:99999/s;tcp", 9);
        bad("msrp://h:/s;tcp", 9);
        bad("msrp://h:1/;tcp", 11);
        bad("msrp://h:1/s s;tcp", 12);
        bad("msrp://[::g]:1/s;tcp", 8);
        bad("msrp://[::1:1/s;tcp", 7);
        bad("msrp://999.1.1.1:1/s;tcp", 7);
        bad("msrp://01.2.3.4:1/s;tcp", 7);
        bad("msrp://1.2.3.4.5:1/s;tcp", 7);
        bad("msrp://1.2..4:1/s;tcp", 7);
        bad("msrp://h:1/s;", 13);
        bad("msrp://h:1/s;tcp;", 17);
        bad("msrp://h:1/s;tcp;a=", 19);
        bad("msrp://h:1/s;tcp;a=b c", 20);
        bad("msrp://h%2:1/s;tcp", 8);
        bad("msrp://u<x@h:1/s;tcp", 8);
        bad("msrp://@h:1/s;tcp", 7);
    }

    #[test]
    fn error_message_names_the_problem_and_offset() {
        let e = Uri::parse("msrp://h:1/s").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid MSRP URI at byte 12: missing \";transport\" (for example \";tcp\")"
        );
    }

    #[test]
    fn equivalence_follows_rfc4975_section_6_1() {
        let a = p("msrp://Alice@EXAMPLE.com:2855/sess;tcp");
        // scheme case, host case, userinfo and extra parameters do not matter
        assert!(a.equivalent(&p("MSRP://bob@example.COM:2855/sess;TCP;x=y")));
        assert!(a.equivalent(&p("msrp://ex%61mple.com:2855/sess;tcp")));
        // session id is case-sensitive
        assert!(!a.equivalent(&p("msrp://example.com:2855/SESS;tcp")));
        // explicit port must be in both
        assert!(!a.equivalent(&p("msrp://example.com/sess;tcp")));
        assert!(!a.equivalent(&p("msrp://example.com:2856/sess;tcp")));
        // session id present vs absent
        assert!(!a.equivalent(&p("msrp://example.com:2855;tcp")));
        // transport and scheme
        assert!(!a.equivalent(&p("msrp://example.com:2855/sess;ws")));
        assert!(!a.equivalent(&p("msrps://example.com:2855/sess;tcp")));
        // addresses compare as addresses
        assert!(p("msrp://[::1]:1/s;tcp").equivalent(&p("msrp://[0:0:0:0:0:0:0:1]:1/s;tcp")));
        assert!(!p("msrp://127.0.0.1:1/s;tcp").equivalent(&p("msrp://localhost:1/s;tcp")));
    }

    #[test]
    fn hosts_parse_alone() {
        assert_eq!(Host::parse("::1").unwrap(), Host::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(Host::parse("[::1]").unwrap(), Host::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(
            Host::parse("10.0.0.1").unwrap(),
            Host::V4(Ipv4Addr::new(10, 0, 0, 1))
        );
        assert_eq!(
            Host::parse("relay.example").unwrap(),
            Host::Name("relay.example".into())
        );
        for bad in ["", "a b", "u@h", "h:1", "h/s", "h;tcp", "[::1]:5"] {
            assert!(Host::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validated_rejects_structure_breaking_parts() {
        let mut u = p("msrp://h:1/s;tcp");
        u.session_id = Some("a;b".into());
        assert!(u.clone().validated().is_err());
        u.session_id = Some("ok".into());
        assert!(u.validated().is_ok());
    }

    #[test]
    fn paths_parse_and_format() {
        let path = parse_path("msrp://a:1/x;tcp  msrp://b:2/y;tcp").unwrap();
        assert_eq!(path.len(), 2);
        assert_eq!(format_path(&path), "msrp://a:1/x;tcp msrp://b:2/y;tcp");
        let e = parse_path("msrp://a:1/x;tcp msrp://b:2/y").unwrap_err();
        assert_eq!(e.offset, 17 + 12);
        assert!(parse_path("  ").is_err());
    }
}
