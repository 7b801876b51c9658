//! Where an incoming message announced by the session goes while its
//! chunks arrive (the mirror of an outgoing file): memory, a file or an
//! application callback. Chunks may come out of order and overlap: every
//! write names its offset. The engine owns the file IO; the FFI only
//! builds a sink from the application's choice.

use std::collections::HashMap;
use std::io;
use std::sync::{Mutex, OnceLock, Weak};

use smallvec::SmallVec;

use super::session::SessionDriver;
use crate::proto::Chunk;

/// An application's writer: `(offset, bytes)`; an error stops the message.
pub type WriteFn = Box<dyn FnMut(u64, &[u8]) -> Result<(), String> + Send>;

/// Writes an announced message's bytes somewhere.
pub enum Sink {
    /// Reassembled in memory (the default), up to `limit` bytes.
    Memory {
        /// The bytes so far (zeros where nothing arrived yet).
        data: Vec<u8>,
        /// Most bytes it may hold.
        limit: u64,
    },
    /// Written to a file (a path opened for the message, or a duplicate of
    /// the application's descriptor), at the offsets the chunks give.
    File(std::fs::File),
    /// Handed to the application: `(offset, bytes)`; an error stops the message.
    Write(WriteFn),
}

/// Why a sink refused bytes.
#[derive(Debug)]
pub enum SinkError {
    /// A memory sink would pass its limit.
    TooLarge(u64),
    /// Writing failed.
    Io(String),
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkError::TooLarge(limit) => write!(
                f,
                "the message is larger than the {limit} bytes the session keeps in memory for one message"
            ),
            SinkError::Io(e) => write!(f, "writing the message failed: {e}"),
        }
    }
}

impl Sink {
    /// Writes `data` at `offset` (0-based) in the message.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), SinkError> {
        self.write_pieces_at(offset, &[data])
    }

    /// Writes `pieces`, one after the other, from `offset` on: a file in
    /// one vectored write where the system has one.
    pub fn write_pieces_at(&mut self, offset: u64, pieces: &[&[u8]]) -> Result<(), SinkError> {
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        let end = offset
            .checked_add(len as u64)
            .ok_or(SinkError::TooLarge(u64::MAX))?;
        match self {
            Sink::Memory { data: buf, limit } => {
                if end > *limit {
                    return Err(SinkError::TooLarge(*limit));
                }
                crate::proto::bufpool::put_at(buf, offset as usize, len, pieces.iter().copied());
                Ok(())
            }
            Sink::File(f) => {
                write_file_pieces_at(f, offset, pieces).map_err(|e| SinkError::Io(e.to_string()))
            }
            Sink::Write(w) => {
                let mut at = offset;
                for piece in pieces {
                    w(at, piece).map_err(SinkError::Io)?;
                    at += piece.len() as u64;
                }
                Ok(())
            }
        }
    }

    /// Bytes a memory sink holds (0 for the others).
    pub fn memory(&self) -> u64 {
        match self {
            Sink::Memory { data, .. } => data.len() as u64,
            _ => 0,
        }
    }

    /// Ends the message: a memory sink gives its bytes (cut to `total`), a
    /// file is flushed to the operating system and closed.
    pub fn finish(self, total: u64) -> Result<Option<Vec<u8>>, SinkError> {
        match self {
            Sink::Memory { mut data, .. } => {
                data.resize(total as usize, 0);
                Ok(Some(data))
            }
            Sink::File(f) => {
                drop(f);
                Ok(None)
            }
            Sink::Write(_) => Ok(None),
        }
    }
}

/// An incoming message being written to its sink.
struct Open {
    sink: Sink,
    received: u64,
    total: Option<u64>,
    head: Chunk,
}

/// What a chunk of an announced message did.
pub enum PartOutcome {
    /// Not a message with a sink (refused, or ended before).
    None,
    /// Written: `received` bytes so far of `total`; `to_memory` for the
    /// default memory sink (whose progress nobody is told).
    Written {
        /// Bytes written so far.
        received: u64,
        /// The message's size, when known.
        total: Option<u64>,
        /// The message goes to memory.
        to_memory: bool,
    },
    /// Writing failed: the message is dropped and its later chunks refused.
    Failed(Box<Failed>),
}

/// A message whose sink failed.
pub struct Failed {
    /// Its first chunk's head.
    pub head: Chunk,
    /// Bytes written before.
    pub received: u64,
    /// Its size, when known.
    pub total: Option<u64>,
    /// Why.
    pub error: SinkError,
}

/// How an announced message ended once every byte arrived.
pub enum Finished {
    /// In memory: the head and the bytes.
    InMemory(Chunk, Vec<u8>),
    /// Written to its file or callback: the head.
    Saved(Chunk),
    /// Closing its sink failed.
    Failed(Failed),
}

