//! Relay rules of RFC 4976, sans-IO: the AUTH request, HTTP digest
//! answers to a relay's challenge (RFC 2617 as RFC 4976 §5 uses it: method
//! `AUTH`, the relay's URI as digest-uri; MD5 and MD5-sess; qop `auth` or
//! none), checking `rspauth`, choosing an Expires within a 423's bounds,
//! and the whole exchange as a state machine ([`AuthExchange`]): responses
//! in, the next AUTH or the outcome out. The engine only carries the
//! requests and responses.

use md5::{Digest, Md5};

use super::chunk::Chunk;
use super::header::{DigestParams, HeaderName};
use super::uri::Uri;

/// Why a challenge cannot be answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DigestError(pub String);

impl std::fmt::Display for DigestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// What we keep from answering a challenge, to check the relay's
/// `rspauth` and to count nonces.
#[derive(Clone, Debug)]
pub struct DigestAnswer {
    /// The Authorization header value.
    pub header: String,
    ha1: String,
    nonce: String,
    cnonce: Option<String>,
    nc: Option<String>,
    qop: Option<String>,
    uri: String,
}

/// Answers a `WWW-Authenticate: Digest …` challenge for an AUTH to `uri`.
/// `nc` counts the uses of this nonce (from 1); `cnonce` is a fresh random
/// client nonce.
pub fn answer_challenge(
    challenge: &DigestParams,
    user: &str,
    password: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> Result<DigestAnswer, DigestError> {
    if !challenge.scheme.eq_ignore_ascii_case("Digest") {
        return Err(DigestError(format!(
            "the relay asks for '{}' authentication; only Digest is supported",
            challenge.scheme
        )));
    }
    let realm = challenge
        .get("realm")
        .ok_or_else(|| DigestError("the challenge has no realm".into()))?;
    let nonce = challenge
        .get("nonce")
        .ok_or_else(|| DigestError("the challenge has no nonce".into()))?;
    let algorithm = challenge.get("algorithm").unwrap_or("MD5");
    let sess = if algorithm.eq_ignore_ascii_case("MD5") {
        false
    } else if algorithm.eq_ignore_ascii_case("MD5-sess") {
        true
    } else {
        return Err(DigestError(format!(
            "digest algorithm '{algorithm}' is not supported (MD5 and MD5-sess are)"
        )));
    };
    // qop is a list of options; we use `auth` when offered.
    let qop = match challenge.get("qop") {
        None => None,
        Some(list) => {
            if list
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            {
                Some("auth".to_owned())
            } else {
                return Err(DigestError(format!(
                    "the relay offers qop '{list}'; only 'auth' is supported"
                )));
            }
        }
    };
    let mut ha1 = md5_hex(&[user, realm, password]);
    if sess {
        ha1 = md5_hex(&[&ha1, nonce, cnonce]);
    }
    let ha2 = md5_hex(&["AUTH", uri]);
    let nc_text = format!("{nc:08x}");
    let response = match &qop {
        Some(q) => md5_hex(&[&ha1, nonce, &nc_text, cnonce, q, &ha2]),
        None => md5_hex(&[&ha1, nonce, &ha2]),
    };
    let quote = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    let mut h = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}",
        quote(user),
        quote(realm),
        quote(nonce),
        quote(uri),
        response,
        algorithm
    );
    let use_cnonce = qop.is_some() || sess;
    if let Some(q) = &qop {
        h.push_str(&format!(", qop={q}, nc={nc_text}"));
    }
    if use_cnonce {
        h.push_str(&format!(", cnonce=\"{}\"", quote(cnonce)));
    }
    if let Some(o) = challenge.get("opaque") {
        h.push_str(&format!(", opaque=\"{}\"", quote(o)));
    }
    Ok(DigestAnswer {
        header: h,
        ha1,
        nonce: nonce.to_owned(),
        cnonce: use_cnonce.then(|| cnonce.to_owned()),
        nc: qop.is_some().then_some(nc_text),
        qop,
        uri: uri.to_owned(),
    })
}

