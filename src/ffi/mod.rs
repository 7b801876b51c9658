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

// In workflow order: cbindgen writes the header's functions in the order it
// reads these modules, so the header reads as a manual (results and
// strings, the context and logging, TLS, connectors and the server, the
// transport, sessions and messages, instant messaging, SDP, then the wire
// core: chunks, URIs, the decoder). Blank lines keep rustfmt from sorting.
pub mod error;

pub mod misc;

pub mod context;

pub mod logger;

pub mod tls;

pub mod connector;

pub mod relay;

pub mod server;

pub mod transport;

pub mod session;

pub mod session_callbacks;

pub mod message;

pub mod incoming;

pub mod cpim;

pub mod im;

pub mod composing;

pub mod sdp;

pub mod sdp_file;

pub mod chunk;

pub mod uri;

pub mod decoder;

pub(crate) mod callback;
pub(crate) mod handle;
pub(crate) mod panic;
pub(crate) mod session_events;
