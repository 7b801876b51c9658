//! The writing side of a transport: encoded chunks queued in order, the
//! writer task that sends them in vectored batches, and the direct write
//! from the caller's thread when nothing is queued ahead.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Notify, oneshot};

use super::super::context::Context;
use super::super::error::{Error, ErrorKind};
use super::super::logger::{Level, LoggerRef};
use super::super::stream::{tls_error, try_send_vectored};
use super::{CloseState, KEEP_QUEUE_ROOM};
use crate::proto::chunk::encode_end_line;
use crate::proto::ids::Id;
use crate::proto::session::Piece;
use crate::proto::{Chunk, Flag};

/// Bodies up to this size are copied into the head buffer.
pub(super) const INLINE_BODY: usize = 4096;

/// Small chunks sent together share a buffer up to about this size.
pub(super) const PACKED_LIMIT: usize = 64 * 1024;

/// Room for a buffer of small chunks: the limit and a last chunk that
/// crosses it (its body is inline, its head of usual size).
pub(super) const PACKED_ROOM: usize = PACKED_LIMIT + INLINE_BODY + 1024;

/// How a write from the caller's thread went.
pub(super) enum Direct {
    /// Everything is with the operating system.
    Sent,
    /// Part of it is: the rest waits in the queue with the call's waiter.
    Waiting,
    /// Nothing was written (the connection is busy, or logged); the waiter
    /// is handed back.
    Busy(oneshot::Sender<Result<(), Error>>),
}

/// Whether a chunk's body still has to be checked for its end-line before
/// it is framed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// Scan the body.
    Check,
    /// The caller checked it (debug builds verify the claim).
    Checked,
}

impl Framing {
    pub(super) fn contains_end_line(self, c: &Chunk) -> bool {
        match self {
            Framing::Check => c.body_contains_end_line(c.data()),
            Framing::Checked => {
                debug_assert!(
                    !c.body_contains_end_line(c.data()),
                    "a chunk passed as checked contains its end-line"
                );
                false
            }
        }
    }
}

/// What is left of `parts` (written in order) once `sent` bytes are written.
pub(super) fn left_after(parts: [&[u8]; 3], mut sent: usize) -> impl Iterator<Item = &[u8]> {
    parts.into_iter().filter_map(move |p| {
        if sent >= p.len() {
            sent -= p.len();
            return None;
        }
        let rest = &p[sent..];
        sent = 0;
        Some(rest)
    })
}

pub(super) fn end_line_in_body() -> Error {
    Error::new(
        ErrorKind::InvalidArgument,
        "the body contains the chunk's end-line; give the chunk another transaction id",
    )
}

/// One encoded chunk waiting to be written. Small bodies are copied next to
/// the head (one buffer); larger ones stay in the chunk's own buffer and go
/// out with a vectored write, so body bytes are never copied on the way out.
pub(super) struct WriteJob {
    /// Start line and headers; with `inline`, also the body and the end-line.
    pub(super) head: Vec<u8>,
    pub(super) body: Vec<u8>,
    /// The body, when it is a piece of a shared buffer (then `body` is empty).
    pub(super) shared: Option<Bytes>,
    pub(super) tail: Vec<u8>,
    pub(super) inline: bool,
    pub(super) head_len: usize,
    pub(super) body_len: usize,
    /// Bytes already written (a direct write that did not finish).
    pub(super) sent: usize,
    pub(super) chunk: Option<Chunk>,
    /// For the logger: the transaction id of the open chunk whose body
    /// (and end-line) this job carries.
    pub(super) log_tid: Option<Id>,
    pub(super) done: Option<oneshot::Sender<Result<(), Error>>>,
}

impl WriteJob {
    pub(super) fn new(
        chunk: Chunk,
        log: bool,
        done: Option<oneshot::Sender<Result<(), Error>>>,
    ) -> Self {
        Self::build(chunk, log, done, true)
    }

    /// The start of a streamed chunk: its head and first piece, no end-line.
    pub(super) fn open(chunk: Chunk, log: bool) -> Self {
        Self::build(chunk, log, None, false)
    }

    /// More body of a streamed chunk, and its end-line when `end` is set.
    pub(super) fn more(tid: Id, data: Piece, end: Option<Flag>, log: bool) -> Self {
        let mut tail = Vec::new();
        if let Some(flag) = end {
            // A streamed chunk's body is never empty: its end-line follows a CRLF.
            encode_end_line(&tid, flag, true, &mut tail);
        }
        let (body, shared) = match data {
            Piece::Own(v) => (v, None),
            Piece::Shared(b) => (Vec::new(), Some(b)),
        };
        let body_len = body.len() + shared.as_ref().map_or(0, |b| b.len());
        WriteJob {
            head: Vec::new(),
            body,
            shared,
            tail,
            inline: false,
            head_len: 0,
            body_len,
            sent: 0,
            chunk: None,
            log_tid: log.then_some(tid),
            done: None,
        }
    }

