//! Carries out one step or one out-of-band edit of a release: shows it, asks, records it as
//! started, writes the files, records it as done. A process killed anywhere in between leaves a
//! step in progress that the next command finishes without applying any edit twice.

mod publish;

pub use publish::{Publish, Ready, Unpublished};

use crate::error::Context as _;

use crate::check;
use crate::edits::{self, FileEdit};
use crate::error::{Error, bad_input};
use crate::failpoint::{disk_full, failpoint};
use crate::journal::{Event, InProgress, Journal, PlannedFile, Release, StepDone, Update};
use crate::output::{self, Shell};
use crate::prompt::Prompt;
use crate::repo::{OpenOnce, Repo, sha256};
use crate::source::FileChange;
use crate::workflow::{Action, Phase, Position, Refusal};

/// Whether to commit what a step wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    Ask,
    Always,
    Never,
}

pub struct Runner<'a> {
    pub journal: &'a mut Journal,
    pub prompt: &'a mut dyn Prompt,
    pub shell: &'a Shell,
    pub commit: Commit,
    pub repo: OpenOnce,
    /// The release's locks, let go while the gate pauses; `None` where nothing waits on it.
    pub locks: Option<&'a mut crate::lock::Locks>,
}

fn hash(text: &Option<String>) -> Option<String> {
    text.as_deref().map(sha256)
}

/// Where `action` moves the release, or the refusal that names the step that comes first.
pub fn advance(release: &Release, action: Action) -> Result<(Position, Phase), Error> {
    let config = &release.config;
    let plan = crate::workflow::plan(&config.shape());
    let next = release
        .position
        .apply(&config.shape(), &plan, action)
        .map_err(|r| refused(r, config))?;
    let phase = next.phase(&plan);
    Ok((next, phase))
}

fn refused(refusal: Refusal, config: &crate::settings::Settings) -> Error {
    let service = &config.service;
    Error::Refused {
        reason: refusal.reason,
        run: match refusal.weight {
            Some((env, percent)) => Some(format!(
                "canary weight {service} {} {percent}, then `{}` to deploy it",
                config.environments[env].name,
                crate::report::command(&format!("canary next {service}"))
            )),
            None => refusal
                .first
                .as_ref()
                .map(|_| format!("canary next {service}")),
        },
        first: refusal.first,
    }
}

