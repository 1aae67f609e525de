//! Updates as email: markdown rendered once per update into safe HTML with
//! inlined CSS, then one personalised copy per recipient with the list
//! headers README's "Sending updates" lists (List-Id, List-Unsubscribe,
//! one-click POST, Precedence: bulk) and a stable Message-ID.
//!
//! Markdown is the organiser's, but it ends up in thousands of inboxes and
//! in the public archive, so raw HTML in it is shown as text and links may
//! only be http(s), mailto or relative.

use super::encoding;
use super::{Composed, Composer, MailError};
use askama::Template;
use base64::Engine;
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
        // A new line the organiser typed stays one (as in the plain-text
        // part), so a two-line sign-off does not run into one line.
        Event::SoftBreak => Event::HardBreak,
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
    /// The plain-text part's body ([`super::plain::markdown_to_text`]);
    /// may contain `{{name}}`.
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
        let body_text = super::plain::markdown_to_text(markdown);
        Ok(Self { update_id, subject: subject.to_owned(), body_html, body_text })
    }
}

/// One person's copy.
#[derive(Debug, Clone)]
pub struct Recipient<'a> {
    pub subscriber_id: uuid::Uuid,
    pub email: &'a str,
    pub name: &'a str,
    /// The list the copy is identified by (`List-Id`): the first it is for.
    pub list_slug: &'a str,
    pub list_name: &'a str,
    /// The other lists this one copy is sent for (usually none); the footer
    /// names them all, and `unsubscribe_url` leaves them all.
    pub other_list_names: Vec<&'a str>,
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

