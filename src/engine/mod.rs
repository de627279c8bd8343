//! The step engine: what a release's next step is made of, settled before anything is asked or
//! written, as a typed [`Plan`]; then carried out by the [`Runner`]. `canary next` and `canary
//! demo` take steps through [`take_step`], `next --dry-run` prints the plan through
//! [`dry_run`], and `canary weight` and `canary abort` make their moves through the same runner.

mod deploy;
pub mod gate;
#[cfg(test)]
mod tests;
mod v1_image;

use std::time::Duration;

use crate::cluster::{Target, Wait};
use crate::edits::{self, FileEdit};
use crate::error::Error;
use crate::journal::{Event, Journal, Release, StepDone};
use crate::lock::Locks;
use crate::output::{self, Shell};
use crate::prompt;
use crate::repo::{OpenOnce, Repo};
use crate::runner::{Commit, Publish, Runner, Unpublished};
use crate::settings::Remote;
use crate::workflow::{Action, NextStep, Step, plan};

pub use deploy::canary_commit;

/// How `next` checks a step against the cluster, where an environment has a context.
#[derive(Debug, Clone, Copy)]
pub struct Checks {
    /// `false` with `--no-verify`: the operator's word is taken instead.
    pub verify: bool,
    pub wait: Wait,
    /// How the metric gate that cannot judge yet is met; `None`: not evaluated (a dry run).
    pub gate: Option<gate::IfNotYet>,
    /// Whether a failed gate aborts the release by itself; `None`: as the release is set
    /// (`--gate-auto-abort`).
    pub abort_on_fail: Option<bool>,
    /// The gate on staging answers whether v2 was tested there, waited on as it says; `None`:
    /// the operator (or `--yes`) answers.
    pub staging_gate: Option<gate::IfNotYet>,
    /// What a deploy does with canary's files that the branch or its upstream lacks: publish
    /// them first, or stop with [`WouldPublish`] (a dry run).
    pub publish: Publish,
}

/// A deploy stopped where `next` would first commit or push canary's files
/// ([`Publish::Stop`]): what `next --dry-run` reports.
#[derive(Debug, thiserror::Error)]
#[error("canary's files are not on the branch and its upstream yet")]
pub struct WouldPublish(pub Unpublished);

impl Default for Checks {
    fn default() -> Checks {
        Checks {
            verify: true,
            wait: Wait {
                timeout: Duration::from_secs(600),
            },
            gate: Some(gate::IfNotYet::Wait(Duration::from_secs(600))),
            abort_on_fail: None,
            staging_gate: None,
            publish: Publish::First,
        }
    }
}

/// What the next step does once everything it checks first has passed (the gate, the files'
/// analysis, the deploy's commits on the branch, what the workflow allows): the notes it shows,
/// then what it asks, waits for, writes and journals.
pub struct Plan {
    /// Shown before anything is asked (what a cleanup's deploy leaves to prune).
    pub notes: Vec<String>,
    pub act: Act,
}

pub enum Act {
    /// Finish the step a killed process left half done.
    Resume,
    /// Nothing left.
    Done,
    /// Show the edit's diff, ask "Write ...?", and write it.
    Write { edit: FileEdit, what: String },
    /// A yes/no question. It has no default: a person (or `--yes`) answers it.
    Ask(Ask),
    /// Wait until an environment's cluster shows a deploy, then journal it as verified.
    Verify {
        env: usize,
        target: Target,
        deployed: deploy::Deployed,
    },
    /// Read web-v1's image on these environments' clusters; the operator answers for the rest.
    /// A mismatch asks what now, stopping by default, or pinning web-v1 to an image typed in
    /// (that question has no default, and `--yes` cannot answer it).
    ReadV1Image { targets: Vec<(usize, Target)> },
}

/// A question whose yes moves the release on, and the event that records the yes.
pub struct Ask {
    pub question: String,
    pub event: Event,
    pub if_not: IfNot,
    /// The check that has answered yes already (the staging gate), which the journal names:
    /// the question is shown answered, not asked.
    pub answered: Option<&'static str>,
}

/// What a "no" does.
pub enum IfNot {
    /// The release stays where it is.
    Stay,
    /// web-v1 is pinned to another image, asked for.
    Repin,
}

impl From<Act> for Plan {
    fn from(act: Act) -> Plan {
        Plan {
            notes: Vec::new(),
            act,
        }
    }
}

