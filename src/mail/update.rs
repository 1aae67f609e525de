//! Updates as email: markdown rendered once per update into safe HTML with
//! inlined CSS, then one personalised copy per recipient with the list
//! headers of DESIGN §4 (List-Id, List-Unsubscribe, one-click POST,
//! Precedence: bulk) and a stable Message-ID.
//!
//! Markdown is the organiser's, but it ends up in thousands of inboxes and
//! in the public archive, so raw HTML in it is shown as text and links may
//! only be http(s), mailto or relative.

use super::{Composed, Composer, MailError};
use askama::Template;
use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag};

/// Styles for the markdown body, inlined into each element once per update
/// (many mail clients ignore `<style>` blocks).
const BODY_CSS: &str = "
p, li { font-size: 16px; line-height: 1.55; color: #1b1b1b; }
h1, h2, h3 { color: #111111; line-height: 1.25; }
a { color: #1d4ed8; }
blockquote { margin: 0 0 0 4px; padding: 0 0 0 12px; border-left: 4px solid #d4d4d4; color: #404040; }
img { max-width: 100%; height: auto; }
code { font-family: monospace; background: #f3f3f3; }
";

/// Renders organiser markdown to HTML that is safe to mail and publish.
pub fn markdown_to_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_FOOTNOTES;
    let events = Parser::new_ext(markdown, options).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Link { link_type, dest_url: safe_url(dest_url), title, id })
        }
        Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
            Event::Start(Tag::Image { link_type, dest_url: safe_url(dest_url), title, id })
        }
        other => other,
    });
    let mut html = String::with_capacity(markdown.len() * 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

fn safe_url(url: CowStr<'_>) -> CowStr<'_> {
    let lower = url.trim().to_ascii_lowercase();
    let allowed = lower.starts_with("http://")
        || lower.starts_with("https://")
        || lower.starts_with("mailto:")
        || lower.starts_with('/')
        || lower.starts_with('#')
        || !lower.contains(':');
    if allowed { url } else { CowStr::Borrowed("#") }
}

/// An update rendered once, ready to be personalised.
#[derive(Debug, Clone)]
pub struct PreparedUpdate {
    pub update_id: uuid::Uuid,
    pub subject: String,
    /// Body HTML with CSS inlined; may contain `{{name}}`.
    pub body_html: String,
    /// The markdown itself: readable as plain text; may contain `{{name}}`.
    pub body_text: String,
}

impl PreparedUpdate {
    pub fn new(update_id: uuid::Uuid, subject: &str, markdown: &str) -> Result<Self, MailError> {
        let html = markdown_to_html(markdown);
        let body_html = css_inline::CSSInliner::options()
            .load_remote_stylesheets(false)
            .build()
            .inline_fragment(&html, BODY_CSS)
            .map_err(|e| MailError::Inline(e.to_string()))?;
        Ok(Self { update_id, subject: subject.to_owned(), body_html, body_text: markdown.to_owned() })
    }
}

/// One person's copy.
#[derive(Debug, Clone)]
pub struct Recipient<'a> {
    pub subscriber_id: uuid::Uuid,
    pub email: &'a str,
    pub name: &'a str,
    pub list_slug: &'a str,
    pub list_name: &'a str,
    pub unsubscribe_url: String,
    pub preferences_url: String,
    /// Test sends are marked as such in the subject.
    pub test: bool,
}

#[derive(Template)]
#[template(path = "emails/update.html")]
struct UpdateHtml<'a> {
    subject: &'a str,
    body: &'a str,
    group: &'a str,
    contact: &'a str,
    list_name: &'a str,
    unsubscribe_url: &'a str,
    preferences_url: &'a str,
}

#[derive(Template)]
#[template(path = "emails/update.txt")]
struct UpdateText<'a> {
    body: &'a str,
    group: &'a str,
    contact: &'a str,
    list_name: &'a str,
    unsubscribe_url: &'a str,
    preferences_url: &'a str,
}