/// The lists a copy is for, as its footer names them: “A”, “B” and “C”.
fn lists_phrase(first: &str, others: &[&str]) -> String {
    let quoted: Vec<String> = std::iter::once(first).chain(others.iter().copied()).map(|n| format!("“{n}”")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// `List-Id: phrase <slug.host>` (RFC 2919). The id comes from the slug
/// alone (lowercase letters, digits and hyphens, so nothing in it can
/// close the brackets). The name becomes the phrase: a quoted string, with
/// `"` and `\` escaped, when it is printable ASCII without `<` or `>`;
/// otherwise RFC 2047
/// encoded words, which a parser decodes back to the name and which
/// cannot contain `<`, `>` or quotes. The value is handed to lettre
/// already encoded, so it is not encoded a second time as a whole.
fn list_id_header(name: &str, slug: &str, host: &str) -> HeaderValue {
    let value = list_id(name, slug, host);
    HeaderValue::dangerous_new_pre_encoded(HeaderName::new_from_ascii_str("List-Id"), value.clone(), value)
}

fn list_id(name: &str, slug: &str, host: &str) -> String {
    let clean: String = name.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let clean = clean.trim();
    // Angle brackets are legal in a quoted phrase, but a careless parser
    // could still take one for the id: such names are encoded too.
    let plain = clean.chars().all(|c| (c.is_ascii_graphic() && c != '<' && c != '>') || c == ' ');
    let phrase = if plain {
        let mut quoted = String::with_capacity(clean.len() + 2);
        quoted.push('"');
        for c in clean.chars() {
            if c == '"' || c == '\\' {
                quoted.push('\\');
            }
            quoted.push(c);
        }
        quoted.push('"');
        quoted
    } else {
        encoded_words(clean)
    };
    format!("{phrase} <{slug}.{host}>")
}

/// RFC 2047 `B` encoded words for `text`, each at most 75 characters and
/// split only between characters, separated by folding white space.
fn encoded_words(text: &str) -> String {
    // 75 - len("=?utf-8?b??=") = 63 base64 characters: 45 bytes of text.
    const MAX_BYTES: usize = 45;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > MAX_BYTES {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| format!("=?utf-8?b?{}?=", base64::engine::general_purpose::STANDARD.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
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

    /// One recipient's copy of an update (a preview or a test send: the
    /// bulk path renders the bodies once, [`Composer::update_bodies`]).
    pub fn update(&self, u: &PreparedUpdate, r: &Recipient<'_>) -> Result<Composed, MailError> {
        self.update_with(u, &self.update_bodies(u)?, r)
    }

    /// One recipient's copy, from the update's bodies as rendered once:
    /// no template rendering per copy, and only the copy's own values
    /// encoded (`mail::encoding`).
    pub fn update_with(
        &self,
        u: &PreparedUpdate,
        bodies: &UpdateBodies,
        r: &Recipient<'_>,
    ) -> Result<Composed, MailError> {
        let greeting_name = if r.name.is_empty() { "friend" } else { r.name };
        let lists = lists_phrase(r.list_name, &r.other_list_names);
        let text = bodies.text.fill(
            Fields {
                name: greeting_name,
                list_name: &lists,
                unsubscribe_url: &r.unsubscribe_url,
                preferences_url: &r.preferences_url,
            }
            .values(),
        );
        let html = bodies.html.fill(
            Fields {
                name: &html_escape(greeting_name),
                list_name: &html_escape(&lists),
                unsubscribe_url: &html_escape(&r.unsubscribe_url),
                preferences_url: &html_escape(&r.preferences_url),
            }
            .values(),
        );
        let message_id =
            if r.test { self.new_message_id() } else { self.update_message_id(u.update_id, r.subscriber_id) };
        let subject = if r.test { format!("[TEST] {}", u.subject) } else { u.subject.clone() };
        let to = Mailbox::new(super::compose::display_name(r.name), r.email.parse()?);
        let mut message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id.clone()))
            .date_now()
            .raw_header(list_id_header(r.list_name, r.list_slug, &self.host))
            // Only the https link: no mailbox reads unsubscribe mail, so a
            // mailto here would promise what nothing keeps.
            .raw_header(header("List-Unsubscribe", format!("<{}>", r.unsubscribe_url)))
            .raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_owned()))
            .raw_header(header("Precedence", "bulk".to_owned()))
            .multipart(MultiPart::alternative_plain_html(text, html))?;
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        Ok(Composed { message_id, recipient: r.email.to_owned(), bytes: message.formatted() })
    }

    /// The plain-text and HTML bodies (the text already personalised).
    fn render_bodies(
        &self,
        u: &PreparedUpdate,
        body_text: &str,
        body_html: &str,
        f: &Fields<'_>,
    ) -> Result<(String, String), MailError> {
        let html = UpdateHtml {
            subject: &u.subject,
            body: body_html,
            group: &self.group_name,
            contact: &self.contact_address,
            list_name: f.list_name,
            unsubscribe_url: f.unsubscribe_url,
            preferences_url: f.preferences_url,
        }
        .render()
        .map_err(|e| MailError::Template("update html", e))?;
        let text = UpdateText {
            body: body_text,
            group: &self.group_name,
            contact: &self.contact_address,
            list_name: f.list_name,
            unsubscribe_url: f.unsubscribe_url,
            preferences_url: f.preferences_url,
        }
        .render()
        .map_err(|e| MailError::Template("update text", e))?;
        Ok((text, html))
    }

    /// Renders an update's bodies once, with a marker where each person's
    /// own values go, as [`encoding::Template`]s. A marker is a
    /// private-use character that none of the update's own text (nor the
    /// group's name and address) contains, around the field's number, so
    /// nothing the organiser wrote can be taken for one.
    pub fn update_bodies(&self, u: &PreparedUpdate) -> Result<UpdateBodies, MailError> {
        let fixed = [u.subject.as_str(), &u.body_html, &u.body_text, &self.group_name, &self.contact_address];
        let mark = unused_private_use_char(&fixed).ok_or(MailError::NoMarker)?;
        let markers: [String; FIELDS] = std::array::from_fn(|field| format!("{mark}{field}{mark}"));
        let [name, list_name, unsubscribe_url, preferences_url] = markers.each_ref().map(String::as_str);
        let marks = Fields { name, list_name, unsubscribe_url, preferences_url };
        let body_html = u.body_html.replace(NAME_TAG, marks.name);
        let body_text = u.body_text.replace(NAME_TAG, marks.name);
        let (text, html) = self.render_bodies(u, &body_text, &body_html, &marks)?;
        let markers = marks.values();
        Ok(UpdateBodies {
            text: encoding::Template::new(&text, markers),
            html: encoding::Template::new(&html, markers),
        })
    }
}

/// Where the supporter's name goes in an update's markdown.
const NAME_TAG: &str = "{{name}}";

/// The first private-use character (the Basic Multilingual Plane's, then
/// planes 15 and 16: 137,468 of them) that none of `texts` contains.
fn unused_private_use_char(texts: &[&str]) -> Option<char> {
    let private =
        |c: &char| matches!(c, '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}');
    let used: std::collections::HashSet<char> = texts.iter().flat_map(|t| t.chars()).filter(private).collect();
    ('\u{E000}'..='\u{F8FF}')
        .chain('\u{F0000}'..='\u{FFFFD}')
        .chain('\u{100000}'..='\u{10FFFD}')
        .find(|c| !used.contains(c))
}

/// The values that differ between copies of an update.
struct Fields<'a> {
    name: &'a str,
    list_name: &'a str,
    unsubscribe_url: &'a str,
    preferences_url: &'a str,
}

