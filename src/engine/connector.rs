//! Direct connectors (reference `ConnectorDirect` and `AcceptorDirect`):
//! `prepare` gives the local path for SDP, `complete` connects (or accepts)
//! and binds, `cleanup` releases what `prepare` took.
//!
//! The binding exchange itself (empty SEND, path checks, responses) follows
//! the rules in `proto::transport`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use super::context::Context;
use super::error::{Error, ErrorKind};
use super::logger::{Level, LoggerRef, log};
use super::stream::{self, Conn};
use super::tls::{Fingerprint, PeerSlot, TlsSettings};
use super::transport::Transport;
use super::transport::shared::Registry;
use crate::proto::binding::{self, Answered, BIND_PART, FirstChunk, binding_send};
use crate::proto::ids;
use crate::proto::uri::{Host, Uri, format_path};

/// The default port of MSRP URIs without one (RFC 4975 §9 registers 2855 for msrp).
pub const DEFAULT_PORT: u16 = crate::proto::uri::DEFAULT_PORT;
/// Default for waits that the application does not bound itself.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Which side of the connection this connector takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Connects and sends the binding SEND (reference `ConnectorDirect`).
    Active,
    /// Listens and waits for the binding SEND (reference `AcceptorDirect`).
    Passive,
}

struct State {
    local: Option<Vec<Uri>>,
    listener: Option<std::net::TcpListener>,
    /// TLS server settings of the listener (an `msrps` local URI).
    server_tls: Option<Arc<rustls::ServerConfig>>,
    busy: bool,
    tls: Option<TlsSettings>,
    /// Where to connect instead of the first hop of the peer's path (CEMA).
    connect_to: Option<(Host, u16)>,
    /// Active: share connections to the same authority (RFC 4975 §5.4).
    share: Option<Arc<Registry>>,
}

/// A direct connector or acceptor.
pub struct Connector {
    ctx: Arc<Context>,
    role: Role,
    sessmatch: bool,
    logger: Option<LoggerRef>,
    state: Mutex<State>,
    cancel: Arc<Notify>,
    peer_fingerprint: PeerSlot,
}

/// The IP address of a URI's host, resolving names with the system resolver.
pub(crate) fn host_ip(host: &Host) -> Result<IpAddr, Error> {
    match host {
        Host::V4(a) => Ok(IpAddr::V4(*a)),
        Host::V6(a) => Ok(IpAddr::V6(*a)),
        Host::Name(n) => {
            use std::net::ToSocketAddrs;
            (n.as_str(), 0)
                .to_socket_addrs()
                .ok()
                .and_then(|mut it| it.next())
                .map(|a| a.ip())
                .ok_or_else(|| {
                    Error::new(
                        ErrorKind::ListenFailed,
                        format!("cannot resolve host name '{n}'"),
                    )
                })
        }
    }
}

/// Opens a listening socket for `uri` (port 0 picks a free port).
pub(crate) fn listen(uri: &Uri) -> Result<std::net::TcpListener, Error> {
    let addr = SocketAddr::new(host_ip(&uri.host)?, uri.port.unwrap_or(DEFAULT_PORT));
    let l = std::net::TcpListener::bind(addr).map_err(|e| {
        Error::new(
            ErrorKind::ListenFailed,
            format!("cannot listen on {addr}: {e}"),
        )
    })?;
    l.set_nonblocking(true)
        .map_err(|e| Error::new(ErrorKind::ListenFailed, e.to_string()))?;
    Ok(l)
}

/// Refuses a URI whose transport libmsrp does not carry (anything but
/// `tcp` and `ws`), so that it is never dialled or offered as something
/// else (`what` names the URI in the message).
pub(crate) fn check_transport(uri: &Uri, what: &str) -> Result<(), Error> {
    if uri.transport.eq_ignore_ascii_case("tcp") || is_ws(uri) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Unsupported,
        format!(
            "{what} uses the transport '{}': libmsrp carries MSRP over TCP and WebSocket (tcp, ws; msrp or msrps) only",
            uri.transport
        ),
    ))
}