impl DigestAnswer {
    /// Checks `Authentication-Info: rspauth=…` (RFC 2617 §3.2.3): the relay
    /// proves it knows the password too. Absent rspauth is accepted.
    pub fn check_rspauth(&self, info: &DigestParams) -> Result<(), DigestError> {
        let Some(got) = info.get("rspauth") else {
            return Ok(());
        };
        let ha2 = md5_hex(&["", &self.uri]);
        let want = match (&self.qop, &self.nc, &self.cnonce) {
            (Some(q), Some(nc), Some(cn)) => md5_hex(&[&self.ha1, &self.nonce, nc, cn, q, &ha2]),
            _ => md5_hex(&[&self.ha1, &self.nonce, &ha2]),
        };
        if got.eq_ignore_ascii_case(&want) {
            Ok(())
        } else {
            Err(DigestError(
                "the relay's rspauth does not match: it does not know our password (wrong relay?)"
                    .into(),
            ))
        }
    }
}

/// The AUTH request to a relay (RFC 4976 §5.1): To-Path is the relay's URI,
/// From-Path ours; optional Expires and Authorization.
pub fn auth_request(
    relay: &Uri,
    local: &Uri,
    expires: Option<u64>,
    authorization: Option<&str>,
) -> Chunk {
    let mut c = Chunk::request("AUTH").expect("AUTH is a valid method");
    c.set_to_path(std::slice::from_ref(relay));
    c.set_from_path(std::slice::from_ref(local));
    if let Some(e) = expires {
        c.add_header_raw("Expires", &e.to_string())
            .expect("a number is a valid Expires");
    }
    if let Some(a) = authorization {
        // Our own answer: values are quoted and escaped above.
        let _ = c.add_header_raw("Authorization", a);
    }
    c
}

/// After a 423, the Expires to ask for next: at least Min-Expires, at most
/// Max-Expires; `None` when the response gives no usable bound.
pub fn expires_after_423(resp: &Chunk, asked: Option<u64>) -> Option<u64> {
    let min = resp.expires(HeaderName::MinExpires).ok().flatten();
    let max = resp.expires(HeaderName::MaxExpires).ok().flatten();
    match (min, max) {
        (Some(m), _) if asked.is_none_or(|a| a < m) => Some(m),
        (_, Some(m)) if asked.is_none_or(|a| a > m) => Some(m),
        _ => None,
    }
}

/// What went wrong in an AUTH exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    /// The relay refused us or asked for what we cannot give.
    Refused(String),
    /// The relay's answer breaks RFC 4976 (a 200 without a usable Use-Path).
    Protocol(String),
}

/// What an AUTH was granted (RFC 4976 §5.1): the path to put in front of
/// ours, and for how long (seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthGranted {
    /// The relay's Use-Path (never empty).
    pub use_path: Vec<Uri>,
    /// The Expires the relay granted, or the one asked for, or 3600.
    pub expires: u64,
}

/// The next step of an AUTH exchange.
#[derive(Clone, Debug)]
pub enum AuthStep {
    /// Send this AUTH and feed its response to [`AuthExchange::on_response`].
    Send(Chunk),
    /// As `Send`, after a 423: the relay wants this Expires instead.
    Retry423 {
        /// The AUTH to send.
        request: Chunk,
        /// The Expires it asks for.
        expires: u64,
    },
    /// Authenticated.
    Done(AuthGranted),
    /// The exchange failed; nothing more to send.
    Failed(AuthFailure),
}

/// One AUTH exchange with a relay (RFC 4976 §5.1): the first AUTH, a 401
/// answered once with digest credentials, a 423 retried once with an
/// Expires in the relay's bounds (and challenged afresh), anything else
/// final. Sans-IO: it makes the requests and reads the responses, the
/// caller carries them.
#[derive(Clone, Debug)]
pub struct AuthExchange {
    relay: Uri,
    local: Uri,
    username: String,
    password: String,
    expires: Option<u64>,
    answer: Option<DigestAnswer>,
    tried_credentials: bool,
    tried_423: bool,
}

fn with_comment(code: u16, resp: &Chunk) -> String {
    format!(
        "{code}{}",
        resp.comment().map(|c| format!(" {c}")).unwrap_or_default()
    )
}