/// Name the step that [`take_step`] takes from here, when it is one of the plan's or an
/// observation (a deploy owed names itself in its question, an interrupted step in `Resuming`).
pub fn announce(shell: &Shell, release: &Release) {
    if release.in_progress.is_some() {
        return;
    }
    let shape = release.config.shape();
    let plan = plan(&shape);
    if matches!(
        release.position.next(&plan),
        NextStep::Planned(..) | NextStep::Observe { .. }
    ) {
        shell.status("Step", release.position.describe_next(&shape, &plan));
    }
}

/// One step: the interrupted one if there is one, else the next of the plan.
pub fn take_step(
    runner: &mut Runner,
    release: &Release,
    checks: &Checks,
) -> anyhow::Result<Release> {
    let shell = runner.shell;
    let (release, plan) = prepare(runner, release, checks)?;
    for note in &plan.notes {
        shell.note(note);
    }
    carry_out(runner, &release, plan.act, checks)
}

/// Check what the next step needs checked, and settle what it does: nothing is asked, and
/// nothing written but what the checks journal (the gate's evaluation, commits canary learned
/// of) and what a deploy needs on the branch first (with `Commit::Never`, nothing).
pub fn prepare(
    runner: &mut Runner,
    release: &Release,
    checks: &Checks,
) -> anyhow::Result<(Release, Plan)> {
    if release.in_progress.is_some() {
        return Ok((release.clone(), Act::Resume.into()));
    }
    let config = &release.config;
    let shape = config.shape();
    let plan = plan(&shape);
    let env_name = |env: usize| config.environments[env].name.clone();
    let next = release.position.next(&plan);
    let gated;
    let release = match checks.gate {
        Some(not_yet) if gate::due(next, gate::production_weight(release)) => {
            gated = gate::before_increase(
                runner.shell,
                runner.journal,
                runner.locks.as_deref_mut(),
                release,
                not_yet,
                checks.abort_on_fail.unwrap_or(config.gate.auto_abort),
            )?;
            &gated
        }
        _ => release,
    };
    let (release, plan) = match next {
        NextStep::Done => (release.clone(), Act::Done.into()),
        NextStep::Pending { env, after } => {
            runner.refuse_broken_repo(release, format_args!("deploy to {}", env_name(env)))?;
            deploy::deploy(runner, release, env, after, release.phase, checks)?
        }
        NextStep::Observe { weight } => {
            runner.refuse_broken_repo(release, Step::Observe { weight }.describe(&shape))?;
            (release.clone(), deploy::observe(release, weight).into())
        }
        NextStep::Planned(phase, step) => {
            if !matches!(step, Step::Edit { .. }) {
                // Nothing is written, but a deploy or a go-ahead must not rest on broken files.
                runner.refuse_broken_repo(release, step.describe(&shape))?;
            }
            match step {
                Step::Edit { edit } => (
                    release.clone(),
                    Act::Write {
                        edit: FileEdit::Step { edit },
                        what: edit.describe(&shape).to_string(),
                    }
                    .into(),
                ),
                Step::Deploy { env, after } => {
                    deploy::deploy(runner, release, env, after.into(), phase, checks)?
                }
                Step::CheckV1Image => (release.clone(), v1_image::check_v1_image(release, checks)?),
                Step::DeployV2 { env } => (
                    release.clone(),
                    deploy::deploy_v2(release, env, checks).into(),
                ),
                Step::ConfirmV2Tested => (
                    release.clone(),
                    Act::Ask(Ask {
                        question: step.question(&shape, &config.service).expect("asked"),
                        event: Event::StepDone(StepDone {
                            step: "v2 tested".into(),
                            env: Some(env_name(0).to_string()),
                            ..StepDone::default()
                        }),
                        if_not: IfNot::Stay,
                        answered: None,
                    })
                    .into(),
                ),
                Step::Observe { weight } => {
                    (release.clone(), deploy::observe(release, weight).into())
                }
            }
        }
    };
    let (mut release, mut plan) = (release, plan);
    if let Act::Ask(ask) = &mut plan.act {
        // What the workflow would refuse is refused before the question, not after the answer
        // (and before the staging gate's wait).
        crate::runner::advance(&release, Action::Complete { changed: true })?;
        if let (Some(not_yet), NextStep::Planned(_, Step::ConfirmV2Tested)) =
            (checks.staging_gate, next)
        {
            release = gate::staging_test(
                runner.shell,
                runner.journal,
                runner.locks.as_deref_mut(),
                &release,
                not_yet,
            )?;
            ask.answered = Some("--staging-gate");
        }
    }
    Ok((release, plan))
}

