//! SDP for MSRP, sans-IO: parsing a session description (RFC 4566 syntax)
//! and reading its MSRP media descriptions, and building the lines a SIP
//! stack puts into its own SDP. The attributes: `path`, `accept-types`,
//! `accept-wrapped-types`, `max-size` (RFC 4975 §8), `setup` and
//! `connection` (RFC 4145, for MSRP RFC 6135), `fingerprint` (RFC 8122),
//! `msrp-cema` (RFC 6714), the direction attributes (RFC 4566 §6),
//! `chatroom` (RFC 7701 §8), the file-transfer attributes of RFC 5547 §6,
//! and `label`/`mid`; other attributes are kept in order.
//!
//! Input is bounded ([`MAX_SDP`] bytes, [`MAX_LINES`] lines) and every
//! error names the line it is about.

use super::uri::{Uri, format_path, parse_path};

/// Most bytes of a session description taken (a SIP body is far smaller).
pub const MAX_SDP: usize = 64 * 1024;
/// Most lines of a session description taken.
pub const MAX_LINES: usize = 2_000;

/// What is wrong with a session description, and where (line numbers
/// count from 1; 0 is the whole body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdpError {
    /// The line.
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for SdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "SDP: {}", self.what)
        } else {
            write!(f, "SDP line {}: {}", self.line, self.what)
        }
    }
}

impl std::error::Error for SdpError {}

fn err<T>(line: usize, what: impl Into<String>) -> Result<T, SdpError> {
    Err(SdpError {
        line,
        what: what.into(),
    })
}

/// One `<type>=<value>` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// Where it was (1-based; 0 for lines built here).
    pub number: usize,
    /// The type letter.
    pub kind: char,
    /// Everything after `=`.
    pub value: String,
}

/// An `m=` line and the lines after it up to the next one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    /// The `m=` line's number.
    pub number: usize,
    /// The media type (`message` for MSRP).
    pub media: String,
    /// The port.
    pub port: u16,
    /// The transport protocol (`TCP/MSRP`, `TCP/TLS/MSRP`, …).
    pub proto: String,
    /// The formats (`*` for MSRP).
    pub formats: Vec<String>,
    /// The media-level lines, in order.
    pub lines: Vec<Line>,
}

/// A parsed session description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sdp {
    /// The session-level lines (before the first `m=`), in order.
    pub session: Vec<Line>,
    /// The media descriptions, in order.
    pub media: Vec<Media>,
}

/// Network address type of a `c=` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddrType {
    /// `IP4`
    Ip4,
    /// `IP6`
    Ip6,
}

/// A `c=` line (RFC 4566 §5.7), `IN` only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// IP4 or IP6.
    pub addr_type: AddrType,
    /// The address or host name as written (IPv6 without brackets).
    pub address: String,
}

impl Connection {
    fn parse(line: &Line) -> Result<Connection, SdpError> {
        let mut it = line.value.split(' ');
        let (Some(net), Some(t), Some(addr), None) = (it.next(), it.next(), it.next(), it.next())
        else {
            return err(line.number, "c= is not '<nettype> <addrtype> <address>'");
        };
        if net != "IN" {
            return err(line.number, format!("c= network type '{net}' is not IN"));
        }
        let addr_type = match t {
            "IP4" => AddrType::Ip4,
            "IP6" => AddrType::Ip6,
            _ => {
                return err(
                    line.number,
                    format!("c= address type '{t}' is not IP4 or IP6"),
                );
            }
        };
        // A multicast TTL or count (`/…`) has no meaning for MSRP.
        let address = addr.split('/').next().unwrap_or_default();
        if address.is_empty() {
            return err(line.number, "c= has no address");
        }
        Ok(Connection {
            addr_type,
            address: address.to_owned(),
        })
    }

    fn line(&self) -> String {
        let t = match self.addr_type {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
        };
        format!("c=IN {t} {}", self.address)
    }
}

