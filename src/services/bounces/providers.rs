//! Provider webhook payloads → [`Report`]s. Pure: the web layer checks the
//! shared secret and the size, this module reads the JSON (and checks
//! Mailgun's signature, which lives inside the body).
//!
//! - `ses`: Amazon SNS HTTP(S) messages carrying SES notifications
//!   (`notificationType`) or SES event publishing (`eventType`), also with
//!   SNS raw message delivery. A `SubscriptionConfirmation` is not fetched
//!   (Tidings makes no outbound HTTP calls): it becomes a dashboard alert
//!   with the SubscribeURL for an admin to open.
//! - `postmark`: the Bounce and SpamComplaint webhooks (one record each).
//! - `sendgrid`: the Event Webhook's array: bounce (incl. type blocked),
//!   blocked, dropped, deferred, spamreport; other events are ignored.
//! - `mailgun`: `{"signature": {timestamp, token, signature}, "event-data"}`
//!   with `failed` (permanent/temporary) and `complained`; the signature is
//!   HMAC-SHA256(signing key, timestamp ‖ token), checked when a key is set.
//! - `generic`: Tidings' own form, one object or an array of them:
//!   `{"type": "bounce"|"complaint", "email", "message_id"?, "status"?,
//!   "diagnostic"?, "event_id"?}`.

use super::{EnhancedStatus, Parsed, Report, ReportKind, SnsConfirmation, Source, Verdict};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

/// The webhook providers, by the name in `/webhooks/{provider}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Ses,
    Postmark,
    Sendgrid,
    Mailgun,
    Generic,
}

impl Provider {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ses" => Some(Provider::Ses),
            "postmark" => Some(Provider::Postmark),
            "sendgrid" => Some(Provider::Sendgrid),
            "mailgun" => Some(Provider::Mailgun),
            "generic" => Some(Provider::Generic),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("{0}")]
    Malformed(String),
    #[error("the Mailgun signature is missing or wrong")]
    BadSignature,
}

fn malformed(message: impl Into<String>) -> PayloadError {
    PayloadError::Malformed(message.into())
}

/// Reads one webhook body. `mailgun_key`, when set, must have signed a
/// Mailgun payload.
pub fn parse(provider: Provider, body: &[u8], mailgun_key: Option<&str>) -> Result<Parsed, PayloadError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| malformed(format!("the body is not valid JSON: {e}")))?;
    let mut parsed = Parsed::default();
    match provider {
        Provider::Ses => ses(&value, &mut parsed)?,
        Provider::Postmark => postmark(&value, &mut parsed)?,
        Provider::Sendgrid => sendgrid(&value, &mut parsed)?,
        Provider::Mailgun => mailgun(&value, mailgun_key, &mut parsed)?,
        Provider::Generic => generic(&value, &mut parsed)?,
    }
    Ok(parsed)
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn owned(v: &Value, key: &str) -> Option<String> {
    text(v, key).map(str::to_owned)
}

fn rfc3339(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    text(v, key).and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
}

fn unix(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    let secs = match v.get(key)? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    if !secs.is_finite() || !(0.0..1e11).contains(&secs) {
        return None;
    }
    Utc.timestamp_opt(secs.trunc() as i64, ((secs.fract()) * 1e9) as u32).single()
}

/// A status code from an explicit field, else the first one in the text.
fn status_of(explicit: Option<&str>, texts: &[Option<&str>]) -> Option<EnhancedStatus> {
    explicit.and_then(EnhancedStatus::parse).or_else(|| texts.iter().flatten().find_map(|t| EnhancedStatus::find_in(t)))
}

// ---- Amazon SES via SNS ----