/// Whether `uri` is reached over WebSocket (RFC 7977 §5.2.1: `;ws`; with
/// `msrps`, WebSocket over TLS).
pub(crate) fn is_ws(uri: &Uri) -> bool {
    uri.transport.eq_ignore_ascii_case("ws")
}

/// Connects to the first hop of `path`, with TLS when it is an `msrps`
/// URI: the server is checked by `peer` when given (any one passes),
/// otherwise by the CA roots of `settings` and the hop's host name.
pub(crate) async fn open_first_hop(
    path: &[Uri],
    settings: Option<&TlsSettings>,
    peer: Vec<Fingerprint>,
    connect_to: Option<&(Host, u16)>,
) -> Result<Conn, Error> {
    if let Some(first) = path.first() {
        check_transport(first, "the first hop of the remote path")?;
    }
    let tcp = match connect_to {
        Some((host, port)) => connect_host(host, *port).await?,
        None => connect_first_hop(path).await?,
    };
    let first = &path[0];
    let conn = if first.secure {
        let default = TlsSettings::default();
        stream::connect(
            tcp,
            settings.unwrap_or(&default),
            &first.host.to_string(),
            peer,
        )
        .await?
    } else {
        Conn::Tcp(tcp)
    };
    if is_ws(first) {
        return super::ws::connect(
            conn,
            &first.host.to_string(),
            first.port.unwrap_or(DEFAULT_PORT),
        )
        .await;
    }
    Ok(conn)
}

/// Connects to the first hop of `path`.
pub(crate) async fn connect_first_hop(path: &[Uri]) -> Result<TcpStream, Error> {
    let first = path
        .first()
        .ok_or_else(|| Error::new(ErrorKind::InvalidArgument, "the remote path is empty"))?;
    connect_host(&first.host, first.port.unwrap_or(DEFAULT_PORT)).await
}

/// Connects to `host` (resolved with the system's resolver) at `port`.
async fn connect_host(host: &Host, port: u16) -> Result<TcpStream, Error> {
    let addrs: Vec<SocketAddr> = match host {
        Host::V4(a) => vec![SocketAddr::new(IpAddr::V4(*a), port)],
        Host::V6(a) => vec![SocketAddr::new(IpAddr::V6(*a), port)],
        Host::Name(n) => tokio::net::lookup_host((n.as_str(), port))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::ConnectFailed,
                    format!("cannot resolve '{n}': {e}"),
                )
            })?
            .collect(),
    };
    let mut last = None;
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(format!("cannot connect to {a}: {e}")),
        }
    }
    Err(Error::new(
        ErrorKind::ConnectFailed,
        last.unwrap_or_else(|| format!("no address for {host}")),
    ))
}

/// What connections to the first hop `first` are shared by: the authority
/// (scheme, host, port), WebSocket or not, where we connect instead (CEMA),
/// and how the peer is checked and we are known over TLS.
fn share_key(
    first: &Uri,
    connect_to: Option<&(Host, u16)>,
    tls: Option<&TlsSettings>,
    peer: &[Fingerprint],
) -> String {
    let mut key = format!(
        "{}://{}:{};{}",
        if first.secure { "msrps" } else { "msrp" },
        first.host.to_string().to_ascii_lowercase(),
        first.port.unwrap_or(DEFAULT_PORT),
        if is_ws(first) { "ws" } else { "tcp" },
    );
    if let Some((h, p)) = connect_to {
        key += &format!(" via {h}:{p}");
    }
    if first.secure {
        key += &format!(
            " tls {}",
            tls.map(TlsSettings::identity).unwrap_or_default()
        );
        for f in peer {
            key += &format!(" fp {f}");
        }
    }
    key
}

/// Sends our binding SEND on `t` and waits for its response.
pub(crate) async fn bind_active(t: &Transport) -> Result<(), Error> {
    let bind = binding_send(t.local_path(), t.remote_path());
    t.write_chunk(&bind).await?;
    loop {
        let r = t.read_chunk(usize::MAX).await?;
        match binding::binding_answered(&bind, &r.chunk) {
            Answered::NotYet => t.log(
                Level::Warn,
                "ignoring a chunk received before the binding was answered",
            ),
            Answered::Bound => return Ok(()),
            Answered::Refused(why) => return Err(Error::new(ErrorKind::BindRejected, why)),
        }
    }
}

