//! Sign-up abuse beyond one address (issue 24 §4): limits per IPv4 /24 and
//! IPv6 /64 beside the per-address one, `TIDINGS_SUBSCRIBE_LIMIT_PER_IP=0`
//! turning every sign-up limit off, and the optional proof-of-work
//! challenge (ALTCHA scheme) on the form and the JSON endpoint, in a real
//! browser too. Client addresses come through the trusted proxy header.

use crate::both_backends;
use crate::support::app::{Db, TestApp};
use crate::support::browser::Browser;
use base64::Engine;
use serde_json::{Value, json};

both_backends!(
    a_v4_slash_24_is_limited_as_a_whole_and_another_24_is_not,
    a_v6_slash_64_is_limited_as_a_whole_and_another_64_is_not,
    a_per_ip_limit_of_zero_turns_every_sign_up_limit_off,
    a_required_challenge_refuses_missing_replayed_expired_and_forged_solutions,
    an_offered_challenge_still_accepts_a_form_without_one,
    with_the_challenge_off_there_is_no_route_and_no_script,
);

const PROXY: (&str, &str) = ("TIDINGS_TRUSTED_PROXY_HEADER", "X-Forwarded-For");

async fn subscribe_from(app: &TestApp, ip: &str, email: &str) -> reqwest::Response {
    app.http
        .post(app.url("/subscribe"))
        .header("x-forwarded-for", ip)
        .json(&json!({ "email": email, "lists": ["updates"], "consent": true }))
        .send()
        .await
        .unwrap()
}

async fn form_from(app: &TestApp, ip: &str, email: &str) -> reqwest::Response {
    app.http
        .post(app.url("/subscribe"))
        .header("x-forwarded-for", ip)
        .form(&[("email", email), ("name", "Typed Name"), ("lists", "updates"), ("consent", "updates")])
        .send()
        .await
        .unwrap()
}