/// The incoming messages of a session that go to sinks (the session
/// announces them: start, parts, end). Enforces the session's limits on
/// memory sinks: one message at most `max_message` bytes, all of them
/// together at most `max_memory`. Messages refused here have their later
/// chunks answered 413 through `refuse`.
pub struct Sinks {
    open: Mutex<(HashMap<String, Open>, u64)>,
    max_message: u64,
    max_memory: u64,
    /// The session, to refuse a message's later chunks (set once it runs).
    pub driver: OnceLock<Weak<SessionDriver>>,
}

impl Sinks {
    /// Sinks for a session with these limits.
    pub fn new(max_message: u64, max_memory: u64) -> Sinks {
        Sinks {
            open: Mutex::new((HashMap::new(), 0)),
            max_message,
            max_memory,
            driver: OnceLock::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (HashMap<String, Open>, u64)> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The message's later chunks get 413.
    pub fn refuse(&self, message_id: &str) {
        if let Some(d) = self.driver.get().and_then(Weak::upgrade) {
            let _ = d.with(|s| s.refuse_incoming(message_id));
        }
    }

    /// A message's first chunk arrived; it goes to `sink`, or to memory
    /// when `None`. A message for memory announced larger than one message
    /// may be is refused (the error says so).
    pub fn start(
        &self,
        message_id: String,
        head: Chunk,
        total: Option<u64>,
        sink: Option<Sink>,
    ) -> Result<(), SinkError> {
        let sink = match sink {
            Some(s) => s,
            None if total.is_some_and(|t| t > self.max_message) => {
                self.refuse(&message_id);
                return Err(SinkError::TooLarge(self.max_message));
            }
            None => Sink::Memory {
                // A buffer the session kept from an earlier large message.
                // (Kept buffers hold at least SPARE_MIN and take messages of
                // at least half their size: smaller ones skip the lock.)
                data: total
                    .filter(|&t| t >= crate::proto::session::SPARE_MIN as u64 / 2)
                    .and_then(|t| {
                        let d = self.driver.get()?.upgrade()?;
                        d.with_any_mut(|s| s.take_spare(t))
                    })
                    .unwrap_or_default(),
                limit: self.max_message,
            },
        };
        let open = Open {
            sink,
            received: 0,
            total,
            head,
        };
        self.lock().0.insert(message_id, open);
        Ok(())
    }

    /// Writes a chunk of an announced message at its offset.
    pub fn part(&self, chunk: &Chunk) -> PartOutcome {
        let mid = chunk.message_id().unwrap_or("");
        let offset = match chunk.byte_range() {
            Ok(Some(r)) => r.start - 1,
            _ => 0,
        };
        let len = chunk.size() as u64;
        let mut st = self.lock();
        let (open, memory) = &mut *st;
        let Some(o) = open.get_mut(mid) else {
            return PartOutcome::None;
        };
        let before = o.sink.memory();
        let grow = (offset + len).saturating_sub(before);
        let to_memory = matches!(o.sink, Sink::Memory { .. });
        let r = if to_memory && *memory + grow > self.max_memory {
            Err(SinkError::TooLarge(self.max_memory))
        } else {
            // A body left in several read buffers is written from there.
            let pieces: SmallVec<[&[u8]; 4]> = chunk.data_pieces().collect();
            o.sink.write_pieces_at(offset, &pieces)
        };
        *memory = *memory - before + o.sink.memory();
        match r {
            Ok(()) => {
                o.received += len;
                PartOutcome::Written {
                    received: o.received,
                    total: o.total,
                    to_memory,
                }
            }
            Err(error) => {
                let o = open.remove(mid).expect("found above");
                *memory -= o.sink.memory();
                drop(st);
                self.refuse(mid);
                PartOutcome::Failed(Box::new(Failed {
                    head: o.head,
                    received: o.received,
                    total: o.total,
                    error,
                }))
            }
        }
    }

    /// Every byte of the message arrived: its sink is closed.
    pub fn end(&self, message_id: &str, total: u64) -> Option<Finished> {
        let o = self.take(message_id)?;
        Some(match o.sink.finish(total) {
            Ok(Some(data)) => Finished::InMemory(o.head, data),
            Ok(None) => Finished::Saved(o.head),
            Err(error) => Finished::Failed(Failed {
                head: o.head,
                received: o.received,
                total: o.total,
                error,
            }),
        })
    }

    /// The message ended otherwise (aborted, expired, closed): its sink is
    /// closed as it is.
    pub fn forget(&self, message_id: &str) {
        drop(self.take(message_id));
    }

    fn take(&self, message_id: &str) -> Option<Open> {
        let mut st = self.lock();
        let o = st.0.remove(message_id)?;
        st.1 -= o.sink.memory();
        Some(o)
    }

    /// The session closed: every sink is closed.
    pub fn clear(&self) {
        let mut st = self.lock();
        st.0.clear();
        st.1 = 0;
    }
}

/// One piece at `offset` (where there is no `pwritev`).
#[cfg(all(unix, not(target_os = "linux")))]
fn write_file_at(f: &std::fs::File, offset: u64, data: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    f.write_all_at(data, offset)
}

/// `pwritev`, again after a short write, from where it stopped.
#[cfg(target_os = "linux")]
fn write_file_pieces_at(f: &std::fs::File, offset: u64, pieces: &[&[u8]]) -> io::Result<()> {
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;
    let mut slices: SmallVec<[IoSlice<'_>; 4]> = pieces.iter().map(|p| IoSlice::new(p)).collect();
    let mut rest = &mut slices[..];
    let mut at = offset;
    while !rest.is_empty() {
        let pos = libc::off_t::try_from(at)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        let count = rest.len().min(64) as libc::c_int;
        // SAFETY: IoSlice is ABI-compatible with iovec on Unix, and `rest`
        // holds `count` or more of them, borrowed for the call.
        let n = unsafe { libc::pwritev(f.as_raw_fd(), rest.as_ptr().cast(), count, pos) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        at += n as u64;
        IoSlice::advance_slices(&mut rest, n as usize);
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn write_file_pieces_at(f: &std::fs::File, offset: u64, pieces: &[&[u8]]) -> io::Result<()> {
    let mut at = offset;
    for piece in pieces {
        write_file_at(f, at, piece)?;
        at += piece.len() as u64;
    }
    Ok(())
}

#[cfg(not(unix))]
fn write_file_at(mut f: &std::fs::File, offset: u64, data: &[u8]) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_land_at_their_offsets_in_any_order() {
        let mut m = Sink::Memory {
            data: Vec::new(),
            limit: 10,
        };
        m.write_at(5, b"fghij").unwrap();
        m.write_at(0, b"abcde").unwrap();
        assert!(matches!(
            m.write_at(8, b"xyz"),
            Err(SinkError::TooLarge(10))
        ));
        assert_eq!(m.finish(10).unwrap().unwrap(), b"abcdefghij");
        let path = std::env::temp_dir().join(format!("msrp-sink-{}", std::process::id()));
        let mut f = Sink::File(std::fs::File::create(&path).unwrap());
        f.write_at(3, b"def").unwrap();
        f.write_at(0, b"abc").unwrap();
        assert!(f.finish(6).unwrap().is_none());
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdef");
        std::fs::remove_file(&path).unwrap();
    }

    /// Pieces land one after the other from the offset, in every kind of
    /// sink; a file takes more pieces than one vectored write does.
    #[test]
    fn pieces_land_one_after_the_other() {
        let pieces: Vec<Vec<u8>> = (0..70u8).map(|i| vec![i; 1 + usize::from(i) * 7]).collect();
        let refs: Vec<&[u8]> = pieces.iter().map(|p| &p[..]).collect();
        let joined = pieces.concat();
        let total = 10 + joined.len() as u64;
        let mut m = Sink::Memory {
            data: Vec::new(),
            limit: total,
        };
        m.write_at(0, b"0123456789").unwrap();
        m.write_pieces_at(10, &refs).unwrap();
        let mut want = b"0123456789".to_vec();
        want.extend_from_slice(&joined);
        assert!(m.finish(total).unwrap().unwrap() == want);
        let path = std::env::temp_dir().join(format!("msrp-pieces-{}", std::process::id()));
        let mut f = Sink::File(std::fs::File::create(&path).unwrap());
        f.write_pieces_at(10, &refs).unwrap();
        f.write_pieces_at(0, &[b"01234", b"56789"]).unwrap();
        assert!(f.finish(total).unwrap().is_none());
        assert!(std::fs::read(&path).unwrap() == want);
        std::fs::remove_file(&path).unwrap();
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let mut w = Sink::Write(Box::new(move |at, d: &[u8]| {
            log.lock().unwrap().push((at, d.len()));
            Ok(())
        }));
        w.write_pieces_at(100, &[b"abc", b"de"]).unwrap();
        assert_eq!(*seen.lock().unwrap(), [(100, 3), (103, 2)]);
    }

    fn part_of(mid: &str, start: u64, data: &[u8], total: u64) -> Chunk {
        let mut c = Chunk::request("SEND").unwrap();
        c.add_header_raw("Message-ID", mid).unwrap();
        let end = start + data.len() as u64 - 1;
        c.add_header_raw("Byte-Range", &format!("{start}-{end}/{total}"))
            .unwrap();
        c.set_data(data);
        c
    }

    /// A memory sink takes a buffer its session kept from an earlier large
    /// message (`SessionDriver::recycle`) when it fits, and the message's
    /// bytes are its own.
    #[test]
    fn a_memory_sink_takes_a_kept_buffer() {
        use crate::proto::session::{SPARE_MIN, SessionConfig};
        let (_ctx, ta, _tb) = crate::engine::connector::loopback_context(1);
        let d = std::sync::Arc::new(crate::engine::session::SessionDriver::start(
            ta,
            SessionConfig::default(),
            None,
            Box::new(|_| {}),
            None,
        ));
        let total = SPARE_MIN as u64;
        let sinks = Sinks::new(2 * total, 4 * total);
        let _ = sinks.driver.set(std::sync::Arc::downgrade(&d));
        let kept = vec![0xEEu8; SPARE_MIN];
        let at = kept.as_ptr();
        d.recycle(kept);
        let head = Chunk::request("SEND").unwrap();
        sinks
            .start("bigmsg".into(), head, Some(total), None)
            .unwrap();
        assert_eq!(d.with_any(|s| s.spare_bytes()), 0, "taken");
        let body: Vec<u8> = (0..SPARE_MIN).map(|i| (i % 251) as u8).collect();
        let half = SPARE_MIN / 2;
        // The second half first: the gap before it must not show old bytes.
        sinks.part(&part_of("bigmsg", half as u64 + 1, &body[half..], total));
        sinks.part(&part_of("bigmsg", 1, &body[..half], total));
        match sinks.end("bigmsg", total) {
            Some(Finished::InMemory(_, data)) => {
                assert_eq!(data.as_ptr(), at, "the kept buffer was used");
                assert!(data == body);
            }
            _ => panic!("not in memory"),
        }
    }

    /// The session's limits hold for messages reassembled in memory: one
    /// announced larger than a message may be is refused at once, and the
    /// bytes of all of them together stay under the memory limit (the
    /// message that would pass it fails and is let go).
    #[test]
    fn memory_sinks_keep_the_session_limits() {
        let head = Chunk::request("SEND").unwrap();
        let sinks = Sinks::new(10, 15);
        assert!(matches!(
            sinks.start("big1".into(), head.clone(), Some(11), None),
            Err(SinkError::TooLarge(10))
        ));
        sinks
            .start("msg1".into(), head.clone(), Some(10), None)
            .unwrap();
        sinks
            .start("msg2".into(), head.clone(), Some(10), None)
            .unwrap();
        assert!(matches!(
            sinks.part(&part_of("msg1", 1, b"abcdefghij", 10)),
            PartOutcome::Written {
                received: 10,
                to_memory: true,
                ..
            }
        ));
        match sinks.part(&part_of("msg2", 1, b"0123456789", 10)) {
            PartOutcome::Failed(f) => {
                assert!(matches!(f.error, SinkError::TooLarge(15)));
                assert_eq!(f.received, 0);
            }
            _ => panic!("the memory limit of the session was passed"),
        }
        // The failed message is gone; the other one completes.
        assert!(matches!(
            sinks.part(&part_of("msg2", 1, b"x", 10)),
            PartOutcome::None
        ));
        match sinks.end("msg1", 10) {
            Some(Finished::InMemory(_, data)) => assert_eq!(data, b"abcdefghij"),
            _ => panic!("msg1 should be complete in memory"),
        }
        // Its memory is free again.
        sinks.start("msg3".into(), head, Some(10), None).unwrap();
        assert!(matches!(
            sinks.part(&part_of("msg3", 1, b"0123456789", 10)),
            PartOutcome::Written { .. }
        ));
    }

    #[test]
    fn a_file_sink_reports_progress_and_ends_saved() {
        let path = std::env::temp_dir().join(format!("msrp-sinks-{}", std::process::id()));
        let sinks = Sinks::new(4, 4);
        let head = Chunk::request("SEND").unwrap();
        let f = std::fs::File::create(&path).unwrap();
        sinks
            .start("file1".into(), head, Some(8), Some(Sink::File(f)))
            .unwrap();
        assert!(matches!(
            sinks.part(&part_of("file1", 5, b"efgh", 8)),
            PartOutcome::Written {
                received: 4,
                total: Some(8),
                to_memory: false
            }
        ));
        assert!(matches!(
            sinks.part(&part_of("file1", 1, b"abcd", 8)),
            PartOutcome::Written { received: 8, .. }
        ));
        assert!(matches!(sinks.end("file1", 8), Some(Finished::Saved(_))));
        assert!(sinks.end("file1", 8).is_none(), "ended once");
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdefgh");
        std::fs::remove_file(&path).unwrap();
    }
}