    fn build(
        mut chunk: Chunk,
        log: bool,
        done: Option<oneshot::Sender<Result<(), Error>>>,
        end: bool,
    ) -> Self {
        let body_len = chunk.size();
        let inline = body_len <= INLINE_BODY;
        let mut head = Vec::with_capacity(256 + if inline { body_len } else { 0 });
        chunk.encode_start(&mut head);
        let head_len = head.len();
        let mut tail = Vec::new();
        let mut shared = None;
        let body = if inline {
            head.extend_from_slice(chunk.data());
            if end {
                chunk.encode_end(chunk.flag(), &mut head);
            }
            Vec::new()
        } else {
            if end {
                chunk.encode_end(chunk.flag(), &mut tail);
            }
            if log {
                chunk.data().to_vec()
            } else {
                // A shared body (a piece of a message in memory, or of a read
                // buffer) is written from where it is.
                shared = chunk.take_shared();
                if shared.is_some() {
                    Vec::new()
                } else {
                    chunk.take_data()
                }
            }
        };
        WriteJob {
            head,
            body,
            shared,
            tail,
            inline,
            head_len,
            body_len,
            sent: 0,
            chunk: log.then_some(chunk),
            log_tid: None,
            done,
        }
    }

    /// Whole encoded chunks, written as they are (no logging, no waiter).
    pub(super) fn packed(bytes: Vec<u8>) -> Self {
        WriteJob {
            head_len: bytes.len(),
            head: bytes,
            body: Vec::new(),
            shared: None,
            tail: Vec::new(),
            inline: false,
            body_len: 0,
            sent: 0,
            chunk: None,
            log_tid: None,
            done: None,
        }
    }

    /// The head, body and end-line as written.
    pub(super) fn parts(&self) -> [&[u8]; 3] {
        if self.inline {
            let (h, rest) = self.head.split_at(self.head_len);
            let (b, t) = rest.split_at(self.body_len);
            [h, b, t]
        } else {
            [&self.head, self.body(), &self.tail]
        }
    }

    /// The body, when it is not inline.
    pub(super) fn body(&self) -> &[u8] {
        self.shared.as_deref().unwrap_or(&self.body)
    }

    /// Gives back room reserved for a burst of small chunks that did not
    /// come, before the job waits in the queue (a job written at once is
    /// freed anyway).
    pub(super) fn trim(&mut self) {
        if self.head.capacity() - self.head.len() > INLINE_BODY {
            self.head.shrink_to_fit();
        }
    }

    pub(super) fn len(&self) -> usize {
        self.head.len() + self.body().len() + self.tail.len()
    }

    /// Appends what is left to write of this job.
    pub(super) fn slices<'a>(&'a self, out: &mut Vec<IoSlice<'a>>) {
        let parts = [&self.head[..], self.body(), &self.tail[..]];
        out.extend(left_after(parts, self.sent).map(IoSlice::new));
    }

    pub(super) fn finish(mut self, r: Result<(), Error>) {
        if let Some(d) = self.done.take() {
            let _ = d.send(r);
        }
    }
}

impl Drop for WriteJob {
    fn drop(&mut self) {
        // A large body's buffer goes back for the next piece or read.
        crate::proto::bufpool::give(std::mem::take(&mut self.body));
    }
}

/// What waits for the writer task.
pub(super) struct WriteQueue {
    pub(super) jobs: VecDeque<WriteJob>,
    /// The writer task is writing jobs it took from here.
    pub(super) busy: bool,
    /// False once closed locally: the writer writes what is queued, then shuts down.
    pub(super) open: bool,
    /// Plain TCP without logging: the socket, so that a caller can write
    /// at once when nothing is queued or being written (saves a task hand-off).
    pub(super) direct: Option<Arc<OwnedWriteHalf>>,
    /// TLS without logging: the writing half, for `write_chunk` to write at
    /// once in the same case (see `Out::enqueue_now`).
    pub(super) direct_tls: Option<super::super::stream::ConnHalf>,
}