impl Runner<'_> {
    /// Move the release by an action that writes no file (a deploy confirmed, a check passed).
    pub fn confirm(
        &mut self,
        release: &Release,
        action: Action,
        event: Event,
    ) -> Result<Release, Error> {
        let position = advance(release, action)?;
        Ok(self.journal.record(
            release,
            Update {
                events: vec![event],
                position: Some(position),
                ..Update::default()
            },
        )?)
    }

    /// Show an edit's changes, ask, and write them, completing the workflow action the edit
    /// answers for the files it changed.
    pub fn write(
        &mut self,
        release: &Release,
        edit: FileEdit,
        what: &str,
        events: Vec<Event>,
    ) -> Result<Release, Error> {
        let config = &release.config;
        // Refuse what the workflow does not allow before reading any file: whether the edit
        // changes anything does not decide whether it may happen.
        advance(release, edit.action(&[], config))?;
        let repo = self.repo.open(&config.repo)?;
        let changes = edits::plan(&edit, config, &*repo)?;
        let action = edit.action(&changes, config);
        let (after, _) = advance(release, action.clone())?;
        self.refuse_broken(release, &repo, &changes, after, what)?;
        if changes.is_empty() {
            self.shell
                .status("Unchanged", format!("{what}: the files already say so"));
            let mut events = events;
            events.push(Event::StepDone(StepDone {
                step: what.to_string(),
                changed: Some(false),
                ..StepDone::default()
            }));
            let position = advance(release, action)?;
            return Ok(self.journal.record(
                release,
                Update {
                    events,
                    position: Some(position),
                    ..Update::default()
                },
            )?);
        }
        self.refuse_foreign_changes(release, &repo, &changes)?;
        // What is written is committed to the branch Argo CD deploys; on a detached HEAD that
        // commit would belong to no branch, and inside a rebase or merge to someone else's
        // operation.
        repo.branch()?;
        // With --push, what would keep the step's commit from the remote refuses it now,
        // before anything is written.
        self.refuse_unpushable(release, &repo)?;
        for change in &changes {
            self.shell.text(&output::diff(change));
        }
        let question = format!(
            "Write {} ({})?",
            what,
            crate::output::count(changes.len() as u64, "file")
        );
        if !self.prompt.confirm(&question)? {
            return Err(Error::Declined("declined; nothing was written".into()));
        }
        // A colleague's commit pulled, or an editor's save, while the question waited: the
        // plan is of bytes that are gone, and writing it would revert theirs.
        for change in &changes {
            repo.unchanged(&change.path, change.before.as_deref())?;
        }
        let in_progress = InProgress {
            edit,
            phase: release.phase,
            action,
            what: what.to_string(),
            files: changes
                .iter()
                .map(|c| PlannedFile {
                    path: c.path.clone(),
                    before: hash(&c.before),
                    after: hash(&c.after),
                    weights: check::state::record(&c.path, c.after.as_deref()).weights,
                })
                .collect(),
        };
        let started = self.journal.record(
            release,
            Update {
                events: vec![Event::StepStarted {
                    step: what.to_string(),
                    files: in_progress.files.clone(),
                }],
                in_progress: Some(Some(in_progress.clone())),
                ..Update::default()
            },
        )?;
        failpoint("after-step-started");
        self.write_files(&repo, &changes)
            .map_err(|e| interrupted(e, &release.config.service, false))?;
        self.finish(&started, &repo, in_progress, events)
    }

    /// Run `canary check`'s analysis on the state the edit would leave (the repository with
    /// `changes` applied, the release at `position`) and refuse when it has an error: a step
    /// never writes a broken state, nor builds on one that a person broke by hand.
    fn refuse_broken(
        &self,
        release: &Release,
        repo: &Repo,
        changes: &[FileChange],
        position: Position,
        what: impl std::fmt::Display,
    ) -> Result<(), Error> {
        let mut written =
            check::state::written_from_events(&self.journal.files_written(release.id)?);
        for c in changes {
            written.insert(
                c.path.clone(),
                check::state::record(&c.path, c.after.as_deref()),
            );
        }
        let journaled = check::Journaled {
            config: release.config.clone(),
            position,
            written,
        };
        let findings = check::analyze(
            &check::Overlay { repo, changes },
            &check::Scope::of(&release.config),
            Some(&journaled),
        )?;
        if !crate::finding::has_errors(&findings) {
            return Ok(());
        }
        let state = if changes.is_empty() {
            "the repository does not pass"
        } else {
            "the files it would write would not pass"
        };
        let errors: Vec<String> = findings
            .iter()
            .filter(|f| f.is_error())
            .map(ToString::to_string)
            .collect();
        Err(crate::error::broken(
            &format!("{what}: {state} `canary check`"),
            &errors,
            &format!("canary check {}", release.config.service),
        ))
    }

    /// The same check before a step that writes nothing (a deploy, a confirmation): the
    /// repository must be sound as it stands.
    /// `what` is put into words only if the repository does not pass.
    pub fn refuse_broken_repo(
        &self,
        release: &Release,
        what: impl std::fmt::Display,
    ) -> Result<(), Error> {
        let repo = self.repo.open(&release.config.repo)?;
        self.refuse_broken(release, &repo, &[], release.position.clone(), what)
    }

    fn write_files(&self, repo: &Repo, changes: &[FileChange]) -> Result<(), Error> {
        for (i, change) in changes.iter().enumerate() {
            repo.replace(
                &change.path,
                change.before.as_deref(),
                change.after.as_deref(),
            )?;
            if i == 0 {
                failpoint("after-first-file-written");
            }
        }
        failpoint("after-files-written");
        Ok(())
    }

    fn finish(
        &mut self,
        release: &Release,
        repo: &Repo,
        step: InProgress,
        mut events: Vec<Event>,
    ) -> Result<Release, Error> {
        let (position, phase) = advance(release, step.action.clone())?;
        events.push(Event::FilesWritten {
            files: step.files.clone(),
        });
        events.push(Event::StepDone(StepDone {
            step: step.what.clone(),
            changed: Some(true),
            ..StepDone::default()
        }));
        failpoint("before-step-done");
        let update = Update {
            events,
            position: Some((position, phase)),
            in_progress: Some(None),
            written: step
                .files
                .iter()
                .map(|f| (f.path.clone(), f.after.clone()))
                .collect(),
            config: match &step.edit {
                FileEdit::Move(m) => m.settings(&release.config),
                FileEdit::Step { .. } => None,
            },
            v2_weights: Some(crate::edits::v2_weights(Some(repo), &release.config)),
            committed: Vec::new(),
            webhooks: None,
        };
        let recorded = if disk_full("disk-full-before-step-done") {
            Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                Some("database or disk is full".into()),
            )
            .into())
        } else {
            self.journal.record(release, update)
        };
        let done = recorded.map_err(|e| interrupted(e, &release.config.service, true))?;
        failpoint("after-step-done");
        self.shell.status(
            "Wrote",
            format!(
                "{} ({})",
                step.what,
                file_list(step.files.iter().map(|f| &f.path))
            ),
        );
        self.offer_commit(&done, repo, &step)
    }

    /// Finish a step that a killed process left half done: the files it had written are kept,
    /// the others written now, and the step recorded once.
    pub fn resume(&mut self, release: &Release) -> Result<Release, Error> {
        let step = release.in_progress.clone().context("no step in progress")?;
        let repo = self.repo.open(&release.config.repo)?;
        self.shell
            .status("Resuming", format!("the interrupted step: {}", step.what));
        let remaining = edits::plan(&step.edit, &release.config, &*repo)?;
        for planned in &step.files {
            let current = hash(&repo.read(&planned.path)?);
            let pending = remaining.iter().find(|c| c.path == planned.path);
            let consistent = match pending {
                None => current == planned.after,
                Some(change) => current == planned.before && hash(&change.after) == planned.after,
            };
            if !consistent {
                return Err(bad_input(format!(
                    "{} changed since the interrupted step began; restore it (git checkout) and \
                     run canary next again",
                    planned.path
                )));
            }
        }
        if let Some(stray) = remaining
            .iter()
            .find(|c| !step.files.iter().any(|p| p.path == c.path))
        {
            return Err(bad_input(format!(
                "{} changed since the interrupted step began; restore it and run canary next again",
                stray.path
            )));
        }
        // As for any step: not on a detached HEAD, nor inside someone else's git operation, nor
        // behind a remote that would reject its push.
        repo.branch()?;
        self.refuse_unpushable(release, &repo)?;
        self.write_files(&repo, &remaining)
            .map_err(|e| interrupted(e, &release.config.service, false))?;
        self.finish(release, &repo, step, Vec::new())
    }

    /// Files with uncommitted changes that canary did not make are not overwritten.
    fn refuse_foreign_changes(
        &self,
        release: &Release,
        repo: &Repo,
        changes: &[FileChange],
    ) -> Result<(), Error> {
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        for path in repo.uncommitted(&paths)? {
            let change = changes.iter().find(|c| c.path == path);
            let current = change.map(|c| hash(&c.before));
            let ours = self.journal.last_written(release.id, &path)?;
            if current != ours {
                return Err(bad_input(format!(
                    "{path} has uncommitted changes that canary did not make; commit or stash \
                     them first, then run this again"
                )));
            }
        }
        Ok(())
    }

    /// Offer to commit what the step wrote (and whatever earlier steps left uncommitted).
    fn offer_commit(
        &mut self,
        release: &Release,
        repo: &Repo,
        step: &InProgress,
    ) -> Result<Release, Error> {
        let commit = match self.commit {
            Commit::Never => false,
            Commit::Always => true,
            Commit::Ask => self.prompt.confirm("Commit these files?")?,
        };
        if !commit {
            return Ok(release.clone());
        }
        let mut paths: Vec<String> = step.files.iter().map(|f| f.path.clone()).collect();
        for left in self.left_uncommitted(release, repo)? {
            if !paths.contains(&left) {
                paths.push(left);
            }
        }
        let step_name = format!("{}: {}", step.phase, step.what);
        self.commit_written(release, repo, &paths, &step_name)
    }
}

/// A step that failed between "started" and "done" in the journal (a write, or the record of
/// it, on a full disk) stays marked interrupted; the error says so, and how it goes on.
fn interrupted(err: impl Into<Error>, service: &str, files_written: bool) -> Error {
    let written = if files_written {
        "the files are written, but the journal could not record the step as done; "
    } else {
        ""
    };
    err.into().context(format!(
        "{written}the step is marked interrupted, and once the cause is fixed `canary next \
         {service}` resumes it"
    ))
}

fn file_list<'a>(paths: impl Iterator<Item = &'a String>) -> String {
    paths.map(String::as_str).collect::<Vec<_>>().join(", ")
}
