//! The connector behind an `msrp_connector` handle: a direct connector or
//! acceptor, or a relay connection, with the interface the reference gives
//! both (prepare, complete, cleanup).

use std::sync::Arc;
use std::time::Duration;

use super::connector::Connector;
use super::context::Context;
use super::error::Error;
use super::relay::RelayConnector;
use super::transport::Transport;
use crate::proto::uri::Uri;

/// A direct connector/acceptor or a relay connection behind one handle
/// type, as the reference gives them one interface.
#[derive(Clone)]
pub enum AnyConnector {
    /// A direct connector or acceptor.
    Direct(Arc<Connector>),
    /// A connection through our relay.
    Relay(Arc<RelayConnector>),
}

impl AnyConnector {
    /// The context.
    pub fn context(&self) -> &Arc<Context> {
        match self {
            AnyConnector::Direct(c) => c.context(),
            AnyConnector::Relay(r) => r.context(),
        }
    }

    /// Reference `prepare`: the full local path for SDP.
    pub async fn prepare(&self, local: Option<Uri>) -> Result<Vec<Uri>, Error> {
        match self {
            AnyConnector::Direct(c) => c.prepare(local),
            AnyConnector::Relay(r) => r.prepare(local).await,
        }
    }

    /// `complete` with the caller's wait: a direct passive connector then
    /// reports why its last attempt failed rather than only "timed out".
    pub async fn complete(&self, remote: Vec<Uri>, wait: Duration) -> Result<Transport, Error> {
        match self {
            AnyConnector::Direct(c) => {
                let deadline = std::time::Instant::now() + wait;
                c.complete_until(remote, Some(deadline)).await
            }
            AnyConnector::Relay(r) => r.complete(remote).await,
        }
    }

    /// Reference `cleanup`: closes what `complete` will not take.
    pub fn cleanup(&self) {
        match self {
            AnyConnector::Direct(c) => c.cleanup(),
            AnyConnector::Relay(r) => r.cleanup(),
        }
    }
}
