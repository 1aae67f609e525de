//! `TestApp`: the real application on a random port, with a fresh database
//! (an SQLite file, or a PostgreSQL schema of its own) and a real SMTP
//! capture server on loopback.

use super::smtp::{CapturedMail, TestSmtp};
use std::collections::BTreeMap;
use tidings::app::{App, Role};
use tidings::clock::Clock;
use tidings::config::Config;
use tidings::services::Context;
use tidings::workers::delivery::DeliveryWorker;
use tidings::workers::outbox::{OutboxWorker, Step};
use tidings::workers::scheduler::SchedulerWorker;
use tokio::sync::watch;

/// Which database a test runs against.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite,
    /// The server URL from `TEST_DATABASE_URL`.
    Postgres(String),
}

impl Db {
    /// The PostgreSQL backend, or `None` (test skipped) when
    /// `TEST_DATABASE_URL` is unset outside CI. Under CI a missing URL fails.
    pub fn postgres() -> Option<Db> {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(Db::Postgres(url)),
            _ if std::env::var("CI").is_ok() => panic!("TEST_DATABASE_URL must be set when CI is set"),
            _ => {
                eprintln!("TEST_DATABASE_URL unset: PostgreSQL variant not run");
                super::skip::case("PostgreSQL variants", "TEST_DATABASE_URL unset");
                None
            }
        }
    }

    /// A database URL no other test uses. Keeps `dir` alive for SQLite.
    pub async fn fresh_url(&self, dir: &std::path::Path) -> String {
        match self {
            Db::Sqlite => format!("sqlite://{}/tidings.db", dir.display()),
            Db::Postgres(base) => {
                let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
                let store = tidings::store::Store::connect(base).await.expect("connect to TEST_DATABASE_URL");
                if let tidings::store::Store::Postgres(pool) = &store {
                    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                        .execute(pool)
                        .await
                        .expect("create schema");
                }
                store.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                format!("{base}{sep}options[search_path]={schema}")
            }
        }
    }
}

/// Runs `$name(db)` once per backend: `sqlite::$name` and `postgres::$name`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::app::Db::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::support::app::Db::postgres() {
                        super::$name(db).await
                    }
                }
            )+
        }
    };
}

/// The bearer token of [`PUBLIC_METRICS`].
pub const METRICS_TOKEN: &str = "test-metrics-token-0123456789";

