//! The byte stream under a transport: plain TCP or TLS over TCP, the TLS
//! handshakes that make one, and the split into a reading and a writing half
//! that can both be driven at once. What the TLS settings and certificate
//! checks are lives in [`super::tls`]; this file only carries bytes.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{AlertDescription, CertificateError, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::error::{Error, ErrorKind};
use super::tls::{Fingerprint, TlsSettings, any_matches};

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
    /// WebSocket (RFC 7977, `;ws` URIs) over one of the above.
    Ws(Box<super::ws::WsConn>),
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
            Conn::Ws(s) => s.inner().tcp(),
        }
    }

    /// Whether the connection is TLS (under WebSocket too).
    pub fn is_tls(&self) -> bool {
        match self {
            Conn::Tcp(_) => false,
            Conn::Ws(s) => s.inner().is_tls(),
            _ => true,
        }
    }

    /// The peer's certificate (TLS only, when it sent one).
    pub fn peer_certificate(&self) -> Option<CertificateDer<'static>> {
        let certs = match self {
            Conn::Tcp(_) => None,
            Conn::Client(s) => s.get_ref().1.peer_certificates(),
            Conn::Server(s) => s.get_ref().1.peer_certificates(),
            Conn::Ws(s) => return s.inner().peer_certificate(),
        }?;
        certs.first().map(|c| c.clone().into_owned())
    }
}

/// TLS client handshake over `tcp`, checking the server as described in the module docs.
pub async fn connect(
    tcp: TcpStream,
    settings: &TlsSettings,
    host: &str,
    peer: Vec<Fingerprint>,
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

/// Checks, after the handshake, that the peer's certificate has one of the
/// expected fingerprints (for fingerprints that became known late).
pub fn check_peer(conn: &Conn, expected: &[Fingerprint]) -> Result<(), Error> {
    if expected.is_empty() || !conn.is_tls() {
        return Ok(());
    }
    match conn.peer_certificate() {
        Some(c) if any_matches(expected, &c) => Ok(()),
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
            Conn::Ws(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
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
            Conn::Ws(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
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
            Conn::Ws(s) => std::pin::Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
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
            Conn::Ws(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
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
            Conn::Ws(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
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
            Conn::Tcp(_) | Conn::Ws(_) => Err(std::io::Error::other("not a TLS connection")),
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
        try_send_vectored(self.0, b)
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
            Conn::Tcp(_) | Conn::Ws(_) => std::task::Poll::Ready(Err(std::io::Error::other(
                "only a TLS connection lends decrypted bytes",
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

/// A non-blocking vectored send. On Unix it is `sendmsg` with
/// `MSG_NOSIGNAL`: a connection whose sending side is gone gives `EPIPE`,
/// never a SIGPIPE (plain `writev` would raise one when the application has
/// SIGPIPE at its default).
pub(crate) fn try_send_vectored(
    tcp: &tokio::net::TcpStream,
    bufs: &[std::io::IoSlice<'_>],
) -> std::io::Result<usize> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let fd = tcp.as_raw_fd();
        tcp.try_io(tokio::io::Interest::WRITABLE, || {
            // SAFETY: an all-zero msghdr is valid; `IoSlice` has the layout
            // of `iovec` on Unix (std guarantees it), and `bufs` outlives the call.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
            msg.msg_iovlen = bufs.len().min(1024) as _;
            // SAFETY: `fd` is this socket's descriptor, open while `tcp` lives.
            let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })
    }
    #[cfg(not(unix))]
    {
        tcp.try_write_vectored(bufs)
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
}
