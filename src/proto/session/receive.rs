//! Receiving: incoming requests checked and answered (RFC 4975 §7.3),
//! messages reassembled or announced in parts, limits on what the peer may
//! make us hold, and REPORTs (§7.1.2, §7.3.1).

use super::*;

#[derive(Default)]
pub(super) struct Incoming {
    pub(super) head: Option<Chunk>,
    pub(super) data: Vec<u8>,
    /// Received byte intervals [start, end) (0-based), merged.
    pub(super) have: Vec<(u64, u64)>,
    /// Length of the message once its last chunk arrived (or its total is known).
    pub(super) end: Option<u64>,
    pub(super) success_report: bool,
    /// When its last chunk arrived (it expires `incomplete_timeout` later).
    pub(super) last: Option<Instant>,
}

impl Incoming {
    pub(super) fn add(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        self.have.push((start, end));
        self.have.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.have.len());
        for &(s, e) in &self.have {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        self.have = merged;
    }

    pub(super) fn into_event(self, message_id: String, expired: bool) -> SessionEvent {
        SessionEvent::Incomplete {
            received: self.received(),
            total: self.end,
            head: self.head,
            message_id,
            expired,
        }
    }

    pub(super) fn received(&self) -> u64 {
        self.have.iter().map(|(s, e)| e - s).sum()
    }

    pub(super) fn complete(&self) -> bool {
        match self.end {
            Some(0) => true,
            Some(n) => self.have.len() == 1 && self.have[0] == (0, n),
            None => false,
        }
    }
}

/// Whether a kept buffer of `capacity` bytes takes a message of `total`:
/// large enough, and not more than twice as large (a small message does
/// not hold a large buffer).
fn spare_fits(capacity: usize, total: usize) -> bool {
    capacity >= total && capacity / 2 <= total
}

/// A kept buffer for a message of `total` bytes, emptied (its old bytes
/// lie past its length: never seen).
fn take_spare(spare: &mut Vec<Vec<u8>>, total: usize) -> Option<Vec<u8>> {
    let i = spare.iter().position(|v| spare_fits(v.capacity(), total))?;
    let mut v = spare.swap_remove(i);
    v.clear();
    Some(v)
}

impl Session {
    /// A buffer given back with [`Session::recycle`] for a message of
    /// `total` bytes reassembled elsewhere (a memory sink), if one fits.
    pub fn take_spare(&mut self, total: u64) -> Option<Vec<u8>> {
        take_spare(&mut self.spare, usize::try_from(total).ok()?)
    }

    /// Gives back the buffer of a message reassembled in memory (the data
    /// of a [`SessionEvent::Message`], or of a memory sink) once the
    /// application is done with it: one of at least [`SPARE_MIN`] bytes is kept for the next
    /// large message whose size is announced, which then needs no fresh
    /// memory (its pages would each be faulted in and zeroed by the
    /// kernel: a quarter of the receiver's time for 50 MB messages). At
    /// most two are kept; the driver frees them with
    /// [`Session::release_spare`] once no other came back for a while.
    /// Returns the number to pass to that call when the buffer was kept.
    pub fn recycle(&mut self, v: Vec<u8>) -> Option<u64> {
        if v.capacity() < SPARE_MIN || self.closed {
            return None;
        }
        if self.spare.len() >= SPARE_KEPT {
            self.spare.remove(0);
        }
        self.spare.push(v);
        self.spare_gen += 1;
        Some(self.spare_gen)
    }

    /// Frees the kept buffers unless one came back after the
    /// [`Session::recycle`] call that returned `generation`.
    pub fn release_spare(&mut self, generation: u64) {
        if generation == self.spare_gen {
            self.spare = Vec::new();
        }
    }

    /// Bytes the kept buffers hold (their capacity).
    pub fn spare_bytes(&self) -> usize {
        self.spare.iter().map(Vec::capacity).sum()
    }

    /// Makes room for the responses to `n` requests about to be handled
    /// (a burst read at once), so the queue does not regrow step by step.
    pub fn expect_requests(&mut self, n: usize) {
        self.control.reserve(n);
    }

