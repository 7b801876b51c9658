//! Handing received chunks to a reader in the sizes it asks for, sans-IO:
//! the decoder's output for one connection goes in (whole chunks, or a
//! chunk's head, body pieces and end-line), chunks come out whole or cut
//! into the reference's "virtual" segments of at most the size asked for
//! (flag `+` and the Byte-Range moved; the last segment carries the
//! chunk's real flag). The engine's transport feeds it what its reader
//! decoded and asks it for the next chunk.

use std::collections::VecDeque;

use super::chunk::{Chunk, Flag};
use super::transport::segment;

/// What the reader of a connection decoded, in order. `E` is the reason a
/// connection ended (the engine's error).
#[derive(Debug)]
pub enum Input<E> {
    /// A complete chunk (body and flag set).
    Whole(Chunk),
    /// The head of a chunk whose body comes in pieces.
    Head(Chunk),
    /// A piece of the current chunk's body.
    Data(Vec<u8>),
    /// The current chunk's end-line.
    End(Flag),
    /// The connection ended.
    Closed(E),
}

/// A chunk handed to the reader; `segment` is 0 for a whole chunk and
/// counts from 1 for the "virtual" segments of a larger one.
#[derive(Debug)]
pub struct Received {
    /// The chunk (or segment).
    pub chunk: Chunk,
    /// Segment number (0: not segmented).
    pub segment: u32,
    /// Whether the chunk's end-line was read: true for whole chunks and for
    /// the last segment of a segmented one.
    pub complete: bool,
}

/// The chunk being handed out in segments.
struct Current {
    head: Chunk,
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out as segments.
    pos: usize,
    offset: u64,
    segment: u32,
    /// The chunk's flag once its end-line arrived (the rest is in `buf`).
    end: Option<Flag>,
}

/// Cuts the input of one connection into what its reader asks for.
pub struct Assembler<E> {
    cur: Option<Current>,
    done: Option<E>,
}

impl<E> Default for Assembler<E> {
    fn default() -> Self {
        Assembler {
            cur: None,
            done: None,
        }
    }
}

impl<E: Clone> Assembler<E> {
    /// Drops the chunk in progress (the connection's input is let go).
    pub fn clear(&mut self) {
        self.cur = None;
    }

    /// Makes progress with the input at hand (`ahead`, taken from the
    /// front), without waiting: the next chunk or segment of at most `size`
    /// body bytes (`usize::MAX`: whole chunks) when one is ready, the reason
    /// the connection ended (again on every later call) once it did, `None`
    /// when more input is needed.
    pub fn step(
        &mut self,
        ahead: &mut VecDeque<Input<E>>,
        size: usize,
    ) -> Option<Result<Received, E>> {
        loop {
            // More than `size` bytes of the current chunk are here: hand out
            // `size` of them as a segment. When the chunk's end has also
            // arrived, the last piece (at most `size`) carries its real flag.
            if let Some(cur) = self.cur.as_mut() {
                let step = size.max(1);
                let left = cur.buf.len() - cur.pos;
                if cur.end.is_none() && left > step {
                    // Before cutting, see whether the end is already here,
                    // so the last segment carries the real flag.
                    if let Some(Input::End(f)) = ahead.front() {
                        cur.end = Some(*f);
                        ahead.pop_front();
                    }
                }
                if let (Some(flag), true) = (cur.end, left <= step) {
                    return Some(Ok(finish(self.cur.take().expect("current chunk"), flag)));
                }
                if size != usize::MAX && left > step {
                    let piece = &cur.buf[cur.pos..cur.pos + step];
                    let seg = segment(&cur.head, cur.offset, piece, false, Flag::More);
                    cur.pos += step;
                    cur.offset += step as u64;
                    cur.segment += 1;
                    return Some(Ok(Received {
                        chunk: seg,
                        segment: cur.segment,
                        complete: false,
                    }));
                }
            }
            if let Some(e) = &self.done {
                return Some(Err(e.clone()));
            }
            match ahead.pop_front()? {
                Input::Closed(e) => {
                    self.cur = None;
                    self.done = Some(e.clone());
                    return Some(Err(e));
                }
                Input::Whole(c) if size == usize::MAX || c.size() <= size.max(1) => {
                    return Some(Ok(Received {
                        chunk: c,
                        segment: 0,
                        complete: true,
                    }));
                }
                Input::Whole(mut c) => {
                    let flag = c.flag();
                    let buf = c.take_data();
                    self.cur = Some(Current {
                        head: c,
                        buf,
                        pos: 0,
                        offset: 0,
                        segment: 0,
                        end: Some(flag),
                    });
                }
                Input::Head(c) => {
                    self.cur = Some(Current {
                        head: c,
                        buf: Vec::new(),
                        pos: 0,
                        offset: 0,
                        segment: 0,
                        end: None,
                    })
                }
                Input::Data(d) => {
                    let Some(cur) = self.cur.as_mut() else {
                        continue;
                    };
                    if cur.pos == cur.buf.len() {
                        cur.buf = d;
                        cur.pos = 0;
                    } else {
                        // What is left is at most `size` bytes: move it to
                        // the front before appending.
                        cur.buf.drain(..cur.pos);
                        cur.pos = 0;
                        cur.buf.extend_from_slice(&d);
                    }
                }
                Input::End(f) => {
                    if let Some(cur) = self.cur.take() {
                        return Some(Ok(finish(cur, f)));
                    }
                }
            }
        }
    }
}

