//! From files on disk to what Argo CD deploys: canary commits exactly the bytes it wrote,
//! pushes where the release says it pushes, and confirms a deploy only once the branch, and its
//! upstream unless the release has no remote, hold every file canary wrote.

use super::{Commit, Runner, failpoint, file_list};
use crate::error::Error;
use crate::journal::{
    Committed, Event, Journal, Recognition, Record, Release, StepDone, Update, WrittenFile,
};
use crate::output::Shell;
use crate::repo::{Branch, CommitFacts, Content, Repo, Upstream, sha256, short_id};
use crate::settings::Remote;

/// What a deploy does first with the files canary wrote that the branch or its upstream lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Commit them (as [`Commit`] says) and push them (where the release pushes).
    First,
    /// Neither: say what would be committed and pushed ([`Ready::Not`]), as `next --dry-run`
    /// does.
    Stop,
}

/// Whether a deploy may be confirmed.
pub enum Ready {
    /// Every file canary wrote is on the branch and its upstream (committed and pushed first
    /// where they were not): the release as the journal has it now.
    Yes(Box<Release>),
    /// With [`Publish::Stop`]: not yet, and this is what `next` would commit or push first.
    Not(Unpublished),
}

/// What stands between the files canary wrote and a deploy of them.
#[derive(Debug)]
pub struct Unpublished {
    /// Files still on disk as canary wrote them but not committed.
    pub uncommitted: Vec<String>,
    /// Whether the upstream lacks any of canary's files (after committing the above).
    pub unpushed: bool,
    branch: Branch,
}

impl Unpublished {
    /// Whether canary is to push before the deploy (once it has committed what is
    /// uncommitted); the refusal that names the push, where the operator pushes.
    pub fn must_push(&self, remote: Remote) -> Result<bool, Error> {
        let behind = self.unpushed || !self.uncommitted.is_empty();
        match remote {
            Remote::None => Ok(false),
            Remote::Push => Ok(behind),
            Remote::Operator if !behind => Ok(false),
            Remote::Operator => {
                let upstream = upstream_of(&self.branch)?;
                Err(Error::Refused {
                    reason: format!(
                        "canary's commits are not on {} yet, and Argo CD deploys what the remote \
                         branch has",
                        upstream.tracking
                    ),
                    first: Some(format!(
                        "push {} to {}",
                        self.branch.name, upstream.tracking
                    )),
                    run: Some("git push".into()),
                })
            }
        }
    }
}