/// The sending side, shared with [`Requester`]s.
pub(super) struct Out {
    pub(super) ctx: Arc<Context>,
    /// Whether the writer logs what it writes (a logger was set at start).
    pub(super) log: bool,
    pub(super) q: Mutex<WriteQueue>,
    /// Wakes the writer task when jobs are queued or the queue closes.
    pub(super) wake: Notify,
    /// Wakes a caller reading the socket directly when the transport closes.
    pub(super) shut: Notify,
    pub(super) closed: Arc<CloseState>,
    pub(super) queued: Queued,
}

/// Bytes handed to the writer task and not yet written, with a signal when they go out.
#[derive(Default)]
pub(super) struct Queued {
    pub(super) bytes: AtomicUsize,
    pub(super) drained: Notify,
}

impl Out {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, WriteQueue> {
        self.q.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn enqueue(
        &self,
        chunk: Chunk,
        done: Option<oneshot::Sender<Result<(), Error>>>,
    ) -> Result<(), Error> {
        let job = self.job(chunk, done)?;
        self.enqueue_jobs(vec![job], false)
    }

    pub(super) fn job(
        &self,
        chunk: Chunk,
        done: Option<oneshot::Sender<Result<(), Error>>>,
    ) -> Result<WriteJob, Error> {
        self.job_framed(chunk, done, Framing::Check)
    }

    pub(super) fn job_framed(
        &self,
        chunk: Chunk,
        done: Option<oneshot::Sender<Result<(), Error>>>,
        framing: Framing,
    ) -> Result<WriteJob, Error> {
        if framing.contains_end_line(&chunk) {
            return Err(end_line_in_body());
        }
        Ok(WriteJob::new(chunk, self.log, done))
    }

    /// Queues `jobs` in order. With `direct`, when nothing is queued or
    /// being written, writes them at once from this thread instead (one
    /// system call, no hand-off to the writer task); what does not fit in
    /// the socket's buffer is queued.
    pub(super) fn enqueue_jobs(&self, jobs: Vec<WriteJob>, direct: bool) -> Result<(), Error> {
        if self.closed.is() || self.ctx.is_closed() {
            return Err(self.closed.error());
        }
        let mut q = self.lock();
        if !q.open {
            return Err(self.closed.error());
        }
        let mut jobs = jobs.into_iter().peekable();
        let mut written = Vec::new();
        if let (true, Some(sock), false, true) = (direct, &q.direct, q.busy, q.jobs.is_empty()) {
            let batch: Vec<WriteJob> = jobs.by_ref().take(WRITE_JOBS).collect();
            let mut v = Vec::with_capacity(batch.len() * 3);
            for j in &batch {
                j.slices(&mut v);
            }
            // An error other than a full buffer is met again, and
            // reported, by the writer task.
            let mut n = try_send_vectored((**sock).as_ref(), &v).unwrap_or(0);
            drop(v);
            for mut j in batch {
                let left = j.len();
                if n >= left {
                    n -= left;
                    written.push(j);
                } else {
                    j.sent = n;
                    n = 0;
                    self.queued.bytes.fetch_add(left - j.sent, Ordering::AcqRel);
                    j.trim();
                    q.jobs.push_back(j);
                }
            }
        }
        let queued = jobs.peek().is_some() || !q.jobs.is_empty();
        for mut j in jobs {
            self.queued.bytes.fetch_add(j.len(), Ordering::AcqRel);
            j.trim();
            q.jobs.push_back(j);
        }
        drop(q);
        if queued {
            self.wake.notify_one();
        }
        for j in written {
            j.finish(Ok(()));
        }
        Ok(())
    }

    /// `write_chunk`'s job. Over TLS as over plain TCP it is written from
    /// the calling thread when the writer is idle and the connection free:
    /// rustls takes it (up to its send buffer) and the socket what it can;
    /// what rustls did not take is queued, and records rustls could not send
    /// yet are left to the writer task to flush (an empty job that finishes
    /// the call once they are sent). A session's sends do not come here:
    /// they run on the thread that reads the connection, which would then
    /// wait for the encryption.
    pub(super) fn enqueue_now(&self, mut job: WriteJob) -> Result<(), Error> {
        if self.closed.is() || self.ctx.is_closed() {
            return Err(self.closed.error());
        }
        let mut q = self.lock();
        let tls = match (&q.direct_tls, q.open, q.busy, q.jobs.is_empty()) {
            (Some(h), true, false, true) => h.handle(),
            _ => {
                drop(q);
                return self.enqueue_jobs(vec![job], true);
            }
        };
        let r = {
            let mut v = Vec::with_capacity(3);
            job.slices(&mut v);
            tls.try_write_now(&v)
        };
        match r {
            Some(Ok((n, unsent))) => {
                job.sent = n.min(job.len());
                let done = if job.sent < job.len() {
                    self.queued
                        .bytes
                        .fetch_add(job.len() - job.sent, Ordering::AcqRel);
                    q.jobs.push_back(job);
                    None
                } else if unsent {
                    // Finished when the writer task has sent the rest of
                    // its records: `write_chunk` still returns only once
                    // the whole chunk is with the operating system.
                    let mut flush = WriteJob::packed(Vec::new());
                    flush.done = job.done.take();
                    q.jobs.push_back(flush);
                    None
                } else {
                    Some(job)
                };
                let wake = !q.jobs.is_empty();
                drop(q);
                if wake {
                    self.wake.notify_one();
                }
                if let Some(job) = done {
                    job.finish(Ok(()));
                }
                Ok(())
            }
            // In use by the reading half, or an error the writer task meets
            // again and reports: queued.
            _ => {
                drop(q);
                self.enqueue_jobs(vec![job], true)
            }
        }
    }

