//! The C API: `extern "C"` functions declared in `include/msrp.h`.
//!
//! One file per handle type (`uri.rs`, `chunk.rs`, `decoder.rs`) plus the
//! shared plumbing (`error.rs`, `panic.rs`, `handle.rs`, `misc.rs`). Nothing
//! here holds protocol logic: functions check their arguments, call the core
//! in [`crate::proto`] and convert the result. Every body runs inside the
//! panic boundary of `panic.rs`.
//!
//! Conventions (also in docs/guide.md and at the top of the header): fallible
//! calls return `msrp_result`; out-parameters come last and are written only
//! on success; strings in are NUL-terminated UTF-8; strings out are allocated
//! and freed with `msrp_string_free`; bytes cross as pointer and length.

#![allow(non_camel_case_types)]

pub(crate) mod callback;
pub mod chunk;
pub mod composing;
pub mod connector;
pub mod context;
pub mod cpim;
pub mod decoder;
pub mod error;
pub(crate) mod handle;
pub mod im;
pub mod incoming;
pub mod logger;
pub mod message;
pub mod misc;
pub(crate) mod panic;
pub mod relay;
pub mod sdp;
pub mod sdp_file;
pub mod server;
pub mod session;
pub mod session_callbacks;
pub(crate) mod session_events;
pub mod tls;
pub mod transport;
pub mod uri;
