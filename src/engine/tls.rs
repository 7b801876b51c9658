//! TLS for `msrps` URIs (rustls with the ring provider): credentials,
//! certificate fingerprints as SDP carries them (RFC 8122 `a=fingerprint`),
//! and the three ways of checking a peer: CA roots plus name, fingerprint,
//! or (only when asked for) nothing.
//!
//! Who checks what:
//! - the side that connects checks the server by fingerprint when one is
//!   given for the peer, otherwise by CA roots and the first hop's host name
//!   (unless the settings are explicitly insecure);
//! - the side that accepts asks for a client certificate without requiring
//!   one, and checks it by fingerprint when one is given for the peer.
//!
//! A failed check aborts the handshake with an alert, so both sides learn
//! about it: the checking side gets [`ErrorKind::TlsFingerprint`] or
//! [`ErrorKind::TlsCertificate`], the other side [`ErrorKind::TlsRejected`].

use std::fmt;
use std::sync::{Arc, Mutex};

use ring::digest;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName,
    RootCertStore, ServerConfig, SignatureScheme,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::error::{Error, ErrorKind};

/// A hash function that RFC 8122 names for fingerprints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashAlg {
    /// `sha-1`: accepted for old peers only.
    Sha1,
    /// `sha-256`: the default.
    Sha256,
    /// `sha-384`.
    Sha384,
    /// `sha-512`.
    Sha512,
}

impl HashAlg {
    /// Parses an RFC 8122 hash name (any case).
    pub fn parse(name: &str) -> Result<HashAlg, Error> {
        match name.to_ascii_lowercase().as_str() {
            "sha-1" => Ok(HashAlg::Sha1),
            "sha-256" => Ok(HashAlg::Sha256),
            "sha-384" => Ok(HashAlg::Sha384),
            "sha-512" => Ok(HashAlg::Sha512),
            "sha-224" | "md5" | "md2" => Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "fingerprint hash '{name}' is not supported; use sha-256, sha-384, sha-512 (or sha-1 for old peers)"
                ),
            )),
            _ => Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("'{name}' is not an RFC 8122 hash name (expected e.g. sha-256)"),
            )),
        }
    }

    /// The RFC 8122 name.
    pub fn name(self) -> &'static str {
        match self {
            HashAlg::Sha1 => "sha-1",
            HashAlg::Sha256 => "sha-256",
            HashAlg::Sha384 => "sha-384",
            HashAlg::Sha512 => "sha-512",
        }
    }

    fn algorithm(self) -> &'static digest::Algorithm {
        match self {
            HashAlg::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            HashAlg::Sha256 => &digest::SHA256,
            HashAlg::Sha384 => &digest::SHA384,
            HashAlg::Sha512 => &digest::SHA512,
        }
    }
}

/// A certificate fingerprint: a hash of the DER certificate, written as SDP
/// `a=fingerprint` carries it (`sha-256 AB:CD:…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fingerprint {
    alg: HashAlg,
    digest: Vec<u8>,
}

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(alg: HashAlg, der: &[u8]) -> Fingerprint {
        Fingerprint {
            alg,
            digest: digest::digest(alg.algorithm(), der).as_ref().to_vec(),
        }
    }

    /// Parses `hash-name HEX:HEX:…` (an `a=fingerprint:` prefix is allowed;
    /// hex digits in any case).
    pub fn parse(text: &str) -> Result<Fingerprint, Error> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("bad fingerprint '{text}': {why} (expected e.g. 'sha-256 AB:CD:…')"),
            )
        };
        let t = text.trim();
        let t = t.strip_prefix("a=fingerprint:").unwrap_or(t).trim_start();
        let (name, hex) = t
            .split_once([' ', '\t'])
            .ok_or_else(|| bad("no space between the hash name and the value"))?;
        let alg = HashAlg::parse(name)?;
        let mut digest = Vec::new();
        for pair in hex.trim().split(':') {
            if pair.len() != 2 {
                return Err(bad("each byte must be two hex digits, separated by ':'"));
            }
            digest.push(u8::from_str_radix(pair, 16).map_err(|_| bad("not a hex digit"))?);
        }
        if digest.len() != alg.algorithm().output_len() {
            return Err(bad(&format!(
                "{} has {} bytes, this value has {}",
                alg.name(),
                alg.algorithm().output_len(),
                digest.len()
            )));
        }
        Ok(Fingerprint { alg, digest })
    }

    /// The hash function.
    pub fn alg(&self) -> HashAlg {
        self.alg
    }

    /// Whether `der` has this fingerprint.
    pub fn matches(&self, der: &[u8]) -> bool {
        let d = digest::digest(self.alg.algorithm(), der);
        // Not secret: a plain comparison is fine.
        d.as_ref() == self.digest.as_slice()
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alg.name())?;
        for (i, b) in self.digest.iter().enumerate() {
            write!(f, "{}{b:02X}", if i == 0 { ' ' } else { ':' })?;
        }
        Ok(())
    }
}

