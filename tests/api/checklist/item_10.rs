//! Checklist item 10 — every bulk mail carries a working unsubscribe link
//! in its body, in the text and the HTML part (PECR reg 22(3)(b), 23).

use super::common::{copies, send_update};
use crate::both_backends;
use crate::support::app::{Db, TestApp, html_body, text_body};

both_backends!(every_bulk_mail_body_has_an_unsubscribe_link_that_works);

async fn every_bulk_mail_body_has_an_unsubscribe_link_that_works(db: Db) {
    let app = TestApp::spawn(db).await;
    app.confirmed_subscribers("reader", 3, "updates").await;
    send_update(&app, "Ward news", &["updates"]).await;

    for i in 0..3 {
        let email = format!("reader{i}@example.org");
        let mail = copies(&app, &email, "Ward news").pop().expect("a copy");
        let text = text_body(&mail);
        let line = text.lines().find(|l| l.starts_with("Unsubscribe: ")).expect("an unsubscribe line");
        let link = line.trim_start_matches("Unsubscribe: ").trim();
        let path = link.strip_prefix("http://tidings.test").expect("our own link").to_owned();
        assert!(path.starts_with("/unsubscribe/"), "{path}");
        assert!(html_body(&mail).contains(&format!("href=\"{link}\"")), "the HTML part links it too");
        if i == 0 {
            // It works: a page with a button, then the press unsubscribes.
            let page = app.http.get(app.url(&path)).send().await.unwrap();
            assert_eq!(page.status(), 200);
            assert_eq!(app.post_form(&path, &[]).await.status(), 200);
            assert_eq!(app.status(&email, "updates").await, "unsubscribed");
        }
    }
    assert_eq!(app.status("reader1@example.org", "updates").await, "confirmed", "each link is personal");
}