    /// `write_chunk`'s first try, from the caller's thread and without
    /// copying the chunk: when nothing is logged, queued or being written,
    /// its head, body and end-line go straight to the socket (or to rustls,
    /// as in [`Out::enqueue_now`]). Only bytes the socket or rustls did not
    /// take are copied, into a job that carries `done`. The body was
    /// checked for its end-line by the caller.
    pub(super) fn write_borrowed_now(
        &self,
        chunk: &Chunk,
        done: oneshot::Sender<Result<(), Error>>,
    ) -> Result<Direct, Error> {
        if self.closed.is() || self.ctx.is_closed() {
            return Err(self.closed.error());
        }
        if self.log {
            return Ok(Direct::Busy(done));
        }
        let mut q = self.lock();
        if !q.open || q.busy || !q.jobs.is_empty() {
            return Ok(Direct::Busy(done));
        }
        let mut head = Vec::with_capacity(256);
        chunk.encode_start(&mut head);
        let mut tail = Vec::with_capacity(48);
        chunk.encode_end(chunk.flag(), &mut tail);
        let parts = [&head[..], chunk.data(), &tail[..]];
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let slices = parts.map(IoSlice::new);
        let (n, unsent) = if let Some(sock) = &q.direct {
            // An error other than a full buffer is met again, and
            // reported, by the writer task.
            (
                try_send_vectored((**sock).as_ref(), &slices).unwrap_or(0),
                false,
            )
        } else if let Some(h) = &q.direct_tls {
            match h.handle().try_write_now(&slices) {
                Some(Ok(r)) => r,
                _ => return Ok(Direct::Busy(done)),
            }
        } else {
            return Ok(Direct::Busy(done));
        };
        if n == 0 {
            return Ok(Direct::Busy(done));
        }
        let job = if n < total {
            let mut rest = Vec::with_capacity(total - n);
            for p in left_after(parts, n) {
                rest.extend_from_slice(p);
            }
            self.queued.bytes.fetch_add(rest.len(), Ordering::AcqRel);
            rest
        } else if unsent {
            // rustls holds records the socket did not take: the writer task
            // sends them, and the call ends when it has.
            Vec::new()
        } else {
            return Ok(Direct::Sent);
        };
        let mut job = WriteJob::packed(job);
        job.done = Some(done);
        q.jobs.push_back(job);
        drop(q);
        self.wake.notify_one();
        Ok(Direct::Waiting)
    }