/// Credentials and verification settings. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct TlsSettings {
    chain: Vec<CertificateDer<'static>>,
    key: Option<Arc<PrivateKeyDer<'static>>>,
    roots: Vec<CertificateDer<'static>>,
    system_roots: bool,
    insecure: bool,
}

fn pem_error(what: &str, e: impl fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        format!("cannot read the {what}: {e}"),
    )
}

fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, e))?;
    if certs.is_empty() {
        return Err(pem_error(what, "no CERTIFICATE block in the PEM data"));
    }
    Ok(certs)
}

fn read_file(path: &str, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| pem_error(what, format!("{path}: {e}")))
}

impl TlsSettings {
    /// Sets our certificate chain (leaf first) and private key from PEM data.
    pub fn set_certificate_pem(&mut self, chain: &[u8], key: &[u8]) -> Result<(), Error> {
        let certs = certs_from_pem(chain, "certificate chain")?;
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| pem_error("private key", e))?;
        // Check that rustls can use the key before accepting it.
        let provider = provider();
        provider
            .key_provider
            .load_private_key(key.clone_key())
            .map_err(|e| pem_error("private key", e))?;
        self.chain = certs;
        self.key = Some(Arc::new(key));
        Ok(())
    }

    /// Sets our certificate chain and key from PEM files.
    pub fn set_certificate_files(&mut self, chain: &str, key: &str) -> Result<(), Error> {
        let c = read_file(chain, "certificate chain")?;
        let k = read_file(key, "private key")?;
        self.set_certificate_pem(&c, &k)
    }

    /// Generates a self-signed certificate (ECDSA P-256) for `name`, as
    /// softphones do, and uses it.
    pub fn generate_self_signed(&mut self, name: &str) -> Result<(), Error> {
        let ck = rcgen::generate_simple_self_signed(vec![name.to_owned()]).map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("cannot generate a certificate for '{name}': {e}"),
            )
        })?;
        self.chain = vec![ck.cert.der().clone()];
        self.key = Some(Arc::new(PrivateKeyDer::Pkcs8(
            ck.signing_key.serialize_der().into(),
        )));
        Ok(())
    }

    /// Adds CA roots from PEM data.
    pub fn add_ca_pem(&mut self, pem: &[u8]) -> Result<(), Error> {
        let certs = certs_from_pem(pem, "CA bundle")?;
        let mut store = RootCertStore::empty();
        let (_, bad) = store.add_parsable_certificates(certs.iter().cloned());
        if bad > 0 {
            return Err(pem_error(
                "CA bundle",
                format!("{bad} certificate(s) in it cannot be used as roots"),
            ));
        }
        self.roots.extend(certs);
        Ok(())
    }

    /// Adds CA roots from a PEM file.
    pub fn add_ca_file(&mut self, path: &str) -> Result<(), Error> {
        let pem = read_file(path, "CA bundle")?;
        self.add_ca_pem(&pem)
    }

    /// Also trusts the system's CA roots.
    pub fn use_system_roots(&mut self, on: bool) {
        self.system_roots = on;
    }

    /// Accepts any server certificate when no fingerprint is given.
    /// Only for tests and lab setups.
    pub fn set_insecure(&mut self, on: bool) {
        self.insecure = on;
    }

    /// Whether we have a certificate.
    pub fn has_certificate(&self) -> bool {
        self.key.is_some()
    }

    /// The fingerprint of our certificate.
    pub fn fingerprint(&self, alg: HashAlg) -> Result<Fingerprint, Error> {
        let leaf = self.chain.first().ok_or_else(|| {
            Error::new(
                ErrorKind::BadState,
                "no certificate: set one or generate a self-signed one first",
            )
        })?;
        Ok(Fingerprint::of(alg, leaf))
    }

    fn root_store(&self) -> Result<RootCertStore, Error> {
        let mut store = RootCertStore::empty();
        store.add_parsable_certificates(self.roots.iter().cloned());
        if self.system_roots || self.roots.is_empty() {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
        }
        if store.is_empty() {
            return Err(Error::new(
                ErrorKind::BadState,
                "no CA roots to check the peer with: give a CA bundle, a peer fingerprint, or install the system's CA certificates",
            ));
        }
        Ok(store)
    }

    /// The client configuration for one connection.
    pub fn client_config(&self, peer: Option<Fingerprint>) -> Result<Arc<ClientConfig>, Error> {
        let provider = provider();
        let algs = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ServerCertVerifier> = match peer {
            Some(fp) => Arc::new(PeerVerifier {
                expected: Arc::new(Mutex::new(Some(fp))),
                algs,
            }),
            None if self.insecure => Arc::new(PeerVerifier {
                expected: Arc::new(Mutex::new(None)),
                algs,
            }),
            None => rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(self.root_store()?),
                provider.clone(),
            )
            .build()
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?,
        };
        let b = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let cfg = match &self.key {
            Some(k) => b
                .with_client_auth_cert(self.chain.clone(), k.clone_key())
                .map_err(|e| pem_error("certificate or key", e))?,
            None => b.with_no_client_auth(),
        };
        Ok(Arc::new(cfg))
    }

    /// The server configuration; client certificates are asked for and,
    /// when `expected` holds a fingerprint at handshake time, checked.
    pub fn server_config(&self, expected: PeerSlot) -> Result<Arc<ServerConfig>, Error> {
        let key = self.key.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::BadState,
                "an msrps listener needs a certificate: set one or generate a self-signed one",
            )
        })?;
        let provider = provider();
        let algs = provider.signature_verification_algorithms;
        let cfg = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, e.to_string()))?
            .with_client_cert_verifier(Arc::new(PeerVerifier { expected, algs }))
            .with_single_cert(self.chain.clone(), key.clone_key())
            .map_err(|e| pem_error("certificate or key", e))?;
        Ok(Arc::new(cfg))
    }
}

