//! `canary next`: take exactly one step of a release.

use serde_json::json;

use crate::cli::Globals;
use crate::edits::{self, Job};
use crate::error::Error;
use crate::journal::{NewEvent, Release};
use crate::output;
use crate::prompt;
use crate::release::Image;
use crate::repo::Repo;
use crate::runner::{Commit, Runner};
use crate::workflow::{Action, Edit, NextStep, Phase, Step, describe_step, plan};

/// Take exactly one step of a release and say what comes next.
///
/// Before writing, it shows what the step does and the diff of every file, and asks. A deploy
/// step waits for the operator to confirm the deploy. A step interrupted by Ctrl-C, a crash or a
/// reboot is finished first, without applying any edit twice.
///
/// Examples:
///   canary next                     # the only release in flight
///   canary next my-service --dry-run
///   canary next my-service --yes --commit   # in a pipeline
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service; may be left out when exactly one release is in flight
    pub service: Option<String>,
    /// Answer yes to every question (for pipelines that deploy on their own)
    #[arg(long)]
    pub yes: bool,
    /// Show what the step would do, and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Commit the step's files without asking
    #[arg(long, conflicts_with = "no_commit")]
    pub commit: bool,
    /// Never commit the step's files
    #[arg(long)]
    pub no_commit: bool,
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
    let mut locked = match super::lock_release(globals, args.service.as_deref()) {
        Ok(locked) => locked,
        // Running `next` once more after the end is not an error, whether the release finished
        // long ago or a racing `next` just finished it: there is simply nothing left.
        Err(err) => match finished(globals, args.service.as_deref())? {
            Some(release) => {
                super::print_next(&release);
                return Ok(());
            }
            None => return Err(err),
        },
    };
    let mut runner = Runner {
        journal: &mut locked.journal,
        prompt: prompt.as_mut(),
        commit,
    };
    let release = take_step(&mut runner, &locked.release)?;
    super::print_next(&release);
    Ok(())
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

/// One step: the interrupted one if there is one, else the next of the plan.
pub fn take_step(runner: &mut Runner, release: &Release) -> anyhow::Result<Release> {
    if release.in_progress.is_some() {
        return runner.resume(release);
    }
    let config = &release.config;
    let shape = config.shape();
    let plan = plan(&shape);
    let env_name = |env: usize| config.environments[env].name.clone();
    match release.position.next(&plan) {
        NextStep::Done => {
            output::status(
                "Done",
                format!("the release of {} is complete", config.service),
            );
            Ok(release.clone())
        }
        NextStep::Pending { env, after } => {
            runner.refuse_broken_repo(release, &format!("deploy to {}", env_name(env)))?;
            deploy(runner, release, env, after, release.phase)
        }
        NextStep::Planned(phase, step) => {
            output::status("Step", format!("{phase}: {}", describe_step(&shape, step)));
            if !matches!(step, Step::Edit { .. }) {
                // Nothing is written, but a deploy or a go-ahead must not rest on broken files.
                runner.refuse_broken_repo(release, &describe_step(&shape, step))?;
            }
            match step {
                Step::Edit { edit } => runner.write(
                    release,
                    Job::Step { edit },
                    &edit.describe(&shape),
                    |changes| Action::Complete {
                        changed: !changes.is_empty(),
                    },
                    Vec::new(),
                ),
                Step::Deploy { env, after } => deploy(runner, release, env, after, phase),
                Step::CheckV1Image => check_v1_image(runner, release),
                Step::DeployV2 { env } => ask(
                    runner,
                    release,
                    &format!(
                        "Land the v2 code and deploy it to {}. No production traffic reaches v2 \
                         yet. Is v2 deployed to {}?",
                        env_name(env),
                        env_name(env)
                    ),
                    NewEvent::new(
                        "deploy-confirmed",
                        json!({ "env": env_name(env), "what": "v2 code" }),
                    ),
                ),
                Step::ConfirmV2Tested => ask(
                    runner,
                    release,
                    &format!(
                        "Test v2 on {} (`canary weight {} {} PERCENT` moves its traffic). \
                         Was v2 tested and found good?",
                        env_name(0),
                        config.service,
                        env_name(0)
                    ),
                    NewEvent::new(
                        "step-done",
                        json!({ "step": "v2 tested", "env": env_name(0) }),
                    ),
                ),
                Step::Observe { weight } => ask(
                    runner,
                    release,
                    &format!(
                        "Watch v2 at {weight}% in {}. Does it work well enough to go on? (If \
                         not, `canary abort {}` sends all traffic back to v1.)",
                        env_name(shape.last_env()),
                        config.service
                    ),
                    NewEvent::new("step-done", json!({ "step": "observed", "weight": weight })),
                ),
            }
        }
    }
}

