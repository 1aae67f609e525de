//! Checklist item 26 — RFC 2919 `List-Id` is well-formed for any list name:
//! the phrase is a quoted string or RFC 2047 encoded words, the id comes
//! from the slug, the header is 7-bit, and a crafted name cannot plant a
//! second id (RFC 2919, 2047). (Moved here from `honoured.rs`.)

use crate::both_backends;
use crate::honoured::{confirmed_on, the_copy};
use crate::support::app::{Db, TestApp, header, text_body};
use crate::support::smtp::CapturedMail;

both_backends!(list_id_is_well_formed_for_any_name_and_cannot_be_planted);

/// The `List-Id` of a received mail as a parser reads it: (phrase, id) of
/// each address in it.
fn list_ids(mail: &CapturedMail) -> Vec<(String, String)> {
    let parsed = mail_parser::MessageParser::default().parse(&mail.data).expect("parsable mail");
    match parsed.list_id() {
        mail_parser::HeaderValue::Address(mail_parser::Address::List(addrs)) => addrs
            .iter()
            .map(|a| {
                (a.name.as_deref().unwrap_or_default().to_owned(), a.address.as_deref().unwrap_or_default().to_owned())
            })
            .collect(),
        other => panic!("List-Id did not parse as one id: {other:?}"),
    }
}

async fn list_id_is_well_formed_for_any_name_and_cannot_be_planted(db: Db) {
    let app = TestApp::spawn(db).await;
    let names = [
        ("cafe", "Café news – Cymru"),
        ("planted", "News\" <evil.example> \""),
        ("quoted", "Save \"Our\" Hospital \\ Leeds"),
        ("long", "Ymgyrch i achub ysbyty’r dref — newyddion, dyddiadau a chyfarfodydd"),
    ];
    for (slug, name) in names {
        app.create_list(slug, name).await;
        confirmed_on(&app, &format!("{slug}@example.org"), &[slug]).await;
        let mail = the_copy(&app, &format!("{slug}@example.org"), &format!("News for {slug}"), &[slug]).await;
        let raw = String::from_utf8_lossy(&mail.data).into_owned();
        let head = &raw[..raw.find("\r\n\r\n").unwrap()];
        assert!(head.is_ascii(), "headers are 7-bit: {head}");
        assert!(!head.contains("evil.example>"), "no planted id: {head}");
        assert_eq!(
            list_ids(&mail),
            [(name.to_owned(), format!("{slug}.tidings.test"))],
            "the name decodes exactly and the id is the slug's: {:?}",
            header(&mail, "List-Id")
        );
        let text = text_body(&mail);
        assert!(text.contains(&format!("subscribed to “{name}” from")), "{text}");
    }
}