/// The fingerprint expected of a peer, shared between a connector and the
/// verifier of its listener (it may be set after the listener opened).
pub type PeerSlot = Arc<Mutex<Option<Fingerprint>>>;

/// ring's suites with AES-128-GCM ahead of AES-256-GCM (the client's order
/// decides). AES-128-GCM is TLS 1.3's mandatory suite and, with AES
/// instructions, costs about a third less per byte (10 rounds instead of 14);
/// BoringSSL and Go order them the same way. Nothing is removed.
fn provider() -> Arc<CryptoProvider> {
    use rustls::CipherSuite as C;
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites.sort_by_key(|s| {
        let rank = match s.suite() {
            C::TLS13_AES_128_GCM_SHA256
            | C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            | C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
            C::TLS13_AES_256_GCM_SHA384
            | C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
            | C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 1,
            _ => 2,
        };
        (s.tls13().is_none(), rank)
    });
    Arc::new(p)
}

/// Checks a peer's certificate against an expected fingerprint, or accepts
/// any certificate when none is expected (handshake signatures are always
/// checked, so the peer does hold the certificate's key).
#[derive(Debug)]
struct PeerVerifier {
    expected: PeerSlot,
    algs: WebPkiSupportedAlgorithms,
}

impl PeerVerifier {
    fn check(&self, cert: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        match &*self.expected.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(fp) if !fp.matches(cert) => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(()),
        }
    }
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.expected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// Turns a TLS failure into an engine error of the right kind.
pub fn tls_error(e: &std::io::Error, during: &str) -> Error {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    let (kind, what) = match inner {
        Some(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)) => (
            ErrorKind::TlsFingerprint,
            "the peer's certificate does not have the fingerprint given for it (check a=fingerprint in the SDP)".to_owned(),
        ),
        Some(rustls::Error::NoCertificatesPresented) => (
            ErrorKind::TlsFingerprint,
            "the peer presented no certificate, but a fingerprint was given for it".to_owned(),
        ),
        Some(rustls::Error::InvalidCertificate(c)) => (
            ErrorKind::TlsCertificate,
            format!("the peer's certificate failed verification: {c:?}"),
        ),
        Some(rustls::Error::AlertReceived(a)) if is_certificate_alert(*a) => (
            ErrorKind::TlsRejected,
            format!("the peer refused our certificate (TLS alert {a:?})"),
        ),
        Some(other) => (ErrorKind::Tls, format!("TLS failed: {other}")),
        None => (ErrorKind::Tls, format!("TLS failed: {e}")),
    };
    Error::new(kind, format!("{what} during {during}"))
}