    pub(super) fn respond(&mut self, req: &Chunk, code: u16, comment: &str) {
        let ok = (200..300).contains(&code);
        let send = if ok {
            wants_success_response(req)
        } else {
            wants_error_response(req)
        };
        if send {
            // A request too broken to take its paths from is answered along
            // this session's own paths.
            let r = req.make_response(code, Some(comment)).or_else(|_| {
                let mut r = Chunk::response(req.transaction_id(), code, Some(comment))?;
                let to = crate::proto::transport::outgoing_to_path(&self.local, &self.remote);
                r.set_to_path(&to[..to.len().min(1)]);
                r.set_from_path(crate::proto::transport::outgoing_from_path(&self.local));
                Ok::<Chunk, crate::proto::chunk::ChunkError>(r)
            });
            if let Ok(r) = r {
                self.control.push_back(r);
            }
        }
    }

    /// Handles one part of a chunk that arrives in pieces (the driver reads
    /// large chunks in bounded segments, each with its Byte-Range moved, so
    /// that memory stays bounded whatever a peer sends). The checks and any
    /// error response happen on the first part; a refused chunk's other
    /// parts are dropped; the 200 (one per transaction) goes with the last.
    pub fn handle_part(&mut self, chunk: Chunk, first: bool, last: bool, now: Instant) {
        if first && last {
            return self.handle_chunk(chunk, now);
        }
        let tid = chunk.transaction_id().to_owned();
        let continuing = self
            .part
            .as_ref()
            .filter(|(t, _)| *t == tid)
            .map(|(_, refused)| *refused);
        if !first && continuing == Some(true) {
            if last {
                self.part = None;
            }
            return;
        }
        if chunk.method() != Some("SEND") {
            // Only SEND bodies may be large: other requests in parts are
            // refused on their first part; a response is taken on its last.
            if !chunk.is_request() {
                if last {
                    self.handle_chunk(chunk, now);
                }
            } else if first {
                self.respond(&chunk, 413, "Request Too Large");
                self.part = (!last).then_some((tid, true));
            }
            return;
        }
        let message_id = chunk.message_id().unwrap_or("").to_owned();
        let accepted = self.incoming_send(chunk, last, now);
        if !accepted && !first {
            // Earlier parts were taken; the message can no longer complete.
            self.forget_incoming(&message_id);
        }
        self.part = if last { None } else { Some((tid, !accepted)) };
    }

    /// Handles a chunk that arrived on the connection.
    pub fn handle_chunk(&mut self, chunk: Chunk, now: Instant) {
        if !chunk.is_request() {
            let code = chunk.code().unwrap_or(0);
            self.settle(
                chunk.transaction_id(),
                code,
                chunk.comment().unwrap_or(""),
                false,
            );
            return;
        }
        match chunk.method() {
            Some("REPORT") => self.events.push_back(SessionEvent::Report(chunk)),
            Some("SEND") => {
                self.incoming_send(chunk, true, now);
            }
            Some("NICKNAME") => self.incoming_nickname(chunk),
            _ => self.respond(&chunk, 501, "Method Not Implemented"),
        }
    }

    /// A NICKNAME request (RFC 7701 §7.1): 400 without Use-Nickname or
    /// with report headers, 424 for a malformed nickname; else 200 at once,
    /// or the application's answer when it decides.
    fn incoming_nickname(&mut self, chunk: Chunk) {
        let ok = chunk.header_by_name("Use-Nickname").is_some()
            && chunk.header(HeaderName::SuccessReport).is_none()
            && chunk.header(HeaderName::FailureReport).is_none();
        if !ok {
            self.respond(&chunk, 400, "Bad Request");
            return;
        }
        if let Some((code, why)) = self.check_paths(&chunk) {
            self.respond(&chunk, code, &why);
            return;
        }
        let Some(nick) = chunk
            .header_by_name("Use-Nickname")
            .and_then(parse_nickname)
        else {
            self.respond(&chunk, 424, "Malformed Nickname");
            return;
        };
        if !self.cfg.nickname_by_application {
            self.respond(&chunk, 200, "OK");
            self.events.push_back(SessionEvent::Chunk(chunk));
            return;
        }
        if self.nicknames.len() >= MAX_PENDING_NICKNAMES {
            self.respond(&chunk, 403, "Too many nickname requests waiting");
            return;
        }
        self.events.push_back(SessionEvent::Nickname {
            transaction_id: chunk.transaction_id().to_owned(),
            nickname: nick,
        });
        self.nicknames.push(chunk);
    }

    /// The application's answer to the NICKNAME request `transaction_id`
    /// (200, or 403, 423, 424, 425 of RFC 7701 §7.1 / §11); false when no
    /// such request waits.
    pub fn answer_nickname(&mut self, transaction_id: &str, code: u16, comment: &str) -> bool {
        let Some(i) = self
            .nicknames
            .iter()
            .position(|c| c.transaction_id() == transaction_id)
        else {
            return false;
        };
        let req = self.nicknames.swap_remove(i);
        self.respond(&req, code, comment);
        true
    }

