//! The store conformance suite: the same checks against SQLite and
//! PostgreSQL, straight on the store interface.

use crate::both_backends;
use crate::support::app::Db;
use chrono::{Duration, Utc};
use tidings::clock::Clock;
use tidings::domain::{ConsentKind, LedgerEntryKind, MailKind};
use tidings::store::{NewConsentEvent, NewOutboxMessage, OutboxBody, Store, StoreError, SubscriberRow};
use uuid::Uuid;

both_backends!(
    migrations_are_idempotent_and_setup_runs_once,
    the_ledger_is_append_only_and_published_texts_are_immutable,
    addresses_are_unique_whatever_their_case,
    timestamps_round_trip_exactly,
    concurrent_claims_never_share_an_outbox_message,
    an_expired_lease_is_claimed_again,
    a_confirmation_token_is_used_at_most_once_under_concurrency,
);

async fn store(db: &Db) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = db.fresh_url(dir.path()).await;
    let store = Store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

fn config() -> tidings::config::Config {
    tidings::config::Config::from_map(&Default::default()).unwrap()
}

async fn subscriber(store: &Store, email: &str) -> SubscriberRow {
    let now = Clock::system().now();
    let row = SubscriberRow {
        id: Uuid::now_v7(),
        email: email.to_owned(),
        email_norm: email.to_lowercase(),
        name: String::new(),
        attributes: "{}".into(),
        created_at: now,
        updated_at: now,
    };
    let mut tx = store.write().await.unwrap();
    tx.insert_subscriber(&row, &format!("fingerprint of {}", row.email_norm)).await.unwrap();
    tx.commit().await.unwrap();
    row
}

async fn migrations_are_idempotent_and_setup_runs_once(db: Db) {
    let (store, _dir) = store(&db).await;
    store.migrate().await.unwrap();
    let clock = Clock::system();
    let key1 = tidings::services::setup::bootstrap(&store, &clock, &config()).await.unwrap();
    let key2 = tidings::services::setup::bootstrap(&store, &clock, &config()).await.unwrap();
    assert_eq!(key1, key2, "the generated secret key is kept");
    assert_eq!(key1.len(), 64);
    let mut tx = store.read().await.unwrap();
    assert_eq!(tx.lists().await.unwrap().len(), 1, "one default list, created once");
    let notice = tx.current_privacy_notice(clock.now()).await.unwrap().unwrap();
    assert_eq!(notice.version, 1);
    assert_eq!(notice.sha256, tidings::domain::sha256_hex(&notice.body));
    assert!(notice.body.starts_with(tidings::services::setup::DEFAULT_MARKER));
}

