//! Recycled buffers for large chunk bodies.
//!
//! A bulk transfer allocates a body buffer for every chunk it sends or
//! receives and frees it a moment later, often on another thread. With
//! glibc's allocator a freed 64 KiB block at the top of the heap is handed
//! back to the kernel and the next one faults its pages in again; measured
//! on TLS bulk transfers that was about a tenth of the CPU time (page
//! faults, `brk` calls). Such buffers are kept here instead, up to
//! `KEEP_BYTES` in all: bodies read from the network and pieces read from
//! a file take one, freed chunks and written pieces give theirs back.

use std::sync::Mutex;

/// Smaller buffers are left to the allocator (its per-thread caches serve
/// them well).
const MIN: usize = 16 * 1024;
/// Largest buffer kept: a 256 KiB body and room for its end-line.
const MAX: usize = 256 * 1024 + 16 * 1024;
/// Most bytes kept (the buffers' capacities).
const KEEP_BYTES: usize = 1536 * 1024;

struct Pool {
    bufs: Vec<Vec<u8>>,
    bytes: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    bufs: Vec::new(),
    bytes: 0,
});

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|p| p.into_inner())
}

/// An empty vector with room for at least `n` bytes, recycled when one is
/// at hand. New ones are rounded up to 16 KiB so that they fit the next
/// request of about the same size.
pub fn take(n: usize) -> Vec<u8> {
    let mut v = take_used(n);
    v.clear();
    v
}

/// A vector of exactly `n` bytes to be overwritten (by a read): what they
/// hold is unspecified (bytes of an earlier use, or zeros). Only bytes no
/// earlier use touched are zeroed, so recycling a buffer costs no `memset`.
pub fn take_sized(n: usize) -> Vec<u8> {
    let mut v = take_used(n);
    if v.len() < n {
        v.resize(n, 0);
    } else {
        v.truncate(n);
    }
    v
}

/// A kept buffer with room for `n` bytes, as given back (its length is
/// how much of it was written), or a new empty one.
fn take_used(n: usize) -> Vec<u8> {
    if !(MIN..=MAX).contains(&n) {
        return Vec::with_capacity(n);
    }
    {
        let mut p = pool();
        if let Some(i) = p.bufs.iter().rposition(|v| v.capacity() >= n) {
            let v = p.bufs.swap_remove(i);
            p.bytes -= v.capacity();
            return v;
        }
    }
    Vec::with_capacity(n.div_ceil(MIN) * MIN)
}

/// Gives a buffer back for reuse when it is of a size worth keeping. A
/// full pool frees its oldest buffers to make room: what is given back now
/// is what is being used now. (Refusing the new one instead let buffers of
/// a size nobody asked for any more fill the pool for good: the bodies of
/// written 64 KiB chunks, which a reader of 64 KiB chunks, needing room for
/// the end-line too, cannot use, left every body read to the allocator,
/// which gave the memory back to the kernel and faulted it in again.)
pub fn give(v: Vec<u8>) {
    let cap = v.capacity();
    if !(MIN..=MAX).contains(&cap) {
        return;
    }
    // Freed after the lock is released.
    let mut evicted = Vec::new();
    {
        let mut p = pool();
        let mut drop_first = 0;
        while p.bytes + cap > KEEP_BYTES {
            let Some(old) = p.bufs.get(drop_first) else {
                break;
            };
            p.bytes -= old.capacity();
            drop_first += 1;
        }
        evicted.extend(p.bufs.drain(..drop_first));
        // Kept with its length: those bytes are initialised (see `take_sized`).
        p.bytes += cap;
        p.bufs.push(v);
    }
    drop(evicted);
}

/// Read buffers kept for connections that start reading again.
static READS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
/// Most read buffers kept (the two ends of a local transfer and a few more).
const KEEP_READS: usize = 4;

fn reads() -> std::sync::MutexGuard<'static, Vec<Vec<u8>>> {
    READS.lock().unwrap_or_else(|p| p.into_inner())
}

/// An empty read buffer with room for `n` bytes: the one given back last
/// when it is large enough (its memory is likely still in the cache), or
/// a new one. Read buffers have a pool of their own so that the many body
/// buffers of a transfer never push them out.
pub fn take_read(n: usize) -> Vec<u8> {
    let mut v = {
        let mut r = reads();
        match r.last() {
            Some(b) if b.capacity() >= n => r.pop(),
            _ => None,
        }
    }
    .unwrap_or_else(|| Vec::with_capacity(n));
    v.clear();
    v
}

/// Gives a read buffer back (a connection is waiting for data).
pub fn give_read(v: Vec<u8>) {
    if v.capacity() == 0 {
        return;
    }
    let mut r = reads();
    if r.len() < KEEP_READS {
        r.push(v);
    }
}