/// Settings that serve `/metrics` on the public listener, behind
/// [`METRICS_TOKEN`] (it is off there by default); scrape with
/// [`TestApp::scrape_metrics`].
pub const PUBLIC_METRICS: [(&str, &str); 2] =
    [("TIDINGS_METRICS_PUBLIC", "true"), ("TIDINGS_METRICS_TOKEN", METRICS_TOKEN)];

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub smtp: TestSmtp,
    pub ctx: Context,
    pub worker: OutboxWorker,
    pub delivery: DeliveryWorker,
    pub scheduler: SchedulerWorker,
    transport: tidings::mail::Transport,
    pub api_token: String,
    shutdown: watch::Sender<bool>,
    never_stop: watch::Receiver<bool>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn(db: Db) -> TestApp {
        Self::spawn_with(db, &[]).await
    }

    /// `settings` override configuration keys (`("TIDINGS_…", "…")`);
    /// `("TIDINGS_BASE_URL", "self")` makes links point at this server, for
    /// a real browser to follow.
    pub async fn spawn_with(db: Db, settings: &[(&str, &str)]) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let dir = tempfile::tempdir().expect("tempdir");
        let db_url = db.fresh_url(dir.path()).await;
        let smtp = TestSmtp::start();
        let mut values = BTreeMap::new();
        values.insert("TIDINGS_DATABASE_URL".to_owned(), db_url.clone());
        values.insert("TIDINGS_SMTP_URL".to_owned(), smtp.url());
        values.insert("TIDINGS_BIND".to_owned(), "127.0.0.1:0".to_owned());
        values.insert("TIDINGS_BASE_URL".to_owned(), "http://tidings.test".to_owned());
        values.insert("TIDINGS_FROM".to_owned(), "Save Our Hospital <news@hospital.test>".to_owned());
        // A test rig on loopback has no DKIM key or DNS records: sends go with
        // the failures reported (the sender authentication tests set
        // `require`). DNS goes to a loopback port where nothing listens, so
        // the checks answer "DNS unreachable" at once instead of waiting on
        // the machine's resolver; those tests bring a fixture zone
        // (`support::dns`).
        values.insert("TIDINGS_SENDER_AUTH".to_owned(), "warn".to_owned());
        values.insert("TIDINGS_DNS_SERVER".to_owned(), "127.0.0.1:9".to_owned());
        for (k, v) in settings {
            let v = if (*k, *v) == ("TIDINGS_BASE_URL", "self") { format!("http://{addr}") } else { (*v).to_owned() };
            values.insert((*k).to_owned(), v);
        }
        let config = Config::from_map(&values).expect("test config");
        let app = App::build(config, Clock::system()).await.expect("app builds");
        let ctx = app.ctx.clone();
        let worker = app.outbox_worker();
        let delivery = app.delivery_worker();
        let scheduler = app.scheduler_worker();
        let transport = app.transport.clone();
        let api_token =
            tidings::services::accounts::create_token(&ctx.store, &ctx.clock, "tests").await.expect("token");
        let (shutdown, rx) = watch::channel(false);
        // Web only: tests drive the outbox worker step by step.
        tokio::spawn(app.run(Some(listener), Role::Web, rx.clone()));
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        TestApp {
            base: format!("http://{addr}"),
            http,
            smtp,
            ctx,
            worker,
            delivery,
            scheduler,
            transport,
            api_token,
            shutdown,
            never_stop: rx,
            _dir: dir,
        }
    }

    /// `GET /metrics` with [`METRICS_TOKEN`] (for an app spawned with [`PUBLIC_METRICS`]).
    pub async fn scrape_metrics(&self) -> reqwest::Response {
        self.http.get(self.url("/metrics")).bearer_auth(METRICS_TOKEN).send().await.expect("request")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Runs the outbox worker until nothing is due.
    pub async fn drain_outbox(&self) -> Step {
        let mut total = Step::default();
        loop {
            let step = self.worker.run_once(&self.never_stop).await.expect("outbox step");
            total.sent += step.sent;
            total.retried += step.retried;
            total.failed += step.failed;
            total.relay_down |= step.relay_down;
            if !step.claimed_any() || step.relay_down {
                return total;
            }
        }
    }

    pub async fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(self.url(path)).form(pairs).send().await.expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.http.post(self.url(path)).json(body).send().await.expect("request")
    }

    /// Subscribes `email` to `list` through the public form with consent.
    pub async fn subscribe(&self, email: &str, list: &str) -> reqwest::Response {
        self.post_form("/subscribe", &[("email", email), ("lists", list), ("consent", list)]).await
    }

    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, self.url(&format!("/api/v1{path}"))).bearer_auth(&self.api_token)
    }

    pub async fn api_get(&self, path: &str) -> serde_json::Value {
        let res = self.api(reqwest::Method::GET, path).send().await.expect("request");
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.json().await.expect("json")
    }

    /// The subscriber with this address, as the API shows it.
    pub async fn subscriber(&self, email: &str) -> serde_json::Value {
        self.api_get(&format!("/subscribers?email={}", urlencode(email))).await
    }

    /// Status of `email` on `list` ("none" if no subscription).
    pub async fn status(&self, email: &str, list: &str) -> String {
        let s = self.subscriber(email).await;
        s["subscriptions"]
            .as_array()
            .and_then(|subs| subs.iter().find(|x| x["list"] == list))
            .and_then(|x| x["status"].as_str())
            .unwrap_or("none")
            .to_owned()
    }

    pub async fn ledger(&self, email: &str) -> Vec<serde_json::Value> {
        let id = self.subscriber(email).await["id"].as_str().expect("id").to_owned();
        self.api_get(&format!("/subscribers/{id}/consent")).await.as_array().expect("array").clone()
    }

    /// Creates a public list through the API.
    pub async fn create_list(&self, slug: &str, name: &str) -> serde_json::Value {
        let res = self
            .api(reqwest::Method::POST, "/lists")
            .json(&serde_json::json!({ "slug": slug, "name": name }))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 201);
        res.json().await.expect("json")
    }

    /// An unsubscribe token for (email, list), as bulk mail will carry it.
    pub async fn unsubscribe_token(&self, email: &str, list: &str) -> String {
        let s = self.subscriber(email).await;
        let subscriber = uuid::Uuid::parse_str(s["id"].as_str().expect("id")).expect("uuid");
        let l = self.api_get(&format!("/lists/{list}")).await;
        let list = uuid::Uuid::parse_str(l["id"].as_str().expect("id")).expect("uuid");
        tidings::domain::SignedToken::unsubscribe(subscriber, list).encode(&self.ctx.secret_key)
    }

    /// Adds `n` confirmed subscribers `{prefix}{i}@example.org` to `list`
    /// straight through the store (fast set-up for bulk tests).
    pub async fn confirmed_subscribers(&self, prefix: &str, n: usize, list: &str) {
        seed_confirmed(&self.ctx.store, &self.ctx.address_key, self.ctx.clock.now(), prefix, n, list).await;
    }

    /// Creates an update through the API and returns its id.
    pub async fn create_update(&self, subject: &str, body: &str, lists: &[&str]) -> String {
        let res = self
            .api(reqwest::Method::POST, "/updates")
            .json(&serde_json::json!({"subject": subject, "body_markdown": body, "lists": lists}))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 201);
        let v: serde_json::Value = res.json().await.expect("json");
        v["id"].as_str().expect("id").to_owned()
    }

    /// Runs delivery steps (moving the clock past backoffs) until the update
    /// is no longer sending, or `max_steps` is reached.
    pub async fn drive_delivery(&self, update_id: &str, max_steps: usize) -> tidings::workers::delivery::Step {
        let mut total = tidings::workers::delivery::Step::default();
        for _ in 0..max_steps {
            let step = self.delivery.run_once(&self.never_stop).await.expect("delivery step");
            total.sent += step.sent;
            total.retried += step.retried;
            total.failed += step.failed;
            total.bounced += step.bounced;
            total.finished += step.finished;
            total.relay_down |= step.relay_down;
            let status =
                self.api_get(&format!("/updates/{update_id}")).await["status"].as_str().unwrap_or("").to_owned();
            if status != "sending" || step.relay_down {
                break;
            }
            if !step.did_work() {
                self.ctx.clock.advance(std::time::Duration::from_secs(3600));
            }
        }
        total
    }

    /// One pass of the delivery worker: at most one batch per update that is sending.
    pub async fn delivery_step(&self) -> tidings::workers::delivery::Step {
        self.delivery.run_once(&self.never_stop).await.expect("delivery step")
    }

    /// The app's mail transport, for extra workers.
    pub fn worker_transport(&self) -> tidings::mail::Transport {
        self.transport.clone()
    }

    pub async fn stats(&self, update_id: &str) -> serde_json::Value {
        self.api_get(&format!("/updates/{update_id}/stats")).await
    }

    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Adds an organiser account (as `tidings user add` does); returns its
    /// password.
    pub async fn add_organiser(&self, email: &str, role: tidings::services::accounts::Role) -> String {
        let password = format!("a long passphrase for {email}");
        tidings::services::accounts::add_user(&self.ctx.store, &self.ctx.clock, email, &password, role)
            .await
            .expect("add organiser");
        password
    }

    /// A cookie-keeping client logged in to `/admin` as a new admin.
    pub async fn login_as_admin(&self) -> crate::admin::AdminClient {
        self.login_as_new("admin@hospital.test", tidings::services::accounts::Role::Admin).await
    }

    /// A cookie-keeping client logged in to `/admin` as a new editor.
    pub async fn login_as_editor(&self) -> crate::admin::AdminClient {
        self.login_as_new("editor@hospital.test", tidings::services::accounts::Role::Editor).await
    }

    async fn login_as_new(&self, email: &str, role: tidings::services::accounts::Role) -> crate::admin::AdminClient {
        let password = self.add_organiser(email, role).await;
        let client = crate::admin::AdminClient::new(self);
        let res = client.log_in(email, &password).await;
        assert_eq!(res.status, 303, "login as {email}: {}", res.body);
        client
    }

    /// Creates a schedule through the API (expecting 201) and returns it.
    pub async fn create_schedule(&self, schedule: &serde_json::Value) -> serde_json::Value {
        let res = self.api(reqwest::Method::POST, "/schedules").json(schedule).send().await.expect("request");
        let status = res.status();
        let body: serde_json::Value = res.json().await.expect("json");
        assert_eq!(status, 201, "{body}");
        body
    }

    /// One scheduler step, as the worker takes it.
    pub async fn run_scheduler(&self) -> tidings::workers::scheduler::Step {
        self.scheduler.run_once(&self.never_stop).await.expect("scheduler step")
    }

    /// Moves the clock forward to `at` (it cannot go back).
    pub fn advance_clock_to(&self, at: chrono::DateTime<chrono::Utc>) {
        let by = (at - self.ctx.clock.now()).to_std().expect("the clock only moves forward");
        self.ctx.clock.advance(by);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The text part of a captured message, decoded.
pub fn text_body(mail: &CapturedMail) -> String {
    let parsed = mail_parser::MessageParser::default().parse(&mail.data).expect("parsable mail");
    parsed.body_text(0).expect("text part").into_owned()
}

/// The HTML part of a captured message, decoded.
pub fn html_body(mail: &CapturedMail) -> String {
    let parsed = mail_parser::MessageParser::default().parse(&mail.data).expect("parsable mail");
    parsed.body_html(0).expect("html part").into_owned()
}

/// A header's raw value.
pub fn header(mail: &CapturedMail, name: &str) -> Option<String> {
    let parsed = mail_parser::MessageParser::default().parse(&mail.data)?;
    parsed.header_raw(name).map(|v| v.trim().to_owned())
}

/// The confirmation token from a confirmation mail.
pub fn confirm_token(mail: &CapturedMail) -> String {
    let text = text_body(mail);
    let start = text.find("/confirm/").expect("a confirm link") + "/confirm/".len();
    text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').collect()
}

/// `raw` as askama escapes it in HTML.
pub fn html_escaped(raw: &str) -> String {
    raw.replace('&', "&#38;").replace('<', "&#60;").replace('>', "&#62;").replace('"', "&#34;").replace('\'', "&#39;")
}

/// Adds `n` confirmed subscribers `{prefix}{i}@example.org` ("Backer {i}")
/// to `list`, in one transaction.
pub async fn seed_confirmed(
    store: &tidings::store::Store,
    key: &tidings::domain::AddressKey,
    now: chrono::DateTime<chrono::Utc>,
    prefix: &str,
    n: usize,
    list: &str,
) {
    let mut tx = store.write().await.expect("tx");
    let list = tx.list_by_slug(list).await.expect("list").expect("list exists");
    for i in 0..n {
        let email = format!("{prefix}{i}@example.org");
        let row = tidings::store::SubscriberRow {
            id: uuid::Uuid::now_v7(),
            email: email.clone(),
            email_norm: email,
            name: format!("Backer {i}"),
            attributes: "{}".into(),
            created_at: now,
            updated_at: now,
        };
        tx.insert_subscriber(&row, &key.fingerprint(&row.email_norm)).await.expect("insert");
        tx.set_subscription_status(row.id, list.id, tidings::domain::SubscriptionStatus::Confirmed, now)
            .await
            .expect("subscribe");
    }
    tx.commit().await.expect("commit");
}