/// How many [`Fields`] there are: the slots of [`UpdateBodies`]' templates.
const FIELDS: usize = 4;

impl<'a> Fields<'a> {
    /// The values in the order of their slots (field number `i` is
    /// `values()[i]`).
    fn values(&self) -> [&'a str; FIELDS] {
        [self.name, self.list_name, self.unsubscribe_url, self.preferences_url]
    }
}

/// An update's two bodies, rendered once (see [`Composer::update_bodies`]).
#[derive(Debug, Clone)]
pub struct UpdateBodies {
    text: encoding::Template<FIELDS>,
    html: encoding::Template<FIELDS>,
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
    fn a_single_newline_stays_a_line_break_in_html() {
        assert_eq!(markdown_to_html("Thanks,\nSam"), "<p>Thanks,<br />\nSam</p>\n");
    }

    #[test]
    fn markdown_becomes_html_with_inlined_styles() {
        let p = PreparedUpdate::new(uuid::Uuid::nil(), "S", "# Filed\n\nWe have **filed** at the High Court.").unwrap();
        assert!(p.body_html.contains("<strong>filed</strong>"));
        assert!(p.body_html.contains("style="), "{}", p.body_html);
    }

    fn composer() -> Composer {
        Composer {
            from: "Save Our Hospital <news@hospital.test>".parse().unwrap(),
            host: "hospital.test".into(),
            group_name: "Save Our Hospital".into(),
            contact_address: "1 High Street, Leeds".into(),
            dkim: None,
        }
    }