impl Sdp {
    /// Parses a session description: lines end with CRLF (a bare LF is
    /// taken too); each is `<letter>=<value>`; `v=` comes first.
    pub fn parse(text: &str) -> Result<Sdp, SdpError> {
        if text.len() > MAX_SDP {
            return err(
                0,
                format!("{} bytes is more than the {MAX_SDP} taken", text.len()),
            );
        }
        let mut session = Vec::new();
        let mut media: Vec<Media> = Vec::new();
        let mut count = 0;
        for (i, raw) in text.split('\n').enumerate() {
            let number = i + 1;
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            if raw.is_empty() {
                continue;
            }
            count += 1;
            if count > MAX_LINES {
                return err(number, format!("more than {MAX_LINES} lines"));
            }
            let mut chars = raw.chars();
            let (Some(kind), Some('=')) = (chars.next(), chars.next()) else {
                return err(number, "not a '<letter>=<value>' line");
            };
            if !kind.is_ascii_lowercase() {
                return err(number, format!("'{kind}' is not a line type"));
            }
            if raw.contains('\r') || raw.contains('\0') {
                return err(number, "a line holds a CR or NUL");
            }
            let value = raw[2..].to_owned();
            if count == 1 && (kind != 'v' || value != "0") {
                return err(number, "the first line is not v=0");
            }
            let line = Line {
                number,
                kind,
                value,
            };
            if kind == 'm' {
                media.push(parse_m(line)?);
            } else if let Some(m) = media.last_mut() {
                m.lines.push(line);
            } else {
                session.push(line);
            }
        }
        if count == 0 {
            return err(0, "empty");
        }
        Ok(Sdp { session, media })
    }

    /// The session-level `c=`, if any.
    pub fn connection(&self) -> Result<Option<Connection>, SdpError> {
        self.session
            .iter()
            .find(|l| l.kind == 'c')
            .map(Connection::parse)
            .transpose()
    }

    /// The MSRP media descriptions (`m=message … TCP/…MSRP`), in order,
    /// with their index among all media descriptions.
    pub fn msrp_media(&self) -> Result<Vec<(usize, MsrpMedia)>, SdpError> {
        let conn = self.connection()?;
        let mut out = Vec::new();
        for (i, m) in self.media.iter().enumerate() {
            if m.media == "message" && MsrpTransport::from_proto(&m.proto).is_some() {
                out.push((i, MsrpMedia::from_media(m, conn.as_ref(), &self.session)?));
            }
        }
        Ok(out)
    }
}

fn parse_m(line: Line) -> Result<Media, SdpError> {
    let mut it = line.value.split(' ');
    let (Some(media), Some(port), Some(proto)) = (it.next(), it.next(), it.next()) else {
        return err(line.number, "m= is not '<media> <port> <proto> <fmt> …'");
    };
    let formats: Vec<String> = it.map(str::to_owned).collect();
    if formats.is_empty() {
        return err(line.number, "m= lists no format");
    }
    // A port count (`port/count`) is not used by MSRP; the port is kept.
    let port_text = port.split('/').next().unwrap_or_default();
    let Ok(port) = port_text.parse::<u16>() else {
        return err(
            line.number,
            format!("m= port '{port_text}' is not a number up to 65535"),
        );
    };
    Ok(Media {
        number: line.number,
        media: media.to_owned(),
        port,
        proto: proto.to_owned(),
        formats,
        lines: Vec::new(),
    })
}

/// How MSRP is carried (the `m=` line's protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsrpTransport {
    /// `TCP/MSRP`
    Tcp,
    /// `TCP/TLS/MSRP`
    Tls,
    /// `TCP/WS/MSRP` (RFC 7977)
    Ws,
    /// `TCP/WSS/MSRP` (RFC 7977)
    Wss,
}

impl MsrpTransport {
    /// The protocol of an `m=` line, when it is MSRP.
    pub fn from_proto(p: &str) -> Option<MsrpTransport> {
        Some(match p {
            "TCP/MSRP" => MsrpTransport::Tcp,
            "TCP/TLS/MSRP" => MsrpTransport::Tls,
            "TCP/WS/MSRP" => MsrpTransport::Ws,
            "TCP/WSS/MSRP" => MsrpTransport::Wss,
            _ => return None,
        })
    }

