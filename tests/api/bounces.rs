//! Bounces and complaints: every provider's published sample payload through
//! `POST /webhooks/{provider}` (adapted only in the recipient and
//! Message-ID, to name a delivery the test really sent), DSN and ARF
//! messages (hard, soft ×3, policy block, complaint, VERP-tied) through the
//! service, through `tidings bounces ingest` (the real binary) and through
//! the bounce-mailbox worker polling real POP3 and IMAP servers on loopback
//! (small servers in `support/`, speaking the protocols over TCP and TLS).

use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token, header, html_escaped};
use crate::support::imap::TestImap;
use crate::support::pop3::TestPop3;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::process::{Command, Stdio};
use tidings::services::bounces;
use tidings::workers::bounce_mailbox::BounceMailboxWorker;

both_backends!(
    mail_that_is_not_a_report_stays_in_the_pop3_mailbox_and_is_read_once,
    mail_that_is_not_a_report_stays_in_the_imap_folder_and_is_read_once,
    ses_notifications_through_sns_bounce_and_complain_once_each,
    postmark_bounce_and_spam_complaint_webhooks_are_applied,
    a_sendgrid_event_batch_is_applied_event_by_event,
    signed_mailgun_events_are_applied_and_bad_signatures_refused,
    the_generic_form_is_applied_and_validated,
    webhooks_need_the_secret_and_refuse_garbage_with_json,
    a_hard_dsn_suppresses_and_a_policy_block_only_raises_an_alert,
    three_soft_bounces_in_a_row_suspend_without_suppressing,
    an_arf_complaint_suppresses_everywhere_and_a_later_subscribe_sends_nothing,
    a_dsn_sent_to_the_verp_address_is_tied_to_its_delivery,
    every_transactional_mail_goes_out_with_a_verp_return_path_at_the_bounce_domain,
    a_dsn_of_a_confirmation_mail_suppresses_that_address_and_nothing_else,
    a_forged_or_altered_transactional_tag_changes_nothing,
    a_complaint_about_a_confirmation_mail_returned_to_its_verp_address_is_applied,
    without_a_bounce_domain_transactional_mail_goes_from_the_from_address,
    the_cli_ingests_a_dsn_from_stdin,
    the_bounce_mailbox_is_polled_and_messages_are_deleted_only_after_they_are_applied,
    the_bounce_mailbox_can_be_read_over_tls,
    the_bounce_mailbox_can_be_an_imap_folder,
    the_admin_page_lists_reports_by_kind,
);

const SECRET: &str = "a-long-webhook-secret-for-tests";
const MAILGUN_KEY: &str = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0";

async fn spawn(db: Db, extra: &[(&str, &str)]) -> TestApp {
    let mut settings = vec![("TIDINGS_WEBHOOK_SECRET", SECRET)];
    settings.extend_from_slice(extra);
    TestApp::spawn_with(db, &settings).await
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}

/// Sends an update to `updates` and returns its id and each recipient's
/// Message-ID (from the copy the SMTP server received).
async fn send_update(app: &TestApp, subject: &str) -> (String, HashMap<String, String>) {
    let id = app.create_update(subject, "Dear {{name}}, news.", &["updates"]).await;
    let res = app.api(Method::POST, &format!("/updates/{id}/send")).send().await.unwrap();
    assert_eq!(res.status(), 202);
    app.drive_delivery(&id, 50).await;
    let mut ids = HashMap::new();
    for mail in app.smtp.messages() {
        if header(&mail, "Subject").as_deref() == Some(subject) {
            ids.insert(mail.to[0].to_lowercase(), header(&mail, "Message-ID").expect("a Message-ID"));
        }
    }
    (id, ids)
}

