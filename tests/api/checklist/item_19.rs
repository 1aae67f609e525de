//! Checklist item 19: a re-permission (pending) import is marketing in the
//! ICO's view: it warns and needs an admin's explicit confirmation
//! (`--confirm-repermission` on the CLI). ICO (Honda, Flybe decisions).

use crate::both_backends;
use crate::imports::{Cli, multipart, run_imports, text};
use crate::support::app::{Db, TestApp};

both_backends!(
    a_pending_import_in_the_admin_ui_needs_the_repermission_confirmation,
    the_cli_refuses_a_pending_import_without_confirm_repermission,
);

async fn a_pending_import_in_the_admin_ui_needs_the_repermission_confirmation(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as_admin().await;
    let page = admin.get("/admin/imports").await;
    assert!(page.body.contains("itself direct marketing"), "the form warns before anyone uploads");
    assert!(page.body.contains("name=\"confirm_repermission\""));
    let csrf = page.csrf();
    let cookie = format!("tidings_session={}", admin.cookie("tidings_session").unwrap());
    let post = |confirm: bool| {
        let mut parts: Vec<(&str, Option<&str>, &[u8])> =
            vec![("csrf", None, csrf.as_bytes()), ("list", None, b"updates"), ("status", None, b"pending")];
        if confirm {
            parts.push(("confirm_repermission", None, b"yes"));
        }
        parts.push(("file", Some("lapsed.csv"), b"email\nlapsed@example.org\n"));
        let (content_type, body) = multipart(&parts);
        app.http
            .post(app.url("/admin/imports"))
            .header("content-type", content_type)
            .header("cookie", cookie.clone())
            .body(body)
            .send()
    };
    let res = post(false).await.unwrap();
    assert_eq!(res.status(), 422);
    let body = res.text().await.unwrap();
    assert!(body.contains("itself direct marketing"), "{body}");
    assert!(body.contains("value=\"pending\" checked"), "the form comes back as it was");
    assert!(app.api_get("/imports").await["imports"].as_array().unwrap().is_empty());
    run_imports(&app).await;
    assert_eq!(app.drain_outbox().await.sent, 0, "no confirmation mail went out");

    let res = post(true).await.unwrap();
    assert_eq!(res.status(), 303);
    run_imports(&app).await;
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to("lapsed@example.org").len(), 1);

    // Editors cannot import at all.
    let editor = app.login_as_editor().await;
    assert_eq!(editor.get("/admin/imports").await.status, 403);
}

async fn the_cli_refuses_a_pending_import_without_confirm_repermission(db: Db) {
    let cli = Cli::new(&db).await;
    let file = cli.file("lapsed.csv", b"email\nlapsed@example.org\n");
    for args in [
        vec!["import", file.as_str(), "--list", "updates", "--status", "pending"],
        vec!["import", file.as_str(), "--list", "updates"],
    ] {
        let out = cli.run(&args);
        assert!(!out.status.success(), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("--confirm-repermission") && err.contains("direct marketing"), "{err}");
    }
    let out = cli.run(&["export", "--list", "updates"]);
    assert!(!text(&out.stdout).contains("lapsed@example.org"), "nobody was added");
    let out = cli.run(&["import", &file, "--list", "updates", "--status", "pending", "--confirm-repermission"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli.run(&["export", "--list", "updates"]);
    assert!(text(&out.stdout).contains("lapsed@example.org,,updates,pending"), "{}", text(&out.stdout));
}
