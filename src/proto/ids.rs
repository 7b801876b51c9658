//! Random identifiers: transaction ids, message ids and session ids.
//!
//! Session ids come straight from the operating system's generator (RFC 4975
//! §14.1 asks that they be hard to guess). Transaction and message ids only
//! need to be unique and unlikely to appear in a body, so they come from a
//! per-thread generator (wyrand) seeded from the operating system once per thread.

use std::cell::Cell;

const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Length of generated transaction ids: the largest that RFC 4975 `ident` allows.
pub const TRANSACTION_ID_LEN: usize = 32;
/// Length of generated message ids.
pub const MESSAGE_ID_LEN: usize = 32;
/// Length of generated session ids (about 143 bits).
pub const SESSION_ID_LEN: usize = 24;

thread_local! {
    static STATE: Cell<u64> = const { Cell::new(0) };
}

fn os_seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // No OS randomness: fall back to the address of a stack value and the
        // time; ids stay unique enough for transaction and message ids.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return t ^ (&b as *const _ as u64);
    }
    u64::from_le_bytes(b) | 1
}

fn next_u64() -> u64 {
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            x = os_seed();
        }
        x = x.wrapping_add(0xa076_1d64_78bd_642f);
        s.set(x);
        let t = u128::from(x) * u128::from(x ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    })
}

fn fill_alnum(out: &mut String, n: usize, mut next: impl FnMut() -> u64) {
    let mut buf = [0u8; 64];
    let mut left = 0;
    let mut bits = 0u64;
    let mut done = 0;
    while done < n {
        let k = (n - done).min(buf.len());
        for b in &mut buf[..k] {
            if left == 0 {
                bits = next();
                left = 10; // 10 draws of 6 bits per u64
            }
            // 6 bits onto 62 symbols by multiply and shift (no division; two
            // symbols come twice as often, a harmless bias for these ids).
            *b = ALNUM[(((bits & 63) * 62) >> 6) as usize];
            bits >>= 6;
            left -= 1;
        }
        out.push_str(std::str::from_utf8(&buf[..k]).expect("ASCII"));
        done += k;
    }
}

/// A fresh transaction id (32 alphanumeric characters).
pub fn transaction_id() -> String {
    let mut s = String::new();
    fill_alnum(&mut s, TRANSACTION_ID_LEN, next_u64);
    s
}

/// A fresh message id (32 alphanumeric characters).
pub fn message_id() -> String {
    let mut s = String::new();
    fill_alnum(&mut s, MESSAGE_ID_LEN, next_u64);
    s
}

/// A fresh session id from the operating system's generator.
pub fn session_id() -> String {
    let mut s = String::new();
    fill_alnum(&mut s, SESSION_ID_LEN, || {
        let mut b = [0u8; 8];
        match getrandom::fill(&mut b) {
            Ok(()) => u64::from_le_bytes(b),
            Err(_) => next_u64(),
        }
    });
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::header::is_ident;

    #[test]
    fn ids_are_valid_idents_and_differ() {
        let a = transaction_id();
        let b = transaction_id();
        assert_eq!(a.len(), 32);
        assert!(is_ident(&a) && is_ident(&b) && is_ident(&message_id()));
        assert_ne!(a, b);
        let s = session_id();
        assert_eq!(s.len(), SESSION_ID_LEN);
        assert!(s.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(s, session_id());
    }

    #[test]
    fn all_alphabet_characters_appear() {
        let mut seen = [false; 128];
        for _ in 0..200 {
            for c in transaction_id().bytes() {
                seen[c as usize] = true;
            }
        }
        assert!(ALNUM.iter().all(|&c| seen[c as usize]));
    }
}
