//! Issue 16 §4 and §5: one person, one address (twelve spellings of an
//! address are one subscriber and one mail, and none of them gets past the
//! suppression of the erased address). That erasure leaves nothing behind
//! is checklist item 15 (`checklist/item_15.rs`).

use crate::both_backends;
use crate::support::app::{Db, TestApp, confirm_token};
use reqwest::Method;
use serde_json::json;

both_backends!(
    twelve_spellings_of_one_address_are_one_person_and_one_mail,
    an_address_that_cannot_be_normalised_is_refused_with_422,
    no_spelling_of_an_erased_address_gets_past_the_suppression,
    a_fingerprint_kept_after_erasure_is_keyed_not_a_bare_sha256,
    fingerprints_stored_before_the_upgrade_are_rekeyed_or_kept_as_legacy,
);

/// Twelve spellings of `ann@bücher.example`: case, the Unicode and
/// punycode forms of the domain, a trailing root dot, fullwidth letters
/// (and a fullwidth `@` and dots), and a decomposed `ü`.
const SPELLINGS: [&str; 12] = [
    "ann@bücher.example",
    "Ann@bücher.example",
    "ANN@BÜCHER.EXAMPLE",
    "ann@BÜCHER.example",
    "ann@xn--bcher-kva.example",
    "ann@XN--BCHER-KVA.example",
    "ann@bücher.example.",
    "ann@xn--bcher-kva.example.",
    "ａｎｎ@bücher.example",
    "ann@ｂüｃｈｅｒ.example",
    "ａｎｎ＠ｂüｃｈｅｒ．ｅｘａｍｐｌｅ",
    "ann@bu\u{308}cher.example",
];

/// Four spellings of `ann@example.org`.
const PLAIN_SPELLINGS: [&str; 4] =
    ["Ann@Example.ORG", "ann@example.org.", "ａｎｎ@example.org", "ann@ｅｘａｍｐｌｅ.org"];

