//! Subscribes that arrive together share one commit (group commit), and
//! each still gets exactly its own answer and its own records.

use crate::both_backends;
use crate::support::app::{Db, TestApp};
use std::collections::BTreeMap;

both_backends!(many_concurrent_subscribes_each_get_their_own_answer_and_records,);

async fn many_concurrent_subscribes_each_get_their_own_answer_and_records(db: Db) {
    const PEOPLE: usize = 120;
    let app = TestApp::spawn_with(db, &[("TIDINGS_SUBSCRIBE_LIMIT_PER_IP", "0")]).await;
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
        assert_eq!(requested, 2, "{email}: one ledger entry per request");
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
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let batched = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tidings_subscribe_batch_size_sum "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert_eq!(batched, Some(requests.len() as f64), "{metrics}");
}
