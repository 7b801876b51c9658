//! Relay connections (RFC 4976; reference `MSRPRelaySettings` and
//! `RelayConnection`): connect to our relay (given, or found by SRV), AUTH
//! with digest credentials, take the relay's Use-Path as the first hop of
//! our path, keep the AUTH fresh before Expires runs out, then bind through
//! the relay as the active or passive side.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use super::connector::{Role, bind_active, bind_passive};
use super::context::Context;
use super::dns::{RELAY_PORT, RelayAddress};
use super::error::{Error, ErrorKind};
use super::logger::{Level, LoggerRef, log};
use super::stream::{self, Conn};
use super::tls::{Fingerprint, TlsSettings};
use super::transport::{Requester, Transport};
use crate::proto::ids;
use crate::proto::relay::{
    AuthExchange, AuthFailure, AuthGranted, AuthRefresh, AuthStep, refresh_after,
};
use crate::proto::uri::{Host, Uri, format_path};

/// How to reach and log in to our relay (reference `MSRPRelaySettings`).
#[derive(Clone, Debug, Default)]
pub struct RelaySettings {
    /// The domain: SRV `_msrps._tcp.<domain>` / `_msrp._tcp.<domain>` is
    /// looked up when `host` is not given.
    pub domain: String,
    /// The digest user name.
    pub username: String,
    /// The digest password.
    pub password: String,
    /// The relay's host (name or address); skips discovery.
    pub host: Option<String>,
    /// The relay's port (default 2855).
    pub port: Option<u16>,
    /// Connect with TLS (`msrps`), as RFC 4976 asks.
    pub use_tls: bool,
    /// Reach the relay over WebSocket (RFC 7977; WSS with `use_tls`): the
    /// relay's URI and ours carry `;ws`. Other hops reach the relay by its
    /// Use-Path, whatever transport that names.
    pub websocket: bool,
    /// TLS settings (CA roots, our certificate) for `msrps`.
    pub tls: Option<TlsSettings>,
    /// The relay certificate's fingerprint, instead of CA verification.
    pub fingerprint: Option<Fingerprint>,
    /// The Expires to ask for (seconds); `None` takes the relay's default.
    pub expires: Option<u64>,
    /// Refresh the AUTH before it expires (default on).
    pub no_refresh: bool,
    /// DNS server for discovery (tests point it at a server on loopback);
    /// `None` uses the system's resolver configuration.
    pub nameserver: Option<SocketAddr>,
}

/// The relay addresses to try, in order: the given host, or SRV records
/// (priority, then weight), or the domain itself on port 2855.
pub async fn discover(s: &RelaySettings) -> Result<Vec<RelayAddress>, Error> {
    if let Some(h) = &s.host {
        return Ok(vec![RelayAddress {
            host: h.clone(),
            port: s.port.unwrap_or(RELAY_PORT),
            addrs: Vec::new(),
        }]);
    }
    if s.domain.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "the relay settings need a host or a domain",
        ));
    }
    super::dns::relay_targets(&s.domain, s.use_tls, s.port, s.nameserver).await
}

/// Authenticates on `req` (a connection to the relay at `relay`): carries
/// the requests and responses of an [`AuthExchange`] (RFC 4976 §5.1).
async fn authenticate(
    req: &Requester,
    relay: &Uri,
    local: &Uri,
    s: &RelaySettings,
    logger: &Option<LoggerRef>,
) -> Result<AuthGranted, Error> {
    let mut x = AuthExchange::new(
        relay.clone(),
        local.clone(),
        &s.username,
        &s.password,
        s.expires,
    );
    let mut next = x.request();
    loop {
        let resp = req.request(&next).await?;
        next = match x.on_response(&resp) {
            AuthStep::Send(r) => r,
            AuthStep::Retry423 { request, expires } => {
                log(
                    logger,
                    Level::Info,
                    &format!("relay {relay} wants another Expires (423): asking for {expires}"),
                );
                request
            }
            AuthStep::Done(g) => {
                log(
                    logger,
                    Level::Info,
                    &format!(
                        "relay {relay} accepted AUTH: Use-Path {}, Expires {}",
                        format_path(&g.use_path),
                        g.expires
                    ),
                );
                return Ok(g);
            }
            AuthStep::Failed(AuthFailure::Refused(m)) => {
                return Err(Error::new(ErrorKind::AuthFailed, m));
            }
            AuthStep::Failed(AuthFailure::Protocol(m)) => {
                return Err(Error::new(ErrorKind::Protocol, m));
            }
        };
    }
}

struct State {
    transport: Option<Transport>,
    local: Option<Vec<Uri>>,
    refresher: Option<AbortHandle>,
    busy: bool,
}

/// A connection through our relay (reference `RelayConnection`), active or
/// passive.
pub struct RelayConnector {
    ctx: Arc<Context>,
    role: Role,
    sessmatch: bool,
    logger: Option<LoggerRef>,
    settings: RelaySettings,
    state: Mutex<State>,
    cancel: Arc<Notify>,
}

