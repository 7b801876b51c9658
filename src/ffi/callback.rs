//! One-shot C callbacks: a callback with its userdata that fires exactly
//! once, with the operation's result, or with `MSRP_RESULT_CLOSED` when the
//! operation is dropped first (its object or the context was freed).
//! Delivery goes through the context (direct or queued).

use std::ffi::{CString, c_void};
use std::sync::Arc;

use super::error::{FfiError, msrp_result};
use crate::engine::Context;

/// Userdata pointer carried to another thread. The application promised,
/// by passing it, that its callback may use it from libmsrp's threads.
#[derive(Clone, Copy)]
pub(crate) struct UserData(pub(crate) *mut c_void);

// SAFETY: the pointer is only handed back to the application's callback;
// libmsrp never dereferences it. The header documents the thread it runs on.
unsafe impl Send for UserData {}

impl UserData {
    /// The pointer (a method, so that closures capture the `Send` wrapper).
    pub(crate) fn ptr(self) -> *mut c_void {
        self.0
    }
}

type Fire<T> = Box<dyn FnOnce(Result<T, FfiError>) + Send>;

/// Fires once: through [`Once::fire`], or with "closed" on drop.
pub(crate) struct Once<T: Send + 'static> {
    ctx: Arc<Context>,
    f: Option<Fire<T>>,
}

impl<T: Send + 'static> Once<T> {
    pub(crate) fn new(ctx: &Arc<Context>, f: Fire<T>) -> Once<T> {
        Once {
            ctx: ctx.clone(),
            f: Some(f),
        }
    }

    /// Runs `f` on the context's runtime for at most `wait` (a timeout
    /// error names `what`) and delivers its result: the one way the
    /// callback forms of blocking calls run.
    pub(crate) fn fire_within<F>(self, wait: std::time::Duration, what: &'static str, f: F)
    where
        F: std::future::Future<Output = Result<T, crate::engine::Error>> + Send + 'static,
    {
        let ctx = self.ctx.clone();
        ctx.spawn_within(wait, what, f, move |r| self.fire(r.map_err(FfiError::from)));
    }

    /// Delivers the result.
    pub(crate) fn fire(mut self, r: Result<T, FfiError>) {
        if let Some(f) = self.f.take() {
            self.ctx.deliver(move || f(r));
        }
    }
}

impl<T: Send + 'static> Drop for Once<T> {
    fn drop(&mut self) {
        if let Some(f) = self.f.take() {
            let closed = FfiError::new(
                msrp_result::Closed,
                "the operation was ended because its object or the context was freed",
            );
            self.ctx.deliver(move || f(Err(closed)));
        }
    }
}

/// The message to hand to a callback for an error (valid during the call).
pub(crate) fn message(e: &FfiError) -> CString {
    CString::new(e.msg.replace('\0', "\\0")).unwrap_or_default()
}

/// A C string for a callback argument: text from the library, with any NUL
/// shown as `\0` (a C string cannot hold one).
pub(crate) fn cstring(s: &str) -> std::ffi::CString {
    std::ffi::CString::new(s.replace('\0', "\\0")).unwrap_or_default()
}
