//! One subcommand per file: its clap arguments beside the function that runs it.

pub mod abort;
pub mod cancel;
pub mod check;
pub mod completions;
pub mod context;
pub mod demo;
pub mod explain;
pub mod gate;
pub mod journal;
pub mod list;
pub mod log;
pub mod next;
pub mod run;
pub mod settings;
mod staging_test;
pub mod start;
pub mod status;
mod tell;
pub mod verify;
pub mod weight;

use std::path::PathBuf;

use crate::error::{Error, bad_input};
use crate::journal::{Journal, Release};
use crate::lock::{self, Locks};
use crate::operator::Operator;
use crate::output::Shell;
use crate::repo::{OpenOnce, Repo};
use crate::workflow::{NextStep, Phase, Step, plan};

/// The release a command works on, locked against other canary processes and read after the
/// lock is held, so that what it sees is what it changes.
pub struct Locked {
    pub journal: Journal,
    pub release: Release,
    /// The release's repository, opened to take its lock: the command goes on in it.
    pub repo: OpenOnce,
    /// Held until the command ends, but for the gate's pauses (see [`Locks::let_go`]).
    pub locks: Locks,
}

/// What every command needs to know about its surroundings.
pub struct Globals {
    pub journal: PathBuf,
    /// Worked out only when the journal is written (see [`Operator`]).
    pub operator: Operator,
    pub shell: Shell,
}

impl Globals {
    pub fn from_env(journal: Option<PathBuf>, quiet: bool) -> anyhow::Result<Globals> {
        let journal = match journal {
            Some(path) => path,
            None => crate::journal::default_path().ok_or_else(|| {
                crate::error::bad_input(
                    "cannot tell where the journal goes (no home directory); pass --journal PATH",
                )
            })?,
        };
        Ok(Globals {
            journal,
            operator: Operator::from_env(),
            shell: Shell::new(quiet),
        })
    }
}

pub fn lock_release(globals: &Globals, service: Option<&str>) -> anyhow::Result<Locked> {
    if let Some(service) = service {
        crate::names::check_service(service)?;
    }
    if read_journal(globals)?.is_none() {
        // Nothing was ever started, and opening the journal would create it (or write its
        // schema into an empty file): an error must leave everything as it was.
        return Err(bad_input(match service {
            Some(s) => format!("no release of {s} is in flight; `canary start {s}` opens one"),
            None => "no release is in flight; `canary start SERVICE` opens one".into(),
        })
        .into());
    }
    let journal = Journal::open(&globals.journal, &globals.operator)?;
    let service = match service {
        Some(service) => service.to_string(),
        None => find_release(&journal, None)?.config.service,
    };
    crate::names::check_service(&service)?;
    let lock = lock::lock(&globals.journal, &service)?;
    let release = find_release(&journal, Some(&service))?;
    // A repository that is gone has no files to guard; the command says so when it needs them.
    let mut locks = vec![lock];
    let repo = match Repo::for_reading(&release.config.repo) {
        Ok(repo) => {
            locks.push(lock::lock_in_repo(&repo, &service)?);
            OpenOnce::opened(repo)
        }
        Err(_) => OpenOnce::default(),
    };
    Ok(Locked {
        journal,
        release,
        repo,
        locks: Locks::new(locks),
    })
}

/// The release in flight for `service`, or the only one in flight when no service is named.
pub fn find_release(journal: &Journal, service: Option<&str>) -> Result<Release, anyhow::Error> {
    if let Some(service) = service {
        crate::names::check_service(service)?;
        return journal.in_flight(service)?.ok_or_else(|| {
            bad_input(format!(
                "no release of {service} is in flight{}; `canary list` shows those that are, \
                 `canary start {service}` opens one",
                did_you_mean(journal, service)
            ))
            .into()
        });
    }
    let mut in_flight = journal.releases(false)?;
    match in_flight.len() {
        1 => Ok(in_flight.remove(0)),
        0 => Err(bad_input("no release is in flight; `canary start SERVICE` opens one").into()),
        _ => Err(several_in_flight(&in_flight).into()),
    }
}