async fn the_ledger_is_append_only_and_published_texts_are_immutable(db: Db) {
    let (store, _dir) = store(&db).await;
    let clock = Clock::system();
    tidings::services::setup::bootstrap(&store, &clock, &config()).await.unwrap();
    let s = subscriber(&store, "led@example.org").await;
    let mut tx = store.write().await.unwrap();
    let list = tx.list_by_slug("updates").await.unwrap().unwrap();
    let statement = tx.current_statement(list.id).await.unwrap().unwrap();
    tx.append_consent_event(&NewConsentEvent {
        subscriber_id: s.id,
        list_id: list.id,
        kind: ConsentKind::Requested,
        statement_id: Some(statement.id),
        notice_version: Some(statement.notice_version),
        occurred_at: clock.now(),
        ip: None,
        user_agent: None,
        source: None,
        actor: "supporter".into(),
        detail: None,
        controller_name: None,
        controller_contact: None,
        basis_kind: None,
    })
    .await
    .unwrap();
    // A wording nobody's evidence names yet (a newer notice, and a newer
    // statement tied to it).
    let notice = tx.publish_privacy_notice(None, "Newer notice", "x", clock.now(), clock.now()).await.unwrap();
    let unused = tx.publish_statement(list.id, "Newer wording", "y", notice.version, clock.now()).await.unwrap();
    tx.commit().await.unwrap();

    let refusal = |sql: &'static str| {
        let store = store.clone();
        async move {
            let outcome = match &store {
                Store::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
                Store::Postgres(p) => sqlx::query(sql).execute(p).await.map(|r| r.rows_affected()),
            };
            match outcome {
                Ok(n) => panic!("{sql} must be refused, but changed {n} rows"),
                Err(e) => e.to_string(),
            }
        }
    };
    // Every change to the ledger or to wording it names is refused, with
    // the trigger's own reason (not any error: a typo would pass that).
    for (sql, reason) in [
        ("UPDATE consent_events SET kind = 'confirmed'", "append-only"),
        ("UPDATE privacy_notices SET body = 'rewritten'", "immutable"),
        ("UPDATE consent_statements SET body = 'rewritten'", "immutable"),
        ("DELETE FROM consent_statements", "a ledger entry refers to this statement"),
        ("DELETE FROM privacy_notices", "a ledger entry refers to this notice"),
    ] {
        let error = refusal(sql).await;
        assert!(error.contains(reason), "{sql}: refused for the wrong reason: {error}");
    }
    if let Store::Postgres(p) = &store {
        // TRUNCATE skips row triggers; it is refused on its own.
        for sql in ["TRUNCATE consent_statements CASCADE", "TRUNCATE privacy_notices CASCADE"] {
            let error = sqlx::query(sql).execute(p).await.expect_err(sql).to_string();
            assert!(error.contains("ledger entries refer to it"), "{sql}: {error}");
        }
    }

    // Wording no entry names may still go (Tidings itself never deletes
    // any; nothing stops an operator tidying an unused row).
    let deleted = match &store {
        Store::Sqlite(p) => {
            { sqlx::query("DELETE FROM consent_statements WHERE id = $1").bind(unused.id).execute(p).await.unwrap() }
                .rows_affected()
        }
        Store::Postgres(p) => {
            { sqlx::query("DELETE FROM consent_statements WHERE id = $1").bind(unused.id).execute(p).await.unwrap() }
                .rows_affected()
        }
    };
    assert_eq!(deleted, 1);

    let mut tx = store.read().await.unwrap();
    let ledger = tx.consent_events(s.id).await.unwrap();
    assert_eq!(ledger[0].kind, LedgerEntryKind::Consent(ConsentKind::Requested));
    assert_eq!(ledger[0].statement_text.as_deref(), Some(statement.body.as_str()), "the wording is still there");
    assert!(ledger[0].notice_sha256.is_some(), "the notice is still there");
}

async fn addresses_are_unique_whatever_their_case(db: Db) {
    let (store, _dir) = store(&db).await;
    subscriber(&store, "Uma@Example.org").await;
    let now = Utc::now();
    let dup = SubscriberRow {
        id: Uuid::now_v7(),
        email: "uma@example.ORG".into(),
        email_norm: "uma@example.org".into(),
        name: String::new(),
        attributes: "{}".into(),
        created_at: now,
        updated_at: now,
    };
    let mut tx = store.write().await.unwrap();
    assert!(matches!(tx.insert_subscriber(&dup, "another fingerprint").await, Err(StoreError::Conflict(_))));
}

async fn timestamps_round_trip_exactly(db: Db) {
    let (store, _dir) = store(&db).await;
    let s = subscriber(&store, "time@example.org").await;
    let mut tx = store.read().await.unwrap();
    let back = tx.subscriber_by_id(s.id).await.unwrap().unwrap();
    assert_eq!(back.created_at, s.created_at);
}

async fn enqueue(store: &Store, n: usize) {
    let now = Clock::system().now();
    let mut tx = store.write().await.unwrap();
    for i in 0..n {
        tx.enqueue_mail(
            &NewOutboxMessage {
                kind: MailKind::Test,
                recipient: format!("r{i}@example.org"),
                message_id: format!("<{i}@test>"),
                body: OutboxBody::Message(b"Subject: t\r\n\r\nhi\r\n".to_vec()),
            },
            now,
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

async fn concurrent_claims_never_share_an_outbox_message(db: Db) {
    let (store, _dir) = store(&db).await;
    enqueue(&store, 60).await;
    let now = Utc::now() + Duration::seconds(1);
    let mut handles = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut tx = store.write().await.unwrap();
            let rows = tx.claim_outbox(now, now + Duration::minutes(5), 20).await.unwrap();
            tx.commit().await.unwrap();
            assert!(rows.len() <= 20, "a claim respects its limit: {}", rows.len());
            rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
        }));
    }
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    for h in handles {
        for id in h.await.unwrap() {
            total += 1;
            assert!(seen.insert(id), "a message was claimed twice");
        }
    }
    assert_eq!(total, 60, "four claims of 20 share out all 60");
}