/// Connections a passive `complete` binds at once (see `accept_until_bound`).
const MAX_ATTEMPTS: usize = 16;
/// How long an accepted connection may take for its TLS handshake and
/// binding SEND before it is dropped (a real peer binds at once).
const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What one accepted connection needs to bind (runs as its own task).
struct Attempt {
    ctx: Arc<Context>,
    server_tls: Option<Arc<rustls::ServerConfig>>,
    peer_fp: Vec<Fingerprint>,
    local: Vec<Uri>,
    remote: Vec<Uri>,
    sessmatch: bool,
    logger: Option<LoggerRef>,
}

impl Attempt {
    async fn bind(self, stream: tokio::net::TcpStream) -> Result<Transport, Error> {
        let conn = match self.server_tls {
            Some(cfg) => {
                let conn = stream::accept(stream, cfg).await?;
                // The fingerprint may have been given after the
                // handshake started: check it again now.
                stream::check_peer(&conn, &self.peer_fp)?;
                conn
            }
            None => Conn::Tcp(stream),
        };
        // Our own URI (the last of our path) says whether peers come
        // over WebSocket.
        let conn = if self.local.last().is_some_and(is_ws) {
            super::ws::accept(conn).await?
        } else {
            conn
        };
        let t = Transport::start(
            &self.ctx,
            conn,
            self.local,
            self.remote,
            self.sessmatch,
            self.logger,
        );
        bind_passive(&t).await?;
        Ok(t)
    }
}

/// Waits for the binding SEND on `t`, checks its paths and answers it (a
/// binding that carries a body is answered by whoever reads it next).
pub(crate) async fn bind_passive(t: &Transport) -> Result<(), Error> {
    let r = t.read_chunk(BIND_PART).await?;
    match binding::judge_first(
        &r.chunk,
        r.complete,
        t.local_path(),
        t.remote_path(),
        t.sessmatch(),
    ) {
        FirstChunk::NotSend => Err(Error::new(
            ErrorKind::BindMismatch,
            "the first chunk on the connection was not a SEND",
        )),
        FirstChunk::Bound {
            carries_body: true, ..
        } => {
            t.unread(r).await;
            Ok(())
        }
        FirstChunk::Bound { reply, .. } => {
            if let Some(ok) = reply {
                // A peer that sent and closed at once cannot get the 200,
                // but what it sent is read: the transport delivers it, then
                // the close.
                if let Err(e) = t.write_chunk(&ok).await {
                    if !t.input_ended() {
                        return Err(e);
                    }
                }
            }
            Ok(())
        }
        FirstChunk::Refused { code, why, reply } => {
            if let Some(resp) = reply {
                let _ = t.write_chunk(&resp).await;
            }
            t.close();
            Err(Error::new(
                ErrorKind::BindMismatch,
                format!("binding refused with {code}: {why}"),
            ))
        }
    }
}

impl Connector {
    /// A new connector for `role`.
    pub fn new(
        ctx: &Arc<Context>,
        role: Role,
        sessmatch: bool,
        logger: Option<LoggerRef>,
    ) -> Connector {
        Connector {
            ctx: ctx.clone(),
            role,
            sessmatch,
            logger,
            state: Mutex::new(State {
                local: None,
                listener: None,
                server_tls: None,
                busy: false,
                tls: None,
                connect_to: None,
                share: None,
            }),
            cancel: Arc::new(Notify::new()),
            peer_fingerprint: PeerSlot::default(),
        }
    }

