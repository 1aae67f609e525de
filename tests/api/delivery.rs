//! The delivery engine: updates sent to real SMTP, with refusals, bounces,
//! scheduling, pause/resume/cancel, unsubscribes mid-send, outages, two
//! workers at once and the per-recipient record.

use crate::both_backends;
use crate::support::app::{Db, TestApp, header, html_body, text_body};
use crate::support::smtp::TestSmtp;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

both_backends!(
    an_update_reaches_3000_backers_once_each_despite_refusals,
    every_copy_carries_list_headers_and_working_personal_links,
    a_hard_bounce_suppresses_the_address_everywhere,
    a_scheduled_update_is_not_sent_early_and_is_sent_when_due,
    pause_resume_and_cancel_control_a_send,
    someone_who_unsubscribes_mid_send_gets_nothing_more,
    an_smtp_outage_pauses_a_send_without_failing_anyone,
    two_workers_share_a_send_without_doubling,
    the_send_rate_is_shared_and_survives_a_restart,
    hourly_and_daily_caps_hold_a_send_back,
    a_verp_return_path_names_each_delivery,
    the_api_covers_drafts_previews_tests_and_the_per_recipient_record,
);

async fn send_now(app: &TestApp, id: &str) {
    let res = app.api(Method::POST, &format!("/updates/{id}/send")).send().await.unwrap();
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
}

async fn an_update_reaches_3000_backers_once_each_despite_refusals(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("b", 3000, "updates").await;
    app.smtp.script_rcpt("b17@example.org", &[550]);
    app.smtp.script_rcpt("b42@example.org", &[451, 451]);
    let id = app
        .create_update("We have filed at the High Court", "Dear {{name}},\n\nWe **filed** today.", &["updates"])
        .await;
    send_now(&app, &id).await;
    assert_eq!(app.stats(&id).await["total"], 3000, "the audience was taken when sending started");

    let step = app.drive_delivery(&id, 100).await;
    assert_eq!(step.retried, 2);
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "sent");
    let stats = app.stats(&id).await;
    assert_eq!(
        (stats["total"].as_i64(), stats["sent"].as_i64(), stats["failed"].as_i64(), stats["pending"].as_i64()),
        (Some(3000), Some(2999), Some(1), Some(0))
    );
    let counts = app.smtp.copies();
    assert_eq!(counts.len(), 2999);
    assert!(counts.values().all(|&n| n == 1), "nobody got two copies");
    assert!(!counts.contains_key("b17@example.org"));
    assert_eq!(counts.get("b42@example.org"), Some(&1));

    // The per-recipient record has the refusal's reply.
    let mut cursor: Option<String> = None;
    let mut seen = 0;
    let mut failed_reply = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/updates/{id}/deliveries?limit=500&cursor={c}"),
            None => format!("/updates/{id}/deliveries?limit=500"),
        };
        let page = app.api_get(&path).await;
        for d in page["deliveries"].as_array().unwrap() {
            seen += 1;
            if d["status"] == "failed" {
                failed_reply = d["smtp_reply"].as_str().map(str::to_owned);
                assert_eq!(d["email"], "b17@example.org");
            } else {
                assert!(d["message_id"].as_str().unwrap().starts_with('<'));
                assert!(d["sent_at"].is_string());
            }
        }
        match page["next"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 3000);
    assert!(failed_reply.unwrap().contains("550"), "the server's reply is kept");
}

