//! The admin pages doing their jobs: lists, the dashboard, a subscriber's
//! ledger, API tokens, organiser accounts — and escaping whatever people
//! typed.

use super::AdminClient;
use crate::both_backends;
use crate::support::app::{Db, TestApp, html_escaped};
use reqwest::Method;
use serde_json::json;

both_backends!(
    an_admin_creates_edits_and_deletes_a_list,
    the_dashboard_counts_confirmed_subscribers_per_list,
    the_subscriber_page_shows_subscriptions_and_the_consent_ledger,
    html_typed_by_anyone_is_escaped_on_admin_pages,
    api_tokens_are_shown_once_and_revoking_one_locks_it_out,
    admins_add_organisers_with_a_role,
);

async fn an_admin_creates_edits_and_deletes_a_list(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as_admin().await;

    let bad = admin.submit("/admin/lists/new", "/admin/lists", &[("slug", "Bad Slug!"), ("name", "")]).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("value=\"Bad Slug!\""), "what was typed comes back");
    assert!(bad.body.contains("aria-invalid=\"true\""));

    let fields = [("slug", "court-case"), ("name", "Court case"), ("description", "Hearing dates"), ("public", "on")];
    let res = admin.submit("/admin/lists/new", "/admin/lists", &fields).await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), Some("/admin/lists?notice=created"));
    let page = admin.get("/admin/lists?notice=created").await;
    assert!(page.body.contains("The list has been created.") && page.body.contains("Court case"));
    let list = app.api_get("/lists/court-case").await;
    assert_eq!((list["public"].as_bool(), list["archive"].as_bool()), (Some(true), Some(false)));
    assert_eq!(list["description"], "Hearing dates");
    // The new list has its consent statement, like any list.
    let statements = app.api_get("/consent-statements").await;
    assert!(statements.to_string().contains("court-case"), "{statements}");

    let taken = admin.submit("/admin/lists/new", "/admin/lists", &fields).await;
    assert_eq!(taken.status, 422);
    assert!(taken.body.contains("already exists"));

    // The web address left empty is made from the name; the lists page
    // shows each public list's sign-up link to share.
    let named = [("slug", ""), ("name", "Zoë's hearing dates"), ("public", "on")];
    let res = admin.submit("/admin/lists/new", "/admin/lists", &named).await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(app.api_get("/lists/zoes-hearing-dates").await["name"], "Zoë's hearing dates");
    let page = admin.get("/admin/lists").await;
    assert!(page.body.contains("Web address") && !page.body.contains(">Slug<"), "{}", page.body);
    assert!(page.body.contains("/subscribe?list=zoes-hearing-dates"), "{}", page.body);
    let symbols = admin.submit("/admin/lists/new", "/admin/lists", &[("slug", ""), ("name", "!!!")]).await;
    assert_eq!(symbols.status, 422);
    assert!(symbols.body.contains("choose a web address"), "{}", symbols.body);

    let id = list["id"].as_str().unwrap();
    let edit = format!("/admin/lists/{id}");
    let form = admin.get(&edit).await;
    assert!(form.body.contains("value=\"Court case\"") && form.body.contains("readonly"));
    // Unticked boxes are absent from a form: public off, archive on.
    let res = admin.submit(&edit, &edit, &[("name", "The court case"), ("description", ""), ("archive", "on")]).await;
    assert_eq!(res.status, 303, "{}", res.body);
    let list = app.api_get("/lists/court-case").await;
    assert_eq!(list["name"], "The court case");
    assert_eq!((list["public"].as_bool(), list["archive"].as_bool()), (Some(false), Some(true)));
    let invalid = admin.submit(&edit, &edit, &[("name", "")]).await;
    assert_eq!(invalid.status, 422);

    let delete = format!("/admin/lists/{id}/delete");
    let confirm = admin.get(&delete).await;
    assert!(confirm.body.contains("Delete “The court case”?"));
    let res = admin.submit(&delete, &delete, &[]).await;
    assert_eq!(res.status, 303);
    assert_eq!(app.api(Method::GET, "/lists/court-case").send().await.unwrap().status(), 404);
    assert!(!admin.get("/admin/lists").await.body.contains("The court case"));
    assert_eq!(admin.get(&edit).await.status, 404);
    assert_eq!(admin.get(&format!("/admin/lists/{}", uuid::Uuid::now_v7())).await.status, 404);
}

