//! The Tokio driver: runtime context, connections, listeners, connectors,
//! the shared-port server and loggers. It moves bytes and events between
//! sockets and the sans-IO core in [`crate::proto`]; it holds no protocol
//! rules of its own.

pub mod any_connector;
pub mod connector;
pub mod context;
pub mod dns;
pub mod error;
pub mod logger;
pub mod relay;
pub mod routes;
pub mod server;
pub mod session;
pub mod sink;
pub mod slot;
pub mod stream;
pub mod tls;
pub mod transport;
pub mod ws;

pub use context::{Context, ContextOptions, DeliveryMode};
pub use error::{Error, ErrorKind};