/// " (did you mean NAME?)" when the journal holds a release of a service whose name is a
/// slip of the keyboard away from `service` (a third of its letters at most); else nothing.
pub fn did_you_mean(journal: &Journal, service: &str) -> String {
    let services = journal.services().unwrap_or_default();
    closest(service, &services)
        .map(|near| format!(" (did you mean {near}?)"))
        .unwrap_or_default()
}

/// The name among `names` nearest to `typed`, if one is near enough to be what was meant.
fn closest<'n>(typed: &str, names: &'n [String]) -> Option<&'n str> {
    names
        .iter()
        .filter(|n| *n != typed)
        .map(|n| (strsim::damerau_levenshtein(typed, n), n.as_str()))
        .filter(|(distance, n)| *distance <= (n.chars().count() / 3).max(1))
        .min()
        .map(|(_, n)| n)
}

fn several_in_flight(in_flight: &[Release]) -> Error {
    let names: Vec<&str> = in_flight
        .iter()
        .map(|r| r.config.service.as_str())
        .collect();
    bad_input(format!(
        "{} releases are in flight ({}); name the service",
        names.len(),
        names.join(", ")
    ))
}

/// The release a command that only shows it (`status`, `log`) is about: the service's latest,
/// finished or not; with no service named, the only release in flight, or the one that moved
/// last when none is in flight. With several in flight, the message names them.
pub fn shown_release(journal: &Journal, service: Option<&str>) -> anyhow::Result<Release> {
    if let Some(service) = service {
        crate::names::check_service(service)?;
        return journal.latest(service)?.ok_or_else(|| {
            bad_input(format!(
                "no release of {service} in the journal{}",
                did_you_mean(journal, service)
            ))
            .into()
        });
    }
    let mut in_flight = journal.releases(false)?;
    match in_flight.len() {
        1 => Ok(in_flight.remove(0)),
        0 => journal.newest()?.ok_or_else(|| {
            bad_input("the journal holds no release; `canary start SERVICE` opens one").into()
        }),
        _ => Err(several_in_flight(&in_flight).into()),
    }
}

/// A file a release wrote, as its journal tells.
pub struct WrittenBy {
    /// The sha256 of what the repository held before the release's first write of it
    /// (`None`: no such file).
    pub before: Option<String>,
    /// The step that wrote it last, as `PHASE: STEP`.
    pub step: String,
}

/// Every file the release's steps set out to write, from their `step-started` events.
pub fn written_by(
    events: &[crate::journal::Record],
) -> std::collections::BTreeMap<String, WrittenBy> {
    let mut written = std::collections::BTreeMap::new();
    for entry in events {
        let crate::journal::Event::StepStarted { step, files } = &entry.event else {
            continue;
        };
        let step = format!("{}: {step}", entry.phase);
        for file in files {
            written
                .entry(file.path.clone())
                .and_modify(|w: &mut WrittenBy| w.step = step.clone())
                .or_insert_with(|| WrittenBy {
                    before: file.before.clone(),
                    step: step.clone(),
                });
        }
    }
    written
}

/// Refuse to change `setting` once a file that holds it is written: the first of `paths` that
/// the release wrote and still holds (one that cleanup removed holds nothing).
pub fn refuse_if_written(
    journal: &Journal,
    release: &Release,
    setting: &str,
    paths: &[String],
) -> anyhow::Result<()> {
    let written = written_by(&journal.events(release.id)?);
    for path in paths {
        let Some(by) = written.get(path) else {
            continue;
        };
        if journal.last_written(release.id, path)? == Some(None) {
            continue;
        }
        return Err(Error::Refused {
            reason: format!(
                "{setting} in {path}, which \"{}\" wrote: changed now, the release would say \
                 otherwise than the file",
                by.step
            ),
            first: Some(
                "a setting changes only until a file holds it; to release with another, end \
                 this release (`canary cancel`) and start it again"
                    .into(),
            ),
            run: Some(format!("canary cancel {}", release.config.service)),
        }
        .into());
    }
    Ok(())
}

/// Open the journal to read; `None` when no journal exists yet.
pub fn read_journal(globals: &Globals) -> anyhow::Result<Option<Journal>> {
    Ok(Journal::open_read_only(
        &globals.journal,
        &globals.operator,
    )?)
}

