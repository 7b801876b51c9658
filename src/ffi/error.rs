//! Result codes, their texts, and the per-thread last error message.
//!
//! FFI plumbing only: converts the core's error types into a code and a
//! message. No protocol logic.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::{CString, c_char};

use crate::proto::{ChunkError, DecodeError, HeaderError, UriError};

/// Result of every fallible libmsrp call. Numbers are fixed and never reused.
///
/// `msrp_result_str()` gives a static text for each code; after a call that
/// returned something other than `MSRP_RESULT_OK`, `msrp_last_error_message()`
/// on the same thread says what exactly went wrong and what to do.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum msrp_result {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// An argument is out of range or otherwise invalid.
    InvalidArgument = 2,
    /// A string argument is not valid UTF-8.
    InvalidUtf8 = 3,
    /// A bug inside libmsrp was caught before it could cross into C. Please report it.
    Panic = 4,
    /// The requested item (header, port, parameter, …) is absent.
    NotFound = 5,
    /// The caller's buffer is too small; the needed size was written to the length out-parameter.
    BufferTooSmall = 6,
    /// The operation does not apply to this kind of object (for example the code of a request).
    WrongKind = 7,
    /// A string to be returned contains a NUL byte and cannot be a C string.
    EmbeddedNul = 8,
    /// A URI (or a path of URIs) is malformed.
    InvalidUri = 100,
    /// A header is malformed, or a header name is not a token.
    InvalidHeader = 101,
    /// A required header (To-Path, From-Path, …) is missing.
    MissingHeader = 102,
    /// A method is not one or more upper-case letters.
    InvalidMethod = 103,
    /// A transaction id is not 4 to 32 ident characters.
    InvalidTransactionId = 104,
    /// A response code is not in 100..=999.
    InvalidCode = 105,
    /// The body contains the chunk's end-line; give the chunk another transaction id.
    EndLineInBody = 106,
    /// Decoder: the start line is not an MSRP start line.
    DecodeBadStartLine = 110,
    /// Decoder: a line ends with LF without CR.
    DecodeBareLineFeed = 111,
    /// Decoder: a line is longer than the limit.
    DecodeLineTooLong = 112,
    /// Decoder: more header lines than the limit.
    DecodeTooManyHeaders = 113,
    /// Decoder: the chunk head is larger than the limit.
    DecodeHeadTooLarge = 114,
    /// Decoder: a line starting with seven dashes does not end the current chunk.
    DecodeBadEndLine = 115,
    /// Decoder: an earlier fatal error stopped this decoder; create a new one (and close the connection).
    DecodeFailed = 116,
    /// An SDP body is malformed (the message names the line).
    InvalidSdp = 120,
    /// An SDP offer cannot be answered or an answer not used (no content
    /// type in common, TLS on one side only, a refused media line).
    SdpNotNegotiable = 121,
    /// A `message/cpim` body is malformed (the message names the byte).
    InvalidCpim = 122,
    /// An XML body (IMDN, is-composing) is malformed or refused (a DTD,
    /// an unknown entity, past a limit).
    InvalidXml = 123,
    /// The connection, object or context is closed (by you, by the peer, or by an error).
    Closed = 200,
    /// A wait ran out of time.
    Timeout = 201,
    /// The TCP connection could not be made (refused, unreachable, name not resolved).
    ConnectFailed = 202,
    /// The listening socket could not be opened (address in use, not local, …).
    ListenFailed = 203,
    /// The peer's binding SEND did not carry the expected paths; it was answered with 481.
    BindMismatch = 204,
    /// The peer answered our binding SEND with an error (the code is in the message).
    BindRejected = 205,
    /// The peer sent bytes that are not MSRP; the connection was closed.
    Protocol = 206,
    /// Another input/output error.
    Io = 207,
    /// A blocking call was made on a libmsrp thread (inside a callback); use the callback form.
    InCallback = 208,
    /// The call does not fit the object's state (for example complete() before prepare()).
    BadState = 209,
    /// Not available on this platform, or not built: a URI with a transport
    /// other than `tcp` (WebSocket, RFC 7977) is refused with it, never
    /// dialled as TCP.
    Unsupported = 210,
    /// The peer answered the transaction with an error code (see the call's code out-parameter).
    TransactionFailed = 211,
    /// TLS failed (handshake, protocol or configuration); the message says how.
    TlsFailed = 212,
    /// The peer's certificate does not match the fingerprint given for it (SDP `a=fingerprint`).
    TlsFingerprintMismatch = 213,
    /// The peer's certificate failed CA verification: unknown issuer, wrong host name or expired.
    TlsCertificateInvalid = 214,
    /// The peer refused our certificate (or its fingerprint did not match what the peer expected).
    TlsRejected = 215,
    /// The relay refused our credentials (check user name and password), or could not prove it knows them.
    AuthFailed = 216,
    /// Relay discovery failed: no SRV or address records, or the DNS server did not answer.
    DnsFailed = 217,
    /// An incoming message is larger than the session takes in memory
    /// (`max_message_size`, `max_receive_memory`).
    TooLarge = 218,
    /// The peer's SDP `a=accept-types` does not list the message's Content-Type.
    NotAcceptedByPeer = 219,
    /// The message is larger than the peer's SDP `a=max-size`.
    PeerMaxSize = 220,
}

