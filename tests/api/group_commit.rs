//! Subscribes that arrive together share one commit (group commit), and
//! each still gets exactly its own answer and its own records.

use crate::both_backends;
use crate::support::app::{Db, PUBLIC_METRICS, TestApp};
use std::collections::BTreeMap;

both_backends!(
    many_concurrent_subscribes_each_get_their_own_answer_and_records,
    a_batch_mixing_new_pending_and_confirmed_people_writes_each_as_alone,
);

async fn many_concurrent_subscribes_each_get_their_own_answer_and_records(db: Db) {
    const PEOPLE: usize = 120;
    let app =
        TestApp::spawn_with(db, &[("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "0"), PUBLIC_METRICS[0], PUBLIC_METRICS[1]]).await;
    // Everyone at once: PEOPLE new addresses, each twice (the second
    // request in the same moment must not mail twice or fail), and
    // requests for a list that does not exist, which must fail alone
    // without undoing the requests committed beside them.
    let mut requests = Vec::new();
    for i in 0..PEOPLE {
        let email = format!("crowd{i}@example.org");
        for _ in 0..2 {
            requests.push((email.clone(), "updates"));
        }
        if i % 4 == 0 {
            requests.push((format!("lost{i}@example.org"), "no-such-list"));
        }
    }
    let answers = futures_util::future::join_all(requests.iter().map(|(email, list)| {
        app.http
            .post(app.url("/subscribe"))
            .header("accept", "application/json")
            .form(&[("email", email.as_str()), ("lists", list), ("consent", "on")])
            .send()
    }))
    .await;
    for ((email, list), answer) in requests.iter().zip(answers) {
        let answer = answer.unwrap();
        let status = answer.status().as_u16();
        let body: serde_json::Value = answer.json().await.unwrap();
        if *list == "updates" {
            assert_eq!((status, body["status"].as_str()), (202, Some("pending")), "{email}: {body}");
        } else {
            assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid")), "{email}: {body}");
        }
    }

    for i in 0..PEOPLE {
        let email = format!("crowd{i}@example.org");
        assert_eq!(app.status(&email, "updates").await, "pending");
        let requested = app.ledger(&email).await.iter().filter(|e| e["kind"] == "requested").count();
        // Two requests within the resend interval: one entry (issue 16 §2).
        assert_eq!(requested, 1, "{email}: one ledger entry per resend interval, in a batch too");
        let lost = app.api(reqwest::Method::GET, &format!("/subscribers?email=lost{i}@example.org")).send().await;
        assert_eq!(lost.unwrap().status(), 404, "a failed request leaves nothing behind");
    }

    // One confirmation mail per person, however many requests arrived.
    assert_eq!(app.drain_outbox().await.sent, PEOPLE);
    let mut per_person: BTreeMap<String, usize> = BTreeMap::new();
    for mail in app.smtp.messages() {
        for to in mail.to {
            *per_person.entry(to).or_default() += 1;
        }
    }
    assert_eq!(per_person.len(), PEOPLE);
    assert!(per_person.values().all(|&n| n == 1), "{per_person:?}");

    // Every request that reached the queue was counted in some batch.
    let metrics = app.scrape_metrics().await.text().await.unwrap();
    let batched = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tidings_subscribe_batch_size_sum "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert_eq!(batched, Some(requests.len() as f64), "{metrics}");
}

/// Confirmed people asking again (only noted), pending people asking again
/// (no second ledger entry and no second mail within the resend interval)
/// and new people, all at once: a batch writes these with one script, whose
/// statements must neither miss nor double anyone.
async fn a_batch_mixing_new_pending_and_confirmed_people_writes_each_as_alone(db: Db) {
    const EACH: usize = 40;
    let app = TestApp::spawn_with(db, &[("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "0")]).await;
    app.confirmed_subscribers("loyal", EACH, "updates").await;
    for i in 0..EACH {
        assert_eq!(app.subscribe(&format!("waiting{i}@example.org"), "updates").await.status(), 200);
    }
    assert_eq!(app.drain_outbox().await.sent, EACH, "one confirmation per waiting person");

    let emails: Vec<String> = (0..EACH)
        .flat_map(|i| {
            [format!("loyal{i}@example.org"), format!("waiting{i}@example.org"), format!("fresh{i}@example.org")]
        })
        .collect();
    let answers = futures_util::future::join_all(emails.iter().map(|email| app.subscribe(email, "updates"))).await;
    for (email, answer) in emails.iter().zip(answers) {
        assert_eq!(answer.status(), 200, "{email}: the same answer for everyone");
    }

    for i in 0..EACH {
        let loyal = format!("loyal{i}@example.org");
        assert_eq!(app.status(&loyal, "updates").await, "confirmed", "{loyal}: asking again changes nothing");
        assert!(app.ledger(&loyal).await.iter().all(|e| e["kind"] != "requested"), "{loyal}: nothing to record");
        for (email, requests) in [(format!("waiting{i}@example.org"), 1), (format!("fresh{i}@example.org"), 1)] {
            assert_eq!(app.status(&email, "updates").await, "pending", "{email}");
            let ledger = app.ledger(&email).await;
            assert_eq!(ledger.iter().filter(|e| e["kind"] == "requested").count(), requests, "{email}: {ledger:?}");
        }
    }
    // Only the new people are mailed: the waiting ones were mailed within
    // the resend interval, the loyal ones are confirmed already.
    assert_eq!(app.drain_outbox().await.sent, EACH);
    let fresh_mails = app.smtp.messages().iter().filter(|m| m.to.iter().any(|t| t.starts_with("fresh"))).count();
    assert_eq!(fresh_mails, EACH);
}