    pub(super) fn check_paths(&mut self, chunk: &Chunk) -> Option<(u16, String)> {
        let to = chunk.header(HeaderName::ToPath).unwrap_or("");
        let from = chunk.header(HeaderName::FromPath).unwrap_or("");
        if self
            .accepted_paths
            .as_ref()
            .is_some_and(|(t, f)| t == to && f == from)
        {
            return None;
        }
        match check_incoming(chunk, &self.local, &self.remote, self.cfg.sessmatch) {
            PathCheck::Ok => {
                self.accepted_paths = Some((to.to_owned(), from.to_owned()));
                None
            }
            PathCheck::Reject(code, why) => Some((code, why)),
        }
    }

    /// Checks and takes an incoming SEND (or one part of it); answers errors,
    /// and 200 when `answer_ok`. Returns whether it was accepted.
    pub(super) fn incoming_send(&mut self, chunk: Chunk, answer_ok: bool, now: Instant) -> bool {
        if chunk.verify_headers().is_err() {
            {
                self.respond(&chunk, 400, "Bad Request");
                return false;
            }
        }
        if let Some((code, _)) = self.check_paths(&chunk) {
            let comment = if code == 481 {
                "No Such Session"
            } else {
                "Bad Request"
            };
            {
                self.respond(&chunk, code, comment);
                return false;
            }
        }
        let has_body = chunk.size() > 0 || chunk.content_type().is_some();
        if !has_body {
            // An empty SEND: a binding or keep-alive.
            if answer_ok {
                self.respond(&chunk, 200, "OK");
            }
            return true;
        }
        let refusal = match chunk.content_type() {
            None => Some("Content-Type header missing"),
            Some(ct) if !accepts(&self.cfg.accept_types, ct) => Some("Unsupported Media Type"),
            _ => None,
        };
        if let Some(why) = refusal {
            self.respond(&chunk, 415, why);
            return false;
        }
        let len = chunk.size() as u64;
        let range = match chunk.byte_range() {
            Ok(Some(r)) => r,
            Ok(None) => ByteRange {
                start: 1,
                end: Some(len),
                total: Some(len),
            },
            Err(_) => {
                self.respond(&chunk, 400, "Bad Request");
                return false;
            }
        };
        let start0 = range.start - 1;
        let end0 = start0 + len;
        // RFC 4975 §7.3.1: a chunk's real length is its body's; a body
        // shorter than the range-end says was interrupted. One longer than
        // the range cannot be, and is refused.
        if range.end.is_some_and(|e| end0 > e) && chunk.flag() != Flag::Abort {
            self.respond(&chunk, 400, "Byte-Range does not match the body length");
            return false;
        }
        let message_id = chunk.message_id().unwrap_or("").to_owned();
        let max = self.cfg.max_message_size;
        let whole = range.start == 1 && chunk.flag() == Flag::End;
        // Announced messages go where the application puts them: it decides
        // about their size.
        // (So are messages whose one chunk is large: a sender may put a
        // whole file in one chunk, RFC 4975 §7.1.1 recommends as few as
        // possible.)
        let announced = self.announces()
            && (!whole || len > ANNOUNCE_ABOVE || self.incoming.contains_key(&message_id));
        if !announced && (range.total.is_some_and(|t| t > max) || end0 > max) {
            self.refuse(&chunk, &message_id, "Message Too Large");
            return false;
        }
        if chunk.flag() == Flag::Abort {
            if answer_ok {
                self.respond(&chunk, 200, "OK");
            }
            if let Some(inc) = self.incoming.remove(&message_id) {
                self.incoming_bytes -= inc.data.len() as u64;
            }
            self.events
                .push_back(SessionEvent::MessageAborted { message_id });
            return true;
        }
        let single = range.start == 1
            && chunk.flag() == Flag::End
            && !announced
            && !self.incoming.contains_key(&message_id);
        if !single && !self.incoming.contains_key(&message_id) {
            // A new message in several chunks: one that was refused or
            // expired stays refused, and only so many may be open.
            if self.refused.contains(&message_id) {
                self.respond(&chunk, 413, "Message Too Large");
                return false;
            }
            if self.incoming.len() >= self.cfg.max_incomplete.max(1) {
                self.refuse(&chunk, &message_id, "Too Many Incomplete Messages");
                return false;
            }
        }
        // Memory bound for reassembly across all messages in progress
        // (whole messages in one chunk are read already and do not count).
        if !self.cfg.streaming && !single && !announced {
            let grow = end0.saturating_sub(
                self.incoming
                    .get(&message_id)
                    .map_or(0, |i| i.data.len() as u64),
            );
            if self.incoming_bytes + grow > self.cfg.max_receive_memory {
                self.refuse(&chunk, &message_id, "Message Too Large");
                return false;
            }
        }
        if answer_ok {
            self.respond(&chunk, 200, "OK");
        }
        let sr = chunk.success_report().unwrap_or(ReportMode::No) == ReportMode::Yes;
        if single {
            // The whole message in one chunk: no bookkeeping.
            if sr {
                self.success_report(&chunk, &message_id, len);
            }
            if self.cfg.streaming {
                self.events.push_back(SessionEvent::Chunk(chunk));
            } else {
                let mut head = chunk;
                let data = head.take_data();
                self.events.push_back(SessionEvent::Message { head, data });
            }
            return true;
        }
        let inc = self.incoming.entry(message_id.clone()).or_default();
        inc.last = Some(now);
        inc.success_report |= sr;
        if let Some(t) = range.total {
            inc.end = Some(t);
        }
        if chunk.flag() == Flag::End {
            inc.end = Some(end0);
        }
        inc.add(start0, end0);
        let streaming = self.cfg.streaming;
        if announced {
            if inc.head.is_none() {
                let mut h = chunk.clone();
                h.set_data(&[]);
                self.events.push_back(SessionEvent::MessageStart {
                    message_id: message_id.clone(),
                    head: h.clone(),
                    total: range.total,
                });
                inc.head = Some(h);
            }
            self.events.push_back(SessionEvent::MessagePart(chunk));
        } else if streaming {
            if inc.head.is_none() {
                let mut h = chunk.clone();
                h.set_data(&[]);
                inc.head = Some(h);
            }
            self.events.push_back(SessionEvent::Chunk(chunk));
        } else {
            let before = inc.data.len() as u64;
            if inc.data.capacity() == 0 {
                // Room for the whole message at once when its size is
                // announced (at most `max_message_size`, checked above):
                // growing step by step would copy it again and again.
                if let Some(t) = range.total {
                    let t = t as usize;
                    match take_spare(&mut self.spare, t) {
                        Some(v) => inc.data = v,
                        None => inc.data.reserve_exact(t),
                    }
                }
            }
            // Piece by piece: a body left in several read buffers is not
            // made one first.
            let pieces = chunk.data_pieces();
            crate::proto::bufpool::put_at(&mut inc.data, start0 as usize, len as usize, pieces);
            let after = inc.data.len() as u64;
            if inc.head.is_none() || range.start == 1 {
                let mut h = chunk;
                h.set_data(&[]);
                inc.head = Some(h);
            }
            self.incoming_bytes += after - before;
        }
        let inc = self.incoming.get(&message_id).expect("just inserted");
        if inc.complete() {
            let mut inc = self.incoming.remove(&message_id).expect("present");
            self.incoming_bytes -= inc.data.len() as u64;
            let total = inc.end.unwrap_or(0);
            let head = inc.head.take().expect("a chunk arrived");
            if inc.success_report {
                self.success_report(&head, &message_id, total);
            }
            if announced {
                self.events.push_back(SessionEvent::MessageEnd {
                    message_id,
                    head,
                    total,
                });
            } else if !streaming {
                inc.data.truncate(total as usize);
                self.events.push_back(SessionEvent::Message {
                    head,
                    data: inc.data,
                });
            }
        }
        true
    }