/// Carry out what [`prepare`] settled: ask, wait, write and journal.
pub fn carry_out(
    runner: &mut Runner,
    release: &Release,
    act: Act,
    checks: &Checks,
) -> anyhow::Result<Release> {
    let shell = runner.shell;
    match act {
        Act::Resume => Ok(runner.resume(release)?),
        Act::Done => {
            shell.status(
                "Done",
                format!("the release of {} is complete", release.config.service),
            );
            Ok(release.clone())
        }
        Act::Write { edit, what } => Ok(runner.write(release, edit, &what, Vec::new())?),
        Act::Ask(ask) => self::ask(runner, release, ask),
        Act::Verify {
            env,
            target,
            deployed,
        } => deploy::verify(runner, release, env, &target, deployed, checks),
        Act::ReadV1Image { targets } => v1_image::read_v1_image(runner, release, &targets),
    }
}

/// A question whose yes moves the release on.
fn ask(runner: &mut Runner, release: &Release, ask: Ask) -> anyhow::Result<Release> {
    if let Some(by) = ask.answered {
        prompt::echo(&ask.question, &format!("yes ({by} passed)"));
    } else if !runner.prompt.confirm(&ask.question)? {
        return match ask.if_not {
            IfNot::Stay => {
                Err(Error::Declined("not confirmed; the release stays where it is".into()).into())
            }
            IfNot::Repin => v1_image::repin(runner, release),
        };
    }
    let event = ask
        .event
        .answered(ask.answered.or(runner.prompt.answered_by()));
    Ok(runner.confirm(release, Action::Complete { changed: true }, event)?)
}

/// Show what `next` would do, change nothing, and refuse what `next` would refuse before it asks
/// anything, with the same exit code. A step that writes is planned and shown, reading only: the
/// analysis of the files it would write and git's word on them cost more than the plan itself
/// on a large gap.yaml, so they are left to `next`, which runs them before it writes (the
/// workflow never refuses an edit `next` offers). Any other step is prepared as `next` prepares
/// it, every check included, and its plan printed: nothing is written or recorded before a
/// question (and the cluster is not waited on). A deploy whose files `next` would first commit
/// or push stops there and says so.
pub fn dry_run(shell: &Shell, journal: &mut Journal, release: &Release) -> anyhow::Result<()> {
    let config = &release.config;
    let shape = config.shape();
    let plan = plan(&shape);
    let opened = OpenOnce::default();
    if release.in_progress.is_some() {
        shell.status("Would", "finish the interrupted step first");
        return Ok(());
    }
    shell.status("Would", release.position.describe_next(&shape, &plan));
    let next = release.position.next(&plan);
    let gated = config.environments[shape.last_env()].prometheus.is_some();
    if gated && gate::due(next, gate::production_weight(release)) {
        // Not evaluated here: an evaluation is journaled, and a dry run records nothing.
        shell.status(
            "Would",
            "first pass the metric gate (`canary gate` runs it now)",
        );
    }
    if let NextStep::Planned(_, Step::Edit { edit }) = next {
        let repo = Repo::for_reading(&config.repo)?;
        let changes = edits::plan(&FileEdit::Step { edit }, config, &repo)?;
        if changes.is_empty() {
            shell.status("Unchanged", "the files already say so");
        }
        for change in &changes {
            shell.text(&output::diff(change));
        }
        shell.note("dry run: nothing was written");
        return Ok(());
    }
    // As in `next`; a dry run of an edit, above, asks git nothing.
    refuse_moved_on(journal, release, &opened)?;
    // Preparing asks nothing: its one question (a commit before a deploy) is not reached, as
    // `Publish::Stop` stops there.
    let mut nobody = prompt::NoTerminal;
    let mut runner = Runner {
        journal,
        prompt: &mut nobody,
        shell,
        commit: Commit::Never,
        repo: opened,
        locks: None,
    };
    // The gate is left to `next`: it would journal its evaluation. A deploy says what `next`
    // would commit, push or refuse first, without doing it.
    let checks = Checks {
        verify: false,
        gate: None,
        publish: Publish::Stop,
        ..Checks::default()
    };
    let (release, plan) = match prepare(&mut runner, release, &checks) {
        Ok(prepared) => prepared,
        Err(e) => return would_publish(shell, e.downcast()?, config.remote),
    };
    for note in &plan.notes {
        shell.note(note);
    }
    match plan.act {
        Act::Ask(ask) => shell.note(format!(
            "dry run: `next` would ask \"{}\"; nothing was written",
            ask.question
        )),
        Act::Done => {
            carry_out(&mut runner, &release, Act::Done, &checks)?;
            shell.note("dry run: nothing was written");
        }
        // Without verification every other step asks, and the two above returned.
        Act::Resume | Act::Write { .. } | Act::Verify { .. } | Act::ReadV1Image { .. } => {
            shell.note("dry run: nothing was written")
        }
    }
    Ok(())
}

