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
    let mut out = format!(
        "{}\n{}\n",
        style(format!("--- {old}")).bold(),
        style(format!("+++ {new}")).bold()
    );
    let (before, after, skipped) = around_the_change(before, after);
    hunks(&mut out, before, after, skipped);
    out
}

/// The hunks of a line diff of `before` and `after`, whose first lines are line `skipped + 1`
/// of the files.
fn hunks(out: &mut String, before: &str, after: &str, skipped: usize) {
    let text_diff = TextDiff::from_lines(before, after);
    for group in text_diff.grouped_ops(CONTEXT) {
        let (first, last) = (&group[0], &group[group.len() - 1]);
        let (old_start, new_start) = (first.old_range().start, first.new_range().start);
        let old_len = last.old_range().end - old_start;
        let new_len = last.new_range().end - new_start;
        out.push_str(
            &style(format!(
                "@@ -{},{old_len} +{},{new_len} @@\n",
                skipped + old_start + usize::from(old_len > 0),
                skipped + new_start + usize::from(new_len > 0)
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

/// With no more than this many lines on either side, `similar` (3.2) diffs another way (no
/// integer remapping): the part cut out of a larger file keeps more lines than this, so that it
/// is diffed the way the whole file is.
const SIMILAR_SMALL: usize = 100;

/// The parts of `before` and `after` whose line diff, with its line numbers moved down by the
/// lines skipped (the third value), is the diff of the whole texts: splitting two 5,000-line
/// files into lines cost a tenth of a step. Whole texts, and no lines skipped, unless that is
/// shown for these texts:
/// - `similar` trims the common prefix of lines, then the common suffix of what is left, and
///   diffs the middle between; cutting only inside those leaves it the same middle;
/// - it then slides each change block along the equal lines next to it (to join blocks); a
///   block's lines only ever rotate, so it slides past a line only if that line equals one of the
///   middle's lines. A line equal to none of them (a barrier) stops every slide: the parts keep
///   one barrier and `CONTEXT` lines beyond it on each side, so the hunks' context is the same;
/// - a lone `\r` ends a line for `similar`; texts with a `\r` are diffed whole.
fn around_the_change<'o, 'n>(before: &'o str, after: &'n str) -> (&'o str, &'n str, usize) {
    let whole = (before, after, 0);
    let (old, new) = (before.as_bytes(), after.as_bytes());
    let carriage_return = |text: &[u8]| memchr::memchr(b'\r', text).is_some();
    if old.len() < 4096 || old == new || carriage_return(old) || carriage_return(new) {
        return whole;
    }
    // The common prefix of lines ends after the last newline both texts share from the start.
    let prefix = line_start(old, common_prefix(old, new));
    // The common suffix of lines of what follows the prefix: its bytes, from a line start in both.
    let same_tail = common_suffix(&old[prefix..], &new[prefix..]);
    let (old_tail, new_tail) = (old.len() - same_tail, new.len() - same_tail);
    let starts_line = |text: &[u8], at: usize| at == prefix || text[at - 1] == b'\n';
    let suffix = if starts_line(old, old_tail) && starts_line(new, new_tail) {
        old_tail
    } else {
        next_line(old, old_tail)
    };
    // Where a position of `old` at or after `suffix` is in `new`.
    let in_new = |at: usize| new.len() - (old.len() - at);
    let middle: Vec<&[u8]> = lines(&old[prefix..suffix])
        .chain(lines(&new[prefix..in_new(suffix)]))
        .collect();
    if middle.len() > MIDDLE_MAX {
        return whole;
    }
    let barrier = |line: &[u8]| !middle.contains(&line);

    // Back from the middle to a barrier, then `CONTEXT` lines more.
    let (mut start, mut above) = (prefix, None);
    while start > 0 && above.is_none_or(|above| above < CONTEXT) {
        let line = line_start(old, start - 1);
        match &mut above {
            Some(above) => *above += 1,
            None if barrier(&old[line..start]) => above = Some(0),
            None => {}
        }
        start = line;
    }
    // On from the middle to a barrier, then `CONTEXT` lines more.
    let (mut end, mut below) = (suffix, None);
    while end < old.len() && below.is_none_or(|below| below < CONTEXT) {
        let line = next_line(old, end);
        match &mut below {
            Some(below) => *below += 1,
            None if barrier(&old[end..line]) => below = Some(0),
            None => {}
        }
        end = line;
    }
    // Enough lines that `similar` takes the way it takes for the whole file.
    let mut kept = lines(&old[start..end]).count();
    while kept <= SIMILAR_SMALL && (start > 0 || end < old.len()) {
        if start > 0 {
            start = line_start(old, start - 1);
        } else {
            end = next_line(old, end);
        }
        kept += 1;
    }
    let skipped = memchr::memchr_iter(b'\n', &old[..start]).count();
    (&before[start..end], &after[start..in_new(end)], skipped)
}

/// More changed lines than a step writes: such a diff is not worth cutting.
const MIDDLE_MAX: usize = 256;

/// The lines of `text`, each with its newline.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split_inclusive(|&b| b == b'\n')
}

/// The start of the line holding byte `at` (`at` itself when a line starts there).
fn line_start(text: &[u8], at: usize) -> usize {
    memchr::memrchr(b'\n', &text[..at]).map_or(0, |i| i + 1)
}

/// The start of the line after the one holding byte `at` (the end, after the last line).
fn next_line(text: &[u8], at: usize) -> usize {
    memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i + 1)
}

/// How many bytes `a` and `b` share from the start.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut same = 0;
    // Block by block, each compared by `memcmp`, then byte by byte in the first that differs.
    while same + 64 <= n && a[same..same + 64] == b[same..same + 64] {
        same += 64;
    }
    same + a[same..n]
        .iter()
        .zip(&b[same..n])
        .take_while(|(x, y)| x == y)
        .count()
}

/// How many bytes `a` and `b` share at the end.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (a, b) = (&a[a.len() - n..], &b[b.len() - n..]);
    let mut same = 0;
    while same + 64 <= n && a[n - same - 64..n - same] == b[n - same - 64..n - same] {
        same += 64;
    }
    same + a[..n - same]
        .iter()
        .rev()
        .zip(b[..n - same].iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
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
    console::truncate_str(line, width, marks().cut)
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
    use proptest::prelude::*;

    fn whole(before: &str, after: &str) -> String {
        let mut out = String::new();
        hunks(&mut out, before, after, 0);
        out
    }

    fn cut(before: &str, after: &str) -> String {
        let (before, after, skipped) = around_the_change(before, after);
        let mut out = String::new();
        hunks(&mut out, before, after, skipped);
        out
    }

    /// Runs of a line, some longer than the lines kept around a change, so that changes can
    /// slide far; and lines that do not repeat.
    fn run() -> impl Strategy<Value = Vec<String>> {
        let line = prop_oneof![
            3 => prop::sample::select(vec!["a\n", "b\n", "\n", "  - x\n"]).prop_map(str::to_string),
            1 => (0..100_000u32).prop_map(|i| format!("unique {i}\n")),
        ];
        let length = prop_oneof![6 => 1usize..4, 1 => 100usize..250];
        (line, length).prop_map(|(line, n)| vec![line; n])
    }

    /// A text, and the same text with a few runs of lines replaced by others, which are often
    /// copies of the lines before or after them.
    fn edited() -> impl Strategy<Value = (String, String)> {
        let edit = (
            any::<prop::sample::Index>(),
            0usize..4,
            prop::collection::vec(run(), 0..2),
            0usize..3,
        );
        (
            prop::collection::vec(run(), 10..40),
            prop::collection::vec(edit, 1..4),
            any::<bool>(),
        )
            .prop_map(|(runs, edits, unended)| {
                let lines = runs.concat();
                let mut new = lines.clone();
                for (at, removed, inserted, copies) in edits {
                    let at = at.index(new.len());
                    let removed = removed.min(new.len() - at);
                    let n = inserted.len() + 1;
                    let inserted = match copies {
                        0 => new[at.saturating_sub(n)..at].to_vec(),
                        1 => new[at..(at + n).min(new.len())].to_vec(),
                        _ => inserted.concat(),
                    };
                    new.splice(at..at + removed, inserted);
                }
                let text = |lines: Vec<String>| {
                    let mut text = lines.concat();
                    if unended {
                        text.pop();
                    }
                    text
                };
                (text(lines), text(new))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn the_diff_around_the_change_is_the_whole_diff((before, after) in edited()) {
            prop_assert_eq!(cut(&before, &after), whole(&before, &after));
        }
    }

    #[test]
    fn a_large_file_is_diffed_around_its_change() {
        let deployment =
            |i: usize| format!("  d-{i}:\n    image: x\n    resources:\n      cpu: 1m\n");
        let before: String = (0..1_000).map(deployment).collect();
        let at = before.find("  d-500:").unwrap();
        let new = "  web-v1:\n    image: y\n    resources:\n      cpu: 1m\n";
        let after = format!("{}{new}{}", &before[..at], &before[at..]);
        let (old, _, skipped) = around_the_change(&before, &after);
        assert!(
            old.lines().count() <= 2 * SIMILAR_SMALL,
            "{}",
            old.lines().count()
        );
        assert!(skipped > 1_900, "{skipped}");
        let diff = cut(&before, &after);
        assert_eq!(diff, whole(&before, &after));
        assert!(diff.starts_with("@@ -1998,6 +1998,10 @@\n"), "{diff}");
        // A run of equal lines that the new lines could slide along reaches past the cut.
        let before = format!(
            "{}{}{}",
            "x: 1\n".repeat(300),
            "a\n".repeat(300),
            "x: 1\n".repeat(300)
        );
        let after = before.replacen("a\n", "a\na\n", 1);
        assert_eq!(cut(&before, &after), whole(&before, &after));
    }
}
