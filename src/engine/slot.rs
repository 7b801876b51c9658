//! A one-shot value handed from a runtime thread to an application thread
//! that waits for it with a timeout. Unlike a future driven by
//! `block_on`, the wait registers no runtime timer and wakes no runtime
//! thread: the only cross-thread wake is the one that delivers the value.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

enum State<T> {
    Empty,
    Full(T),
    /// The sending side was dropped without a value.
    Gone,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    cv: Condvar,
}

/// Sends the value (once). `None` once sent.
pub struct SlotTx<T>(Option<Arc<Shared<T>>>);

/// Waits for the value.
pub struct SlotRx<T>(Arc<Shared<T>>);

/// Why [`SlotRx::wait`] gave no value.
#[derive(Debug, PartialEq, Eq)]
pub enum SlotError {
    /// The timeout passed.
    Timeout,
    /// The sender was dropped without sending.
    Gone,
}

/// A new slot.
pub fn slot<T>() -> (SlotTx<T>, SlotRx<T>) {
    let s = Arc::new(Shared {
        state: Mutex::new(State::Empty),
        cv: Condvar::new(),
    });
    (SlotTx(Some(s.clone())), SlotRx(s))
}

impl<T> SlotTx<T> {
    /// Hands `v` to the waiter.
    pub fn send(mut self, v: T) {
        if let Some(sh) = self.0.take() {
            *sh.state.lock().unwrap_or_else(|p| p.into_inner()) = State::Full(v);
            // Notified after the lock is released, and not locked again
            // afterwards: the waiter takes the lock at once.
            sh.cv.notify_one();
        }
    }
}

impl<T> Drop for SlotTx<T> {
    fn drop(&mut self) {
        let Some(sh) = self.0.take() else { return };
        let mut st = sh.state.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(*st, State::Empty) {
            *st = State::Gone;
            drop(st);
            sh.cv.notify_one();
        }
    }
}

impl<T> SlotRx<T> {
    /// Waits at most `timeout` for the value.
    pub fn wait(self, timeout: Duration) -> Result<T, SlotError> {
        let until = Instant::now() + timeout;
        let mut st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            match std::mem::replace(&mut *st, State::Empty) {
                State::Full(v) => return Ok(v),
                State::Gone => return Err(SlotError::Gone),
                State::Empty => {}
            }
            let now = Instant::now();
            if now >= until {
                return Err(SlotError::Timeout);
            }
            st = self
                .0
                .cv
                .wait_timeout(st, until - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_timeout_and_gone() {
        let (tx, rx) = slot();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(7u32);
        });
        assert_eq!(rx.wait(Duration::from_secs(5)), Ok(7));
        h.join().unwrap();
        let (tx, rx) = slot::<u32>();
        let t0 = Instant::now();
        assert_eq!(rx.wait(Duration::from_millis(50)), Err(SlotError::Timeout));
        assert!(t0.elapsed() >= Duration::from_millis(50));
        drop(tx);
        let (tx, rx) = slot::<u32>();
        std::thread::spawn(move || drop(tx));
        assert_eq!(rx.wait(Duration::from_secs(5)), Err(SlotError::Gone));
    }
}
