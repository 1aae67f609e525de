//! askama page templates (in `templates/`). Every value is HTML-escaped by
//! askama unless a template says otherwise; only `archive_update.html` does,
//! for a body `markdown_to_html` has already made safe.

use crate::services::FieldError;
use crate::services::supporter::{PreferenceRow, PublicList};
use askama::Template;
use askama_web::WebTemplate;

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// The group's name, for the site's header.
    pub group: String,
    pub status: u16,
    pub message: String,
    pub fields: Vec<FieldError>,
}

impl ErrorPage {
    /// The page's heading: what happened, in a few words.
    pub fn heading(&self) -> &str {
        match self.status {
            404 => "Page not found",
            410 => "This link has expired or was already used",
            429 => "Too many tries",
            422 => "Some details need correcting",
            409 => "That could not be done",
            503 => "Please try again in a moment",
            500..=599 => "Something went wrong",
            _ => "That did not work",
        }
    }
}

/// The subscribe form, as `/` and `/subscribe` show it.
#[derive(Template, WebTemplate)]
#[template(path = "subscribe.html")]
pub struct SubscribePage {
    pub group: String,
    pub heading: String,
    pub lists: Vec<PublicList>,
    pub email: String,
    pub name: String,
    pub source: String,
    /// Slugs whose consent box was ticked (kept when the form comes back
    /// with errors).
    pub ticked: Vec<String>,
    pub errors: Vec<FieldError>,
    /// A checked link back to the campaign's site (the `return` field), kept
    /// through a form that comes back with errors.
    pub return_to: String,
    /// Whether the form carries the proof-of-work challenge.
    pub challenge: crate::config::ChallengeMode,
}

impl SubscribePage {
    pub fn challenge_on(&self) -> bool {
        self.challenge != crate::config::ChallengeMode::Off
    }

    pub fn challenge_required(&self) -> bool {
        self.challenge == crate::config::ChallengeMode::Require
    }

    pub fn error_for(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }

    pub fn is_ticked(&self, slug: &str) -> bool {
        self.ticked.iter().any(|t| t == slug)
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "check_inbox.html")]
pub struct CheckInboxPage {
    pub group: String,
    /// Where "back to the campaign's site" goes, when the form named one of
    /// the configured origins.
    pub back: Option<BackLink>,
}

/// A link back to a configured campaign site.
pub struct BackLink {
    pub url: String,
    /// The site's host name, as the link's text.
    pub host: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub group: String,
    pub token: String,
    pub list_names: Vec<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "confirmed.html")]
pub struct ConfirmedPage {
    pub group: String,
    pub list_names: Vec<String>,
    pub preferences_url: String,
}

/// Where a test copy's unsubscribe and preferences links lead.
#[derive(Template, WebTemplate)]
#[template(path = "test_copy.html")]
pub struct TestCopyPage {
    pub group: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "unsubscribe.html")]
pub struct UnsubscribePage {
    pub group: String,
    pub token: String,
    /// The lists the link is for, as a phrase: “A”, “B” and “C”.
    pub lists: String,
    /// The link is for more than one list.
    pub several: bool,
    /// The lists this request took the person off, as a phrase; empty if none.
    pub left: String,
    /// More than one list was left.
    pub left_several: bool,
    pub active: bool,
    pub done: bool,
    pub preferences_url: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "preferences.html")]
pub struct PreferencesPage {
    pub group: String,
    pub token: String,
    pub email: String,
    pub name: String,
    pub lists: Vec<PreferenceRow>,
    pub saved: bool,
    /// After a save: newly ticked lists a confirmation mail went out for,
    /// as a phrase (empty if none).
    pub confirmation_sent: String,
    /// After a save: newly ticked lists whose confirmation mail had gone
    /// out shortly before, as a phrase (empty if none).
    pub confirmation_recent: String,
    /// After a save: the lists left, as a phrase (empty if none).
    pub left: String,
    /// After "Unsubscribe from everything".
    pub unsubscribed_all: bool,
    pub errors: Vec<FieldError>,
}

#[derive(Template, WebTemplate)]
#[template(path = "privacy.html")]
pub struct PrivacyPage {
    pub group: String,
    pub version: i64,
    pub effective_from: String,
    pub paragraphs: Vec<String>,
}

/// One update in the archive index, formatted for the page.
pub struct ArchiveItem {
    pub id: String,
    pub subject: String,
    pub date: String,
    pub lists: Vec<String>,
}

/// `/archive`: past updates, newest first.
#[derive(Template, WebTemplate)]
#[template(path = "archive.html")]
pub struct ArchivePage {
    pub group: String,
    pub updates: Vec<ArchiveItem>,
    /// The next (older) page, if there is one.
    pub next_url: Option<String>,
    pub feed_url: String,
}

/// `/archive/{id}`: one past update.
#[derive(Template, WebTemplate)]
#[template(path = "archive_update.html")]
pub struct ArchiveUpdatePage {
    pub group: String,
    pub subject: String,
    pub date: String,
    pub lists: Vec<String>,
    /// From `markdown_to_html` with `{{name}}` filled in as "friend":
    /// inserted unescaped.
    pub body_html: String,
}

/// One Atom entry; `updated` is RFC 3339, `content` is HTML (escaped by
/// the template, as `type="html"` requires).
pub struct AtomEntry {
    pub id: String,
    pub title: String,
    pub link: String,
    pub updated: String,
    pub content: String,
}

/// `/archive/feed.atom`: an Atom 1.0 document. The `xml` extension makes
/// askama escape every value for XML.
#[derive(Template)]
#[template(
    ext = "xml",
    source = r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<id>{{ id }}</id>
<title>{{ title }}</title>
<link rel="self" type="application/atom+xml" href="{{ self_url }}"/>
<link rel="alternate" type="text/html" href="{{ id }}"/>
<updated>{{ updated }}</updated>
<author><name>{{ title }}</name></author>
{%- for e in entries %}
<entry>
<id>{{ e.id }}</id>
<title type="text">{{ e.title }}</title>
<link rel="alternate" type="text/html" href="{{ e.link }}"/>
<updated>{{ e.updated }}</updated>
<content type="html">{{ e.content }}</content>
</entry>
{%- endfor %}
</feed>
"#
)]
pub struct AtomFeed {
    /// The archive's URL: stable, so it doubles as the feed's id.
    pub id: String,
    pub title: String,
    pub self_url: String,
    pub updated: String,
    pub entries: Vec<AtomEntry>,
}

#[derive(Template, WebTemplate)]
#[template(path = "data_copy.html")]
pub struct DataCopyPage {
    pub group: String,
    /// `requested`, `confirm` or `sent`.
    pub step: &'static str,
    pub token: String,
}

/// Names as a page shows them in a sentence: “A”, “B” and “C”.
pub fn quoted_names(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("“{n}”")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}