fn ses(value: &Value, parsed: &mut Parsed) -> Result<(), PayloadError> {
    if !value.is_object() {
        return Err(malformed("expected an Amazon SNS message (a JSON object)"));
    }
    match text(value, "Type") {
        Some("SubscriptionConfirmation") => {
            let (Some(topic_arn), Some(subscribe_url)) = (owned(value, "TopicArn"), owned(value, "SubscribeURL"))
            else {
                return Err(malformed("an SNS SubscriptionConfirmation needs TopicArn and SubscribeURL"));
            };
            parsed.sns_confirmations.push(SnsConfirmation { topic_arn, subscribe_url });
            Ok(())
        }
        Some("UnsubscribeConfirmation") => {
            parsed.ignored.push("an SNS unsubscribe confirmation".into());
            Ok(())
        }
        Some("Notification") => {
            let message = text(value, "Message").ok_or_else(|| malformed("an SNS Notification needs a Message"))?;
            let inner: Value = serde_json::from_str(message)
                .map_err(|_| malformed("the SNS Message is not an SES notification (not JSON)"))?;
            ses_notification(&inner, parsed)
        }
        Some(other) => {
            parsed.ignored.push(format!("SNS message type {other}"));
            Ok(())
        }
        // SNS raw message delivery: the SES JSON itself.
        None => ses_notification(value, parsed),
    }
}

fn ses_notification(n: &Value, parsed: &mut Parsed) -> Result<(), PayloadError> {
    let kind = text(n, "notificationType")
        .or_else(|| text(n, "eventType"))
        .ok_or_else(|| malformed("not an SES notification: no notificationType or eventType"))?;
    let mail = n.get("mail").cloned().unwrap_or(Value::Null);
    let message_id = mail.get("commonHeaders").and_then(|h| owned(h, "messageId")).or_else(|| {
        mail.get("headers")?.as_array()?.iter().find_map(|h| {
            text(h, "name").filter(|n| n.eq_ignore_ascii_case("message-id")).and_then(|_| owned(h, "value"))
        })
    });
    let return_paths: Vec<String> = owned(&mail, "source").into_iter().collect();
    let report = |event_id: Option<String>, recipient: Option<String>, kind: ReportKind, at| Report {
        source: Source::Ses,
        event_id,
        kind,
        recipient,
        message_id: message_id.clone(),
        return_paths: return_paths.clone(),
        occurred_at: at,
    };
    match kind {
        "Bounce" => {
            let b = n.get("bounce").ok_or_else(|| malformed("an SES Bounce needs a bounce object"))?;
            let verdict = match text(b, "bounceType") {
                Some("Permanent") => Verdict::Permanent,
                Some("Transient") => Verdict::Transient,
                _ => Verdict::Unknown,
            };
            let subtype = text(b, "bounceSubType").unwrap_or("");
            let feedback = owned(b, "feedbackId");
            let at = rfc3339(b, "timestamp");
            let recipients = b.get("bouncedRecipients").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
            if recipients.is_empty() {
                return Err(malformed("an SES Bounce needs bouncedRecipients"));
            }
            for r in recipients {
                let diagnostic = owned(r, "diagnosticCode")
                    .or_else(|| (!subtype.is_empty()).then(|| format!("SES bounce subtype {subtype}")));
                let status = status_of(text(r, "status"), &[diagnostic.as_deref()]);
                let kind = ReportKind::Bounce { status, diagnostic, verdict };
                parsed.reports.push(report(feedback.clone(), owned(r, "emailAddress"), kind, at));
            }
        }
        "Complaint" => {
            let c = n.get("complaint").ok_or_else(|| malformed("an SES Complaint needs a complaint object"))?;
            let feedback_type = owned(c, "complaintFeedbackType");
            if feedback_type.as_deref() == Some("not-spam") {
                parsed.ignored.push("an SES not-spam feedback report (the opposite of a complaint)".into());
                return Ok(());
            }
            let at = rfc3339(c, "timestamp");
            let recipients = c.get("complainedRecipients").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
            if recipients.is_empty() {
                return Err(malformed("an SES Complaint needs complainedRecipients"));
            }
            for r in recipients {
                let kind = ReportKind::Complaint { feedback_type: feedback_type.clone() };
                parsed.reports.push(report(owned(c, "feedbackId"), owned(r, "emailAddress"), kind, at));
            }
        }
        "DeliveryDelay" => {
            let d = n.get("deliveryDelay").cloned().unwrap_or(Value::Null);
            let at = rfc3339(&d, "timestamp");
            let event_id =
                owned(&mail, "messageId").map(|m| format!("delay:{m}:{}", text(&d, "timestamp").unwrap_or("")));
            for r in d.get("delayedRecipients").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
                let diagnostic = owned(r, "diagnosticCode");
                let status = status_of(text(r, "status"), &[diagnostic.as_deref()]);
                let kind = ReportKind::Delayed { status, diagnostic };
                parsed.reports.push(report(event_id.clone(), owned(r, "emailAddress"), kind, at));
            }
        }
        other => parsed.ignored.push(format!("SES {other} notification")),
    }
    Ok(())
}

