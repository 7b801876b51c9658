//! CPIM (RFC 3862), IMDN (RFC 5438) and is-composing (RFC 3994), sans-IO:
//! the RFCs' examples parsed and rebuilt, hostile input refused with a
//! bounded effort, and the is-composing state machines on a simulated clock.

use msrp::proto::cpim::{self, Cpim};
use msrp::proto::imdn::{self, Disposition, Notification, Request};
use msrp::proto::iscomposing::{Composer, IsComposing, Watcher};
use msrp::proto::xml;

fn crlf(lines: &[&str]) -> Vec<u8> {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n");
    s.into_bytes()
}

/// RFC 3862 §5.1: the example message (the `m:` line is MSRP's own
/// Content-Type; the body starts with the `h:` lines).
fn rfc3862_example() -> Vec<u8> {
    let mut b = crlf(&[
        "From: MR SANDERS <im:piglet@100akerwood.com>",
        "To: Depressed Donkey <im:eeyore@100akerwood.com>",
        "DateTime: 2000-12-13T13:40:00-08:00",
        "Subject: the weather will be fine today",
        "Subject:;lang=fr beau temps prevu pour aujourd'hui",
        "NS: MyFeatures <mid:MessageFeatures@id.foo.com>",
        "Require: MyFeatures.VitalMessageOption",
        "MyFeatures.VitalMessageOption: Confirmation-requested",
        "MyFeatures.WackyMessageOption: Use-silly-font",
        "",
        "Content-type: text/xml; charset=utf-8",
        "Content-ID: <1234567890@foo.com>",
        "",
        "<body>",
        "Here is the text of my message.",
    ]);
    b.extend_from_slice(b"</body>");
    b
}

#[test]
fn rfc3862_example_parsed_and_rebuilt_byte_for_byte() {
    let body = rfc3862_example();
    let m = Cpim::parse(&body).unwrap();
    assert_eq!(m.headers.len(), 9);
    assert_eq!(
        m.to_bytes(),
        body,
        "a parsed message builds back to the same bytes"
    );
    let from = m.header("From").unwrap();
    assert_eq!(
        cpim::address(&from.value),
        Some((
            Some("MR SANDERS".into()),
            "im:piglet@100akerwood.com".into()
        ))
    );
    assert_eq!(
        m.header("DateTime").unwrap().text(),
        "2000-12-13T13:40:00-08:00"
    );
    // §3.3: the language parameter; both Subjects are there, in order.
    let subjects: Vec<_> = m.headers.iter().filter(|h| h.name == "Subject").collect();
    assert_eq!(subjects.len(), 2);
    assert_eq!(subjects[0].lang(), None);
    assert_eq!(subjects[1].lang(), Some("fr"));
    assert_eq!(subjects[1].text(), "beau temps prevu pour aujourd'hui");
    // §3.4: a namespaced header found by its namespace, not its prefix.
    let vital = m
        .header_in("mid:MessageFeatures@id.foo.com", "VitalMessageOption")
        .unwrap();
    assert_eq!(vital.value, "Confirmation-requested");
    assert_eq!(m.content_type(), Some("text/xml; charset=utf-8"));
    assert_eq!(m.content_header("content-id"), Some("<1234567890@foo.com>"));
    assert!(m.content.starts_with(b"<body>\r\nHere is"));
}

