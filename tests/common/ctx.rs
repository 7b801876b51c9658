//! The context the engine tests run on: two worker threads. Included with
//! `#[path]`.

use std::sync::Arc;

use msrp::engine::{Context, ContextOptions};

/// A context with two worker threads.
pub fn ctx() -> Arc<Context> {
    Context::new(ContextOptions {
        worker_threads: 2,
        ..Default::default()
    })
    .unwrap()
}