async fn webhook(app: &TestApp, provider: &str, body: &str) -> (u16, Value) {
    let res = app
        .http
        .post(app.url(&format!("/webhooks/{provider}")))
        .basic_auth("tidings", Some(SECRET))
        .header("content-type", "text/plain; charset=UTF-8")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn suppressed(app: &TestApp, email: &str) -> bool {
    let hash = tidings::domain::EmailAddress::parse(email).unwrap().suppression_hash(&app.ctx.address_key);
    app.ctx.store.read().await.unwrap().is_suppressed(&hash).await.unwrap()
}

fn kinds(ledger: &[Value]) -> Vec<String> {
    ledger.iter().map(|e| e["kind"].as_str().unwrap().to_owned()).collect()
}

async fn events(app: &TestApp) -> Vec<tidings::store::BounceEventRow> {
    bounces::events(&app.ctx, None, None, 1000).await.unwrap()
}

/// Applies a DSN/ARF message in process, as the CLI and the mailbox do.
async fn ingest(app: &TestApp, raw: &str) -> Vec<bounces::Outcome> {
    let parsed = bounces::dsn::parse(raw.as_bytes()).expect("a readable report");
    bounces::ingest(&app.ctx, &parsed).await.expect("applied")
}

fn dsn(template: &str, recipient: &str, message_id: &str, dsn_id: &str) -> String {
    fixture(&format!("dsn/{template}"))
        .replace("{{recipient}}", recipient)
        .replace("{{message_id}}", message_id)
        .replace("{{dsn_id}}", dsn_id)
}

/// A copy of an SNS notification sample carrying `ses` as its Message.
fn sns_notification(ses: &str) -> String {
    let mut envelope: Value = serde_json::from_str(&fixture("webhooks/sns-notification.json")).unwrap();
    envelope["Message"] = Value::String(ses.to_owned());
    envelope.to_string()
}

async fn ses_notifications_through_sns_bounce_and_complain_once_each(db: Db) {
    let app = spawn(db, &[]).await;
    app.confirmed_subscribers("ses", 2, "updates").await;
    let (update, ids) = send_update(&app, "The ward stays open").await;
    let (jane, richard) = ("ses0@example.org", "ses1@example.org");

    let bounce = fixture("webhooks/ses-bounce-with-dsn.json")
        .replace("jane@example.com", jane)
        .replace("custom-message-ID", &ids[jane]);
    let (status, body) = webhook(&app, "ses", &sns_notification(&bounce)).await;
    assert_eq!((status, body["applied"].as_u64()), (200, Some(1)), "{body}");
    assert_eq!(app.status(jane, "updates").await, "bounced");
    assert!(suppressed(&app, jane).await);
    assert_eq!(kinds(&app.ledger(jane).await).last().map(String::as_str), Some("bounced"));
    assert_eq!(app.stats(&update).await["bounced"], 1, "the delivery itself is marked bounced");

    // SNS retries: the same notification again has no second effect.
    let ledger_before = app.ledger(jane).await.len();
    let (status, body) = webhook(&app, "ses", &sns_notification(&bounce)).await;
    assert_eq!((status, body["duplicates"].as_u64(), body["applied"].as_u64()), (200, Some(1), Some(0)), "{body}");
    assert_eq!(app.ledger(jane).await.len(), ledger_before);
    assert_eq!(events(&app).await.len(), 1);

    // Raw message delivery (no SNS envelope) of the complaint sample.
    let complaint = fixture("webhooks/ses-complaint-with-feedback.json")
        .replace("richard@example.com", richard)
        .replace("custom-message-ID", &ids[richard]);
    let (status, body) = webhook(&app, "ses", &complaint).await;
    assert_eq!((status, body["applied"].as_u64()), (200, Some(1)), "{body}");
    assert_eq!(app.status(richard, "updates").await, "complained");
    assert!(suppressed(&app, richard).await);
    assert_eq!(kinds(&app.ledger(richard).await).last().map(String::as_str), Some("complained"));

    // A subscription confirmation is shown to the admin with its link.
    let (status, _) = webhook(&app, "ses", &fixture("webhooks/sns-subscription-confirmation.json")).await;
    assert_eq!(status, 200);
    let admin = app.login_as_admin().await;
    let page = admin.get("/admin").await.body;
    assert!(page.contains("Confirm the Amazon SNS subscription"), "{page}");
    assert!(page.contains(&html_escaped(
        "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token="
    )));
}

async fn postmark_bounce_and_spam_complaint_webhooks_are_applied(db: Db) {
    let app = spawn(db, &[]).await;
    app.confirmed_subscribers("pm", 2, "updates").await;
    send_update(&app, "Postmark test").await;
    // Postmark's MessageID is its own, so these are tied by address.
    let bounce = fixture("webhooks/postmark-bounce.json").replace("john@example.com", "pm0@example.org");
    let (status, body) = webhook(&app, "postmark", &bounce).await;
    assert_eq!((status, body["applied"].as_u64()), (200, Some(1)), "{body}");
    assert_eq!(app.status("pm0@example.org", "updates").await, "bounced");
    assert!(suppressed(&app, "pm0@example.org").await);

    let complaint = fixture("webhooks/postmark-spam-complaint.json").replace("john@example.com", "pm1@example.org");
    let (status, body) = webhook(&app, "postmark", &complaint).await;
    assert_eq!((status, body["applied"].as_u64()), (200, Some(1)), "{body}");
    assert_eq!(app.status("pm1@example.org", "updates").await, "complained");
    assert!(suppressed(&app, "pm1@example.org").await);
}

async fn a_sendgrid_event_batch_is_applied_event_by_event(db: Db) {
    let app = spawn(db, &[]).await;
    app.confirmed_subscribers("sg", 6, "updates").await;
    let (update, ids) = send_update(&app, "SendGrid test").await;
    let mut batch: Value = serde_json::from_str(&fixture("webhooks/sendgrid-events.json")).unwrap();
    for (i, event) in batch.as_array_mut().unwrap().iter_mut().enumerate() {
        let email = format!("sg{i}@example.org");
        event["smtp-id"] = Value::String(ids[&email].clone());
        event["email"] = Value::String(email);
    }
    let (status, body) = webhook(&app, "sendgrid", &batch.to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["received"].as_u64(), body["applied"].as_u64(), body["ignored"].as_u64()),
        (Some(6), Some(5), Some(1))
    );
    // delivered → nothing; deferred → recorded only; bounce (5.0.0, SendGrid
    // says permanent) → hard; blocked → soft (first of three); dropped as a
    // bounced address → hard; spam report → complaint.
    let expected = ["confirmed", "confirmed", "bounced", "confirmed", "bounced", "complained"];
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(&app.status(&format!("sg{i}@example.org"), "updates").await, want, "sg{i}");
    }
    for (i, want) in [false, false, true, false, true, true].iter().enumerate() {
        assert_eq!(suppressed(&app, &format!("sg{i}@example.org")).await, *want, "sg{i}");
    }
    let classes: Vec<String> = events(&app).await.into_iter().rev().map(|e| e.class).collect();
    assert_eq!(classes, ["delayed", "hard", "soft", "hard", "complaint"]);
    assert_eq!(app.stats(&update).await["bounced"], 3, "bounce, blocked and dropped name their delivery");
}