async fn connect_to(addr: &RelayAddress) -> Result<TcpStream, Error> {
    let targets: Vec<SocketAddr> = match addr.host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, addr.port)],
        Err(_) if !addr.addrs.is_empty() => addr
            .addrs
            .iter()
            .map(|ip| SocketAddr::new(*ip, addr.port))
            .collect(),
        Err(_) => tokio::net::lookup_host((addr.host.as_str(), addr.port))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::ConnectFailed,
                    format!("cannot resolve relay host '{}': {e}", addr.host),
                )
            })?
            .collect(),
    };
    let mut last = format!("no address for relay host '{}'", addr.host);
    for t in targets {
        match TcpStream::connect(t).await {
            Ok(s) => return Ok(s),
            Err(e) => last = format!("cannot connect to relay {t}: {e}"),
        }
    }
    Err(Error::new(ErrorKind::ConnectFailed, last))
}

impl RelayConnector {
    /// A relay connection for `role` with `settings`.
    pub fn new(
        ctx: &Arc<Context>,
        role: Role,
        sessmatch: bool,
        logger: Option<LoggerRef>,
        settings: RelaySettings,
    ) -> RelayConnector {
        RelayConnector {
            ctx: ctx.clone(),
            role,
            sessmatch,
            logger,
            settings,
            state: Mutex::new(State {
                transport: None,
                local: None,
                refresher: None,
                busy: false,
            }),
            cancel: Arc::new(Notify::new()),
        }
    }

    /// Whether this side sends the binding SEND (active) or waits for it.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The context.
    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// Marks a `prepare` or `complete` as running (one at a time), after
    /// `take` got what it needs from the state; the mark goes with the
    /// returned guard, also when the call is dropped unfinished (timed out).
    fn enter<T>(
        &self,
        take: impl FnOnce(&mut State) -> Result<T, Error>,
    ) -> Result<(Busy<'_>, T), Error> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.busy {
            return Err(Error::new(
                ErrorKind::BadState,
                "prepare() or complete() is already in progress",
            ));
        }
        let v = take(&mut st)?;
        st.busy = true;
        Ok((Busy(&self.state), v))
    }

    /// Reference `prepare`: connects to the relay, authenticates, and
    /// returns the full local path for SDP (the relay's Use-Path, then our
    /// own URI). `local` gives our URI's session id (and host); by default
    /// the connection's local address and a random session id. The caller
    /// bounds the wait.
    pub async fn prepare(&self, local: Option<Uri>) -> Result<Vec<Uri>, Error> {
        self.ctx.check_open()?;
        let busy = self.enter(|_| Ok(()))?.0;
        let cancelled = self.cancel.notified();
        let r = tokio::select! {
            r = self.connect_and_auth(local) => r,
            _ = cancelled => Err(Error::closed("cleanup() was called while prepare() was waiting")),
        };
        drop(busy);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match r {
            Ok((t, path, refresher)) => {
                if let Some(old) = st.refresher.take() {
                    old.abort();
                }
                st.transport = Some(t);
                st.local = Some(path.clone());
                st.refresher = refresher;
                Ok(path)
            }
            Err(e) => {
                log(
                    &self.logger,
                    Level::Warn,
                    &format!("relay prepare failed: {e}"),
                );
                Err(e)
            }
        }
    }

    async fn connect_and_auth(
        &self,
        local: Option<Uri>,
    ) -> Result<(Transport, Vec<Uri>, Option<AbortHandle>), Error> {
        let s = &self.settings;
        let targets = discover(s).await?;
        let mut last = None;
        for addr in &targets {
            match self.try_relay(addr, local.clone()).await {
                Ok(r) => return Ok(r),
                // Only connection failures move on to the next relay.
                Err(e) if e.kind == ErrorKind::ConnectFailed => {
                    log(&self.logger, Level::Info, &e.msg);
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::new(ErrorKind::ConnectFailed, "no relay found")))
    }

    async fn try_relay(
        &self,
        addr: &RelayAddress,
        local: Option<Uri>,
    ) -> Result<(Transport, Vec<Uri>, Option<AbortHandle>), Error> {
        let s = &self.settings;
        let tcp = connect_to(addr).await?;
        let local_addr = tcp
            .local_addr()
            .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
        let conn = if s.use_tls {
            let default = TlsSettings::default();
            stream::connect(
                tcp,
                s.tls.as_ref().unwrap_or(&default),
                &addr.host,
                s.fingerprint.clone().into_iter().collect(),
            )
            .await?
        } else {
            Conn::Tcp(tcp)
        };
        let conn = if s.websocket {
            super::ws::connect(conn, &addr.host, addr.port).await?
        } else {
            conn
        };
        let relay_host = match addr.host.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => Host::V4(a),
            Ok(IpAddr::V6(a)) => Host::V6(a),
            Err(_) => Host::Name(addr.host.clone()),
        };
        let mut relay_uri = Uri::new(s.use_tls, relay_host, Some(addr.port), None);
        if s.websocket {
            relay_uri.transport = "ws".into();
        }
        let mut me = local.unwrap_or_else(|| {
            let host = match local_addr.ip() {
                IpAddr::V4(a) => Host::V4(a),
                IpAddr::V6(a) => Host::V6(a),
            };
            let mut u = Uri::new(s.use_tls, host, Some(local_addr.port()), None);
            if s.websocket {
                u.transport = "ws".into();
            }
            u
        });
        if me.session_id.is_none() {
            me.session_id = Some(ids::session_id());
        }
        let mut t = Transport::start(
            &self.ctx,
            conn,
            vec![me.clone()],
            vec![relay_uri.clone()],
            self.sessmatch,
            self.logger.clone(),
        );
        let req = t.requester();
        let auth = tokio::time::timeout(
            super::connector::DEFAULT_TIMEOUT,
            authenticate(&req, &relay_uri, &me, s, &self.logger),
        )
        .await
        .map_err(|_| Error::new(ErrorKind::Timeout, "the relay did not answer AUTH in time"))??;
        let mut path = auth.use_path.clone();
        path.push(me);
        t.set_paths(path.clone(), Vec::new());
        let refresher = (!s.no_refresh).then(|| {
            let settings = s.clone();
            let logger = self.logger.clone();
            let local = path.last().cloned().expect("our URI");
            self.ctx.spawn(refresh_loop(
                req,
                relay_uri,
                local,
                settings,
                logger,
                auth.clone(),
            ))
        });
        Ok((t, path, refresher.flatten()))
    }

    /// Reference `complete`: binds through the relay (active: sends the
    /// binding SEND; passive: waits for it) and gives the transport. The
    /// AUTH keeps being refreshed while the transport lives.
    pub async fn complete(&self, remote: Vec<Uri>) -> Result<Transport, Error> {
        if remote.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "the remote path is empty",
            ));
        }
        let (busy, (mut t, local)) = self.enter(|st| {
            let t = st.transport.take().ok_or_else(|| {
                Error::new(ErrorKind::BadState, "call prepare() before complete()")
            })?;
            Ok((t, st.local.take().expect("set with the transport")))
        })?;
        t.set_paths(local, remote);
        let cancelled = self.cancel.notified();
        let r = tokio::select! {
            r = async {
                match self.role {
                    Role::Active => bind_active(&t).await,
                    Role::Passive => bind_passive(&t).await,
                }
            } => r,
            _ = cancelled => Err(Error::closed("cleanup() was called while complete() was waiting")),
        };
        drop(busy);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match r {
            Ok(()) => {
                log(
                    &self.logger,
                    Level::Info,
                    &format!(
                        "bound through the relay with {}",
                        format_path(t.remote_path())
                    ),
                );
                // The refresher now lives as long as the connection.
                st.refresher = None;
                Ok(t)
            }
            Err(e) => {
                if let Some(h) = st.refresher.take() {
                    h.abort();
                }
                t.close();
                Err(e)
            }
        }
    }

    /// Reference `cleanup`: closes the relay connection when `complete`
    /// will not be called, and ends a waiting `prepare`/`complete`.
    pub fn cleanup(&self) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = st.transport.take() {
            t.close();
        }
        if let Some(h) = st.refresher.take() {
            h.abort();
        }
        st.local = None;
        self.cancel.notify_waiters();
    }
}

