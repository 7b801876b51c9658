//! The is-composing indication (RFC 3994), sans-IO: the
//! `application/im-iscomposing+xml` document (§6) and both state machines
//! (§3.2 for our own typing, §3.3 for the peer's) on a clock the caller
//! passes in, in milliseconds.

use super::xml::{self, XmlError};

/// The XML namespace (§6).
pub const ISCOMPOSING_NS: &str = "urn:ietf:params:xml:ns:im-iscomposing";
/// The content type (§8.1).
pub const ISCOMPOSING_TYPE: &str = "application/im-iscomposing+xml";
/// The idle timeout's default (§3.2): 15 s without typing.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 15_000;
/// The refresh the receiver assumes without `<refresh>` (§3.3): 120 s.
pub const DEFAULT_RECEIVER_TIMEOUT_MS: u64 = 120_000;
/// The shortest refresh interval a composer should use (§3.2): 60 s.
pub const MIN_REFRESH_S: u32 = 60;

/// An isComposing document (§3.4).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IsComposing {
    /// `true`: `active`; anything but `active` reads as idle (§3.5).
    pub active: bool,
    /// `<lastactive>` as written.
    pub last_active: Option<String>,
    /// `<contenttype>`.
    pub content_type: Option<String>,
    /// `<refresh>` in seconds.
    pub refresh_s: Option<u32>,
}

impl IsComposing {
    /// Reads a document.
    pub fn parse(doc: &[u8]) -> Result<IsComposing, XmlError> {
        let root = xml::parse(doc)?;
        if root.name != "isComposing" || root.ns.as_deref() != Some(ISCOMPOSING_NS) {
            return Err(XmlError(format!(
                "the root is <{}>, not <isComposing> in {ISCOMPOSING_NS}",
                root.name
            )));
        }
        let state = root
            .child_text(ISCOMPOSING_NS, "state")
            .ok_or_else(|| XmlError("<isComposing> has no <state>".into()))?;
        let refresh_s =
            match root.child_text(ISCOMPOSING_NS, "refresh") {
                Some(r) => Some(r.parse::<u32>().ok().filter(|r| *r > 0).ok_or_else(|| {
                    XmlError(format!("<refresh> '{r}' is not a positive integer"))
                })?),
                None => None,
            };
        Ok(IsComposing {
            active: state == "active",
            last_active: root.child_text(ISCOMPOSING_NS, "lastactive"),
            content_type: root.child_text(ISCOMPOSING_NS, "contenttype"),
            refresh_s,
        })
    }

    /// The document.
    pub fn to_xml(&self) -> String {
        let e = xml::escape;
        let mut s = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n<isComposing xmlns=\"{ISCOMPOSING_NS}\">\r\n  <state>{}</state>\r\n",
            if self.active { "active" } else { "idle" }
        );
        if let Some(v) = &self.last_active {
            s.push_str(&format!("  <lastactive>{}</lastactive>\r\n", e(v)));
        }
        if let Some(v) = &self.content_type {
            s.push_str(&format!("  <contenttype>{}</contenttype>\r\n", e(v)));
        }
        if let Some(v) = self.refresh_s {
            s.push_str(&format!("  <refresh>{v}</refresh>\r\n"));
        }
        s.push_str("</isComposing>\r\n");
        s
    }
}

/// Our own typing (§3.2, Figure 1): tells when to send `active` (on the
/// first keystroke, then every refresh interval while typing) and `idle`
/// (after the idle timeout without typing; not after a sent message).
#[derive(Clone, Debug)]
pub struct Composer {
    idle_timeout_ms: u64,
    refresh_s: Option<u32>,
    active: bool,
    last_typed: u64,
    last_sent: u64,
}

impl Composer {
    /// A composer with the idle timeout and the refresh interval (`None`:
    /// no refreshes; else at least 60 s, §3.2).
    pub fn new(idle_timeout_ms: u64, refresh_s: Option<u32>) -> Composer {
        Composer {
            idle_timeout_ms,
            refresh_s: refresh_s.map(|r| r.max(MIN_REFRESH_S)),
            active: false,
            last_typed: 0,
            last_sent: 0,
        }
    }

    /// Whether we are in the active state.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The user typed at `now`: the document to send, if any.
    pub fn typed(&mut self, now: u64) -> Option<IsComposing> {
        self.last_typed = now;
        if self.active {
            return None;
        }
        self.active = true;
        self.last_sent = now;
        Some(self.document(true))
    }

    /// A content message was sent: back to idle without a document.
    pub fn message_sent(&mut self) {
        self.active = false;
    }

    /// The time passed to `now`: `idle` after the idle timeout, or an
    /// `active` refresh.
    pub fn tick(&mut self, now: u64) -> Option<IsComposing> {
        if !self.active {
            return None;
        }
        if now.saturating_sub(self.last_typed) >= self.idle_timeout_ms {
            self.active = false;
            return Some(self.document(false));
        }
        let refresh = u64::from(self.refresh_s?) * 1000;
        if now.saturating_sub(self.last_sent) >= refresh {
            self.last_sent = now;
            return Some(self.document(true));
        }
        None
    }

    /// When `tick` next has something to do, if ever.
    pub fn next_deadline(&self) -> Option<u64> {
        if !self.active {
            return None;
        }
        let idle = self.last_typed + self.idle_timeout_ms;
        Some(match self.refresh_s {
            Some(r) => idle.min(self.last_sent + u64::from(r) * 1000),
            None => idle,
        })
    }

    fn document(&self, active: bool) -> IsComposing {
        IsComposing {
            active,
            last_active: None,
            content_type: Some("text/plain".into()),
            refresh_s: if active { self.refresh_s } else { None },
        }
    }
}

/// The peer's typing as we see it (§3.3, Figure 2).
#[derive(Clone, Debug, Default)]
pub struct Watcher {
    active_until: Option<u64>,
}

impl Watcher {
    /// Whether the peer is composing.
    pub fn is_active(&self) -> bool {
        self.active_until.is_some()
    }

    /// A status document arrived at `now`; returns whether the state
    /// changed.
    pub fn status(&mut self, doc: &IsComposing, now: u64) -> bool {
        let was = self.is_active();
        self.active_until = doc.active.then(|| {
            now + doc
                .refresh_s
                .map_or(DEFAULT_RECEIVER_TIMEOUT_MS, |r| u64::from(r) * 1000)
        });
        was != self.is_active()
    }

    /// A content message arrived: idle; returns whether the state changed.
    pub fn message(&mut self) -> bool {
        self.active_until.take().is_some()
    }

    /// The time passed to `now`: idle when the refresh expired; returns
    /// whether the state changed.
    pub fn tick(&mut self, now: u64) -> bool {
        match self.active_until {
            Some(t) if now >= t => {
                self.active_until = None;
                true
            }
            _ => false,
        }
    }

    /// When `tick` next may change the state.
    pub fn next_deadline(&self) -> Option<u64> {
        self.active_until
    }
}
