//! The plain-text part of an update: the organiser's markdown turned into
//! text a person reads comfortably in a mail client that shows no HTML.
//!
//! No markup survives (`##`, `**`, backticks); headings are underlined,
//! lists keep their markers and nesting, quotes keep `> `, and a single
//! newline in the markdown stays a line break (so a sign-off on two lines
//! does not run into one). Links become numbered references, listed after
//! the text, the way plain-text newsletters have long done it.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Renders organiser markdown as readable plain text (see the module docs).
/// `{{name}}` passes through untouched, to be filled per copy.
pub fn markdown_to_text(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_FOOTNOTES;
    let mut w = Writer { line_start: true, ..Writer::default() };
    for event in Parser::new_ext(markdown, options) {
        w.event(event);
    }
    w.finish()
}

/// A list being written: its next number, or `None` for bullets.
struct ListState {
    next: Option<u64>,
    /// The current item's marker width, which its continuation lines indent by.
    indent: usize,
}

#[derive(Default)]
struct Writer {
    out: String,
    /// Whether the next text starts a new line (and so takes the prefix).
    line_start: bool,
    /// Blank lines owed before the next block's first text.
    gap: bool,
    quote_depth: usize,
    lists: Vec<ListState>,
    /// Where each open link's text began in `out`, and its address.
    links_open: Vec<(usize, String)>,
    /// Addresses referenced so far, numbered from 1.
    references: Vec<String>,
    /// Where the open heading's text began.
    heading_start: Option<usize>,
    in_code_block: bool,
    /// Whether the current table row has had a cell yet.
    row_has_cell: bool,
}

impl Writer {
    /// What starts each line here: quote marks, then the list indentation.
    fn prefix(&self) -> String {
        let mut p = "> ".repeat(self.quote_depth);
        for l in &self.lists {
            p.push_str(&" ".repeat(l.indent));
        }
        if self.in_code_block {
            p.push_str("    ");
        }
        p
    }

    fn newline(&mut self) {
        // Quote marks stay on blank lines inside a quote, without trailing space.
        while self.out.ends_with(' ') {
            self.out.pop();
        }
        self.out.push('\n');
        self.line_start = true;
    }

    /// Ends the current line, if one is open.
    fn end_line(&mut self) {
        if !self.out.is_empty() && !self.line_start {
            self.newline();
        }
    }

    /// A blank line before the next block (not at the very start).
    fn block(&mut self) {
        self.end_line();
        if !self.out.is_empty() {
            self.gap = true;
        }
    }

    fn write(&mut self, text: &str) {
        for (i, piece) in text.split('\n').enumerate() {
            if i > 0 {
                self.newline();
            }
            if piece.is_empty() {
                continue;
            }
            if self.gap {
                let quote = "> ".repeat(self.quote_depth);
                self.out.push_str(quote.trim_end());
                self.out.push('\n');
                self.gap = false;
            }
            if self.line_start {
                let prefix = self.prefix();
                self.out.push_str(&prefix);
                self.line_start = false;
            }
            self.out.push_str(piece);
        }
    }

    /// Writes a list item's marker, indented one step less than its text.
    fn item_marker(&mut self) {
        self.end_line();
        let marker = match self.lists.last_mut() {
            Some(ListState { next: Some(n), .. }) => {
                let m = format!("{n}. ");
                *n += 1;
                m
            }
            _ => "- ".to_owned(),
        };
        if self.gap {
            let quote = "> ".repeat(self.quote_depth);
            self.out.push_str(quote.trim_end());
            self.out.push('\n');
            self.gap = false;
        }
        let mut p = "> ".repeat(self.quote_depth);
        let outer = self.lists.len().saturating_sub(1);
        for l in &self.lists[..outer] {
            p.push_str(&" ".repeat(l.indent));
        }
        self.out.push_str(&p);
        self.out.push_str(&marker);
        if let Some(l) = self.lists.last_mut() {
            l.indent = marker.chars().count();
        }
        self.line_start = false;
    }

