//! Where an incoming message announced by the session goes while its
//! chunks arrive (the mirror of an outgoing file): memory, a file or an
//! application callback. Chunks may come out of order and overlap: every
//! write names its offset. The engine owns the file IO; the FFI only
//! builds a sink from the application's choice.

use std::io;

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
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or(SinkError::TooLarge(u64::MAX))?;
        match self {
            Sink::Memory { data: buf, limit } => {
                if end > *limit {
                    return Err(SinkError::TooLarge(*limit));
                }
                let end = end as usize;
                if buf.len() < end {
                    buf.resize(end, 0);
                }
                buf[offset as usize..end].copy_from_slice(data);
                Ok(())
            }
            Sink::File(f) => {
                write_file_at(f, offset, data).map_err(|e| SinkError::Io(e.to_string()))
            }
            Sink::Write(w) => w(offset, data).map_err(SinkError::Io),
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

#[cfg(unix)]
fn write_file_at(f: &std::fs::File, offset: u64, data: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    f.write_all_at(data, offset)
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
}