fn is_certificate_alert(a: AlertDescription) -> bool {
    matches!(
        a,
        AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
            | AlertDescription::CertificateRequired
    )
}

/// Most encrypted bytes rustls holds for sending (its default is 64 KiB).
/// A writer hands rustls what it has, up to this much, and rustls writes it
/// in one vectored call. With the default a session bulk transfer took about
/// 140,000 writes of 42 KiB per 6 GiB; with as much as the plain-TCP writer
/// batches (`WRITE_BATCH`), half as many, and 5-15 % less CPU. A peer that
/// stops reading leaves up to this much waiting in its connection.
const TLS_SEND_BUFFER: usize = 256 * 1024;

/// A connection: plain TCP or TLS over TCP.
pub enum Conn {
    /// `msrp`.
    Tcp(TcpStream),
    /// `msrps`, client side.
    Client(Box<tokio_rustls::client::TlsStream<Sock>>),
    /// `msrps`, server side.
    Server(Box<tokio_rustls::server::TlsStream<Sock>>),
}

/// Records read from the socket in one system call up to this much, and
/// handed to rustls from there. rustls asks for at most one record's worth
/// (about 16 KiB) per read; reading that from the socket each time took
/// four times the system calls of a plain TCP reader, each with its share
/// of TCP's work (acknowledgements, waking the sender).
const SOCK_READ: usize = 256 * 1024;

/// The TCP socket under a TLS session: reads through a buffer of its own
/// (see [`SOCK_READ`]), held only while reads bring data; writes go
/// straight to the socket.
pub struct Sock {
    tcp: TcpStream,
    rbuf: Vec<u8>,
    /// Bytes of `rbuf` already handed to rustls.
    pos: usize,
}

impl Sock {
    fn new(tcp: TcpStream) -> Sock {
        Sock {
            tcp,
            rbuf: Vec::new(),
            pos: 0,
        }
    }
}

