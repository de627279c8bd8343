//! How an error reaches the person: one line that says what happened, and for a refusal the
//! step that must come first and the command that takes it.
//!
//! Every canary command canary suggests (a `run:` line, a `` `canary …` `` in a message, the
//! next step) goes through [`command`] or [`commands`], which name the journal when it is not
//! the one a bare `canary` would open: a hint copied as printed works on the same release.

use std::borrow::Cow;
use std::path::Path;
use std::sync::OnceLock;

use crate::error::Error;

pub fn render(err: &anyhow::Error) -> String {
    let mut out = format!("error: {}\n", commands(&format!("{err:#}")));
    if let Some(Error::Refused { first, run, .. }) =
        err.downcast_ref::<Error>().map(Error::innermost)
    {
        if let Some(first) = first {
            out.push_str(&format!("  first: {}\n", commands(first)));
        }
        if let Some(run) = run {
            out.push_str(&format!("  run:   {}\n", command(run)));
        }
    }
    out
}

/// `--journal PATH` (quoted for a shell) when this process's journal is not the default one;
/// set once, at start-up.
static JOURNAL_OPTION: OnceLock<String> = OnceLock::new();

/// Remember the journal this process works on, so that the commands it suggests name it unless
/// it is `default`, the one a bare `canary` opens (the caller asks the journal: this module
/// sits below it). One named by `CANARY_JOURNAL` is named too: a hint is often typed in
/// another shell, or pasted into a runbook.
pub fn set_journal(journal: &Path, default: Option<&Path>) {
    if default == Some(journal) {
        return;
    }
    // Absolute, so that the hint works from any directory.
    let journal = std::path::absolute(journal).unwrap_or_else(|_| journal.to_path_buf());
    let _ = JOURNAL_OPTION.set(format!(
        "--journal {}",
        shell_quoted(&journal.to_string_lossy())
    ));
}

/// A command to run, as shown to the person: a canary command names the journal where
/// [`set_journal`] says it must; any other (`git push`) is shown as it is.
pub fn command(command: &str) -> Cow<'_, str> {
    match (JOURNAL_OPTION.get(), command.strip_prefix("canary ")) {
        (Some(option), Some(rest)) => Cow::Owned(format!("canary {option} {rest}")),
        _ => Cow::Borrowed(command),
    }
}

/// A message with every `` `canary …` `` in it shown as [`command`] shows a command.
pub fn commands(text: &str) -> Cow<'_, str> {
    match JOURNAL_OPTION.get() {
        Some(option) if text.contains("`canary ") => {
            Cow::Owned(text.replace("`canary ", &format!("`canary {option} ")))
        }
        _ => Cow::Borrowed(text),
    }
}

/// `text` as one shell word: as it is when nothing in it is special to a shell, else in
/// single quotes.
fn shell_quoted(text: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%,=".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(format!("'{}'", text.replace('\'', r"'\''")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_one_shell_word() {
        assert_eq!(
            shell_quoted("/tmp/canary-demo-x/journal.db"),
            "/tmp/canary-demo-x/journal.db"
        );
        assert_eq!(shell_quoted("/tmp/my journal.db"), "'/tmp/my journal.db'");
        assert_eq!(shell_quoted("/tmp/it's.db"), r"'/tmp/it'\''s.db'");
        assert_eq!(shell_quoted("/tmp/$HOME"), "'/tmp/$HOME'");
    }
}
