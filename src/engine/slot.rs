//! A one-shot value handed from a runtime thread to an application thread
//! that waits for it with a timeout. Unlike a future driven by
//! `block_on`, the wait registers no runtime timer and wakes no runtime
//! thread: the only cross-thread wake is the one that delivers the value.
//!
//! A waiter may first check for the value without sleeping for a short
//! while ([`SpinHint`]): a sleeping thread is woken 10–20 µs after the
//! value is sent (futex wake and scheduling), which is as long again as a
//! round trip to a peer on the same host.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The longest a waiter checks for its value without sleeping.
pub const SPIN_MAX: Duration = Duration::from_micros(100);

/// How long the previous wait of a series took (a session's blocking
/// requests), to decide whether the next one busy-waits: only when that
/// wait ended within [`SPIN_MAX`], so a peer across a network (responses
/// in milliseconds) costs at most one busy-wait of `SPIN_MAX` after it got
/// slow, and none after that.
#[derive(Debug, Default)]
pub struct SpinHint {
    /// Microseconds; 0 before the first wait.
    last_us: AtomicU32,
}

impl SpinHint {
    /// How long the next wait may check without sleeping.
    pub fn budget(&self) -> Duration {
        let last = Duration::from_micros(u64::from(self.last_us.load(Ordering::Relaxed)));
        if last <= SPIN_MAX {
            SPIN_MAX
        } else {
            Duration::ZERO
        }
    }

    /// Notes how long a wait took.
    pub fn record(&self, took: Duration) {
        let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        self.last_us.store(us.max(1), Ordering::Relaxed);
    }
}

enum State<T> {
    Empty,
    Full(T),
    /// The sending side was dropped without a value.
    Gone,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    cv: Condvar,
    /// Set (after `state`) once `state` is no longer `Empty`: what a
    /// busy-waiting receiver reads without taking the lock.
    ready: AtomicBool,
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
        ready: AtomicBool::new(false),
    });
    (SlotTx(Some(s.clone())), SlotRx(s))
}

impl<T> SlotTx<T> {
    /// Hands `v` to the waiter.
    pub fn send(mut self, v: T) {
        if let Some(sh) = self.0.take() {
            *sh.state.lock().unwrap_or_else(|p| p.into_inner()) = State::Full(v);
            sh.ready.store(true, Ordering::Release);
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
            sh.ready.store(true, Ordering::Release);
            sh.cv.notify_one();
        }
    }
}

impl<T> SlotRx<T> {
    /// Waits at most `timeout` for the value, checking for it without
    /// sleeping during the first `spin` of that time.
    pub fn wait(self, timeout: Duration, spin: Duration) -> Result<T, SlotError> {
        let start = Instant::now();
        let until = start + timeout;
        let spin = spin.min(timeout);
        if !spin.is_zero() {
            let mut i = 0u32;
            while !self.0.ready.load(Ordering::Acquire) {
                std::hint::spin_loop();
                i = i.wrapping_add(1);
                // The clock is read now and then only: a read costs as much
                // as tens of spin hints.
                if i % 32 == 0 && start.elapsed() >= spin {
                    break;
                }
            }
        }
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
        assert_eq!(rx.wait(Duration::from_secs(5), Duration::ZERO), Ok(7));
        h.join().unwrap();
        let (tx, rx) = slot::<u32>();
        let t0 = Instant::now();
        assert_eq!(
            rx.wait(Duration::from_millis(50), Duration::ZERO),
            Err(SlotError::Timeout)
        );
        assert!(t0.elapsed() >= Duration::from_millis(50));
        drop(tx);
        let (tx, rx) = slot::<u32>();
        std::thread::spawn(move || drop(tx));
        assert_eq!(
            rx.wait(Duration::from_secs(5), Duration::ZERO),
            Err(SlotError::Gone)
        );
    }

    #[test]
    fn busy_wait_then_sleep() {
        // A busy-wait longer than the test sees the value as soon as it is
        // sent (else it would return only when its 5 s are over).
        let (tx, rx) = slot();
        let t0 = Instant::now();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(1u32);
        });
        assert_eq!(
            rx.wait(Duration::from_secs(10), Duration::from_secs(5)),
            Ok(1)
        );
        assert!(t0.elapsed() < Duration::from_secs(4));
        h.join().unwrap();
        // Sent after a short busy-wait: the waiter sleeps and is woken.
        let (tx, rx) = slot();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            tx.send(2u32);
        });
        assert_eq!(rx.wait(Duration::from_secs(5), SPIN_MAX), Ok(2));
        h.join().unwrap();
        // The sender dropped while the receiver busy-waits.
        let (tx, rx) = slot::<u32>();
        let t0 = Instant::now();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            drop(tx);
        });
        assert_eq!(
            rx.wait(Duration::from_secs(10), Duration::from_secs(5)),
            Err(SlotError::Gone)
        );
        assert!(t0.elapsed() < Duration::from_secs(4));
        h.join().unwrap();
        // A busy-wait longer than the timeout ends with the timeout.
        let (_tx, rx) = slot::<u32>();
        let t0 = Instant::now();
        assert_eq!(
            rx.wait(Duration::from_millis(20), Duration::from_secs(5)),
            Err(SlotError::Timeout)
        );
        assert!(t0.elapsed() < Duration::from_secs(4));
    }

    #[test]
    fn spin_hint_follows_the_last_wait() {
        let h = SpinHint::default();
        assert_eq!(h.budget(), SPIN_MAX, "no wait yet");
        h.record(Duration::from_micros(40));
        assert_eq!(h.budget(), SPIN_MAX);
        h.record(Duration::from_millis(3));
        assert_eq!(h.budget(), Duration::ZERO, "a slow peer: no busy-wait");
        h.record(SPIN_MAX);
        assert_eq!(h.budget(), SPIN_MAX);
        h.record(Duration::ZERO);
        assert_eq!(h.budget(), SPIN_MAX);
        h.record(Duration::from_secs(1 << 40));
        assert_eq!(h.budget(), Duration::ZERO);
    }
}
