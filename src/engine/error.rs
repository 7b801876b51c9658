//! Errors of the engine layer: a kind (which the C API maps to a result
//! code) and a message that says what happened and what to do.

use std::fmt;

/// What kind of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The connection, the object or the context was closed.
    Closed,
    /// A wait ran out of time.
    Timeout,
    /// The TCP connection could not be made.
    ConnectFailed,
    /// The listening socket could not be opened.
    ListenFailed,
    /// The peer's binding did not match the expected paths (we answered 481).
    BindMismatch,
    /// The peer refused our binding (its response code is in the message).
    BindRejected,
    /// The peer sent bytes that cannot be framed as MSRP.
    Protocol,
    /// Another I/O error.
    Io,
    /// A blocking call was made on a library thread.
    InCallback,
    /// The call does not fit the object's state (e.g. complete before prepare).
    BadState,
    /// An argument was invalid.
    InvalidArgument,
    /// Not available on this platform.
    Unsupported,
    /// The peer answered a transaction with an error code (in the message).
    Transaction,
    /// The TLS handshake or TLS layer failed (not a certificate check).
    Tls,
    /// The peer's certificate does not have the fingerprint given for it.
    TlsFingerprint,
    /// The peer's certificate failed CA verification (unknown issuer, wrong name, expired).
    TlsCertificate,
    /// The peer refused our certificate (it sent a certificate alert).
    TlsRejected,
    /// A relay refused our credentials (or its own proof did not match).
    AuthFailed,
    /// Relay discovery (DNS) failed.
    DnsFailed,
}

/// An engine error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The kind.
    pub kind: ErrorKind,
    /// The explanation.
    pub msg: String,
}

impl Error {
    /// A new error.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Error {
        Error {
            kind,
            msg: msg.into(),
        }
    }

    /// A "closed" error.
    pub fn closed(msg: impl Into<String>) -> Error {
        Error::new(ErrorKind::Closed, msg)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}
