//! The shared-port server (reference `MSRPServer`): one listening socket per
//! local address serves many sessions. `prepare` registers an expected local
//! URI (opening the port only when needed), `complete` waits for the
//! connection whose binding comes from the given remote path, `cleanup`
//! unregisters the URI and closes the port when nothing uses it any more.
//!
//! Incoming connections are bound as they arrive: a binding SEND whose
//! To-Path is not registered gets 481; one that is registered waits (up to
//! the bind timeout) for `complete` with its From-Path, and gets 200 then.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::connector::{DEFAULT_TIMEOUT, host_ip, listen};
use super::context::Context;
use super::error::{Error, ErrorKind};
use super::logger::{Level, LoggerRef, log};
use super::stream::{self, Conn};
use super::tls::{Fingerprint, PeerSlot, TlsSettings, any_matches};
use super::transport::shared::SharedConn;
use super::transport::{Received, Transport};
use crate::proto::binding::{self, BIND_PART, SharedFirst};
use crate::proto::chunk::Chunk;
use crate::proto::ids;
use crate::proto::uri::{Host, Uri, format_path};

struct Parked {
    id: u64,
    transport: Transport,
    /// The peer's TLS certificate (DER), when the connection is TLS.
    peer_cert: Option<Vec<u8>>,
    tls: bool,
    /// The binding SEND (its first part, when it carries a large body).
    binding: Received,
    local: Uri,
    from: Vec<Uri>,
}

struct Waiter {
    id: u64,
    remote: Vec<Uri>,
    tx: oneshot::Sender<Parked>,
}

struct Listener {
    task: Option<AbortHandle>,
    users: usize,
    secure: bool,
    /// WebSocket (RFC 7977): connections start with its handshake.
    ws: bool,
}

/// Entries by a session id (of a prepared URI, or of the last URI of a
/// peer's path), so that a server with thousands of sessions finds one
/// without going through all of them. Paths only match when these ids do.
struct BySid<T>(HashMap<String, Vec<T>>);

impl<T> Default for BySid<T> {
    fn default() -> Self {
        BySid(HashMap::new())
    }
}

/// The session id of `path`'s last URI ("" when it has none).
fn sid_of(path: &[Uri]) -> &str {
    path.last()
        .and_then(|u| u.session_id.as_deref())
        .unwrap_or("")
}

impl<T> BySid<T> {
    fn push(&mut self, sid: &str, t: T) {
        self.0.entry(sid.to_string()).or_default().push(t);
    }

