//! Random identifiers: transaction ids, message ids and session ids.
//!
//! Session ids come straight from the operating system's generator (RFC 4975
//! §14.1 asks that they be hard to guess). Transaction and message ids only
//! need to be unique and unlikely to appear in a body, so they come from a
//! per-thread generator (wyrand) seeded from the operating system once per thread.

use std::cell::Cell;

const ALNUM: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Length of generated transaction ids: 16 letters and digits, about 95
/// random bits (python-msrplib uses 64). Every request and response
/// carries its id twice (start line and end-line), so the length shows in
/// every chunk's cost.
pub const TRANSACTION_ID_LEN: usize = 16;
/// Length of generated message ids (same reasoning).
pub const MESSAGE_ID_LEN: usize = 16;
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

fn fill_alnum(out: &mut [u8], mut next: impl FnMut() -> u64) {
    let mut left = 0;
    let mut bits = 0u64;
    for b in out {
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
}

/// A generated id kept inline (no allocation): transaction and message ids
/// are made for every chunk and message, and transaction ids key the
/// session's table of requests waiting for a response.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Id {
    len: u8,
    buf: [u8; 32],
}

impl Id {
    /// `s` as an inline id, when it has at most 32 bytes.
    pub fn new(s: &str) -> Option<Id> {
        let mut buf = [0u8; 32];
        buf.get_mut(..s.len())?.copy_from_slice(s.as_bytes());
        Some(Id {
            len: s.len() as u8,
            buf,
        })
    }

    fn random(n: usize) -> Id {
        let mut id = Id {
            len: n as u8,
            buf: [0u8; 32],
        };
        fill_alnum(&mut id.buf[..n], next_u64);
        id
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only ever built from a str or from ASCII letters and digits
        // (ASCII in practice: ids are RFC 4975 idents).
        super::chars::utf8(&self.buf[..self.len as usize]).unwrap_or_default()
    }
}

impl std::ops::Deref for Id {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

// Hashes as the str it holds, so maps keyed by `Id` can be searched by `&str`.
impl std::hash::Hash for Id {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl std::borrow::Borrow<str> for Id {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Debug for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fresh transaction id (16 alphanumeric characters).
pub fn transaction_id() -> Id {
    Id::random(TRANSACTION_ID_LEN)
}

/// A fresh message id (16 alphanumeric characters).
pub fn message_id() -> Id {
    Id::random(MESSAGE_ID_LEN)
}

/// A fresh session id from the operating system's generator.
pub fn session_id() -> String {
    let mut b = [0u8; SESSION_ID_LEN];
    fill_alnum(&mut b, || {
        let mut b = [0u8; 8];
        match getrandom::fill(&mut b) {
            Ok(()) => u64::from_le_bytes(b),
            Err(_) => next_u64(),
        }
    });
    String::from_utf8_lossy(&b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::header::is_ident;

    #[test]
    fn ids_are_valid_idents_and_differ() {
        let a = transaction_id();
        let b = transaction_id();
        assert_eq!(a.len(), TRANSACTION_ID_LEN);
        assert_eq!(message_id().len(), MESSAGE_ID_LEN);
        assert!(is_ident(&a) && is_ident(&b) && is_ident(&message_id()));
        assert_ne!(a, b);
        let s = session_id();
        assert_eq!(s.len(), SESSION_ID_LEN);
        assert!(s.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(s, session_id());
    }

    #[test]
    fn inline_ids_hold_up_to_32_bytes_and_are_found_by_str() {
        let max = "a".repeat(32);
        assert_eq!(Id::new(&max).map(|i| i.len()), Some(32));
        assert!(Id::new(&"a".repeat(33)).is_none());
        assert_eq!(Id::new("").map(|i| i.to_string()), Some(String::new()));
        let t = transaction_id();
        let mut m = crate::proto::fasthash::LocalMap::default();
        m.insert(t, 7);
        // Looked up by the text (Borrow<str>): hashes must agree.
        assert_eq!(m.get(t.as_str()), Some(&7));
        assert_eq!(m.get(&*t.to_string()), Some(&7));
        assert!(!m.contains_key("x"));
        assert_eq!(format!("{t:?}"), format!("{:?}", t.as_str()));
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
