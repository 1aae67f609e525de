//! Bounce messages → [`Report`]s: RFC 3464 delivery status notifications
//! (`multipart/report; report-type=delivery-status`) and RFC 5965 abuse
//! feedback reports (`report-type=feedback-report`), as an MTA hands them to
//! `tidings bounces ingest` or the bounce mailbox holds them. Pure; parsed
//! with `mail-parser`.
//!
//! What is taken from a DSN: each recipient's Original-Recipient (else
//! Final-Recipient), Action, Status and Diagnostic-Code; the Message-ID of
//! the returned message (text/rfc822-headers or message/rfc822 part); and
//! the addresses the DSN was delivered to (To, Delivered-To, X-Original-To),
//! which are our VERP return path when VERP is on. From an ARF report: the
//! Feedback-Type, Original-Rcpt-To (else the returned message's To),
//! Original-Mail-From and the returned message's Message-ID.

use super::{EnhancedStatus, ParseError, Parsed, Report, ReportKind, Source, Verdict};
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// Reads one message. An ordinary message that is not a report is not an
/// error (an MTA may pipe any reply to the bounce address): it is returned
/// with the reason in `ignored`. A report whose machine-readable part is
/// missing or unreadable is an error.
pub fn parse(raw: &[u8]) -> Result<Parsed, ParseError> {
    // An mbox "From " separator line (Postfix's pipe `F` flag, mbox files)
    // is not part of the message.
    let raw = match raw.strip_prefix(b"From ") {
        Some(rest) => rest.splitn(2, |b| *b == b'\n').nth(1).unwrap_or_default(),
        None => raw,
    };
    if !starts_with_a_header_field(raw) {
        return Err(ParseError("the input is not an email message (it does not start with a header field)".into()));
    }
    let message = contained(|| MessageParser::default().parse(raw))
        .filter(|m| !m.headers().is_empty())
        .ok_or_else(|| ParseError("the input is not an email message (no header fields)".into()))?;
    let mut parsed = Parsed::default();
    let report_type = message
        .content_type()
        .filter(|ct| {
            ct.ctype().eq_ignore_ascii_case("multipart")
                && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
        })
        .map(|ct| ct.attribute("report-type").unwrap_or("").to_ascii_lowercase());
    let Some(report_type) = report_type else {
        parsed.ignored.push("not a bounce or complaint report (the message is not multipart/report)".into());
        return Ok(parsed);
    };
    let event_id = message.message_id().map(str::to_owned).unwrap_or_else(|| crate::domain::sha256_hex(raw));
    let mut return_paths = Vec::new();
    for (name, value) in message.headers_raw() {
        if ["to", "delivered-to", "x-original-to"].iter().any(|h| name.eq_ignore_ascii_case(h)) {
            return_paths.extend(addresses_in(value));
        }
    }
    let original = original_message(&message);
    let message_id = original.as_ref().and_then(|o| o.message_id.clone());
    if let Some(o) = &original {
        return_paths.extend(o.return_path.iter().cloned());
    }
    match report_type.as_str() {
        "delivery-status" | "global-delivery-status" => {
            let fields = machine_part(&message, &["delivery-status", "global-delivery-status"]).ok_or_else(|| {
                ParseError("a delivery-status report without its message/delivery-status part".into())
            })?;
            let blocks = field_blocks(&fields);
            let recipients: Vec<&Vec<(String, String)>> = blocks
                .iter()
                .filter(|b| field(b, "final-recipient").is_some() || field(b, "original-recipient").is_some())
                .collect();
            if recipients.is_empty() {
                return Err(ParseError(
                    "the delivery-status part names no recipient (no Final-Recipient field)".into(),
                ));
            }
            for block in recipients {
                let recipient =
                    field(block, "original-recipient").or_else(|| field(block, "final-recipient")).map(str::to_owned);
                let action = field(block, "action").unwrap_or("failed").to_ascii_lowercase();
                let status = field(block, "status").and_then(EnhancedStatus::find_in);
                let diagnostic = field(block, "diagnostic-code").map(str::to_owned);
                let kind = match action.split_whitespace().next().unwrap_or("") {
                    "failed" => ReportKind::Bounce { status, diagnostic, verdict: Verdict::Unknown },
                    "delayed" => ReportKind::Delayed { status, diagnostic },
                    other => {
                        parsed.ignored.push(format!("a DSN with Action: {other} (not a failure)"));
                        continue;
                    }
                };
                parsed.reports.push(Report {
                    source: Source::Dsn,
                    event_id: Some(event_id.clone()),
                    kind,
                    recipient,
                    message_id: message_id.clone(),
                    return_paths: return_paths.clone(),
                    occurred_at: None,
                });
            }
        }
        "feedback-report" => {
            let fields = machine_part(&message, &["feedback-report"])
                .ok_or_else(|| ParseError("a feedback report without its message/feedback-report part".into()))?;
            let blocks = field_blocks(&fields);
            let all: Vec<(String, String)> = blocks.into_iter().flatten().collect();
            let feedback_type = field(&all, "feedback-type").map(|t| t.to_ascii_lowercase());
            if feedback_type.as_deref() == Some("not-spam") {
                parsed.ignored.push("a not-spam feedback report (the opposite of a complaint)".into());
                return Ok(parsed);
            }
            if let Some(from) = field(&all, "original-mail-from") {
                return_paths.extend(addresses_in(from));
            }
            let recipient = field(&all, "original-rcpt-to")
                .map(str::to_owned)
                .or_else(|| original.as_ref().and_then(|o| o.to.clone()));
            if recipient.is_none() && message_id.is_none() && return_paths.is_empty() {
                return Err(ParseError(
                    "the feedback report names no recipient (no Original-Rcpt-To and no returned message)".into(),
                ));
            }
            parsed.reports.push(Report {
                source: Source::Arf,
                event_id: Some(event_id),
                kind: ReportKind::Complaint { feedback_type },
                recipient,
                message_id,
                return_paths,
                occurred_at: None,
            });
        }
        other => parsed.ignored.push(format!("a report of type {other:?} (not a bounce or complaint)")),
    }
    Ok(parsed)
}