/// A running `prepare` or `complete` (see `RelayConnector::enter`).
struct Busy<'a>(&'a Mutex<State>);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).busy = false;
    }
}

impl Drop for RelayConnector {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Refreshes the AUTH over the same connection before it expires, for as
/// long as the connection lives (the rules are [`AuthRefresh`]'s).
async fn refresh_loop(
    req: Requester,
    relay: Uri,
    local: Uri,
    settings: RelaySettings,
    logger: Option<LoggerRef>,
    granted: AuthGranted,
) {
    let mut s = settings;
    let mut refresh = AuthRefresh::new(&granted);
    loop {
        tokio::time::sleep(refresh.delay()).await;
        if req.is_closed() {
            return;
        }
        s.expires = Some(refresh.expires());
        match tokio::time::timeout(
            super::connector::DEFAULT_TIMEOUT,
            authenticate(&req, &relay, &local, &s, &logger),
        )
        .await
        {
            Ok(Ok(a)) => {
                log(
                    &logger,
                    Level::Debug,
                    &format!("AUTH refreshed with {relay}: Expires {}", a.expires),
                );
                if let Some(warning) = refresh.granted(&a) {
                    log(&logger, Level::Warn, &warning);
                }
            }
            Ok(Err(e)) => {
                log(&logger, Level::Warn, &format!("AUTH refresh failed: {e}"));
                if req.is_closed() {
                    return;
                }
                refresh.failed();
            }
            Err(_) => {
                log(
                    &logger,
                    Level::Warn,
                    "AUTH refresh: the relay did not answer in time",
                );
                refresh.failed();
            }
        }
    }
}

/// How long a refresh waits at most (exposed for tests).
pub fn refresh_delay(expires: u64) -> Duration {
    refresh_after(expires)
}