async fn every_copy_carries_list_headers_and_working_personal_links(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_CONTACT_ADDRESS", "Save Our Hospital, 1 High Street, Leeds")]).await;
    app.create_list("hearings", "Hearing dates").await;
    app.confirmed_subscribers("h", 2, "hearings").await;
    {
        // h0 is on both lists: still one copy.
        let mut tx = app.ctx.store.write().await.unwrap();
        let s = tx.subscriber_by_email("h0@example.org").await.unwrap().unwrap();
        let list = tx.list_by_slug("updates").await.unwrap().unwrap();
        tx.set_subscription_status(s.id, list.id, tidings::domain::SubscriptionStatus::Confirmed, app.ctx.clock.now())
            .await
            .unwrap();
        tx.set_subscriber_name(s.id, "<b>Bold</b> & Co", app.ctx.clock.now()).await.unwrap();
        tx.commit().await.unwrap();
    }
    let id = app
        .create_update("Hearing moved", "Hello {{name}}, the hearing moved to **Tuesday**.", &["hearings", "updates"])
        .await;
    send_now(&app, &id).await;
    app.drive_delivery(&id, 10).await;
    let mails = app.smtp.messages_to("h0@example.org");
    assert_eq!(mails.len(), 1, "one copy however many lists");
    let mail = &mails[0];
    let subscriber = app.subscriber("h0@example.org").await;
    let sid = subscriber["id"].as_str().unwrap();
    assert_eq!(header(mail, "Message-ID").unwrap(), format!("<{id}.{sid}@tidings.test>"));
    assert_eq!(header(mail, "Precedence").as_deref(), Some("bulk"));
    assert_eq!(header(mail, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    let list_id = header(mail, "List-Id").unwrap();
    assert!(list_id.ends_with(".tidings.test>") && list_id.starts_with('"'), "{list_id}");
    let unsubscribe = header(mail, "List-Unsubscribe").unwrap();
    assert!(
        unsubscribe.starts_with("<http://tidings.test/unsubscribe/") && !unsubscribe.contains("mailto:"),
        "only the one-click link (no mailbox reads unsubscribe mail): {unsubscribe}"
    );
    assert!(header(mail, "Auto-Submitted").is_none());
    assert!(header(mail, "Content-Type").unwrap().starts_with("multipart/alternative"));

    let html = html_body(mail);
    assert!(
        html.contains("&#60;b&#62;Bold&#60;/b&#62; &#38; Co") || html.contains("&lt;b&gt;Bold&lt;/b&gt; &amp; Co"),
        "name escaped: {html}"
    );
    assert!(html.contains("<strong") && html.contains("Tuesday"));
    assert!(html.contains("1 High Street, Leeds"), "postal footer");
    let text = text_body(mail);
    assert!(text.contains("Hello <b>Bold</b> & Co,"), "{text}");
    assert!(text.contains("Unsubscribe: http://tidings.test/unsubscribe/"));
    assert!(text.contains("Your preferences: http://tidings.test/preferences/"));

    // The header's link works with one click.
    let link = unsubscribe.trim_start_matches('<').split('>').next().unwrap();
    let path = link.trim_start_matches("http://tidings.test");
    let res = app.post_form(path, &[("List-Unsubscribe", "One-Click")]).await;
    assert_eq!(res.status(), 200);
    let statuses: Vec<String> = app.subscriber("h0@example.org").await["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}={}", s["list"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| s.ends_with("=unsubscribed")).count(),
        2,
        "every list the copy was sent for: {statuses:?}"
    );
}

async fn a_hard_bounce_suppresses_the_address_everywhere(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("x", 3, "updates").await;
    app.smtp.script_rcpt("x1@example.org", &[551]);
    let id = app.create_update("News", "Body", &["updates"]).await;
    send_now(&app, &id).await;
    let step = app.drive_delivery(&id, 10).await;
    assert_eq!((step.sent, step.bounced), (2, 1));
    assert_eq!(app.stats(&id).await["bounced"], 1);
    assert_eq!(app.status("x1@example.org", "updates").await, "bounced");
    let ledger = app.ledger("x1@example.org").await;
    assert_eq!(ledger.last().unwrap()["kind"], "bounced");
    assert_eq!(ledger.last().unwrap()["actor"], "system");
    // Suppressed: the next update and a new subscribe send nothing.
    app.subscribe("x1@example.org", "updates").await;
    app.drain_outbox().await;
    let id2 = app.create_update("More news", "Body", &["updates"]).await;
    send_now(&app, &id2).await;
    app.drive_delivery(&id2, 10).await;
    assert_eq!(app.smtp.messages_to("x1@example.org").len(), 0);
    assert_eq!(app.stats(&id2).await["total"], 2);
}

async fn a_scheduled_update_is_not_sent_early_and_is_sent_when_due(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("s", 5, "updates").await;
    let id = app.create_update("Tomorrow's hearing", "Body", &["updates"]).await;
    let at = (app.ctx.clock.now() + chrono::Duration::hours(2)).to_rfc3339();
    let res = app.api(Method::POST, &format!("/updates/{id}/send")).json(&json!({ "at": at })).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let v: serde_json::Value = res.json().await.unwrap();
    assert_eq!(v["status"], "scheduled");
    assert!(v["send_at"].is_string());
    let step = app.delivery.run_once(&tokio::sync::watch::channel(false).1).await.unwrap();
    assert_eq!(step.started, 0);
    app.ctx.clock.advance(Duration::from_secs(3600));
    app.delivery.run_once(&tokio::sync::watch::channel(false).1).await.unwrap();
    assert!(app.smtp.messages().is_empty(), "not early");
    app.ctx.clock.advance(Duration::from_secs(3601));
    app.drive_delivery(&id, 10).await;
    assert_eq!(app.smtp.messages().len(), 5);
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "sent");
}

async fn pause_resume_and_cancel_control_a_send(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_SEND_CONCURRENCY", "1")]).await;
    app.confirmed_subscribers("p", 180, "updates").await;
    let id = app.create_update("News", "Body", &["updates"]).await;
    send_now(&app, &id).await;
    let no_stop = tokio::sync::watch::channel(false).1;
    assert_eq!(app.delivery.run_once(&no_stop).await.unwrap().sent, 50, "one batch");
    let res = app.api(Method::POST, &format!("/updates/{id}/pause")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.delivery.run_once(&no_stop).await.unwrap().sent, 0, "paused");
    assert_eq!(app.api(Method::POST, &format!("/updates/{id}/pause")).send().await.unwrap().status(), 409);
    app.api(Method::POST, &format!("/updates/{id}/resume")).send().await.unwrap();
    assert_eq!(app.delivery.run_once(&no_stop).await.unwrap().sent, 50);
    let res = app.api(Method::POST, &format!("/updates/{id}/cancel")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(app.delivery.run_once(&no_stop).await.unwrap().sent, 0);
    let stats = app.stats(&id).await;
    assert_eq!(
        (stats["sent"].as_i64(), stats["pending"].as_i64(), stats["skipped"].as_i64()),
        (Some(100), Some(0), Some(80))
    );
    assert_eq!(app.smtp.messages().len(), 100);
    assert_eq!(app.api(Method::POST, &format!("/updates/{id}/send")).send().await.unwrap().status(), 409);
}

async fn someone_who_unsubscribes_mid_send_gets_nothing_more(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_SEND_CONCURRENCY", "1")]).await;
    app.confirmed_subscribers("u", 120, "updates").await;
    let id = app.create_update("News", "Body", &["updates"]).await;
    send_now(&app, &id).await;
    let no_stop = tokio::sync::watch::channel(false).1;
    app.delivery.run_once(&no_stop).await.unwrap();
    let sent: Vec<String> = app.smtp.copies().into_keys().collect();
    let leaver = (0..120).map(|i| format!("u{i}@example.org")).find(|e| !sent.contains(e)).unwrap();
    let token = app.unsubscribe_token(&leaver, "updates").await;
    app.post_form(&format!("/unsubscribe/{token}"), &[("List-Unsubscribe", "One-Click")]).await;
    app.drive_delivery(&id, 20).await;
    assert!(app.smtp.messages_to(&leaver).is_empty());
    let stats = app.stats(&id).await;
    assert_eq!((stats["sent"].as_i64(), stats["skipped"].as_i64()), (Some(119), Some(1)));
}

async fn an_smtp_outage_pauses_a_send_without_failing_anyone(db: Db) {
    let relay = TestSmtp::start();
    let port = relay.port();
    let url = relay.url();
    let app = TestApp::spawn_with(db, &[("TIDINGS_SMTP_URL", url.as_str())]).await;
    app.confirmed_subscribers("o", 30, "updates").await;
    let id = app.create_update("News", "Body", &["updates"]).await;
    relay.stop();
    send_now(&app, &id).await;
    let no_stop = tokio::sync::watch::channel(false).1;
    for _ in 0..3 {
        let step = app.delivery.run_once(&no_stop).await.unwrap();
        assert!(step.relay_down);
        assert_eq!((step.sent, step.failed), (0, 0));
    }
    let stats = app.stats(&id).await;
    assert_eq!((stats["pending"].as_i64(), stats["failed"].as_i64()), (Some(30), Some(0)));
    let relay = TestSmtp::start_on(port);
    app.drive_delivery(&id, 10).await;
    assert_eq!(relay.copies().len(), 30);
    assert!(relay.copies().values().all(|&n| n == 1));
}

async fn two_workers_share_a_send_without_doubling(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_SEND_CONCURRENCY", "2")]).await;
    app.confirmed_subscribers("w", 1000, "updates").await;
    let id = app.create_update("News", "Body", &["updates"]).await;
    send_now(&app, &id).await;
    let second = tidings::workers::delivery::DeliveryWorker::new(app.ctx.clone(), app.worker_transport());
    let no_stop = tokio::sync::watch::channel(false).1;
    let (a, b) = (app.delivery.clone(), second);
    let (s1, s2) = (no_stop.clone(), no_stop.clone());
    let t1 = tokio::spawn(async move {
        let mut n = 0;
        for _ in 0..40 {
            n += a.run_once(&s1).await.unwrap().sent;
        }
        n
    });
    let t2 = tokio::spawn(async move {
        let mut n = 0;
        for _ in 0..40 {
            n += b.run_once(&s2).await.unwrap().sent;
        }
        n
    });
    let (n1, n2) = (t1.await.unwrap(), t2.await.unwrap());
    assert_eq!(n1 + n2, 1000);
    assert!(n1 > 0 && n2 > 0, "both workers took part: {n1} + {n2}");
    let counts = app.smtp.copies();
    assert_eq!(counts.len(), 1000);
    assert!(counts.values().all(|&n| n == 1));
}

async fn the_send_rate_is_shared_and_survives_a_restart(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_SEND_RATE", "20")]).await;
    app.confirmed_subscribers("r", 100, "updates").await;
    let id = app.create_update("News", "Body", &["updates"]).await;
    send_now(&app, &id).await;
    let no_stop = tokio::sync::watch::channel(false).1;
    // Only `advance` moves time here, so the bucket's arithmetic is exact.
    app.ctx.clock.freeze();
    let first = app.delivery.run_once(&no_stop).await.unwrap();
    assert_eq!(first.sent, 20, "a burst of one second's worth");
    // A restart: the first instance stops and its connections close, and a
    // new application is built on the same database (as `tidings` started
    // again is), sharing only the test's frozen clock. Only the database can
    // carry the bucket over, so it gets no fresh burst.
    app.stop();
    app.ctx.store.close().await;
    let again = tidings::app::App::build((*app.ctx.config).clone(), app.ctx.clock.clone()).await.unwrap();
    let restarted = again.delivery_worker();
    let step = restarted.run_once(&no_stop).await.unwrap();
    assert_eq!(step.sent, 0, "bucket state survives a restart");
    app.ctx.clock.advance(Duration::from_secs(1));
    let step = restarted.run_once(&no_stop).await.unwrap();
    assert_eq!(step.sent, 20, "refills at the configured rate");
    app.ctx.clock.advance(Duration::from_millis(500));
    assert_eq!(restarted.run_once(&no_stop).await.unwrap().sent, 10, "half a second, half the rate");
}

async fn the_api_covers_drafts_previews_tests_and_the_per_recipient_record(db: Db) {
    let app = TestApp::spawn(db).await;
    let bad = app
        .api(Method::POST, "/updates")
        .json(&json!({"subject": "a\r\nBcc: x@y.z", "lists": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let unknown =
        app.api(Method::POST, "/updates").json(&json!({"subject": "s", "lists": ["nope"]})).send().await.unwrap();
    assert_eq!(unknown.status(), 422);
    let id = app.create_update("Draft", "Hello {{name}} <script>x</script>", &["updates"]).await;
    let u = app.api_get(&format!("/updates/{id}")).await;
    for key in ["id", "subject", "body_markdown", "lists", "status", "send_at"] {
        assert!(u.get(key).is_some(), "update has {key}");
    }
    assert_eq!((u["status"].as_str(), u["lists"][0].as_str()), (Some("draft"), Some("updates")));
    let edited =
        app.api(Method::PATCH, &format!("/updates/{id}")).json(&json!({"subject": "Edited"})).send().await.unwrap();
    assert_eq!(edited.status(), 200);

    let preview = app.api_get(&format!("/updates/{id}/preview")).await;
    assert!(preview["html"].as_str().unwrap().contains("Hello Sam Supporter"));
    assert!(!preview["html"].as_str().unwrap().contains("<script>"));
    assert!(preview["text"].as_str().unwrap().contains("Unsubscribe: http://tidings.test/unsubscribe/"));

    let res = app
        .api(Method::POST, &format!("/updates/{id}/test"))
        .json(&json!({"emails": ["editor@example.org"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    app.drain_outbox().await;
    let test = app.smtp.messages_to("editor@example.org");
    assert_eq!(test.len(), 1);
    assert_eq!(header(&test[0], "Subject").as_deref(), Some("[TEST] Edited"));
    let bad_test =
        app.api(Method::POST, &format!("/updates/{id}/test")).json(&json!({"emails": ["nope"]})).send().await.unwrap();
    assert_eq!(bad_test.status(), 422);

    let stats = app.stats(&id).await;
    for key in ["total", "pending", "sent", "failed", "bounced"] {
        assert_eq!(stats[key], 0, "{key}");
    }
    assert_eq!(app.api(Method::GET, "/updates/not-a-uuid").send().await.unwrap().status(), 404);
    let bad_at =
        app.api(Method::POST, &format!("/updates/{id}/send")).json(&json!({"at": "tomorrow"})).send().await.unwrap();
    assert_eq!(bad_at.status(), 422);
    assert_eq!(app.api_get("/updates").await.as_array().unwrap().len(), 1);
    assert_eq!(app.api(Method::DELETE, &format!("/updates/{id}")).send().await.unwrap().status(), 204);
    assert_eq!(app.api(Method::GET, &format!("/updates/{id}")).send().await.unwrap().status(), 404);
}

async fn hourly_and_daily_caps_hold_a_send_back(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_SEND_HOURLY_CAP", "30"), ("TIDINGS_SEND_DAILY_CAP", "50")]).await;
    app.confirmed_subscribers("c", 80, "updates").await;
    let id = app.create_update("News", "Body", &["updates"]).await;
    send_now(&app, &id).await;
    app.ctx.clock.freeze();
    let no_stop = tokio::sync::watch::channel(false).1;
    let mut sent = 0;
    for _ in 0..5 {
        sent += app.delivery.run_once(&no_stop).await.unwrap().sent;
    }
    assert_eq!(sent, 30, "the hourly cap");
    // Counts are kept by the minute and a window starts at the minute
    // boundary before it (a cap errs on the side of sending less).
    app.ctx.clock.advance(Duration::from_secs(3600 + 60));
    for _ in 0..5 {
        sent += app.delivery.run_once(&no_stop).await.unwrap().sent;
    }
    assert_eq!(sent, 50, "the daily cap");
    app.ctx.clock.advance(Duration::from_secs(24 * 3600));
    app.drive_delivery(&id, 20).await;
    assert_eq!(app.stats(&id).await["sent"], 80);
}

async fn a_verp_return_path_names_each_delivery(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_VERP_DOMAIN", "bounces.hospital.test")]).await;
    app.confirmed_subscribers("v", 2, "updates").await;
    let id = app.create_update("News", "Body", &["updates"]).await;
    send_now(&app, &id).await;
    app.drive_delivery(&id, 5).await;
    let mail = app.smtp.messages_to("v1@example.org").pop().unwrap();
    assert!(mail.from.starts_with("tb-") && mail.from.ends_with("@bounces.hospital.test"), "{}", mail.from);
    let Some(tidings::mail::verp::Tagged::Copy { update, subscriber }) =
        tidings::mail::verp::decode(&app.ctx.secret_key, &mail.from)
    else {
        panic!("{} is not a VERP address of an update copy", mail.from)
    };
    assert_eq!(update.to_string(), id);
    assert_eq!(subscriber.to_string(), app.subscriber("v1@example.org").await["id"].as_str().unwrap());
    assert_eq!(
        header(&mail, "From").unwrap(),
        "\"Save Our Hospital\" <news@hospital.test>",
        "the visible From is unchanged"
    );
}
