//! The words canary prints, read from its source: no message carries the run of spaces that a
//! line break inside a string literal leaves (a missing `\` continuation, or a joined line).

use std::path::{Path, PathBuf};

use crate::common::{SERVICE, Sandbox};

/// A string literal of the source: where it starts, and its text as the program sees it, except
/// that escapes are kept as written (`\n` stays two characters) and a raw (unescaped) line
/// break is kept as one.
struct Literal {
    line: usize,
    text: String,
}

/// The string literals of Rust source `src`, comments and character literals skipped; a `\`
/// continuation drops the line break and the indentation after it, as Rust does.
fn literals(src: &str) -> Vec<Literal> {
    let b = src.as_bytes();
    let line_at = |i: usize| src[..i].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                i = src[i..].find('\n').map_or(b.len(), |n| i + n);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = src[i..].find("*/").map_or(b.len(), |n| i + n + 2);
            }
            // A character literal ('"', '\'', 'x', '\u{..}'), or a lifetime (left as it is).
            b'\'' => {
                let rest = &src[i + 1..];
                let len = if let Some(escaped) = rest.strip_prefix('\\') {
                    // The escaped character, then whatever `\u{..}` holds, then the quote.
                    escaped.get(1..).and_then(|e| e.find('\'')).map(|n| n + 2)
                } else {
                    rest.chars()
                        .next()
                        .filter(|c| rest[c.len_utf8()..].starts_with('\''))
                        .map(char::len_utf8)
                };
                i += len.map_or(1, |n| n + 2);
            }
            b'r' if !ident_before(b, i) && raw_start(&src[i..]).is_some() => {
                let hashes = raw_start(&src[i..]).unwrap();
                let start = i + 2 + hashes;
                let close = format!("\"{}", "#".repeat(hashes));
                let end = start + src[start..].find(&close).expect("a closed raw string");
                out.push(Literal {
                    line: line_at(i),
                    text: src[start..end].to_string(),
                });
                i = end + close.len();
            }
            b'"' => {
                let (line, mut text, mut j) = (line_at(i), String::new(), i + 1);
                while b[j] != b'"' {
                    if b[j] == b'\\' {
                        if b[j + 1] == b'\n' {
                            j += 2;
                            while b[j].is_ascii_whitespace() {
                                j += 1;
                            }
                        } else {
                            text.push_str(&src[j..j + 2]);
                            j += 2;
                        }
                        continue;
                    }
                    let c = src[j..].chars().next().unwrap();
                    text.push(c);
                    j += c.len_utf8();
                }
                out.push(Literal { line, text });
                i = j + 1;
            }
            _ => i += 1,
        }
    }
    out
}

fn ident_before(b: &[u8], i: usize) -> bool {
    i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')
}

/// The number of `#` of a raw string that starts `rest` (`r"`, `r#"`, ...).
fn raw_start(rest: &str) -> Option<usize> {
    let hashes = rest[1..].bytes().take_while(|&c| c == b'#').count();
    (rest.as_bytes().get(1 + hashes) == Some(&b'"')).then_some(hashes)
}