fn mailgun_signed(sample: &str, recipient: &str, message_id: &str, key: &str) -> String {
    let mut v: Value = serde_json::from_str(&fixture(&format!("webhooks/{sample}"))).unwrap();
    v["event-data"]["recipient"] = Value::String(recipient.to_owned());
    v["event-data"]["message"]["headers"]["message-id"] = Value::String(message_id.trim_matches(['<', '>']).to_owned());
    // Signed now: a signature older than five minutes is refused (issue 16 §6).
    v["signature"]["timestamp"] = Value::String(chrono::Utc::now().timestamp().to_string());
    let (ts, token) = (v["signature"]["timestamp"].as_str().unwrap(), v["signature"]["token"].as_str().unwrap());
    let signature = {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(format!("{ts}{token}").as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    v["signature"]["signature"] = Value::String(signature);
    v.to_string()
}

async fn signed_mailgun_events_are_applied_and_bad_signatures_refused(db: Db) {
    let app = spawn(db, &[("TIDINGS_MAILGUN_SIGNING_KEY", MAILGUN_KEY)]).await;
    app.confirmed_subscribers("mg", 3, "updates").await;
    let (_, ids) = send_update(&app, "Mailgun test").await;
    let (a, b, c) = ("mg0@example.org", "mg1@example.org", "mg2@example.org");

    let forged = mailgun_signed("mailgun-failed-permanent.json", a, &ids[a], "not the key");
    let (status, body) = webhook(&app, "mailgun", &forged).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("unauthorized")), "{body}");
    assert_eq!(app.status(a, "updates").await, "confirmed", "a forged event changes nothing");

    let (status, body) =
        webhook(&app, "mailgun", &mailgun_signed("mailgun-failed-permanent.json", a, &ids[a], MAILGUN_KEY)).await;
    assert_eq!((status, body["applied"].as_u64()), (200, Some(1)), "{body}");
    assert_eq!(app.status(a, "updates").await, "bounced");
    assert!(suppressed(&app, a).await);

    let (status, _) =
        webhook(&app, "mailgun", &mailgun_signed("mailgun-failed-temporary.json", b, &ids[b], MAILGUN_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(app.status(b, "updates").await, "confirmed", "one temporary failure suspends nobody");
    assert!(!suppressed(&app, b).await);

    let (status, _) =
        webhook(&app, "mailgun", &mailgun_signed("mailgun-complained.json", c, &ids[c], MAILGUN_KEY)).await;
    assert_eq!(status, 200);
    assert_eq!(app.status(c, "updates").await, "complained");
    assert_eq!(
        events(&app).await.iter().map(|e| e.class.as_str()).rev().collect::<Vec<_>>(),
        ["hard", "soft", "complaint"]
    );
}

async fn the_generic_form_is_applied_and_validated(db: Db) {
    let app = spawn(db, &[]).await;
    app.confirmed_subscribers("g", 2, "updates").await;
    let (update, ids) = send_update(&app, "Generic test").await;
    let body = fixture("webhooks/generic.json")
        .replace("someone@example.org", "g0@example.org")
        .replace("<m1@example.org>", &ids["g0@example.org"])
        .replace("other@example.org", "g1@example.org");
    let (status, answer) = webhook(&app, "generic", &body).await;
    assert_eq!((status, answer["applied"].as_u64()), (200, Some(2)), "{answer}");
    assert_eq!(app.status("g0@example.org", "updates").await, "bounced");
    assert_eq!(app.status("g1@example.org", "updates").await, "complained");
    assert_eq!(app.stats(&update).await["bounced"], 1);
    let e = events(&app).await;
    assert_eq!(
        e.last().unwrap().update_id.map(|u| u.to_string()).as_deref(),
        Some(update.as_str()),
        "tied by Message-ID"
    );

    let (status, answer) =
        webhook(&app, "generic", r#"{"type":"bounce","email":"g1@example.org","status":"bad"}"#).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_request")), "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("RFC 3463"));
}

async fn webhooks_need_the_secret_and_refuse_garbage_with_json(db: Db) {
    // No secret configured: the route does not exist.
    let off = TestApp::spawn(db.clone()).await;
    let res = off.http.post(off.url("/webhooks/generic")).body("{}").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "not_found");
    drop(off);

    let app = spawn(db, &[]).await;
    let unknown = r#"{"type":"bounce","email":"nobody@example.org","status":"5.1.1"}"#;
    let post = |path: &str| app.http.post(app.url(path)).body(unknown);
    let res = post("/webhooks/generic").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().contains_key("www-authenticate"));
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "unauthorized");
    let res = post("/webhooks/generic").basic_auth("tidings", Some("wrong")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = post("/webhooks/generic?secret=wrong").send().await.unwrap();
    assert_eq!(res.status(), 401);

    // The three ways to present it; an unknown address is answered 200 (and recorded once).
    for (i, req) in [
        post("/webhooks/generic").basic_auth("sendgrid", Some(SECRET)),
        post(&format!("/webhooks/generic?secret={SECRET}")),
        post("/webhooks/generic").header("X-Tidings-Webhook-Secret", SECRET),
    ]
    .into_iter()
    .enumerate()
    {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "way {i}");
        let body: Value = res.json().await.unwrap();
        let expect = if i == 0 { (Some(1), Some(0)) } else { (Some(0), Some(1)) };
        assert_eq!((body["unmatched"].as_u64(), body["duplicates"].as_u64()), expect, "way {i}: {body}");
    }
    assert_eq!(events(&app).await[0].outcome, "unmatched");

    let res = post("/webhooks/nonesuch").basic_auth("x", Some(SECRET)).send().await.unwrap();
    assert_eq!(res.status(), 404);
    for (provider, garbage) in [
        ("ses", "not json"),
        ("sendgrid", "{\"a\":"),
        ("postmark", "[]"),
        ("mailgun", "\"x\""),
        ("generic", "\u{0}\u{1}"),
    ] {
        let res = app
            .http
            .post(app.url(&format!("/webhooks/{provider}")))
            .basic_auth("x", Some(SECRET))
            .body(garbage)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{provider}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "bad_request", "{provider}");
    }
    let huge = format!("[{}]", vec!["{\"event\":\"open\",\"email\":\"a@b.org\"}"; 40_000].join(","));
    assert!(huge.len() > tidings_webhook_limit());
    let res = reqwest::Client::new()
        .post(app.url("/webhooks/sendgrid"))
        .basic_auth("x", Some(SECRET))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "too_large");
}

fn tidings_webhook_limit() -> usize {
    1024 * 1024
}

async fn a_hard_dsn_suppresses_and_a_policy_block_only_raises_an_alert(db: Db) {
    let app = spawn(db, &[]).await;
    app.confirmed_subscribers("d", 2, "updates").await;
    let (update, ids) = send_update(&app, "DSN test").await;
    let (hard, policy) = ("d0@example.org", "d1@example.org");

    let out = ingest(&app, &dsn("hard-5.1.1.eml", hard, &ids[hard], "h1")).await;
    assert!(matches!(out[..], [bounces::Outcome::Applied { class: bounces::Class::Hard, .. }]), "{out:?}");
    assert_eq!(app.status(hard, "updates").await, "bounced");
    assert!(suppressed(&app, hard).await);

    let out = ingest(&app, &dsn("policy-5.7.1.eml", policy, &ids[policy], "p1")).await;
    assert!(matches!(out[..], [bounces::Outcome::Applied { class: bounces::Class::Policy, .. }]), "{out:?}");
    assert_eq!(app.status(policy, "updates").await, "confirmed", "a policy block changes no subscriber");
    assert!(!suppressed(&app, policy).await);
    assert!(!kinds(&app.ledger(policy).await).iter().any(|k| k == "bounced"), "no ledger entry either");
    assert_eq!(app.stats(&update).await["bounced"], 2);
    // A second block at the same domain counts up the same alert.
    ingest(&app, &dsn("policy-5.7.1.eml", policy, &ids[policy], "p2")).await;

    let editor = app.login_as_editor().await;
    let page = editor.get("/admin").await;
    assert!(page.body.contains("Mail to example.org is being refused by policy"), "{}", page.body);
    assert!(page.body.contains("2 times"));
    assert!(!page.body.contains("/dismiss"), "editors see the alert but cannot dismiss it");
    let alert = bounces::open_alerts(&app.ctx).await.unwrap().remove(0);
    let refused = editor.post(&format!("/admin/alerts/{}/dismiss", alert.id), &[("csrf", &page.csrf())]).await;
    assert_eq!(refused.status, 403);

    let admin = app.login_as_admin().await;
    let no_csrf = admin.post(&format!("/admin/alerts/{}/dismiss", alert.id), &[]).await;
    assert_eq!(no_csrf.status, 403, "the form needs its CSRF token");
    let done = admin.submit("/admin", &format!("/admin/alerts/{}/dismiss", alert.id), &[]).await;
    assert_eq!(done.status, 303);
    assert!(!admin.get("/admin").await.body.contains("is being refused by policy"));
    assert!(bounces::open_alerts(&app.ctx).await.unwrap().is_empty());
}