/// Bytes of a transparent huge page (x86-64, arm64 with 4 KiB pages).
const HUGE: usize = 2 * 1024 * 1024;

/// Asks the kernel for huge pages where `v` will grow from `from` bytes to
/// `to`: the 2 MiB regions of its capacity that begin at or after `from`
/// and before `to` (earlier ones are already touched). Large in-memory
/// messages otherwise take a page fault per 4 KiB on each side. Only for
/// buffers past `HUGE` already, so that the memory a peer makes us hold
/// stays within twice what it sent (a huge page is filled on first touch).
fn advise_huge(v: &Vec<u8>, from: usize, to: usize) {
    if from >= HUGE {
        huge_pages(v.as_ptr() as usize, v.capacity(), from, to);
    }
}

/// Writes `pieces` (`len` bytes in all) one after another into `buf` from
/// `offset` on, growing it as needed: bytes past its end are appended, not
/// zeroed first and then overwritten (that `memset` was 12 % of a receiver
/// of large messages in `perf`); only a gap before `offset` is zeroed. A
/// buffer past 2 MiB grows into huge pages (`advise_huge`).
pub fn put_at<'a>(
    buf: &mut Vec<u8>,
    offset: usize,
    len: usize,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) {
    let end = offset + len;
    if buf.len() < end {
        if buf.capacity() < end {
            buf.reserve(end - buf.len());
        }
        advise_huge(buf, buf.len(), end);
    }
    if offset > buf.len() {
        buf.resize(offset, 0);
    }
    let mut at = offset;
    for piece in pieces {
        // Over bytes already there, then on past the end.
        let over = buf.len().saturating_sub(at).min(piece.len());
        buf[at..at + over].copy_from_slice(&piece[..over]);
        buf.extend_from_slice(&piece[over..]);
        at += piece.len();
    }
}

/// `madvise(MADV_HUGEPAGE)` on `huge_range`. Linux only; elsewhere nothing.
/// (glibc's `glibc.malloc.hugetlb=1` tunable gives every large allocation
/// the same advice; this gives it only to large message bodies.)
fn huge_pages(base: usize, cap: usize, from: usize, to: usize) {
    #[cfg(target_os = "linux")]
    if let Some((start, end)) = huge_range(base, cap, from, to) {
        // SAFETY: advice on pages of an allocation we own; it changes how
        // they are backed, never what they hold.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (base, cap, from, to, huge_range);
}

/// The addresses of the whole 2 MiB regions of the allocation at `base` (of
/// `cap` bytes) that begin at or after byte `from` and before byte `to`
/// rounded up to a region: those the bytes up to `to` first touch.
fn huge_range(base: usize, cap: usize, from: usize, to: usize) -> Option<(usize, usize)> {
    let start = (base + from).next_multiple_of(HUGE);
    let end = (base + to.min(cap))
        .next_multiple_of(HUGE)
        .min((base + cap) / HUGE * HUGE);
    (end > start).then_some((start, end))
}

/// A copy of `data`, a large one in huge pages where the kernel has them
/// (all of it is written at once, so none of them holds unused bytes).
pub fn copy_of(data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len());
    if data.len() >= 2 * HUGE {
        huge_pages(v.as_ptr() as usize, v.capacity(), 0, data.len());
    }
    v.extend_from_slice(data);
    v
}

/// Buffers of one owner (a message read from an application's callback):
/// a buffer lent out as [`bytes::Bytes`] comes back here when its last
/// reference drops, so the bytes it still holds are only ever seen by the
/// same owner again, and need no zeroing before it is reused. Buffers from
/// the shared pool are zeroed when first taken. Holds at most
/// [`PRIVATE_KEEP`] buffers; more, and all of them once the owner is
/// gone, go to the shared pool.
pub struct Private {
    bufs: Mutex<Vec<Vec<u8>>>,
}

/// Most buffers a [`Private`] pool keeps (what its owner has in flight at
/// once is usually fewer: the pieces read ahead and those in socket buffers).
const PRIVATE_KEEP: usize = 8;

impl Private {
    /// An owner's empty pool.
    pub fn new() -> std::sync::Arc<Private> {
        std::sync::Arc::new(Private {
            bufs: Mutex::new(Vec::new()),
        })
    }

