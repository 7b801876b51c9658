//! The reading side of a transport: the reader that decodes the socket
//! into events (on the reader task, or on the caller once a session reads
//! directly), and the events it produces.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, oneshot};

use super::super::error::{Error, ErrorKind};
use super::super::logger::{Level, LoggerRef};
use super::super::stream::tls_error;
use super::{CloseState, KEEP_QUEUE_ROOM, Pending, Received};
use crate::proto::Chunk;
use crate::proto::assembly::{Assembler, Input};
use crate::proto::decoder::{Decoder, Event};

/// Chunks up to this size are assembled by the reader task and passed on whole.
pub(super) const WHOLE_LIMIT: usize = 256 * 1024;

/// Socket reads through the read buffer take up to this much. Measured on
/// 1 GiB bulk transfers in 64 KiB chunks: 256 KiB reads make about 40 %
/// fewer read and send calls than 128 KiB (the sender then writes larger
/// pieces too), and 64 KiB twice as many. The buffer is never zeroed (reads
/// go into its spare capacity), and a connection holds it only while reads
/// bring data: when a read has to wait it goes back to a pool (see
/// `Reader::poll_read_lent`). Measured with 200 connection pairs that each
/// carried one 1 MiB chunk and then went quiet: 274 KiB of memory per pair
/// while the buffer stayed with its connection, a few KiB once lent.
pub(super) const READ_BUF: usize = 256 * 1024;

/// What the reader decoded, in order (see [`crate::proto::assembly`]).
pub(super) type InEvent = Input<Error>;

/// Where decoded events come from: the reader task (any transport, so that
/// a closed connection is noticed and relay AUTH responses are taken even
/// while nobody reads), or, once a session drives the transport, the
/// reading caller itself (one task hand-off less per chunk).
pub(super) enum ReadSource {
    Task {
        rx: mpsc::Receiver<Batch>,
        /// Asks the reader task to stop and give its reader back.
        handoff: Option<oneshot::Sender<Handoff>>,
    },
    Direct(Box<Reader>),
    /// Released after the connection closed ([`Transport::release_input`]):
    /// the socket and the read buffers are gone.
    Gone,
}

/// The reader task's answer to a handoff: the reader and a batch it had not delivered yet.
pub(super) type Handoff = oneshot::Sender<(Box<Reader>, Batch)>;

/// Events from one read. A deque, so that a session reading the socket
/// itself decodes straight into the queue it takes chunks from (events
/// carry whole chunk heads: moving them again costs).
pub(super) type Batch = VecDeque<InEvent>;

pub(super) struct ReadState {
    pub(super) source: ReadSource,
    /// A chunk or segment given back with [`Transport::unread`]: the next read returns it.
    pub(super) back: Option<Received>,
    /// Events received and not yet handled, in order.
    pub(super) ahead: VecDeque<InEvent>,
    /// Cuts what was read into the chunks and segments readers ask for.
    pub(super) assembly: Assembler<Error>,
}

impl ReadState {
    pub(super) fn new(source: ReadSource) -> ReadState {
        ReadState {
            source,
            back: None,
            ahead: VecDeque::new(),
            assembly: Assembler::default(),
        }
    }
}

/// Where a reader's bytes come from.
pub(super) enum Source {
    /// Read into the read buffer and decoded there (plain TCP).
    Stream(Box<dyn AsyncRead + Send + Unpin>),
    /// TLS: decoded where rustls holds them decrypted, without the copy
    /// into the read buffer (see `Reader::poll_decode_decrypted`).
    Tls(super::super::stream::ConnHalf),
    /// While a TLS read decodes (the reader needs itself meanwhile).
    Lent,
}

