//! Sender authentication beyond the checklist items: a scheduled send that
//! fails the checks when it is due is held (not sent, not silently dropped),
//! and `tidings check` lists the checks and prints the DKIM record to publish.

use crate::both_backends;
use crate::support::app::{Db, TestApp};
use crate::support::dns::{AuthRig, as_pairs, try_send};
use serde_json::json;

both_backends!(
    a_scheduled_send_that_fails_when_due_is_held_and_audited,
    tidings_check_lists_the_checks_and_the_dkim_record,
    the_dashboard_lists_the_failed_checks_before_you_send,
    the_admin_send_button_is_refused_with_the_reasons_unless_overridden,
);

async fn a_scheduled_send_that_fails_when_due_is_held_and_audited(db: Db) {
    let rig = AuthRig::new(1024);
    rig.publish_all();
    let app = TestApp::spawn_with(db, &as_pairs(&rig.settings(true))).await;
    app.confirmed_subscribers("s", 2, "updates").await;
    let id = app.create_update("Tomorrow", "Hello", &["updates"]).await;
    let at = app.ctx.clock.now() + chrono::Duration::hours(1);
    let (status, answer) = try_send(&app, &id, json!({"at": at.to_rfc3339()})).await;
    assert_eq!(status, 202, "every check passes when it is scheduled: {answer}");
    assert_eq!(answer["status"], "scheduled");

    // Before it is due, the SPF record goes.
    rig.dns.remove(&rig.spf_name());
    app.advance_clock_to(at + chrono::Duration::minutes(1));
    app.delivery_step().await;
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "draft", "held, back to draft");
    assert_eq!(app.smtp.message_count(), 0, "nothing was sent");
    let audit = app.api_get("/audit-log?action=sender_authentication.held").await;
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "sender_authentication.held")
        .cloned()
        .expect("the hold is audited");
    assert_eq!(entry["target"], format!("update:{id}"));
    assert!(entry["detail"].as_str().unwrap().contains("spf"), "{entry}");
}

async fn tidings_check_lists_the_checks_and_the_dkim_record(db: Db) {
    let rig = AuthRig::new(1024);
    rig.publish_all();
    rig.dns.remove(&rig.dmarc_name());
    let app = TestApp::spawn(db).await;
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .arg("check")
        .arg("--config")
        .arg(dir.path().join("none.toml"))
        .env("TIDINGS_DATABASE_URL", &app.ctx.config.database_url)
        .env("TIDINGS_SMTP_URL", app.smtp.url())
        .env("TIDINGS_FROM", "Save Our Hospital <news@hospital.test>")
        .env("TIDINGS_LOG", "error")
        .envs(rig.settings(true))
        .current_dir(dir.path())
        .output()
        .expect("run tidings");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("TIDINGS_SENDER_AUTH=require"), "{stdout}");
    let line = |code: &str| stdout.lines().find(|l| l.trim_start().starts_with(code)).unwrap_or("").to_owned();
    assert!(line("dkim_key").contains("pass"), "{stdout}");
    assert!(line("spf").contains("pass"), "{stdout}");
    assert!(line("dmarc").contains("fail"), "{stdout}");
    assert!(line("dkim_dns").contains("pass"), "{stdout}");
    let record =
        format!("publish this DKIM record: t2026._domainkey.hospital.test TXT \"v=DKIM1; k=rsa; p={}\"", rig.public);
    assert!(stdout.contains(&record), "{stdout}");
}

async fn the_dashboard_lists_the_failed_checks_before_you_send(db: Db) {
    let rig = AuthRig::new(1024);
    rig.publish_all();
    rig.dns.remove(&rig.spf_name());
    let app = TestApp::spawn_with(db, &as_pairs(&rig.settings(true))).await;
    let admin = app.login_as_admin().await;
    let page = admin.get("/admin").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Before you send"), "{}", page.body);
    assert!(page.body.contains("<strong>spf</strong>"), "the failed check is named");
    assert!(!page.body.contains("<strong>dmarc</strong>"), "passing checks are not listed");

    rig.dns.txt(&rig.spf_name(), "v=spf1 -all");
    let page = admin.get("/admin").await;
    assert!(!page.body.contains("Before you send"), "nothing to show once every check passes");
}

async fn the_admin_send_button_is_refused_with_the_reasons_unless_overridden(db: Db) {
    let rig = AuthRig::new(1024);
    rig.publish_all();
    let app = TestApp::spawn_with(db, &as_pairs(&rig.settings(false))).await;
    app.confirmed_subscribers("s", 1, "updates").await;
    let id = app.create_update("News", "Hello", &["updates"]).await;
    let admin = app.login_as_admin().await;
    let page = format!("/admin/updates/{id}");
    let action = format!("/admin/updates/{id}/send");
    let refused = admin.submit(&page, &action, &[("when", "now")]).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("dkim_key"), "{}", refused.body);
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "draft");
    // Overridden: the review first, then its own form sends.
    let checked = admin.submit(&page, &action, &[("when", "now"), ("override_authentication", "on")]).await;
    assert_eq!(checked.status, 200, "{}", checked.body);
    assert!(checked.body.contains("Sent even if sender authentication fails"), "{}", checked.body);
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "draft", "a review sends nothing");
    let csrf = checked.csrf();
    let review = checked.body.split("name=\"review\" value=\"").nth(1).unwrap().split('"').next().unwrap();
    let sent = admin
        .post(
            &format!("{action}/confirm"),
            &[("csrf", &csrf), ("when", "now"), ("override_authentication", "on"), ("review", review)],
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "sending");
    let audit = app.api_get("/audit-log?action=sender_authentication.override").await;
    let entries = audit["entries"].as_array().unwrap();
    assert!(entries.iter().any(|e| e["actor"].as_str().unwrap_or("").starts_with("organiser:")), "{audit}");
}
