//! What canary prints: cargo-style status lines and unified diffs, coloured only on a terminal
//! and never when `NO_COLOR` is set.

use std::borrow::Cow;
use std::cell::RefCell;

use console::{Style, style};
use similar::{ChangeTag, TextDiff};

use crate::source::FileChange;

/// Decide once, at start-up, whether colour is wanted on stdout.
pub fn init_colour() {
    let off = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if off {
        console::set_colors_enabled(false);
        console::set_colors_enabled_stderr(false);
    }
}

/// The marks canary draws with: Unicode, or ASCII where it would not show (`TERM=dumb`, or a
/// locale whose character set is not UTF-8). No locale variable set at all keeps Unicode: the
/// terminals that run without one are UTF-8 ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marks {
    pub done: &'static str,
    pub current: &'static str,
    pub to_come: &'static str,
    pub filled: &'static str,
    pub empty: &'static str,
    pub cut: &'static str,
    pub then: &'static str,
}

const UNICODE: Marks = Marks {
    done: "✓",
    current: "▶",
    to_come: "·",
    filled: "█",
    empty: "░",
    cut: "…",
    then: "→",
};

const ASCII: Marks = Marks {
    done: "+",
    current: ">",
    to_come: ".",
    filled: "#",
    empty: "-",
    cut: "...",
    then: "->",
};

/// The marks for this process's terminal and locale.
pub fn marks() -> Marks {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let dumb = var("TERM").is_some_and(|t| t == "dumb");
    // The first of these that is set decides the character set, as for any C program.
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"].iter().find_map(|v| var(v));
    let utf8 = locale.is_none_or(|l| {
        let l = l.to_ascii_lowercase();
        l.contains("utf-8") || l.contains("utf8")
    });
    if dumb || !utf8 { ASCII } else { UNICODE }
}

/// Where canary's status lines and notes go, and whether status lines are wanted: what
/// cargo's `Shell` is to cargo. One is made per command and handed to what prints, so that a
/// test can read what a step said and `--quiet` is one switch, not a check at every line.
pub struct Shell {
    quiet: bool,
    out: RefCell<Out>,
}

enum Out {
    Stdout,
    /// Where stdout is for something else: `run --json`'s JSON lines.
    Stderr,
    #[cfg(test)]
    Captured(String),
}

impl Shell {
    /// Status lines and notes on stdout; with `quiet`, notes only.
    pub fn new(quiet: bool) -> Shell {
        Shell {
            quiet,
            out: RefCell::new(Out::Stdout),
        }
    }

    /// The same shell writing to stderr, for a command whose stdout is for machines.
    pub fn on_stderr(&self) -> Shell {
        Shell {
            quiet: self.quiet,
            out: RefCell::new(Out::Stderr),
        }
    }

    /// A shell that keeps what it is given, for [`Shell::captured`].
    #[cfg(test)]
    pub fn capturing() -> Shell {
        Shell {
            quiet: false,
            out: RefCell::new(Out::Captured(String::new())),
        }
    }

    /// What a capturing shell was given, without colours.
    #[cfg(test)]
    pub fn captured(&self) -> String {
        match &*self.out.borrow() {
            Out::Captured(text) => console::strip_ansi_codes(text).into_owned(),
            Out::Stdout | Out::Stderr => String::new(),
        }
    }

    /// A status line with a right-aligned green verb, as cargo prints them: what canary is
    /// doing or did. `--quiet` drops these.
    /// The commands in `message` name the journal where they must (see
    /// [`crate::report::commands`]).
    pub fn status(&self, verb: &str, message: impl std::fmt::Display) {
        if !self.quiet {
            self.line(style(verb).green().bold(), message);
        }
    }

    /// A line under the status line above, indented to its message; dropped with it under
    /// `--quiet`.
    pub fn detail(&self, line: impl std::fmt::Display) {
        if !self.quiet {
            self.line("", line);
        }
    }

    /// A note: something the operator should know or do. Kept under `--quiet`.
    pub fn note(&self, message: impl std::fmt::Display) {
        self.line(style("Note").cyan().bold(), message);
    }

    /// Text as it is (a diff), where the status lines go; kept under `--quiet`.
    pub fn text(&self, text: &str) {
        match &mut *self.out.borrow_mut() {
            Out::Stdout => print!("{text}"),
            Out::Stderr => eprint!("{text}"),
            #[cfg(test)]
            Out::Captured(captured) => captured.push_str(text),
        }
    }