fn html_escape(s: &str) -> String {
    askama::filters::escape(s, askama::filters::Html).map(|e| e.to_string()).unwrap_or_default()
}

/// `"Name" <slug.host>` with the phrase quoted (RFC 2919).
fn list_id(name: &str, slug: &str, host: &str) -> String {
    let phrase: String = name.chars().filter(|c| !c.is_control()).map(|c| if c == '"' { '\'' } else { c }).collect();
    format!("\"{}\" <{slug}.{host}>", phrase.replace('\\', "/"))
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

impl Composer {
    /// The stable Message-ID of one person's copy of one update: a retry
    /// after a crash carries the same id, so receivers can de-duplicate.
    pub fn update_message_id(&self, update_id: uuid::Uuid, subscriber_id: uuid::Uuid) -> String {
        format!("<{update_id}.{subscriber_id}@{}>", self.host)
    }

    /// One recipient's copy of an update.
    pub fn update(&self, u: &PreparedUpdate, r: &Recipient<'_>) -> Result<Composed, MailError> {
        let greeting_name = if r.name.is_empty() { "friend" } else { r.name };
        let body_html = u.body_html.replace("{{name}}", &html_escape(greeting_name));
        let body_text = u.body_text.replace("{{name}}", greeting_name);
        let html = UpdateHtml {
            subject: &u.subject,
            body: &body_html,
            group: &self.group_name,
            contact: &self.contact_address,
            list_name: r.list_name,
            unsubscribe_url: &r.unsubscribe_url,
            preferences_url: &r.preferences_url,
        }
        .render()
        .map_err(|e| MailError::Template("update html", e))?;
        let text = UpdateText {
            body: &body_text,
            group: &self.group_name,
            contact: &self.contact_address,
            list_name: r.list_name,
            unsubscribe_url: &r.unsubscribe_url,
            preferences_url: &r.preferences_url,
        }
        .render()
        .map_err(|e| MailError::Template("update text", e))?;
        let message_id =
            if r.test { self.new_message_id() } else { self.update_message_id(u.update_id, r.subscriber_id) };
        let subject = if r.test { format!("[TEST] {}", u.subject) } else { u.subject.clone() };
        let to = Mailbox::new((!r.name.is_empty()).then(|| r.name.to_owned()), r.email.parse()?);
        let unsubscribe_token = r.unsubscribe_url.rsplit('/').next().unwrap_or_default();
        let mailto = format!("mailto:{}?subject=unsubscribe%20{unsubscribe_token}", self.from.email);
        let mut message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id.clone()))
            .date_now()
            .raw_header(header("List-Id", list_id(r.list_name, r.list_slug, &self.host)))
            .raw_header(header("List-Unsubscribe", format!("<{}>, <{mailto}>", r.unsubscribe_url)))
            .raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_owned()))
            .raw_header(header("Precedence", "bulk".to_owned()))
            .multipart(MultiPart::alternative_plain_html(text, html))?;
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        Ok(Composed { message_id, recipient: r.email.to_owned(), bytes: message.formatted() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_and_script_links_are_neutralised() {
        let html = markdown_to_html("Hi <script>alert(1)</script> [x](javascript:alert(1)) [ok](https://a.test/)");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("javascript:"));
        assert!(html.contains("href=\"https://a.test/\""));
    }

    #[test]
    fn markdown_becomes_html_with_inlined_styles() {
        let p = PreparedUpdate::new(uuid::Uuid::nil(), "S", "# Filed\n\nWe have **filed** at the High Court.").unwrap();
        assert!(p.body_html.contains("<strong>filed</strong>"));
        assert!(p.body_html.contains("style="), "{}", p.body_html);
    }

    #[test]
    fn list_id_quotes_the_name() {
        assert_eq!(list_id("Save \"Our\" Hospital", "news", "x.test"), "\"Save 'Our' Hospital\" <news.x.test>");
    }
}
