//! `canary cancel`: end a release in flight where it stands, without walking it to the end.

use std::collections::BTreeMap;

use super::Globals;
use crate::error::Error;
use crate::journal::{Event, Record, Release};
use crate::repo::{Repo, sha256};
use crate::workflow::plan;

/// End a release started by mistake, or one that will not go on.
///
/// While no file of the release is written, it ends at once. Once canary has written files,
/// they must first be as they were before the release's first write (every file canary wrote
/// back to what the repository held, committed): after `canary abort` and the cleanups, or
/// put back by hand. Otherwise --keep-files ends it all the same, leaves the files as they are
/// and lists them: what was deployed from them stays deployed, and is yours to undo.
///
/// The journal records who cancelled it, when, and at which step. A cancelled release is no
/// longer in flight: `canary list --all` shows it, and `canary start SERVICE` may open a new
/// one.
///
/// Examples:
///   canary cancel my-service
///   canary cancel my-service --keep-files --yes
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service whose release is in flight
    pub service: String,
    /// End the release even though files canary wrote are not as before it, and leave them
    /// as they are
    #[arg(long)]
    pub keep_files: bool,
    /// Answer yes to the question
    #[arg(long)]
    pub yes: bool,
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let shell = &globals.shell;
    let mut prompt = crate::prompt::for_process(args.yes);
    let mut locked = super::lock_release(globals, Some(&args.service))?;
    let release = &locked.release;
    let left = files_left(release, &locked.journal.events(release.id)?)?;
    if !left.is_empty() && !args.keep_files {
        return Err(Error::Refused {
            reason: format!(
                "files canary wrote in the release of {} are not as before it: {}",
                args.service,
                describe(&left)
            ),
            first: Some(
                "put them back (`canary abort` and the cleanups, or by hand, committed), or \
                 end the release and keep them with --keep-files"
                    .into(),
            ),
            run: Some(format!("canary cancel {} --keep-files", args.service)),
        }
        .into());
    }
    let shape = release.config.shape();
    let step = release.position.describe_next(&shape, &plan(&shape));
    let question = format!(
        "Cancel the release of {} at \"{step}\"{}? It cannot be resumed.",
        args.service,
        match left.len() {
            0 => String::new(),
            1 => ", leaving 1 file as it is".into(),
            n => format!(", leaving {n} files as they are"),
        }
    );
    if !prompt.confirm(&question)? {
        return Err(Error::Declined("declined; the release goes on".into()).into());
    }
    let cancelled = Event::Cancelled {
        step,
        left: left.keys().cloned().collect(),
        answered: prompt.answered_by().map(str::to_string),
    };
    let release = locked.journal.cancel(release, cancelled)?;
    super::print_next(shell, &release);
    if !left.is_empty() {
        shell.note(format!(
            "left as they are: {}; what was deployed from them stays deployed",
            describe(&left)
        ));
    }
    Ok(())
}

/// Each file canary wrote in the release that is not as the repository held it before the
/// release's first write (in the work tree, or at HEAD), with the step that last wrote it.
fn files_left(release: &Release, events: &[Record]) -> anyhow::Result<BTreeMap<String, String>> {
    let before = super::written_by(events);
    if before.is_empty() {
        // Nothing written: the repository need not even be there.
        return Ok(BTreeMap::new());
    }
    let repo = Repo::for_reading(&release.config.repo)?;
    let paths: Vec<&str> = before.keys().map(String::as_str).collect();
    let committed = repo.contents_at("HEAD", &paths)?;
    let mut left = BTreeMap::new();
    for ((path, written), at_head) in before.iter().zip(committed) {
        let (was, step) = (&written.before, &written.step);
        let now = repo.read(path)?.as_deref().map(sha256);
        if now != *was || at_head != *was {
            left.insert(path.clone(), step.clone());
        }
    }
    Ok(left)
}

/// The files, each with the step that wrote it.
fn describe(left: &BTreeMap<String, String>) -> String {
    left.iter()
        .map(|(path, step)| format!("{path} (written by \"{step}\")"))
        .collect::<Vec<_>>()
        .join(", ")
}