    fn get(&self, sid: &str) -> &[T] {
        self.0.get(sid).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Takes the first entry under `sid` that `f` picks.
    fn take(&mut self, sid: &str, f: impl Fn(&T) -> bool) -> Option<T> {
        let v = self.0.get_mut(sid)?;
        let i = v.iter().position(f)?;
        let t = v.swap_remove(i);
        if v.is_empty() {
            self.0.remove(sid);
        }
        Some(t)
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

#[derive(Default)]
struct State {
    listeners: HashMap<SocketAddr, Listener>,
    /// Prepared local URIs and their ports, by session id.
    expected: BySid<(Uri, SocketAddr)>,
    /// Bindings waiting for `complete`, by the session id of the peer's URI.
    parked: BySid<Parked>,
    /// `complete` calls waiting for a binding, by the same.
    waiters: BySid<Waiter>,
    next_id: u64,
    tls: Option<TlsSettings>,
    /// Fingerprints expected of the peers of prepared local URIs.
    fingerprints: Vec<(Uri, Fingerprint)>,
    /// Connections accepted from now on may carry several sessions.
    share: bool,
}

struct Shared {
    ctx: Arc<Context>,
    logger: Option<LoggerRef>,
    sessmatch: bool,
    bind_timeout: Duration,
    state: Mutex<State>,
}

/// The shared-port server.
pub struct Server {
    shared: Arc<Shared>,
}

impl Shared {
    fn matches(&self, a: &[Uri], b: &[Uri]) -> bool {
        binding::paths_match(a, b, self.sessmatch)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Writes `reply`, when the rules made one.
async fn answer(t: &Transport, reply: Option<Chunk>) {
    if let Some(r) = reply {
        let _ = t.write_chunk(&r).await;
    }
}

async fn serve_connection(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    tls_cfg: Option<Arc<rustls::ServerConfig>>,
    ws: bool,
) {
    // A handshake step that fails or takes too long ends the connection,
    // logged with `what` it was.
    async fn step(
        shared: &Shared,
        peer: SocketAddr,
        what: &str,
        f: impl std::future::Future<Output = Result<Conn, Error>>,
    ) -> Option<Conn> {
        let why = match tokio::time::timeout(shared.bind_timeout, f).await {
            Ok(Ok(c)) => return Some(c),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no {what} in time; closed"),
        };
        log(
            &shared.logger,
            Level::Info,
            &format!("connection from {peer}: {why}"),
        );
        None
    }
    let stream = match tls_cfg {
        None => Conn::Tcp(stream),
        Some(cfg) => {
            let Some(c) = step(&shared, peer, "TLS handshake", stream::accept(stream, cfg)).await
            else {
                return;
            };
            c
        }
    };
    let stream = if ws {
        let Some(c) = step(
            &shared,
            peer,
            "WebSocket handshake",
            super::ws::accept(stream),
        )
        .await
        else {
            return;
        };
        c
    } else {
        stream
    };
    let is_tls = stream.is_tls();
    let peer_cert = stream.peer_certificate().map(|c| c.to_vec());
    if shared.lock().share {
        // Each session's first SEND on the connection is a binding.
        let sh = shared.clone();
        let on_new = Box::new(move |t: Transport| {
            let sh2 = sh.clone();
            let cert = peer_cert.clone();
            sh.ctx.spawn(bind(sh2, t, peer, cert, is_tls));
        });
        SharedConn::start(
            &shared.ctx,
            stream,
            shared.sessmatch,
            shared.logger.clone(),
            Some(on_new),
            None,
        );
        return;
    }
    // Paths are not known yet: the transport learns them from the binding.
    let t = Transport::start(
        &shared.ctx,
        stream,
        Vec::new(),
        Vec::new(),
        shared.sessmatch,
        shared.logger.clone(),
    );
    bind(shared, t, peer, peer_cert, is_tls).await;
}

/// Reads the binding SEND on `t` and parks it for `complete` (or answers
/// and drops a binding that is not ours or not claimed in time).
async fn bind(
    shared: Arc<Shared>,
    t: Transport,
    peer: SocketAddr,
    peer_cert: Option<Vec<u8>>,
    is_tls: bool,
) {
    // Read in bounded parts: the To-Path is checked on the first one.
    let read = t.read_chunk(BIND_PART);
    let received = match tokio::time::timeout(shared.bind_timeout, read).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            log(
                &shared.logger,
                Level::Info,
                &format!("connection from {peer} ended before binding: {e}"),
            );
            return;
        }
        Err(_) => {
            log(
                &shared.logger,
                Level::Info,
                &format!("connection from {peer} sent no binding in time; closed"),
            );
            return;
        }
    };
    let first = &received.chunk;
    // Only URIs with the To-Path's session id can match it.
    let expected: Vec<Uri> = crate::proto::share::session_of(first)
        .map(|sid| {
            shared
                .lock()
                .expected
                .get(sid)
                .iter()
                .map(|(u, _)| u.clone())
                .collect()
        })
        .unwrap_or_default();
    let (local, from) = match binding::judge_shared_first(first, &expected, shared.sessmatch) {
        SharedFirst::Ours { index, from } => (expected[index].clone(), from),
        SharedFirst::NotSend => {
            log(
                &shared.logger,
                Level::Info,
                &format!("connection from {peer} did not start with a SEND; closed"),
            );
            return;
        }
        SharedFirst::Malformed(reply) => {
            answer(&t, reply).await;
            return;
        }
        SharedFirst::Unknown(why, reply) => {
            log(
                &shared.logger,
                Level::Info,
                &format!("connection from {peer}: {why}: 481"),
            );
            answer(&t, reply).await;
            return;
        }
    };
    let mut t = t;
    t.set_paths(vec![local.clone()], from.clone());
    let id;
    let parked_sid;
    {
        let mut st = shared.lock();
        st.next_id += 1;
        id = st.next_id;
        let mut p = Parked {
            id,
            transport: t,
            peer_cert,
            tls: is_tls,
            binding: received,
            local,
            from,
        };
        let sid = sid_of(&p.from).to_string();
        if let Some(w) = st
            .waiters
            .take(&sid, |w| shared.matches(&w.remote, &p.from))
        {
            match w.tx.send(p) {
                Ok(()) => return,
                Err(back) => p = back,
            }
        }
        st.parked.push(&sid, p);
        parked_sid = sid;
    }
    // Unclaimed bindings expire after the bind timeout.
    tokio::time::sleep(shared.bind_timeout).await;
    let expired = {
        let mut st = shared.lock();
        st.parked.take(&parked_sid, |p| p.id == id)
    };
    if let Some(p) = expired {
        answer(
            &p.transport,
            binding::refuse_parked(&p.binding.chunk, false),
        )
        .await;
        log(
            &shared.logger,
            Level::Info,
            &format!("binding from {peer} was not claimed by complete() in time: 481"),
        );
    }
}

async fn accept_loop(
    shared: Arc<Shared>,
    l: TcpListener,
    tls_cfg: Option<Arc<rustls::ServerConfig>>,
    ws: bool,
) {
    loop {
        match l.accept().await {
            Ok((s, peer)) => {
                shared.ctx.spawn(serve_connection(
                    shared.clone(),
                    s,
                    peer,
                    tls_cfg.clone(),
                    ws,
                ));
            }
            Err(e) => {
                log(&shared.logger, Level::Warn, &format!("accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

impl Server {
    /// A server on `ctx`; `bind_timeout` bounds how long an unclaimed binding waits.
    pub fn new(ctx: &Arc<Context>, logger: Option<LoggerRef>, sessmatch: bool) -> Server {
        Server {
            shared: Arc::new(Shared {
                ctx: ctx.clone(),
                logger,
                sessmatch,
                bind_timeout: DEFAULT_TIMEOUT,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Reference `prepare`: registers the expected local URI and opens its
    /// port unless it is open already. Port 0 (or no URI) reuses the port
    /// already open on that address, or opens a new one. A missing session
    /// id is generated.
    pub fn prepare(&self, local: Option<Uri>) -> Result<Vec<Uri>, Error> {
        let sh = &self.shared;
        sh.ctx.check_open()?;
        let mut uri = local.unwrap_or_else(|| {
            Uri::new(
                false,
                Host::V4(std::net::Ipv4Addr::LOCALHOST),
                Some(0),
                None,
            )
        });
        super::connector::check_transport(&uri, "the local URI")?;
        if uri.session_id.is_none() {
            uri.session_id = Some(ids::session_id());
        }
        let ip = host_ip(&uri.host)?;
        let mut st = sh.lock();
        let sid = uri.session_id.clone().unwrap_or_default();
        if st
            .expected
            .get(&sid)
            .iter()
            .any(|(u, _)| u.equivalent(&uri))
        {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("{uri} is already prepared on this server"),
            ));
        }
        let want = uri.port.unwrap_or(super::connector::DEFAULT_PORT);
        let existing = st
            .listeners
            .keys()
            .copied()
            .find(|a| a.ip() == ip && (want == 0 || a.port() == want));
        let addr = match existing {
            Some(a) => {
                let ws = uri.transport.eq_ignore_ascii_case("ws");
                if st.listeners[&a].ws != ws {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        format!(
                            "port {} is open for {}; a ws and a tcp URI cannot share a port",
                            a.port(),
                            if ws { "tcp" } else { "ws" }
                        ),
                    ));
                }
                if st.listeners[&a].secure != uri.secure {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        format!(
                            "port {} is open for {}; an msrp and an msrps URI cannot share a port",
                            a.port(),
                            if uri.secure { "msrp" } else { "msrps" }
                        ),
                    ));
                }
                a
            }
            None => {
                let tls_cfg = if uri.secure {
                    let settings = st.tls.as_ref().ok_or_else(|| {
                        Error::new(
                            ErrorKind::BadState,
                            "an msrps URI needs TLS settings with a certificate: call set_tls first",
                        )
                    })?;
                    // Client certificates are checked per session, at
                    // complete(), against the fingerprint given for it.
                    Some(settings.server_config(PeerSlot::default())?)
                } else {
                    None
                };
                let l = listen(&uri)?;
                let addr = l
                    .local_addr()
                    .map_err(|e| Error::new(ErrorKind::ListenFailed, e.to_string()))?;
                let shared = sh.clone();
                let ws = uri.transport.eq_ignore_ascii_case("ws");
                let task = sh.ctx.spawn(async move {
                    match TcpListener::from_std(l) {
                        Ok(l) => accept_loop(shared, l, tls_cfg, ws).await,
                        Err(e) => log(&shared.logger, Level::Error, &format!("cannot listen: {e}")),
                    }
                });
                log(
                    &sh.logger,
                    Level::Debug,
                    &format!("server listening on {addr}"),
                );
                st.listeners.insert(
                    addr,
                    Listener {
                        task,
                        users: 0,
                        secure: uri.secure,
                        ws: uri.transport.eq_ignore_ascii_case("ws"),
                    },
                );
                addr
            }
        };
        uri.port = Some(addr.port());
        st.listeners.get_mut(&addr).expect("listener present").users += 1;
        st.expected.push(&sid, (uri.clone(), addr));
        Ok(vec![uri])
    }

    /// Reference `complete`: the bound transport whose binding came from
    /// `remote` (already parked, or arriving later). The caller bounds the wait.
    pub async fn complete(&self, remote: Vec<Uri>) -> Result<Transport, Error> {
        let sh = &self.shared;
        let found = {
            let mut st = sh.lock();
            let sid = sid_of(&remote).to_string();
            match st.parked.take(&sid, |p| sh.matches(&remote, &p.from)) {
                Some(p) => Ok(p),
                None => {
                    let (tx, rx) = oneshot::channel();
                    st.next_id += 1;
                    let id = st.next_id;
                    st.waiters.push(&sid, Waiter { id, remote, tx });
                    Err((rx, id, sid))
                }
            }
        };
        let (rx, id, sid) = match found {
            Ok(p) => return self.accept_parked(p).await,
            Err(w) => w,
        };
        let _unregister = WaiterGuard {
            shared: sh.clone(),
            id,
            sid,
        };
        match rx.await {
            Ok(p) => self.accept_parked(p).await,
            Err(_) => Err(Error::closed(
                "the server was closed while complete() was waiting",
            )),
        }
    }

    async fn accept_parked(&self, p: Parked) -> Result<Transport, Error> {
        let expected: Vec<Fingerprint> = {
            let st = self.shared.lock();
            st.fingerprints
                .iter()
                .filter(|(u, _)| u.equivalent(&p.local))
                .map(|(_, f)| f.clone())
                .collect()
        };
        if !expected.is_empty()
            && p.tls
            && !p
                .peer_cert
                .as_deref()
                .is_some_and(|c| any_matches(&expected, c))
        {
            answer(&p.transport, binding::refuse_parked(&p.binding.chunk, true)).await;
            p.transport.close();
            return Err(Error::new(
                ErrorKind::TlsFingerprint,
                format!(
                    "the peer's certificate does not have the fingerprint given for {} (check a=fingerprint in the SDP); the binding got 403",
                    p.local
                ),
            ));
        }
        if binding::carries_body(&p.binding.chunk, p.binding.complete) {
            // Answered by the session (or the application) that reads it.
            p.transport.unread(p.binding).await;
        } else {
            answer(
                &p.transport,
                binding::accept_parked(&p.binding.chunk, p.binding.complete),
            )
            .await;
        }
        // A peer that sent and closed at once still gives a transport that
        // delivers what it read, then the close.
        if p.transport.is_closed() && !p.transport.input_ended() {
            return Err(Error::closed(
                "the connection closed before the binding was answered",
            ));
        }
        log(
            &self.shared.logger,
            Level::Info,
            &format!("{} bound from {}", p.local, format_path(&p.from)),
        );
        Ok(p.transport)
    }

    /// With `true`, connections accepted from now on may carry several
    /// sessions (RFC 4975 §5.4): each session's first SEND on a connection
    /// binds it like the first SEND of a new connection, chunks go to their
    /// session by To-Path, and a request for no session of the connection
    /// gets 481 (§7.3). A connection closes when the peer closes it, or
    /// after carrying no session for 30 s.
    pub fn set_share(&self, share: bool) {
        self.shared.lock().share = share;
    }

    /// TLS settings (our certificate) for `msrps` URIs prepared from now on.
    pub fn set_tls(&self, settings: TlsSettings) {
        self.shared.lock().tls = Some(settings);
    }

    /// The fingerprint that the peer of the prepared `local` URI must show
    /// (checked in `complete`); `None` removes it.
    pub fn set_peer_fingerprint(&self, local: &Uri, fp: Option<Fingerprint>) -> Result<(), Error> {
        let mut st = self.shared.lock();
        prepared(&st, local)?;
        st.fingerprints.retain(|(u, _)| !u.equivalent(local));
        if let Some(fp) = fp {
            st.fingerprints.push((local.clone(), fp));
        }
        Ok(())
    }

    /// One more fingerprint the peer of `local` may show (RFC 8122 §5: any
    /// one of several passes).
    pub fn add_peer_fingerprint(&self, local: &Uri, fp: Fingerprint) -> Result<(), Error> {
        let mut st = self.shared.lock();
        prepared(&st, local)?;
        st.fingerprints.push((local.clone(), fp));
        Ok(())
    }

    /// Reference `cleanup`: forgets `local`; closes its port when no other
    /// prepared URI uses it. Returns whether it was registered.
    pub fn cleanup(&self, local: &Uri) -> bool {
        let mut st = self.shared.lock();
        let sid = local.session_id.as_deref().unwrap_or("");
        let Some((_, addr)) = st.expected.take(sid, |(u, _)| u.equivalent(local)) else {
            return false;
        };
        st.fingerprints.retain(|(u, _)| !u.equivalent(local));
        let close = match st.listeners.get_mut(&addr) {
            Some(l) => {
                l.users -= 1;
                l.users == 0
            }
            None => false,
        };
        if close {
            if let Some(l) = st.listeners.remove(&addr) {
                if let Some(t) = l.task {
                    t.abort();
                }
            }
        }
        true
    }

    /// The context.
    pub fn context(&self) -> &Arc<Context> {
        &self.shared.ctx
    }

    /// Closes every port and ends waiting `complete` calls with "closed".
    pub fn close(&self) {
        let mut st = self.shared.lock();
        for (_, l) in st.listeners.drain() {
            if let Some(t) = l.task {
                t.abort();
            }
        }
        st.expected.clear();
        st.parked.clear();
        st.waiters.clear();
    }
}

/// `local` is a URI this server prepared.
fn prepared(st: &State, local: &Uri) -> Result<(), Error> {
    let sid = local.session_id.as_deref().unwrap_or("");
    if st
        .expected
        .get(sid)
        .iter()
        .any(|(u, _)| u.equivalent(local))
    {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("{local} is not prepared on this server"),
        ))
    }
}

struct WaiterGuard {
    shared: Arc<Shared>,
    id: u64,
    sid: String,
}

impl Drop for WaiterGuard {
    fn drop(&mut self) {
        self.shared
            .lock()
            .waiters
            .take(&self.sid, |w| w.id == self.id);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.close();
    }
}
