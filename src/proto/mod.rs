//! The sans-IO protocol core: URIs, headers, chunks, the streaming decoder
//! and identifiers. Nothing here touches sockets, threads, Tokio or the
//! clock; time, when a later layer needs it here, comes in as an argument.
//! (The one shared thing is `bufpool`, a few recycled body buffers.)

#[doc(hidden)]
pub mod assembly;
pub mod binding;
pub mod bufpool;
mod chars;
pub mod chunk;
pub mod cpim;
pub mod decoder;
pub(crate) mod fasthash;
pub mod header;
pub mod ids;
pub mod imdn;
pub mod iscomposing;
pub mod negotiation;
pub mod relay;
pub mod sdp;
pub mod session;
pub mod share;
pub mod transport;
pub mod uri;
pub mod ws;
pub mod xml;

pub use chunk::{Chunk, ChunkError, Flag};
pub use decoder::{DecodeError, Decoder, Event, Limits};
pub use header::{
    ByteRange, ContentDisposition, DigestParams, HeaderError, HeaderName, ReportMode, Status,
};
pub use uri::{Host, Uri, UriError, UriRef};
