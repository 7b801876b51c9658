//! A SEND on a transport's paths carrying given bytes, for tests that write
//! chunks on transports they made. Included with `#[path]`.

use msrp::engine::transport::Transport;
use msrp::proto::Chunk;
use msrp::proto::transport::{ChunkParams, make_chunk};

/// A SEND on `t`'s paths carrying `data`.
pub fn body_chunk(t: &Transport, data: &[u8]) -> Chunk {
    make_chunk(
        t.local_path(),
        t.remote_path(),
        &ChunkParams {
            data,
            ..Default::default()
        },
    )
    .unwrap()
}
