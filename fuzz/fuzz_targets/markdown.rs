//! Markdown of updates → HTML for mail and the public archive.
//!
//! `markdown_to_html` promises (src/mail/update.rs): raw HTML in the
//! markdown is shown as text, and links and images may only be http(s),
//! mailto or relative. So every tag in the output is one the renderer
//! writes itself, with only its own attributes, and no URL in it has
//! another scheme (`javascript:`, `data:` …). The same holds after the CSS
//! is inlined for mail (`PreparedUpdate::new`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::mail::update::{PreparedUpdate, markdown_to_html};

/// The tags pulldown-cmark writes for CommonMark with tables,
/// strikethrough and footnotes.
const TAGS: &[&str] = &[
    "a",
    "blockquote",
    "br",
    "code",
    "dd",
    "del",
    "div",
    "dl",
    "dt",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "img",
    "input",
    "li",
    "ol",
    "p",
    "pre",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
];
const ATTRIBUTES: &[&str] =
    &["href", "src", "alt", "title", "class", "id", "start", "style", "type", "disabled", "checked"];

fuzz_target!(|data: &[u8]| {
    let Ok(markdown) = std::str::from_utf8(data) else { return };
    let html = markdown_to_html(markdown);
    check_html(&html);
    // css-inline parses and re-serialises the HTML; that must not undo the
    // escaping. It is much slower, so only for inputs of modest size.
    if markdown.len() <= 4096 {
        let prepared = PreparedUpdate::new(uuid::Uuid::nil(), "subject", markdown);
        if let Ok(p) = prepared {
            check_html(&p.body_html);
        }
    }
});

fn check_html(html: &str) {
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = check_tag(&rest[open + 1..], html);
    }
}

/// Reads one tag from just after its `<`; returns what follows its `>`.
/// Quoted attribute values may hold `<` and `>` (css-inline's serialiser
/// leaves them unescaped there, which browsers read as text).
fn check_tag<'a>(tag: &'a str, html: &str) -> &'a str {
    let context = || tag.char_indices().nth(80).map_or(tag, |(end, _)| &tag[..end]);
    let mut rest = tag.strip_prefix('/').unwrap_or(tag);
    let name_len = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let name = &rest[..name_len];
    assert!(TAGS.contains(&name), "tag <{}> is not one the renderer writes, in {html:?}", context());
    rest = &rest[name_len..];
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('>').or_else(|| rest.strip_prefix("/>")) {
            return after;
        }
        let attr_len = rest.find(|c: char| c == '=' || c == '>' || c == '/' || c.is_whitespace()).unwrap_or(rest.len());
        let attr = &rest[..attr_len];
        assert!(ATTRIBUTES.contains(&attr), "attribute {attr:?} in <{}>, in {html:?}", context());
        rest = &rest[attr_len..];
        let Some(after) = rest.strip_prefix('=') else { continue };
        let after = after.strip_prefix('"').unwrap_or_else(|| panic!("unquoted value in <{}>", context()));
        let (value, next) = after.split_once('"').unwrap_or_else(|| panic!("unterminated value in <{}>", context()));
        if attr == "href" || attr == "src" {
            check_url(value, context());
        }
        rest = next;
    }
}

/// The promise of `safe_url`, as a browser would read the attribute.
fn check_url(value: &str, tag: &str) {
    let decoded = value.replace("&amp;", "&").replace("&#x27;", "'").replace("&quot;", "\"").replace("&#39;", "'");
    // Browsers drop tabs and newlines anywhere in a URL and leading
    // blanks and controls.
    let url: String = decoded
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect::<String>()
        .to_ascii_lowercase();
    let ok = url.starts_with("http://")
        || url.starts_with("https://")
        || url.starts_with("mailto:")
        || url.starts_with('/')
        || url.starts_with('#')
        || !url.contains(':')
        // A colon after a path, query or fragment starts no scheme.
        || matches!((url.find(':'), url.find(['/', '?', '#'])), (Some(colon), Some(other)) if other < colon);
    // (A footnote link may hold a raw space: "#label with space". Inside
    // quotes it is harmless; the tag reader above checks the quoting.)
    assert!(ok, "a URL with another scheme: {value:?} in <{tag}>");
}