/// Every code, for `msrp_result_str` and tests (kept out of the header).
const ALL_RESULTS: [msrp_result; 48] = [
    msrp_result::Ok,
    msrp_result::NullArgument,
    msrp_result::InvalidArgument,
    msrp_result::InvalidUtf8,
    msrp_result::Panic,
    msrp_result::NotFound,
    msrp_result::BufferTooSmall,
    msrp_result::WrongKind,
    msrp_result::EmbeddedNul,
    msrp_result::InvalidUri,
    msrp_result::InvalidHeader,
    msrp_result::MissingHeader,
    msrp_result::InvalidMethod,
    msrp_result::InvalidTransactionId,
    msrp_result::InvalidCode,
    msrp_result::EndLineInBody,
    msrp_result::DecodeBadStartLine,
    msrp_result::DecodeBareLineFeed,
    msrp_result::DecodeLineTooLong,
    msrp_result::DecodeTooManyHeaders,
    msrp_result::DecodeHeadTooLarge,
    msrp_result::DecodeBadEndLine,
    msrp_result::DecodeFailed,
    msrp_result::InvalidSdp,
    msrp_result::SdpNotNegotiable,
    msrp_result::InvalidCpim,
    msrp_result::InvalidXml,
    msrp_result::Closed,
    msrp_result::Timeout,
    msrp_result::ConnectFailed,
    msrp_result::ListenFailed,
    msrp_result::BindMismatch,
    msrp_result::BindRejected,
    msrp_result::Protocol,
    msrp_result::Io,
    msrp_result::InCallback,
    msrp_result::BadState,
    msrp_result::Unsupported,
    msrp_result::TransactionFailed,
    msrp_result::TlsFailed,
    msrp_result::TlsFingerprintMismatch,
    msrp_result::TlsCertificateInvalid,
    msrp_result::TlsRejected,
    msrp_result::AuthFailed,
    msrp_result::DnsFailed,
    msrp_result::TooLarge,
    msrp_result::NotAcceptedByPeer,
    msrp_result::PeerMaxSize,
];

