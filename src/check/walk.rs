//! `canary start`'s proof that the release can be walked to its end on this repository. Every
//! edit of every phase from the release's position is planned in memory, each on the state the
//! edits before it leave, and the analysis that `canary next` runs before it writes is run on
//! each of those states. What a later step would refuse, halfway through production, is
//! refused at `start`, before anything is written or journaled.
//!
//! Only edits change the files, so the states to check are the one the walk starts from and
//! the one after each edit: a deploy or a confirmation sees what the edit before it left.

use std::collections::BTreeMap;

use super::{Journaled, Overlay, Scope, analyze, state};
use crate::edits::{self, FileEdit};
use crate::error::{Error, bad_input};
use crate::repo::Repo;
use crate::settings::Settings;
use crate::source::FileChange;
use crate::workflow::{Position, Step, plan};

/// Plan and check every edit from `from` to the end of the release; a bad-input error naming
/// the step, the file, the line and the fix when one would be refused. Returns every path the
/// edits write, in order.
pub fn walk(config: &Settings, from: &Position) -> Result<Vec<String>, Error> {
    let repo = Repo::for_reading(&config.repo)?;
    let shape = config.shape();
    let plan = plan(&shape);
    let scope = Scope::of(config);
    let mut journaled = Journaled {
        config: config.clone(),
        position: from.clone(),
        written: BTreeMap::new(),
    };
    // Each file the edits so far changed, once: as it is on disk, and as they leave it.
    let mut state: Vec<FileChange> = Vec::new();
    let mut written: Vec<String> = Vec::new();
    let refusing = if from.index == 0 {
        "refusing to start".to_string()
    } else {
        format!(
            "refusing to adopt the release at {}",
            from.describe_next(&shape, &plan)
        )
    };
    // Before an edit, what `canary check --repo` lists: findings no edit takes away. How the
    // files agree with the journal is for the state the edit leaves, which it may yet make.
    let before_an_edit = matches!(plan.get(from.index), Some((_, Step::Edit { .. })));
    refuse_broken(
        &repo,
        &state,
        &scope,
        (!before_an_edit).then_some(&journaled),
        &format!("{refusing}: `canary check` finds"),
    )?;
    for (index, &(phase, step)) in plan.iter().enumerate().skip(from.index) {
        let Step::Edit { edit } = step else { continue };
        let what = format!("`{phase}: {}`", edit.describe(&shape));
        let overlay = Overlay {
            repo: &repo,
            changes: &state,
        };
        let changes = edits::plan(&FileEdit::Step { edit }, config, &overlay)
            .map_err(|e| bad_input(format!("{refusing}: {what} would be refused: {e}")))?;
        for change in changes {
            if !written.contains(&change.path) {
                written.push(change.path.clone());
            }
            journaled.written.insert(
                change.path.clone(),
                state::record(&change.path, change.after.as_deref()),
            );
            apply(&mut state, change);
        }
        journaled.position = Position {
            index: index + 1,
            ..Position::default()
        };
        refuse_broken(
            &repo,
            &state,
            &scope,
            Some(&journaled),
            &format!("{refusing}: after {what}, `canary check` would find"),
        )?;
    }
    Ok(written)
}

/// Fold one more change of a file into the state: the file as it was on disk, and as it is now.
fn apply(state: &mut Vec<FileChange>, change: FileChange) {
    match state.iter().position(|c| c.path == change.path) {
        Some(i) if state[i].before == change.after => {
            state.remove(i);
        }
        Some(i) => {
            state[i].after = change.after;
            state[i].document = change.document;
        }
        None => state.push(change),
    }
}

/// The analysis of one state of the walk: the refusal says `what` and the first two errors,
/// and how many more.
fn refuse_broken(
    repo: &Repo,
    state: &[FileChange],
    scope: &Scope,
    journaled: Option<&Journaled>,
    what: &str,
) -> Result<(), Error> {
    let overlay = Overlay {
        repo,
        changes: state,
    };
    let findings = analyze(&overlay, scope, journaled)?;
    let errors: Vec<String> = findings
        .iter()
        .filter(|f| f.is_error())
        .map(ToString::to_string)
        .collect();
    let Some(first) = errors.first() else {
        return Ok(());
    };
    let mut message = format!("{what} {first}");
    if let Some(second) = errors.get(1) {
        message.push_str(&format!("\n  and {second}"));
    }
    if errors.len() > 2 {
        message.push_str(&format!("\n  and {} more", errors.len() - 2));
    }
    // Refused as `next` refuses the same finding before it writes, with the same exit code.
    Err(Error::Broken(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(path: &str, before: Option<&str>, after: Option<&str>) -> FileChange {
        FileChange {
            path: path.into(),
            before: before.map(str::to_string),
            after: after.map(str::to_string),
            document: None,
        }
    }

    #[test]
    fn the_state_keeps_each_file_once_as_on_disk_and_as_the_edits_leave_it() {
        let mut state = Vec::new();
        apply(&mut state, change("a", Some("1"), Some("2")));
        apply(&mut state, change("b", None, Some("x")));
        apply(&mut state, change("a", Some("2"), Some("3")));
        assert_eq!(
            state,
            [
                change("a", Some("1"), Some("3")),
                change("b", None, Some("x"))
            ]
        );
        // A file made and removed again, or put back as it was, is as on disk.
        apply(&mut state, change("b", Some("x"), None));
        apply(&mut state, change("a", Some("3"), Some("1")));
        assert_eq!(state, []);
    }
}
