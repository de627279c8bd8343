//! `canary next`: take exactly one step of a release.

use std::time::Duration;

use super::Globals;
use crate::cluster::{self, Wait};
use crate::engine::{self, Checks, gate::IfNotYet};
use crate::journal::Release;
use crate::output::Shell;
use crate::prompt;
use crate::runner::{Commit, Publish, Runner};

/// Take exactly one step of a release and say what comes next.
///
/// Before writing, it shows what the step does and the diff of every file, and asks. A deploy
/// step waits for the operator to confirm the deploy or, where the environment has a kubeconfig
/// context, until its cluster shows the deploy (objects present or gone, live weights equal to
/// the files, v1 pods ready on the pinned digest). Where production has a Prometheus, its v2
/// weight goes up, and its ramp ends, only once the metric gate passes (docs/gate.md): a failed
/// gate refuses (exit 3); one that cannot judge yet waits, or with --yes exits 4. A step
/// interrupted by Ctrl-C, a crash or a reboot is finished first, without applying any edit
/// twice.
///
/// Examples:
///   canary next                     # the only release in flight
///   canary next my-service --dry-run
///   canary next my-service --yes --commit   # in a pipeline
///   canary next my-service --timeout 30m    # a slow GitOps sync
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service; may be left out when exactly one release is in flight
    pub service: Option<String>,
    /// Answer yes to every question (for pipelines that deploy on their own)
    #[arg(long)]
    pub yes: bool,
    /// Show what the step would do, and change nothing; what `next` would refuse before it
    /// asks is refused, with the same exit code
    #[arg(long)]
    pub dry_run: bool,
    /// Commit the step's files without asking
    #[arg(long, conflicts_with = "no_commit")]
    pub commit: bool,
    /// Never commit the step's files
    #[arg(long)]
    pub no_commit: bool,
    /// How long a deploy step waits for the cluster to show the deploy (90s, 10m, 1h)
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = cluster::parse_duration)]
    pub timeout: Duration,
    /// Do not check deploys against the cluster: the operator confirms them, and the journal
    /// records them as confirmed without verification
    #[arg(long)]
    pub no_verify: bool,
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    if args.dry_run {
        return dry_run(globals, args.service.as_deref());
    }
    let mut prompt = prompt::for_process(args.yes);
    let commit = if args.commit {
        Commit::Always
    } else if args.no_commit {
        Commit::Never
    } else {
        Commit::Ask
    };
    let Some(mut locked) = lock_unless_finished(globals, &globals.shell, args.service.as_deref())?
    else {
        return Ok(());
    };
    let repo = std::mem::take(&mut locked.repo);
    engine::refuse_moved_on(&locked.journal, &locked.release, &repo)?;
    let mut runner = Runner {
        journal: &mut locked.journal,
        prompt: prompt.as_mut(),
        shell: &globals.shell,
        commit,
        repo,
        locks: Some(&mut locked.locks),
    };
    let checks = Checks {
        verify: !args.no_verify,
        wait: Wait {
            timeout: args.timeout,
        },
        gate: Some(if args.yes {
            IfNotYet::Exit
        } else {
            IfNotYet::Wait(args.timeout)
        }),
        abort_on_fail: None,
        staging_gate: None,
        publish: Publish::First,
    };
    engine::announce(&globals.shell, &locked.release);
    let release = engine::take_step(&mut runner, &locked.release, &checks)?;
    super::print_next(&globals.shell, &release);
    Ok(())
}

/// The release locked, or `None` once it is finished, said so: running `next` (or `run`) once
/// more after the end is not an error, whether the release finished long ago or a racing
/// `next` just finished it; there is simply nothing left.
pub(super) fn lock_unless_finished(
    globals: &Globals,
    shell: &Shell,
    service: Option<&str>,
) -> anyhow::Result<Option<super::Locked>> {
    match super::lock_release(globals, service) {
        Ok(locked) => Ok(Some(locked)),
        Err(err) => match finished(globals, service)? {
            Some(release) => {
                super::print_next(shell, &release);
                Ok(None)
            }
            None => Err(err),
        },
    }
}

/// The service's last release, when it is finished and no other is in flight.
fn finished(globals: &Globals, service: Option<&str>) -> anyhow::Result<Option<Release>> {
    let (Some(service), Some(journal)) = (service, super::read_journal(globals)?) else {
        return Ok(None);
    };
    if journal.in_flight(service)?.is_some() {
        return Ok(None);
    }
    Ok(journal.latest(service)?.filter(|r| r.finished_at.is_some()))
}

/// `--dry-run`: the journal read, never written, and the engine's plan printed.
fn dry_run(globals: &Globals, service: Option<&str>) -> anyhow::Result<()> {
    let mut journal = super::read_journal(globals)?.ok_or_else(|| {
        crate::error::bad_input("no release is in flight; `canary start SERVICE` opens one")
    })?;
    let release = match super::find_release(&journal, service) {
        Ok(release) => release,
        // As `next`: nothing left is not an error.
        Err(err) => match finished(globals, service)? {
            Some(release) => {
                super::print_next(&globals.shell, &release);
                return Ok(());
            }
            None => return Err(err),
        },
    };
    engine::dry_run(&globals.shell, &mut journal, &release)
}