    /// As written in an `m=` line.
    pub fn proto(self) -> &'static str {
        match self {
            MsrpTransport::Tcp => "TCP/MSRP",
            MsrpTransport::Tls => "TCP/TLS/MSRP",
            MsrpTransport::Ws => "TCP/WS/MSRP",
            MsrpTransport::Wss => "TCP/WSS/MSRP",
        }
    }
}

/// `a=setup` (RFC 4145 §4; for MSRP RFC 6135 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// `active`: this side connects.
    Active,
    /// `passive`: this side accepts.
    Passive,
    /// `actpass`: either (offers only).
    ActPass,
    /// `holdconn`: no connection now.
    HoldConn,
}

impl Setup {
    fn parse(v: &str) -> Option<Setup> {
        Some(match v {
            "active" => Setup::Active,
            "passive" => Setup::Passive,
            "actpass" => Setup::ActPass,
            "holdconn" => Setup::HoldConn,
            _ => return None,
        })
    }

    /// As written after `a=setup:`.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }
}

/// `a=connection` (RFC 4145 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectionAttr {
    /// `new`
    New,
    /// `existing`
    Existing,
}

/// The direction attributes (RFC 4566 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `sendrecv` (the default)
    SendRecv,
    /// `sendonly`
    SendOnly,
    /// `recvonly`
    RecvOnly,
    /// `inactive`
    Inactive,
}