/// The command that comes next for a release, or `None` when it is done.
pub fn next_command(release: &Release, plan: &[(Phase, Step)]) -> Option<String> {
    let more = release.position.next(plan) != NextStep::Done || release.in_progress.is_some();
    (more && !release.is_cancelled()).then(|| format!("canary next {}", release.config.service))
}

pub fn print_next(shell: &Shell, release: &Release) {
    let shape = release.config.shape();
    let plan = plan(&shape);
    if release.is_cancelled() {
        let service = &release.config.service;
        shell.status(
            "Cancelled",
            format!(
                "the release of {service}, in {}; `canary start {service}` opens a new one",
                release.phase.name()
            ),
        );
        return;
    }
    match next_command(release, &plan) {
        Some(command) => shell.status(
            "Next",
            format!(
                "{}  (run `{command}`)",
                release.position.describe_next(&shape, &plan)
            ),
        ),
        None => {
            shell.status(
                "Done",
                format!("the release of {} is complete", release.config.service),
            );
            if let Some(switch) = &release.config.switch {
                shell.note(format!(
                    "web runs v2 for good: the v1 code path and the switch ({switch}) can now \
                     be removed from the codebase, and web's value with them"
                ));
            }
        }
    }
}

/// Refuse to act beside a step that a killed process left half done.
pub fn refuse_if_interrupted(release: &Release) -> Result<(), Error> {
    if release.in_progress.is_some() {
        return Err(Error::Refused {
            reason: "a step was interrupted while writing its files".into(),
            first: Some("finish the interrupted step".into()),
            run: Some(format!("canary next {}", release.config.service)),
        });
    }
    Ok(())
}

/// What an edit outside the plan needs first: whoever answers, the release locked, and no step
/// left half done beside it.
pub fn lock_for_edit(
    globals: &Globals,
    service: &str,
    yes: bool,
) -> anyhow::Result<(Box<dyn crate::prompt::Prompt>, Locked)> {
    let prompt = crate::prompt::for_process(yes);
    let locked = lock_release(globals, Some(service))?;
    refuse_if_interrupted(&locked.release)?;
    Ok((prompt, locked))
}

/// Lock the release, refuse if a step is half done, then show, ask and write the move that
/// `make` derives from the release (it may journal first: the gate's evaluation), like a step.
pub fn write_out_of_band(
    globals: &Globals,
    service: &str,
    yes: bool,
    make: impl FnOnce(&mut Journal, &mut Locks, &Release) -> anyhow::Result<crate::edits::Move>,
) -> anyhow::Result<()> {
    let (mut prompt, mut locked) = lock_for_edit(globals, service, yes)?;
    let repo = std::mem::take(&mut locked.repo);
    crate::engine::refuse_moved_on(&locked.journal, &locked.release, &repo)?;
    let out_of_band = make(&mut locked.journal, &mut locked.locks, &locked.release)?;
    let config = &locked.release.config;
    let what = out_of_band.describe(config);
    let event = crate::journal::Event::of_move(&out_of_band, config)?;
    let mut runner = crate::runner::Runner {
        journal: &mut locked.journal,
        prompt: prompt.as_mut(),
        shell: &globals.shell,
        commit: crate::runner::Commit::Ask,
        repo,
        locks: None,
    };
    let release = runner.write(
        &locked.release,
        crate::edits::FileEdit::Move(out_of_band),
        &what,
        vec![event],
    )?;
    print_next(&globals.shell, &release);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn a_near_name_is_suggested_and_a_far_one_is_not() {
        let names = ["my-service".to_string(), "payments".to_string()];
        for typed in [
            "my-servce",
            "my-sevrice",
            "my-service-",
            "ym-service",
            "My-service",
        ] {
            assert_eq!(closest(typed, &names), Some("my-service"), "{typed}");
        }
        assert_eq!(closest("payment", &names), Some("payments"));
        for typed in ["other-service", "web", "x", "my-service"] {
            assert_eq!(closest(typed, &names), None, "{typed}");
        }
    }
}
