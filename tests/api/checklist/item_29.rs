//! Item 29: forged reports change nothing. A complaint report with a forged
//! VERP tag, one sent to postmaster with no tag, and a DSN sent to an
//! arbitrary address at the domain, each naming a real subscriber, leave
//! that subscriber as they were (no suppression, no status change, no
//! ledger entry) and wait on the bounces page for review. Source: RFC 3464
//! §6 and RFC 5965 §8 security considerations.

use crate::both_backends;
use crate::forged_reports::{assert_unchanged, cli_ingest, event_about, forge_tag, ingest, report, send_update};
use crate::support::app::{Db, TestApp, header, html_escaped};
use tidings::services::bounces::{Class, Outcome};

both_backends!(forged_reports_to_the_bounce_path_change_nothing_and_wait_for_review);

async fn forged_reports_to_the_bounce_path_change_nothing_and_wait_for_review(db: Db) {
    let app = TestApp::spawn_with(
        db,
        &[("TIDINGS_VERP_DOMAIN", "bounces.hospital.test"), ("TIDINGS_FROM", "Save Our Hospital <news@hospital.test>")],
    )
    .await;
    app.confirmed_subscribers("f", 3, "updates").await;
    let (_, copies) = send_update(&app, "Forgery").await;
    let (verp_victim, postmaster_victim, domain_victim) = ("f0@example.org", "f1@example.org", "f2@example.org");

    // An unsigned complaint to a VERP address of the right form whose tag
    // does not verify.
    let forged = forge_tag(&copies[verp_victim].return_path);
    assert!(forged.starts_with("tb-") && forged != copies[verp_victim].return_path);
    let arf = report("arf-complaint.eml", verp_victim, "<abc@attacker.example>", "forged-1")
        .replace("{{to}}", &forged)
        .replace("Original-Mail-From: <news@hospital.test>", &format!("Original-Mail-From: <{forged}>"));
    let out = ingest(&app, &arf).await;
    assert_eq!(out, [Outcome::Review { class: Class::Complaint }]);

    // An unsigned complaint to postmaster, with no tag at all.
    let arf = report("arf-complaint.eml", postmaster_victim, "<def@attacker.example>", "forged-2")
        .replace("{{to}}", "postmaster@hospital.test");
    assert!(cli_ingest(&app, &arf, &[]).contains("held for review"));

    // A DSN to an arbitrary address at the domain.
    let dsn = report("hard-5.1.1.eml", domain_victim, "<ghi@attacker.example>", "forged-3")
        .replace("news@hospital.test", "whoever@hospital.test");
    assert!(cli_ingest(&app, &dsn, &[]).contains("held for review"));

    for who in [verp_victim, postmaster_victim, domain_victim] {
        assert_unchanged(&app, who).await;
        assert_eq!(event_about(&app, who).await.outcome, "review", "{who}");
    }
    let editor = app.login_as_editor().await;
    let page = editor.get("/admin/bounces?kind=review").await;
    for who in [verp_victim, postmaster_victim, domain_victim] {
        assert!(page.body.contains(&html_escaped(who)), "{who}: {}", page.body);
    }

    // The next update still reaches all three.
    send_update(&app, "After the forgeries").await;
    for who in [verp_victim, postmaster_victim, domain_victim] {
        assert!(
            app.smtp.messages_to(who).iter().any(|m| header(m, "Subject").as_deref() == Some("After the forgeries")),
            "{who} still gets mail"
        );
    }
}