    fn line(&self, verb: impl std::fmt::Display, message: impl std::fmt::Display) {
        let line = format!(
            "{verb:>12} {}",
            crate::report::commands(&message.to_string())
        );
        self.text(&format!("{line}\n"));
    }
}

/// `n` and a noun that agrees with it: "1 file", "2 files", "0 files".
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
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
    let mut out = format!(
        "{}\n{}\n",
        style(format!("--- {old}")).bold(),
        style(format!("+++ {new}")).bold()
    );
    hunks(&mut out, before, after);
    out
}

/// The hunks of a line diff of `before` and `after`. The header always gives both lengths,
/// `@@ -5,1 +5,2 @@` where `similar`'s own unified diff writes `@@ -5 +5,2 @@`.
fn hunks(out: &mut String, before: &str, after: &str) {
    let text_diff = TextDiff::from_lines(before, after);
    for group in text_diff.grouped_ops(CONTEXT) {
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
}

/// Lines of context around each change.
const CONTEXT: usize = 3;

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
    console::truncate_str(line, width, marks().cut)
}

/// Text that came from outside (a server's error, a team's check name), made safe to print on
/// one line: control characters, terminal escape sequences among them, are shown escaped
/// (`\u{1b}`), never sent to the terminal, and text longer than `max` characters is cut with a
/// note of how much was left out.
pub fn outside(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (shown, c) in text.chars().enumerate() {
        if shown == max {
            let left = text.chars().count() - max;
            out.push_str(&format!("... ({} cut)", count(left as u64, "character")));
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A bar of `cells` cells, `percent` of them filled.
pub fn bar(percent: u8, cells: usize) -> String {
    let filled = (usize::from(percent) * cells + 50) / 100;
    let marks = marks();
    format!(
        "{}{}",
        marks.filled.repeat(filled),
        marks.empty.repeat(cells - filled)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_outside_is_escaped_and_cut() {
        assert_eq!(outside("plain, é", 20), "plain, é");
        assert_eq!(
            outside("\u{1b}[2J\u{1b}]0;owned\u{7}bad\nline\r", 100),
            "\\u{1b}[2J\\u{1b}]0;owned\\u{7}bad\\nline\\r"
        );
        assert!(!outside("\u{1b}[31m", 100).contains('\u{1b}'));
        assert_eq!(
            outside(&"x".repeat(70_000), 5),
            "xxxxx... (69995 characters cut)"
        );
        assert_eq!(outside("abcde", 5), "abcde");
    }

    fn hunks_of(before: &str, after: &str) -> String {
        let mut out = String::new();
        hunks(&mut out, before, after);
        out
    }

    #[test]
    fn a_hunk_is_numbered_by_the_lines_of_the_whole_file() {
        let deployment =
            |i: usize| format!("  d-{i}:\n    image: x\n    resources:\n      cpu: 1m\n");
        let before: String = (0..1_000).map(deployment).collect();
        let at = before.find("  d-500:").unwrap();
        let new = "  web-v1:\n    image: y\n    resources:\n      cpu: 1m\n";
        let after = format!("{}{new}{}", &before[..at], &before[at..]);
        let diff = hunks_of(&before, &after);
        assert!(diff.starts_with("@@ -1998,6 +1998,10 @@\n"), "{diff}");
        assert_eq!(diff.lines().count(), 11, "{diff}");
    }

    #[test]
    fn quiet_drops_status_lines_and_keeps_notes() {
        let shell = Shell::capturing();
        shell.status("Wrote", "gap/gap.yaml");
        shell.detail("1 file");
        shell.note("dry run: nothing was written");
        assert_eq!(
            shell.captured(),
            "       Wrote gap/gap.yaml\n             1 file\n        Note dry run: nothing was \
             written\n"
        );
        let quiet = Shell {
            quiet: true,
            ..Shell::capturing()
        };
        quiet.status("Wrote", "gap/gap.yaml");
        quiet.detail("1 file");
        quiet.note("dry run: nothing was written");
        assert_eq!(
            quiet.captured(),
            "        Note dry run: nothing was written\n"
        );
    }

    #[test]
    fn a_count_agrees_with_its_noun() {
        assert_eq!(count(1, "file"), "1 file");
        assert_eq!(count(2, "file"), "2 files");
        assert_eq!(count(0, "error"), "0 errors");
    }

    #[test]
    fn a_hunk_header_gives_both_lengths_even_of_one_line() {
        assert_eq!(hunks_of("a\n", "b\n"), "@@ -1,1 +1,1 @@\n-a\n+b\n");
        assert_eq!(hunks_of("", "a\n"), "@@ -0,0 +1,1 @@\n+a\n");
    }
}