    fn bufs(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.bufs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Exactly `n` bytes to write into: a buffer of the owner's own, holding
    /// zeros or what the owner wrote into it before, else a zeroed one.
    pub fn take(&self, n: usize) -> Vec<u8> {
        let own = {
            let mut b = self.bufs();
            b.iter()
                .rposition(|v| v.capacity() >= n)
                .map(|i| b.swap_remove(i))
        };
        let mut v = own.unwrap_or_else(|| take(n));
        if v.len() >= n {
            v.truncate(n);
        } else {
            // Only bytes no use of the owner's wrote yet.
            v.resize(n, 0);
        }
        v
    }

    /// `v`'s first `len` bytes, shared; `v` comes back to this pool (with
    /// all it holds) when the last reference is dropped.
    pub fn lend(self: &std::sync::Arc<Self>, v: Vec<u8>, len: usize) -> bytes::Bytes {
        let mut b = bytes::Bytes::from_owner(Lent {
            v,
            home: std::sync::Arc::downgrade(self),
        });
        b.truncate(len);
        b
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        for v in std::mem::take(&mut *self.bufs()) {
            give(v);
        }
    }
}

/// A buffer lent out by a [`Private`] pool.
struct Lent {
    v: Vec<u8>,
    home: std::sync::Weak<Private>,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.v
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let v = std::mem::take(&mut self.v);
        if let Some(home) = self.home.upgrade() {
            let mut b = home.bufs();
            if b.len() < PRIVATE_KEEP {
                b.push(v);
                return;
            }
        }
        give(v);
    }
}