/// Runs mail-parser with any panic inside it taken as "unreadable". A
/// hostile bounce must never stop the bounce-mailbox worker or `tidings
/// bounces ingest`, and mail-parser 0.11.9 does panic (a `debug_assert`, so
/// in debug builds) on some corrupted multipart structures: the `dsn` fuzz
/// target found one (fuzz/regressions/dsn/).
fn contained<T>(parse: impl FnOnce() -> Option<T>) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)).ok().flatten()
}

/// `Name: value` on the first line, the name printable ASCII without
/// spaces (RFC 5322 §2.2): the parser would read anything as a message.
fn starts_with_a_header_field(raw: &[u8]) -> bool {
    let first = raw.split(|b| *b == b'\n').next().unwrap_or_default();
    match first.iter().position(|b| *b == b':') {
        Some(colon) if colon > 0 => first[..colon].iter().all(|b| (33..=126).contains(b)),
        _ => false,
    }
}

/// What the report quotes of the message that bounced.
struct Original {
    message_id: Option<String>,
    to: Option<String>,
    return_path: Option<String>,
}

fn original_message(message: &Message<'_>) -> Option<Original> {
    for part in message.parts.iter().skip(1) {
        let Some(ct) = part.content_type() else { continue };
        let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
        let quoted = match (&part.body, ct.ctype().to_ascii_lowercase().as_str(), sub.as_str()) {
            (PartType::Message(m), _, _) => Some(describe(m)),
            (_, "text", "rfc822-headers") | (_, "message", "rfc822-headers") => {
                contained(|| MessageParser::default().parse_headers(part.contents())).as_ref().map(describe)
            }
            _ => None,
        };
        if quoted.is_some() {
            return quoted;
        }
    }
    None
}

fn describe(m: &Message<'_>) -> Original {
    let raw = |name: &str| m.headers_raw().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.to_owned());
    Original {
        message_id: m.message_id().map(str::to_owned),
        to: raw("to").and_then(|v| addresses_in(&v).into_iter().next()),
        return_path: raw("return-path").and_then(|v| addresses_in(&v).into_iter().next()),
    }
}

/// The text of the first part of one of these `message/…` subtypes.
fn machine_part(message: &Message<'_>, subtypes: &[&str]) -> Option<String> {
    message.parts.iter().find_map(|part| {
        let ct = part.content_type()?;
        let sub = ct.subtype()?.to_ascii_lowercase();
        (ct.ctype().eq_ignore_ascii_case("message") && subtypes.contains(&sub.as_str()))
            .then(|| String::from_utf8_lossy(part.contents()).into_owned())
    })
}

