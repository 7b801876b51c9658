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
//!
//! This file holds the settings and the checks; the handshakes and the
//! encrypted stream they make are in [`super::stream`].

use std::fmt;
use std::sync::{Arc, Mutex};

use ring::digest;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme,
};

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
    /// What tells these settings apart from others for connection sharing:
    /// a SHA-256 of our certificates and the trusted roots, and the flags.
    pub fn identity(&self) -> String {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for c in self
            .chain
            .iter()
            .chain(std::iter::once(&CertificateDer::from(&[][..])))
            .chain(&self.roots)
        {
            ctx.update(&(c.len() as u64).to_be_bytes());
            ctx.update(c);
        }
        ctx.update(&[self.system_roots as u8, self.insecure as u8]);
        ctx.finish()
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

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

    /// The client configuration for one connection; `peer` are the
    /// fingerprints the server may show (any one passes; none: CA roots).
    pub fn client_config(&self, peer: Vec<Fingerprint>) -> Result<Arc<ClientConfig>, Error> {
        let provider = provider();
        let algs = provider.signature_verification_algorithms;
        let verifier: Arc<dyn ServerCertVerifier> = match peer {
            fps if !fps.is_empty() => Arc::new(PeerVerifier {
                expected: Arc::new(Mutex::new(fps)),
                algs,
            }),
            _ if self.insecure => Arc::new(PeerVerifier {
                expected: PeerSlot::default(),
                algs,
            }),
            _ => rustls::client::WebPkiServerVerifier::builder_with_provider(
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

/// The fingerprints a peer may show (RFC 8122 §5 allows several
/// `a=fingerprint` lines: any one passes; none: not checked by
/// fingerprint), shared between a connector and the verifier of its
/// listener (they may be set after the listener opened).
pub type PeerSlot = Arc<Mutex<Vec<Fingerprint>>>;

/// Whether `der` has one of `expected` (true when none is expected).
pub fn any_matches(expected: &[Fingerprint], der: &[u8]) -> bool {
    expected.is_empty() || expected.iter().any(|fp| fp.matches(der))
}

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
        if any_matches(
            &self.expected.lock().unwrap_or_else(|p| p.into_inner()),
            cert,
        ) {
            Ok(())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
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
        !self
            .expected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
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

#[cfg(test)]
mod tests {
    use super::*;

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
        s.client_config(vec![fp]).unwrap();
    }
}