fn deploy(
    runner: &mut Runner,
    release: &Release,
    env: usize,
    after: Edit,
    phase: Phase,
) -> anyhow::Result<Release> {
    let name = &release.config.environments[env].name;
    let last = env == release.config.environments.len() - 1;
    if matches!(phase, Phase::Cleanup1 | Phase::Cleanup2 | Phase::Cleanup3) && last {
        output::note(format!(
            "deleted resources are not removed from {name} by themselves: sync with Argo CD's \
             Prune option, or delete web-v1's Deployment and the removed patches by hand"
        ));
    }
    ask(
        runner,
        release,
        &format!(
            "Push and deploy to {name} ({}). Is it deployed to {name}?",
            after.describe(&release.config.shape())
        ),
        NewEvent::new("deploy-confirmed", json!({ "env": name, "after": after })),
    )
}

/// A question whose yes moves the release on and whose no leaves it where it is.
fn ask(
    runner: &mut Runner,
    release: &Release,
    question: &str,
    event: NewEvent,
) -> anyhow::Result<Release> {
    if !runner.prompt.confirm(question)? {
        return Err(Error::Declined("not confirmed; the release stays where it is".into()).into());
    }
    runner.confirm(release, Action::Complete { changed: true }, event)
}

/// The seed's "ensure that the v1 version is running the correct image; if not, perform one
/// final update" before any traffic moves to v1.
fn check_v1_image(runner: &mut Runner, release: &Release) -> anyhow::Result<Release> {
    let pinned = &release.config.v1_image;
    let choices = [
        format!("yes, web-v1 runs {pinned}"),
        "no, pin web-v1 to another image".to_string(),
    ];
    let choices: Vec<&str> = choices.iter().map(String::as_str).collect();
    let answer = runner
        .prompt
        .select("Does the deployed web-v1 run the pinned image?", &choices)?;
    if answer == 0 {
        return runner.confirm(
            release,
            Action::Complete { changed: true },
            NewEvent::new(
                "step-done",
                json!({ "step": "v1 image checked", "image": pinned.to_string() }),
            ),
        );
    }
    let image: Image = runner
        .prompt
        .input(
            "The image web-v1 should run (REPOSITORY@sha256:HEX)",
            "a terminal",
            &|s| s.parse::<Image>().map(drop),
        )?
        .parse()?;
    let event = NewEvent::new(
        "repinned",
        json!({ "from": pinned.to_string(), "to": image.to_string() }),
    );
    runner.write(
        release,
        Job::Repin { image },
        "pin web-v1 to the new image",
        |_| Action::RepinV1,
        vec![event],
    )
}

/// Show what `next` would do, and change nothing.
fn dry_run(globals: &Globals, service: Option<&str>) -> anyhow::Result<()> {
    let journal = super::read_journal(globals)?.ok_or_else(|| {
        crate::error::bad_input("no release is in flight; `canary start SERVICE` opens one")
    })?;
    let release = super::find_release(&journal, service)?;
    let config = &release.config;
    let shape = config.shape();
    let plan = plan(&shape);
    if release.in_progress.is_some() {
        output::status("Would", "finish the interrupted step first");
        return Ok(());
    }
    output::status("Would", release.position.describe_next(&shape, &plan));
    if let NextStep::Planned(_, Step::Edit { edit }) = release.position.next(&plan) {
        let repo = Repo::open(&config.repo)?;
        let changes = edits::plan(&Job::Step { edit }, config, &repo)?;
        if changes.is_empty() {
            output::status("Unchanged", "the files already say so");
        }
        for change in &changes {
            print!("{}", output::diff(change));
        }
    }
    output::note("dry run: nothing was written");
    Ok(())
}