    /// No more jobs: the writer writes what is queued and shuts the connection down.
    pub(super) fn close(&self) {
        self.lock().open = false;
        self.wake.notify_one();
    }
}

/// Most bytes written with one system call.
pub(super) const WRITE_BATCH: usize = 256 * 1024;

/// Most jobs in one vectored write (each has up to three parts; IOV_MAX is 1024).
pub(super) const WRITE_JOBS: usize = 256;

/// Where the writer task writes.
pub(super) trait Sink: Send {
    /// Writes all of `bufs`.
    fn write_all_vectored(
        &mut self,
        bufs: &mut [IoSlice<'_>],
    ) -> impl std::future::Future<Output = std::io::Result<()>> + Send;
    /// Ends the connection's sending side.
    fn shutdown(&mut self) -> impl std::future::Future<Output = ()> + Send;
}

impl Sink for TcpSink {
    async fn write_all_vectored(&mut self, mut bufs: &mut [IoSlice<'_>]) -> std::io::Result<()> {
        while !bufs.is_empty() {
            match try_send_vectored(self.0.as_ref().as_ref(), bufs) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => IoSlice::advance_slices(&mut bufs, n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => self.0.writable().await?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn shutdown(&mut self) {
        // The last reference shuts the sending side down when dropped.
    }
}

/// Plain TCP, shared with callers that write directly when the writer is idle.
pub(super) struct TcpSink(pub(super) Arc<OwnedWriteHalf>);

impl<W: AsyncWrite + Unpin + Send> Sink for StreamSink<W> {
    async fn write_all_vectored(&mut self, mut bufs: &mut [IoSlice<'_>]) -> std::io::Result<()> {
        while !bufs.is_empty() {
            let n = self.0.write_vectored(bufs).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut bufs, n);
        }
        self.0.flush().await
    }

    async fn shutdown(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

/// Any stream (TLS): records are flushed after every write, so none stay
/// in rustls' buffer when the queue goes idle.
pub(super) struct StreamSink<W>(pub(super) W);

pub(super) async fn write_loop<S: Sink>(
    mut sink: S,
    out: Arc<Out>,
    id: u64,
    logger: Option<LoggerRef>,
) {
    let mut batch: Vec<WriteJob> = Vec::new();
    loop {
        let wake = out.wake.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let total = {
            let mut q = out.lock();
            if q.jobs.is_empty() {
                q.busy = false;
                if q.jobs.capacity() > KEEP_QUEUE_ROOM {
                    // A burst's room is not kept while the connection is quiet.
                    q.jobs = VecDeque::new();
                }
                if !q.open {
                    q.direct = None;
                    q.direct_tls = None;
                    break;
                }
                None
            } else {
                // Take what is queued (up to a bound), so that many small
                // chunks leave in one write.
                q.busy = true;
                let mut total = 0;
                while total < WRITE_BATCH && batch.len() < WRITE_JOBS {
                    let Some(j) = q.jobs.pop_front() else { break };
                    total += j.len() - j.sent;
                    batch.push(j);
                }
                Some(total)
            }
        };
        let Some(total) = total else {
            wake.await;
            continue;
        };
        let r = {
            let mut slices = Vec::with_capacity(batch.len() * 3);
            for j in &batch {
                j.slices(&mut slices);
            }
            sink.write_all_vectored(&mut slices).await
        };
        out.queued.bytes.fetch_sub(total, Ordering::AcqRel);
        out.queued.drained.notify_waiters();
        if let Err(e) = r {
            let err = if e.get_ref().is_some_and(|i| i.is::<rustls::Error>()) {
                tls_error(&e, "writing")
            } else {
                Error::closed(format!("writing to the connection failed: {e}"))
            };
            out.closed.set(&err);
            if let Some(l) = &logger {
                l.log(Level::Warn, &format!("transport {id}: {err}"));
            }
            let rest: Vec<WriteJob> = {
                let mut q = out.lock();
                q.open = false;
                q.direct = None;
                q.direct_tls = None;
                q.busy = false;
                q.jobs.drain(..).collect()
            };
            for j in batch.drain(..).chain(rest) {
                j.finish(Err(err.clone()));
            }
            return;
        }
        for job in batch.drain(..) {
            if let Some(l) = &logger {
                let [head, body, tail] = job.parts();
                let tid = match (&job.chunk, &job.log_tid) {
                    (Some(c), _) => {
                        l.sent_new_chunk(id, head, c);
                        Some(c.transaction_id())
                    }
                    (None, Some(t)) => Some(t.as_str()),
                    _ => None,
                };
                if let Some(tid) = tid {
                    if !body.is_empty() {
                        l.sent_chunk_data(id, body, tid);
                    }
                    if !tail.is_empty() {
                        l.sent_chunk_end(id, tail, tid);
                    }
                }
            }
            job.finish(Ok(()));
        }
    }
    sink.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_a_packed_job_gives_back_room_reserved_for_a_burst() {
        // A pump reserves room for a burst of small chunks before it knows
        // how many come; a lone response must not keep that room while
        // queued (`enqueue_jobs` trims what it queues).
        let mut b = Vec::with_capacity(PACKED_ROOM);
        b.extend_from_slice(&[b'x'; 120]);
        let mut j = WriteJob::packed(b);
        j.trim();
        assert_eq!(j.head.len(), 120);
        assert!(j.head.capacity() < 1024, "{}", j.head.capacity());
        // A full buffer keeps its allocation.
        let mut b = Vec::with_capacity(PACKED_LIMIT);
        b.resize(PACKED_LIMIT - 100, b'y');
        let mut j = WriteJob::packed(b);
        j.trim();
        assert_eq!(j.head.capacity(), PACKED_LIMIT);
    }
}