/// Reads the socket and decodes it into events (one batch per read).
pub(super) struct Reader {
    pub(super) src: Source,
    pub(super) dec: Decoder,
    /// The read buffer. Each read goes into its spare room; what was read
    /// is split off and decoded, and large bodies stay there as pieces the
    /// chunks share (see `SHARE_MIN`).
    pub(super) buf: BytesMut,
    /// `buf` is a buffer taken for reading (it may be full: no room left).
    pub(super) buf_taken: bool,
    /// Earlier read buffers that chunks still held pieces of when the
    /// reader moved on (at most `SPARE_READ_BUFS`), read into again once
    /// they are free: a session hands chunks to the application while it
    /// reads on, and a new buffer for every read would have its pages
    /// faulted in again.
    pub(super) spare: Vec<BytesMut>,
    /// Bytes read and not decoded yet (what followed a chunk that was read
    /// in place).
    pub(super) carry: Vec<u8>,
    /// Transaction id of the chunk being read (for the logger).
    pub(super) tid: String,
    /// The chunk being assembled, while it is small enough to pass on whole.
    pub(super) asm: Option<Chunk>,
    /// Body length the assembled chunk's Byte-Range announces (at most
    /// `WHOLE_LIMIT`), if it does.
    pub(super) expect: Option<usize>,
    /// The assembled chunk's body, as announced, lies whole in what the
    /// last read brought (or no length was announced): its first piece of
    /// data, when large, becomes a piece of the read buffer.
    pub(super) share: bool,
    pub(super) id: u64,
    pub(super) logger: Option<LoggerRef>,
    pub(super) closed: Arc<CloseState>,
    pub(super) pending: Arc<Pending>,
    /// A Closed event was produced: nothing more comes.
    pub(super) ended: bool,
}

/// Body bytes still expected from which a chunk is read straight into its
/// own buffer instead of through the read buffer (one copy less) on plain
/// TCP: a smaller read would cost a system call more for the next head,
/// which a read through the buffer brings along. (TLS decodes where rustls
/// decrypted, which is as few copies.)
pub(super) const IN_PLACE_MIN: usize = 16 * 1024;

/// Bodies from this size on that lie whole in what one read brought stay
/// in the read buffer: the chunk gets a piece of it instead of a copy (on
/// plain TCP; TLS decodes from rustls' buffer and copies). Measured on
/// 1 GiB session bulk transfers in 64 KiB chunks, where that copy was
/// about 8 % of the CPU time. A chunk the application keeps keeps the
/// whole read buffer it lies in (256 KiB), so smaller bodies, which would
/// keep much more memory than their size, are copied.
pub(super) const SHARE_MIN: usize = 32 * 1024;

/// A read into the rest of the read buffer (when chunks still hold pieces
/// of the front) takes at least this much room; else a new buffer is taken.
pub(super) const READ_MIN: usize = 64 * 1024;

/// Read buffers a connection keeps while chunks hold pieces of them (see
/// `Reader::spare`): a session's receive budget is four of them.
pub(super) const SPARE_READ_BUFS: usize = 8;

/// An unannounced body that grows past this moves into a recycled buffer
/// with room for `WHOLE_LIMIT` (glibc maps larger blocks afresh).
pub(super) const GROW_IN_POOL: usize = 128 * 1024;

/// Room left after the announced body for its end-line (read in the same call).
pub(super) const END_LINE_ROOM: usize = 48;

impl Reader {
    pub(super) fn new(
        src: Source,
        id: u64,
        logger: Option<LoggerRef>,
        closed: Arc<CloseState>,
        pending: Arc<Pending>,
    ) -> Reader {
        Reader {
            src,
            dec: Decoder::default(),
            buf: BytesMut::new(),
            buf_taken: false,
            spare: Vec::new(),
            carry: Vec::new(),
            tid: String::new(),
            asm: None,
            expect: None,
            share: false,
            id,
            logger,
            closed,
            pending,
            ended: false,
        }
    }

    pub(super) fn end(&mut self, e: Error) -> InEvent {
        self.ended = true;
        self.closed.input.store(true, Ordering::Release);
        self.closed.set(&e);
        self.pending.drop_all();
        if let Some(l) = &self.logger {
            l.log(Level::Info, &format!("transport {}: {e}", self.id));
        }
        InEvent::Closed(e)
    }

