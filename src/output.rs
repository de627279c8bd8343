//! What canary prints: cargo-style status lines and unified diffs, coloured only on a terminal
//! and never when `NO_COLOR` is set.

use std::borrow::Cow;

use console::{Style, style};
use similar::{ChangeTag, TextDiff};

use crate::edits::FileChange;

/// Decide once, at start-up, whether colour is wanted on stdout.
pub fn init_colour() {
    let off = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if off {
        console::set_colors_enabled(false);
        console::set_colors_enabled_stderr(false);
    }
}

/// A status line with a right-aligned green verb, as cargo prints them.
pub fn status(verb: &str, message: impl std::fmt::Display) {
    println!("{:>12} {message}", style(verb).green().bold());
}

pub fn note(message: impl std::fmt::Display) {
    println!("{:>12} {message}", style("Note").cyan().bold());
}

/// A unified diff of one file, with `a/` and `b/` headers as git shows them.
pub fn diff(change: &FileChange) -> String {
    let before = change.before.as_deref().unwrap_or("");
    let after = change.after.as_deref().unwrap_or("");
    let old = if change.before.is_some() {
        format!("a/{}", change.path)
    } else {
        "/dev/null".into()
    };
    let new = if change.after.is_some() {
        format!("b/{}", change.path)
    } else {
        "/dev/null".into()
    };
    let text_diff = TextDiff::from_lines(before, after);
    let mut out = format!(
        "{}\n{}\n",
        style(format!("--- {old}")).bold(),
        style(format!("+++ {new}")).bold()
    );
    for group in text_diff.grouped_ops(3) {
        let (first, last) = (&group[0], &group[group.len() - 1]);
        let (old_start, new_start) = (first.old_range().start, first.new_range().start);
        let old_len = last.old_range().end - old_start;
        let new_len = last.new_range().end - new_start;
        out.push_str(
            &style(format!(
                "@@ -{},{old_len} +{},{new_len} @@\n",
                old_start + usize::from(old_len > 0),
                new_start + usize::from(new_len > 0)
            ))
            .cyan()
            .to_string(),
        );
        for op in &group {
            for change in text_diff.iter_changes(op) {
                let (sign, colour) = match change.tag() {
                    ChangeTag::Delete => ("-", Style::new().red()),
                    ChangeTag::Insert => ("+", Style::new().green()),
                    ChangeTag::Equal => (" ", Style::new()),
                };
                let line = change.to_string_lossy();
                let line = line.trim_end_matches(['\n', '\r']);
                out.push_str(&colour.apply_to(format!("{sign}{line}")).to_string());
                out.push('\n');
            }
        }
    }
    out
}

/// The width to lay out for: `COLUMNS` when set, else the terminal's; output to a pipe or a
/// file is not cut at all.
pub fn width() -> usize {
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return columns;
    }
    console::Term::stdout()
        .size_checked()
        .map_or(usize::MAX, |(_, cols)| cols as usize)
}

/// A line cut to `width` columns (ANSI colours kept), with an ellipsis where it was cut.
pub fn fit(line: &str, width: usize) -> Cow<'_, str> {
    // No character is narrower than its UTF-8 bytes: a line of no more bytes than the width
    // fits without measuring it.
    if line.len() <= width {
        return Cow::Borrowed(line);
    }
    console::truncate_str(line, width, "…")
}

/// A bar of `cells` cells, `percent` of them filled.
pub fn bar(percent: u8, cells: usize) -> String {
    let filled = (usize::from(percent) * cells + 50) / 100;
    format!("{}{}", "█".repeat(filled), "░".repeat(cells - filled))
}