/// What is wrong with the spacing of a message, if anything: two or more spaces between two
/// words of prose (spaces that line up columns sit beside a `{}`, a `#` or a label's colon),
/// or a line break in the literal followed by indentation (SQL excepted: its layout is its own).
fn bad_spacing(text: &str) -> Option<String> {
    // A statement, or a list of columns to splice into one.
    let sql = ["SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "WITH"]
        .iter()
        .any(|k| text.trim_start().starts_with(k))
        || text.split(',').all(|column| {
            let column = column.trim();
            !column.is_empty()
                && column
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
    if !sql && text.contains("\n ") {
        return Some("a line break inside the literal, then indentation".into());
    }
    let prose_before = |c: char| c.is_alphanumeric() || ".,;)`'\"?!".contains(c);
    let prose_after = |c: char| c.is_alphanumeric() || "(`'\"".contains(c);
    for line in text.split("\\n") {
        let chars: Vec<char> = line.chars().collect();
        let mut k = 0;
        while k < chars.len() {
            if chars[k] != ' ' {
                k += 1;
                continue;
            }
            let run = chars[k..].iter().take_while(|&&c| c == ' ').count();
            let (before, after) = (k.checked_sub(1).map(|p| chars[p]), chars.get(k + run));
            if run >= 2
                && before.is_some_and(prose_before)
                && after.is_some_and(|&c| prose_after(c))
            {
                return Some(format!("{run} spaces in {line:?}"));
            }
            k += run;
        }
    }
    None
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn no_message_in_the_source_has_a_run_of_spaces_from_a_line_break() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut bad = Vec::new();
    let mut seen = 0;
    for file in &files {
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap();
        // Unit tests hold YAML and tables whose spaces are meant; messages come before them.
        let code = text.split("#[cfg(test)]").next().unwrap();
        for literal in literals(code) {
            seen += 1;
            if let Some(why) = bad_spacing(&literal.text) {
                bad.push(format!("{}:{}: {why}", file.display(), literal.line));
            }
        }
    }
    assert!(
        seen > 1_000,
        "only {seen} string literals read: the reader is broken"
    );
    assert!(
        bad.is_empty(),
        "messages with stray spaces:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_reader_finds_what_a_joined_line_and_a_missing_continuation_leave() {
    let src = "let a = 'x'; let q = '\"'; ('\\n'\"z\") /* \"no\" */ // \"nor this\"\n\
               f(\"a {} b;                 c\"); g(\"one \\\n      two\"); h(r#\"x  y\"#);\n\
               e(\"a line\n    then more\"); t(\"{:<8}  {}\"); l(\"  run:   {}\");";
    let found: Vec<(usize, String)> = literals(src)
        .into_iter()
        .map(|l| (l.line, l.text))
        .collect();
    assert_eq!(
        found,
        [
            (1, "z".to_string()),
            (2, "a {} b;                 c".to_string()),
            (2, "one two".to_string()),
            (3, "x  y".to_string()),
            (4, "a line\n    then more".to_string()),
            (5, "{:<8}  {}".to_string()),
            (5, "  run:   {}".to_string()),
        ]
    );
    let verdicts: Vec<bool> = found
        .iter()
        .map(|(_, t)| bad_spacing(t).is_some())
        .collect();
    assert_eq!(verdicts, [false, true, false, true, true, false, false]);
}

/// Counts agree with their nouns, and where a commit was pushed reads as one phrase, in the
/// question before a write, in `log` and in `status`.
#[test]
fn one_file_is_one_file_and_a_push_reads_as_one_phrase() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let out = sandbox.next().ok();
    assert!(
        out.stderr.contains("and the version labels (1 file)? yes"),
        "{out}"
    );
    let log = sandbox.canary(&["log", SERVICE]).ok();
    let pushed = log
        .stdout
        .lines()
        .find(|l| l.contains("pushed"))
        .unwrap_or_else(|| panic!("no push in the log:\n{log}"));
    let commit = sandbox.git(&["rev-parse", "--short=12", "HEAD"]);
    assert!(
        pushed.ends_with(&format!("{} to origin/main", commit.trim())),
        "{pushed:?}"
    );
    let status = sandbox.canary(&["status", SERVICE]).ok();
    assert!(
        status
            .stdout
            .contains(&format!("pushed {} to origin/main", commit.trim())),
        "{status}"
    );
}

/// The manual page refers to no page that canary does not generate: `canary man` makes one
/// page, canary(1), and names each subcommand as it is typed.
#[test]
fn the_manual_page_refers_only_to_pages_that_exist() {
    let sandbox = Sandbox::new();
    let page = sandbox.canary(&["man"]).ok().stdout;
    let reference = regex::Regex::new(r"([A-Za-z][\w\\.-]*)\((\d)\)").unwrap();
    let references: Vec<&str> = reference
        .find_iter(&page)
        .map(|m| m.as_str())
        .filter(|r| *r != "canary(1)")
        .collect();
    assert!(
        references.is_empty(),
        "pages that do not exist: {references:?}"
    );
    assert!(
        page.starts_with(".ie") || page.contains(".TH canary 1"),
        "{page}"
    );
    for sub in ["start", "next", "weight", "journal", "man"] {
        assert!(
            page.contains(&format!("\\fBcanary {sub}\\fR")),
            "`canary {sub}` is not listed:\n{page}"
        );
    }
}

/// `--quiet` drops the status lines of a step and keeps what the step must still show: its
/// diff, the question and its answer. The next step, without it, says which step it takes.
#[test]
fn quiet_drops_status_lines_and_keeps_the_diff_and_the_question() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let before = sandbox.status()["step"].clone();
    let quiet = sandbox.canary(&["next", SERVICE, "--yes", "--quiet"]).ok();
    assert!(quiet.stdout.contains("+  web-v1:"), "{quiet}");
    assert!(quiet.stderr.contains("(1 file)? yes"), "{quiet}");
    for verb in ["Step", "Wrote", "Committed", "Pushed", "Next"] {
        assert!(
            !quiet
                .stdout
                .lines()
                .any(|l| l.trim_start().starts_with(verb)),
            "{verb} under --quiet:\n{quiet}"
        );
    }
    assert_ne!(sandbox.status()["step"], before, "the step was taken");
    let loud = sandbox.next();
    assert!(
        loud.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("Step")),
        "{loud}"
    );
}
