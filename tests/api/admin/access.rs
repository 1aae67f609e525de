//! Who may use which admin route, enumerated from the route table the
//! router is built from (`tidings::web::admin::ROUTES`), so a new route is
//! covered the moment it exists.

use super::{AdminClient, concrete};
use crate::both_backends;
use crate::support::app::{Db, TestApp};
use tidings::services::accounts::Role;
use tidings::web::admin::{Access, ROUTES, Verb};

both_backends!(
    every_admin_route_refuses_an_anonymous_request,
    every_admin_post_refuses_a_missing_or_wrong_csrf_token,
    editors_are_refused_every_admin_only_route,
);

/// Fields that would change something on every POST route, were it to run.
const MUTATING_FIELDS: &[(&str, &str)] = &[
    ("slug", "intruder"),
    ("name", "intruder"),
    ("email", "intruder@example.org"),
    ("role", "admin"),
    ("password", "a long enough password"),
    ("password_confirm", "a long enough password"),
];

async fn nothing_changed(app: &TestApp) {
    let lists = app.api_get("/lists").await;
    assert!(lists.as_array().unwrap().iter().all(|l| l["slug"] != "intruder"), "{lists}");
    let mut tx = app.ctx.store.read().await.unwrap();
    let users = tx.users().await.unwrap();
    assert!(users.iter().all(|u| u.email != "intruder@example.org"), "{users:?}");
    let tokens = tx.api_tokens().await.unwrap();
    assert!(tokens.iter().all(|t| t.name != "intruder" && t.revoked_at.is_none()), "{tokens:?}");
}

async fn every_admin_route_refuses_an_anonymous_request(db: Db) {
    let app = TestApp::spawn(db).await;
    assert!(ROUTES.len() >= 20, "the table lists every admin route");
    assert!(ROUTES.iter().all(|r| r.path.starts_with("/admin")));
    let guarded: Vec<_> = ROUTES.iter().filter(|r| r.access != Access::Public).collect();
    let public: Vec<_> = ROUTES.iter().filter(|r| r.access == Access::Public).map(|r| r.path).collect();
    assert_eq!(public, ["/admin/login", "/admin/login", "/admin/setup/{token}", "/admin/setup/{token}"]);

    let anonymous = AdminClient::new(&app);
    // A genuine pre-login CSRF token, so that only the missing login can
    // be what refuses the POSTs below.
    let csrf = anonymous.get("/admin/login").await.csrf();
    for route in guarded {
        let path = concrete(route.path);
        match route.verb {
            Verb::Get => {
                let res = anonymous.get(&path).await;
                assert_eq!(res.status, 303, "GET {path}");
                let next: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
                assert_eq!(res.location(), Some(format!("/admin/login?next={next}").as_str()), "GET {path}");
            }
            Verb::Post => {
                let mut fields = vec![("csrf", csrf.as_str())];
                fields.extend_from_slice(MUTATING_FIELDS);
                let res = anonymous.post(&path, &fields).await;
                assert_eq!(res.status, 401, "POST {path}: {}", res.body);
                assert!(res.body.contains("Log in"), "POST {path}");
                // A made-up session cookie is no better than none.
                let forged = AdminClient::new(&app);
                forged.set_cookie("tidings_session", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
                assert_eq!(forged.post(&path, &fields).await.status, 401, "POST {path} with a forged session");
            }
        }
    }
    nothing_changed(&app).await;
}

async fn every_admin_post_refuses_a_missing_or_wrong_csrf_token(db: Db) {
    let app = TestApp::spawn(db).await;
    let admin = app.login_as_admin().await;
    // Another organiser's valid token is still the wrong token here.
    let other = AdminClient::new(&app);
    let password = app.add_organiser("other@hospital.test", Role::Admin).await;
    assert_eq!(other.log_in("other@hospital.test", &password).await.status, 303);
    let others_token = other.get("/admin").await.csrf();
    let own_token = admin.get("/admin").await.csrf();
    assert_ne!(own_token, others_token);

    let posts: Vec<_> = ROUTES.iter().filter(|r| r.verb == Verb::Post).collect();
    assert!(posts.len() >= 9);
    for route in posts {
        let path = concrete(route.path);
        // Public forms are used before login, so their token is bound to
        // the pre-login cookie: test them as a fresh visitor, whose wrong
        // token is another visitor's genuine one.
        let visitor = AdminClient::new(&app);
        let (client, wrong) = if route.access == Access::Public {
            visitor.get("/admin/login").await;
            (&visitor, AdminClient::new(&app).get("/admin/login").await.csrf())
        } else {
            (&admin, others_token.clone())
        };
        let res = client.post(&path, MUTATING_FIELDS).await;
        assert_eq!(res.status, 403, "POST {path} without a token: {}", res.body);
        assert!(res.body.contains("This form has expired"));
        for bad in [wrong.as_str(), "not-even-base64!", ""] {
            let mut fields = vec![("csrf", bad)];
            fields.extend_from_slice(MUTATING_FIELDS);
            assert_eq!(client.post(&path, &fields).await.status, 403, "POST {path} with token {bad:?}");
        }
    }
    // A browser that never got the pre-login cookie cannot log in, even
    // with a token that is valid for someone else's cookie.
    let visitor = AdminClient::new(&app);
    let token = visitor.get("/admin/login").await.csrf();
    let cookieless = AdminClient::new(&app);
    let res = cookieless.post("/admin/login", &[("csrf", &token), ("email", "a@b.test"), ("password", "x")]).await;
    assert_eq!(res.status, 403);

    // Still logged in (logout was refused), and nothing was created.
    assert_eq!(admin.get("/admin").await.status, 200);
    nothing_changed(&app).await;
    // The token in a header works as well as the form field.
    let res = admin.post_with_header("/admin/tokens", ("x-csrf-token", &own_token), &[("name", "from a script")]).await;
    assert_eq!(res.status, 201, "{}", res.body);
}

async fn editors_are_refused_every_admin_only_route(db: Db) {
    let app = TestApp::spawn(db).await;
    let editor = app.login_as_editor().await;
    let dashboard = editor.get("/admin").await;
    assert_eq!(dashboard.status, 200);
    assert!(!dashboard.body.contains("/admin/tokens") && !dashboard.body.contains("/admin/users"));
    let csrf = dashboard.csrf();
    let admin_only: Vec<_> = ROUTES.iter().filter(|r| r.access == Access::Admin).collect();
    assert!(admin_only.len() >= 11);
    for route in admin_only {
        let path = concrete(route.path);
        let res = match route.verb {
            Verb::Get => editor.get(&path).await,
            Verb::Post => {
                let mut fields = vec![("csrf", csrf.as_str())];
                fields.extend_from_slice(MUTATING_FIELDS);
                editor.post(&path, &fields).await
            }
        };
        assert_eq!(res.status, 403, "{} {path}: {}", route.verb.as_str(), res.body);
        assert!(res.body.contains("Admins only"));
    }
    // Even with the real id of a real list.
    let res = editor.post("/admin/lists/updates/delete", &[("csrf", &csrf)]).await;
    assert_eq!(res.status, 403);
    assert_eq!(app.api_get("/lists/updates").await["slug"], "updates");
    // What editors may do, they can.
    for path in ["/admin", "/admin/lists", "/admin/subscribers"] {
        assert_eq!(editor.get(path).await.status, 200, "GET {path}");
    }
    nothing_changed(&app).await;
}