// ---- Postmark ----

fn postmark(value: &Value, parsed: &mut Parsed) -> Result<(), PayloadError> {
    if !value.is_object() {
        return Err(malformed("expected a Postmark webhook record (a JSON object)"));
    }
    let record = text(value, "RecordType");
    let kind = text(value, "Type").or(record).ok_or_else(|| malformed("a Postmark record needs Type or RecordType"))?;
    if !matches!(record, None | Some("Bounce") | Some("SpamComplaint")) {
        parsed.ignored.push(format!("Postmark {} record", record.unwrap_or("")));
        return Ok(());
    }
    let event_id = value.get("ID").and_then(|id| match id {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    });
    let email = owned(value, "Email").ok_or_else(|| malformed("a Postmark record needs Email"))?;
    let diagnostic = owned(value, "Details").or_else(|| owned(value, "Description"));
    let report_kind = match kind {
        "SpamComplaint" => ReportKind::Complaint { feedback_type: Some("abuse".into()) },
        "HardBounce" | "BadEmailAddress" => bounce(Verdict::Permanent, diagnostic),
        "SoftBounce" | "Transient" | "DnsError" => bounce(Verdict::Transient, diagnostic),
        "Blocked" | "DMARCPolicy" | "SpamNotification" => bounce(Verdict::Policy, diagnostic),
        other => {
            parsed.ignored.push(format!("Postmark {other} bounce (not a delivery failure Tidings acts on)"));
            return Ok(());
        }
    };
    parsed.reports.push(Report {
        source: Source::Postmark,
        event_id,
        kind: report_kind,
        recipient: Some(email),
        message_id: owned(value, "MessageID"),
        return_paths: Vec::new(),
        occurred_at: rfc3339(value, "BouncedAt"),
    });
    Ok(())
}

fn bounce(verdict: Verdict, diagnostic: Option<String>) -> ReportKind {
    let status = status_of(None, &[diagnostic.as_deref()]);
    ReportKind::Bounce { status, diagnostic, verdict }
}

// ---- SendGrid ----

fn sendgrid(value: &Value, parsed: &mut Parsed) -> Result<(), PayloadError> {
    let events: &[Value] = match value {
        Value::Array(events) => events,
        Value::Object(_) => std::slice::from_ref(value),
        _ => return Err(malformed("expected the SendGrid Event Webhook's JSON array")),
    };
    for e in events {
        let Some(event) = text(e, "event") else {
            parsed.ignored.push("a SendGrid entry without an event".into());
            continue;
        };
        let Some(email) = owned(e, "email") else {
            parsed.ignored.push(format!("a SendGrid {event} event without an email"));
            continue;
        };
        let diagnostic = owned(e, "reason").or_else(|| owned(e, "response"));
        let status = status_of(text(e, "status"), &[diagnostic.as_deref()]);
        let kind = match (event, text(e, "type")) {
            ("bounce", Some("blocked")) | ("blocked", _) => {
                ReportKind::Bounce { status, diagnostic, verdict: Verdict::Transient }
            }
            ("bounce", _) => ReportKind::Bounce { status, diagnostic, verdict: Verdict::Permanent },
            ("deferred", _) => ReportKind::Delayed { status, diagnostic },
            ("spamreport", _) => ReportKind::Complaint { feedback_type: Some("abuse".into()) },
            ("dropped", _) => match text(e, "reason") {
                Some("Bounced Address") | Some("Invalid") => {
                    ReportKind::Bounce { status, diagnostic, verdict: Verdict::Permanent }
                }
                Some("Spam Reporting Address") => ReportKind::Complaint { feedback_type: Some("abuse".into()) },
                reason => {
                    parsed.ignored.push(format!("a SendGrid drop ({})", reason.unwrap_or("no reason")));
                    continue;
                }
            },
            (other, _) => {
                parsed.ignored.push(format!("SendGrid {other} event"));
                continue;
            }
        };
        parsed.reports.push(Report {
            source: Source::Sendgrid,
            event_id: owned(e, "sg_event_id"),
            kind,
            recipient: Some(email),
            message_id: owned(e, "smtp-id"),
            return_paths: Vec::new(),
            occurred_at: unix(e, "timestamp"),
        });
    }
    Ok(())
}