impl AsyncRead for Sock {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let s = self.get_mut();
        if s.pos == s.rbuf.len() {
            s.rbuf.clear();
            s.pos = 0;
            loop {
                if let Err(e) = std::task::ready!(s.tcp.poll_read_ready(cx)) {
                    return std::task::Poll::Ready(Err(e));
                }
                if s.rbuf.capacity() == 0 {
                    s.rbuf = crate::proto::bufpool::take_read(SOCK_READ);
                }
                match s.tcp.try_read_buf(&mut s.rbuf) {
                    Ok(_) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        // Waiting for data, maybe for long: without a buffer
                        // (giving back none is a no-op).
                        crate::proto::bufpool::give_read(std::mem::take(&mut s.rbuf));
                        continue;
                    }
                    Err(e) => return std::task::Poll::Ready(Err(e)),
                }
            }
        }
        let n = (s.rbuf.len() - s.pos).min(buf.remaining());
        buf.put_slice(&s.rbuf[s.pos..s.pos + n]);
        s.pos += n;
        std::task::Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Sock {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

impl Conn {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Tcp(s) => s,
            Conn::Client(s) => &s.get_ref().0.tcp,
            Conn::Server(s) => &s.get_ref().0.tcp,
        }
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        !matches!(self, Conn::Tcp(_))
    }

    /// The peer's certificate (TLS only, when it sent one).
    pub fn peer_certificate(&self) -> Option<CertificateDer<'static>> {
        let certs = match self {
            Conn::Tcp(_) => None,
            Conn::Client(s) => s.get_ref().1.peer_certificates(),
            Conn::Server(s) => s.get_ref().1.peer_certificates(),
        }?;
        certs.first().map(|c| c.clone().into_owned())
    }
}

/// TLS client handshake over `tcp`, checking the server as described in the module docs.
pub async fn connect(
    tcp: TcpStream,
    settings: &TlsSettings,
    host: &str,
    peer: Option<Fingerprint>,
) -> Result<Conn, Error> {
    let cfg = settings.client_config(peer)?;
    let name = ServerName::try_from(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
    )
    .map_err(|_| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("'{host}' cannot be used as a TLS server name"),
        )
    })?;
    let mut s = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, Sock::new(tcp))
        .await
        .map_err(|e| tls_error(&e, "the TLS handshake"))?;
    s.get_mut().1.set_buffer_limit(Some(TLS_SEND_BUFFER));
    Ok(Conn::Client(Box::new(s)))
}

/// TLS server handshake over `tcp`.
pub async fn accept(tcp: TcpStream, cfg: Arc<ServerConfig>) -> Result<Conn, Error> {
    let mut s = tokio_rustls::TlsAcceptor::from(cfg)
        .accept(Sock::new(tcp))
        .await
        .map_err(|e| tls_error(&e, "the TLS handshake"))?;
    s.get_mut().1.set_buffer_limit(Some(TLS_SEND_BUFFER));
    Ok(Conn::Server(Box::new(s)))
}

