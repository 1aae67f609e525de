//! Checklist item 18: a confirmed import or organiser add records the kind
//! of basis (consented elsewhere with source and date / backer opted in /
//! soft opt-in) beside its free text. UK GDPR Art 6, 7(1); PECR reg 22(3).

use crate::both_backends;
use crate::imports::{Cli, multipart, run_imports, text, upload};
use crate::support::app::{Db, TestApp};
use reqwest::Method;
use serde_json::{Value, json};

both_backends!(
    the_kind_of_basis_is_recorded_beside_its_text_for_imports_and_organiser_adds,
    the_admin_upload_form_requires_a_kind_of_basis,
    the_cli_records_the_kind_of_basis_and_unspecified_without_one,
);

fn imported_kinds(ledger: &[Value]) -> Vec<(String, String, String)> {
    ledger
        .iter()
        .filter(|e| e["kind"] == "imported" || (e["kind"] == "confirmed" && e["actor"] != "supporter"))
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["detail"].as_str().unwrap_or("").to_owned(),
                e["basis_kind"].as_str().unwrap_or("(none)").to_owned(),
            )
        })
        .collect()
}

async fn the_kind_of_basis_is_recorded_beside_its_text_for_imports_and_organiser_adds(db: Db) {
    let app = TestApp::spawn(db).await;
    let add = |email: &'static str, kind: Option<&'static str>| {
        let mut body = json!({"email": email, "lists": ["updates"], "status": "confirmed", "basis": "Kickstarter backers who ticked 'updates', March 2026"});
        if let Some(k) = kind {
            body["basis_kind"] = json!(k);
        }
        app.api(Method::POST, "/subscribers").json(&body).send()
    };
    assert_eq!(add("backer@example.org", Some("backer_opted_in")).await.unwrap().status(), 201);
    assert_eq!(add("old-script@example.org", None).await.unwrap().status(), 201, "scripts without it still work");
    let res = add("typo@example.org", Some("partners")).await.unwrap();
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert!(body["error"]["fields"]["basis_kind"].is_string(), "{body}");

    let (status, body) = upload(
        &app,
        &[
            ("list", "updates"),
            ("basis", "paper forms, stall at the 2026 summer fair"),
            ("basis_kind", "consented_elsewhere"),
        ],
        b"email\nfair@example.org\n",
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = upload(
        &app,
        &[("list", "updates"), ("basis", "members' list"), ("basis_kind", "soft_opt_in")],
        b"email\nmember@example.org\n",
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let (status, body) =
        upload(&app, &[("list", "updates"), ("basis", "x"), ("basis_kind", "bogus")], b"email\nx@example.org\n").await;
    assert_eq!(status, 422, "{body}");
    run_imports(&app).await;

    let backer = app.ledger("backer@example.org").await;
    assert_eq!(
        imported_kinds(&backer),
        [("imported".into(), "Kickstarter backers who ticked 'updates', March 2026".into(), "backer_opted_in".into())]
    );
    assert_eq!(imported_kinds(&app.ledger("old-script@example.org").await)[0].2, "unspecified");
    assert_eq!(
        imported_kinds(&app.ledger("fair@example.org").await),
        [("imported".into(), "paper forms, stall at the 2026 summer fair".into(), "consented_elsewhere".into())]
    );
    assert_eq!(imported_kinds(&app.ledger("member@example.org").await)[0].2, "soft_opt_in");
    // A supporter's own entries have no basis kind.
    assert_eq!(app.subscribe("self@example.org", "updates").await.status(), 200);
    assert!(app.ledger("self@example.org").await[0]["basis_kind"].is_null());
}

async fn the_admin_upload_form_requires_a_kind_of_basis(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as_admin().await;
    let page = admin.get("/admin/imports").await;
    for kind in ["consented_elsewhere", "backer_opted_in", "soft_opt_in"] {
        assert!(page.body.contains(&format!("name=\"basis_kind\" value=\"{kind}\"")), "{kind}");
    }
    let csrf = page.csrf();
    let cookie = format!("tidings_session={}", admin.cookie("tidings_session").unwrap());
    let post = |kind: Option<&'static str>| {
        let mut parts: Vec<(&str, Option<&str>, &[u8])> = vec![
            ("csrf", None, csrf.as_bytes()),
            ("list", None, b"updates"),
            ("status", None, b"confirmed"),
            ("basis", None, b"signed the petition and ticked 'keep me informed', May 2026"),
        ];
        if let Some(k) = kind {
            parts.push(("basis_kind", None, k.as_bytes()));
        }
        parts.push(("file", Some("people.csv"), b"email\nann@example.org\n"));
        let (content_type, body) = multipart(&parts);
        app.http
            .post(app.url("/admin/imports"))
            .header("content-type", content_type)
            .header("cookie", cookie.clone())
            .body(body)
            .send()
    };
    for missing in [None, Some("unspecified")] {
        let res = post(missing).await.unwrap();
        assert_eq!(res.status(), 422, "{missing:?}");
        assert!(res.text().await.unwrap().contains("choose the kind of basis"));
    }
    assert!(app.api_get("/imports").await["imports"].as_array().unwrap().is_empty(), "nothing was queued");
    let res = post(Some("consented_elsewhere")).await.unwrap();
    assert_eq!(res.status(), 303);
    run_imports(&app).await;
    assert_eq!(imported_kinds(&app.ledger("ann@example.org").await)[0].2, "consented_elsewhere");
}

async fn the_cli_records_the_kind_of_basis_and_unspecified_without_one(db: Db) {
    let cli = Cli::new(&db).await;
    let one = cli.file("one.csv", b"email\none@example.org\n");
    let two = cli.file("two.csv", b"email\ntwo@example.org\n");
    let out =
        cli.run(&["import", &one, "--list", "updates", "--basis", "backers, 2026", "--basis-kind", "backer-opted-in"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli.run(&["import", &two, "--list", "updates", "--basis", "old script"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli.run(&["import", &two, "--list", "updates", "--basis", "x", "--basis-kind", "partners"]);
    assert!(!out.status.success());
    // The CLI shares the database: read the ledger through a server on it.
    let out = cli.run(&["export", "--list", "updates"]);
    assert!(out.status.success());
    let kinds = cli.basis_kinds().await;
    assert_eq!(
        kinds,
        [
            ("one@example.org".to_owned(), "backer_opted_in".to_owned()),
            ("two@example.org".to_owned(), "unspecified".to_owned())
        ]
    );
}