/// RFC 3862 §2.3: escapes decoded on reading, made on writing.
#[test]
fn rfc3862_escapes() {
    assert_eq!(
        cpim::unescape(r#"a\\b\"c\'d\te\nf\rg\u0041\bh"#),
        "a\\b\"c'd\te\nf\rgA\u{8}h"
    );
    assert_eq!(
        cpim::unescape(r"unknown \q and trailing \"),
        "unknown q and trailing "
    );
    assert_eq!(
        cpim::escape("tab\there\\ and \u{1}"),
        "tab\\there\\\\ and \\u0001"
    );
    // A header built from text with a line break stays one line.
    let mut m = Cpim::new("text/plain", b"hi");
    m.push("Subject", "two\r\nlines");
    let again = Cpim::parse(&m.to_bytes()).unwrap();
    assert_eq!(again.header("Subject").unwrap().text(), "two\r\nlines");
    assert_eq!(
        cpim::format_address(Some("Dr. \"Who\""), "sip:who@x"),
        "\"Dr. \\\"Who\\\"\" <sip:who@x>"
    );
    assert_eq!(
        cpim::address("\"Dr. \\\"Who\\\"\" <sip:who@x>"),
        Some((Some("Dr. \"Who\"".into()), "sip:who@x".into()))
    );
    assert_eq!(cpim::format_datetime(976_743_600), "2000-12-13T21:40:00Z");
}

#[test]
fn malformed_cpim_is_refused_with_a_position() {
    let e = Cpim::parse(b"From <im:a@b>\r\n\r\nContent-Type: text/plain\r\n\r\nx").unwrap_err();
    assert!(e.what.contains("colon") || e.what.contains("name"), "{e}");
    let e = Cpim::parse(b"From: a\nTo: b\r\n\r\n").unwrap_err();
    assert_eq!(e.offset, 7, "{e}");
    let e = Cpim::parse(b"From: a\r\n\r\nX-No-Type: 1\r\n\r\nbody").unwrap_err();
    assert!(e.what.contains("Content-Type"), "{e}");
    let e = Cpim::parse(b"From: a\x01b\r\n\r\nContent-Type: t/p\r\n\r\n").unwrap_err();
    assert!(e.what.contains("control character"), "{e}");
    assert!(
        Cpim::parse(b"From: a\r\n").is_err(),
        "no end of the headers"
    );
    assert!(
        Cpim::parse(b"\r\nContent-Type: t/p\r\n\r\n").is_err(),
        "no message headers"
    );
}

#[test]
fn hostile_cpim_is_bounded() {
    // Huge header blocks and header counts stop at the limits.
    let mut big = Vec::new();
    for i in 0..10_000 {
        big.extend_from_slice(format!("X{i}: {}\r\n", "v".repeat(20)).as_bytes());
    }
    big.extend_from_slice(b"\r\nContent-Type: t/p\r\n\r\n");
    let e = Cpim::parse(&big).unwrap_err();
    assert!(
        e.what.contains("more than") || e.what.contains("exceed"),
        "{e}"
    );
    let long = format!(
        "From: {}\r\n\r\nContent-Type: t/p\r\n\r\n",
        "a".repeat(100_000)
    );
    assert!(
        Cpim::parse(long.as_bytes())
            .unwrap_err()
            .what
            .contains("exceed")
    );
}

/// RFC 5438 §7.2.1.1 and §7.2.1.2: the delivery and display notification
/// examples (with the blank line RFC 3862 puts between the message headers
/// and the content headers, which the RFC's abbreviated listing leaves out).
#[test]
fn rfc5438_notification_examples() {
    for (kind, status, id) in [
        ("delivery-notification", "delivered", "d834jied93rf"),
        ("display-notification", "displayed", "dfjkleriou432333"),
    ] {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\r\n\
             <imdn xmlns=\"urn:ietf:params:xml:ns:imdn\">\r\n\
             \x20     <message-id>34jk324j</message-id>\r\n\
             \x20     <datetime>2008-04-04T12:16:49-05:00</datetime>\r\n\
             \x20    <recipient-uri>im:bob@example.com</recipient-uri>\r\n\
             \x20     <original-recipient-uri\r\n\
             \x20       >im:bob@example.com</original-recipient-uri>\r\n\
             \x20     <{kind}>\r\n\
             \x20        <status>\r\n\
             \x20           <{status}/>\r\n\
             \x20        </status>\r\n\
             \x20     </{kind}>\r\n\
             \x20   </imdn>"
        );
        let mut body = crlf(&[
            "From: Bob <im:bob@example.com>",
            "To: Alice <im:alice@example.com>",
            "NS: imdn <urn:ietf:params:imdn>",
            &format!("imdn.Message-ID: {id}"),
            "",
            "Content-type: message/imdn+xml",
            "Content-Disposition: notification",
            "",
        ]);
        body.extend_from_slice(xml.as_bytes());
        let m = Cpim::parse(&body).unwrap();
        assert_eq!(m.to_bytes(), body);
        assert_eq!(m.header_in(imdn::IMDN_NS, "Message-ID").unwrap().value, id);
        assert_eq!(
            imdn::requested(&m),
            Request::default(),
            "no IMDN for an IMDN"
        );
        let n = Notification::parse(&m.content).unwrap();
        assert_eq!(n.message_id, "34jk324j");
        assert_eq!(n.datetime, "2008-04-04T12:16:49-05:00");
        assert_eq!(n.recipient_uri.as_deref(), Some("im:bob@example.com"));
        assert_eq!(
            n.original_recipient_uri.as_deref(),
            Some("im:bob@example.com")
        );
        assert_eq!(n.status, status);
        assert_eq!(
            n.disposition,
            if kind.starts_with("delivery") {
                Disposition::Delivery
            } else {
                Disposition::Display
            }
        );
        assert!(imdn::status_allowed(n.disposition, &n.status));
        // Built and read back the same.
        assert_eq!(Notification::parse(n.to_xml().as_bytes()).unwrap(), n);
    }
}

/// RFC 5438 §6 and §7: an IM asking for notifications, and the answer the
/// recipient makes for it (From/To swapped, a new Message-ID, the
/// IMDN-Record-Route copied to IMDN-Route in order, Content-Disposition).
#[test]
fn rfc5438_request_and_answer() {
    let mut im = Cpim::new("text/plain", b"hello");
    im.push("From", "Alice <im:alice@example.com>");
    im.push("To", "Bob <im:bob@example.com>");
    let req = Request {
        positive_delivery: true,
        display: true,
        ..Request::default()
    };
    imdn::request(&mut im, req, "34jk324j", 1_207_329_409);
    let text = String::from_utf8(im.to_bytes()).unwrap();
    assert!(
        text.contains("NS: imdn <urn:ietf:params:imdn>\r\n"),
        "{text}"
    );
    assert!(text.contains("imdn.Message-ID: 34jk324j\r\n"), "{text}");
    assert!(text.contains("imdn.Disposition-Notification: positive-delivery, display\r\n"));
    assert!(
        text.contains("DateTime: 2008-04-04T17:16:49Z\r\n"),
        "{text}"
    );
    // Another prefix for the same namespace is understood (§6.1).
    let other = text
        .replace("imdn", "x")
        .replace("urn:ietf:params:x", "urn:ietf:params:imdn");
    let mut received = Cpim::parse(other.as_bytes()).unwrap();
    assert_eq!(imdn::requested(&received), req);
    received.headers.push(cpim::CpimHeader::new(
        "x.IMDN-Record-Route",
        "<sip:as1@example.com>",
    ));
    received.headers.push(cpim::CpimHeader::new(
        "x.IMDN-Record-Route",
        "<sip:as2@example.com>",
    ));
    let n = Notification::answering(&received, Disposition::Delivery, "delivered").unwrap();
    assert_eq!(n.message_id, "34jk324j");
    assert_eq!(n.recipient_uri.as_deref(), Some("im:bob@example.com"));
    let back = n.wrap(&received, "newid123", 1_207_329_410);
    let t = String::from_utf8(back.to_bytes()).unwrap();
    assert!(
        t.starts_with("From: Bob <im:bob@example.com>\r\nTo: Alice <im:alice@example.com>\r\n"),
        "{t}"
    );
    assert!(t.contains("imdn.Message-ID: newid123\r\n"));
    let r1 = t.find("imdn.IMDN-Route: <sip:as1").unwrap();
    let r2 = t.find("imdn.IMDN-Route: <sip:as2").unwrap();
    assert!(r1 < r2, "routes in order");
    assert!(t.contains("Content-Disposition: notification\r\n"));
    assert_eq!(
        imdn::requested(&Cpim::parse(t.as_bytes()).unwrap()),
        Request::default()
    );
    assert_eq!(
        Request::parse("display;x=1 , foo, negative-delivery")
            .value()
            .as_deref(),
        Some("negative-delivery, display")
    );
}

/// RFC 3994 §5: both examples.
#[test]
fn rfc3994_examples() {
    let active = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
        <isComposing xmlns=\"urn:ietf:params:xml:ns:im-iscomposing\"\n\
        xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n\
        xsi:schemaLocation=\"urn:ietf:params:xml:ns:im-composing\n\
        iscomposing.xsd\">\n\
          <state>active</state>\n\
          <contenttype>text/plain</contenttype>\n\
          <refresh>90</refresh>\n\
        </isComposing>";
    let a = IsComposing::parse(active.as_bytes()).unwrap();
    assert!(a.active);
    assert_eq!(a.content_type.as_deref(), Some("text/plain"));
    assert_eq!(a.refresh_s, Some(90));
    let idle = active
        .replace(
            "<state>active</state>",
            "<state>idle</state>\n  <lastactive>2003-01-27T10:43:00Z</lastactive>",
        )
        .replace("text/plain", "audio")
        .replace("<refresh>90</refresh>\n", "");
    let i = IsComposing::parse(idle.as_bytes()).unwrap();
    assert!(!i.active);
    assert_eq!(i.last_active.as_deref(), Some("2003-01-27T10:43:00Z"));
    assert_eq!(i.refresh_s, None);
    for d in [a, i] {
        assert_eq!(IsComposing::parse(d.to_xml().as_bytes()).unwrap(), d);
    }
    // §3.5: a state other than active reads as idle.
    let odd = IsComposing::parse(
        b"<isComposing xmlns=\"urn:ietf:params:xml:ns:im-iscomposing\"><state>dictating</state></isComposing>",
    )
    .unwrap();
    assert!(!odd.active);
}

#[test]
fn hostile_xml_is_refused() {
    let laughs = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;\">]>\
        <imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>&lol2;</message-id></imdn>";
    assert!(
        xml::parse(laughs.as_bytes())
            .unwrap_err()
            .0
            .contains("DOCTYPE")
    );
    let external =
        "<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>&xxe;</message-id></imdn>";
    assert!(
        xml::parse(external.as_bytes())
            .unwrap_err()
            .0
            .contains("unknown entity")
    );
    let deep = format!("{}{}", "<a>".repeat(100), "</a>".repeat(100));
    assert!(
        xml::parse(deep.as_bytes())
            .unwrap_err()
            .0
            .contains("deeper")
    );
    let many = format!("<a>{}</a>", "<b/>".repeat(5000));
    assert!(
        xml::parse(many.as_bytes())
            .unwrap_err()
            .0
            .contains("elements")
    );
    let huge = format!("<a>{}</a>", "x".repeat(100_000));
    assert!(
        xml::parse(huge.as_bytes())
            .unwrap_err()
            .0
            .contains("larger")
    );
    for bad in ["<a>", "<a></b>", "</a>", "<a/><b/>", "text", "<p:a/>", ""] {
        assert!(xml::parse(bad.as_bytes()).is_err(), "{bad}");
    }
    assert!(
        Notification::parse(
            b"<imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>1</message-id></imdn>"
        )
        .is_err()
    );
    assert!(
        Notification::parse(b"<other/>")
            .unwrap_err()
            .0
            .contains("root")
    );
    // Character references and the predefined entities are decoded.
    let ok = xml::parse(b"<a>&lt;&#65;&#x42;&amp;</a>").unwrap();
    assert_eq!(ok.text, "<AB&");
}

/// RFC 3994 §3.2 (Figure 1) on a simulated clock: active on the first
/// keystroke, refreshes while typing (never under 60 s), idle after 15 s
/// without typing, no idle after a sent message.
#[test]
fn rfc3994_composer_on_a_simulated_clock() {
    let mut c = Composer::new(15_000, Some(90));
    assert_eq!(c.tick(0), None);
    let first = c.typed(1_000).unwrap();
    assert!(first.active && first.refresh_s == Some(90));
    assert_eq!(c.typed(2_000), None, "no second active while active");
    assert_eq!(c.next_deadline(), Some(17_000));
    assert_eq!(c.tick(16_999), None);
    let idle = c.tick(17_000).unwrap();
    assert!(!idle.active);
    assert_eq!(c.tick(100_000), None);
    // Typing steadily past the refresh interval sends a refresh.
    c.typed(200_000).unwrap();
    let mut t = 200_000;
    let mut refreshes = 0;
    while t < 200_000 + 100_000 {
        t += 5_000;
        c.typed(t);
        if c.tick(t).is_some_and(|d| d.active) {
            refreshes += 1;
        }
    }
    assert_eq!(refreshes, 1, "one refresh in 100 s at a 90 s interval");
    c.message_sent();
    assert!(!c.is_active());
    assert_eq!(c.tick(t + 60_000), None, "no idle after a sent message");
    assert_eq!(
        Composer::new(15_000, Some(5)).typed(0).unwrap().refresh_s,
        Some(60)
    );
}

/// RFC 3994 §3.3 (Figure 2): the receiver goes idle on an idle status, a
/// content message, or when the refresh (else 120 s) runs out.
#[test]
fn rfc3994_watcher_on_a_simulated_clock() {
    let active = |refresh_s| IsComposing {
        active: true,
        refresh_s,
        ..IsComposing::default()
    };
    let mut w = Watcher::default();
    assert!(w.status(&active(Some(90)), 0));
    assert!(
        !w.status(&active(Some(90)), 10_000),
        "consecutive actives are fine"
    );
    assert!(!w.tick(99_999));
    assert!(w.tick(100_000), "refresh ran out");
    assert!(w.status(&active(None), 200_000));
    assert_eq!(w.next_deadline(), Some(320_000), "120 s without <refresh>");
    assert!(w.message(), "a content message ends composing");
    assert!(w.status(&active(None), 400_000));
    assert!(w.status(&IsComposing::default(), 401_000), "an idle status");
    assert!(!w.is_active());
}
