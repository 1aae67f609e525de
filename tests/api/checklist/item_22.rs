//! Checklist item 22 — organiser access is protected: logins are
//! throttled, every admin form needs its CSRF token, and the session cookie
//! is HttpOnly and SameSite (UK GDPR Art 32, security of processing).

use crate::admin::AdminClient;
use crate::both_backends;
use crate::support::app::{Db, TestApp};
use tidings::services::accounts::Role;

both_backends!(admin_logins_are_throttled_forms_need_csrf_and_the_session_cookie_is_httponly_samesite);

async fn admin_logins_are_throttled_forms_need_csrf_and_the_session_cookie_is_httponly_samesite(db: Db) {
    let app = TestApp::spawn(db).await;
    let password = app.add_organiser("org@hospital.test", Role::Admin).await;

    // The session cookie.
    let owner = AdminClient::new(&app);
    let res = owner.log_in("org@hospital.test", &password).await;
    assert_eq!(res.status, 303);
    let cookie = res.set_cookies().into_iter().find(|c| c.starts_with("tidings_session=")).expect("a session cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict") || cookie.contains("SameSite=Lax"), "{cookie}");

    // CSRF: the same logged-in post without, or with a wrong, token is refused.
    let without = owner.post("/admin/tokens", &[("name", "no token")]).await;
    assert_eq!(without.status, 403, "{}", without.body);
    let wrong = owner.post("/admin/tokens", &[("csrf", "forged"), ("name", "bad token")]).await;
    assert_eq!(wrong.status, 403, "{}", wrong.body);
    let right = owner.submit("/admin/tokens", "/admin/tokens", &[("name", "with token")]).await;
    assert!(right.status < 400, "with the page's token it works: {} {}", right.status, right.body);

    // Throttling: five wrong passwords, then even the right one is refused.
    let guesser = AdminClient::new(&app);
    for _ in 0..5 {
        assert_eq!(guesser.log_in("org@hospital.test", "guess guess guess").await.status, 401);
    }
    let res = guesser.log_in("org@hospital.test", &password).await;
    assert_eq!(res.status, 429, "{}", res.body);
    assert!(guesser.cookie("tidings_session").is_none());
}