impl Runner<'_> {
    /// Files canary wrote that git sees uncommitted and that still hold what canary wrote: an
    /// earlier step's commit was declined, or the process died before it.
    pub(super) fn left_uncommitted(
        &self,
        release: &Release,
        repo: &Repo,
    ) -> Result<Vec<String>, Error> {
        let written = self.journal.written_files(release.id)?;
        let paths: Vec<&str> = written.iter().map(|f| f.path.as_str()).collect();
        let mut left = Vec::new();
        for path in repo.uncommitted(&paths)? {
            let file = written.iter().find(|f| f.path == path);
            if file.is_some_and(|f| as_written(repo, f).unwrap_or(false)) {
                left.push(path);
            }
        }
        Ok(left)
    }

    /// Commit what canary last wrote to `paths`, exactly those bytes and nothing else, then
    /// push it if the release pushes. A file that changed after canary wrote it is not
    /// committed: it is refused by name, and nothing is committed.
    pub(super) fn commit_written(
        &mut self,
        release: &Release,
        repo: &Repo,
        paths: &[String],
        step: &str,
    ) -> Result<Release, Error> {
        let service = &release.config.service;
        let subject = format!("canary({service}): {step}");
        let written = self.journal.written_files(release.id)?;
        let mut texts = Vec::with_capacity(paths.len());
        for path in paths {
            let text = repo.read(path)?;
            let recorded = written.iter().find(|f| &f.path == path);
            if recorded.is_none_or(|f| text.as_deref().map(sha256) != f.sha256) {
                return Err(Error::Refused {
                    reason: format!(
                        "{path} changed after canary wrote it, and canary commits only what it \
                         wrote; nothing was committed"
                    ),
                    first: Some(format!(
                        "put back canary's version of {path} (`git diff -- {path}` shows the \
                         change), or commit the file yourself"
                    )),
                    run: Some(format!("canary next {service}")),
                });
            }
            texts.push(text);
        }
        let contents: Vec<Content> = paths
            .iter()
            .zip(&texts)
            .map(|(path, text)| Content {
                path,
                text: text.as_deref(),
            })
            .collect();
        // The step stays written and not committed: its deploy waits until a commit holds
        // the files, made by the next `canary next` or by hand.
        // The trailers say whose release this commit moves on, for every operator who reads
        // the repository.
        let message = match release.config.id.as_str() {
            "" => subject.clone(),
            id => format!(
                "{subject}\n\nCanary-Service: {service}\nCanary-Release: {id}\nCanary-Step: {step}\n"
            ),
        };
        let commit = repo.commit_exact(&contents, &message).map_err(|e| {
            e.context(format!(
                "the files are written but not committed; fix what stopped the commit, then \
                 `canary next {service}` commits them (or commit them yourself)"
            ))
        })?;
        self.shell
            .status("Committed", format!("{} {subject}", short_id(&commit)));
        // A process killed here leaves a commit the journal does not know: the next command
        // recognises it by its trailers and bytes.
        failpoint("after-commit");
        let release = self.journal.record(
            release,
            Update {
                events: vec![Event::Committed(Committed {
                    commit: commit.clone(),
                    message: subject,
                    paths: paths.to_vec(),
                    recognised: None,
                })],
                committed: vec![(commit, paths.to_vec())],
                ..Update::default()
            },
        )?;
        if release.config.remote != Remote::Push {
            return Ok(release);
        }
        let branch = repo.branch()?;
        self.push(&release, repo, &branch)
    }

    /// Push the branch to its upstream, provided every commit that would go is canary's own:
    /// what a person committed and has not pushed is theirs to push. A commit of canary's that
    /// the journal knew by another id (rebased, cherry-picked, amended) or not at all (a
    /// process killed before it recorded it) is learned in the same record as the push.
    fn push(&mut self, release: &Release, repo: &Repo, branch: &Branch) -> Result<Release, Error> {
        let upstream = upstream_of(branch)?;
        let (theirs, learned) = self.unpushed_by_owner(release, repo, branch)?;
        if !theirs.is_empty() {
            return Err(foreign_commits(branch, upstream, &theirs, ""));
        }
        repo.push(upstream).map_err(|e| {
            e.context(format!(
                "{} is committed and not pushed; once {} has what {} has (`git pull --rebase`), \
                 `canary next {}` pushes it",
                self.left_behind(release),
                branch.name,
                upstream.tracking,
                release.config.service
            ))
        })?;
        let head = repo.head()?;
        self.shell.status(
            "Pushed",
            format!(
                "{} {} to {}",
                short_id(&head),
                branch.name,
                upstream.tracking
            ),
        );
        let (mut events, committed) = learned_events(self.shell, release, learned);
        events.push(Event::Pushed {
            commit: head,
            branch: branch.name.clone(),
            to: upstream.tracking.clone(),
        });
        Ok(self.journal.record(
            release,
            Update {
                events,
                committed,
                ..Update::default()
            },
        )?)
    }

    /// What the release's last step left, as a refused push names it.
    fn left_behind(&self, release: &Release) -> String {
        match self.left_uncommitted_step(release) {
            Ok(step) => format!("canary's step ({step})"),
            Err(_) => "canary's step".into(),
        }
    }

    /// The commits a push would send, split into someone else's and those of canary's that
    /// the journal does not know by their id (oldest first).
    fn unpushed_by_owner(
        &self,
        release: &Release,
        repo: &Repo,
        branch: &Branch,
    ) -> Result<(Vec<String>, Vec<Recognised>), Error> {
        let unpushed = repo.unpushed_commits(branch)?;
        self.by_owner(release, repo, unpushed)
    }

    /// `commits` (newest first, as git lists them) split as [`Runner::unpushed_by_owner`]
    /// splits them.
    fn by_owner(
        &self,
        release: &Release,
        repo: &Repo,
        commits: Vec<String>,
    ) -> Result<(Vec<String>, Vec<Recognised>), Error> {
        let events = self.journal.events(release.id)?;
        // The ids the journal knows as canary's commits of this release.
        let known: Vec<&str> = events
            .iter()
            .filter_map(|e| match &e.event {
                Event::Committed(committed) => Some(committed.commit.as_str()),
                _ => None,
            })
            .collect();
        let mut theirs = Vec::new();
        let mut learned = Vec::new();
        for commit in commits.into_iter().rev() {
            if known.contains(&commit.as_str()) {
                continue;
            }
            let facts = repo.commit_facts(&commit)?;
            if !is_canary_s(release, &events, &facts) {
                theirs.push(commit);
                continue;
            }
            // The id the journal knew it by: canary's commit of the same step that the branch
            // no longer holds.
            let subject = format!("canary({}): {}", release.config.service, facts.step);
            let mut was = None;
            for entry in events.iter().rev() {
                let Event::Committed(Committed {
                    commit: old,
                    message,
                    ..
                }) = &entry.event
                else {
                    continue;
                };
                let taken = learned
                    .iter()
                    .any(|l: &Recognised| l.was.as_ref() == Some(old));
                if *message == subject && !taken && !repo.is_ancestor(old, "HEAD")? {
                    was = Some(old.to_string());
                    break;
                }
            }
            learned.push(Recognised { facts, was });
        }
        theirs.reverse();
        Ok((theirs, learned))
    }

    /// Record the commits of canary's on the branch that the journal does not know by their
    /// id, so that the deploy waits for the commit the branch holds.
    fn learn_commits(&mut self, release: &Release, repo: &Repo) -> Result<Release, Error> {
        if release.config.id.is_empty() {
            return Ok(release.clone());
        }
        let naming = repo.commits_naming(&release.config.id)?;
        let (_, learned) = self.by_owner(release, repo, naming)?;
        if learned.is_empty() {
            return Ok(release.clone());
        }
        let (events, committed) = learned_events(self.shell, release, learned);
        Ok(self.journal.record(
            release,
            Update {
                events,
                committed,
                ..Update::default()
            },
        )?)
    }

    /// With `--push`, before a step writes: the remote as it is now (fetched) must take the
    /// commit the step will make, or nothing is written. Refused: an upstream that moved on
    /// (its commits are brought in first) and someone else's commit that has not been pushed
    /// (canary pushes only its own).
    pub(super) fn refuse_unpushable(&self, release: &Release, repo: &Repo) -> Result<(), Error> {
        if release.config.remote != Remote::Push || self.commit == Commit::Never {
            return Ok(());
        }
        let branch = repo.branch()?;
        let upstream = upstream_of(&branch)?;
        repo.fetch(upstream)?;
        let (theirs, _) = self.unpushed_by_owner(release, repo, &branch)?;
        if !theirs.is_empty() {
            return Err(foreign_commits(
                &branch,
                upstream,
                &theirs,
                ", so nothing was written",
            ));
        }
        let behind = repo.missing_from_head(&format!("{}@{{upstream}}", branch.name))?;
        refuse_overtaken(release, repo, upstream, &behind)?;
        if !behind.is_empty() {
            return Err(Error::Refused {
                reason: format!(
                    "{} has {} commit(s) that {} lacks (pushed since it was last pulled), so \
                     the push of the commit this step makes would be rejected; nothing was \
                     written",
                    upstream.tracking,
                    behind.len(),
                    branch.name
                ),
                first: Some(format!(
                    "bring {}'s commits into {}, then run canary again",
                    upstream.tracking, branch.name
                )),
                run: Some("git pull --rebase".into()),
            });
        }
        Ok(())
    }

    /// Before a deploy is confirmed (asked, or waited for on the cluster): commit what canary
    /// left uncommitted, push where the release pushes, and otherwise refuse, naming the fix,
    /// unless every file canary wrote is on the branch and the upstream as canary wrote it.
    /// With [`Publish::Stop`], what would be committed or pushed is returned instead, and
    /// what no commit or push by canary can mend is refused alike.
    pub fn ready_to_deploy(&mut self, release: &Release, publish: Publish) -> Result<Ready, Error> {
        let repo = self.repo.open(&release.config.repo)?;
        let Some(state) = unpublished(self.journal, release, &repo)? else {
            return Ok(Ready::Yes(Box::new(self.learn_commits(release, &repo)?)));
        };
        if publish == Publish::Stop {
            return Ok(Ready::Not(state));
        }
        Ok(Ready::Yes(Box::new(self.publish(release, &repo, state)?)))
    }

    /// Commit and push what [`unpublished`] found missing, or refuse.
    fn publish(
        &mut self,
        release: &Release,
        repo: &Repo,
        state: Unpublished,
    ) -> Result<Release, Error> {
        let service = &release.config.service;
        let mut release = release.clone();
        if !state.uncommitted.is_empty() {
            let files = file_list(state.uncommitted.iter());
            let commit = match self.commit {
                Commit::Always => true,
                Commit::Ask => self.prompt.confirm(&format!(
                    "Argo CD deploys only what is committed. Commit {files}, which canary wrote?"
                ))?,
                Commit::Never => false,
            };
            if !commit {
                return Err(Error::Refused {
                    reason: format!(
                        "{files} written by canary but not committed, and Argo CD deploys only \
                         what is committed and pushed"
                    ),
                    first: Some("commit the files canary wrote".into()),
                    run: Some(format!("canary next {service}")),
                });
            }
            self.refuse_unpushable(&release, repo)?;
            let step = self.left_uncommitted_step(&release)?;
            release = self.commit_written(&release, repo, &state.uncommitted, &step)?;
            if release.config.remote == Remote::Push {
                return self.learn_commits(&release, repo);
            }
        }
        if state.must_push(release.config.remote)? {
            release = self.push(&release, repo, &state.branch)?;
        }
        self.learn_commits(&release, repo)
    }

    /// The step a commit of files an earlier step left names: that step (`PHASE: STEP`).
    fn left_uncommitted_step(&self, release: &Release) -> Result<String, Error> {
        let events = self.journal.events(release.id)?;
        let step = events.iter().rev().find_map(|e| match &e.event {
            Event::StepDone(StepDone {
                step,
                changed: Some(true),
                ..
            }) => Some((&e.phase, step)),
            _ => None,
        });
        Ok(match step {
            Some((phase, step)) => format!("{phase}: {step}"),
            None => format!("{}: files canary wrote", release.phase),
        })
    }
}