async fn soft(app: &TestApp, who: &str, ids: &HashMap<String, String>, dsn_id: &str) -> Vec<bounces::Outcome> {
    ingest(app, &dsn("soft-4.2.2.eml", who, &ids[who], dsn_id)).await
}

async fn three_soft_bounces_in_a_row_suspend_without_suppressing(db: Db) {
    let app = spawn(db, &[]).await;
    app.confirmed_subscribers("s", 2, "updates").await;
    let (flaky, recovers) = ("s0@example.org", "s1@example.org");
    // Update 1: both soft-bounce. Update 2: only `flaky`; `recovers` gets it.
    // Update 3: both again.
    let (_, ids) = send_update(&app, "Soft 1").await;
    soft(&app, flaky, &ids, "soft-1").await;
    soft(&app, recovers, &ids, "soft-2").await;
    let (_, ids) = send_update(&app, "Soft 2").await;
    soft(&app, flaky, &ids, "soft-3").await;
    assert_eq!(app.status(flaky, "updates").await, "confirmed", "two in a row is not yet enough");
    let (_, ids) = send_update(&app, "Soft 3").await;
    let out = soft(&app, flaky, &ids, "soft-4").await;
    assert!(matches!(out[..], [bounces::Outcome::Applied { suspended: true, .. }]), "{out:?}");
    soft(&app, recovers, &ids, "soft-5").await;

    assert_eq!(app.status(flaky, "updates").await, "bounced");
    let ledger = app.ledger(flaky).await;
    let last = ledger.last().unwrap();
    assert_eq!(last["kind"], "bounced");
    assert!(last.to_string().contains("suspended after 3 consecutive soft bounces"), "{last}");
    assert!(!suppressed(&app, flaky).await, "a soft suspension is not a suppression");
    assert_eq!(app.status(recovers, "updates").await, "confirmed", "a delivery in between reset the count");

    // The next update does not go to the suspended subscriber.
    let before = app.smtp.messages_to(flaky).len();
    send_update(&app, "Soft 4").await;
    assert_eq!(app.smtp.messages_to(flaky).len(), before);
    assert!(app.smtp.messages_to(recovers).iter().any(|m| header(m, "Subject").as_deref() == Some("Soft 4")));

    // They may subscribe again: a confirmation is sent.
    assert_eq!(app.subscribe(flaky, "updates").await.status(), 200);
    app.drain_outbox().await;
    let mail = app.smtp.messages_to(flaky).pop().unwrap();
    assert!(!confirm_token(&mail).is_empty());
}