async fn an_expired_lease_is_claimed_again(db: Db) {
    let (store, _dir) = store(&db).await;
    enqueue(&store, 3).await;
    let now = Utc::now() + Duration::seconds(1);
    let mut tx = store.write().await.unwrap();
    assert_eq!(tx.claim_outbox(now, now + Duration::minutes(5), 10).await.unwrap().len(), 3);
    assert_eq!(tx.claim_outbox(now, now + Duration::minutes(5), 10).await.unwrap().len(), 0, "leased");
    let later = now + Duration::minutes(6);
    let again = tx.claim_outbox(later, later + Duration::minutes(5), 10).await.unwrap();
    assert_eq!(again.len(), 3, "a dead worker's lease expires");
    assert!(again.iter().all(|r| r.attempts == 2));
    tx.commit().await.unwrap();
}

async fn a_confirmation_token_is_used_at_most_once_under_concurrency(db: Db) {
    let (store, _dir) = store(&db).await;
    let clock = Clock::system();
    tidings::services::setup::bootstrap(&store, &clock, &config()).await.unwrap();
    let s = subscriber(&store, "once@example.org").await;
    let now = clock.now();
    {
        let mut tx = store.write().await.unwrap();
        let list = tx.list_by_slug("updates").await.unwrap().unwrap();
        tx.insert_confirmation_token("hash-1", s.id, &[list.id], now, now + Duration::hours(1)).await.unwrap();
        tx.commit().await.unwrap();
    }
    let mut handles = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut tx = store.write().await.unwrap();
            let used = tx.use_confirmation_token("hash-1", now + Duration::seconds(1)).await.unwrap();
            tx.commit().await.unwrap();
            used.is_some()
        }));
    }
    let mut winners = 0;
    for h in handles {
        winners += usize::from(h.await.unwrap());
    }
    assert_eq!(winners, 1);
    let mut tx = store.read().await.unwrap();
    assert!(tx.live_confirmation_token("hash-1", now).await.unwrap().is_none());
}

/// sqlx sets `TCP_NODELAY` on its PostgreSQL sockets (0.9.0 did not; 0.9.1
/// does again, so Tidings no longer sets it itself). Without it a statement
/// longer than one TCP segment can have its last segment held back by
/// Nagle's algorithm until the server's delayed ACK, 40 ms on Linux. The
/// server names the client port of one of the app pool's connections; the
/// socket with that port among this process's descriptors must have the
/// option set.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_have_tcp_nodelay_set() {
    let Some(db) = Db::postgres() else { return };
    let (store, _dir) = store(&db).await;
    let Store::Postgres(pool) = &store else { unreachable!("Db::postgres gives a PostgreSQL store") };
    let mut conn = pool.acquire().await.unwrap();
    let (client, server): (Option<i32>, Option<i32>) =
        sqlx::query_as("SELECT inet_client_port(), inet_server_port()").fetch_one(&mut *conn).await.unwrap();
    let (Some(client), Some(server)) = (client, server) else {
        panic!("TEST_DATABASE_URL must reach PostgreSQL over TCP for this test, not a Unix socket")
    };
    let nodelay = nodelay_of_socket(u16::try_from(client).unwrap(), u16::try_from(server).unwrap());
    assert_eq!(nodelay, Some(true), "TCP_NODELAY of the pool's connection (None: socket not found)");
}

/// `TCP_NODELAY` of this process's TCP socket from local port `local` to
/// peer port `peer`, if there is one. Read-only.
#[cfg(target_os = "linux")]
fn nodelay_of_socket(local: u16, peer: u16) -> Option<bool> {
    use std::os::fd::{BorrowedFd, RawFd};
    let port = |a: std::io::Result<socket2::SockAddr>| a.ok().and_then(|a| a.as_socket()).map(|a| a.port());
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Some(raw) = entry.file_name().to_str().and_then(|n| n.parse::<RawFd>().ok()) else { continue };
        if !std::fs::read_link(entry.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:")) {
            continue;
        }
        // SAFETY: the descriptor was open a moment ago and is only borrowed
        // for the read-only calls below. The connection under test stays
        // open (held by the test); were another test's descriptor closed
        // meanwhile, the calls fail with EBADF or read whatever reuses the
        // number, and the two port checks keep that from matching.
        let fd = unsafe { BorrowedFd::borrow_raw(raw) };
        let socket = socket2::SockRef::from(&fd);
        if port(socket.local_addr()) == Some(local) && port(socket.peer_addr()) == Some(peer) {
            return socket.tcp_nodelay().ok();
        }
    }
    None
}