// ---- Mailgun ----

/// HMAC-SHA256(key, timestamp ‖ token) in hex, compared in constant time.
pub fn mailgun_signature_ok(key: &str, timestamp: &str, token: &str, signature: &str) -> bool {
    use hmac::{Hmac, KeyInit, Mac};
    let Ok(mut mac) = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()) else { return false };
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    let expected = crate::domain::hex_lower(&mac.finalize().into_bytes());
    let given = signature.trim().to_ascii_lowercase();
    expected.len() == given.len() && expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

fn mailgun(value: &Value, key: Option<&str>, parsed: &mut Parsed) -> Result<(), PayloadError> {
    if !value.is_object() {
        return Err(malformed("expected a Mailgun webhook (a JSON object)"));
    }
    if let Some(key) = key {
        let sig = value.get("signature").ok_or(PayloadError::BadSignature)?;
        let (Some(timestamp), Some(token), Some(signature)) =
            (text(sig, "timestamp"), text(sig, "token"), text(sig, "signature"))
        else {
            return Err(PayloadError::BadSignature);
        };
        if !mailgun_signature_ok(key, timestamp, token, signature) {
            return Err(PayloadError::BadSignature);
        }
    }
    let data = value
        .get("event-data")
        .filter(|d| d.is_object())
        .ok_or_else(|| malformed("a Mailgun webhook needs event-data"))?;
    let event = text(data, "event").ok_or_else(|| malformed("Mailgun event-data needs an event"))?;
    let delivery = data.get("delivery-status").cloned().unwrap_or(Value::Null);
    let diagnostic = {
        let code = delivery.get("code").and_then(Value::as_i64);
        let message = text(&delivery, "message").or_else(|| text(&delivery, "description"));
        match (code, message) {
            (Some(c), Some(m)) => Some(format!("{c} {m}")),
            (None, Some(m)) => Some(m.to_owned()),
            (Some(c), None) => Some(format!("{c} {}", text(data, "reason").unwrap_or(""))),
            (None, None) => owned(data, "reason"),
        }
    };
    let kind = match event {
        "failed" => {
            let verdict = match text(data, "severity") {
                Some("permanent") => Verdict::Permanent,
                Some("temporary") => Verdict::Transient,
                _ => Verdict::Unknown,
            };
            let status = status_of(
                text(&delivery, "enhanced-code"),
                &[text(&delivery, "message"), text(&delivery, "description")],
            );
            ReportKind::Bounce { status, diagnostic, verdict }
        }
        "complained" => ReportKind::Complaint { feedback_type: Some("abuse".into()) },
        other => {
            parsed.ignored.push(format!("Mailgun {other} event"));
            return Ok(());
        }
    };
    let recipient = owned(data, "recipient").ok_or_else(|| malformed("Mailgun event-data needs a recipient"))?;
    let event_id = owned(data, "id").or_else(|| value.get("signature").and_then(|s| owned(s, "token")));
    parsed.reports.push(Report {
        source: Source::Mailgun,
        event_id,
        kind,
        recipient: Some(recipient),
        message_id: data.get("message").and_then(|m| m.get("headers")).and_then(|h| owned(h, "message-id")),
        return_paths: data.get("envelope").and_then(|e| owned(e, "sender")).into_iter().collect(),
        occurred_at: unix(data, "timestamp"),
    });
    Ok(())
}

// ---- Tidings' generic form ----