/// Confirms an existing subscriber on another list, straight in the store.
async fn confirm_on(app: &TestApp, email: &str, slug: &str) {
    let id = uuid::Uuid::parse_str(app.subscriber(email).await["id"].as_str().unwrap()).unwrap();
    let mut tx = app.ctx.store.write().await.unwrap();
    let list = tx.list_by_slug(slug).await.unwrap().expect("list");
    tx.set_subscription_status(id, list.id, tidings::domain::SubscriptionStatus::Confirmed, app.ctx.clock.now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn an_arf_complaint_suppresses_everywhere_and_a_later_subscribe_sends_nothing(db: Db) {
    let app = spawn(db, &[]).await;
    app.create_list("court-case", "Court case").await;
    app.confirmed_subscribers("c", 1, "updates").await;
    let who = "c0@example.org";
    confirm_on(&app, who, "court-case").await;
    let (_, ids) = send_update(&app, "ARF test").await;
    let arf = dsn("arf-complaint.eml", who, &ids[who], "arf-1").replace("{{to}}", "news@hospital.test");
    let out = ingest(&app, &arf).await;
    assert!(matches!(out[..], [bounces::Outcome::Applied { class: bounces::Class::Complaint, .. }]), "{out:?}");
    assert_eq!(app.status(who, "updates").await, "complained");
    assert_eq!(app.status(who, "court-case").await, "complained");
    assert!(suppressed(&app, who).await);
    assert_eq!(kinds(&app.ledger(who).await).iter().filter(|k| *k == "complained").count(), 2);

    let before = app.smtp.messages_to(who).len();
    assert_eq!(app.subscribe(who, "updates").await.status(), 200, "the answer does not change");
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to(who).len(), before, "no mail to a complainer");
}

async fn a_dsn_sent_to_the_verp_address_is_tied_to_its_delivery(db: Db) {
    let app = spawn(db, &[("TIDINGS_VERP_DOMAIN", "bounces.hospital.test")]).await;
    app.confirmed_subscribers("v", 2, "updates").await;
    let (update, _) = send_update(&app, "VERP test").await;
    let mail = app.smtp.messages_to("v1@example.org").pop().unwrap();
    assert!(mail.from.starts_with("tb-"), "sent with a VERP return path: {}", mail.from);
    // The DSN names only a forwarding address and quotes nothing of ours:
    // the return path it was delivered to is all there is.
    let raw = fixture("dsn/verp-5.1.1.eml").replace("{{verp}}", &mail.from).replace("{{dsn_id}}", "verp-1");
    let out = ingest(&app, &raw).await;
    assert!(matches!(out[..], [bounces::Outcome::Applied { class: bounces::Class::Hard, .. }]), "{out:?}");
    assert_eq!(app.status("v1@example.org", "updates").await, "bounced");
    assert_eq!(app.status("v0@example.org", "updates").await, "confirmed");
    assert!(suppressed(&app, "v1@example.org").await);
    let e = events(&app).await.remove(0);
    assert_eq!(e.update_id.map(|u| u.to_string()).as_deref(), Some(update.as_str()));
    assert_eq!(app.stats(&update).await["bounced"], 1);

    // A forged VERP address (wrong tag) ties to nothing.
    let mut forged = mail.from.clone().into_bytes();
    forged[10] = if forged[10] == b'a' { b'b' } else { b'a' };
    let forged = String::from_utf8(forged).unwrap();
    let raw = fixture("dsn/verp-5.1.1.eml").replace("{{verp}}", &forged).replace("{{dsn_id}}", "verp-2");
    let out = ingest(&app, &raw).await;
    assert!(matches!(out[..], [bounces::Outcome::Unmatched { .. }]), "{out:?}");
}

/// The bounce domain of the VERP tests: under the From domain (hospital.test).
const BOUNCE_DOMAIN: &str = "bounces.hospital.test";

/// The outbox row a transactional return path names, its tag checked.
fn outbox_of(app: &TestApp, return_path: &str) -> uuid::Uuid {
    match tidings::mail::verp::decode(&app.ctx.secret_key, return_path) {
        Some(tidings::mail::verp::Tagged::Mail { outbox }) => outbox,
        other => panic!("{return_path} is not a transactional VERP address of ours: {other:?}"),
    }
}

/// The verp-5.1.1 fixture delivered to `return_path`, naming `recipient` as
/// the failed address (a forwarding address there otherwise).
fn verp_dsn(return_path: &str, recipient: Option<&str>, dsn_id: &str) -> String {
    let raw = fixture("dsn/verp-5.1.1.eml").replace("{{verp}}", return_path).replace("{{dsn_id}}", dsn_id);
    match recipient {
        Some(r) => raw.replace("forwarded-somewhere@elsewhere.example", r),
        None => raw,
    }
}

async fn every_transactional_mail_goes_out_with_a_verp_return_path_at_the_bounce_domain(db: Db) {
    let app = spawn(db, &[("TIDINGS_VERP_DOMAIN", BOUNCE_DOMAIN)]).await;
    let ann = "ann@example.org";
    // A confirmation (double opt-in) mail.
    assert_eq!(app.subscribe(ann, "updates").await.status(), 200);
    app.drain_outbox().await;
    let confirmation = app.smtp.messages_to(ann).pop().expect("a confirmation mail");
    assert!(confirmation.from.starts_with("tt-") && confirmation.from.ends_with("@bounces.hospital.test"));
    assert_eq!(header(&confirmation, "From").unwrap(), "\"Save Our Hospital\" <news@hospital.test>");
    let first = outbox_of(&app, &confirmation.from);

    // A data-copy link, asked for on the preferences page once confirmed.
    let token = confirm_token(&confirmation);
    let confirmed = app.http.post(app.url(&format!("/confirm/{token}"))).send().await.unwrap();
    assert_eq!(confirmed.status(), 200);
    assert_eq!(app.status(ann, "updates").await, "confirmed");
    let id = uuid::Uuid::parse_str(app.subscriber(ann).await["id"].as_str().unwrap()).unwrap();
    let prefs = tidings::domain::SignedToken::preferences(id).encode(&app.ctx.secret_key);
    let res = app.post_form(&format!("/preferences/{prefs}"), &[("action", "data-copy")]).await;
    assert_eq!(res.status(), 200);
    app.drain_outbox().await;
    let link = app.smtp.messages_to(ann).pop().unwrap();
    assert!(crate::support::app::text_body(&link).contains("/data-copy/"), "the data-copy link mail");
    assert!(link.from.ends_with("@bounces.hospital.test"));
    let second = outbox_of(&app, &link.from);

    // A test copy of an update.
    let update = app.create_update("Draft", "Body", &["updates"]).await;
    let res = app
        .api(Method::POST, &format!("/updates/{update}/test"))
        .json(&json!({"emails": ["editor@example.org"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    app.drain_outbox().await;
    let test = app.smtp.messages_to("editor@example.org").pop().expect("a test copy");
    assert!(test.from.ends_with("@bounces.hospital.test"));
    let third = outbox_of(&app, &test.from);
    assert!(first != second && second != third, "each message names its own outbox row");
    // A bounce of the test copy is tied to it, but its address is no
    // subscriber's: recorded as unmatched, nobody changed.
    let out = ingest(&app, &verp_dsn(&test.from, Some(ann), "test-copy")).await;
    assert!(matches!(out[..], [bounces::Outcome::Unmatched { .. }]), "{out:?}");
    assert_eq!(app.status(ann, "updates").await, "confirmed");
    assert!(!suppressed(&app, ann).await);
}

async fn a_dsn_of_a_confirmation_mail_suppresses_that_address_and_nothing_else(db: Db) {
    let app = spawn(db, &[("TIDINGS_VERP_DOMAIN", BOUNCE_DOMAIN)]).await;
    app.confirmed_subscribers("c", 1, "updates").await;
    let (ann, bob) = ("ann@example.org", "bob@example.org");
    for who in [ann, bob] {
        assert_eq!(app.subscribe(who, "updates").await.status(), 200);
    }
    app.drain_outbox().await;
    let mail = app.smtp.messages_to(ann).pop().expect("ann's confirmation mail");
    outbox_of(&app, &mail.from);

    // Returned to the VERP address by a forwarding relay that names only
    // the address it forwarded to: the return path decides who it is about.
    let out = ingest(&app, &verp_dsn(&mail.from, None, "confirm-1")).await;
    let ann_id = app.subscriber(ann).await["id"].as_str().unwrap().to_owned();
    assert!(
        matches!(&out[..], [bounces::Outcome::Applied { class: bounces::Class::Hard, subscriber, .. }]
            if subscriber.to_string() == ann_id),
        "{out:?}"
    );
    assert_eq!(app.status(ann, "updates").await, "bounced");
    assert!(suppressed(&app, ann).await);
    let last = app.ledger(ann).await.pop().unwrap();
    assert_eq!(last["kind"], "bounced");
    assert!(
        last["detail"].as_str().unwrap().starts_with("hard bounce of a confirmation mail (via dsn, 5.1.1)"),
        "{last}"
    );
    let e = events(&app).await.remove(0);
    assert_eq!((e.outcome.as_str(), e.update_id), ("applied", None));
    assert_eq!(e.subscriber_id.map(|s| s.to_string()), Some(ann_id));

    // Nobody else changed.
    assert_eq!(app.status(bob, "updates").await, "pending");
    assert!(!suppressed(&app, bob).await);
    assert_eq!(app.status("c0@example.org", "updates").await, "confirmed");
    assert!(!suppressed(&app, "c0@example.org").await);
    assert!(!suppressed(&app, "forwarded-somewhere@elsewhere.example").await);

    // The same DSN again has no second effect; a later sign-up with the
    // dead address sends it nothing more.
    let ledger = app.ledger(ann).await.len();
    assert!(matches!(ingest(&app, &verp_dsn(&mail.from, None, "confirm-1")).await[..], [bounces::Outcome::Duplicate]));
    assert_eq!(app.ledger(ann).await.len(), ledger);
    let before = app.smtp.messages_to(ann).len();
    assert_eq!(app.subscribe(ann, "updates").await.status(), 200);
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to(ann).len(), before, "no confirmation mail to a hard-bounced address");
    assert_eq!(app.status(bob, "updates").await, "pending");
}

async fn a_forged_or_altered_transactional_tag_changes_nothing(db: Db) {
    let app = spawn(db, &[("TIDINGS_VERP_DOMAIN", BOUNCE_DOMAIN)]).await;
    let ann = "ann@example.org";
    assert_eq!(app.subscribe(ann, "updates").await.status(), 200);
    app.drain_outbox().await;
    let genuine = app.smtp.messages_to(ann).pop().unwrap().from;
    outbox_of(&app, &genuine);
    let (local, domain) = genuine.split_once('@').unwrap();
    let flip = |c: char| if c == 'a' { 'b' } else { 'a' };
    let mut altered_id = local.to_owned();
    altered_id.replace_range(3..4, &flip(local.as_bytes()[3] as char).to_string());
    let mut altered_tag = local.to_owned();
    let last = local.len() - 1;
    altered_tag.replace_range(last.., &flip(local.as_bytes()[last] as char).to_string());
    let forged = [
        format!("{altered_id}@{domain}"),
        format!("{altered_tag}@{domain}"),
        // Signed with another key.
        tidings::mail::verp::encode_mail(b"not the secret key", BOUNCE_DOMAIN, outbox_of(&app, &genuine)),
        // The other kind's prefix on the same bytes.
        genuine.replacen("tt-", "tb-", 1),
        // Properly signed, but naming no message Tidings sent.
        tidings::mail::verp::encode_mail(&app.ctx.secret_key, BOUNCE_DOMAIN, uuid::Uuid::now_v7()),
    ];
    for (i, address) in forged.iter().enumerate() {
        assert_ne!(address, &genuine);
        // Naming ann as the failed recipient: without a tie that is only
        // an address, so the report waits for an admin.
        let out = ingest(&app, &verp_dsn(address, Some(ann), &format!("forged-{i}"))).await;
        assert!(matches!(out[..], [bounces::Outcome::Review { .. }]), "{address}: {out:?}");
        assert_eq!(app.status(ann, "updates").await, "pending", "{address}");
        assert!(!suppressed(&app, ann).await, "{address}");
    }
    assert!(kinds(&app.ledger(ann).await).iter().all(|k| k == "requested"), "no ledger entry but the request");
    // The genuine one still works.
    let out = ingest(&app, &verp_dsn(&genuine, Some(ann), "genuine")).await;
    assert!(matches!(out[..], [bounces::Outcome::Applied { class: bounces::Class::Hard, .. }]), "{out:?}");
    assert!(suppressed(&app, ann).await);
}

async fn a_complaint_about_a_confirmation_mail_returned_to_its_verp_address_is_applied(db: Db) {
    let app = spawn(db, &[("TIDINGS_VERP_DOMAIN", BOUNCE_DOMAIN)]).await;
    let (ann, bob) = ("ann@example.org", "bob@example.org");
    for who in [ann, bob] {
        assert_eq!(app.subscribe(who, "updates").await.status(), 200);
    }
    app.drain_outbox().await;
    let mail = app.smtp.messages_to(bob).pop().expect("bob's confirmation mail");
    // The abuse desk forwards it to the envelope sender; the copy it quotes
    // carries a Message-ID that names no update copy.
    let arf = dsn("arf-complaint.eml", bob, &header(&mail, "Message-ID").unwrap(), "arf-confirm")
        .replace("{{to}}", &mail.from);
    let out = ingest(&app, &arf).await;
    assert!(matches!(out[..], [bounces::Outcome::Applied { class: bounces::Class::Complaint, .. }]), "{out:?}");
    assert_eq!(app.status(bob, "updates").await, "complained");
    assert!(suppressed(&app, bob).await);
    assert!(
        app.ledger(bob).await.pop().unwrap()["detail"]
            .as_str()
            .unwrap()
            .starts_with("spam complaint of a confirmation mail")
    );
    assert_eq!(app.status(ann, "updates").await, "pending");
    assert!(!suppressed(&app, ann).await);
}

async fn without_a_bounce_domain_transactional_mail_goes_from_the_from_address(db: Db) {
    let app = spawn(db, &[]).await;
    assert_eq!(app.subscribe("ann@example.org", "updates").await.status(), 200);
    app.drain_outbox().await;
    let mail = app.smtp.messages_to("ann@example.org").pop().expect("a confirmation mail");
    assert_eq!(mail.from, "news@hospital.test");
}

fn cli(app: &TestApp, stdin: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["bounces", "ingest", "--config"])
        .arg(dir.path().join("none.toml"))
        .env("TIDINGS_DATABASE_URL", &app.ctx.config.database_url)
        .env("TIDINGS_BASE_URL", app.ctx.config.base_url.as_str())
        .env("TIDINGS_SMTP_URL", app.smtp.url())
        .env("TIDINGS_LOG", "error")
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tidings");
    {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(stdin.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

async fn the_cli_ingests_a_dsn_from_stdin(db: Db) {
    let app = spawn(db, &[]).await;
    app.confirmed_subscribers("cli", 1, "updates").await;
    let (_, ids) = send_update(&app, "CLI test").await;
    let who = "cli0@example.org";
    let raw = dsn("hard-5.1.1.eml", who, &ids[who], "cli-1");
    let out = cli(&app, &raw);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("applied: hard"), "{stdout}");
    assert_eq!(app.status(who, "updates").await, "bounced");
    assert!(suppressed(&app, who).await);

    let again = cli(&app, &raw);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("already applied"), "the MTA may deliver it twice");

    let other = cli(&app, &fixture("dsn/not-a-report.eml"));
    assert!(other.status.success(), "an auto-reply is ignored, not an error");
    assert!(String::from_utf8_lossy(&other.stdout).contains("ignored: not a bounce"));

    let garbage = cli(&app, "\u{1}\u{2} this is not mail");
    assert!(!garbage.status.success());
    assert!(String::from_utf8_lossy(&garbage.stderr).contains("cannot read the report"), "{garbage:?}");
    assert_eq!(events(&app).await.len(), 1);
}

async fn mailbox_app(db: Db, url: &str) -> (TestApp, BounceMailboxWorker) {
    let app = spawn(db, &[("TIDINGS_BOUNCE_MAILBOX_URL", url)]).await;
    let worker = BounceMailboxWorker::new(app.ctx.clone()).unwrap().expect("a mailbox is configured");
    (app, worker)
}

async fn the_bounce_mailbox_is_polled_and_messages_are_deleted_only_after_they_are_applied(db: Db) {
    let pop3 = TestPop3::start("bounces", "mailbox-password");
    let (app, worker) = mailbox_app(db, &pop3.url()).await;
    app.confirmed_subscribers("p", 2, "updates").await;
    let (_, ids) = send_update(&app, "Mailbox test").await;
    pop3.deliver(dsn("hard-5.1.1.eml", "p0@example.org", &ids["p0@example.org"], "mb-1").as_bytes());
    pop3.deliver(dsn("soft-4.2.2.eml", "p1@example.org", &ids["p1@example.org"], "mb-2").as_bytes());
    pop3.deliver(fixture("dsn/not-a-report.eml").as_bytes());
    let (_, never_stop) = tokio::sync::watch::channel(false);

    // The connection breaks while the second message is being fetched: the
    // first was applied and marked, but POP3 deletes only at QUIT.
    pop3.drop_connection_on_retr(Some(2));
    assert!(worker.run_once(&never_stop).await.is_err());
    assert_eq!(pop3.messages().len(), 3, "nothing is deleted without QUIT");
    let log = pop3.log();
    let (retr, dele) =
        (log.iter().position(|l| l == "RETR 1").unwrap(), log.iter().position(|l| l == "DELE 1").unwrap());
    assert!(retr < dele && !log.iter().any(|l| l == "QUIT"), "{log:?}");
    assert_eq!(app.status("p0@example.org", "updates").await, "bounced", "message 1 was committed before DELE 1");

    pop3.drop_connection_on_retr(None);
    let step = worker.run_once(&never_stop).await.unwrap();
    assert_eq!((step.listed, step.duplicates, step.applied, step.ignored, step.deleted), (3, 1, 1, 1, 2), "{step:?}");
    assert_eq!(pop3.messages().len(), 1, "the reports deleted at QUIT; the mail that is not one left");
    assert_eq!(
        kinds(&app.ledger("p0@example.org").await).iter().filter(|k| *k == "bounced").count(),
        1,
        "applied once"
    );
    assert_eq!(events(&app).await.len(), 2);
    assert!(pop3.log().iter().any(|l| l == "PASS ***"));
}

async fn the_bounce_mailbox_can_be_read_over_tls(db: Db) {
    let pop3 = TestPop3::start_tls("bounces", "mailbox-password");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pop3.ca_pem.as_ref().unwrap()).unwrap();
    let ca_q: String = url::form_urlencoded::byte_serialize(ca.to_str().unwrap().as_bytes()).collect();
    let (app, worker) = mailbox_app(db, &format!("{}?ca_file={ca_q}", pop3.url())).await;
    app.confirmed_subscribers("t", 1, "updates").await;
    let (_, ids) = send_update(&app, "TLS mailbox").await;
    pop3.deliver(dsn("hard-5.1.1.eml", "t0@example.org", &ids["t0@example.org"], "tls-1").as_bytes());
    let (_, never_stop) = tokio::sync::watch::channel(false);
    let step = worker.run_once(&never_stop).await.unwrap();
    assert_eq!((step.applied, step.deleted), (1, 1));
    assert_eq!(app.status("t0@example.org", "updates").await, "bounced");

    // STLS: plain until upgraded, and the password only after the upgrade.
    let upgrading = TestPop3::start_starttls("bounces", "mailbox-password");
    let ca2 = dir.path().join("ca2.pem");
    std::fs::write(&ca2, upgrading.ca_pem.as_ref().unwrap()).unwrap();
    let ca2_q: String = url::form_urlencoded::byte_serialize(ca2.to_str().unwrap().as_bytes()).collect();
    let (app3, worker3) = mailbox_app(Db::Sqlite, &format!("{}&ca_file={ca2_q}", upgrading.url())).await;
    upgrading.deliver(b"From: x@example.org\r\nSubject: hello\r\n\r\nnot a report\r\n");
    let step = worker3.run_once(&never_stop).await.unwrap();
    assert_eq!((step.ignored, step.deleted), (1, 0));
    let log = upgrading.log();
    assert_eq!(log[..3], ["STLS", "USER bounces", "PASS ***"], "{log:?}");
    assert_eq!(upgrading.messages().len(), 1, "not a report: left for a person to read");
    drop(app3);

    // Without the CA the certificate is not trusted and nothing is read.
    let (app2, untrusting) = mailbox_app(Db::Sqlite, &pop3.url()).await;
    pop3.deliver(b"From: x@example.org\r\n\r\nhello\r\n");
    assert!(untrusting.run_once(&never_stop).await.is_err());
    assert_eq!(pop3.messages().len(), 1);
    drop(app2);
}

async fn the_bounce_mailbox_can_be_an_imap_folder(db: Db) {
    let imap = TestImap::start("bounces", "mailbox \"password\"");
    let url = imap.url().replace("mailbox \"password\"", "mailbox%20%22password%22");
    let (app, worker) = mailbox_app(db, &url).await;
    app.confirmed_subscribers("i", 2, "updates").await;
    let (_, ids) = send_update(&app, "IMAP mailbox").await;
    imap.deliver(dsn("hard-5.1.1.eml", "i0@example.org", &ids["i0@example.org"], "im-1").as_bytes());
    imap.deliver(dsn("soft-4.2.2.eml", "i1@example.org", &ids["i1@example.org"], "im-2").as_bytes());
    let (_, never_stop) = tokio::sync::watch::channel(false);

    // The connection breaks while the second body is being fetched: the
    // first was applied and flagged \Deleted, but nothing was expunged.
    imap.drop_connection_on_fetch(Some(2));
    assert!(worker.run_once(&never_stop).await.is_err());
    assert_eq!(imap.messages(), [(1, true), (2, false)]);
    assert_eq!(app.status("i0@example.org", "updates").await, "bounced");

    imap.drop_connection_on_fetch(None);
    let step = worker.run_once(&never_stop).await.unwrap();
    assert_eq!((step.listed, step.applied, step.duplicates, step.deleted), (1, 1, 0, 1), "{step:?}");
    assert!(imap.messages().is_empty(), "both expunged");
    assert_eq!(events(&app).await.len(), 2);
    assert_eq!(kinds(&app.ledger("i0@example.org").await).iter().filter(|k| *k == "bounced").count(), 1);
    let log = imap.log();
    assert!(log.contains(&"LOGIN ***".to_owned()) && log.contains(&"UID FETCH 2 (BODY.PEEK[])".to_owned()), "{log:?}");
    assert_eq!(log.iter().filter(|l| *l == "EXPUNGE").count(), 1, "only the session that finished expunged");
}

async fn the_admin_page_lists_reports_by_kind(db: Db) {
    let app = spawn(db, &[]).await;
    app.confirmed_subscribers("a", 2, "updates").await;
    let (_, ids) = send_update(&app, "Admin page test").await;
    let body = json!([
        {"type": "bounce", "email": "a0@example.org", "message_id": ids["a0@example.org"], "status": "5.1.1",
         "diagnostic": "smtp; 550 5.1.1 <a0@example.org> no such user", "event_id": "e1"},
        {"type": "complaint", "email": "a1@example.org", "event_id": "e2"},
        {"type": "bounce", "email": "stranger@example.net", "status": "5.1.1", "event_id": "e3"}
    ]);
    assert_eq!(webhook(&app, "generic", &body.to_string()).await.0, 200);
    let editor = app.login_as_editor().await;
    let all = editor.get("/admin/bounces").await;
    assert_eq!(all.status, 200);
    for text in ["a0@example.org", "a1@example.org", "Admin page test", "unknown address at example.net", "5.1.1"] {
        assert!(all.body.contains(&html_escaped(text)), "{text}: {}", all.body);
    }
    assert!(!all.body.contains("stranger@"), "unmatched addresses are not kept");
    assert!(all.body.contains(&html_escaped("<<recipient>> no such user")), "diagnostics lose the address");
    let complaints = editor.get("/admin/bounces?kind=complaint").await;
    assert!(complaints.body.contains("a1@example.org") && !complaints.body.contains("a0@example.org"));
    let unmatched = editor.get("/admin/bounces?kind=unmatched").await;
    assert!(unmatched.body.contains("example.net") && !unmatched.body.contains("a1@example.org"));
    assert_eq!(editor.get("/admin/bounces?kind=nonsense").await.status, 422);
}

/// A supporter's reply, as it reaches a bounce mailbox that is also the
/// From address.
const SUPPORTER_REPLY: &[u8] = b"From: Pat Backer <pat@example.org>\r\nTo: news@hospital.test\r\n\
Subject: Re: Mailbox test\r\nMessage-ID: <reply-1@example.org>\r\n\r\n\
Thank you! Please take me off the list, and well done on the hearing.\r\n";

async fn mail_that_is_not_a_report_stays_in_the_pop3_mailbox_and_is_read_once(db: Db) {
    let pop3 = TestPop3::start("bounces", "mailbox-password");
    let (app, worker) = mailbox_app(db, &pop3.url()).await;
    app.confirmed_subscribers("q", 2, "updates").await;
    let (_, ids) = send_update(&app, "Mailbox test").await;
    pop3.deliver(SUPPORTER_REPLY);
    pop3.deliver(dsn("hard-5.1.1.eml", "q0@example.org", &ids["q0@example.org"], "keep-1").as_bytes());
    let (_, never_stop) = tokio::sync::watch::channel(false);

    let step = worker.run_once(&never_stop).await.unwrap();
    assert_eq!((step.listed, step.applied, step.ignored, step.deleted), (2, 1, 1, 1), "{step:?}");
    assert_eq!(pop3.messages(), [SUPPORTER_REPLY.to_vec()], "the reply survives the poll; the report is gone");
    assert_eq!(app.status("q0@example.org", "updates").await, "bounced", "the report was acted on");
    assert!(!pop3.log().iter().any(|l| l == "DELE 1"), "the reply was never marked");

    // Next polls pass over the reply without fetching it again, and a new
    // report behind it is still acted on.
    pop3.deliver(dsn("hard-5.1.1.eml", "q1@example.org", &ids["q1@example.org"], "keep-2").as_bytes());
    let step = worker.run_once(&never_stop).await.unwrap();
    assert_eq!((step.listed, step.left_before, step.applied, step.ignored, step.deleted), (2, 1, 1, 0, 1), "{step:?}");
    assert_eq!(app.status("q1@example.org", "updates").await, "bounced");
    let step = worker.run_once(&never_stop).await.unwrap();
    assert_eq!((step.listed, step.left_before, step.deleted), (1, 1, 0), "{step:?}");
    let log = pop3.log();
    assert_eq!(log.iter().filter(|l| *l == "RETR 1").count(), 1, "the reply was read once: {log:?}");
    assert_eq!(pop3.messages(), [SUPPORTER_REPLY.to_vec()]);
}

async fn mail_that_is_not_a_report_stays_in_the_imap_folder_and_is_read_once(db: Db) {
    let imap = TestImap::start("bounces", "mailbox-password");
    let (app, worker) = mailbox_app(db, &imap.url()).await;
    app.confirmed_subscribers("m", 1, "updates").await;
    let (_, ids) = send_update(&app, "Mailbox test").await;
    imap.deliver(SUPPORTER_REPLY);
    imap.deliver(dsn("hard-5.1.1.eml", "m0@example.org", &ids["m0@example.org"], "imap-keep-1").as_bytes());
    let (_, never_stop) = tokio::sync::watch::channel(false);

    let step = worker.run_once(&never_stop).await.unwrap();
    assert_eq!((step.listed, step.applied, step.ignored, step.deleted), (2, 1, 1, 1), "{step:?}");
    assert_eq!(imap.messages(), [(1, false)], "the reply stays, not flagged \\Deleted; the report is expunged");
    assert_eq!(app.status("m0@example.org", "updates").await, "bounced");
    let step = worker.run_once(&never_stop).await.unwrap();
    assert_eq!((step.listed, step.left_before, step.ignored, step.deleted), (1, 1, 0, 0), "{step:?}");
    let log = imap.log();
    assert_eq!(log.iter().filter(|l| *l == "UID FETCH 1 (BODY.PEEK[])").count(), 1, "read once: {log:?}");
    assert!(!log.iter().any(|l| l.starts_with("UID STORE 1 ")), "{log:?}");
    assert_eq!(imap.messages(), [(1, false)]);
}
