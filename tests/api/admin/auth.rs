//! Logging in and out, the session cookie, expiry, and login throttling.

use super::AdminClient;
use crate::both_backends;
use crate::support::app::{Db, TestApp};
use std::time::{Duration, Instant};
use tidings::services::accounts::Role;
use tidings::store::Store;

both_backends!(
    an_organiser_logs_in_and_logging_out_kills_the_session,
    the_session_cookie_is_httponly_samesite_and_secure_on_https,
    sessions_end_when_idle_and_at_their_absolute_limit,
    logins_are_throttled_per_account_and_client_address_together,
    an_unknown_address_costs_as_much_as_a_wrong_password,
);

const EMAIL: &str = "organiser@hospital.test";

async fn session_hashes(store: &Store) -> Vec<String> {
    match store {
        Store::Sqlite(pool) => sqlx::query_scalar("SELECT id_hash FROM sessions").fetch_all(pool).await.unwrap(),
        Store::Postgres(pool) => sqlx::query_scalar("SELECT id_hash FROM sessions").fetch_all(pool).await.unwrap(),
    }
}

async fn an_organiser_logs_in_and_logging_out_kills_the_session(db: Db) {
    let app = TestApp::spawn(db).await;
    let password = app.add_organiser(EMAIL, Role::Admin).await;
    let client = AdminClient::new(&app);

    let res = client.get("/admin/subscribers?q=zoe").await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), Some("/admin/login?next=%2Fadmin%2Fsubscribers%3Fq%3Dzoe"));
    let form = client.get(res.location().unwrap()).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("value=\"/admin/subscribers?q=zoe\""), "next is carried in the form");

    // Wrong password and unknown address: the same refusal, no session.
    for (email, pw) in [(EMAIL, "not the password at all"), ("nobody@hospital.test", password.as_str())] {
        let res = client.log_in(email, pw).await;
        assert_eq!(res.status, 401, "{email}");
        assert!(res.body.contains("do not match an organiser account"));
        assert!(res.body.contains(&format!("value=\"{email}\"")), "the address is kept");
        assert!(!res.body.contains(pw), "the password is never echoed");
        assert!(client.cookie("tidings_session").is_none());
    }

    let csrf = client.get("/admin/login?next=%2Fadmin%2Fsubscribers%3Fq%3Dzoe").await.csrf();
    let res = client
        .post(
            "/admin/login",
            &[
                ("csrf", &csrf),
                ("email", " Organiser@Hospital.TEST "),
                ("password", &password),
                ("next", "/admin/subscribers?q=zoe"),
            ],
        )
        .await;
    assert_eq!(res.status, 303, "{}", res.body);
    assert_eq!(res.location(), Some("/admin/subscribers?q=zoe"));
    let cookie = client.cookie("tidings_session").expect("a session cookie");
    let dashboard = client.get("/admin").await;
    assert_eq!(dashboard.status, 200);
    assert!(dashboard.body.contains(EMAIL));
    // Logged in, the login form sends you on.
    assert_eq!(client.get("/admin/login").await.location(), Some("/admin"));

    // An off-site `next` is ignored.
    let other = AdminClient::new(&app);
    let csrf = other.get("/admin/login").await.csrf();
    let res = other
        .post(
            "/admin/login",
            &[("csrf", &csrf), ("email", EMAIL), ("password", &password), ("next", "https://evil.test/")],
        )
        .await;
    assert_eq!(res.location(), Some("/admin"));

    let csrf = dashboard.csrf();
    let res = client.post("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(res.status, 303);
    assert_eq!(res.location(), Some("/admin/login?notice=logged-out"));
    assert!(res.set_cookies().iter().any(|c| c.starts_with("tidings_session=;") && c.contains("Max-Age=0")));
    assert!(client.cookie("tidings_session").is_none());
    assert!(client.get("/admin/login?notice=logged-out").await.body.contains("You have logged out."));

    // The old cookie is dead on the server, not only forgotten by the browser.
    let replay = AdminClient::new(&app);
    replay.set_cookie("tidings_session", &cookie);
    assert_eq!(replay.get("/admin").await.status, 303);
    assert_eq!(replay.post("/admin/logout", &[("csrf", &csrf)]).await.status, 401);
    // The other session is untouched.
    assert_eq!(other.get("/admin").await.status, 200);
}

