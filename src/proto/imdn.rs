//! Instant message disposition notifications (RFC 5438), sans-IO: what a
//! sender asks for (`imdn.Disposition-Notification`, §6.2 and §10), the
//! `message/imdn+xml` document (§11), and the CPIM headers that carry them
//! (§6.1, §6.3, §7.2.1).

use super::cpim::{Cpim, format_datetime};
use super::xml::{self, Element, XmlError};

/// The CPIM header namespace of RFC 5438 §6.1.
pub const IMDN_NS: &str = "urn:ietf:params:imdn";
/// The XML namespace of RFC 5438 §11.
pub const IMDN_XML_NS: &str = "urn:ietf:params:xml:ns:imdn";
/// The content type of a notification (§11.1.8).
pub const IMDN_TYPE: &str = "message/imdn+xml";

/// What notifications a sender asks for (RFC 5438 §10).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// `positive-delivery`.
    pub positive_delivery: bool,
    /// `negative-delivery`.
    pub negative_delivery: bool,
    /// `display`.
    pub display: bool,
    /// `processing` (only intermediaries answer it, §7.2.1).
    pub processing: bool,
}

impl Request {
    /// Reads a Disposition-Notification value; unknown values are ignored
    /// (§7.2.1), parameters after `;` too.
    pub fn parse(v: &str) -> Request {
        let mut r = Request::default();
        for item in v.split(',') {
            match item.split(';').next().unwrap_or("").trim() {
                "positive-delivery" => r.positive_delivery = true,
                "negative-delivery" => r.negative_delivery = true,
                "display" => r.display = true,
                "processing" => r.processing = true,
                _ => {}
            }
        }
        r
    }

    /// The header value; `None` when nothing is asked.
    pub fn value(&self) -> Option<String> {
        let mut v = Vec::new();
        if self.positive_delivery {
            v.push("positive-delivery");
        }
        if self.negative_delivery {
            v.push("negative-delivery");
        }
        if self.display {
            v.push("display");
        }
        if self.processing {
            v.push("processing");
        }
        (!v.is_empty()).then(|| v.join(", "))
    }

    /// Whether anything is asked.
    pub fn any(&self) -> bool {
        self.value().is_some()
    }
}

/// The kind of notification (RFC 5438 §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// `<delivery-notification>`.
    Delivery,
    /// `<display-notification>`.
    Display,
    /// `<processing-notification>`.
    Processing,
}

impl Disposition {
    fn element(self) -> &'static str {
        match self {
            Disposition::Delivery => "delivery-notification",
            Disposition::Display => "display-notification",
            Disposition::Processing => "processing-notification",
        }
    }
}

/// A notification's `<status>` (§11.1.7): `delivered`, `failed`,
/// `displayed`, `processed`, `stored`, `forbidden`, `error` or an extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// The Message-ID of the IM it is about.
    pub message_id: String,
    /// The IM's DateTime.
    pub datetime: String,
    /// `<recipient-uri>`.
    pub recipient_uri: Option<String>,
    /// `<original-recipient-uri>`.
    pub original_recipient_uri: Option<String>,
    /// `<subject>`.
    pub subject: Option<String>,
    /// The kind.
    pub disposition: Disposition,
    /// The status element's name.
    pub status: String,
}

/// The statuses §11.1.7 allows for each kind.
pub fn status_allowed(d: Disposition, status: &str) -> bool {
    match d {
        Disposition::Delivery => matches!(status, "delivered" | "failed" | "forbidden" | "error"),
        Disposition::Display => matches!(status, "displayed" | "forbidden" | "error"),
        Disposition::Processing => {
            matches!(status, "processed" | "stored" | "forbidden" | "error")
        }
    }
}

impl Notification {
    /// Reads a `message/imdn+xml` document.
    pub fn parse(doc: &[u8]) -> Result<Notification, XmlError> {
        let root = xml::parse(doc)?;
        if root.name != "imdn" || root.ns.as_deref() != Some(IMDN_XML_NS) {
            return Err(XmlError(format!(
                "the root is <{}> in {}, not <imdn> in {IMDN_XML_NS}",
                root.name,
                root.ns.as_deref().unwrap_or("no namespace")
            )));
        }
        let need = |name: &str| {
            root.child_text(IMDN_XML_NS, name)
                .ok_or_else(|| XmlError(format!("<imdn> has no <{name}>")))
        };
        let message_id = need("message-id")?;
        let datetime = need("datetime")?;
        let kinds = [
            Disposition::Delivery,
            Disposition::Display,
            Disposition::Processing,
        ];
        let (disposition, el): (Disposition, &Element) = kinds
            .iter()
            .find_map(|d| root.child(IMDN_XML_NS, d.element()).map(|e| (*d, e)))
            .ok_or_else(|| {
                XmlError("<imdn> has no delivery, display or processing notification".into())
            })?;
        let status = el
            .child(IMDN_XML_NS, "status")
            .and_then(|s| s.children.first())
            .map(|s| s.name.clone())
            .ok_or_else(|| XmlError(format!("<{}> has no status", disposition.element())))?;
        Ok(Notification {
            message_id,
            datetime,
            recipient_uri: root.child_text(IMDN_XML_NS, "recipient-uri"),
            original_recipient_uri: root.child_text(IMDN_XML_NS, "original-recipient-uri"),
            subject: root.child_text(IMDN_XML_NS, "subject"),
            disposition,
            status,
        })
    }