/// A commit of canary's, told by what it is, that the journal knows by another id (`was`) or
/// not at all.
#[derive(Debug)]
struct Recognised {
    facts: CommitFacts,
    was: Option<String>,
}

/// Whether a commit is canary's in this release, whatever its id: its trailers name the
/// service and this release, and every file it changes holds bytes canary wrote to that file
/// in this release (a rebase, a cherry-pick or an amend that keeps both keeps it canary's).
fn is_canary_s(release: &Release, events: &[Record], facts: &CommitFacts) -> bool {
    let config = &release.config;
    let Some(changed) = &facts.changed else {
        return false;
    };
    if config.id.is_empty()
        || facts.service != config.service
        || !config.owns(&facts.release)
        || facts.step.is_empty()
        || changed.is_empty()
    {
        return false;
    }
    let wrote = |path: &str, sha: &Option<String>| {
        events
            .iter()
            .filter_map(|e| match &e.event {
                Event::FilesWritten { files } => Some(files),
                _ => None,
            })
            .flatten()
            .any(|f| f.path == path && f.after == *sha)
    };
    changed.iter().all(|(path, sha)| wrote(path, sha))
}

/// The events that say which commits of canary's the journal learned, and what they hold.
fn learned_events(
    shell: &Shell,
    release: &Release,
    learned: Vec<Recognised>,
) -> (Vec<Event>, Vec<(String, Vec<String>)>) {
    let mut events = Vec::new();
    let mut committed = Vec::new();
    for Recognised { facts, was } in learned {
        let paths: Vec<String> = facts
            .changed
            .unwrap_or_default()
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        let how = match &was {
            Some(old) => format!(
                "{} rewritten (a rebase, cherry-pick or amend)",
                short_id(old)
            ),
            None => "not recorded when it was made".into(),
        };
        shell.status(
            "Recognised",
            format!(
                "{} as canary's commit of {}: {how}",
                short_id(&facts.commit),
                facts.step
            ),
        );
        events.push(Event::Committed(Committed {
            commit: facts.commit.clone(),
            message: format!("canary({}): {}", release.config.service, facts.step),
            paths: paths.clone(),
            recognised: Some(Recognition {
                recognised: true,
                was,
            }),
        }));
        committed.push((facts.commit, paths));
    }
    (events, committed)
}