async fn the_session_cookie_is_httponly_samesite_and_secure_on_https(db: Db) {
    for (base, secure) in [("http://tidings.test", false), ("https://tidings.example.org", true)] {
        let app = TestApp::spawn_with(db.clone(), &[("TIDINGS_BASE_URL", base)]).await;
        let password = app.add_organiser(EMAIL, Role::Editor).await;
        let client = AdminClient::new(&app);
        let form = client.get("/admin/login").await;
        assert_eq!(form.headers["cache-control"], "no-store");
        let pre_login = form.set_cookies();
        assert_eq!(pre_login.len(), 1, "{pre_login:?}");
        let res = client.log_in(EMAIL, &password).await;
        assert_eq!(res.status, 303);
        let cookies = res.set_cookies();
        let session = cookies.iter().find(|c| c.starts_with("tidings_session=")).expect("session cookie");
        for cookie in [session, &pre_login[0]] {
            let attributes: Vec<&str> = cookie.split(';').map(str::trim).skip(1).collect();
            for required in ["HttpOnly", "SameSite=Lax", "Path=/admin"] {
                assert!(attributes.contains(&required), "{cookie} has {required}");
            }
            assert_eq!(attributes.contains(&"Secure"), secure, "{cookie} on {base}");
        }
        let max_age: i64 = session.split("Max-Age=").nth(1).unwrap().split(';').next().unwrap().parse().unwrap();
        assert!((43_000..=43_200).contains(&max_age), "no longer than the 12-hour session: {session}");

        // 256 random bits, and only their SHA-256 in the database.
        let value = client.cookie("tidings_session").unwrap();
        use base64::Engine;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&value).unwrap();
        assert_eq!(raw.len(), 32);
        let stored = session_hashes(&app.ctx.store).await;
        assert_eq!(stored, [tidings::domain::sha256_hex(&value)]);
        assert!(!stored.contains(&value));
    }
}

async fn sessions_end_when_idle_and_at_their_absolute_limit(db: Db) {
    let app = TestApp::spawn(db).await;
    let password = app.add_organiser(EMAIL, Role::Admin).await;
    let busy = AdminClient::new(&app);
    assert_eq!(busy.log_in(EMAIL, &password).await.status, 303);
    let idle = AdminClient::new(&app);
    assert_eq!(idle.log_in(EMAIL, &password).await.status, 303);

    // Active every 1 h 50 min: alive for 11 hours.
    let step = Duration::from_secs(110 * 60);
    for hour in 1..=6 {
        app.ctx.clock.advance(step);
        assert_eq!(busy.get("/admin").await.status, 200, "after {hour} steps");
    }
    assert_eq!(idle.get("/admin").await.status, 303, "idle for 11 hours");
    app.ctx.clock.advance(Duration::from_secs(65 * 60));
    assert_eq!(busy.get("/admin").await.status, 303, "12 h 5 min after login, idle for only 65 min");

    let fresh = AdminClient::new(&app);
    assert_eq!(fresh.log_in(EMAIL, &password).await.status, 303);
    app.ctx.clock.advance(Duration::from_secs(119 * 60));
    assert_eq!(fresh.get("/admin").await.status, 200);
    app.ctx.clock.advance(Duration::from_secs(121 * 60));
    assert_eq!(fresh.get("/admin").await.status, 303, "idle for just over two hours");
}