/// Adds a subscriber through the API, confirmed with a basis or pending.
async fn add(app: &TestApp, email: &str, name: &str, lists: &[&str], status: &str) -> serde_json::Value {
    let res = app
        .api(Method::POST, "/subscribers")
        .json(&json!({"email": email, "name": name, "lists": lists, "status": status, "basis": "signed the paper petition"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.unwrap()
}

async fn the_dashboard_counts_confirmed_subscribers_per_list(db: Db) {
    let app = TestApp::spawn(db).await;
    app.create_list("hearings", "Hearing dates").await;
    for i in 0..3 {
        add(&app, &format!("c{i}@example.org"), "", &["updates"], "confirmed").await;
    }
    add(&app, "both@example.org", "", &["updates", "hearings"], "confirmed").await;
    add(&app, "waiting@example.org", "", &["hearings"], "pending").await;
    let editor = app.login_as_editor().await;
    let page = editor.get("/admin").await;
    assert_eq!(page.status, 200);
    let count = |slug: &str| {
        let marker = format!("href=\"/admin/subscribers?list={slug}&amp;status=confirmed\">");
        let start = page.body.find(&marker).unwrap_or_else(|| panic!("{slug} row in {}", page.body)) + marker.len();
        page.body[start..].chars().take_while(char::is_ascii_digit).collect::<String>()
    };
    assert_eq!(count("updates"), "4");
    assert_eq!(count("hearings"), "1");
}

async fn the_subscriber_page_shows_subscriptions_and_the_consent_ledger(db: Db) {
    let app = TestApp::spawn(db).await;
    app.subscribe("zoe@example.org", "updates").await;
    app.drain_outbox().await;
    let token = crate::support::app::confirm_token(&app.smtp.messages_to("zoe@example.org")[0]);
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    let id = app.subscriber("zoe@example.org").await["id"].as_str().unwrap().to_owned();

    let editor = app.login_as_editor().await;
    let page = editor.get(&format!("/admin/subscribers/{id}")).await;
    assert_eq!(page.status, 200);
    for expected in
        ["zoe@example.org", "status-confirmed", "requested", "confirmed", "version 1", "127.0.0.1", "supporter"]
    {
        assert!(page.body.contains(expected), "{expected} in {}", page.body);
    }
    // The exact wording agreed to is on the page.
    let ledger = app.ledger("zoe@example.org").await;
    let wording = ledger[0]["statement"]["text"].as_str().unwrap();
    assert!(page.body.contains(&html_escaped(wording)));
    assert_eq!(editor.get(&format!("/admin/subscribers/{}", uuid::Uuid::now_v7())).await.status, 404);
    assert_eq!(editor.get("/admin/subscribers/not-an-id").await.status, 404);
}

async fn html_typed_by_anyone_is_escaped_on_admin_pages(db: Db) {
    let app = TestApp::spawn(db).await;
    let list_name = "<script>alert('list')</script>";
    let person = "<img src=x onerror=alert(1)>";
    let token_name = "<b>bold token</b>";
    let user_agent = "<svg onload=alert(2)>";
    let source = "https://example.org/?\"><script>alert(3)</script>";
    app.create_list("xss", list_name).await;
    let res = app
        .http
        .post(app.url("/subscribe"))
        .header("user-agent", user_agent)
        .form(&[("email", "x@example.org"), ("name", person), ("lists", "xss"), ("consent", "xss"), ("source", source)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = app.subscriber("x@example.org").await["id"].as_str().unwrap().to_owned();

    let admin = app.login_as_admin().await;
    let res = admin.submit("/admin/tokens", "/admin/tokens", &[("name", token_name)]).await;
    assert_eq!(res.status, 201);
    let pages = [
        ("/admin".to_owned(), vec![list_name]),
        ("/admin/lists".to_owned(), vec![list_name]),
        ("/admin/subscribers?q=x%40example".to_owned(), vec![person]),
        (format!("/admin/subscribers/{id}"), vec![person, user_agent, source, list_name]),
        ("/admin/tokens".to_owned(), vec![token_name]),
    ];
    for (path, raws) in pages {
        let page = admin.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        for raw in raws {
            assert!(!page.body.contains(raw), "{raw} unescaped on {path}");
            assert!(page.body.contains(&html_escaped(raw)), "{raw} shown escaped on {path}: {}", page.body);
        }
    }
    // Every admin page forbids inline script through CSP.
    let page = admin.get("/admin").await;
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"));
}

async fn api_tokens_are_shown_once_and_revoking_one_locks_it_out(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as_admin().await;
    let res = admin.submit("/admin/tokens", "/admin/tokens", &[("name", "website form")]).await;
    assert_eq!(res.status, 201, "{}", res.body);
    let marker = "id=\"new-token\" value=\"";
    let start = res.body.find(marker).expect("the new token") + marker.len();
    let token: String = res.body[start..].chars().take_while(|c| *c != '"').collect();
    assert!(token.starts_with("tdg_"));
    let with_token = |t: &str| app.http.get(app.url("/api/v1/lists")).bearer_auth(t.to_owned()).send();
    assert_eq!(with_token(&token).await.unwrap().status(), 200);

    let list = admin.get("/admin/tokens").await;
    assert!(list.body.contains("website form") && list.body.contains("active"));
    assert!(!list.body.contains(&token), "shown once only");

    let empty = admin.submit("/admin/tokens", "/admin/tokens", &[("name", "  ")]).await;
    assert_eq!(empty.status, 422);

    let id = {
        let mut tx = app.ctx.store.read().await.unwrap();
        tx.api_tokens().await.unwrap().into_iter().find(|t| t.name == "website form").unwrap().id
    };
    let revoke = format!("/admin/tokens/{id}/revoke");
    let res = admin.submit("/admin/tokens", &revoke, &[]).await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), Some("/admin/tokens?notice=revoked"));
    assert_eq!(with_token(&token).await.unwrap().status(), 401);
    assert!(admin.get("/admin/tokens?notice=revoked").await.body.contains("revoked"));
    assert_eq!(admin.submit("/admin/tokens", &revoke, &[]).await.status, 404, "already revoked");
    // The other tokens still work.
    assert_eq!(with_token(&app.api_token).await.unwrap().status(), 200);
}

async fn admins_add_organisers_with_a_role(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as_admin().await;

    let res = admin
        .submit("/admin/users", "/admin/users", &[("email", "new.editor@hospital.test"), ("role", "editor")])
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
    let marker = "id=\"new-password\" value=\"";
    let start = res.body.find(marker).expect("a generated password") + marker.len();
    let password: String = res.body[start..].chars().take_while(|c| *c != '"').collect();
    assert!(password.len() >= 20);
    let editor = AdminClient::new(&app);
    assert_eq!(editor.log_in("new.editor@hospital.test", &password).await.status, 303);
    assert_eq!(editor.get("/admin/users").await.status, 403, "an editor");

    let typed = "a passphrase they chose";
    let fields = [("email", "second.admin@hospital.test"), ("role", "admin"), ("password", typed)];
    let res = admin.submit("/admin/users", "/admin/users", &fields).await;
    assert_eq!(res.status, 201);
    assert!(!res.body.contains("id=\"new-password\"") && !res.body.contains(typed));
    let second = AdminClient::new(&app);
    assert_eq!(second.log_in("second.admin@hospital.test", typed).await.status, 303);
    assert_eq!(second.get("/admin/users").await.status, 200, "an admin");

    for (fields, problem) in [
        (vec![("email", "second.admin@hospital.test"), ("role", "editor")], "already exists"),
        (vec![("email", "x@hospital.test"), ("role", "owner")], "a role is"),
        (vec![("email", "x@hospital.test"), ("role", "editor"), ("password", "short")], "at least 12"),
        (vec![("email", "not an address"), ("role", "editor")], "does not look like an email address"),
    ] {
        let res = admin.submit("/admin/users", "/admin/users", &fields).await;
        assert_eq!(res.status, 422, "{problem}");
        assert!(res.body.contains(problem), "{problem}: {}", res.body);
    }
    let page = admin.get("/admin/users").await;
    for email in ["admin@hospital.test", "new.editor@hospital.test", "second.admin@hospital.test"] {
        assert!(page.body.contains(email));
    }
    let mut tx = app.ctx.store.read().await.unwrap();
    assert_eq!(tx.user_count().await.unwrap(), 3);
}