impl AuthExchange {
    /// An exchange with the relay at `relay`, for our URI `local`, asking
    /// for `expires` seconds (`None`: the relay's default).
    pub fn new(
        relay: Uri,
        local: Uri,
        username: &str,
        password: &str,
        expires: Option<u64>,
    ) -> Self {
        AuthExchange {
            relay,
            local,
            username: username.to_owned(),
            password: password.to_owned(),
            expires,
            answer: None,
            tried_credentials: false,
            tried_423: false,
        }
    }

    /// The AUTH to send now: the first one, or the one a step asked for.
    pub fn request(&self) -> Chunk {
        auth_request(
            &self.relay,
            &self.local,
            self.expires,
            self.answer.as_ref().map(|a| a.header.as_str()),
        )
    }

    /// Reads the response to the last AUTH and says what comes next.
    pub fn on_response(&mut self, resp: &Chunk) -> AuthStep {
        let code = resp.code().unwrap_or(0);
        match code {
            200 => AuthStep::from(self.granted(resp)),
            401 if !self.tried_credentials => {
                let Some(challenge) = resp.digest(HeaderName::WwwAuthenticate).ok().flatten()
                else {
                    return AuthStep::Failed(AuthFailure::Refused(
                        "the relay answered 401 without a usable WWW-Authenticate".into(),
                    ));
                };
                match answer_challenge(
                    &challenge,
                    &self.username,
                    &self.password,
                    &self.relay.to_string(),
                    1,
                    &super::ids::transaction_id(),
                ) {
                    Ok(a) => {
                        self.answer = Some(a);
                        self.tried_credentials = true;
                        AuthStep::Send(self.request())
                    }
                    Err(e) => AuthStep::Failed(AuthFailure::Refused(e.0)),
                }
            }
            401 | 403 => AuthStep::Failed(AuthFailure::Refused(format!(
                "the relay refused our credentials for user '{}' with {}: check the user name and password",
                self.username,
                with_comment(code, resp)
            ))),
            423 if !self.tried_423 => match expires_after_423(resp, self.expires) {
                Some(next) => {
                    self.expires = Some(next);
                    self.tried_423 = true;
                    // Start over: the relay challenges the new AUTH afresh.
                    self.answer = None;
                    self.tried_credentials = false;
                    AuthStep::Retry423 {
                        request: self.request(),
                        expires: next,
                    }
                }
                None => AuthStep::Failed(AuthFailure::Refused(
                    "the relay answered 423 without a Min-Expires or Max-Expires we can meet"
                        .into(),
                )),
            },
            _ => AuthStep::Failed(AuthFailure::Refused(format!(
                "the relay answered AUTH with {}",
                with_comment(code, resp)
            ))),
        }
    }

    fn granted(&self, resp: &Chunk) -> Result<AuthGranted, AuthFailure> {
        if let (Some(a), Ok(Some(info))) =
            (&self.answer, resp.digest(HeaderName::AuthenticationInfo))
        {
            a.check_rspauth(&info)
                .map_err(|e| AuthFailure::Refused(e.0))?;
        }
        let use_path = resp.use_path().map_err(|e| {
            AuthFailure::Protocol(format!("the relay's 200 to AUTH has a bad Use-Path: {e}"))
        })?;
        if use_path.is_empty() {
            return Err(AuthFailure::Protocol(
                "the relay's 200 to AUTH has no Use-Path".into(),
            ));
        }
        let expires = resp
            .expires(HeaderName::Expires)
            .ok()
            .flatten()
            .or(self.expires)
            .unwrap_or(3600);
        Ok(AuthGranted { use_path, expires })
    }
}

impl From<Result<AuthGranted, AuthFailure>> for AuthStep {
    fn from(r: Result<AuthGranted, AuthFailure>) -> Self {
        match r {
            Ok(g) => AuthStep::Done(g),
            Err(f) => AuthStep::Failed(f),
        }
    }
}

/// Keeping an AUTH alive (RFC 4976 §5.1: the URI from Use-Path is valid
/// for the Expires the relay granted): when to refresh it, the Expires to
/// ask for, and what a refresh's outcome means.
#[derive(Clone, Debug)]
pub struct AuthRefresh {
    use_path: Vec<Uri>,
    expires: u64,
}