    pub(super) fn announces(&self) -> bool {
        self.cfg.announce && !self.cfg.streaming
    }

    /// The application refuses an incoming message part-way (its sink
    /// failed, or it does not want the rest): what the session held of it
    /// is freed and its later chunks get 413. Returns whether it was open.
    pub fn refuse_incoming(&mut self, message_id: &str) -> bool {
        self.forget_incoming(message_id).is_some()
    }

    /// Answers 413 to a chunk of a message that cannot be taken, frees what
    /// the message held, and remembers it so its later chunks get 413 too.
    pub(super) fn refuse(&mut self, chunk: &Chunk, message_id: &str, why: &str) {
        self.respond(chunk, 413, why);
        self.forget_incoming(message_id);
    }

    /// Drops an incoming message that will not complete, freeing its share
    /// at once; its later chunks get 413.
    pub(super) fn forget_incoming(&mut self, message_id: &str) -> Option<Incoming> {
        let inc = self.incoming.remove(message_id);
        if let Some(i) = &inc {
            self.incoming_bytes -= i.data.len() as u64;
        }
        if !self.refused.iter().any(|m| m == message_id) {
            if self.refused.len() >= REFUSED_KEPT {
                self.refused.pop_front();
            }
            self.refused.push_back(message_id.to_owned());
        }
        inc
    }

