//! The organiser writes, previews, tests and sends an update in the admin
//! UI; an editor may do all but send.

use crate::both_backends;
use crate::support::app::{Db, TestApp, header};

both_backends!(
    an_admin_writes_previews_tests_sends_and_watches_an_update,
    a_send_time_is_read_in_the_groups_time_zone,
    an_editor_drafts_and_tests_but_cannot_send,
);

/// Drafts an update through the form; returns its id.
async fn draft(client: &crate::admin::AdminClient, subject: &str) -> String {
    let res = client
        .submit(
            "/admin/updates/new",
            "/admin/updates",
            &[
                ("subject", subject),
                ("body_markdown", "Dear {{name}},\n\nThe hearing **moved**."),
                ("lists", "updates"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let location = res.location().unwrap().to_owned();
    location.trim_start_matches("/admin/updates/").split('?').next().unwrap().to_owned()
}

async fn an_admin_writes_previews_tests_sends_and_watches_an_update(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("a", 12, "updates").await;
    let admin = app.login_as_admin().await;
    // A bad form comes back with the problems and what was typed.
    let bad = admin.submit("/admin/updates/new", "/admin/updates", &[("subject", ""), ("body_markdown", "kept")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("a subject is required") && bad.body.contains("kept"));

    let id = draft(&admin, "The hearing <moved>").await;
    let page = admin.get(&format!("/admin/updates/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("draft") && page.body.contains("The hearing &#60;moved&#62;"));
    assert!(page.body.contains("Dear Sam Supporter,"), "the plain-text preview: {}", page.body);

    let preview = admin.get(&format!("/admin/updates/{id}/preview")).await;
    assert_eq!(preview.status, 200);
    assert!(preview.body.contains("<strong") && preview.body.contains("Sam Supporter"));
    let csp = preview.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("sandbox") && !csp.contains("script"), "{csp}");

    let tested = admin
        .submit(
            &format!("/admin/updates/{id}"),
            &format!("/admin/updates/{id}/test"),
            &[("emails", "me@example.org, you@example.org")],
        )
        .await;
    assert_eq!(tested.status, 303);
    app.drain_outbox().await;
    assert_eq!(
        header(&app.smtp.messages_to("me@example.org")[0], "Subject").as_deref(),
        Some("[TEST] The hearing <moved>")
    );
    assert_eq!(app.smtp.messages_to("you@example.org").len(), 1);

    let sent =
        admin.submit(&format!("/admin/updates/{id}"), &format!("/admin/updates/{id}/send"), &[("when", "now")]).await;
    assert_eq!(sent.status, 303);
    let page = admin.get(&format!("/admin/updates/{id}")).await;
    assert!(page.body.contains("http-equiv=\"refresh\""), "live progress while sending");
    assert!(page.body.contains("<td class=\"num\" id=\"stat-total\">12</td>"));
    app.drive_delivery(&id, 10).await;
    let page = admin.get(&format!("/admin/updates/{id}")).await;
    assert!(page.body.contains("<strong id=\"status\">sent</strong>"));
    assert!(page.body.contains("<td class=\"num\" id=\"stat-sent\">12</td>"));
    assert!(!page.body.contains("http-equiv=\"refresh\""));
    let dashboard = admin.get("/admin").await;
    assert!(dashboard.body.contains("12 of 12 sent"), "{}", dashboard.body);

    // Pause/resume/cancel only make sense while sending: a sent update refuses.
    let late = admin.submit(&format!("/admin/updates/{id}"), &format!("/admin/updates/{id}/cancel"), &[]).await;
    assert_eq!(late.status, 409);
}

async fn a_send_time_is_read_in_the_groups_time_zone(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_TIMEZONE", "America/New_York")]).await;
    let admin = app.login_as_admin().await;
    let id = draft(&admin, "Winter hearing").await;
    let res = admin
        .submit(
            &format!("/admin/updates/{id}"),
            &format!("/admin/updates/{id}/send"),
            &[("when", "later"), ("at", "2030-01-15T09:00")],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    let u = app.api_get(&format!("/updates/{id}")).await;
    assert_eq!(u["status"], "scheduled");
    assert_eq!(u["send_at"], "2030-01-15T14:00:00Z", "09:00 in New York is 14:00 UTC in January");
    let page = admin.get(&format!("/admin/updates/{id}")).await;
    assert!(page.body.contains("2030-01-15 09:00 EST"), "shown in the group's zone");
    let past = admin
        .submit(
            &format!("/admin/updates/{id}"),
            &format!("/admin/updates/{id}/send"),
            &[("when", "later"), ("at", "2001-01-01T09:00")],
        )
        .await;
    assert_eq!(past.status, 422);
}

async fn an_editor_drafts_and_tests_but_cannot_send(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("e", 3, "updates").await;
    let editor = app.login_as_editor().await;
    let id = draft(&editor, "Editor's draft").await;
    let page = editor.get(&format!("/admin/updates/{id}")).await;
    assert!(!page.body.contains("Send to the lists"), "no send button for editors");
    let tested = editor
        .submit(&format!("/admin/updates/{id}"), &format!("/admin/updates/{id}/test"), &[("emails", "ed@example.org")])
        .await;
    assert_eq!(tested.status, 303);
    let refused =
        editor.submit(&format!("/admin/updates/{id}"), &format!("/admin/updates/{id}/send"), &[("when", "now")]).await;
    assert_eq!(refused.status, 403);
    assert_eq!(app.api_get(&format!("/updates/{id}")).await["status"], "draft");
    app.drive_delivery(&id, 3).await;
    assert!(app.smtp.messages_to("e0@example.org").is_empty());
}