impl Direction {
    fn parse(name: &str) -> Option<Direction> {
        Some(match name {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The attribute's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// An `a=fingerprint` (RFC 8122 §5): the hash function's name (lower
/// case) and the fingerprint as upper-case hex bytes separated by colons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdpFingerprint {
    /// `sha-256`, `sha-1`, …
    pub hash_func: String,
    /// `AB:CD:…`
    pub value: String,
}

impl SdpFingerprint {
    /// Parses `<hash-func> <fingerprint>`. Lower-case hex is taken and
    /// written back in upper case (RFC 8122 §5 writes upper case).
    pub fn parse(v: &str) -> Option<SdpFingerprint> {
        let (func, fp) = v.split_once(' ')?;
        let fp = fp.trim();
        let ok = !func.is_empty()
            && func.bytes().all(is_token_char)
            && fp
                .split(':')
                .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
        ok.then(|| SdpFingerprint {
            hash_func: func.to_ascii_lowercase(),
            value: fp.to_ascii_uppercase(),
        })
    }

    /// As written after `a=fingerprint:`.
    pub fn text(&self) -> String {
        format!("{} {}", self.hash_func, self.value)
    }
}

fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`{|}~".contains(&c)
}

/// `a=file-selector` (RFC 5547 §6): what file a transfer is about. All
/// `None` is the capability form (no selector, §8.5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSelector {
    /// `name:"…"`, percent-decoded.
    pub name: Option<String>,
    /// `type:…` with its parameters, as written.
    pub media_type: Option<String>,
    /// `size:…`
    pub size: Option<u64>,
    /// `hash:<algorithm>:<hex bytes>`: the algorithm and the bytes as written.
    pub hash: Option<(String, String)>,
}

impl FileSelector {
    fn parse(v: &str, number: usize) -> Result<FileSelector, SdpError> {
        let mut s = FileSelector::default();
        let mut rest = v.trim_start();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("name:\"") {
                let Some(end) = r.find('"') else {
                    return err(number, "file-selector name has no closing quote");
                };
                let Some(name) = percent_decode(&r[..end]) else {
                    return err(number, "file-selector name has a bad percent-encoding");
                };
                s.name = Some(name);
                rest = &r[end + 1..];
            } else {
                // A selector ends at a space outside quotes (a type's
                // parameters are quoted and may hold spaces).
                let mut quoted = false;
                let end = rest
                    .char_indices()
                    .find(|&(_, c)| {
                        if c == '"' {
                            quoted = !quoted;
                        }
                        c == ' ' && !quoted
                    })
                    .map_or(rest.len(), |(i, _)| i);
                let sel = &rest[..end];
                rest = &rest[end..];
                if let Some(t) = sel.strip_prefix("type:") {
                    // Quoted parameter values may hold spaces; an odd quote
                    // would make the end of the value depend on what follows.
                    if t.matches('"').count() % 2 == 1 {
                        return err(number, "file-selector type has an unbalanced quote");
                    }
                    if !t.contains('/') {
                        return err(
                            number,
                            format!("file-selector type '{t}' is not type/subtype"),
                        );
                    }
                    s.media_type = Some(t.to_owned());
                } else if let Some(n) = sel.strip_prefix("size:") {
                    let Ok(n) = n.parse::<u64>() else {
                        return err(number, format!("file-selector size '{n}' is not a number"));
                    };
                    s.size = Some(n);
                } else if let Some(h) = sel.strip_prefix("hash:") {
                    let Some(hash) = parse_file_hash(h) else {
                        return err(
                            number,
                            format!("file-selector hash '{h}' is not <algorithm>:<hex bytes>"),
                        );
                    };
                    s.hash = Some(hash);
                } else {
                    return err(number, format!("unknown file-selector '{sel}'"));
                }
            }
            rest = rest.trim_start();
        }
        Ok(s)
    }

    fn text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(n) = &self.name {
            parts.push(format!("name:\"{}\"", percent_encode(n)));
        }
        if let Some(t) = &self.media_type {
            parts.push(format!("type:{t}"));
        }
        if let Some(n) = self.size {
            parts.push(format!("size:{n}"));
        }
        if let Some((alg, hex)) = &self.hash {
            parts.push(format!("hash:{alg}:{hex}"));
        }
        parts.join(" ")
    }
}

/// A file-selector hash value (RFC 5547 §6: `<algorithm>:<hex bytes>`,
/// bytes separated by colons): the algorithm in lower case and the bytes
/// in upper case, or `None` when malformed.
pub fn parse_file_hash(h: &str) -> Option<(String, String)> {
    let (alg, hex) = h.split_once(':')?;
    let good = hex
        .split(':')
        .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
    (!alg.is_empty() && good).then(|| (alg.to_ascii_lowercase(), hex.to_ascii_uppercase()))
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes what a `filename-string` may not hold (RFC 5547 §6:
/// NUL, CR, LF, the double quote and the percent sign).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' | '\r' | '\n' | '"' | '%' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// `a=file-range` (RFC 5547 §6): 1-based, the stop `*` when unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRange {
    /// The first byte (from 1).
    pub start: u64,
    /// The last byte, `None` for `*`.
    pub stop: Option<u64>,
}

/// The RFC 5547 file-transfer attributes of a media description.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileAttrs {
    /// `a=file-selector`.
    pub selector: Option<FileSelector>,
    /// `a=file-transfer-id`.
    pub transfer_id: Option<String>,
    /// `a=file-disposition` (`render`, `attachment`, …).
    pub disposition: Option<String>,
    /// `a=file-date`: (`creation`/`modification`/`read`, the date as written).
    pub dates: Vec<(String, String)>,
    /// `a=file-icon` (a `cid:` URL).
    pub icon: Option<String>,
    /// `a=file-range`.
    pub range: Option<FileRange>,
}

impl FileAttrs {
    /// The `a=file-date` value: `<kind>:"<date>"`, separated by spaces.
    pub fn dates_text(&self) -> String {
        let d: Vec<String> = self
            .dates
            .iter()
            .map(|(k, v)| format!("{k}:\"{v}\""))
            .collect();
        d.join(" ")
    }
}

/// An MSRP media description, read or to be written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsrpMedia {
    /// The `m=` port.
    pub port: u16,
    /// How MSRP is carried.
    pub transport: MsrpTransport,
    /// The media-level `c=`, else the session-level one (when read).
    pub connection: Option<Connection>,
    /// `i=` (a title).
    pub title: Option<String>,
    /// `a=path` (RFC 4975 §8.2): the full path, the endpoint's URI last.
    pub path: Vec<Uri>,
    /// `a=accept-types` (RFC 4975 §8.6).
    pub accept_types: Vec<String>,
    /// `a=accept-wrapped-types`.
    pub accept_wrapped_types: Vec<String>,
    /// `a=max-size` (octets).
    pub max_size: Option<u64>,
    /// `a=setup` (media level, else session level).
    pub setup: Option<Setup>,
    /// `a=connection`.
    pub connection_attr: Option<ConnectionAttr>,
    /// `a=fingerprint` lines (media level, else session level); any may match.
    pub fingerprints: Vec<SdpFingerprint>,
    /// `a=msrp-cema` (RFC 6714 §5).
    pub cema: bool,
    /// The direction attribute (media level, else session level).
    pub direction: Option<Direction>,
    /// `a=chatroom` and its tokens (RFC 7701 §8).
    pub chatroom: Option<Vec<String>>,
    /// The RFC 5547 file attributes.
    pub file: FileAttrs,
    /// `a=label`.
    pub label: Option<String>,
    /// `a=mid`.
    pub mid: Option<String>,
    /// Other attributes, in order: name and value (`None` for a flag).
    pub other: Vec<(String, Option<String>)>,
}

impl MsrpMedia {
    /// A media description with only the required parts: the `m=` line's
    /// port and transport, and our path.
    pub fn new(port: u16, transport: MsrpTransport, path: Vec<Uri>) -> MsrpMedia {
        MsrpMedia {
            port,
            transport,
            connection: None,
            title: None,
            path,
            accept_types: Vec::new(),
            accept_wrapped_types: Vec::new(),
            max_size: None,
            setup: None,
            connection_attr: None,
            fingerprints: Vec::new(),
            cema: false,
            direction: None,
            chatroom: None,
            file: FileAttrs::default(),
            label: None,
            mid: None,
            other: Vec::new(),
        }
    }

    /// Reads an MSRP media description; `conn` and `session` are the
    /// session-level `c=` and lines (for attributes that may stand there).
    pub fn from_media(
        m: &Media,
        conn: Option<&Connection>,
        session: &[Line],
    ) -> Result<MsrpMedia, SdpError> {
        let Some(transport) = MsrpTransport::from_proto(&m.proto) else {
            return err(m.number, format!("'{}' is not an MSRP protocol", m.proto));
        };
        let mut out = MsrpMedia::new(m.port, transport, Vec::new());
        let mut has_path = false;
        for l in &m.lines {
            match l.kind {
                'c' => out.connection = Some(Connection::parse(l)?),
                'i' => out.title = Some(l.value.clone()),
                'a' => {
                    out.attribute(l)?;
                    has_path |= l.value.starts_with("path:");
                }
                _ => {}
            }
        }
        if !has_path {
            return err(
                m.number,
                "the MSRP media description has no a=path (RFC 4975 §8.2)",
            );
        }
        if out.connection.is_none() {
            out.connection = conn.cloned();
        }
        // Attributes that may stand at the session level (RFC 4145 §4,
        // RFC 8122 §5, RFC 4566 §6) apply when the media level has none.
        let mut at_session = MsrpMedia::new(0, transport, Vec::new());
        for l in session.iter().filter(|l| l.kind == 'a') {
            let (name, value) = split_attr(&l.value);
            if matches!(name, "setup" | "fingerprint")
                || (value.is_none() && Direction::parse(name).is_some())
            {
                at_session.attribute(l)?;
            }
        }
        out.setup = out.setup.or(at_session.setup);
        out.direction = out.direction.or(at_session.direction);
        if out.fingerprints.is_empty() {
            out.fingerprints = at_session.fingerprints;
        }
        Ok(out)
    }

    fn attribute(&mut self, l: &Line) -> Result<(), SdpError> {
        let n = l.number;
        let (name, value) = split_attr(&l.value);
        let need = |what: &str| match value {
            Some(v) if !v.is_empty() => Ok(v),
            _ => err(n, format!("a={what} has no value")),
        };
        let types = |v: &str| {
            v.split(' ')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect()
        };
        match name {
            "path" => {
                let v = need("path")?;
                self.path = match parse_path(v) {
                    Ok(p) if !p.is_empty() => p,
                    Ok(_) => return err(n, "a=path is empty"),
                    Err(e) => return err(n, format!("a=path: {e}")),
                };
            }
            "accept-types" => self.accept_types = types(need("accept-types")?),
            "accept-wrapped-types" => {
                self.accept_wrapped_types = types(need("accept-wrapped-types")?)
            }
            "max-size" => {
                let v = need("max-size")?;
                self.max_size = match v.parse::<u64>() {
                    Ok(s) if v.bytes().all(|c| c.is_ascii_digit()) => Some(s),
                    _ => return err(n, format!("a=max-size '{v}' is not a number of octets")),
                };
            }
            "setup" => {
                let v = need("setup")?;
                self.setup = Some(Setup::parse(v).ok_or_else(|| SdpError {
                    line: n,
                    what: format!("a=setup '{v}' is not active, passive, actpass or holdconn"),
                })?);
            }
            "connection" => {
                self.connection_attr = Some(match need("connection")? {
                    "new" => ConnectionAttr::New,
                    "existing" => ConnectionAttr::Existing,
                    v => return err(n, format!("a=connection '{v}' is not new or existing")),
                });
            }
            "fingerprint" => {
                let v = need("fingerprint")?;
                let fp = SdpFingerprint::parse(v).ok_or_else(|| SdpError {
                    line: n,
                    what: format!("a=fingerprint '{v}' is not '<hash-func> <XX:XX:…>'"),
                })?;
                self.fingerprints.push(fp);
            }
            "msrp-cema" => self.cema = true,
            "chatroom" => self.chatroom = Some(value.map(types).unwrap_or_default()),
            "file-selector" => {
                self.file.selector = Some(FileSelector::parse(value.unwrap_or(""), n)?)
            }
            "file-transfer-id" => {
                self.file.transfer_id = Some(need("file-transfer-id")?.to_owned())
            }
            "file-disposition" => {
                self.file.disposition = Some(need("file-disposition")?.to_owned())
            }
            "file-date" => self.file.dates = parse_dates(need("file-date")?, n)?,
            "file-icon" => self.file.icon = Some(need("file-icon")?.to_owned()),
            "file-range" => {
                let v = need("file-range")?;
                let bad = || SdpError {
                    line: n,
                    what: format!("a=file-range '{v}' is not <start>-<stop or *>"),
                };
                let (a, b) = v.split_once('-').ok_or_else(bad)?;
                let start = a.parse::<u64>().map_err(|_| bad())?;
                let stop = match b {
                    "*" => None,
                    b => Some(b.parse::<u64>().map_err(|_| bad())?),
                };
                if start == 0 || stop.is_some_and(|s| s < start) {
                    return Err(bad());
                }
                self.file.range = Some(FileRange { start, stop });
            }
            "label" => self.label = Some(need("label")?.to_owned()),
            "mid" => self.mid = Some(need("mid")?.to_owned()),
            d if value.is_none() && Direction::parse(d).is_some() => {
                self.direction = Direction::parse(d)
            }
            other => self
                .other
                .push((other.to_owned(), value.map(str::to_owned))),
        }
        Ok(())
    }

    /// The media description as SDP lines (CRLF after each): `m=`, `i=`
    /// and `c=` when set, then the attributes. IPv6 addresses are written
    /// bare in `c=` and bracketed in the path's URIs.
    pub fn to_lines(&self) -> String {
        let mut out = Vec::new();
        out.push(format!(
            "m=message {} {} *",
            self.port,
            self.transport.proto()
        ));
        if let Some(t) = &self.title {
            out.push(format!("i={t}"));
        }
        if let Some(c) = &self.connection {
            out.push(c.line());
        }
        let mut a = |name: &str, v: Option<String>| match v {
            Some(v) => out.push(format!("a={name}:{v}")),
            None => out.push(format!("a={name}")),
        };
        if let Some(d) = self.direction {
            a(d.as_str(), None);
        }
        if !self.accept_types.is_empty() {
            a("accept-types", Some(self.accept_types.join(" ")));
        }
        if !self.accept_wrapped_types.is_empty() {
            a(
                "accept-wrapped-types",
                Some(self.accept_wrapped_types.join(" ")),
            );
        }
        if let Some(n) = self.max_size {
            a("max-size", Some(n.to_string()));
        }
        a("path", Some(format_path(&self.path)));
        if let Some(s) = self.setup {
            a("setup", Some(s.as_str().into()));
        }
        if let Some(c) = self.connection_attr {
            let v = match c {
                ConnectionAttr::New => "new",
                ConnectionAttr::Existing => "existing",
            };
            a("connection", Some(v.into()));
        }
        for f in &self.fingerprints {
            a("fingerprint", Some(f.text()));
        }
        if self.cema {
            a("msrp-cema", None);
        }
        if let Some(tokens) = &self.chatroom {
            a("chatroom", (!tokens.is_empty()).then(|| tokens.join(" ")));
        }
        let f = &self.file;
        if let Some(s) = &f.selector {
            let t = s.text();
            a("file-selector", (!t.is_empty()).then_some(t));
        }
        if let Some(v) = &f.transfer_id {
            a("file-transfer-id", Some(v.clone()));
        }
        if let Some(v) = &f.disposition {
            a("file-disposition", Some(v.clone()));
        }
        if !f.dates.is_empty() {
            a("file-date", Some(f.dates_text()));
        }
        if let Some(v) = &f.icon {
            a("file-icon", Some(v.clone()));
        }
        if let Some(r) = f.range {
            let stop = r.stop.map_or("*".to_owned(), |s| s.to_string());
            a("file-range", Some(format!("{}-{stop}", r.start)));
        }
        if let Some(v) = &self.label {
            a("label", Some(v.clone()));
        }
        if let Some(v) = &self.mid {
            a("mid", Some(v.clone()));
        }
        for (k, v) in &self.other {
            a(k, v.clone());
        }
        let mut s = out.join("\r\n");
        s.push_str("\r\n");
        s
    }
}

fn split_attr(v: &str) -> (&str, Option<&str>) {
    match v.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (v, None),
    }
}

/// Reads an `a=file-date` value (`n`: the line number for errors).
pub(crate) fn parse_dates(v: &str, n: usize) -> Result<Vec<(String, String)>, SdpError> {
    let mut out = Vec::new();
    let mut rest = v.trim_start();
    while !rest.is_empty() {
        let Some((kind, r)) = rest.split_once(":\"") else {
            return err(n, "a=file-date is not <kind>:\"<date>\" …");
        };
        if !matches!(kind, "creation" | "modification" | "read") {
            return err(
                n,
                format!("a=file-date kind '{kind}' is not creation, modification or read"),
            );
        }
        let Some(end) = r.find('"') else {
            return err(n, "a=file-date has no closing quote");
        };
        out.push((kind.to_owned(), r[..end].to_owned()));
        rest = r[end + 1..].trim_start();
    }
    Ok(out)
}

/// A whole minimal session description around one MSRP media description
/// (for tools and examples; a SIP stack adds `media.to_lines()` to its own):
/// `v=`, `o=` with `user`, `session_id` and the connection address, `s=-`,
/// the session-level `c=` (the media's), `t=0 0`, then the media.
pub fn minimal_sdp(user: &str, session_id: u64, media: &MsrpMedia) -> String {
    let (t, addr) = match &media.connection {
        Some(c) => (
            match c.addr_type {
                AddrType::Ip4 => "IP4",
                AddrType::Ip6 => "IP6",
            },
            c.address.as_str(),
        ),
        None => ("IP4", "0.0.0.0"),
    };
    let mut m = media.clone();
    let c = m.connection.take();
    let mut s = format!("v=0\r\no={user} {session_id} {session_id} IN {t} {addr}\r\ns=-\r\n");
    if let Some(c) = c {
        s.push_str(&c.line());
        s.push_str("\r\n");
    }
    s.push_str("t=0 0\r\n");
    s.push_str(&m.to_lines());
    s
}
