//! Changing the privacy notice: the organiser sees a line-by-line diff of
//! the new text against the notice in force before publishing, and can then
//! draft an update telling subscribers (a notification) or asking them to
//! confirm their choices again (a re-permission). A supporter who saves
//! their preferences after a new notice has come into force gets a
//! `confirmed` ledger entry per list they stay on, naming that version —
//! so each ledger shows which version they agreed to.

use super::updates::{self, UpdateInput, UpdateView};
use super::{Context, Result};
use crate::domain::Actor;

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DiffLine {
    /// `same`, `added` or `removed`.
    pub op: &'static str,
    pub text: String,
}

/// Texts longer than this many lines are shown as wholly replaced (the
/// table below grows with the product of the lengths).
const MAX_LINES: usize = 3000;

/// The lines of `new` against `old` (longest common subsequence).
pub fn diff(old: &str, new: &str) -> Vec<DiffLine> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let line = |op, text: &str| DiffLine { op, text: text.to_owned() };
    if a.len() > MAX_LINES || b.len() > MAX_LINES {
        return a.iter().map(|t| line("removed", t)).chain(b.iter().map(|t| line("added", t))).collect();
    }
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push(line("same", a[i]));
            (i, j) = (i + 1, j + 1);
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(line("added", b[j]));
            j += 1;
        } else {
            out.push(line("removed", a[i]));
            i += 1;
        }
    }
    out
}

/// Which message to draft after a new notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// "We have updated our privacy notice."
    Notify,
    /// "Please confirm you still want to hear from us."
    Repermission,
}

/// Drafts an update to every list about notice `version`, for the
/// organiser to edit, preview and send like any other.
pub async fn draft_announcement(ctx: &Context, version: i64, kind: Announcement, actor: &Actor) -> Result<UpdateView> {
    let lists: Vec<String> = super::lists::all(ctx).await?.into_iter().map(|l| l.slug).collect();
    let privacy = ctx.config.link("/privacy");
    let group = &ctx.config.group_name;
    let (subject, body) = match kind {
        Announcement::Notify => (
            "We have updated our privacy notice".to_owned(),
            format!(
                "Dear {{{{name}}}},\n\nWe have updated the privacy notice that explains how {group} uses your \
                 details (version {version}). You can read it here: [our privacy notice]({privacy}).\n\n\
                 You do not need to do anything. You can change what you receive, or unsubscribe, at any time \
                 with the links at the foot of this email."
            ),
        ),
        Announcement::Repermission => (
            format!("Please confirm you still want to hear from {group}"),
            format!(
                "Dear {{{{name}}}},\n\nWe have updated the privacy notice that explains how {group} uses your \
                 details (version {version}): [read it here]({privacy}).\n\n\
                 **Please confirm you still want our updates**: open *Manage your preferences* at the foot of \
                 this email, check the lists you want, and press *Save my choices*. If you no longer want to \
                 hear from us, use the unsubscribe link instead."
            ),
        ),
    };
    let input = UpdateInput { subject: Some(subject), body_markdown: Some(body), lists: Some(lists) };
    updates::create(ctx, &input, actor).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_keeps_common_lines_and_marks_the_rest() {
        let d = diff("a\nb\nc\n", "a\nB\nc\nd\n");
        let ops: Vec<(&str, &str)> = d.iter().map(|l| (l.op, l.text.as_str())).collect();
        assert_eq!(ops, [("same", "a"), ("added", "B"), ("removed", "b"), ("same", "c"), ("added", "d")]);
        assert!(diff("", "").is_empty());
        assert_eq!(diff("x", "").len(), 1);
    }
}