async fn logins_are_throttled_per_account_and_client_address_together(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_TRUSTED_PROXY_HEADER", "X-Forwarded-For")]).await;
    let editor_pw = app.add_organiser("editor@hospital.test", Role::Editor).await;
    let admin_pw = app.add_organiser("admin@hospital.test", Role::Admin).await;

    // A good login forgives the account's earlier failures.
    let owner = AdminClient::from_address(&app, "203.0.113.9");
    for _ in 0..4 {
        assert_eq!(owner.log_in("admin@hospital.test", "wrong wrong wrong").await.status, 401);
    }
    assert_eq!(owner.log_in("admin@hospital.test", &admin_pw).await.status, 303);

    // Five failures against one account from one address…
    let attacker = AdminClient::from_address(&app, "192.0.2.1");
    for _ in 0..5 {
        assert_eq!(attacker.log_in("editor@hospital.test", "guess guess guess").await.status, 401);
    }
    // …and the sixth is refused without even checking the password.
    let res = attacker.log_in("editor@hospital.test", &editor_pw).await;
    assert_eq!(res.status, 429, "{}", res.body);
    assert_eq!(res.headers["retry-after"], "900");
    assert!(res.body.contains("Too many failed attempts"));
    assert!(attacker.cookie("tidings_session").is_none());
    // The attacker cannot lock the real editor out: from their own address
    // they still log in (issue 16 §6)…
    let real_editor = AdminClient::from_address(&app, "198.51.100.7");
    assert_eq!(real_editor.log_in("editor@hospital.test", &editor_pw).await.status, 303);
    // …and other accounts from other addresses are not affected.
    let colleague = AdminClient::from_address(&app, "198.51.100.8");
    assert_eq!(colleague.log_in("admin@hospital.test", &admin_pw).await.status, 303);

    // Spraying many accounts from one address trips the per-address limit.
    let sprayer = AdminClient::from_address(&app, "192.0.2.2");
    for i in 0..10 {
        assert_eq!(sprayer.log_in(&format!("guess{i}@hospital.test"), "password123456").await.status, 401);
    }
    assert_eq!(sprayer.log_in("admin@hospital.test", &admin_pw).await.status, 429);

    // Fifteen minutes later both limits have passed.
    app.ctx.clock.advance(Duration::from_secs(15 * 60 + 1));
    assert_eq!(attacker.log_in("editor@hospital.test", &editor_pw).await.status, 303);
    assert_eq!(sprayer.log_in("admin@hospital.test", &admin_pw).await.status, 303);
}

/// How long one refused login by `email` takes, from `address`.
async fn refusal_time(app: &TestApp, email: &str, address: &str) -> Duration {
    let client = AdminClient::from_address(app, address);
    let csrf = client.get("/admin/login").await.csrf();
    let start = Instant::now();
    let res = client.post("/admin/login", &[("csrf", &csrf), ("email", email), ("password", "wrong password!")]).await;
    let elapsed = start.elapsed();
    assert_eq!(res.status, 401);
    elapsed
}

async fn an_unknown_address_costs_as_much_as_a_wrong_password(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_TRUSTED_PROXY_HEADER", "X-Forwarded-For")]).await;
    // Interleaved, so that load from other tests weighs on both alike; one
    // account per try, so that the per-account limit never cuts in.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..7 {
        let email = format!("known{i}@hospital.test");
        app.add_organiser(&email, Role::Editor).await;
        known.push(refusal_time(&app, &email, &format!("10.0.0.{i}")).await);
        unknown.push(refusal_time(&app, &format!("nobody{i}@hospital.test"), &format!("10.0.1.{i}")).await);
    }
    known.sort();
    unknown.sort();
    let (known, unknown) = (known[3], unknown[3]);
    // argon2 dominates both: without the decoy hash an unknown address
    // would answer in a small fraction (well under a tenth) of the time.
    assert!(unknown * 3 >= known, "median unknown {unknown:?} vs known {known:?}");
}