fn generic(value: &Value, parsed: &mut Parsed) -> Result<(), PayloadError> {
    let items: &[Value] = match value {
        Value::Array(items) => items,
        Value::Object(_) => std::slice::from_ref(value),
        _ => return Err(malformed("expected a JSON object or an array of them")),
    };
    for (i, item) in items.iter().enumerate() {
        let at = |m: &str| malformed(if items.len() > 1 { format!("item {i}: {m}") } else { m.to_owned() });
        if !item.is_object() {
            return Err(at("expected a JSON object"));
        }
        let email = owned(item, "email").ok_or_else(|| at("\"email\" is required"))?;
        let diagnostic = owned(item, "diagnostic");
        let status = match text(item, "status") {
            Some(s) => {
                Some(EnhancedStatus::parse(s).ok_or_else(|| at("\"status\" must be an RFC 3463 code such as 5.1.1"))?)
            }
            None => None,
        };
        let kind = match text(item, "type") {
            Some("bounce") => ReportKind::Bounce { status, diagnostic, verdict: Verdict::Unknown },
            Some("complaint") => ReportKind::Complaint { feedback_type: owned(item, "feedback_type") },
            _ => return Err(at("\"type\" must be \"bounce\" or \"complaint\"")),
        };
        parsed.reports.push(Report {
            source: Source::Generic,
            event_id: owned(item, "event_id"),
            kind,
            recipient: Some(email),
            message_id: owned(item, "message_id"),
            return_paths: owned(item, "return_path").into_iter().collect(),
            occurred_at: rfc3339(item, "occurred_at"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(provider: Provider, body: &str) -> Report {
        let parsed = parse(provider, body.as_bytes(), None).unwrap();
        assert_eq!(parsed.reports.len(), 1, "{parsed:?}");
        parsed.reports.into_iter().next().unwrap()
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        for p in [Provider::Ses, Provider::Postmark, Provider::Sendgrid, Provider::Mailgun, Provider::Generic] {
            assert!(matches!(parse(p, b"not json", None), Err(PayloadError::Malformed(_))));
            assert!(matches!(parse(p, b"42", None), Err(PayloadError::Malformed(_))), "{p:?}");
        }
        let deep = "[".repeat(10_000);
        assert!(parse(Provider::Sendgrid, deep.as_bytes(), None).is_err());
    }

    #[test]
    fn ses_raw_delivery_and_sns_envelopes_are_both_read() {
        let inner = r#"{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"a@example.org","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}],"feedbackId":"f1","timestamp":"2016-01-27T14:59:38.237Z"},"mail":{"source":"tb-x@bounce.example.org","commonHeaders":{"messageId":"<m@h>"}}}"#;
        let raw = one(Provider::Ses, inner);
        let wrapped = serde_json::json!({"Type": "Notification", "MessageId": "x", "Message": inner}).to_string();
        assert_eq!(one(Provider::Ses, &wrapped), raw);
        assert_eq!(raw.message_id.as_deref(), Some("<m@h>"));
        assert_eq!(raw.return_paths, ["tb-x@bounce.example.org"]);
        assert!(
            matches!(raw.kind, ReportKind::Bounce { verdict: Verdict::Permanent, status: Some(s), .. } if s.to_string() == "5.1.1")
        );
    }

    #[test]
    fn mailgun_signatures_are_checked_when_a_key_is_set() {
        let key = "key-secret";
        let sig = {
            use hmac::{Hmac, KeyInit, Mac};
            let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
            mac.update(b"1700000000tok");
            crate::domain::hex_lower(&mac.finalize().into_bytes())
        };
        let body = |s: &str| {
            serde_json::json!({"signature": {"timestamp": "1700000000", "token": "tok", "signature": s},
                "event-data": {"event": "complained", "recipient": "a@example.org", "id": "e1"}})
            .to_string()
        };
        assert_eq!(parse(Provider::Mailgun, body(&sig).as_bytes(), Some(key)).unwrap().reports.len(), 1);
        assert_eq!(parse(Provider::Mailgun, body("00").as_bytes(), Some(key)), Err(PayloadError::BadSignature));
        assert_eq!(parse(Provider::Mailgun, body("00").as_bytes(), None).unwrap().reports.len(), 1, "no key, no check");
    }

    #[test]
    fn generic_items_are_validated() {
        let r = one(Provider::Generic, r#"{"type":"bounce","email":"a@example.org","status":"4.2.2"}"#);
        assert!(matches!(r.kind, ReportKind::Bounce { status: Some(s), .. } if s.to_string() == "4.2.2"));
        for bad in [
            r#"{"type":"bounce"}"#,
            r#"{"type":"x","email":"a@example.org"}"#,
            r#"{"type":"bounce","email":"a@b.org","status":"550"}"#,
        ] {
            assert!(parse(Provider::Generic, bad.as_bytes(), None).is_err(), "{bad}");
        }
    }
}
