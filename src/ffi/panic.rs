//! The panic boundary: every exported function runs its body through
//! [`run`] (fallible calls) or [`run_or`] (plain getters), so a panic never
//! unwinds into C. A caught panic becomes `MSRP_RESULT_PANIC` (or the
//! getter's documented fallback value) and a last-error message.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::error::{FfiError, msrp_result, set_last_error};

const PANIC_MSG: &str =
    "internal error in libmsrp (a bug; please report it with the steps that led to it)";

/// Runs a fallible body; errors become their code and set the last-error message.
pub(crate) fn run(f: impl FnOnce() -> Result<(), FfiError>) -> msrp_result {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => msrp_result::Ok,
        Ok(Err(e)) => {
            set_last_error(&e.msg);
            e.code
        }
        Err(_) => {
            set_last_error(PANIC_MSG);
            msrp_result::Panic
        }
    }
}

/// Runs an infallible body (a getter); a panic gives `fallback`.
pub(crate) fn run_or<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            set_last_error(PANIC_MSG);
            fallback
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_result_code_and_a_message() {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r = run(|| panic!("boom"));
        let v = run_or(7u32, || panic!("boom"));
        std::panic::set_hook(prev);
        assert_eq!(r, msrp_result::Panic);
        assert_eq!(v, 7);
        // SAFETY: the last-error pointer is a valid C string on this thread.
        let msg =
            unsafe { std::ffi::CStr::from_ptr(super::super::error::msrp_last_error_message()) };
        assert!(msg.to_str().unwrap().contains("internal error"));
    }

    #[test]
    fn errors_pass_through_with_their_code() {
        let r = run(|| Err(FfiError::new(msrp_result::NotFound, "nothing")));
        assert_eq!(r, msrp_result::NotFound);
        assert_eq!(run(|| Ok(())), msrp_result::Ok);
    }
}