/// The refusal of a push that would send someone else's commits.
fn foreign_commits(branch: &Branch, upstream: &Upstream, theirs: &[String], then: &str) -> Error {
    Error::Refused {
        reason: format!(
            "{} has commits that canary did not make and that are not on {} ({}); canary \
             pushes only its own{then}",
            branch.name,
            upstream.tracking,
            theirs
                .iter()
                .map(|c| short_id(c))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        first: Some(format!(
            "push {} yourself, or move those commits off it",
            branch.name
        )),
        run: Some("git push".into()),
    }
}

/// What keeps canary's files from a deploy, `None` when nothing does; refuses what no
/// commit or push by canary can mend (a detached HEAD, a file changed since canary wrote
/// it, no upstream). Reads only.
fn unpublished(
    journal: &Journal,
    release: &Release,
    repo: &Repo,
) -> Result<Option<Unpublished>, Error> {
    let written = journal.written_files(release.id)?;
    if written.is_empty() {
        return Ok(None);
    }
    let branch = repo.branch()?;
    let service = &release.config.service;
    let paths: Vec<&str> = written.iter().map(|f| f.path.as_str()).collect();
    let at_head = repo.contents_at("HEAD", &paths)?;
    let mut uncommitted = Vec::new();
    for (file, at) in written.iter().zip(at_head) {
        if held(repo, file, at, "HEAD")? {
            continue;
        }
        if !as_written(repo, file)? {
            return Err(Error::Refused {
                reason: format!(
                    "{} no longer holds what canary wrote, and no commit on {} does: a \
                     deploy now would not be the one canary planned",
                    file.path, branch.name
                ),
                first: Some(format!(
                    "put back canary's version of {} (`git diff -- {}` shows the change) \
                     or commit it",
                    file.path, file.path
                )),
                run: Some(format!("canary next {service}")),
            });
        }
        uncommitted.push(file.path.clone());
    }
    let unpushed = match release.config.remote {
        Remote::None => false,
        Remote::Operator | Remote::Push => {
            upstream_of(&branch)?;
            let rev = format!("{}@{{upstream}}", branch.name);
            let at_upstream = repo.contents_at(&rev, &paths)?;
            let mut unpushed = false;
            for (file, at) in written.iter().zip(at_upstream) {
                if !held(repo, file, at, &rev)? {
                    unpushed = true;
                    break;
                }
            }
            unpushed
        }
    };
    if uncommitted.is_empty() && !unpushed {
        return Ok(None);
    }
    Ok(Some(Unpublished {
        uncommitted,
        unpushed,
        branch,
    }))
}

/// Whether `rev` holds what canary last wrote to the file: the same content (`at`), or, where
/// the file changed since (a colleague's commit on top), canary's commit of it among its
/// ancestors.
fn held(repo: &Repo, file: &WrittenFile, at: Option<String>, rev: &str) -> Result<bool, Error> {
    if at == file.sha256 {
        return Ok(true);
    }
    match &file.commit {
        Some(commit) => repo.is_ancestor(commit, rev),
        None => Ok(false),
    }
}

/// Whether the file on disk is what canary last wrote to it.
fn as_written(repo: &Repo, file: &WrittenFile) -> Result<bool, Error> {
    Ok(repo.read(&file.path)?.as_deref().map(sha256) == file.sha256)
}

fn upstream_of(branch: &Branch) -> Result<&Upstream, Error> {
    branch.upstream.as_ref().ok_or_else(|| Error::Refused {
        reason: format!(
            "{} has no upstream, so canary cannot tell whether Argo CD sees its commits",
            branch.name
        ),
        first: Some(format!(
            "give {} an upstream, or start the release with --no-remote",
            branch.name
        )),
        run: Some(format!("git push --set-upstream origin {}", branch.name)),
    })
}

/// Commits on the upstream that this clone lacks, every one of them canary's for this service:
/// another canary (a pipeline's other runner, a colleague's `next`) is moving the release on
/// from its own clone. This one stops (exit 75) rather than fight it: pushing a step of its own
/// would be rejected, and the other already took the step.
fn refuse_overtaken(
    release: &Release,
    repo: &Repo,
    upstream: &Upstream,
    behind: &[String],
) -> Result<(), Error> {
    let Some(newest) = behind.first() else {
        return Ok(());
    };
    let facts = behind
        .iter()
        .map(|commit| repo.commit_facts(commit))
        .collect::<Result<Vec<_>, _>>()?;
    if facts.iter().any(|f| f.service != release.config.service) {
        return Ok(());
    }
    let newest = facts
        .iter()
        .find(|f| &f.commit == newest)
        .map_or("", |f| f.step.as_str());
    Err(Error::Overtaken(format!(
        "another canary pushed {} step(s) of {}'s release to {} since this clone was pulled \
         (the newest: {newest}): it is moving the release on, so this one stops, having written \
         nothing; the other's journal says where the release is",
        behind.len(),
        release.config.service,
        upstream.tracking
    )))
}
