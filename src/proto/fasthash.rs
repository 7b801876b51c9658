//! A fast, non-cryptographic hash for maps whose keys this library makes
//! itself (message handles, transaction ids it generated). Keys that a peer
//! chooses (e.g. incoming Message-IDs) stay with the standard, randomly
//! seeded hasher, so a peer cannot aim collisions at us.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hasher over 8-byte words (one multiplication per word).
#[derive(Default, Clone, Copy)]
pub struct LocalHasher(u64);

const K: u64 = 0xf135_7aea_2e62_a9c5;

impl LocalHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(K).rotate_left(26);
    }
}

impl Hasher for LocalHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Spread the high bits down: hashbrown takes its control byte from the top.
        let h = self.0.wrapping_mul(K);
        h ^ (h >> 32)
    }
}

/// A map keyed by identifiers this library generated.
pub type LocalMap<K, V> = HashMap<K, V, BuildHasherDefault<LocalHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_and_string_keys_spread() {
        let mut m: LocalMap<u64, u64> = LocalMap::default();
        for i in 0..100_000u64 {
            m.insert(i, i * 2);
        }
        assert!((0..100_000u64).all(|i| m[&i] == i * 2));
        let mut s: LocalMap<String, usize> = LocalMap::default();
        for i in 0..10_000 {
            s.insert(format!("tid{i}"), i);
        }
        assert_eq!(s.len(), 10_000);
        assert_eq!(s["tid9999"], 9999);
        // Distinct short keys hash differently (the length is mixed in).
        let h = |b: &[u8]| {
            let mut x = LocalHasher::default();
            x.write(b);
            x.finish()
        };
        assert_ne!(h(b"a"), h(b"a\0"));
        assert_ne!(h(b""), h(b"\0"));
    }
}
