//! MSRP over WebSocket (RFC 7977) on tokio-tungstenite: the handshakes
//! with the `msrp` subprotocol (§4.1), over plain TCP (`ws`) or TLS
//! (`wss`, the same rustls settings and fingerprint checks as `msrps`),
//! and [`WsConn`], which makes a WebSocket connection a byte stream for
//! the rest of the engine: each MSRP chunk written leaves as one WebSocket
//! message (§5.1, cut by [`crate::proto::ws::ChunkSplitter`]), and the
//! payloads of received messages, text or binary (§4.2), are read in order.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

use super::error::{Error, ErrorKind};
use super::stream::Conn;
use crate::proto::ws::{ChunkSplitter, SUBPROTOCOL, SplitError, offers_msrp};

/// The largest WebSocket message taken or sent: one MSRP chunk, so this is
/// also the largest chunk on a WebSocket connection (sessions on one send
/// chunks of at most 64 KiB; a relay cuts larger messages, RFC 7977 §5.1).
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// Encoded chunks held before a write waits for earlier ones to leave.
const HIGH_WATER: usize = 256 * 1024;

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

fn ws_error(e: tungstenite::Error, during: &str) -> Error {
    match e {
        tungstenite::Error::Io(e) => Error::closed(format!("{during} failed: {e}")),
        other => Error::new(ErrorKind::Protocol, format!("{during} failed: {other}")),
    }
}

const NOT_MSRP: &str = "the WebSocket server did not accept the msrp subprotocol (RFC 7977 §4.1)";

/// The client handshake (`GET /`, `Sec-WebSocket-Protocol: msrp`) on an
/// open connection to `host:port`; fails unless the server's 101 names the
/// `msrp` subprotocol (RFC 7977 §4.1).
pub async fn connect(conn: Conn, host: &str, port: u16) -> Result<Conn, Error> {
    let scheme = if conn.is_tls() { "wss" } else { "ws" };
    let mut req = format!("{scheme}://{host}:{port}/")
        .into_client_request()
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("'{host}' cannot be used in a WebSocket request: {e}"),
            )
        })?;
    req.headers_mut().insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let (ws, resp) = tokio_tungstenite::client_async_with_config(req, conn, Some(config()))
        .await
        .map_err(|e| match e {
            tungstenite::Error::Protocol(ProtocolError::SecWebSocketSubProtocolError(why)) => {
                Error::new(ErrorKind::Protocol, format!("{NOT_MSRP} ({why})"))
            }
            e => ws_error(e, "the WebSocket handshake"),
        })?;
    let named = resp
        .headers()
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(offers_msrp);
    if !named {
        return Err(Error::new(ErrorKind::Protocol, NOT_MSRP));
    }
    Ok(Conn::Ws(Box::new(WsConn::new(ws))))
}

/// The server handshake on an accepted connection: a request that does not
/// offer the `msrp` subprotocol gets 400 and the connection ends.
pub async fn accept(conn: Conn) -> Result<Conn, Error> {
    let check = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let offered = req
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(offers_msrp);
        if !offered {
            let mut r = ErrorResponse::new(Some(
                "this is an MSRP WebSocket server: offer the msrp subprotocol".into(),
            ));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return Err(r);
        }
        resp.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
        Ok(resp)
    };
    let ws = tokio_tungstenite::accept_hdr_async_with_config(conn, check, Some(config()))
        .await
        .map_err(|e| ws_error(e, "the WebSocket handshake"))?;
    Ok(Conn::Ws(Box::new(WsConn::new(ws))))
}

/// A WebSocket connection as a byte stream (see the module docs).
pub struct WsConn {
    ws: WebSocketStream<Conn>,
    /// The payload being read, and how much of it was.
    rd: Bytes,
    rd_at: usize,
    out: ChunkSplitter,
    /// A whole chunk waiting for the WebSocket to take it.
    ready: Option<Vec<u8>>,
}

fn io_error(e: tungstenite::Error) -> io::Error {
    match e {
        tungstenite::Error::Io(e) => e,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::ErrorKind::BrokenPipe.into()
        }
        other => io::Error::other(other),
    }
}

fn split_error(e: SplitError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl WsConn {
    fn new(ws: WebSocketStream<Conn>) -> WsConn {
        WsConn {
            ws,
            rd: Bytes::new(),
            rd_at: 0,
            out: ChunkSplitter::new(MAX_MESSAGE),
            ready: None,
        }
    }

    /// The connection underneath (TCP or TLS).
    pub fn inner(&self) -> &Conn {
        self.ws.get_ref()
    }

    /// Hands every whole chunk written so far to the WebSocket, one
    /// message each; `Ready` once none is left waiting.
    fn poll_send_chunks(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.ready.is_none() {
                self.ready = self.out.next_chunk().map_err(split_error)?;
            }
            let Some(chunk) = self.ready.take() else {
                return Poll::Ready(Ok(()));
            };
            match Pin::new(&mut self.ws).poll_ready(cx) {
                Poll::Pending => {
                    self.ready = Some(chunk);
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(io_error(e))),
                Poll::Ready(Ok(())) => {}
            }
            Pin::new(&mut self.ws)
                .start_send(Message::Binary(Bytes::from(chunk)))
                .map_err(io_error)?;
        }
    }
}

impl AsyncRead for WsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        loop {
            if me.rd_at < me.rd.len() {
                let n = buf.remaining().min(me.rd.len() - me.rd_at);
                buf.put_slice(&me.rd[me.rd_at..me.rd_at + n]);
                me.rd_at += n;
                return Poll::Ready(Ok(()));
            }
            match ready!(Pin::new(&mut me.ws).poll_next(cx)) {
                // The end of the stream.
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(())),
                Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                )) => return Poll::Ready(Ok(())),
                Some(Err(e)) => return Poll::Ready(Err(io_error(e))),
                Some(Ok(Message::Binary(b))) => me.rd = b,
                Some(Ok(Message::Text(t))) => me.rd = Bytes::from(t),
                // Pings are answered by tungstenite; nothing else is data.
                Some(Ok(_)) => continue,
            }
            me.rd_at = 0;
        }
    }
}

impl AsyncWrite for WsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.ready.is_some() || me.out.buffered() >= HIGH_WATER {
            ready!(me.poll_send_chunks(cx))?;
        }
        me.out.push(buf);
        // What cannot be handed over now goes at the next write or flush.
        if let Poll::Ready(Err(e)) = me.poll_send_chunks(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_send_chunks(cx))?;
        Pin::new(&mut me.ws).poll_flush(cx).map_err(io_error)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_send_chunks(cx))?;
        match ready!(Pin::new(&mut me.ws).poll_close(cx)) {
            Ok(()) | Err(tungstenite::Error::ConnectionClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(io_error(e))),
        }
    }
}
