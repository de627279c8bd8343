//! Runs every command shown in docs/guide.md, in order, in a sandbox with the seed example as
//! `repo/`, and checks that each prints what the guide shows. Times, commit ids and the sandbox's
//! path are normalised on both sides; a line `...` in the guide stands for any number of lines.
//!
//! `CANARY_BLESS_GUIDE=1 cargo test --test testsuite guide::` rewrites the guide's outputs with
//! what the commands print now; review the diff before committing it.

use crate::common;

use std::path::Path;

use regex::Regex;

/// A command of the guide and the output shown under it.
struct Shown {
    command: String,
    output: Vec<String>,
    /// Where the output lines sit in the guide, to rewrite them when blessing.
    lines: std::ops::Range<usize>,
}

fn parse(guide: &str) -> Vec<Shown> {
    let lines: Vec<&str> = guide.lines().collect();
    let mut shown: Vec<Shown> = Vec::new();
    let mut in_console = false;
    for (i, line) in lines.iter().enumerate() {
        if line.starts_with("```") {
            in_console = !in_console && line.trim() == "```console";
            continue;
        }
        if !in_console {
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            shown.push(Shown {
                command: command.to_string(),
                output: Vec::new(),
                lines: i + 1..i + 1,
            });
        } else if let Some(last) = shown.last_mut() {
            last.output.push(line.to_string());
            last.lines.end = i + 1;
        }
    }
    shown
}

fn normalise(text: &str, sandbox: &Path) -> Vec<String> {
    let time = Regex::new(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?Z?)?").unwrap();
    let commit = Regex::new(r"\b[0-9a-f]{7,12}\b").unwrap();
    let index = Regex::new(r"index [0-9a-f]+\.\.[0-9a-f]+").unwrap();
    let text = text.replace(&sandbox.display().to_string(), "~");
    let text = time.replace_all(&text, "<time>");
    let text = index.replace_all(&text, "index <blob>..<blob>");
    let text = commit.replace_all(&text, "<commit>");
    text.lines().map(|l| l.trim_end().to_string()).collect()
}

/// Whether `actual` matches `expected`, where an expected `...` line matches any lines.
fn matches(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| a == first && matches(rest, more)),
    }
}

#[test]
fn every_command_in_the_guide_prints_what_the_guide_shows() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/guide.md");
    let guide = std::fs::read_to_string(&path).unwrap();
    let shown = parse(&guide);
    assert!(
        shown.len() > 20,
        "only {} commands found in the guide",
        shown.len()
    );
    let sandbox = common::Sandbox::new();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_canary")).parent().unwrap();
    let path_var = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let bless = std::env::var_os("CANARY_BLESS_GUIDE").is_some();
    let mut rewrites = Vec::new();
    let mut failures = Vec::new();
    for item in &shown {
        // A loop in the guide that never ends fails the test instead of hanging it.
        let out = sandbox
            .command("timeout")
            .args(["60", "sh", "-c", &format!("{{ {}\n}} 2>&1", item.command)])
            .env("PATH", &path_var)
            .current_dir(sandbox.tmp.path())
            .output()
            .unwrap();
        let actual = normalise(&String::from_utf8_lossy(&out.stdout), sandbox.tmp.path());
        assert!(
            !actual.iter().any(|l| l.contains("panicked")),
            "{}: {actual:?}",
            item.command
        );
        if !matches(&item.output, &actual) {
            failures.push(format!(
                "$ {}\n--- the guide shows:\n{}\n--- it prints:\n{}",
                item.command,
                item.output.join("\n"),
                actual.join("\n")
            ));
            rewrites.push((item.lines.clone(), actual));
        }
    }
    if bless {
        let mut lines: Vec<String> = guide.lines().map(String::from).collect();
        // From the bottom up, so that the line ranges above stay where they were.
        for (range, actual) in rewrites.into_iter().rev() {
            lines.splice(range, actual);
        }
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        return;
    }
    assert!(
        failures.is_empty(),
        "docs/guide.md is out of date:\n\n{}",
        failures.join("\n\n")
    );
}