/// RFC 822-style field blocks separated by blank lines (the per-message
/// block, then one per recipient), with folded lines unfolded and names
/// lower-cased.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.is_empty() {
                blocks.push(std::mem::take(&mut current));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = current.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            current.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    if !current.is_empty() {
        blocks.push(current);
    }
    blocks
}

fn field<'a>(block: &'a [(String, String)], name: &str) -> Option<&'a str> {
    block.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// Addresses in a header value or a DSN address field (`rfc822; a@b`,
/// `Name <a@b>, c@d`).
fn addresses_in(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|item| {
            let item = item.trim();
            let item = item.split_once(';').map_or(item, |(_, a)| a.trim());
            let addr = match (item.rfind('<'), item.rfind('>')) {
                (Some(open), Some(close)) if open < close => &item[open + 1..close],
                _ => item,
            };
            let addr = addr.trim();
            (addr.contains('@') && !addr.contains(char::is_whitespace)).then(|| addr.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSN: &str = "From: MAILER-DAEMON@mx.example.net\r\n\
To: tb-abc@bounces.example.org\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
Message-ID: <dsn-1@mx.example.net>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\
\r\n\
--B\r\n\
Content-Type: text/plain\r\n\
\r\n\
Your message could not be delivered.\r\n\
--B\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.net\r\n\
\r\n\
Final-Recipient: rfc822; ann@example.org\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <ann@example.org>:\r\n\
\x20Recipient address rejected\r\n\
\r\n\
Final-Recipient: rfc822; bob@example.org\r\n\
Action: delayed\r\n\
Status: 4.4.1\r\n\
--B\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
Message-ID: <u.s@news.example.org>\r\n\
To: ann@example.org\r\n\
--B--\r\n";

    #[test]
    fn a_dsn_gives_one_report_per_recipient() {
        let parsed = parse(DSN.as_bytes()).unwrap();
        assert_eq!(parsed.reports.len(), 2, "{parsed:?}");
        let r = &parsed.reports[0];
        assert_eq!(r.recipient.as_deref(), Some("rfc822; ann@example.org"));
        assert_eq!(r.message_id.as_deref(), Some("u.s@news.example.org"));
        assert_eq!(r.event_id.as_deref(), Some("dsn-1@mx.example.net"));
        assert!(r.return_paths.contains(&"tb-abc@bounces.example.org".to_owned()));
        match &r.kind {
            ReportKind::Bounce { status, diagnostic, .. } => {
                assert_eq!(status.map(|s| s.to_string()).as_deref(), Some("5.1.1"));
                assert_eq!(
                    diagnostic.as_deref(),
                    Some("smtp; 550 5.1.1 <ann@example.org>: Recipient address rejected")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(parsed.reports[1].kind, ReportKind::Delayed { .. }));
    }

    #[test]
    fn ordinary_mail_is_ignored_and_garbage_is_an_error() {
        let parsed = parse(b"From: a@example.org\r\nSubject: out of office\r\n\r\nI am away.\r\n").unwrap();
        assert!(parsed.reports.is_empty() && parsed.ignored.len() == 1);
        let mbox = format!("From MAILER-DAEMON Thu Nov 12 10:00:00 2026\n{DSN}");
        assert_eq!(parse(mbox.as_bytes()).unwrap().reports.len(), 2, "an mbox separator line is skipped");
        assert!(parse(b"").is_err());
        assert!(parse(&[0xff, 0xfe, 0x00, 0x01]).is_err());
        let broken = DSN.replace("message/delivery-status", "text/plain");
        assert!(parse(broken.as_bytes()).is_err(), "a report without its status part");
    }

    #[test]
    fn a_corrupted_multipart_report_is_refused_without_a_panic() {
        // Found by the `dsn` fuzz target: on this message mail-parser 0.11.9
        // trips a debug_assert ("Invalid part ID"), so in debug builds the
        // parse panicked. Any answer will do; a panic fails the test.
        let raw = include_bytes!("../../../fuzz/regressions/dsn/mail-parser-debug-assert.eml");
        let _ = parse(raw);
    }

    #[test]
    fn field_blocks_unfold_and_split() {
        let blocks = field_blocks("A: 1\r\nB: 2\r\n  more\r\n\r\nC: 3\r\n");
        assert_eq!(blocks.len(), 2);
        assert_eq!(field(&blocks[0], "b"), Some("2 more"));
        assert_eq!(
            addresses_in("\"Ann\" <ann@example.org>, bob@example.org, nonsense"),
            ["ann@example.org", "bob@example.org"]
        );
    }
}