/// After a failed refresh, the next try comes this soon (seconds), while
/// the old AUTH may still hold.
pub const REFRESH_RETRY: u64 = 10;

impl AuthRefresh {
    /// Refreshes of what `granted` gave.
    pub fn new(granted: &AuthGranted) -> Self {
        AuthRefresh {
            use_path: granted.use_path.clone(),
            expires: granted.expires,
        }
    }

    /// How long to wait before the next refresh.
    pub fn delay(&self) -> std::time::Duration {
        refresh_after(self.expires)
    }

    /// The Expires the next refresh asks for (what was granted last).
    pub fn expires(&self) -> u64 {
        self.expires
    }

    /// A refresh was granted. A different Use-Path means the path given in
    /// SDP no longer reaches us: the text says so, for the log.
    pub fn granted(&mut self, g: &AuthGranted) -> Option<String> {
        self.expires = g.expires;
        (!super::transport::paths_equivalent(&g.use_path, &self.use_path)).then(|| {
            format!(
                "the relay answered the AUTH refresh with another Use-Path ({} instead of {}): the path given in SDP no longer reaches us",
                super::uri::format_path(&g.use_path),
                super::uri::format_path(&self.use_path)
            )
        })
    }

    /// A refresh failed or got no answer: try again soon.
    pub fn failed(&mut self) {
        self.expires = REFRESH_RETRY;
    }
}