async fn app(db: Db) -> TestApp {
    // The per-client limit off: every spelling comes from one address.
    TestApp::spawn_with(db, &[("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "0")]).await
}

/// Rows in `subscribers`, counted in SQL (the API finds by normal form).
async fn subscriber_rows(app: &TestApp) -> i64 {
    match &app.ctx.store {
        tidings::store::Store::Sqlite(pool) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM subscribers").fetch_one(pool).await.unwrap()
        }
        tidings::store::Store::Postgres(pool) => {
            sqlx::query_scalar("SELECT COUNT(*) FROM subscribers").fetch_one(pool).await.unwrap()
        }
    }
}

async fn twelve_spellings_of_one_address_are_one_person_and_one_mail(db: Db) {
    let app = app(db).await;
    for spelling in SPELLINGS.iter().chain(&PLAIN_SPELLINGS) {
        let res = app.subscribe(spelling, "updates").await;
        assert_eq!(res.status(), 200, "{spelling:?}");
    }
    app.drain_outbox().await;
    assert_eq!(subscriber_rows(&app).await, 2, "one person per address, whatever the spelling");
    let mails = app.smtp.messages();
    assert_eq!(
        mails.len(),
        2,
        "one confirmation mail per person: {:?}",
        mails.iter().map(|m| &m.to).collect::<Vec<_>>()
    );
    assert_eq!(app.smtp.messages_to("ann@xn--bcher-kva.example").len(), 1, "mailed at the ASCII form of the domain");
    assert_eq!(app.smtp.messages_to("ann@example.org").len(), 1);
    // Every spelling finds the same person.
    let id = app.subscriber(SPELLINGS[0]).await["id"].clone();
    for spelling in SPELLINGS {
        assert_eq!(app.subscriber(spelling).await["id"], id, "{spelling:?}");
    }
}

async fn an_address_that_cannot_be_normalised_is_refused_with_422(db: Db) {
    let app = app(db).await;
    // Bad punycode, a label UTS-46 refuses (STD3: an underscore), a zero
    // width space as the whole label, two root dots.
    for bad in ["ann@xn--a.example", "ann@ex_ample.org", "ann@\u{200b}.example", "ann@example.org.."] {
        let res = app.post_json("/subscribe", &json!({"email": bad, "lists": ["updates"], "consent": true})).await;
        let status = res.status();
        let body = res.text().await.unwrap();
        assert_eq!(status, 422, "{bad:?}: {body}");
        assert!(body.contains("email"), "the answer names the field: {body}");
        let res = app.subscribe(bad, "updates").await;
        assert_eq!(res.status(), 422, "{bad:?} through the form");
    }
    app.drain_outbox().await;
    assert_eq!(app.smtp.message_count(), 0);
    assert_eq!(subscriber_rows(&app).await, 0);
}

/// Subscribes `email` through the form (named `name`) and confirms it.
pub(crate) async fn subscribed_and_confirmed(app: &TestApp, email: &str, mailed_as: &str, name: &str) -> String {
    let res = app
        .post_form("/subscribe", &[("email", email), ("name", name), ("lists", "updates"), ("consent", "updates")])
        .await;
    assert_eq!(res.status(), 200);
    app.drain_outbox().await;
    let mails = app.smtp.messages_to(mailed_as);
    let token = confirm_token(mails.last().expect("a confirmation mail"));
    assert_eq!(app.post_form(&format!("/confirm/{token}"), &[]).await.status(), 200);
    app.subscriber(email).await["id"].as_str().expect("id").to_owned()
}

pub(crate) async fn erase(app: &TestApp, id: &str) {
    let res = app.api(Method::POST, &format!("/subscribers/{id}/erase")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

async fn no_spelling_of_an_erased_address_gets_past_the_suppression(db: Db) {
    let app = app(db).await;
    let id = subscribed_and_confirmed(&app, "Ann@Bücher.example", "ann@xn--bcher-kva.example", "Ann").await;
    let plain = subscribed_and_confirmed(&app, "ann@example.org", "ann@example.org", "Ann").await;
    erase(&app, &id).await;
    erase(&app, &plain).await;
    let before = app.smtp.message_count();
    for spelling in SPELLINGS.iter().chain(&PLAIN_SPELLINGS) {
        // The same answer as for anyone (nothing reveals the suppression).
        assert_eq!(app.subscribe(spelling, "updates").await.status(), 200, "{spelling:?}");
        let res = app.api(Method::POST, "/subscribers").json(&json!({"email": spelling, "lists": ["updates"], "status": "confirmed", "basis": "consent-recorded-elsewhere"})).send().await.unwrap();
        assert_eq!(res.status(), 409, "the API refuses a suppressed address: {spelling:?}");
    }
    app.drain_outbox().await;
    assert_eq!(app.smtp.message_count(), before, "nothing mailed to an erased address, however it is spelt");
    assert_eq!(subscriber_rows(&app).await, 0, "nobody was re-created");
}

/// The suppression entry kept after erasure is not SHA-256 of the address
/// (anyone with the database could test guesses against that).
async fn a_fingerprint_kept_after_erasure_is_keyed_not_a_bare_sha256(db: Db) {
    let app = app(db).await;
    let id = subscribed_and_confirmed(&app, "ann@example.org", "ann@example.org", "Ann").await;
    erase(&app, &id).await;
    let hashes: Vec<String> = match &app.ctx.store {
        tidings::store::Store::Sqlite(pool) => {
            sqlx::query_scalar("SELECT email_hash FROM suppressions").fetch_all(pool).await.unwrap()
        }
        tidings::store::Store::Postgres(pool) => {
            sqlx::query_scalar("SELECT email_hash FROM suppressions").fetch_all(pool).await.unwrap()
        }
    };
    assert_eq!(hashes.len(), 1);
    assert_ne!(hashes[0], tidings::domain::sha256_hex("ann@example.org"), "not a bare SHA-256");
    let key = tidings::domain::AddressKey::derive(&app.ctx.secret_key);
    assert_eq!(hashes[0], key.fingerprint("ann@example.org"), "HMAC-SHA256 under the key from the secret key");
    let other = tidings::domain::AddressKey::derive(b"some other secret key of 32 bytes or more");
    assert_ne!(hashes[0], other.fingerprint("ann@example.org"));
}

/// Runs one statement on the test's database.
async fn exec(app: &TestApp, sql: &'static str, binds: &[&str]) {
    match &app.ctx.store {
        tidings::store::Store::Sqlite(pool) => {
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(*b);
            }
            q.execute(pool).await.unwrap();
        }
        tidings::store::Store::Postgres(pool) => {
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(*b);
            }
            q.execute(pool).await.unwrap();
        }
    }
}

async fn texts(app: &TestApp, sql: &'static str) -> Vec<String> {
    match &app.ctx.store {
        tidings::store::Store::Sqlite(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
        tidings::store::Store::Postgres(pool) => sqlx::query_scalar(sql).fetch_all(pool).await.unwrap(),
    }
}

/// A database as an older Tidings left it: addresses normalised by
/// lower-casing only, fingerprints bare SHA-256. The next start re-keys
/// what it can and keeps what it cannot as `legacy`, still enforced; a
/// start with another secret key is refused.
async fn fingerprints_stored_before_the_upgrade_are_rekeyed_or_kept_as_legacy(db: Db) {
    use tidings::domain::{AddressKey, sha256_hex};
    use tidings::services::fingerprints::convert_at_start;
    let app = app(db).await;
    // Bob, held in the old form and suppressed after a hard bounce; Ann,
    // erased, of whom only the bare hash of her old form is left.
    subscribed_and_confirmed(&app, "Bob@Bücher.example", "bob@xn--bcher-kva.example", "Bob").await;
    let old_hash = sha256_hex("bob@bücher.example");
    exec(
        &app,
        "UPDATE subscribers SET email = 'Bob@Bücher.example', email_norm = 'bob@bücher.example', email_hash = $1",
        &[&old_hash],
    )
    .await;
    let ann_hash = sha256_hex("ann@bücher.example");
    for hash in [&old_hash, &ann_hash] {
        exec(
            &app,
            "INSERT INTO suppressions (email_hash, reason, created_at, legacy) VALUES ($1, 'old', CURRENT_TIMESTAMP, TRUE)",
            &[hash],
        )
        .await;
    }
    exec(&app, "DELETE FROM settings WHERE key = 'address_key_check'", &[]).await;

    // The next start.
    convert_at_start(&app.ctx.store, &app.ctx.address_key).await.expect("converted");
    let key = &app.ctx.address_key;
    let bob = "bob@xn--bcher-kva.example";
    assert_eq!(texts(&app, "SELECT email_norm FROM subscribers").await, vec![bob.to_owned()], "re-normalised");
    assert_eq!(texts(&app, "SELECT email FROM subscribers").await, vec!["Bob@xn--bcher-kva.example".to_owned()]);
    assert_eq!(texts(&app, "SELECT email_hash FROM subscribers").await, vec![key.fingerprint(bob)], "re-keyed");
    assert_eq!(
        texts(&app, "SELECT email_hash FROM suppressions WHERE NOT legacy").await,
        vec![key.fingerprint(bob)],
        "the suppression of a held address is re-keyed"
    );
    assert_eq!(
        texts(&app, "SELECT email_hash FROM suppressions WHERE legacy").await,
        vec![ann_hash.clone()],
        "an erased address's bare hash cannot be re-keyed and stays"
    );
    // Bob's suppression still holds at send time (the join is by keyed fingerprint).
    let before = app.smtp.message_count();
    let update = app.create_update("News", "Hello", &["updates"]).await;
    assert_eq!(app.api(Method::POST, &format!("/updates/{update}/send")).send().await.unwrap().status(), 202);
    app.drive_delivery(&update, 20).await;
    assert_eq!(app.smtp.message_count(), before, "a suppressed address is not mailed");
    // Ann's legacy suppression holds for every spelling, and is re-keyed
    // the first time her address is seen again.
    for spelling in SPELLINGS {
        assert_eq!(app.subscribe(spelling, "updates").await.status(), 200);
    }
    app.drain_outbox().await;
    assert_eq!(app.smtp.message_count(), before, "nothing mailed to the erased address");
    assert!(texts(&app, "SELECT email_hash FROM suppressions WHERE legacy").await.is_empty());
    assert!(
        texts(&app, "SELECT email_hash FROM suppressions")
            .await
            .contains(&key.fingerprint("ann@xn--bcher-kva.example"))
    );

    // Starting again is a no-op; with another key it is refused.
    convert_at_start(&app.ctx.store, key).await.expect("same key");
    let other = AddressKey::derive(b"a different secret key, 32 bytes or more");
    let refused = convert_at_start(&app.ctx.store, &other).await.expect_err("another key is refused");
    assert!(refused.to_string().contains("TIDINGS_SECRET_KEY"), "{refused}");
}