impl msrp_result {
    /// Every code.
    pub fn all() -> &'static [msrp_result] {
        &ALL_RESULTS
    }

    /// The static text of the code (NUL-terminated).
    pub fn text(self) -> &'static str {
        use msrp_result::*;
        match self {
            Ok => "success\0",
            NullArgument => "a required pointer argument was NULL\0",
            InvalidArgument => "an argument is out of range or invalid\0",
            InvalidUtf8 => "a string argument is not valid UTF-8\0",
            Panic => "internal error in libmsrp (a bug; please report it)\0",
            NotFound => "not present\0",
            BufferTooSmall => "buffer too small; the needed length was returned\0",
            WrongKind => "operation does not apply to this kind of object\0",
            EmbeddedNul => "text contains a NUL byte and cannot be returned as a C string\0",
            InvalidUri => "malformed MSRP URI\0",
            InvalidHeader => "malformed header\0",
            MissingHeader => "missing required header\0",
            InvalidMethod => "invalid method (expected upper-case letters)\0",
            InvalidTransactionId => "invalid transaction id (expected 4 to 32 ident characters)\0",
            InvalidCode => "invalid status code (expected 100 to 999)\0",
            EndLineInBody => "body contains the chunk's end-line; change the transaction id\0",
            DecodeBadStartLine => "malformed MSRP start line\0",
            DecodeBareLineFeed => "line ends with LF without CR\0",
            DecodeLineTooLong => "line longer than the decoder's limit\0",
            DecodeTooManyHeaders => "more headers than the decoder's limit\0",
            DecodeHeadTooLarge => "chunk head larger than the decoder's limit\0",
            DecodeBadEndLine => "end-line does not match the current chunk\0",
            DecodeFailed => "decoder stopped by an earlier error\0",
            InvalidSdp => "malformed SDP\0",
            SdpNotNegotiable => "the SDP offer or answer cannot be used\0",
            InvalidCpim => "malformed message/cpim\0",
            InvalidXml => "malformed or refused XML\0",
            Closed => "closed\0",
            Timeout => "timed out\0",
            ConnectFailed => "could not connect\0",
            ListenFailed => "could not listen\0",
            BindMismatch => "the peer's binding did not match the expected paths (answered 481)\0",
            BindRejected => "the peer refused the binding\0",
            Protocol => "the peer sent data that is not MSRP\0",
            Io => "input/output error\0",
            InCallback => "blocking call inside a callback; use the callback form\0",
            BadState => "call not valid in the object's current state\0",
            Unsupported => "not supported (by this build or platform)\0",
            TransactionFailed => "the peer answered with an error code\0",
            TlsFailed => "TLS failed\0",
            TlsFingerprintMismatch => {
                "the peer's certificate does not match the fingerprint given for it\0"
            }
            TlsCertificateInvalid => "the peer's certificate failed CA verification\0",
            TlsRejected => "the peer refused our certificate\0",
            AuthFailed => "the relay refused our credentials\0",
            DnsFailed => "relay discovery (DNS) failed\0",
            TooLarge => "the message is larger than the session takes in memory\0",
            NotAcceptedByPeer => "the peer does not accept this content type\0",
            PeerMaxSize => "the message is larger than the peer's max-size\0",
        }
    }
}

/// An error on its way out to C: a code and a message for `msrp_last_error_message`.
#[derive(Debug)]
pub struct FfiError {
    pub(crate) code: msrp_result,
    pub(crate) msg: Cow<'static, str>,
}

impl FfiError {
    pub(crate) fn new(code: msrp_result, msg: impl Into<Cow<'static, str>>) -> FfiError {
        FfiError {
            code,
            msg: msg.into(),
        }
    }

    pub(crate) fn null(arg: &'static str) -> FfiError {
        FfiError::new(
            msrp_result::NullArgument,
            format!("argument '{arg}' is NULL"),
        )
    }
}

impl From<UriError> for FfiError {
    fn from(e: UriError) -> Self {
        FfiError::new(msrp_result::InvalidUri, e.to_string())
    }
}

impl From<HeaderError> for FfiError {
    fn from(e: HeaderError) -> Self {
        FfiError::new(msrp_result::InvalidHeader, e.to_string())
    }
}

impl From<ChunkError> for FfiError {
    fn from(e: ChunkError) -> Self {
        let code = match &e {
            ChunkError::InvalidMethod => msrp_result::InvalidMethod,
            ChunkError::InvalidTransactionId => msrp_result::InvalidTransactionId,
            ChunkError::InvalidCode => msrp_result::InvalidCode,
            ChunkError::LineBreakInValue => msrp_result::InvalidArgument,
            ChunkError::InvalidHeaderName | ChunkError::Header(_) => msrp_result::InvalidHeader,
            ChunkError::MissingHeader(_) => msrp_result::MissingHeader,
            ChunkError::EndLineInBody => msrp_result::EndLineInBody,
            ChunkError::WrongKind(_) => msrp_result::WrongKind,
        };
        FfiError::new(code, e.to_string())
    }
}

