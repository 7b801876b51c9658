//! MSRP over WebSocket (RFC 7977), the framing part: each MSRP chunk goes
//! in one WebSocket message, and a message holds one chunk (§5.1). The
//! session writes a byte stream of encoded chunks; [`ChunkSplitter`] cuts
//! it back into whole chunks, one per message. (Received messages need no
//! such care: their payloads, text or binary alike (§4.2), are read in
//! order as one byte stream by the usual decoder.)

use memchr::memmem;

/// The subprotocol name of MSRP over WebSocket (RFC 7977 §4.1).
pub const SUBPROTOCOL: &str = "msrp";

/// Whether a `Sec-WebSocket-Protocol` header value offers or names the
/// `msrp` subprotocol (a comma-separated list; spaces around names are
/// ignored).
pub fn offers_msrp(value: &str) -> bool {
    value.split(',').any(|p| p.trim() == SUBPROTOCOL)
}

/// What went wrong cutting the outgoing stream into chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SplitError {
    /// The bytes do not start with an MSRP start line.
    NotMsrp,
    /// A chunk grew past the limit without its end-line.
    TooLarge(usize),
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SplitError::NotMsrp => f.write_str("the bytes written are not an MSRP chunk"),
            SplitError::TooLarge(n) => write!(
                f,
                "an MSRP chunk of more than {n} bytes cannot go in one WebSocket message"
            ),
        }
    }
}

/// Cuts a stream of encoded MSRP chunks (as a session writes them) into
/// whole chunks. Bounded: a chunk larger than `max` bytes is an error.
#[derive(Debug)]
pub struct ChunkSplitter {
    buf: Vec<u8>,
    /// `-------` and the current chunk's transaction id, once its start
    /// line is in `buf`.
    marker: Vec<u8>,
    /// Where to look for the marker next (bytes before it were searched).
    scan: usize,
    max: usize,
}

/// The longest start line looked for.
const MAX_START_LINE: usize = 1024;

impl ChunkSplitter {
    /// A splitter for chunks of at most `max` bytes.
    pub fn new(max: usize) -> ChunkSplitter {
        ChunkSplitter {
            buf: Vec::new(),
            marker: Vec::new(),
            scan: 0,
            max,
        }
    }

    /// Bytes held (of chunks not yet taken).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes more of the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole chunk, when all of it is here.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, SplitError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        if self.marker.is_empty() {
            let Some(eol) = memmem::find(&self.buf[..self.buf.len().min(MAX_START_LINE)], b"\r\n")
            else {
                return if self.buf.len() >= MAX_START_LINE
                    || !b"MSRP ".starts_with(&self.buf[..self.buf.len().min(5)])
                {
                    Err(SplitError::NotMsrp)
                } else {
                    Ok(None)
                };
            };
            let line = &self.buf[..eol];
            let tid = line
                .strip_prefix(b"MSRP ")
                .and_then(|rest| rest.split(|&b| b == b' ').next())
                .filter(|t| !t.is_empty())
                .ok_or(SplitError::NotMsrp)?;
            self.marker = [b"-------", tid].concat();
            self.scan = eol + 2;
        }
        let marker_len = self.marker.len();
        match memmem::find(&self.buf[self.scan..], &self.marker) {
            Some(i) => {
                let at = self.scan + i;
                // The flag and CRLF after the marker.
                let end = at + marker_len + 3;
                if self.buf.len() < end {
                    self.scan = at;
                    return self.check_size();
                }
                let rest = self.buf.split_off(end);
                let chunk = std::mem::replace(&mut self.buf, rest);
                self.marker.clear();
                self.scan = 0;
                Ok(Some(chunk))
            }
            None => {
                self.scan = self.buf.len().saturating_sub(marker_len - 1).max(self.scan);
                self.check_size()
            }
        }
    }

    fn check_size(&self) -> Result<Option<Vec<u8>>, SplitError> {
        if self.buf.len() > self.max {
            return Err(SplitError::TooLarge(self.max));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Chunk;

    fn encoded(tid: &str, body: &[u8]) -> Vec<u8> {
        let mut c = Chunk::request("SEND").unwrap();
        c.set_transaction_id(tid).unwrap();
        c.set_data(body);
        c.to_bytes().unwrap()
    }

    #[test]
    fn chunks_written_together_or_in_pieces_come_out_one_by_one() {
        let a = encoded("aaa1", b"hello");
        let b = encoded("bbb2", b"");
        let c = encoded("ccc3", &[b'-'; 5000]);
        let stream = [a.clone(), b.clone(), c.clone()].concat();
        // All at once.
        let mut s = ChunkSplitter::new(1 << 20);
        s.push(&stream);
        assert_eq!(s.next_chunk().unwrap(), Some(a.clone()));
        assert_eq!(s.next_chunk().unwrap(), Some(b.clone()));
        assert_eq!(s.next_chunk().unwrap(), Some(c.clone()));
        assert_eq!(s.next_chunk().unwrap(), None);
        assert_eq!(s.buffered(), 0);
        // Byte by byte: each chunk comes out when its last byte is in.
        let mut s = ChunkSplitter::new(1 << 20);
        let mut out = Vec::new();
        for (i, byte) in stream.iter().enumerate() {
            s.push(&[*byte]);
            while let Some(ch) = s.next_chunk().unwrap() {
                out.push((i + 1, ch));
            }
        }
        let ends: Vec<usize> = out.iter().map(|(i, _)| *i).collect();
        assert_eq!(ends, [a.len(), a.len() + b.len(), stream.len()]);
        assert_eq!(out[2].1, c);
    }

    #[test]
    fn a_marker_of_another_transaction_in_the_body_does_not_end_the_chunk() {
        let a = encoded("tid1", b"text\r\n-------tid2$\r\nmore");
        let mut s = ChunkSplitter::new(1 << 20);
        s.push(&a);
        assert_eq!(s.next_chunk().unwrap(), Some(a));
    }

    #[test]
    fn bytes_that_are_not_msrp_and_oversized_chunks_are_errors() {
        let mut s = ChunkSplitter::new(1 << 20);
        s.push(b"GET / HTTP/1.1\r\n");
        assert_eq!(s.next_chunk(), Err(SplitError::NotMsrp));
        let mut s = ChunkSplitter::new(100);
        let mut big = encoded("ttt1", &[b'x'; 500]);
        big.truncate(300);
        s.push(&big);
        assert_eq!(s.next_chunk(), Err(SplitError::TooLarge(100)));
    }

    #[test]
    fn the_subprotocol_is_found_in_a_list() {
        assert!(offers_msrp("msrp"));
        assert!(offers_msrp("sip, msrp"));
        assert!(!offers_msrp("sip"));
        assert!(!offers_msrp("msrp2"));
    }
}