    /// TLS settings for `msrps` (our certificate, CA roots); taken by the
    /// next `prepare` (acceptor) or `complete` (connector).
    pub fn set_tls(&self, settings: TlsSettings) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).tls = Some(settings);
    }

    /// The fingerprint the peer's certificate must have (from its SDP
    /// `a=fingerprint`), replacing any given before; `None` goes back to CA
    /// verification.
    pub fn set_peer_fingerprint(&self, fp: Option<Fingerprint>) {
        *self
            .peer_fingerprint
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = fp.into_iter().collect();
    }

    /// Connect to `host` and `port` instead of the first hop of the peer's
    /// path (CEMA, RFC 6714 §4: the peer's `c=`/`m=` address, an SBC);
    /// `None` goes back to the path. The binding still uses the paths.
    pub fn set_connect_address(&self, to: Option<(Host, u16)>) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .connect_to = to;
    }

    /// Active: with `true`, `complete` binds on a connection of the context
    /// to the same authority (scheme, host, port, WebSocket or not, connect
    /// address, TLS settings and expected fingerprints) when one is open and
    /// has room, and otherwise opens one that later sessions may share (RFC
    /// 4975 §5.4). `false` (the default): a connection of the session's own.
    pub fn set_share(&self, share: bool) -> Result<(), Error> {
        if self.role != Role::Active {
            return Err(Error::new(
                ErrorKind::BadState,
                "connection sharing is chosen by the active side; a passive connector's peer decides (a server takes shared connections with its own option)",
            ));
        }
        self.state.lock().unwrap_or_else(|p| p.into_inner()).share =
            share.then(|| self.ctx.extension::<Registry>());
        Ok(())
    }

    /// One more fingerprint the peer's certificate may have (RFC 8122 §5:
    /// an SDP may give several; any one passes).
    pub fn add_peer_fingerprint(&self, fp: Fingerprint) {
        self.peer_fingerprint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(fp);
    }

    fn peer_fp(&self) -> Vec<Fingerprint> {
        self.peer_fingerprint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Reference `prepare`: fills in a session id when missing; for an
    /// acceptor also opens the listening socket and puts its real port in
    /// the URI. Without a URI: `msrp://127.0.0.1:9/<random>;tcp` for a
    /// connector (port 9 as RFC 6135 suggests for the active side) and
    /// `msrp://127.0.0.1:0/<random>;tcp` for an acceptor.
    pub fn prepare(&self, local: Option<Uri>) -> Result<Vec<Uri>, Error> {
        self.ctx.check_open()?;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.busy {
            return Err(Error::new(
                ErrorKind::BadState,
                "complete() is in progress on this connector",
            ));
        }
        let default_port = match self.role {
            Role::Active => 9,
            Role::Passive => 0,
        };
        let mut uri = local.unwrap_or_else(|| {
            Uri::new(
                false,
                Host::V4(Ipv4Addr::LOCALHOST),
                Some(default_port),
                None,
            )
        });
        check_transport(&uri, "the local URI")?;
        if uri.session_id.is_none() {
            uri.session_id = Some(ids::session_id());
        }
        st.listener = None;
        st.server_tls = None;
        if self.role == Role::Passive && uri.secure {
            let settings = st.tls.as_ref().ok_or_else(|| {
                Error::new(
                    ErrorKind::BadState,
                    "an msrps acceptor needs TLS settings with a certificate: call set_tls first",
                )
            })?;
            st.server_tls = Some(settings.server_config(self.peer_fingerprint.clone())?);
        }
        if self.role == Role::Passive {
            let l = listen(&uri)?;
            let port = l
                .local_addr()
                .map_err(|e| Error::new(ErrorKind::ListenFailed, e.to_string()))?
                .port();
            uri.port = Some(port);
            log(
                &self.logger,
                Level::Debug,
                &format!("listening on port {port} for {uri}"),
            );
            st.listener = Some(l);
        }
        let path = vec![uri];
        st.local = Some(path.clone());
        Ok(path)
    }

    /// Reference `complete`: connects and binds (active) or accepts and
    /// checks the binding (passive). The caller bounds the wait.
    pub async fn complete(&self, remote: Vec<Uri>) -> Result<Transport, Error> {
        self.complete_until(remote, None).await
    }

    /// As [`Connector::complete`]; a passive connector that has no bound
    /// connection by `deadline` fails with the reason its last attempt
    /// failed (a TLS or binding error), or with a timeout when none came.
    pub async fn complete_until(
        &self,
        remote: Vec<Uri>,
        deadline: Option<std::time::Instant>,
    ) -> Result<Transport, Error> {
        if remote.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "the remote path is empty",
            ));
        }
        let (local, listener) = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let local = st.local.clone().ok_or_else(|| {
                Error::new(ErrorKind::BadState, "call prepare() before complete()")
            })?;
            if st.busy {
                return Err(Error::new(
                    ErrorKind::BadState,
                    "complete() is already in progress",
                ));
            }
            st.busy = true;
            (
                local,
                (st.listener.take(), st.server_tls.take(), st.tls.clone()),
            )
        };
        let cancelled = self.cancel.notified();
        let work = self.run(local, remote, listener, deadline);
        let r = tokio::select! {
            r = work => r,
            _ = cancelled => Err(Error::closed("cleanup() was called while complete() was waiting")),
        };
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.busy = false;
        st.local = None;
        if let Err(e) = &r {
            log(&self.logger, Level::Warn, &format!("complete failed: {e}"));
        }
        r
    }

    async fn run(
        &self,
        local: Vec<Uri>,
        remote: Vec<Uri>,
        (listener, server_tls, tls): (
            Option<std::net::TcpListener>,
            Option<Arc<rustls::ServerConfig>>,
            Option<TlsSettings>,
        ),
        deadline: Option<std::time::Instant>,
    ) -> Result<Transport, Error> {
        let t = match self.role {
            Role::Active => {
                let (connect_to, share) = {
                    let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                    (st.connect_to.clone(), st.share.clone())
                };
                let peer = self.peer_fp();
                let first_hops = remote.clone();
                let connect =
                    open_first_hop(&first_hops, tls.as_ref(), peer.clone(), connect_to.as_ref());
                let t = match share {
                    Some(reg) => {
                        check_transport(&remote[0], "the first hop of the remote path")?;
                        let key = share_key(&remote[0], connect_to.as_ref(), tls.as_ref(), &peer);
                        let sid = local
                            .last()
                            .and_then(|u| u.session_id.clone())
                            .unwrap_or_default();
                        reg.member(
                            &self.ctx,
                            key,
                            &sid,
                            local,
                            remote,
                            self.sessmatch,
                            self.logger.clone(),
                            connect,
                        )
                        .await?
                    }
                    None => Transport::start(
                        &self.ctx,
                        connect.await?,
                        local,
                        remote,
                        self.sessmatch,
                        self.logger.clone(),
                    ),
                };
                bind_active(&t).await?;
                log(
                    &self.logger,
                    Level::Info,
                    &format!("bound to {}", format_path(t.remote_path())),
                );
                t
            }
            Role::Passive => {
                let l = listener.ok_or_else(|| {
                    Error::new(ErrorKind::BadState, "call prepare() before complete()")
                })?;
                let l = TcpListener::from_std(l)
                    .map_err(|e| Error::new(ErrorKind::ListenFailed, e.to_string()))?;
                self.accept_until_bound(l, server_tls, local, remote, deadline)
                    .await?
            }
        };
        Ok(t)
    }

    /// Accepts connections until one binds with the expected paths (the
    /// caller bounds the wait). A connection that sends garbage, binds with
    /// other paths (481) or fails its TLS handshake is closed and the
    /// next one is taken; one that says nothing is dropped after
    /// `ATTEMPT_TIMEOUT`. Several are handled at once (at most
    /// `MAX_ATTEMPTS`), so an idle one does not hold the real peer up.
    async fn accept_until_bound(
        &self,
        l: TcpListener,
        server_tls: Option<Arc<rustls::ServerConfig>>,
        local: Vec<Uri>,
        remote: Vec<Uri>,
        deadline: Option<std::time::Instant>,
    ) -> Result<Transport, Error> {
        let mut attempts = tokio::task::JoinSet::new();
        let mut last: Option<Error> = None;
        let until = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(until);
        loop {
            tokio::select! {
                _ = &mut until => {
                    return Err(match last {
                        Some(e) => Error::new(
                            e.kind,
                            format!("no connection bound in time; the last one failed: {}", e.msg),
                        ),
                        None => Error::new(ErrorKind::Timeout, "no connection bound in time"),
                    });
                }
                acc = l.accept(), if attempts.len() < MAX_ATTEMPTS => {
                    let (stream, peer) =
                        acc.map_err(|e| Error::new(ErrorKind::Io, format!("accept failed: {e}")))?;
                    log(
                        &self.logger,
                        Level::Debug,
                        &format!("accepted a connection from {peer}"),
                    );
                    let attempt = Attempt {
                        ctx: self.ctx.clone(),
                        server_tls: server_tls.clone(),
                        peer_fp: self.peer_fp(),
                        local: local.clone(),
                        remote: remote.clone(),
                        sessmatch: self.sessmatch,
                        logger: self.logger.clone(),
                    };
                    attempts.spawn(
                        async move {
                            tokio::time::timeout(ATTEMPT_TIMEOUT, attempt.bind(stream))
                                .await
                                .unwrap_or_else(|_| {
                                    Err(Error::new(
                                        ErrorKind::Timeout,
                                        "no binding SEND in time",
                                    ))
                                })
                                .map_err(|e| (peer, e))
                        },
                    );
                }
                Some(done) = attempts.join_next(), if !attempts.is_empty() => match done {
                    Ok(Ok(t)) => {
                        log(
                            &self.logger,
                            Level::Info,
                            &format!("bound from {}", format_path(t.remote_path())),
                        );
                        return Ok(t);
                    }
                    Ok(Err((peer, e))) => {
                        log(
                            &self.logger,
                            Level::Info,
                            &format!("connection from {peer} did not bind ({e}); still listening"),
                        );
                        last = Some(e);
                    }
                    Err(e) => log(&self.logger, Level::Warn, &format!("a binding attempt failed: {e}")),
                },
            }
        }
    }

    /// Reference `cleanup`: releases the listening socket and ends a waiting
    /// `complete` with "closed".
    pub fn cleanup(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.listener = None;
        st.server_tls = None;
        st.local = None;
        self.cancel.notify_waiters();
    }

    /// For an acceptor prepared with a path that an `actpass` offer
    /// carried, when the answer makes us active (RFC 6135 §4.2.2): a new
    /// active connector with the same local path, TLS settings, peer
    /// fingerprints, connect address and logger, prepared; this acceptor
    /// is cleaned up (its listening port closed).
    pub fn active_twin(&self) -> Result<Connector, Error> {
        let (local, tls, connect_to, share) = {
            let st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            (
                st.local.clone(),
                st.tls.clone(),
                st.connect_to.clone(),
                st.share.is_some(),
            )
        };
        let Some(uri) = local.and_then(|p| p.last().cloned()) else {
            return Err(Error::new(
                ErrorKind::BadState,
                "the connector was not prepared: its path is not known",
            ));
        };
        let twin = Connector::new(&self.ctx, Role::Active, self.sessmatch, self.logger.clone());
        if let Some(t) = tls {
            twin.set_tls(t);
        }
        twin.set_connect_address(connect_to);
        twin.set_share(share)?;
        for f in self.peer_fp() {
            twin.add_peer_fingerprint(f);
        }
        twin.prepare(Some(uri))?;
        self.cleanup();
        Ok(twin)
    }

    /// The context.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// A context with `workers` runtime threads and two transports connected
