//! Where a session's events go: which caller waits for a transaction's
//! response, which callbacks listen to an outgoing message, and which
//! message a REPORT is about. Generic over what the front end keeps for a
//! waiter (`W`) and for a message's listener (`M`); the C API keeps its
//! callbacks and userdata here.

use std::collections::{HashMap, VecDeque};

use crate::proto::Chunk;
use crate::proto::fasthash::LocalMap;
use crate::proto::session::{MsgId, TxId, report_covers_whole_message};

/// Finished messages whose REPORTs still reach their listener: a success
/// REPORT comes after the last response, possibly much later.
pub const REPORTS_KEPT: usize = 1024;

/// The routes of one session.
pub struct Routes<W, M> {
    responses: LocalMap<TxId, W>,
    messages: LocalMap<MsgId, M>,
    /// Messages listening for REPORTs, by Message-ID: while they are sent
    /// and after (see [`REPORTS_KEPT`]).
    reports: HashMap<String, (MsgId, M)>,
    /// Message-IDs in `reports` that finished, oldest first.
    finished: VecDeque<String>,
    /// Messages listening for IMDNs (RFC 5438), by their `imdn.Message-ID`;
    /// the [`REPORTS_KEPT`] most recent.
    notifications: HashMap<String, (MsgId, M)>,
    /// The keys of `notifications`, oldest first.
    notified: VecDeque<String>,
}

impl<W, M> Default for Routes<W, M> {
    fn default() -> Self {
        Routes {
            responses: LocalMap::default(),
            messages: LocalMap::default(),
            reports: HashMap::new(),
            finished: VecDeque::new(),
            notifications: HashMap::new(),
            notified: VecDeque::new(),
        }
    }
}

impl<W, M: Copy> Routes<W, M> {
    /// `w` waits for the response to `tx`.
    pub fn expect_response(&mut self, tx: TxId, w: W) {
        self.responses.insert(tx, w);
    }

    /// Who waits for the response to `tx`, if anyone.
    pub fn waiter(&self, tx: TxId) -> Option<&W> {
        self.responses.get(&tx)
    }

    /// Takes the waiter for the response to `tx`.
    pub fn take_waiter(&mut self, tx: TxId) -> Option<W> {
        self.responses.remove(&tx)
    }

    /// `m` listens to the outgoing message `msg`; with `message_id`, also
    /// to the REPORTs about it.
    pub fn listen(&mut self, msg: MsgId, m: M, message_id: Option<&str>) {
        self.messages.insert(msg, m);
        if let Some(mid) = message_id {
            self.reports.insert(mid.to_owned(), (msg, m));
        }
    }

    /// The listener of `msg`.
    pub fn listener(&self, msg: MsgId) -> Option<M> {
        self.messages.get(&msg).copied()
    }

    /// Whether anyone listens to `msg` (events of others are dropped early).
    pub fn is_listened(&self, msg: MsgId) -> bool {
        self.messages.contains_key(&msg)
    }

    /// `msg` (with `message_id`) is done: its listener, taken. Its REPORT
    /// route stays for the [`REPORTS_KEPT`] most recent messages.
    pub fn done(&mut self, msg: MsgId, message_id: &str) -> Option<M> {
        if self.reports.contains_key(message_id) {
            self.finished.push_back(message_id.to_owned());
            while self.finished.len() > REPORTS_KEPT {
                if let Some(old) = self.finished.pop_front() {
                    self.reports.remove(&old);
                }
            }
        }
        self.messages.remove(&msg)
    }

    /// The message a REPORT is about and its listener. A REPORT saying the
    /// whole message arrived is the last one expected: the route goes.
    pub fn report(&mut self, report: &Chunk) -> Option<(MsgId, M)> {
        let key = report.message_id().unwrap_or("");
        let found = self.reports.get(key).copied();
        if found.is_some() && report_covers_whole_message(report) {
            self.reports.remove(key);
        }
        found
    }

    /// `m` listens to the notifications about the message `msg` that asked
    /// for them with `imdn_id` (kept for the [`REPORTS_KEPT`] most recent).
    pub fn listen_notifications(&mut self, imdn_id: &str, msg: MsgId, m: M) {
        if self
            .notifications
            .insert(imdn_id.to_owned(), (msg, m))
            .is_none()
        {
            self.notified.push_back(imdn_id.to_owned());
        }
        while self.notified.len() > REPORTS_KEPT {
            if let Some(old) = self.notified.pop_front() {
                self.notifications.remove(&old);
            }
        }
    }

    /// The message a notification with `imdn_id` is about and its listener
    /// (it stays: a delivery and a display notification may both come).
    pub fn notification(&self, imdn_id: &str) -> Option<(MsgId, M)> {
        self.notifications.get(imdn_id).copied()
    }

    /// The session closed: no REPORT comes any more.
    pub fn closed(&mut self) {
        self.reports.clear();
        self.finished.clear();
        self.notifications.clear();
        self.notified.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(mid: &str, range: &str, status: &str) -> Chunk {
        let mut r = Chunk::request("REPORT").unwrap();
        r.add_header_raw("Message-ID", mid).unwrap();
        r.add_header_raw("Byte-Range", range).unwrap();
        r.add_header_raw("Status", status).unwrap();
        r
    }

    #[test]
    fn reports_reach_their_message_until_the_whole_one_is_confirmed() {
        let mut r: Routes<(), u8> = Routes::default();
        r.listen(7, 1, Some("mid7"));
        assert_eq!(
            r.report(&report("mid7", "1-10/20", "000 200 OK")),
            Some((7, 1))
        );
        assert_eq!(r.done(7, "mid7"), Some(1));
        assert!(!r.is_listened(7));
        // After the message is done, its REPORTs still come.
        assert_eq!(
            r.report(&report("mid7", "11-20/20", "000 200 OK")),
            Some((7, 1))
        );
        // That one covered the whole message: the route is gone.
        assert_eq!(r.report(&report("mid7", "1-20/20", "000 200 OK")), None);
        assert_eq!(r.report(&report("other", "1-1/1", "000 200 OK")), None);
    }

    #[test]
    fn only_the_most_recent_finished_messages_keep_their_report_routes() {
        let mut r: Routes<(), u8> = Routes::default();
        for i in 0..(REPORTS_KEPT as u64 + 10) {
            let mid = format!("mid{i:05}");
            r.listen(i, 0, Some(&mid));
            r.done(i, &mid);
        }
        assert_eq!(r.report(&report("mid00000", "1-1/2", "000 200 OK")), None);
        assert!(
            r.report(&report("mid01033", "1-1/2", "000 200 OK"))
                .is_some()
        );
        r.closed();
        assert_eq!(r.report(&report("mid01033", "1-1/2", "000 200 OK")), None);
    }
}