impl From<DecodeError> for FfiError {
    fn from(e: DecodeError) -> Self {
        let code = match e {
            DecodeError::BadStartLine(_) => msrp_result::DecodeBadStartLine,
            DecodeError::BareLineFeed => msrp_result::DecodeBareLineFeed,
            DecodeError::LineTooLong => msrp_result::DecodeLineTooLong,
            DecodeError::TooManyHeaders => msrp_result::DecodeTooManyHeaders,
            DecodeError::HeadTooLarge => msrp_result::DecodeHeadTooLarge,
            DecodeError::BadEndLine => msrp_result::DecodeBadEndLine,
            DecodeError::Failed => msrp_result::DecodeFailed,
        };
        FfiError::new(code, e.to_string())
    }
}

impl From<crate::engine::Error> for FfiError {
    fn from(e: crate::engine::Error) -> Self {
        use crate::engine::ErrorKind as K;
        let code = match e.kind {
            K::Closed => msrp_result::Closed,
            K::Timeout => msrp_result::Timeout,
            K::ConnectFailed => msrp_result::ConnectFailed,
            K::ListenFailed => msrp_result::ListenFailed,
            K::BindMismatch => msrp_result::BindMismatch,
            K::BindRejected => msrp_result::BindRejected,
            K::Protocol => msrp_result::Protocol,
            K::Io => msrp_result::Io,
            K::InCallback => msrp_result::InCallback,
            K::BadState => msrp_result::BadState,
            K::InvalidArgument => msrp_result::InvalidArgument,
            K::Unsupported => msrp_result::Unsupported,
            K::Transaction => msrp_result::TransactionFailed,
            K::Tls => msrp_result::TlsFailed,
            K::TlsFingerprint => msrp_result::TlsFingerprintMismatch,
            K::TlsCertificate => msrp_result::TlsCertificateInvalid,
            K::TlsRejected => msrp_result::TlsRejected,
            K::AuthFailed => msrp_result::AuthFailed,
            K::DnsFailed => msrp_result::DnsFailed,
        };
        FfiError::new(code, e.msg)
    }
}

thread_local! {
    static LAST: RefCell<CString> = RefCell::new(CString::default());
}

pub(crate) fn set_last_error(msg: &str) {
    let c = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    LAST.with(|l| *l.borrow_mut() = c);
}

/// The static, NUL-terminated text of a result code; never NULL. Unknown
/// codes give "unknown result code". The pointer is valid forever.
#[unsafe(no_mangle)]
pub extern "C" fn msrp_result_str(result: u32) -> *const c_char {
    let text = ALL_RESULTS
        .iter()
        .find(|r| **r as u32 == result)
        .map(|r| r.text())
        .unwrap_or("unknown result code\0");
    text.as_ptr().cast()
}

/// The message of the last failed libmsrp call on the calling thread: what
/// went wrong and where (for example "invalid MSRP URI at byte 12: missing
/// \";transport\""). Never NULL; empty when nothing has failed yet. Valid until
/// the next libmsrp call on this thread; copy it to keep it. Calls that
/// succeed leave it unchanged.
#[unsafe(no_mangle)]
pub extern "C" fn msrp_last_error_message() -> *const c_char {
    LAST.with(|l| l.borrow().as_ptr())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_nul_terminated_text_and_distinct_number() {
        let mut seen = std::collections::HashSet::new();
        for r in msrp_result::all() {
            assert!(seen.insert(*r as u32), "{r:?} number reused");
            let t = r.text();
            assert!(t.ends_with('\0') && t.len() > 1);
            assert_eq!(t.matches('\0').count(), 1);
        }
        // SAFETY: msrp_result_str returns a static NUL-terminated string.
        let s = unsafe { std::ffi::CStr::from_ptr(msrp_result_str(9999)) };
        assert_eq!(s.to_str().unwrap(), "unknown result code");
    }
}