/// Frees the buffers kept (when a context is freed).
pub fn clear() {
    let kept = {
        let mut p = pool();
        p.bytes = 0;
        std::mem::take(&mut p.bufs)
    };
    drop(kept);
    let kept = std::mem::take(&mut *reads());
    drop(kept);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pieces land at their offset: over bytes already there, on past the
    /// end, and after a zeroed gap.
    #[test]
    fn put_at_overwrites_appends_and_fills_gaps() {
        let mut v = b"abcdef".to_vec();
        put_at(&mut v, 4, 4, [&b"XY"[..], b"ZW"]);
        assert_eq!(v, b"abcdXYZW");
        put_at(&mut v, 10, 2, [&b"!!"[..]]);
        assert_eq!(v, b"abcdXYZW\0\0!!");
        put_at(&mut v, 1, 3, [&b"1"[..], b"", b"23"]);
        assert_eq!(v, b"a123XYZW\0\0!!");
        put_at(&mut v, 12, 0, []);
        assert_eq!(v.len(), 12);
    }

    /// Huge pages are asked for only for whole 2 MiB regions inside the
    /// allocation that the growth touches first, never for the first one.
    #[test]
    fn huge_pages_cover_whole_regions_the_growth_touches_first() {
        const M: usize = 1024 * 1024;
        // An allocation 16 bytes past a region boundary, 20 MiB long.
        let base = 64 * HUGE + 16;
        // Growing from 3 MiB to 9 MiB: the regions starting at 4, 6 and
        // 8 MiB past the boundary (the one at 2 MiB is touched already).
        assert_eq!(
            huge_range(base, 20 * M, 3 * M, 9 * M),
            Some((66 * HUGE, 69 * HUGE))
        );
        // Never past the allocation's last whole region.
        assert_eq!(
            huge_range(base, 20 * M, 3 * M, 40 * M),
            Some((66 * HUGE, 74 * HUGE))
        );
        // Growth within one region already touched: nothing.
        assert_eq!(huge_range(base, 20 * M, 5 * M, 5 * M + 100), None);
        assert_eq!(huge_range(base, 20 * M, 4 * M, 4 * M), None);
        // A whole copy from byte 0: every whole region from the first
        // boundary on.
        assert_eq!(
            huge_range(base, 5 * M, 0, 5 * M),
            Some((65 * HUGE, 66 * HUGE))
        );
    }

    /// A private pool's buffer comes back when its last `Bytes` drops and
    /// is handed out again as it is (its owner's bytes, no zeroing); new
    /// bytes are zeros; a buffer dropped after its owner is gone is let
    /// go. (Sizes below `MIN`, so that the shared pool is not touched.)
    #[test]
    fn private_buffers_come_back_to_their_owner_only() {
        let own = Private::new();
        let mut v = own.take(1000);
        assert!(v.len() == 1000 && v.iter().all(|&b| b == 0));
        v.fill(7);
        // (A buffer given back shorter than it was: only what it holds is kept.)
        v.truncate(800);
        let at = v.as_ptr();
        let b = own.lend(v, 600);
        assert_eq!(&b[..], &[7u8; 600][..]);
        let half = b.slice(..300);
        drop(b);
        assert!(own.bufs().is_empty(), "a piece of it is still out");
        drop(half);
        // Back, with its bytes; asked for more, the rest is zeros.
        let again = own.take(1000);
        assert_eq!(again.as_ptr(), at);
        assert!(again[..800].iter().all(|&b| b == 7));
        assert!(again[800..].iter().all(|&b| b == 0));
        // Another owner never gets it.
        let other = Private::new();
        let lent = own.lend(again, 10);
        drop(lent);
        let theirs = other.take(1000);
        assert_ne!(theirs.as_ptr(), at);
        assert!(theirs.iter().all(|&b| b == 0));
        // At most PRIVATE_KEEP come back; the owner gone, lent ones are let go.
        let many: Vec<_> = (0..PRIVATE_KEEP + 2)
            .map(|_| own.lend(own.take(100), 100))
            .collect();
        drop(many);
        assert_eq!(own.bufs().len(), PRIVATE_KEEP);
        let late = own.lend(own.take(100), 100);
        drop(own);
        drop(late);
    }

    fn kept() -> (usize, usize) {
        let p = pool();
        (p.bufs.len(), p.bytes)
    }

    #[test]
    fn keeps_mid_sized_buffers_up_to_a_bound_and_hands_them_out_empty() {
        // The only test that touches the global pool, so counts are exact.
        clear();
        give(Vec::with_capacity(MIN - 1));
        give(Vec::with_capacity(MAX + 1));
        assert_eq!(kept(), (0, 0), "too small and too large are freed");
        let mut v = Vec::with_capacity(64 * 1024);
        v.extend_from_slice(b"old bytes");
        let p = v.as_ptr();
        give(v);
        assert_eq!(kept().0, 1);
        // Too small for this request: a new one (rounded up), the kept one stays.
        let big = take(64 * 1024 + 48);
        assert_eq!(big.capacity(), 80 * 1024);
        assert_eq!(kept().0, 1);
        let w = take(32 * 1024);
        assert!(w.is_empty() && w.capacity() >= 32 * 1024);
        assert_eq!(w.as_ptr(), p, "the same buffer comes back");
        assert_eq!(kept(), (0, 0));
        for _ in 0..KEEP_BYTES / (64 * 1024) + 3 {
            give(Vec::with_capacity(64 * 1024));
        }
        assert_eq!(kept().1, KEEP_BYTES, "bounded by bytes");
        assert!(take(100).capacity() >= 100);
        assert_eq!(
            kept().1,
            KEEP_BYTES,
            "small requests do not take from the pool"
        );
        // Full of buffers too small for the request of the moment: the
        // newest given back is kept, the oldest make room (bounded still).
        let v = Vec::with_capacity(80 * 1024);
        let p80 = v.as_ptr();
        give(v);
        assert_eq!(kept().1, KEEP_BYTES - 64 * 1024 + 80 * 1024 - 64 * 1024);
        assert!(kept().1 <= KEEP_BYTES);
        let got = take(64 * 1024 + 48);
        assert_eq!(got.as_ptr(), p80, "the newest is kept");
        drop(got);
        clear();
        // A chunk's copy (made for every write of a chunk the application
        // keeps) takes its body buffer from the pool.
        let v = Vec::with_capacity(80 * 1024);
        let p80 = v.as_ptr();
        give(v);
        let mut c = crate::proto::Chunk::request("SEND").expect("chunk");
        c.set_data(&[5u8; 64 * 1024]);
        let copy = c.clone();
        assert_eq!(copy.data().as_ptr(), p80, "recycled");
        assert!(copy == c, "an equal chunk");
        assert_eq!(kept(), (0, 0));
        clear();
        assert_eq!(kept(), (0, 0));
        // Sized: exactly n bytes; a recycled buffer keeps what was written
        // (no memset), and only bytes never written are zeroed.
        let mut v = Vec::with_capacity(64 * 1024);
        v.resize(20 * 1024, 7u8);
        give(v);
        let s = take_sized(32 * 1024);
        assert_eq!(s.len(), 32 * 1024);
        assert!(s[..20 * 1024].iter().all(|&b| b == 7));
        assert!(s[20 * 1024..].iter().all(|&b| b == 0));
        give(s);
        let s = take_sized(16 * 1024);
        assert_eq!(s.len(), 16 * 1024, "longer kept buffers are cut to n");
        give(s);
        assert!(
            take(16 * 1024).is_empty(),
            "take still hands out empty ones"
        );
        assert_eq!(take_sized(300 * 1024).len(), 300 * 1024);
        clear();
        // Read buffers: a bounded pool of their own, last in first out.
        let mut a = take_read(1000);
        assert!(a.capacity() >= 1000);
        a.extend_from_slice(b"read");
        let pa = a.as_ptr();
        give_read(a);
        assert!(kept().0 == 0, "not in the body pool");
        let a = take_read(1000);
        assert_eq!(a.as_ptr(), pa, "the same buffer comes back");
        assert!(a.is_empty(), "handed out empty");
        give_read(a);
        assert!(take_read(2000).capacity() >= 2000, "too small: a new one");
        for _ in 0..KEEP_READS + 3 {
            give_read(Vec::with_capacity(10));
        }
        assert_eq!(reads().len(), KEEP_READS, "bounded");
        clear();
        assert!(reads().is_empty());
    }
}