/// When to refresh an AUTH that is valid for `expires` seconds: well before
/// it runs out (at 80 %, at least 5 s early when possible).
pub fn refresh_after(expires: u64) -> std::time::Duration {
    let early = (expires / 5).max(5).min(expires / 2);
    std::time::Duration::from_secs(expires.saturating_sub(early).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(v: &str) -> DigestParams {
        DigestParams::parse(HeaderName::WwwAuthenticate, v, true).unwrap()
    }

    #[test]
    fn rfc2617_example_response_with_qop_auth() {
        // The worked example of RFC 2617 §3.5, with method AUTH in HA2
        // replaced back by GET to check the arithmetic against it.
        let ha1 = md5_hex(&["Mufasa", "testrealm@host.com", "Circle Of Life"]);
        let ha2 = md5_hex(&["GET", "/dir/index.html"]);
        let r = md5_hex(&[
            &ha1,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "00000001",
            "0a4f113b",
            "auth",
            &ha2,
        ]);
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn answers_carry_what_the_challenge_asks_for() {
        let c = challenge(r#"Digest realm="r", nonce="n1", qop="auth", algorithm=MD5, opaque="o""#);
        let a = answer_challenge(&c, "alice", "pw", "msrp://h:1;tcp", 1, "cn").unwrap();
        let p = DigestParams::parse(HeaderName::Authorization, &a.header, true).unwrap();
        assert_eq!(p.get("username"), Some("alice"));
        assert_eq!(p.get("uri"), Some("msrp://h:1;tcp"));
        assert_eq!(p.get("nc"), Some("00000001"));
        assert_eq!(p.get("cnonce"), Some("cn"));
        assert_eq!(p.get("opaque"), Some("o"));
        let ha1 = md5_hex(&["alice", "r", "pw"]);
        let ha2 = md5_hex(&["AUTH", "msrp://h:1;tcp"]);
        assert_eq!(
            p.get("response").unwrap(),
            md5_hex(&[&ha1, "n1", "00000001", "cn", "auth", &ha2])
        );
        // No qop: the RFC 2069 form, no nc or cnonce.
        let c = challenge(r#"Digest realm="r", nonce="n1""#);
        let a = answer_challenge(&c, "alice", "pw", "u", 1, "cn").unwrap();
        let p = DigestParams::parse(HeaderName::Authorization, &a.header, true).unwrap();
        assert_eq!(p.get("nc"), None);
        assert_eq!(p.get("cnonce"), None);
        assert_eq!(
            p.get("response").unwrap(),
            md5_hex(&[&ha1, "n1", &md5_hex(&["AUTH", "u"])])
        );
        // MD5-sess folds the nonces into HA1.
        let c =
            challenge(r#"Digest realm="r", nonce="n1", qop="auth,auth-int", algorithm=MD5-sess"#);
        let a = answer_challenge(&c, "alice", "pw", "u", 2, "cn").unwrap();
        let p = DigestParams::parse(HeaderName::Authorization, &a.header, true).unwrap();
        let ha1s = md5_hex(&[&ha1, "n1", "cn"]);
        assert_eq!(
            p.get("response").unwrap(),
            md5_hex(&[
                &ha1s,
                "n1",
                "00000002",
                "cn",
                "auth",
                &md5_hex(&["AUTH", "u"])
            ])
        );
        // What we cannot do is refused with a reason.
        assert!(answer_challenge(&challenge("Basic realm=\"r\""), "a", "b", "u", 1, "c").is_err());
        assert!(
            answer_challenge(
                &challenge(r#"Digest realm="r", nonce="n", algorithm=SHA-256"#),
                "a",
                "b",
                "u",
                1,
                "c"
            )
            .is_err()
        );
        assert!(
            answer_challenge(
                &challenge(r#"Digest realm="r", nonce="n", qop="auth-int""#),
                "a",
                "b",
                "u",
                1,
                "c"
            )
            .is_err()
        );
        assert!(
            answer_challenge(&challenge(r#"Digest nonce="n""#), "a", "b", "u", 1, "c").is_err()
        );
    }

    #[test]
    fn rspauth_is_checked() {
        let c = challenge(r#"Digest realm="r", nonce="n1", qop="auth""#);
        let a = answer_challenge(&c, "alice", "pw", "u", 1, "cn").unwrap();
        let good = md5_hex(&[&a.ha1, "n1", "00000001", "cn", "auth", &md5_hex(&["", "u"])]);
        let info = |v: &str| DigestParams::parse(HeaderName::AuthenticationInfo, v, false).unwrap();
        a.check_rspauth(&info(&format!("rspauth=\"{good}\", qop=auth")))
            .unwrap();
        assert!(a.check_rspauth(&info("rspauth=\"00\"")).is_err());
        a.check_rspauth(&info("nextnonce=\"x\"")).unwrap();
    }

    #[test]
    fn expires_bounds_after_423() {
        let mut r = Chunk::response("tid1", 423, Some("Interval Out-of-Bounds")).unwrap();
        r.add_header_raw("Min-Expires", "1800").unwrap();
        assert_eq!(expires_after_423(&r, Some(60)), Some(1800));
        assert_eq!(expires_after_423(&r, Some(1800)), None);
        let mut r = Chunk::response("tid1", 423, None).unwrap();
        r.add_header_raw("Max-Expires", "3600").unwrap();
        assert_eq!(expires_after_423(&r, Some(7200)), Some(3600));
        assert_eq!(expires_after_423(&r, None), Some(3600));
        let r = Chunk::response("tid1", 423, None).unwrap();
        assert_eq!(expires_after_423(&r, Some(5)), None);
        assert!(refresh_after(3600) < std::time::Duration::from_secs(3600));
        assert!(refresh_after(2) >= std::time::Duration::from_secs(1));
    }

    fn relay_and_local() -> (Uri, Uri) {
        (
            Uri::parse("msrps://relay.example.com:2855;tcp").unwrap(),
            Uri::parse("msrps://alice.example.com:7777/s1;tcp").unwrap(),
        )
    }

    fn answer(code: u16, headers: &[(&str, &str)]) -> Chunk {
        let mut r = Chunk::response("tid1", code, None).unwrap();
        for (n, v) in headers {
            r.add_header_raw(n, v).unwrap();
        }
        r
    }

    fn authorization(c: &Chunk) -> Option<DigestParams> {
        c.digest(HeaderName::Authorization).unwrap()
    }

    const CHALLENGE: &str = r#"Digest realm="relay.example.com", nonce="n1", qop="auth""#;
    const USE_PATH: &str = "msrps://relay.example.com:2855/abc;tcp";

    /// RFC 4976 §5.1: an AUTH without credentials is challenged with 401;
    /// the client answers with an Authorization for the realm and gets
    /// a 200 with Use-Path and the Expires granted.
    #[test]
    fn auth_exchange_answers_one_challenge_and_reads_use_path_and_expires() {
        let (relay, local) = relay_and_local();
        let mut x = AuthExchange::new(relay.clone(), local.clone(), "alice", "pw", Some(900));
        let first = x.request();
        assert_eq!(first.method(), Some("AUTH"));
        assert_eq!(first.to_path().unwrap(), vec![relay.clone()]);
        assert_eq!(first.from_path().unwrap(), vec![local]);
        assert_eq!(first.expires(HeaderName::Expires).unwrap(), Some(900));
        assert!(authorization(&first).is_none());
        let AuthStep::Send(second) =
            x.on_response(&answer(401, &[("WWW-Authenticate", CHALLENGE)]))
        else {
            panic!("a 401 is answered with credentials")
        };
        let a = authorization(&second).expect("the second AUTH carries credentials");
        assert_eq!(a.get("username"), Some("alice"));
        assert_eq!(a.get("realm"), Some("relay.example.com"));
        assert_eq!(a.get("uri"), Some(relay.to_string().as_str()));
        assert_eq!(second.expires(HeaderName::Expires).unwrap(), Some(900));
        match x.on_response(&answer(200, &[("Use-Path", USE_PATH), ("Expires", "600")])) {
            AuthStep::Done(g) => {
                assert_eq!(g.use_path, vec![Uri::parse(USE_PATH).unwrap()]);
                assert_eq!(g.expires, 600);
            }
            other => panic!("not done: {other:?}"),
        }
        // Without an Expires in the 200, what was asked for holds.
        let mut x = AuthExchange::new(
            relay.clone(),
            Uri::parse("msrp://a:1/s;tcp").unwrap(),
            "u",
            "p",
            Some(77),
        );
        let AuthStep::Done(g) = x.on_response(&answer(200, &[("Use-Path", USE_PATH)])) else {
            panic!("a 200 ends the exchange")
        };
        assert_eq!(g.expires, 77);
        // Nothing asked and nothing granted: an hour.
        let mut x = AuthExchange::new(
            relay,
            Uri::parse("msrp://a:1/s;tcp").unwrap(),
            "u",
            "p",
            None,
        );
        let AuthStep::Done(g) = x.on_response(&answer(200, &[("Use-Path", USE_PATH)])) else {
            panic!("a 200 ends the exchange")
        };
        assert_eq!(g.expires, 3600);
    }

    #[test]
    fn auth_exchange_gives_up_on_a_second_401_a_403_and_anything_else() {
        let (relay, local) = relay_and_local();
        let mut x = AuthExchange::new(relay.clone(), local.clone(), "alice", "pw", None);
        assert!(matches!(
            x.on_response(&answer(401, &[("WWW-Authenticate", CHALLENGE)])),
            AuthStep::Send(_)
        ));
        match x.on_response(&answer(401, &[("WWW-Authenticate", CHALLENGE)])) {
            AuthStep::Failed(AuthFailure::Refused(m)) => {
                assert!(m.contains("'alice'") && m.contains("401"), "{m}")
            }
            other => panic!("a second 401 must end it: {other:?}"),
        }
        let mut x = AuthExchange::new(relay.clone(), local.clone(), "alice", "pw", None);
        assert!(matches!(
            x.on_response(&answer(403, &[])),
            AuthStep::Failed(AuthFailure::Refused(_))
        ));
        // A 401 that cannot be answered.
        let mut x = AuthExchange::new(relay.clone(), local.clone(), "alice", "pw", None);
        match x.on_response(&answer(401, &[])) {
            AuthStep::Failed(AuthFailure::Refused(m)) => {
                assert!(m.contains("WWW-Authenticate"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        let mut x = AuthExchange::new(relay.clone(), local.clone(), "alice", "pw", None);
        match x.on_response(&answer(401, &[("WWW-Authenticate", "Basic realm=\"r\"")])) {
            AuthStep::Failed(AuthFailure::Refused(m)) => assert!(m.contains("Digest"), "{m}"),
            other => panic!("{other:?}"),
        }
        let mut x = AuthExchange::new(relay, local, "alice", "pw", None);
        match x.on_response(&Chunk::response("tid1", 500, Some("Oops")).unwrap()) {
            AuthStep::Failed(AuthFailure::Refused(m)) => assert!(m.contains("500 Oops"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    /// RFC 4976 §5.1 and §6.3: a 423 gives the bounds; the AUTH is asked
    /// again, once, with an Expires inside them, and challenged afresh.
    #[test]
    fn auth_exchange_retries_a_423_once_with_a_fresh_challenge() {
        let (relay, local) = relay_and_local();
        let mut x = AuthExchange::new(relay, local, "alice", "pw", Some(60));
        assert!(matches!(
            x.on_response(&answer(401, &[("WWW-Authenticate", CHALLENGE)])),
            AuthStep::Send(_)
        ));
        let AuthStep::Retry423 { request, expires } =
            x.on_response(&answer(423, &[("Min-Expires", "1800")]))
        else {
            panic!("a 423 with bounds is retried")
        };
        assert_eq!(expires, 1800);
        assert_eq!(request.expires(HeaderName::Expires).unwrap(), Some(1800));
        assert!(
            authorization(&request).is_none(),
            "the new AUTH is challenged afresh"
        );
        // The fresh challenge is answered again.
        assert!(matches!(
            x.on_response(&answer(401, &[("WWW-Authenticate", CHALLENGE)])),
            AuthStep::Send(_)
        ));
        // A second 423 ends it.
        assert!(matches!(
            x.on_response(&answer(423, &[("Min-Expires", "3600")])),
            AuthStep::Failed(AuthFailure::Refused(_))
        ));
        // A 423 without bounds we can meet ends it at once.
        let (relay, local) = relay_and_local();
        let mut x = AuthExchange::new(relay, local, "alice", "pw", Some(60));
        assert!(matches!(
            x.on_response(&answer(423, &[])),
            AuthStep::Failed(AuthFailure::Refused(_))
        ));
    }

    #[test]
    fn auth_exchange_checks_the_200() {
        let (relay, local) = relay_and_local();
        let mut x = AuthExchange::new(relay.clone(), local.clone(), "alice", "pw", None);
        assert!(matches!(
            x.on_response(&answer(401, &[("WWW-Authenticate", CHALLENGE)])),
            AuthStep::Send(_)
        ));
        // A relay that does not know the password (RFC 2617 §3.2.3).
        match x.clone().on_response(&answer(
            200,
            &[
                ("Use-Path", USE_PATH),
                ("Authentication-Info", "rspauth=\"00\""),
            ],
        )) {
            AuthStep::Failed(AuthFailure::Refused(m)) => assert!(m.contains("rspauth"), "{m}"),
            other => panic!("{other:?}"),
        }
        // A 200 without a Use-Path is of no use (RFC 4976 §5.1).
        match x.on_response(&answer(200, &[])) {
            AuthStep::Failed(AuthFailure::Protocol(m)) => assert!(m.contains("Use-Path"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    /// RFC 4976 §5.1: refresh well before the Expires runs out, keep asking
    /// for what was granted, retry soon after a failure, and notice when
    /// the relay hands out another Use-Path.
    #[test]
    fn auth_refresh_timing_and_outcomes() {
        let path = vec![Uri::parse(USE_PATH).unwrap()];
        let mut r = AuthRefresh::new(&AuthGranted {
            use_path: path.clone(),
            expires: 600,
        });
        assert!(r.delay() < std::time::Duration::from_secs(600));
        assert!(r.delay() >= std::time::Duration::from_secs(400));
        assert_eq!(r.expires(), 600);
        r.failed();
        assert!(r.delay() <= std::time::Duration::from_secs(REFRESH_RETRY));
        let same = AuthGranted {
            use_path: path,
            expires: 300,
        };
        assert_eq!(r.granted(&same), None);
        assert_eq!(r.expires(), 300);
        let other = AuthGranted {
            use_path: vec![Uri::parse("msrps://relay.example.com:2855/xyz;tcp").unwrap()],
            expires: 300,
        };
        let warn = r.granted(&other).expect("a changed Use-Path is noticed");
        assert!(warn.contains("/xyz"), "{warn}");
    }
}