/// Checks, after the handshake, that the peer's certificate has the
/// expected fingerprint (for fingerprints that became known late).
pub fn check_peer(conn: &Conn, expected: Option<&Fingerprint>) -> Result<(), Error> {
    let Some(fp) = expected else { return Ok(()) };
    if !conn.is_tls() {
        return Ok(());
    }
    match conn.peer_certificate() {
        Some(c) if fp.matches(&c) => Ok(()),
        Some(_) => Err(Error::new(
            ErrorKind::TlsFingerprint,
            "the peer's certificate does not have the fingerprint given for it (check a=fingerprint in the SDP)",
        )),
        None => Err(Error::new(
            ErrorKind::TlsFingerprint,
            "the peer presented no certificate, but a fingerprint was given for it",
        )),
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Conn::Client(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
            Conn::Server(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Conn::Client(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
            Conn::Server(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Tcp(s) => std::pin::Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Client(s) => std::pin::Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Conn::Server(s) => std::pin::Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
            Conn::Client(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
            Conn::Server(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Conn::Client(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
            Conn::Server(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Splits a connection into a reading and a writing half that share its
/// (TLS) state, as `tokio::io::split` does, except that a half finding the
/// state in use by the other does not block its thread: it returns
/// `Pending` and the other half wakes it when done. With TLS both
/// directions need the one rustls session (decrypting a large read or
/// encrypting a large write takes tens of microseconds), so with a blocking
/// lock a runtime thread would often sleep on it, and be woken, for every
/// chunk, while it could run other tasks.
pub fn split(conn: Conn) -> (ConnHalf, ConnHalf) {
    let sh = Arc::new(SplitState {
        conn: std::sync::Mutex::new(conn),
        waker: Default::default(),
        waiting: Default::default(),
    });
    (
        ConnHalf {
            sh: sh.clone(),
            side: 0,
        },
        ConnHalf { sh, side: 1 },
    )
}

struct SplitState {
    conn: std::sync::Mutex<Conn>,
    /// The waker of a half that found `conn` in use, per half.
    waker: [std::sync::Mutex<Option<std::task::Waker>>; 2],
    /// Whether that half waits (checked without taking its waker's lock).
    waiting: [std::sync::atomic::AtomicBool; 2],
}

/// One half of a split connection (see [`split`]); half 0 reads, half 1 writes.
pub struct ConnHalf {
    sh: Arc<SplitState>,
    side: usize,
}

impl ConnHalf {
    /// Runs `f` on the connection, or returns `Pending` (to be woken by the
    /// other half) when the other half is using it.
    fn with<R>(
        &self,
        cx: &mut std::task::Context<'_>,
        f: impl FnOnce(std::pin::Pin<&mut Conn>, &mut std::task::Context<'_>) -> std::task::Poll<R>,
    ) -> std::task::Poll<R> {
        use std::sync::TryLockError;
        use std::sync::atomic::{Ordering, fence};
        let sh = &*self.sh;
        let mut guard = match sh.conn.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                *sh.waker[self.side]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
                sh.waiting[self.side].store(true, Ordering::SeqCst);
                fence(Ordering::SeqCst);
                // Tried again after registering: a release in between would
                // otherwise have found no one to wake.
                let g = match sh.conn.try_lock() {
                    Ok(g) => g,
                    Err(TryLockError::Poisoned(p)) => p.into_inner(),
                    Err(TryLockError::WouldBlock) => return std::task::Poll::Pending,
                };
                // Got it after all: no wake-up is owed to this half.
                sh.waiting[self.side].store(false, Ordering::SeqCst);
                g
            }
        };
        let r = f(std::pin::Pin::new(&mut *guard), cx);
        drop(guard);
        self.wake_waiting(1 - self.side);
        r
    }

    /// Wakes `side` if it waits for the connection (just released).
    fn wake_waiting(&self, side: usize) {
        use std::sync::atomic::{Ordering, fence};
        let sh = &*self.sh;
        fence(Ordering::SeqCst);
        if sh.waiting[side].swap(false, Ordering::SeqCst) {
            let w = sh.waker[side]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(w) = w {
                w.wake();
            }
        }
    }

    /// Another handle on this half, for writes from an application thread
    /// (see [`ConnHalf::try_write_now`]).
    pub fn handle(&self) -> ConnHalf {
        ConnHalf {
            sh: self.sh.clone(),
            side: self.side,
        }
    }

    /// For an application thread, when the connection is free at once:
    /// hands `bufs` to rustls (as much as its send buffer takes) and sends
    /// what the socket takes, without waiting. `None` when the connection is
    /// in use. Returns how many bytes rustls took and whether records were
    /// left unsent, which the writer task must then flush.
    pub fn try_write_now(
        &self,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Option<std::io::Result<(usize, bool)>> {
        use std::sync::TryLockError;
        let mut guard = match self.sh.conn.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        let r = match &mut *guard {
            Conn::Tcp(_) => Err(std::io::Error::other("not a TLS connection")),
            Conn::Client(s) => {
                let (sock, c) = s.get_mut();
                write_now(&sock.tcp, c, bufs)
            }
            Conn::Server(s) => {
                let (sock, c) = s.get_mut();
                write_now(&sock.tcp, c, bufs)
            }
        };
        drop(guard);
        // Either half may have found the connection in use meanwhile.
        self.wake_waiting(0);
        self.wake_waiting(1);
        Some(r)
    }
}

fn write_now<D>(
    tcp: &TcpStream,
    c: &mut rustls::ConnectionCommon<D>,
    bufs: &[std::io::IoSlice<'_>],
) -> std::io::Result<(usize, bool)> {
    use std::io::Write as _;
    let n = c.writer().write_vectored(bufs)?;
    while c.wants_write() {
        match c.write_tls(&mut SendNow(tcp)) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // The socket failed: the connection is broken (the writer task
            // meets the error again and closes it).
            Err(e) => return Err(e),
        }
    }
    Ok((n, c.wants_write()))
}

/// Non-blocking sends on a socket (with `MSG_NOSIGNAL`: application
/// threads may not have SIGPIPE blocked).
struct SendNow<'a>(&'a TcpStream);

impl std::io::Write for SendNow<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.write_vectored(&[std::io::IoSlice::new(b)])
    }

    fn write_vectored(&mut self, b: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        crate::engine::transport::try_send_vectored(self.0, b)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl ConnHalf {
    /// Hands `f` the decrypted bytes rustls holds (one record's worth, as
    /// it decrypted them; read from the socket when it holds none) and
    /// consumes them: they are decoded where they lie instead of being
    /// copied into a read buffer first. `Ok(0)` is the end of the stream.
    /// `f` runs while the connection is locked (the writing half waits).
    pub fn poll_lend(
        &self,
        cx: &mut std::task::Context<'_>,
        f: impl FnOnce(&[u8]),
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.with(cx, |c, cx| c.get_mut().poll_lend(cx, f))
    }
}

impl Conn {
    fn poll_lend(
        &mut self,
        cx: &mut std::task::Context<'_>,
        f: impl FnOnce(&[u8]),
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self {
            Conn::Tcp(_) => std::task::Poll::Ready(Err(std::io::Error::other(
                "a plain TCP connection has no decrypted bytes to lend",
            ))),
            Conn::Client(s) => lend(std::pin::Pin::new(&mut **s), cx, f),
            Conn::Server(s) => lend(std::pin::Pin::new(&mut **s), cx, f),
        }
    }
}

fn lend<S: tokio::io::AsyncBufRead>(
    mut s: std::pin::Pin<&mut S>,
    cx: &mut std::task::Context<'_>,
    f: impl FnOnce(&[u8]),
) -> std::task::Poll<std::io::Result<usize>> {
    let b = std::task::ready!(s.as_mut().poll_fill_buf(cx))?;
    let n = b.len();
    if n > 0 {
        f(b);
        s.consume(n);
    }
    std::task::Poll::Ready(Ok(n))
}

impl AsyncRead for ConnHalf {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.with(cx, |c, cx| c.poll_read(cx, buf))
    }
}

impl AsyncWrite for ConnHalf {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.with(cx, |c, cx| c.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.with(cx, |c, cx| c.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.with(cx, |c, cx| c.poll_flush(cx))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.with(cx, |c, cx| c.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads through `Sock` as rustls does (a few KiB at a time): every byte
    /// arrives once and in order across refills of its buffer, a read that
    /// has to wait leaves it holding no buffer, and the peer's close reads
    /// as the end of the stream.
    #[test]
    fn sock_hands_on_every_byte_and_holds_no_buffer_while_waiting() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let mut w = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            let mut sock = Sock::new(l.accept().await.unwrap().0);
            // More than one buffer's worth, in a pattern that shows a byte
            // lost, doubled or moved.
            let data: Vec<u8> = (0..SOCK_READ * 2 + 12_345)
                .map(|i| (i % 251) as u8)
                .collect();
            let sent = data.clone();
            let writer = tokio::spawn(async move {
                w.write_all(&sent).await.unwrap();
                w
            });
            let mut got = Vec::new();
            let mut piece = [0u8; 4096];
            while got.len() < data.len() {
                let n = sock.read(&mut piece).await.unwrap();
                assert!(n > 0, "end of stream after {} bytes", got.len());
                got.extend_from_slice(&piece[..n]);
            }
            assert!(got == data, "bytes differ");
            let mut w = writer.await.unwrap();
            // Nothing more to read: the read waits, and the buffer is gone.
            let waiting =
                tokio::time::timeout(std::time::Duration::from_millis(50), sock.read(&mut piece))
                    .await;
            assert!(waiting.is_err(), "a read without data returned");
            assert_eq!(sock.rbuf.capacity(), 0);
            // What comes next is read; then the close is the end of the stream.
            w.write_all(b"tail").await.unwrap();
            w.shutdown().await.unwrap();
            drop(w);
            let mut rest = Vec::new();
            sock.read_to_end(&mut rest).await.unwrap();
            assert_eq!(rest, b"tail");
        });
    }

    #[test]
    fn aes_128_gcm_is_offered_first_and_no_suite_is_lost() {
        use rustls::CipherSuite as C;
        let ours: Vec<C> = provider().cipher_suites.iter().map(|s| s.suite()).collect();
        let mut all: Vec<C> = rustls::crypto::ring::default_provider()
            .cipher_suites
            .iter()
            .map(|s| s.suite())
            .collect();
        assert_eq!(ours[0], C::TLS13_AES_128_GCM_SHA256);
        assert_eq!(ours[1], C::TLS13_AES_256_GCM_SHA384);
        let pos = |c| ours.iter().position(|&x| x == c).expect("offered");
        assert!(
            pos(C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
                < pos(C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384)
        );
        // Every TLS 1.3 suite comes before every TLS 1.2 one.
        assert!(
            pos(C::TLS13_CHACHA20_POLY1305_SHA256) < pos(C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)
        );
        let mut sorted = ours.clone();
        sorted.sort_by_key(|c| u16::from(*c));
        all.sort_by_key(|c| u16::from(*c));
        assert_eq!(sorted, all);
    }

    #[test]
    fn fingerprint_round_trip_and_rules() {
        let fp = Fingerprint::of(HashAlg::Sha256, b"certificate");
        let text = fp.to_string();
        assert!(text.starts_with("sha-256 "));
        assert_eq!(text.len(), "sha-256 ".len() + 32 * 3 - 1);
        assert_eq!(Fingerprint::parse(&text).unwrap(), fp);
        assert_eq!(
            Fingerprint::parse(&format!("a=fingerprint:{}", text.to_lowercase())).unwrap(),
            fp
        );
        assert!(fp.matches(b"certificate"));
        assert!(!fp.matches(b"certificatf"));
        // Wrong length, bad hex, unknown or weak hash names.
        assert!(Fingerprint::parse("sha-256 AB:CD").is_err());
        assert!(Fingerprint::parse(&text.replace("sha-256", "sha-1")).is_err());
        assert!(Fingerprint::parse("sha-256 ZZ").is_err());
        assert!(Fingerprint::parse("md5 00").is_err());
        assert!(Fingerprint::parse("sha-256").is_err());
        let sha1 = Fingerprint::of(HashAlg::Sha1, b"x");
        assert_eq!(Fingerprint::parse(&sha1.to_string()).unwrap(), sha1);
        let sha512 = Fingerprint::of(HashAlg::Sha512, b"x");
        assert_eq!(Fingerprint::parse(&sha512.to_string()).unwrap(), sha512);
    }

    #[test]
    fn generated_certificate_has_a_fingerprint_and_configs_build() {
        let mut s = TlsSettings::default();
        assert!(s.fingerprint(HashAlg::Sha256).is_err());
        assert!(s.server_config(PeerSlot::default()).is_err());
        s.generate_self_signed("alice.example").unwrap();
        let fp = s.fingerprint(HashAlg::Sha256).unwrap();
        assert!(fp.matches(&s.chain[0]));
        s.server_config(PeerSlot::default()).unwrap();
        s.client_config(Some(fp)).unwrap();
    }
}