    fn event(&mut self, event: Event<'_>) {
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => self.write(&t),
            Event::InlineMath(t) | Event::DisplayMath(t) => self.write(&t),
            Event::FootnoteReference(name) => self.write(&format!("[{name}]")),
            Event::SoftBreak | Event::HardBreak => self.newline(),
            Event::Rule => {
                self.block();
                self.write("----------");
                self.block();
            }
            Event::TaskListMarker(done) => self.write(if done { "[x] " } else { "[ ] " }),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            // A paragraph right after an item's marker continues its line.
            Tag::Paragraph if self.line_start || self.out.is_empty() => self.block(),
            Tag::Heading { .. } => {
                self.block();
                self.heading_start = Some(self.out.len());
            }
            Tag::BlockQuote(_) => {
                self.block();
                self.quote_depth += 1;
            }
            Tag::CodeBlock(_) => {
                self.block();
                self.in_code_block = true;
            }
            Tag::List(first) => {
                if self.lists.is_empty() {
                    self.block();
                } else {
                    self.end_line();
                }
                self.lists.push(ListState { next: first, indent: 0 });
            }
            Tag::Item => self.item_marker(),
            Tag::FootnoteDefinition(name) => {
                self.block();
                self.write(&format!("[{name}] "));
            }
            Tag::Table(_) => self.block(),
            Tag::TableHead | Tag::TableRow => {
                self.end_line();
                self.row_has_cell = false;
            }
            Tag::TableCell => {
                if self.row_has_cell {
                    self.write(" | ");
                }
                self.row_has_cell = true;
            }
            Tag::Link { dest_url, .. } => self.links_open.push((self.out.len(), dest_url.into_string())),
            Tag::Image { dest_url, .. } => self.links_open.push((self.out.len(), dest_url.into_string())),
            _ => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph | TagEnd::FootnoteDefinition | TagEnd::Table => self.block(),
            TagEnd::Heading(level) => {
                let start = self.heading_start.take().unwrap_or(self.out.len());
                let width = self.out[start..].trim_start_matches(['\n', '>', ' ']).chars().count();
                let underline = match level {
                    HeadingLevel::H1 => Some('='),
                    HeadingLevel::H2 => Some('-'),
                    _ => None,
                };
                if let Some(c) = underline {
                    self.newline();
                    self.write(&c.to_string().repeat(width.max(3)));
                }
                self.block();
            }
            TagEnd::BlockQuote(_) => {
                self.end_line();
                self.quote_depth = self.quote_depth.saturating_sub(1);
                self.gap = false;
                self.block();
            }
            TagEnd::CodeBlock => {
                self.in_code_block = false;
                self.block();
            }
            TagEnd::List(_) => {
                self.lists.pop();
                if self.lists.is_empty() {
                    self.block();
                } else {
                    self.end_line();
                }
            }
            TagEnd::Item | TagEnd::TableHead | TagEnd::TableRow => self.end_line(),
            TagEnd::Link | TagEnd::Image => self.close_link(),
            _ => {}
        }
    }

    /// A link's address becomes a numbered reference, unless the text
    /// already is the address (`<https://…>`) or it points within the page.
    fn close_link(&mut self) {
        let Some((start, url)) = self.links_open.pop() else { return };
        let text = self.out[start..].trim();
        let bare = |s: &str| s.trim_start_matches("mailto:").trim_end_matches('/').to_owned();
        if url.is_empty() || url.starts_with('#') || bare(text) == bare(&url) {
            return;
        }
        let n = match self.references.iter().position(|u| *u == url) {
            Some(i) => i + 1,
            None => {
                self.references.push(url);
                self.references.len()
            }
        };
        self.write(&format!(" [{n}]"));
    }

    fn finish(mut self) -> String {
        let mut text = self.out.trim_end().to_owned();
        if !self.references.is_empty() {
            text.push_str("\n\n");
            for (i, url) in std::mem::take(&mut self.references).iter().enumerate() {
                text.push_str(&format!("[{}] {url}\n", i + 1));
            }
            text.truncate(text.trim_end().len());
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::markdown_to_text;

    #[test]
    fn headings_emphasis_and_links_read_as_text() {
        let text = markdown_to_text(
            "# The hearing moved\n\n## What happens now\n\nWe **filed** at the *High Court*; read [the order](https://a.test/order) \
             and [our letter](https://a.test/letter). Write to <mailto:team@a.test>.",
        );
        assert_eq!(
            text,
            "The hearing moved\n=================\n\nWhat happens now\n----------------\n\n\
             We filed at the High Court; read the order [1] and our letter [2]. Write to mailto:team@a.test.\n\n\
             [1] https://a.test/order\n[2] https://a.test/letter"
        );
        assert!(!text.contains("##") && !text.contains("**"));
    }

    #[test]
    fn a_single_newline_stays_a_line_break() {
        let text = markdown_to_text("Dear {{name}},\n\nSee you on Monday.\n\nThanks,\nSam\nSave Our Hospital");
        assert_eq!(text, "Dear {{name}},\n\nSee you on Monday.\n\nThanks,\nSam\nSave Our Hospital");
    }

    #[test]
    fn lists_keep_their_markers_and_nesting() {
        let text = markdown_to_text("Bring:\n\n- a banner\n- **water**\n  1. still\n  2. sparkling\n\nDone.");
        assert_eq!(text, "Bring:\n\n- a banner\n- water\n  1. still\n  2. sparkling\n\nDone.");
        let loose = markdown_to_text("1. First\n\n2. Second\n");
        assert_eq!(loose, "1. First\n\n2. Second");
    }

    #[test]
    fn quotes_code_and_repeated_links() {
        let text = markdown_to_text(
            "> The court said:\n> no.\n\nRun `tidings`:\n\n```\ncargo run\n```\n\n[a](https://x.test) [b](https://x.test)",
        );
        assert_eq!(
            text,
            "> The court said:\n> no.\n\nRun tidings:\n\n    cargo run\n\na [1] b [1]\n\n[1] https://x.test"
        );
    }

    #[test]
    fn raw_html_is_kept_as_the_text_it_is() {
        assert_eq!(markdown_to_text("a <b>bold</b> move"), "a <b>bold</b> move");
    }
}