    /// The decoded bodies and every header but the date and the (random)
    /// multipart boundary, of the message and of each part.
    fn parts(bytes: &[u8]) -> (String, String, Vec<String>) {
        let m = mail_parser::MessageParser::default().parse(bytes).unwrap();
        let raw = |h: &mail_parser::Header<'_>| {
            String::from_utf8_lossy(&bytes[h.offset_start() as usize..h.offset_end() as usize]).into_owned()
        };
        let headers = m
            .parts
            .iter()
            .flat_map(|p| p.headers.iter())
            .filter(|h| h.name() != "Date")
            .map(
                |h| if raw(h).contains("boundary=") { h.name().to_owned() } else { format!("{}:{}", h.name(), raw(h)) },
            )
            .collect();
        (m.body_text(0).unwrap().into_owned(), m.body_html(0).unwrap().into_owned(), headers)
    }

    fn recipient<'a>(name: &'a str, list_name: &'a str, unsubscribe_url: &str) -> Recipient<'a> {
        Recipient {
            subscriber_id: uuid::Uuid::now_v7(),
            email: "zoe@example.org",
            name,
            list_slug: "updates",
            list_name,
            other_list_names: Vec::new(),
            unsubscribe_url: unsubscribe_url.to_owned(),
            preferences_url: "https://hospital.test/preferences/x?a=1&b=2".into(),
            test: false,
        }
    }

    /// Each copy, composed from bodies rendered once, decodes (by
    /// mail-parser) to exactly what rendering the templates with that
    /// copy's own values gives, whichever encoding its text calls for;
    /// and no line of the message is longer than 76 characters.
    #[test]
    fn every_copy_decodes_exactly_as_rendering_it_alone_does() {
        let long_url = format!("https://hospital.test/unsubscribe/{}", "Ab-_9".repeat(30));
        let updates = [
            // Plain ASCII, short lines.
            ("Filed", "{{name}}, we filed today.\n\nThanks, {{name}}!"),
            // Latin with long lines, trailing spaces and a leading dot (quoted-printable).
            (
                "Filed — at last",
                "{{name}}, we **filed** today — £38,420 raised.\n\n\
                 A line with trailing spaces   \n.A line starting with a dot\n\n\
                 A very long paragraph that goes on and on well past the seventy-six characters a quoted-printable \
                 line may hold, so that it must be broken softly, more than once, and still read the same. Thanks, {{name}}!",
            ),
            // Mostly Cyrillic (base64).
            ("Новости", &"Спасибо, {{name}}! Мы подали иск в суд и ждём решения.\n\n".repeat(20)),
            // Text that holds the first private-use characters, and what a marker made of them looks like.
            ("\u{E000}0\u{E000}", "\u{E000}0\u{E000} \u{E000}1\u{E000} {{name}} \u{E001}"),
        ];
        let c = composer();
        for (subject, markdown) in updates {
            let u = PreparedUpdate::new(uuid::Uuid::now_v7(), subject, markdown).unwrap();
            let bodies = c.update_bodies(&u).unwrap();
            for (name, list_name, url) in [
                ("", "Updates", "https://hospital.test/unsubscribe/abc"),
                ("Zoë & <Bob> \"Q\" O'Neil", "Hearings & \"dates\" — Ünïcode", long_url.as_str()),
                ("Владимир Иванов", "Новости", "https://hospital.test/unsubscribe/abc"),
            ] {
                let r = recipient(name, list_name, url);
                let copy = c.update_with(&u, &bodies, &r).unwrap();
                let greeting = if name.is_empty() { "friend" } else { name };
                let lists = lists_phrase(list_name, &[]);
                let (text, html) = c
                    .render_bodies(
                        &u,
                        &u.body_text.replace(NAME_TAG, greeting),
                        &u.body_html.replace(NAME_TAG, &html_escape(greeting)),
                        &Fields {
                            name: greeting,
                            list_name: &lists,
                            unsubscribe_url: url,
                            preferences_url: &r.preferences_url,
                        },
                    )
                    .unwrap();
                let (decoded_text, decoded_html, headers) = parts(&copy.bytes);
                let crlf = |s: &str| s.replace("\r\n", "\n").replace('\n', "\r\n");
                assert_eq!(decoded_text, crlf(&text), "text of {subject:?} for {name:?}");
                assert_eq!(decoded_html, crlf(&html), "html of {subject:?} for {name:?}");
                for expected in ["List-Unsubscribe-Post: List-Unsubscribe=One-Click", "Precedence: bulk"] {
                    assert!(headers.iter().any(|h| h.contains(expected)), "{expected} in {headers:?}");
                }
                let raw = String::from_utf8(copy.bytes).unwrap();
                let body = &raw[raw.find("\r\n\r\n").unwrap()..];
                assert!(body.split("\r\n").all(|l| l.len() <= 76), "{body}");
            }
        }
    }

    /// The encoding of each copy's parts is decided on the copy's whole
    /// text: the footers' typographic quotes and long lines rule out 7bit,
    /// and mostly Cyrillic text goes as base64.
    #[test]
    fn a_copy_is_sent_in_the_encoding_its_own_text_calls_for() {
        let c = composer();
        let encodings = |markdown: &str| {
            let u = PreparedUpdate::new(uuid::Uuid::now_v7(), "Hi", markdown).unwrap();
            let copy = c.update(&u, &recipient("Bob", "Updates", "https://hospital.test/u/abc")).unwrap();
            let raw = String::from_utf8(copy.bytes).unwrap();
            raw.split("\r\n")
                .filter_map(|l| l.strip_prefix("Content-Transfer-Encoding: "))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(encodings("Short news, {{name}}."), ["quoted-printable", "quoted-printable"]);
        let cyrillic = encodings(&"Спасибо за поддержку, мы подали иск.\n\n".repeat(30));
        assert_eq!(cyrillic[0], "base64", "the text part: {cyrillic:?}");
    }

    #[test]
    fn markers_avoid_every_private_use_character_the_update_holds() {
        assert_eq!(unused_private_use_char(&["plain"]), Some('\u{E000}'));
        assert_eq!(unused_private_use_char(&["\u{E000}", "x\u{E001}"]), Some('\u{E002}'));
        let bmp: String = ('\u{E000}'..='\u{F8FF}').collect();
        assert_eq!(unused_private_use_char(&[&bmp]), Some('\u{F0000}'));
    }

    #[test]
    fn list_id_quotes_or_encodes_the_name_and_takes_the_id_from_the_slug() {
        assert_eq!(list_id("Save \"Our\" Hospital", "news", "x.test"), "\"Save \\\"Our\\\" Hospital\" <news.x.test>");
        let planted = list_id("News\" <evil.example> \"", "news", "x.test");
        assert!(planted.ends_with(" <news.x.test>") && planted.starts_with("=?utf-8?b?"), "{planted}");
        assert_eq!(planted.matches('<').count(), 1, "no bracket but the id's: {planted}");
        let cafe = list_id("Café news – Cymru", "cafe", "x.test");
        assert!(cafe.is_ascii() && cafe.starts_with("=?utf-8?b?") && cafe.ends_with("?= <cafe.x.test>"), "{cafe}");
        let long = list_id(&"Ünïcode ".repeat(20), "u", "x.test");
        assert!(long.split("\r\n").all(|line| line.len() <= 78), "{long}");
        assert_eq!(lists_phrase("A", &[]), "“A”");
        assert_eq!(lists_phrase("A", &["B", "C"]), "“A”, “B” and “C”");
    }
}
