//! Item 28: an ARF complaint is applied only when it is tied to a copy
//! Tidings sent; its DKIM signature is verified when present (against the
//! key published in DNS) and the result recorded and shown. Source: RFC 5965,
//! RFC 6591, RFC 6376.

use crate::both_backends;
use crate::forged_reports::{ProviderKey, assert_unchanged, event_about, report, send_update, suppressed};
use crate::support::app::{Db, TestApp};
use crate::support::pop3::TestPop3;
use tidings::workers::bounce_mailbox::BounceMailboxWorker;

both_backends!(an_arf_complaint_is_applied_only_when_tied_and_its_dkim_result_is_recorded);

async fn an_arf_complaint_is_applied_only_when_tied_and_its_dkim_result_is_recorded(db: Db) {
    let key = ProviderKey::generate();
    let dns = crate::support::dns::TestDns::start();
    dns.txt("fbl._domainkey.mailbox.example", &key.txt);
    let pop3 = TestPop3::start("bounces", "mailbox-password");
    let server = dns.server();
    let app = TestApp::spawn_with(
        db,
        // The one DNS setting serves abuse reports too (the older
        // TIDINGS_REPORT_DNS_SERVER is left unset).
        &[("TIDINGS_BOUNCE_MAILBOX_URL", pop3.url().as_str()), ("TIDINGS_DNS_SERVER", server.as_str())],
    )
    .await;
    let worker = BounceMailboxWorker::new(app.ctx.clone()).unwrap().expect("a mailbox is configured");
    app.confirmed_subscribers("k", 4, "updates").await;
    let (_, copies) = send_update(&app, "ARF ties").await;
    let (signed, tampered, unsigned, untied) = ("k0@example.org", "k1@example.org", "k2@example.org", "k3@example.org");
    let arf = |who: &str, message_id: &str, id: &str| {
        report("arf-complaint.eml", who, message_id, id).replace("{{to}}", "news@hospital.test")
    };

    // Signed by the provider, quoting our Message-ID: applied, verified.
    pop3.deliver(key.sign(&arf(signed, &copies[signed].message_id, "fbl-1"), "mailbox.example").as_bytes());
    // Signed, then altered on the way: applied (it is tied), DKIM failed.
    let altered = key
        .sign(&arf(tampered, &copies[tampered].message_id, "fbl-2"), "mailbox.example")
        .replace("FW: The ward stays open", "FW: The ward stays shut");
    pop3.deliver(altered.as_bytes());
    // Unsigned but tied: applied, recorded as not signed.
    pop3.deliver(arf(unsigned, &copies[unsigned].message_id, "fbl-3").as_bytes());
    // Signed and verified, but naming the subscriber only by address: held.
    pop3.deliver(key.sign(&arf(untied, "<123@mailbox.example>", "fbl-4"), "mailbox.example").as_bytes());

    let (_, never_stop) = tokio::sync::watch::channel(false);
    let step = worker.run_once(&never_stop).await.unwrap();
    assert_eq!(step.deleted, 4, "{step:?}");

    for who in [signed, tampered, unsigned] {
        assert_eq!(app.status(who, "updates").await, "complained", "{who}");
        assert!(suppressed(&app, who).await, "{who}");
    }
    assert_unchanged(&app, untied).await;

    let dkim = |e: &tidings::store::BounceEventRow| (e.dkim.clone(), e.dkim_domain.clone());
    let verified = (Some("pass".to_owned()), Some("mailbox.example".to_owned()));
    assert_eq!(dkim(&event_about(&app, signed).await), verified);
    assert_eq!(dkim(&event_about(&app, tampered).await), (Some("fail".into()), Some("mailbox.example".into())));
    assert_eq!(dkim(&event_about(&app, unsigned).await).0.as_deref(), Some("none"));
    let held = event_about(&app, untied).await;
    assert_eq!((held.outcome.as_str(), dkim(&held)), ("review", verified));

    let editor = app.login_as_editor().await;
    let page = editor.get("/admin/bounces?kind=complaint").await;
    assert_eq!(page.status, 200);
    for shown in ["verified", "<strong>failed</strong>", "not signed", "d=mailbox.example", "held for review"] {
        assert!(page.body.contains(shown), "{shown}: {}", page.body);
    }
}