async fn a_v4_slash_24_is_limited_as_a_whole_and_another_24_is_not(db: Db) {
    // The defaults: 10 a minute per address, 30 per /24.
    let app = TestApp::spawn_with(db, &[PROXY]).await;
    for i in 1..=30 {
        let res = subscribe_from(&app, &format!("198.51.100.{i}"), &format!("v4-{i}@example.org")).await;
        assert_eq!(res.status(), 202, "sign-up {i} from its own address");
    }
    let res = subscribe_from(&app, "198.51.100.31", "v4-31@example.org").await;
    assert_eq!(res.status(), 429, "the 31st from the same /24");
    assert!(res.headers().get("retry-after").is_some());
    let subnet_refusal: Value = res.json().await.unwrap();
    // An IPv4-mapped IPv6 address is its IPv4 address.
    assert_eq!(subscribe_from(&app, "::ffff:198.51.100.99", "mapped@example.org").await.status(), 429);
    // Another /24 is untouched.
    assert_eq!(subscribe_from(&app, "198.51.101.1", "next-door@example.org").await.status(), 202);

    // The answer is the per-address one exactly: nothing about the address
    // or its network.
    for _ in 0..10 {
        assert_eq!(subscribe_from(&app, "203.0.113.7", "one@example.org").await.status(), 202);
    }
    let res = subscribe_from(&app, "203.0.113.7", "one@example.org").await;
    assert_eq!(res.status(), 429);
    let address_refusal: Value = res.json().await.unwrap();
    assert_eq!(subnet_refusal, address_refusal);
    assert_eq!(subnet_refusal["error"]["code"], "rate_limited");

    // The form version keeps what was typed.
    let res = form_from(&app, "198.51.100.200", "typed@example.org").await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    let page = res.text().await.unwrap();
    assert!(page.contains(r#"value="typed@example.org""#), "{page}");
    assert!(page.contains(r#"value="Typed Name""#), "{page}");
    assert!(page.contains("Too many requests. Please wait a minute and try again."), "{page}");

    app.drain_outbox().await;
    assert!(app.smtp.messages_to("v4-31@example.org").is_empty());
    assert!(app.smtp.messages_to("typed@example.org").is_empty());
    assert_eq!(app.smtp.messages_to("next-door@example.org").len(), 1);
}

async fn a_v6_slash_64_is_limited_as_a_whole_and_another_64_is_not(db: Db) {
    let app = TestApp::spawn_with(db, &[PROXY, ("TIDINGS_SUBSCRIBE_LIMIT_PER_SUBNET", "15")]).await;
    for i in 1..=15 {
        let res = subscribe_from(&app, &format!("2001:db8:1:2::{i:x}"), &format!("v6-{i}@example.org")).await;
        assert_eq!(res.status(), 202, "sign-up {i} from its own address");
    }
    let res = subscribe_from(&app, "2001:db8:1:2:ffff:ffff:ffff:ffff", "v6-16@example.org").await;
    assert_eq!(res.status(), 429, "the 16th from the same /64");
    assert_eq!(subscribe_from(&app, "2001:db8:1:3::1", "v6-next@example.org").await.status(), 202);
    app.drain_outbox().await;
    assert!(app.smtp.messages_to("v6-16@example.org").is_empty());
    assert_eq!(app.smtp.messages_to("v6-next@example.org").len(), 1);
}

async fn a_per_ip_limit_of_zero_turns_every_sign_up_limit_off(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[PROXY, ("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "0"), ("TIDINGS_SUBSCRIBE_LIMIT_PER_SUBNET", "2")],
    )
    .await;
    for i in 0..40 {
        // One address, and its neighbours in the same /24 and /64.
        assert_eq!(subscribe_from(&app, "192.0.2.1", &format!("load-{i}@example.org")).await.status(), 202);
        assert_eq!(
            subscribe_from(&app, &format!("192.0.2.{}", i + 2), &format!("n-{i}@example.org")).await.status(),
            202
        );
        assert_eq!(
            subscribe_from(&app, &format!("2001:db8::{:x}", i + 1), &format!("s-{i}@example.org")).await.status(),
            202
        );
    }
}

/// The solution a browser would post, found by brute force as the script does.
fn solve(challenge: &Value) -> (u64, String) {
    let salt = challenge["salt"].as_str().unwrap();
    let target = challenge["challenge"].as_str().unwrap();
    let max = challenge["maxnumber"].as_u64().unwrap();
    let number =
        (0..=max).find(|n| tidings::domain::sha256_hex(format!("{salt}{n}")) == target).expect("a solution exists");
    (number, payload(challenge, number, challenge["signature"].as_str().unwrap()))
}

fn payload(challenge: &Value, number: u64, signature: &str) -> String {
    let body = json!({
        "algorithm": challenge["algorithm"], "challenge": challenge["challenge"], "number": number,
        "salt": challenge["salt"], "signature": signature,
    });
    base64::engine::general_purpose::STANDARD.encode(body.to_string())
}

async fn fetch_challenge(app: &TestApp) -> Value {
    let res = app.http.get(app.url("/subscribe/challenge")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

async fn subscribe_with(app: &TestApp, email: &str, altcha: Option<&str>) -> reqwest::Response {
    let mut body = json!({ "email": email, "lists": ["updates"], "consent": true });
    if let Some(a) = altcha {
        body["altcha"] = json!(a);
    }
    app.post_json("/subscribe", &body).await
}

async fn a_required_challenge_refuses_missing_replayed_expired_and_forged_solutions(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[("TIDINGS_SUBSCRIBE_CHALLENGE", "require"), ("TIDINGS_SUBSCRIBE_CHALLENGE_MAX_NUMBER", "2000")],
    )
    .await;
    // The form page runs our script, allowed by its policy, and says what
    // happens without JavaScript.
    let res = app.http.get(app.url("/subscribe")).send().await.unwrap();
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let page = res.text().await.unwrap();
    assert!(page.contains(r#"data-challenge="/subscribe/challenge""#), "{page}");
    assert!(page.contains(r#"<script src="/assets/challenge.js" defer></script>"#), "{page}");
    assert!(page.contains("<noscript>") && page.contains("This form needs JavaScript"), "{page}");
    let script = app.http.get(app.url("/assets/challenge.js")).send().await.unwrap();
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(script.text().await.unwrap().contains("crypto.subtle.digest"));

    let c = fetch_challenge(&app).await;
    assert_eq!(c["algorithm"], "SHA-256");
    assert_eq!(c["maxnumber"], 2000);
    assert!(c["salt"].as_str().unwrap().contains("?expires="), "{c}");

    // Without a solution: 422 with a clear message, as JSON and as the form
    // again with what was typed.
    let res = subscribe_with(&app, "none@example.org", None).await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "challenge_failed", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("JavaScript"), "{body}");
    let res = app.subscribe("typed@example.org", "updates").await;
    assert_eq!(res.status(), 422);
    let page = res.text().await.unwrap();
    assert!(page.contains(r#"value="typed@example.org""#) && page.contains("turn JavaScript on"), "{page}");

    // A forged signature, and a wrong number under the real one.
    let (number, good) = solve(&c);
    let mut forged_sig = c["signature"].as_str().unwrap().to_owned();
    let flipped = if forged_sig.starts_with('0') { "1" } else { "0" };
    forged_sig.replace_range(0..1, flipped);
    let res = subscribe_with(&app, "forged@example.org", Some(&payload(&c, number, &forged_sig))).await;
    assert_eq!(res.status(), 422, "a tampered signature");
    let wrong = payload(&c, (number + 1) % 2001, c["signature"].as_str().unwrap());
    assert_eq!(subscribe_with(&app, "wrong@example.org", Some(&wrong)).await.status(), 422, "a wrong number");
    assert_eq!(subscribe_with(&app, "junk@example.org", Some("not base64 !")).await.status(), 422);

    // The real solution, once, as JSON; a second use is refused.
    assert_eq!(subscribe_with(&app, "solved@example.org", Some(&good)).await.status(), 202);
    assert_eq!(subscribe_with(&app, "replay@example.org", Some(&good)).await.status(), 422, "a replay");

    // The form posts it as the `altcha` field.
    let (_, form_solution) = solve(&fetch_challenge(&app).await);
    let res = app
        .post_form(
            "/subscribe",
            &[("email", "form@example.org"), ("lists", "updates"), ("consent", "updates"), ("altcha", &form_solution)],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Check your inbox"));

    // A solution found in time but posted after its challenge expired.
    let (_, late) = solve(&fetch_challenge(&app).await);
    app.advance_clock_to(app.ctx.clock.now() + chrono::Duration::minutes(21));
    assert_eq!(subscribe_with(&app, "late@example.org", Some(&late)).await.status(), 422, "expired");

    app.drain_outbox().await;
    for refused in ["none", "typed", "forged", "wrong", "junk", "replay", "late"] {
        assert!(app.smtp.messages_to(&format!("{refused}@example.org")).is_empty(), "{refused}");
    }
    assert_eq!(app.smtp.messages_to("solved@example.org").len(), 1);
    assert_eq!(app.smtp.messages_to("form@example.org").len(), 1);
}

async fn an_offered_challenge_still_accepts_a_form_without_one(db: Db) {
    let app = TestApp::spawn_with(db, &[("TIDINGS_SUBSCRIBE_CHALLENGE", "on")]).await;
    let page = app.http.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(r#"data-challenge="/subscribe/challenge""#), "{page}");
    assert!(!page.contains("<noscript>"), "no JavaScript needed when only offered: {page}");
    assert_eq!(app.subscribe("plain@example.org", "updates").await.status(), 200);
    let (_, solution) = solve(&fetch_challenge(&app).await);
    assert_eq!(subscribe_with(&app, "solved@example.org", Some(&solution)).await.status(), 202);
}

async fn with_the_challenge_off_there_is_no_route_and_no_script(db: Db) {
    let app = TestApp::spawn(db).await;
    assert_eq!(app.http.get(app.url("/subscribe/challenge")).send().await.unwrap().status(), 404);
    let res = app.http.get(app.url("/subscribe")).send().await.unwrap();
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(!csp.contains("script-src"), "{csp}");
    let page = res.text().await.unwrap();
    assert!(!page.contains("<script") && !page.contains("altcha"), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_solves_a_required_challenge_in_a_real_browser() {
    let Some(browser) = Browser::start().await else { return };
    let app =
        TestApp::spawn_with(Db::Sqlite, &[("TIDINGS_BASE_URL", "self"), ("TIDINGS_SUBSCRIBE_CHALLENGE", "require")])
            .await;
    browser.goto(&app.url("/")).await;
    browser.type_into("#email", "browser@example.org").await;
    browser.click("#consent-updates").await;
    browser.screenshot("signup-challenge-form").await;
    browser.click("button[type=submit]").await;
    assert!(browser.shows("Check your inbox").await, "{}", browser.text().await);
    browser.screenshot("signup-challenge-check-inbox").await;
    app.drain_outbox().await;
    assert_eq!(app.smtp.messages_to("browser@example.org").len(), 1);
}