    /// The `message/imdn+xml` document.
    pub fn to_xml(&self) -> String {
        let e = xml::escape;
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n");
        s.push_str(&format!("<imdn xmlns=\"{IMDN_XML_NS}\">\r\n"));
        s.push_str(&format!(
            "  <message-id>{}</message-id>\r\n",
            e(&self.message_id)
        ));
        s.push_str(&format!("  <datetime>{}</datetime>\r\n", e(&self.datetime)));
        if let Some(u) = &self.recipient_uri {
            s.push_str(&format!("  <recipient-uri>{}</recipient-uri>\r\n", e(u)));
        }
        if let Some(u) = &self.original_recipient_uri {
            s.push_str(&format!(
                "  <original-recipient-uri>{}</original-recipient-uri>\r\n",
                e(u)
            ));
        }
        if let Some(u) = &self.subject {
            s.push_str(&format!("  <subject>{}</subject>\r\n", e(u)));
        }
        let kind = self.disposition.element();
        s.push_str(&format!(
            "  <{kind}>\r\n    <status>\r\n      <{}/>\r\n    </status>\r\n  </{kind}>\r\n</imdn>\r\n",
            self.status
        ));
        s
    }

    /// The notification of `kind` and `status` for the received IM `im`
    /// (§7.2.1): its Message-ID and DateTime, the recipient from its `To`
    /// (and `Original-To`); `None` when `im` has no `imdn.Message-ID`.
    pub fn answering(im: &Cpim, disposition: Disposition, status: &str) -> Option<Notification> {
        let id = im.header_in(IMDN_NS, "Message-ID")?.text();
        let datetime = im.header("DateTime").map(|h| h.text()).unwrap_or_default();
        let uri = |h: Option<&super::cpim::CpimHeader>| {
            h.and_then(|h| super::cpim::address(&h.value))
                .map(|(_, u)| u)
        };
        Some(Notification {
            message_id: id,
            datetime,
            recipient_uri: uri(im.header("To")),
            original_recipient_uri: uri(im.header_in(IMDN_NS, "Original-To")),
            subject: None,
            disposition,
            status: status.to_owned(),
        })
    }

    /// The CPIM message that carries this notification back to the sender
    /// of `im` (§7.2.1): From and To swapped, a fresh `imdn.Message-ID`,
    /// IMDN-Route from the IM's IMDN-Record-Route, `Content-Disposition:
    /// notification`.
    pub fn wrap(&self, im: &Cpim, message_id: &str, now_unix: u64) -> Cpim {
        let mut out = Cpim::new(IMDN_TYPE, self.to_xml().as_bytes());
        out.content_headers.push(super::cpim::MimeHeader {
            name: "Content-Disposition".into(),
            sep: " ".into(),
            value: "notification".into(),
        });
        if let Some(to) = im.header("To") {
            out.headers.push(super::cpim::CpimHeader {
                name: "From".into(),
                ..to.clone()
            });
        }
        if let Some(from) = im.header("From") {
            out.headers.push(super::cpim::CpimHeader {
                name: "To".into(),
                ..from.clone()
            });
        }
        let p = out.prefix_for(IMDN_NS, "imdn");
        out.push(&format!("{p}.Message-ID"), message_id);
        out.push("DateTime", &format_datetime(now_unix));
        let routes: Vec<String> = im
            .headers_in(IMDN_NS, "IMDN-Record-Route")
            .map(|h| h.value.clone())
            .collect();
        for r in routes {
            out.headers.push(super::cpim::CpimHeader {
                name: format!("{p}.IMDN-Route"),
                params: String::new(),
                value: r,
                sep: " ".into(),
            });
        }
        out
    }
}

/// Adds to `im` what asks for notifications (§7.1.1): the IMDN namespace,
/// `imdn.Message-ID`, a `DateTime` when there is none, and
/// `imdn.Disposition-Notification`.
pub fn request(im: &mut Cpim, req: Request, message_id: &str, now_unix: u64) {
    let p = im.prefix_for(IMDN_NS, "imdn");
    if im.header_in(IMDN_NS, "Message-ID").is_none() {
        im.push(&format!("{p}.Message-ID"), message_id);
    }
    if im.header("DateTime").is_none() {
        im.push("DateTime", &format_datetime(now_unix));
    }
    if let Some(v) = req.value() {
        im.push(&format!("{p}.Disposition-Notification"), &v);
    }
}

/// What `im` asks for; nothing for an IMDN itself (§7.2.1: no IMDN for an
/// IMDN).
pub fn requested(im: &Cpim) -> Request {
    if im
        .content_type()
        .is_some_and(|t| super::session::is_media_type(t, IMDN_TYPE))
    {
        return Request::default();
    }
    im.header_in(IMDN_NS, "Disposition-Notification")
        .map(|h| Request::parse(&h.text()))
        .unwrap_or_default()
}