    /// Reference `send_report`: queues a REPORT about a SEND chunk we
    /// received, with `code` in its Status and the chunk's own Byte-Range.
    /// As the reference's `make_report`, a REPORT goes out only when the
    /// chunk asked for one: Success-Report `yes`, or Failure-Report `yes` or
    /// `partial` with a code other than 200 (a failure found after the
    /// transaction was answered, e.g. the message could not be delivered to
    /// the user). Returns whether a REPORT was queued.
    pub fn send_report(
        &mut self,
        chunk: &Chunk,
        code: u16,
        comment: Option<&str>,
    ) -> Result<bool, crate::proto::chunk::ChunkError> {
        use crate::proto::chunk::ChunkError;
        if chunk.method() != Some("SEND") {
            return Err(ChunkError::WrongKind(
                "REPORTs are sent about SEND requests only",
            ));
        }
        if !(100..=999).contains(&code) {
            return Err(ChunkError::InvalidCode);
        }
        let success = chunk.success_report().unwrap_or(ReportMode::No) == ReportMode::Yes;
        let failure = matches!(
            chunk.failure_report().unwrap_or(ReportMode::Yes),
            ReportMode::Yes | ReportMode::Partial
        );
        if !(success || (failure && code != 200)) {
            return Ok(false);
        }
        let message_id = chunk
            .message_id()
            .ok_or(ChunkError::MissingHeader("Message-ID"))?
            .to_owned();
        let size = chunk.size() as u64;
        let range = match chunk.byte_range()? {
            // The head of a whole message (as on_message gives it) carries
            // no body: the REPORT is about the whole message.
            Some(r) if size == 0 && r.total.is_some_and(|t| t > 0) => ByteRange {
                start: 1,
                end: r.total,
                total: r.total,
            },
            Some(r) => ByteRange {
                start: r.start,
                end: Some(r.start.saturating_add(size).saturating_sub(1)),
                total: r.total,
            },
            None => ByteRange {
                start: 1,
                end: Some(size),
                total: Some(size),
            },
        };
        let mut r = Chunk::request("REPORT").expect("REPORT is valid");
        self.set_paths(&mut r);
        r.set_message_id(&message_id)?;
        r.set_byte_range(range)?;
        r.set_status(&Status {
            namespace: 0,
            code,
            comment: comment.map(str::to_owned),
        })?;
        self.control.push_back(r);
        Ok(true)
    }

    pub(super) fn success_report(&mut self, send: &Chunk, message_id: &str, total: u64) {
        let mut r = Chunk::request("REPORT").expect("REPORT is valid");
        self.set_paths(&mut r);
        let _ = r.set_message_id(message_id);
        let _ = r.set_byte_range(ByteRange {
            start: 1,
            end: Some(total),
            total: Some(total),
        });
        let _ = r.set_status(&Status {
            namespace: 0,
            code: 200,
            comment: Some("OK".into()),
        });
        let _ = send;
        self.control.push_back(r);
    }
}

/// Most NICKNAME requests waiting for the application at once; more get 403.
pub const MAX_PENDING_NICKNAMES: usize = 16;

/// A Use-Nickname value (RFC 7701 §7.1: a quoted string of 1 to 1023
/// qdtext / qd-esc elements, RFC 4975 §9), unquoted.
pub fn parse_nickname(v: &str) -> Option<String> {
    let inner = v.trim().strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut n = 0;
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        let c = match c {
            '\\' => {
                let e = it.next()?;
                if !(e == ' ' || e.is_ascii_graphic()) {
                    return None;
                }
                e
            }
            '"' => return None,
            c if c == ' ' || c == '\t' || c.is_ascii_graphic() || !c.is_ascii() => c,
            _ => return None,
        };
        out.push(c);
        n += 1;
    }
    (1..=1023).contains(&n).then_some(out)
}