    pub(super) fn read_error(&mut self, e: std::io::Error) -> InEvent {
        let err = if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
            tls_error(&e, "reading")
        } else {
            Error::new(
                ErrorKind::Io,
                format!("reading from the connection failed: {e}"),
            )
        };
        self.end(err)
    }

    pub(super) fn eof(&mut self) -> InEvent {
        let why = if self.dec.is_idle() {
            "the peer closed the connection"
        } else {
            "the peer closed the connection in the middle of a chunk"
        };
        self.end(Error::closed(why))
    }

    pub(super) fn not_msrp(&mut self, e: crate::proto::DecodeError) -> InEvent {
        let msg = format!("the peer sent data that is not MSRP ({e}); the connection was closed");
        self.end(Error::new(ErrorKind::Protocol, msg))
    }

    /// How many bytes to read straight into the assembled chunk's buffer,
    /// or `None` to read through the read buffer: only inside a body the
    /// decoder holds nothing of, with enough of it announced to be worth it.
    pub(super) fn in_place_len(&self) -> Option<usize> {
        if !self.carry.is_empty()
            || !self.dec.body_clear()
            || !matches!(self.src, Source::Stream(_))
        {
            return None;
        }
        let have = self.asm.as_ref()?.size();
        let left = self.expect?.checked_sub(have)?;
        let room = WHOLE_LIMIT.saturating_sub(have);
        let min = IN_PLACE_MIN;
        (left >= min && room >= min).then(|| (left + END_LINE_ROOM).min(room))
    }

    /// Reads once and returns the events decoded from what came (possibly
    /// none); the last batch ends with `Closed`. Cancel-safe: the only
    /// wait is the socket read, and nothing is consumed before it returns.
    pub(super) async fn read_batch(&mut self, batch: &mut Batch) {
        if self.ended {
            batch.push_back(InEvent::Closed(self.closed.error()));
            return;
        }
        if !self.carry.is_empty() {
            let input = std::mem::take(&mut self.carry);
            self.decode_into(&input, batch);
            return;
        }
        if matches!(self.src, Source::Tls(_)) {
            let r = std::future::poll_fn(|cx| self.poll_decode_decrypted(cx, batch)).await;
            self.bytes_read(r, batch);
            return;
        }
        if let Some(want) = self.in_place_len() {
            self.read_in_place(want, batch).await;
            return;
        }
        let r = std::future::poll_fn(|cx| self.poll_read_lent(cx, batch)).await;
        if self.bytes_read(r, batch).is_none() {
            return;
        }
        let input = self.buf.split().freeze();
        self.decode_shared(&input, batch);
    }

    /// TLS: decodes the bytes rustls has decrypted where they lie, record
    /// after record, until it would have to wait or `READ_BUF` bytes were
    /// decoded (as much as one read into the read buffer takes). Returns how
    /// many. The end of the stream (`Ok(0)`) or an error is returned as it
    /// comes: its event goes into the batch after those of the records
    /// before it. Pending only when nothing was decoded, so that a cancelled
    /// read consumed nothing.
    pub(super) fn poll_decode_decrypted(
        &mut self,
        cx: &mut std::task::Context<'_>,
        batch: &mut Batch,
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        let Source::Tls(half) = std::mem::replace(&mut self.src, Source::Lent) else {
            unreachable!("only TLS readers decode where rustls decrypted");
        };
        let mut total = 0;
        let r = loop {
            match half.poll_lend(cx, |b| self.decode_into(b, batch)) {
                Poll::Ready(Ok(0)) => break Poll::Ready(Ok(0)),
                Poll::Ready(Ok(n)) => {
                    total += n;
                    if total >= READ_BUF || self.ended {
                        break Poll::Ready(Ok(total));
                    }
                }
                Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
                Poll::Pending if total > 0 => break Poll::Ready(Ok(total)),
                Poll::Pending => {
                    Self::idle(batch);
                    break Poll::Pending;
                }
            }
        };
        self.src = Source::Tls(half);
        r
    }

    /// Reads what the socket has into the read buffer, which the connection
    /// holds only while reads bring data: when a read has to wait, the
    /// buffer goes back to the pool and the next read takes one again. A
    /// busy connection keeps its buffer (touched up to its full size); one
    /// waiting for data, which may be for hours, holds none.
    pub(super) fn poll_read_lent(
        &mut self,
        cx: &mut std::task::Context<'_>,
        batch: &mut Batch,
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.read_room();
        let r = {
            // Dropped unfinished only when it read nothing.
            let Source::Stream(rd) = &mut self.src else {
                unreachable!("TLS readers lend");
            };
            let read = rd.read_buf(&mut self.buf);
            tokio::pin!(read);
            read.poll(cx)
        };
        if r.is_pending() {
            // Back to the pool only when no chunk holds a piece of it;
            // otherwise it is freed with the last of them.
            let spare = std::mem::take(&mut self.spare);
            self.buf_taken = false;
            for mut buf in spare.into_iter().chain([std::mem::take(&mut self.buf)]) {
                if buf.try_reclaim(READ_BUF) {
                    crate::proto::bufpool::give_read(Vec::from(buf));
                }
            }
            Self::idle(batch);
        }
        r
    }

    /// Room for the next read: the whole read buffer again when no chunk
    /// holds a piece of it any more; else the rest of it while that is at
    /// least `READ_MIN`; else a spare buffer that is free again, or a new
    /// one. The buffer left behind becomes a spare while there is room for
    /// it (or is freed with the last chunk that holds a piece of it).
    pub(super) fn read_room(&mut self) {
        debug_assert!(self.buf.is_empty(), "what was read is split off");
        let room = self.buf.capacity();
        if room >= READ_BUF || self.buf.try_reclaim(READ_BUF) || room >= READ_MIN {
            return;
        }
        // The most recently used free one: its memory is likeliest in cache.
        let next = match self.spare.iter_mut().rposition(|b| b.try_reclaim(READ_BUF)) {
            Some(i) => self.spare.remove(i),
            // (Through `Bytes`, which takes the vector as it is: its room too.)
            None => BytesMut::from(Bytes::from(crate::proto::bufpool::take_read(READ_BUF))),
        };
        let old = std::mem::replace(&mut self.buf, next);
        if std::mem::replace(&mut self.buf_taken, true) && self.spare.len() < SPARE_READ_BUFS {
            self.spare.push(old);
        }
    }

    /// A read has to wait: the room a burst left in the (empty) event
    /// queue is given back, as the read buffer is. While reads bring data
    /// it is kept, instead of growing again from nothing for every burst
    /// (each step moving every event of the burst so far).
    pub(super) fn idle(batch: &mut Batch) {
        if batch.is_empty() && batch.capacity() > KEEP_QUEUE_ROOM {
            *batch = VecDeque::new();
        }
    }

    /// The count of a read that brought bytes; the end of the stream or an
    /// error goes into `batch` as the last event instead.
    pub(super) fn bytes_read(
        &mut self,
        r: std::io::Result<usize>,
        batch: &mut Batch,
    ) -> Option<usize> {
        match r {
            Ok(0) => batch.push_back(self.eof()),
            Ok(n) => return Some(n),
            Err(e) => batch.push_back(self.read_error(e)),
        }
        None
    }

    /// Reads body bytes straight into the assembled chunk's buffer and
    /// decodes them where they lie. Body bytes come out of the decoder in
    /// stream order, each once, and every byte read sits in the buffer in
    /// stream order, so counting the body bytes the decoder reports is
    /// enough; what follows the end-line is kept for the next batch.
    pub(super) async fn read_in_place(&mut self, want: usize, batch: &mut Batch) {
        let Some(asm) = self.asm.as_mut() else { return };
        let data = asm.data_vec_mut();
        let start = data.len();
        data.reserve_exact(want);
        let Source::Stream(rd) = &mut self.src else {
            return;
        };
        let r = rd.take(want as u64).read_buf(data).await;
        let Some(n) = self.bytes_read(r, batch) else {
            return;
        };
        let mut valid = start;
        let mut at = start;
        let end = start + n;
        let mut flag = None;
        let mut failed = None;
        {
            let region = &self.asm.as_ref().expect("assembling").data()[..end];
            while at < end && flag.is_none() {
                match self.dec.decode(&region[at..end]) {
                    Ok((used, ev)) => {
                        match ev {
                            Some(Event::Data(d)) => {
                                if let Some(l) = &self.logger {
                                    l.received_chunk_data(self.id, d, &self.tid);
                                }
                                valid += d.len();
                            }
                            Some(Event::End(f)) => flag = Some(f),
                            // A new head cannot come before this body's end.
                            Some(Event::Head { .. }) | None => {}
                        }
                        at += used;
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if flag.is_some() && at < end {
                self.carry.extend_from_slice(&region[at..end]);
            }
        }
        if let Some(e) = failed {
            batch.push_back(self.not_msrp(e));
            return;
        }
        let mut c = self.asm.take().expect("assembling");
        // Bytes the decoder holds back (a possible end-line start) are not
        // body yet; it reports them again, from its own copy, if they are.
        c.data_vec_mut().truncate(valid);
        match flag {
            Some(f) => {
                if let Some(l) = &self.logger {
                    let line = format!("-------{}{}\r\n", self.tid, f as u8 as char);
                    l.received_chunk_end(self.id, line.as_bytes(), &self.tid);
                }
                c.set_flag(f);
                if let Some(c) = self.pending.claim(c) {
                    batch.push_back(InEvent::Whole(c));
                }
            }
            None => self.asm = Some(c),
        }
    }

    /// Decodes what a read brought into the read buffer into `batch`;
    /// large bodies that lie whole in it become pieces of it, not copies.
    pub(super) fn decode_shared(&mut self, input: &Bytes, batch: &mut Batch) {
        self.decode(input, Some(input), batch);
    }

    /// Decodes `input` (bytes carried, or decrypted by rustls) into `batch`.
    pub(super) fn decode_into(&mut self, input: &[u8], batch: &mut Batch) {
        self.decode(input, None, batch);
    }

    /// Decodes `input` into `batch`. With `owner` (the buffer `input` lies
    /// in), a body of at least `SHARE_MIN` bytes that lies whole in it is
    /// passed on as a piece of it.
    pub(super) fn decode(&mut self, input: &[u8], owner: Option<&Bytes>, batch: &mut Batch) {
        let n = input.len();
        let mut at = 0;
        while at < n {
            let (used, ev) = match self.dec.decode(&input[at..n]) {
                Ok(x) => x,
                Err(e) => {
                    batch.push_back(self.not_msrp(e));
                    return;
                }
            };
            match ev {
                None => {}
                Some(Event::Head {
                    chunk, announced, ..
                }) => {
                    if let Some(l) = &self.logger {
                        let mut head = Vec::new();
                        chunk.encode_start(&mut head);
                        l.received_new_chunk(self.id, &head, &chunk);
                        self.tid = chunk.transaction_id().to_owned();
                    }
                    let mut chunk = chunk;
                    // Room for the body at once (no regrowing and copying),
                    // as far as the Byte-Range announces it, within the limit.
                    self.expect = None;
                    self.share = false;
                    if let Some(n) = announced {
                        let n = n.min(WHOLE_LIMIT as u64) as usize;
                        let rest = input.len() - (at + used);
                        if owner.is_some() && n >= SHARE_MIN && rest >= n {
                            // The whole body is here: no buffer of its own.
                            self.share = true;
                        } else if chunk.size() == 0 {
                            // A recycled buffer when one is at hand.
                            chunk.set_data_vec(crate::proto::bufpool::take(n + END_LINE_ROOM));
                        } else {
                            chunk.reserve_data(n + END_LINE_ROOM);
                        }
                        self.expect = Some(n);
                    } else {
                        // No length announced: a large first piece is
                        // shared too (should more follow, it is copied then,
                        // as an unannounced body's growing buffer would be).
                        self.share = owner.is_some();
                    }
                    self.asm = Some(*chunk);
                }
                Some(Event::Data(d)) => {
                    if let Some(l) = &self.logger {
                        l.received_chunk_data(self.id, d, &self.tid);
                    }
                    let share = std::mem::take(&mut self.share);
                    // The body runs on past what was read: more follows.
                    let runs_on = at + used == n;
                    match self.asm.as_mut() {
                        Some(c)
                            if share
                                && c.size() == 0
                                && (SHARE_MIN..=WHOLE_LIMIT).contains(&d.len()) =>
                        {
                            match owner.and_then(|o| piece_of(o, d)) {
                                Some(p) => c.set_data_shared(p),
                                None => c.append_data(d),
                            }
                        }
                        Some(c) if share && c.size() == 0 && runs_on && d.len() < SHARE_MIN => {
                            // A small first piece of a body that goes on
                            // in the next read: copied on its own, so that
                            // the large pieces after it are not copied.
                            c.set_data_shared(Bytes::copy_from_slice(d));
                        }
                        Some(c) if c.body_is_shared() && c.size() + d.len() <= WHOLE_LIMIT => {
                            // A body left in an earlier read buffer goes on
                            // in this read: this piece is added to it, and
                            // neither is copied into a buffer of the chunk's
                            // own (only a small piece is copied, on its own,
                            // so that it keeps no read buffer). The file
                            // sink writes the pieces as they are; measured
                            // on 1 GB two-process file transfers in 128 KiB
                            // chunks, where every other chunk spans two
                            // reads, that copy was ~4 % of the receiver.
                            let piece = match owner.and_then(|o| piece_of(o, d)) {
                                Some(p) if d.len() >= SHARE_MIN => p,
                                _ => Bytes::copy_from_slice(d),
                            };
                            c.append_shared(piece);
                        }
                        Some(c) if c.size() + d.len() <= WHOLE_LIMIT => {
                            let grows =
                                c.size() + d.len() > GROW_IN_POOL || (runs_on && owner.is_none());
                            if self.expect.is_none() && grows {
                                // A large body of unannounced length (an
                                // interruptible chunk, Byte-Range end `*`):
                                // room for the most it may grow to here, in
                                // a recycled buffer, instead of regrowing
                                // (past 128 KiB each step is a fresh
                                // mapping and its page faults: 256 KiB
                                // chunks ran at 0.36-0.43x raw TCP, 0.77-0.82x
                                // with this). The same at once for a body
                                // that runs on past bytes rustls decrypted
                                // (a record at a time): growing it step by
                                // step was ~3 % of TLS bulk in `perf`.
                                c.ensure_data_room(WHOLE_LIMIT + END_LINE_ROOM);
                            }
                            c.append_data(d)
                        }
                        Some(_) => {
                            // Too big to hold: pass the head and what came
                            // so far on, and stream the rest.
                            let mut c = self.asm.take().expect("checked");
                            let mut so_far = c.take_data();
                            so_far.extend_from_slice(d);
                            batch.push_back(InEvent::Head(c));
                            batch.push_back(InEvent::Data(so_far));
                        }
                        None => batch.push_back(InEvent::Data(d.to_vec())),
                    }
                }
                Some(Event::End(f)) => {
                    if let Some(l) = &self.logger {
                        let line = format!("-------{}{}\r\n", self.tid, f as u8 as char);
                        l.received_chunk_end(self.id, line.as_bytes(), &self.tid);
                    }
                    match self.asm.take() {
                        Some(mut c) => {
                            c.set_flag(f);
                            // A response a Requester waits for goes to it.
                            if let Some(c) = self.pending.claim(c) {
                                batch.push_back(InEvent::Whole(c));
                            }
                        }
                        None => batch.push_back(InEvent::End(f)),
                    }
                }
            }
            at += used;
        }
    }
}

/// `d` as a piece of `owner` when it lies in it (the decoder also hands out
/// bytes it held back from an earlier read, which do not).
pub(super) fn piece_of(owner: &Bytes, d: &[u8]) -> Option<Bytes> {
    let start = (d.as_ptr() as usize).checked_sub(owner.as_ptr() as usize)?;
    (start + d.len() <= owner.len()).then(|| owner.slice(start..start + d.len()))
}

/// The reader task: reads and passes batches on until the connection
/// ends, or until a session takes the reader over (`handoff`).
pub(super) async fn read_task(
    mut reader: Box<Reader>,
    tx: mpsc::Sender<Batch>,
    mut handoff: oneshot::Receiver<Handoff>,
) {
    loop {
        let mut batch = Batch::new();
        tokio::select! {
            biased;
            h = &mut handoff => {
                if let Ok(back) = h {
                    let _ = back.send((reader, batch));
                }
                return;
            }
            _ = reader.read_batch(&mut batch) => {}
        };
        if batch.is_empty() {
            continue;
        }
        let last = reader.ended;
        // The application may not read for a while (backpressure): a
        // handoff can still come, and then takes this batch along.
        let sent = tokio::select! {
            biased;
            permit = tx.reserve() => match permit {
                Ok(p) => {
                    p.send(batch);
                    true
                }
                Err(_) => false,
            },
            h = &mut handoff => {
                if let Ok(back) = h {
                    let _ = back.send((reader, batch));
                }
                return;
            }
        };
        if !sent || last {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::HeaderName;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    /// A SEND with transaction id `tid` and body `body`, encoded.
    fn encoded_send(tid: &str, body: &[u8]) -> Vec<u8> {
        encoded_send_ranged(tid, body, false)
    }

    /// As `encoded_send`, with a Byte-Range header when `ranged`.
    fn encoded_send_ranged(tid: &str, body: &[u8], ranged: bool) -> Vec<u8> {
        let mut c = Chunk::new_request_unchecked(tid, "SEND", 64);
        c.push_header_checked(HeaderName::ToPath, "", "msrp://a.invalid:1/x;tcp");
        c.push_header_checked(HeaderName::FromPath, "", "msrp://b.invalid:1/y;tcp");
        c.push_header_checked(HeaderName::MessageId, "", "m1");
        if ranged {
            let range = format!("1-{}/{}", body.len(), body.len());
            c.push_header_checked(HeaderName::ByteRange, "", &range);
        }
        c.set_data_vec(body.to_vec());
        let mut out = Vec::new();
        c.encode(&mut out).unwrap();
        out
    }

    fn reader_of(r: impl AsyncRead + Send + Unpin + 'static) -> Reader {
        Reader::new(
            Source::Stream(Box::new(r)),
            1,
            None,
            Arc::new(CloseState::default()),
            Arc::new(Pending::default()),
        )
    }

    /// Large bodies stay in the read buffer and small ones are copied; a
    /// chunk the application keeps is never overwritten by later reads,
    /// which reuse a buffer only once no chunk holds a piece of it.
    #[test]
    fn kept_chunks_keep_their_bodies_while_later_reads_reuse_buffers() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // 64 chunks of 40 KiB, each body of its own byte, half of them
            // announcing their length, and after each a small one: 2.6 MiB
            // through ten or more 256 KiB reads.
            let big = |i: usize| vec![i as u8; 40 * 1024];
            let small = |i: usize| vec![b'a' + (i % 26) as u8; 100];
            let mut wire = Vec::new();
            for i in 0..64 {
                wire.extend(encoded_send_ranged(
                    &format!("big{i:05}"),
                    &big(i),
                    i % 2 == 0,
                ));
                wire.extend(encoded_send(&format!("sml{i:05}"), &small(i)));
            }
            let (mut w, r) = tokio::io::duplex(4 * READ_BUF);
            // The writer keeps the connection open: the reader waits at the end.
            let writer = tokio::spawn(async move {
                w.write_all(&wire).await.unwrap();
                w
            });
            let mut rd = reader_of(r);
            let mut kept = Vec::new();
            // Large bodies shared, with and without a Byte-Range.
            let (mut shared, mut whole) = ([0, 0], 0);
            while whole < 128 {
                let mut batch = Batch::new();
                rd.read_batch(&mut batch).await;
                for e in batch {
                    match e {
                        InEvent::Whole(c) => {
                            let i: usize = c.transaction_id()[3..].parse().unwrap();
                            if c.transaction_id().starts_with("big") {
                                shared[i % 2] += usize::from(c.shared_data().is_some());
                                assert_eq!(c.data(), &big(i)[..]);
                            } else {
                                assert!(c.shared_data().is_none(), "small bodies are copied");
                                assert_eq!(c.data(), &small(i)[..]);
                            }
                            whole += 1;
                            // Every third chunk is kept to the end; the rest
                            // are dropped at once, so buffers come free.
                            if whole % 3 == 0 {
                                kept.push(c);
                            }
                        }
                        _ => panic!("only whole chunks come"),
                    }
                }
            }
            let _w = writer.await.unwrap();
            assert_eq!(whole, 128);
            assert!(!rd.spare.is_empty(), "kept chunks held earlier buffers");
            // Nothing more comes: the waiting reader lets go of every buffer
            // (the free ones to the pool; those kept chunks hold, to them).
            let mut batch = Batch::new();
            let waited =
                tokio::time::timeout(Duration::from_millis(50), rd.read_batch(&mut batch)).await;
            assert!(waited.is_err() && batch.is_empty());
            assert!(rd.spare.is_empty() && rd.buf.capacity() == 0);
            assert!(
                shared[0] > 16 && shared[1] > 16,
                "most large bodies are pieces of a read ({shared:?} of 32 each)"
            );
            for c in &kept {
                let i: usize = c.transaction_id()[3..].parse().unwrap();
                let want = if c.transaction_id().starts_with("big") {
                    big(i)
                } else {
                    small(i)
                };
                assert_eq!(c.data(), &want[..], "{} intact", c.transaction_id());
            }
        });
    }

    #[test]
    fn a_read_takes_what_the_socket_has_and_a_waiting_read_holds_no_buffer() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (mut w, r) = tokio::io::duplex(4 * READ_BUF);
            let mut rd = reader_of(r);
            let chunk = encoded_send;
            // Two chunks in the socket, together just under the buffer's
            // size: one read brings both, whole and in order.
            let a = vec![b'a'; READ_BUF / 2];
            let b = vec![b'b'; READ_BUF / 2 - 1024];
            let mut bytes = chunk("t1a2b3c4", &a);
            bytes.extend(chunk("t5d6e7f8", &b));
            assert!(bytes.len() < READ_BUF);
            w.write_all(&bytes).await.unwrap();
            let mut batch = Batch::new();
            rd.read_batch(&mut batch).await;
            let got: Vec<Chunk> = batch
                .into_iter()
                .filter_map(|e| match e {
                    InEvent::Whole(c) => Some(c),
                    _ => None,
                })
                .collect();
            assert_eq!(got.len(), 2, "both chunks from one read");
            assert_eq!(got[0].data(), &a[..]);
            assert_eq!(got[1].data(), &b[..]);
            // Both bodies stay where they were read, in the same buffer.
            let (pa, pb) = (got[0].shared_data().unwrap(), got[1].shared_data().unwrap());
            assert!(
                pa.as_ptr() < pb.as_ptr()
                    && pb.as_ptr() as usize - (pa.as_ptr() as usize) < READ_BUF
            );
            drop(got);
            // Nothing more comes: the read waits, and the connection gives
            // its buffer back meanwhile, and the room a burst left in the
            // (empty) event queue.
            let mut batch = Batch::with_capacity(100);
            let waited =
                tokio::time::timeout(Duration::from_millis(50), rd.read_batch(&mut batch)).await;
            assert!(waited.is_err() && batch.is_empty());
            assert_eq!(
                rd.buf.capacity(),
                0,
                "a waiting connection holds no read buffer"
            );
            assert!(batch.capacity() <= KEEP_QUEUE_ROOM);
            // The next chunk is read with a buffer from the pool; a read
            // that brings data keeps the queue's room.
            w.write_all(&chunk("t9a9b9c9", b"after")).await.unwrap();
            let mut batch = Batch::with_capacity(100);
            rd.read_batch(&mut batch).await;
            assert!(matches!(batch.front(), Some(InEvent::Whole(c)) if c.data() == b"after"));
            assert!(batch.capacity() >= 100);
        });
    }

    /// A reader that hands out the given segments, one per read, then
    /// the end of the stream.
    struct Segments(std::collections::VecDeque<Vec<u8>>);

    impl AsyncRead for Segments {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if let Some(mut seg) = self.0.pop_front() {
                let n = seg.len().min(buf.remaining());
                buf.put_slice(&seg[..n]);
                if n < seg.len() {
                    self.0.push_front(seg.split_off(n));
                }
            }
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// The chunks a reader gives for `wire` cut at `cuts` (one read per
    /// piece), up to the close.
    fn read_cut(wire: &[u8], cuts: &[usize]) -> Vec<Chunk> {
        let mut segs = std::collections::VecDeque::new();
        let mut from = 0;
        for &c in cuts.iter().chain([wire.len()].iter()) {
            segs.push_back(wire[from..c].to_vec());
            from = c;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut rd = reader_of(Segments(segs));
            let mut got = Vec::new();
            loop {
                let mut batch = Batch::new();
                rd.read_batch(&mut batch).await;
                for e in batch {
                    match e {
                        InEvent::Whole(c) => got.push(c),
                        InEvent::Closed(_) => return got,
                        _ => panic!("only whole chunks, then the close"),
                    }
                }
            }
        })
    }

    /// A body of unannounced length (no Byte-Range end) that spans reads
    /// stays in the read buffers, one piece per read, and reads back whole;
    /// a small piece is copied on its own; past `MAX_PIECES` pieces the
    /// body becomes a buffer of its own.
    #[test]
    fn an_unannounced_body_over_several_reads_is_kept_in_pieces() {
        let body: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();
        let wire = encoded_send("pcs12345", &body);
        let head = wire.len() - body.len() - "-------pcs12345$\r\n".len();
        let expect = |cuts: &[usize], pieces: usize| {
            let got = read_cut(&wire, cuts);
            assert_eq!(got.len(), 1, "cuts {cuts:?}");
            let c = &got[0];
            assert_eq!(c.shared_pieces(), pieces, "cuts {cuts:?}");
            assert_eq!(c.size(), body.len());
            let joined: Vec<u8> = c.data_pieces().flatten().copied().collect();
            assert!(joined == body, "pieces in order, cuts {cuts:?}");
            assert!(c.data() == &body[..], "flattened, cuts {cuts:?}");
        };
        // Two large pieces.
        expect(&[head + 100 * 1024], 2);
        // A large piece, then a small one (copied, so that it keeps no
        // read buffer of its own).
        expect(&[head + 190 * 1024], 2);
        // Four reads: four pieces.
        expect(&[head + 40 * 1024, head + 80 * 1024, head + 120 * 1024], 4);
        // Six reads: too many pieces, one buffer of its own.
        let six: Vec<usize> = (1..6).map(|i| head + i * 34 * 1024).collect();
        expect(&six, 0);
        // A small first piece (copied on its own), then a large one.
        expect(&[head + 1000], 2);
        // A body that ends in the read it starts in is one piece, or, when
        // small, a buffer of its own; a small one cut by a read is two
        // small copies.
        expect(&[], 1);
        let small = encoded_send("sml12345", b"tiny body");
        let end_line = "\r\n-------sml12345$\r\n".len();
        for (cuts, pieces) in [(vec![], 0), (vec![small.len() - end_line - 4], 2)] {
            let got = read_cut(&small, &cuts);
            assert_eq!(got[0].shared_pieces(), pieces, "cuts {cuts:?}");
            assert_eq!(got[0].data(), b"tiny body");
        }
    }
}