/// The rest of `cur`, ended by `flag`: the whole chunk when none of it was
/// handed out yet, otherwise its last segment.
fn finish(mut cur: Current, flag: Flag) -> Received {
    if cur.pos > 0 {
        cur.buf.drain(..cur.pos);
    }
    if cur.segment == 0 {
        let mut c = cur.head;
        c.set_data_vec(cur.buf);
        c.set_flag(flag);
        Received {
            chunk: c,
            segment: 0,
            complete: true,
        }
    } else {
        Received {
            chunk: segment(&cur.head, cur.offset, &cur.buf, true, flag),
            segment: cur.segment + 1,
            complete: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::header::HeaderName;

    fn send(body: &[u8], flag: Flag) -> Chunk {
        let mut c = Chunk::request("SEND").unwrap();
        c.add_header_raw("To-Path", "msrp://a.invalid:1/x;tcp")
            .unwrap();
        c.add_header_raw("From-Path", "msrp://b.invalid:1/y;tcp")
            .unwrap();
        c.add_header_raw("Message-ID", "msg1").unwrap();
        c.add_header_raw("Byte-Range", &format!("1-{}/{}", body.len(), body.len()))
            .unwrap();
        c.set_data(body);
        c.set_flag(flag);
        c
    }

    fn head_of(c: &Chunk) -> Chunk {
        let mut h = c.clone();
        h.take_data();
        h
    }

    type Q = VecDeque<Input<&'static str>>;

    /// Everything `step` gives for `input` with reads of `size`.
    fn drain(input: Q, size: usize) -> Vec<Result<Received, &'static str>> {
        let mut a = Assembler::default();
        let mut q = input;
        std::iter::from_fn(|| a.step(&mut q, size))
            .take(100)
            .collect()
    }

    #[test]
    fn whole_chunks_pass_unchanged_when_they_fit() {
        let c = send(b"hello", Flag::End);
        let out = drain(
            Q::from([Input::Whole(c.clone()), Input::Closed("gone")]),
            16,
        );
        assert_eq!(out.len(), 100, "the end repeats");
        let r = out[0].as_ref().unwrap();
        assert_eq!((r.segment, r.complete), (0, true));
        assert_eq!(r.chunk.data(), b"hello");
        assert_eq!(out[1].as_ref().unwrap_err(), &"gone");
        assert_eq!(out[99].as_ref().unwrap_err(), &"gone");
    }

    /// The reference's virtual segments: at most `size` bytes each, the
    /// Byte-Range moved along, `+` on all but the last, which carries the
    /// chunk's real flag and is the only one marked complete.
    #[test]
    fn larger_chunks_are_cut_into_segments_with_the_real_flag_last() {
        let c = send(b"abcdefghij", Flag::End);
        let out = drain(Q::from([Input::Whole(c)]), 4);
        let got: Vec<(u32, bool, Vec<u8>, String, Flag)> = out
            .into_iter()
            .map(|r| {
                let r = r.unwrap();
                (
                    r.segment,
                    r.complete,
                    r.chunk.data().to_vec(),
                    r.chunk.header(HeaderName::ByteRange).unwrap().to_owned(),
                    r.chunk.flag(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (1, false, b"abcd".to_vec(), "1-4/10".to_owned(), Flag::More),
                (2, false, b"efgh".to_vec(), "5-8/10".to_owned(), Flag::More),
                (3, true, b"ij".to_vec(), "9-10/10".to_owned(), Flag::End),
            ]
        );
    }

    /// A chunk arriving in pieces: segments are cut as bytes arrive, pieces
    /// that straddle a segment are joined, and when the end-line is already
    /// there the last segment carries the real flag.
    #[test]
    fn a_chunk_in_pieces_is_cut_as_it_arrives() {
        let c = send(b"abcdefghij", Flag::Abort);
        let mut a: Assembler<&str> = Assembler::default();
        let mut q = Q::from([Input::Head(head_of(&c)), Input::Data(b"abc".to_vec())]);
        assert!(a.step(&mut q, 4).is_none(), "3 bytes: not a segment yet");
        q.push_back(Input::Data(b"defgh".to_vec()));
        let s1 = a.step(&mut q, 4).unwrap().unwrap();
        assert_eq!((s1.segment, s1.chunk.data()), (1, &b"abcd"[..]));
        assert!(a.step(&mut q, 4).is_none(), "4 bytes left, the end unknown");
        q.push_back(Input::Data(b"ij".to_vec()));
        q.push_back(Input::End(Flag::Abort));
        let s2 = a.step(&mut q, 4).unwrap().unwrap();
        assert_eq!(
            (s2.segment, s2.chunk.data(), s2.chunk.flag()),
            (2, &b"efgh"[..], Flag::More)
        );
        let s3 = a.step(&mut q, 4).unwrap().unwrap();
        assert_eq!(
            (s3.segment, s3.complete, s3.chunk.flag()),
            (3, true, Flag::Abort)
        );
        assert_eq!(s3.chunk.data(), b"ij");
        // Read whole: the pieces come back as one chunk.
        let out = drain(
            Q::from([
                Input::Head(head_of(&c)),
                Input::Data(b"abcde".to_vec()),
                Input::Data(b"fghij".to_vec()),
                Input::End(Flag::End),
            ]),
            usize::MAX,
        );
        let r = out[0].as_ref().unwrap();
        assert_eq!(
            (r.segment, r.complete, r.chunk.data()),
            (0, true, &b"abcdefghij"[..])
        );
        assert_eq!(out.len(), 1);
    }

    /// The connection ends in the middle of a chunk: the part is dropped
    /// and the reason given from then on.
    #[test]
    fn a_close_mid_chunk_drops_the_part() {
        let c = send(b"abcdefghij", Flag::End);
        let out = drain(
            Q::from([
                Input::Head(head_of(&c)),
                Input::Data(b"abc".to_vec()),
                Input::Closed("reset"),
            ]),
            usize::MAX,
        );
        assert!(out.iter().all(|r| r.as_ref().is_err_and(|e| *e == "reset")));
    }
}