/// over loopback TCP (active, passive), for the crate's own tests.
#[cfg(test)]
pub(crate) fn loopback_context(
    workers: usize,
) -> (
    Arc<Context>,
    super::transport::Transport,
    super::transport::Transport,
) {
    let ctx = Context::new(super::context::ContextOptions {
        worker_threads: workers,
        ..Default::default()
    })
    .unwrap();
    let (a, p) = loopback_pair(&ctx);
    (ctx, a, p)
}

/// Two connected transports over loopback TCP (active, passive), for the
/// crate's own tests.
#[cfg(test)]
pub(crate) fn loopback_pair(
    ctx: &Arc<Context>,
) -> (super::transport::Transport, super::transport::Transport) {
    const T: std::time::Duration = std::time::Duration::from_secs(10);
    let acc = Arc::new(Connector::new(ctx, Role::Passive, false, None));
    let con = Connector::new(ctx, Role::Active, false, None);
    let a_path = acc.prepare(None).unwrap();
    let c_path = con.prepare(None).unwrap();
    let acc2 = acc.clone();
    let h = std::thread::spawn(move || acc2.context().clone().block_on(T, acc2.complete(c_path)));
    let active = ctx.block_on(T, con.complete(a_path)).unwrap();
    (active, h.join().unwrap().unwrap())
}