/// Say what `next` would commit and push before a deploy, or refuse as it would.
fn would_publish(shell: &Shell, stop: WouldPublish, remote: Remote) -> anyhow::Result<()> {
    let WouldPublish(state) = stop;
    if !state.uncommitted.is_empty() {
        shell.status(
            "Would",
            format!("first commit {}", state.uncommitted.join(", ")),
        );
    }
    if state.must_push(remote)? {
        shell.status("Would", "then push");
    }
    shell.note("dry run: nothing was written");
    Ok(())
}

/// Refuse to move a release on once the repository shows that someone else's release of the
/// service moved it on (another journal's commits on the branch or its upstream): two
/// operators would each take the other's edits for their own.
pub fn refuse_moved_on(
    journal: &Journal,
    release: &Release,
    repo: &OpenOnce,
) -> anyhow::Result<()> {
    let config = &release.config;
    if config.id.is_empty() {
        // Journaled before releases had ids: their commits carry none to compare.
        return Ok(());
    }
    let repo = repo.open(&config.repo)?;
    let Some(newest) = repo.unfinished_release(&config.service)? else {
        return Ok(());
    };
    // A release this journal cancelled left its commits behind, ending nowhere.
    if config.owns(&newest.release) || journal.cancelled(&config.service, &newest.release)? {
        return Ok(());
    }
    Err(Error::Refused {
        reason: format!(
            "someone else's release of {} moved it on: release {} committed \"{}\" (by {}, in \
             {}), and this journal's release is {}",
            config.service,
            newest.release,
            newest.step,
            newest.author,
            newest.short(),
            config.id
        ),
        first: Some(
            "agree on who goes on: the release stays with the journal that moved it; to take \
             it over here, start it again from the files (`canary start --adopt`) with a \
             journal that does not hold this release"
                .into(),
        ),
        run: Some(format!("canary log {}", config.service)),
    }
    .into())
}

/// Wait `pause` without the release's locks, so that a wait (the gate's, a bake's) never keeps
/// `canary abort` (or any other command) from the release; then take them back, and go on only
/// if the release is as it was. A release that another command moved meanwhile ends the wait,
/// nothing written; `waiting` names who waited.
pub fn pause_unlocked(
    journal: &Journal,
    locks: Option<&mut Locks>,
    release: &Release,
    pause: Duration,
    waiting: &str,
) -> anyhow::Result<Release> {
    let Some(locks) = locks else {
        std::thread::sleep(pause);
        return Ok(release.clone());
    };
    locks.let_go()?;
    let service = &release.config.service;
    let unmoved = |now: &Option<Release>| {
        now.as_ref().is_some_and(|now| {
            now.id == release.id
                && now.updated_at == release.updated_at
                && now.position == release.position
                && now.phase == release.phase
        })
    };
    // In slices, each followed by a look at the journal (no lock needed to read it): a release
    // that another command moved ends a long wait (a bake of minutes) within a slice.
    let until = std::time::Instant::now() + pause;
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(PAUSE_SLICE));
        if !unmoved(&journal.in_flight(service)?) {
            break;
        }
    }
    let moved_on = || Error::Refused {
        reason: format!(
            "another canary command moved the release of {service} on while {waiting} waited; \
             this one stops, having written nothing"
        ),
        first: None,
        run: Some(format!("canary status {service}")),
    };
    match locks.retake() {
        Ok(()) => {}
        Err(Error::Busy { .. }) => return Err(moved_on().into()),
        Err(e) => return Err(e.into()),
    }
    match journal.in_flight(service)? {
        now if unmoved(&now) => Ok(now.expect("in flight")),
        _ => Err(moved_on().into()),
    }
}

/// How often a wait without the locks looks whether the release moved.
const PAUSE_SLICE: Duration = Duration::from_secs(2);
