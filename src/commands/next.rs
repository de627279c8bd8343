//! `canary next`: take exactly one step of a release.

use std::time::Duration;

use serde_json::json;

use crate::cli::Globals;
use crate::cluster::{self, Expected, Session, Target, Wait, argocd};
use crate::edits::{self, FileEdit, Move};
use crate::error::Error;
use crate::journal::{NewEvent, Release};
use crate::output;
use crate::prompt;
use crate::release::Image;
use crate::repo::Repo;
use crate::runner::{Commit, Runner, unpublished};
use crate::workflow::{Action, AnyEdit, NextStep, Phase, Step, describe_step, plan};

/// Take exactly one step of a release and say what comes next.
///
/// Before writing, it shows what the step does and the diff of every file, and asks. A deploy
/// step waits for the operator to confirm the deploy or, where the environment has a kubeconfig
/// context, until its cluster shows the deploy (objects present or gone, live weights equal to
/// the files, v1 pods ready on the pinned digest). Where production has a Prometheus, its v2
/// weight goes up, and its ramp ends, only once the metric gate passes (docs/gate.md): a failed
/// gate refuses (exit 3); one that cannot judge yet waits, or with --yes exits 4. A step interrupted by Ctrl-C, a crash or a
/// reboot is finished first, without applying any edit twice.
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

/// How `next` checks a step against the cluster, where an environment has a context.
#[derive(Debug, Clone, Copy)]
pub struct Checks {
    /// `false` with `--no-verify`: the operator's word is taken instead.
    pub verify: bool,
    pub wait: Wait,
    /// How the metric gate that cannot judge yet is met; `None`: not evaluated (a dry run).
    pub gate: Option<super::gate::NotYet>,
}

impl Default for Checks {
    fn default() -> Checks {
        Checks {
            verify: true,
            wait: Wait {
                timeout: Duration::from_secs(600),
            },
            gate: Some(super::gate::NotYet::Wait(Duration::from_secs(600))),
        }
    }
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
    super::refuse_moved_on(&locked.journal, &locked.release)?;
    let mut runner = Runner {
        journal: &mut locked.journal,
        prompt: prompt.as_mut(),
        commit,
    };
    let checks = Checks {
        verify: !args.no_verify,
        wait: Wait {
            timeout: args.timeout,
        },
        gate: Some(if args.yes {
            super::gate::NotYet::Exit
        } else {
            super::gate::NotYet::Wait(args.timeout)
        }),
    };
    announce(&locked.release);
    let release = take_step(&mut runner, &locked.release, &checks)?;
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

/// Name the step that [`take_step`] takes from here, when it is one of the plan's or an
/// observation (a deploy owed names itself in its question, an interrupted step in `Resuming`).
pub fn announce(release: &Release) {
    if release.in_progress.is_some() {
        return;
    }
    let shape = release.config.shape();
    let plan = plan(&shape);
    if matches!(
        release.position.next(&plan),
        NextStep::Planned(..) | NextStep::Observe { .. }
    ) {
        output::status("Step", release.position.describe_next(&shape, &plan));
    }
}

/// One step: the interrupted one if there is one, else the next of the plan.
pub fn take_step(
    runner: &mut Runner,
    release: &Release,
    checks: &Checks,
) -> anyhow::Result<Release> {
    if release.in_progress.is_some() {
        return Ok(runner.resume(release)?);
    }
    let config = &release.config;
    let shape = config.shape();
    let plan = plan(&shape);
    let env_name = |env: usize| config.environments[env].name.clone();
    let next = release.position.next(&plan);
    let gated;
    let release = match checks.gate {
        Some(not_yet) if super::gate::due(next, super::gate::production_weight(release)) => {
            gated = super::gate::before_increase(runner.journal, release, not_yet)?;
            &gated
        }
        _ => release,
    };
    match next {
        NextStep::Done => {
            output::status(
                "Done",
                format!("the release of {} is complete", config.service),
            );
            Ok(release.clone())
        }
        NextStep::Pending { env, after } => {
            runner.refuse_broken_repo(release, &format!("deploy to {}", env_name(env)))?;
            deploy(runner, release, env, after, release.phase, checks)
        }
        NextStep::Observe { weight } => {
            runner.refuse_broken_repo(release, &describe_step(&shape, Step::Observe { weight }))?;
            observe(runner, release, weight)
        }
        NextStep::Planned(phase, step) => {
            if !matches!(step, Step::Edit { .. }) {
                // Nothing is written, but a deploy or a go-ahead must not rest on broken files.
                runner.refuse_broken_repo(release, &describe_step(&shape, step))?;
            }
            match step {
                Step::Edit { edit } => Ok(runner.write(
                    release,
                    FileEdit::Step { edit },
                    &edit.describe(&shape),
                    Vec::new(),
                )?),
                Step::Deploy { env, after } => {
                    deploy(runner, release, env, after.into(), phase, checks)
                }
                Step::CheckV1Image => check_v1_image(runner, release, checks),
                Step::DeployV2 { env } => deploy_v2(runner, release, env, checks),
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
                Step::Observe { weight } => observe(runner, release, weight),
            }
        }
    }
}

fn deploy(
    runner: &mut Runner,
    release: &Release,
    env: usize,
    after: AnyEdit,
    phase: Phase,
    checks: &Checks,
) -> anyhow::Result<Release> {
    // Argo CD deploys what the remote branch has: nothing is confirmed for files it lacks.
    let release = &runner.ready_to_deploy(release)?;
    let config = &release.config;
    let name = &config.environments[env].name;
    let last = env == config.environments.len() - 1;
    if last {
        let application = argocd_application(config, env, checks)?;
        let application = application.as_ref().map(|(app, live)| (app, live));
        if let Some(note) = deleted_by(runner, release, phase, application)? {
            output::note(note);
        }
    }
    let what = after.describe(&config.shape());
    confirm_deploy(
        runner,
        release,
        env,
        checks,
        Deployed {
            question: deploy_question(config, name, &what),
            doing: format!("{} to {name} ({what})", deploy_to(config)),
            detail: json!({ "env": name, "after": after }),
            v2_code: false,
        },
    )
}

/// The operator lands v2's code and deploys it; where the environment has a context, canary
/// waits until its cluster runs it (web no longer runs v1's image).
fn deploy_v2(
    runner: &mut Runner,
    release: &Release,
    env: usize,
    checks: &Checks,
) -> anyhow::Result<Release> {
    let name = &release.config.environments[env].name;
    confirm_deploy(
        runner,
        release,
        env,
        checks,
        Deployed {
            question: format!(
                "Land the v2 code and deploy it to {name}. No production traffic reaches v2 yet. \
                 Is v2 deployed to {name}?"
            ),
            doing: format!("land the v2 code and deploy it to {name}"),
            detail: json!({ "env": name, "what": "v2 code" }),
            v2_code: true,
        },
    )
}

/// A deploy to confirm: how it is asked, said and journaled.
struct Deployed {
    question: String,
    doing: String,
    /// The `deploy-confirmed` event's detail, before how it was confirmed.
    detail: serde_json::Value,
    /// v2's code deploy: web must run another image than v1's.
    v2_code: bool,
}

/// Confirm a deploy to `env`: asked where it has no context (or with --no-verify), else read on
/// its cluster (and its Argo CD Application) until it shows the deploy, whatever --yes says.
fn confirm_deploy(
    runner: &mut Runner,
    release: &Release,
    env: usize,
    checks: &Checks,
    deployed: Deployed,
) -> anyhow::Result<Release> {
    let config = &release.config;
    let name = &config.environments[env].name;
    let event = |detail: serde_json::Value| {
        let mut base = deployed.detail.clone();
        base.as_object_mut()
            .expect("an object")
            .extend(detail.as_object().cloned().unwrap_or_default());
        NewEvent::new("deploy-confirmed", base)
    };
    let Some(target) = Target::of(config, env) else {
        return ask(runner, release, &deployed.question, event(json!({})));
    };
    if !checks.verify {
        return ask(
            runner,
            release,
            &deployed.question,
            event(json!({ "verified": false, "context": target.context,
                          "note": "confirmed without verification (--no-verify)" })),
        );
    }
    let app = config.environments[env].argocd.as_ref();
    output::status(
        "Deploy",
        format!(
            "{}; canary checks the cluster{}",
            deployed.doing,
            app.map(|app| format!(" and Argo CD Application {app}"))
                .unwrap_or_default()
        ),
    );
    let repo = Repo::open(&config.repo)?;
    let mut expected = Expected::read(config, &repo, env)?;
    expected.synced_at(super::canary_commit(runner.journal, release, &repo)?, &repo);
    if deployed.v2_code {
        expected.expect_v2_code(config);
    }
    let session = Session::connect(&target)?;
    let warnings = cluster::wait_until_matching(&session, &expected, checks.wait)?;
    for warning in &warnings {
        println!("{:>12} {}", "", warning.styled());
    }
    let mut verified = json!({ "verified": true, "context": target.context });
    // The journal says which Application, at which revision, the deploy was verified by.
    if let Some(application) = warnings
        .iter()
        .find(|f| f.code == "argocd-application")
        .and_then(|f| f.detail.clone())
    {
        verified["argocd"] = application;
    }
    output::status(
        "Verified",
        format!("{name} (context {}) shows the deploy", target.context),
    );
    Ok(runner.confirm(release, Action::Complete { changed: true }, event(verified))?)
}

/// Production's Argo CD Application and what it reports, read for the cleanup's note on
/// pruning; `None` without one, without verification, or when the cluster lacks it (the deploy
/// then says so).
fn argocd_application(
    config: &crate::release::Settings,
    env: usize,
    checks: &Checks,
) -> anyhow::Result<Option<(argocd::AppRef, argocd::AppStatus)>> {
    let (Some(app), Some(target), true) = (
        &config.environments[env].argocd,
        Target::of(config, env),
        checks.verify,
    ) else {
        return Ok(None);
    };
    let live = Session::connect(&target)?.application(app)?;
    Ok(live.map(|live| (app.clone(), argocd::AppStatus::read(&live))))
}

/// The operator watches v2 at production's weight, scheduled or set by hand, before it goes up.
fn observe(runner: &mut Runner, release: &Release, weight: u8) -> anyhow::Result<Release> {
    let config = &release.config;
    ask(
        runner,
        release,
        &format!(
            "Watch v2 at {weight}% in {}. Does it work well enough to go on? (If not, `canary \
             abort {}` sends all traffic back to v1.)",
            config.environments[config.shape().last_env()].name,
            config.service
        ),
        NewEvent::new("step-done", json!({ "step": "observed", "weight": weight })),
    )
}

/// What a cleanup phase deleted, for the note at its production deploy: there, Argo CD removes
/// a deleted resource only when the sync prunes, which production's Application, when canary
/// reads it, says it does on its own or not. `None` outside the cleanup.
fn deleted_by(
    runner: &Runner,
    release: &Release,
    phase: Phase,
    application: Option<(&argocd::AppRef, &argocd::AppStatus)>,
) -> anyhow::Result<Option<String>> {
    let config = &release.config;
    let name = &config.environments[config.environments.len() - 1].name;
    let ns = &config.namespace;
    let prune = |what: &str, delete: &str, objects: &[String]| match application {
        Some((app, live)) => argocd::prune_note(app, live, objects),
        None => format!(
            "{name} keeps {what} until it is pruned: sync with Argo CD's Prune option, or \
             {delete} by hand"
        ),
    };
    Ok(Some(match phase {
        Phase::Cleanup1 => {
            let web_v1 = format!("{}-v1", config.service_name());
            let patches: Vec<String> = deleted_files(runner, release, phase)?
                .into_iter()
                .filter(|path| path != edits::SERVICE_PATCH)
                .collect();
            let with_patches = if patches.is_empty() {
                String::new()
            } else {
                format!(" (its patches went with it: {})", patches.join(", "))
            };
            format!(
                "cleanup-1 deleted the Deployment {web_v1}{with_patches} and web-v1's \
                 AuthorizationPolicy; {}. The Service patch went too: the sync gives the Service \
                 {} its own selector back",
                prune(
                    "them",
                    &format!(
                        "`kubectl -n {ns} delete deployment {web_v1}` and delete web-v1's \
                         AuthorizationPolicy"
                    ),
                    &[
                        format!("Deployment {web_v1}"),
                        "web-v1's AuthorizationPolicy".into(),
                    ]
                ),
                config.service_name()
            )
        }
        Phase::Cleanup2 => {
            let paths: Vec<String> = config
                .environments
                .iter()
                .map(|env| edits::virtual_service_patch(&env.name))
                .collect();
            format!(
                "cleanup-2 deleted the VirtualService patches ({}); no resource goes with them: \
                 the sync gives the VirtualService {} its own routes back, with nothing to prune",
                paths.join(", "),
                config.virtual_service_name()
            )
        }
        Phase::Cleanup3 => {
            let rule = config.destination_rule_name();
            format!(
                "cleanup-3 deleted the DestinationRule {rule}; {}",
                prune(
                    "it",
                    &format!("`kubectl -n {ns} delete destinationrule {rule}`"),
                    &[format!("DestinationRule {rule}")]
                )
            )
        }
        _ => return Ok(None),
    }))
}

/// The files that the edits of `phase` deleted, as the journal recorded them.
fn deleted_files(runner: &Runner, release: &Release, phase: Phase) -> anyhow::Result<Vec<String>> {
    let events = runner.journal.events(release.id)?;
    Ok(events
        .iter()
        .filter(|e| e.kind == "files-written" && e.phase == phase.name())
        .flat_map(|e| e.detail["files"].as_array().into_iter().flatten())
        .filter(|file| file["after"].is_null())
        .filter_map(|file| file["path"].as_str().map(str::to_string))
        .collect())
}

/// What the operator does for a deploy: push it and deploy it, unless canary pushed.
fn deploy_to(config: &crate::release::Settings) -> &'static str {
    match config.remote {
        crate::release::Remote::Operator => "push and deploy",
        crate::release::Remote::Push | crate::release::Remote::None => "deploy",
    }
}

/// The question that confirms a deploy the operator makes: "Push and deploy" is asked only
/// where canary did not push.
fn deploy_question(config: &crate::release::Settings, name: &str, what: &str) -> String {
    match config.remote {
        crate::release::Remote::Operator => {
            format!("Push and deploy to {name} ({what}). Is it deployed to {name}?")
        }
        crate::release::Remote::Push => format!("Pushed ({what}). Is it deployed to {name}?"),
        crate::release::Remote::None => {
            format!("Deploy to {name} ({what}). Is it deployed to {name}?")
        }
    }
}

/// A question whose yes moves the release on and whose no leaves it where it is.
fn ask(
    runner: &mut Runner,
    release: &Release,
    question: &str,
    event: NewEvent,
) -> anyhow::Result<Release> {
    // What the workflow would refuse is refused before the question, not after the answer.
    crate::runner::advance(release, Action::Complete { changed: true })?;
    if !runner.prompt.confirm(question)? {
        return Err(Error::Declined("not confirmed; the release stays where it is".into()).into());
    }
    let event = answered(runner.prompt, event);
    Ok(runner.confirm(release, Action::Complete { changed: true }, event)?)
}

/// A confirmation's event, with how the yes was given: an audit tells a person's word on a
/// deploy from a pipeline's `--yes`.
fn answered(prompt: &dyn prompt::Prompt, mut event: NewEvent) -> NewEvent {
    if let (Some(how), Some(detail)) = (prompt.answered_by(), event.detail.as_object_mut()) {
        detail.insert("answered".into(), how.into());
    }
    event
}

/// The seed's "ensure that the v1 version is running the correct image; if not, perform one
/// final update" before any traffic moves to v1. Environments with a context are read; the
/// operator answers for the others.
fn check_v1_image(
    runner: &mut Runner,
    release: &Release,
    checks: &Checks,
) -> anyhow::Result<Release> {
    let config = &release.config;
    let pinned = config.pinned()?;
    // With --no-verify the operator answers for every environment.
    let targets: Vec<(usize, Target)> = if checks.verify {
        (0..config.environments.len())
            .filter_map(|env| Some((env, Target::of(config, env)?)))
            .collect()
    } else {
        Vec::new()
    };
    if !targets.is_empty() {
        let repo = Repo::open(&config.repo)?;
        let mut findings = Vec::new();
        for (env, target) in &targets {
            let expected = Expected::read(config, &repo, *env)?;
            let session = Session::connect(target)?;
            findings.extend(cluster::compare_v1(
                &expected,
                &session.snapshot(&expected)?,
            ));
        }
        if !findings.is_empty() {
            for finding in &findings {
                println!("{:>12} {}", "", finding.styled());
            }
            let choices = [
                "stop here; the release stays where it is",
                "pin web-v1 to another image (one final image update)",
            ];
            if runner
                .prompt
                .select("web-v1 does not run the pinned image. What now?", &choices)?
                == 0
            {
                return Err(Error::Declined(format!(
                    "web-v1 does not run {pinned}; deploy it, or run `canary next {}` on a \
                     terminal to pin another image",
                    config.service
                ))
                .into());
            }
            return repin(runner, release);
        }
        let checked: Vec<&str> = targets.iter().map(|(_, t)| t.env.as_str()).collect();
        output::status(
            "Verified",
            format!("web-v1 runs {pinned} in {}", checked.join(", ")),
        );
        if targets.len() == config.environments.len() {
            return Ok(runner.confirm(
                release,
                Action::Complete { changed: true },
                NewEvent::new(
                    "step-done",
                    json!({ "step": "v1 image checked", "image": pinned.to_string(),
                            "verified": checked }),
                ),
            )?);
        }
    }
    output::note(format!(
        "the pinned image is {pinned}; answering no pins web-v1 to another one"
    ));
    if !runner
        .prompt
        .confirm("Does the deployed web-v1 run the pinned image?")?
    {
        return repin(runner, release);
    }
    let event = NewEvent::new(
        "step-done",
        json!({ "step": "v1 image checked", "image": pinned.to_string() }),
    );
    let event = answered(runner.prompt, event);
    Ok(runner.confirm(release, Action::Complete { changed: true }, event)?)
}

/// The one final image update: web-v1 pinned to another image, then redeployed everywhere.
fn repin(runner: &mut Runner, release: &Release) -> anyhow::Result<Release> {
    let image: Image = runner
        .prompt
        .input(
            "The image web-v1 should run (REPOSITORY@sha256:HEX)",
            "a terminal",
            &|s| s.parse::<Image>().map(drop),
        )?
        .parse()?;
    let repin = Move::Repin { image };
    let event = repin.event(&release.config)?;
    let what = repin.describe(&release.config);
    Ok(runner.write(release, FileEdit::Move(repin), &what, vec![event])?)
}

/// Show what `next` would do, change nothing, and refuse what `next` would refuse before it asks
/// anything, with the same exit code. A step that writes is planned and shown, reading only: the
/// analysis of the files it would write and git's word on them cost more than the plan itself
/// on a large gap.yaml, so they are left to `next`, which runs them before it writes (the
/// workflow never refuses an edit `next` offers). Any other step is taken as `next` takes it,
/// every check included, up to its first question, which ends it: nothing is written or
/// recorded before a question (and the cluster is not waited on).
fn dry_run(globals: &Globals, service: Option<&str>) -> anyhow::Result<()> {
    let mut journal = super::read_journal(globals)?.ok_or_else(|| {
        crate::error::bad_input("no release is in flight; `canary start SERVICE` opens one")
    })?;
    let release = match super::find_release(&journal, service) {
        Ok(release) => release,
        // As `next`: nothing left is not an error.
        Err(err) => match finished(globals, service)? {
            Some(release) => {
                super::print_next(&release);
                return Ok(());
            }
            None => return Err(err),
        },
    };
    let config = &release.config;
    let shape = config.shape();
    let plan = plan(&shape);
    if release.in_progress.is_some() {
        output::status("Would", "finish the interrupted step first");
        return Ok(());
    }
    output::status("Would", release.position.describe_next(&shape, &plan));
    let next = release.position.next(&plan);
    let gated = config.environments[shape.last_env()].prometheus.is_some();
    if gated && super::gate::due(next, super::gate::production_weight(&release)) {
        // Not evaluated here: an evaluation is journaled, and a dry run records nothing.
        output::status(
            "Would",
            "first pass the metric gate (`canary gate` runs it now)",
        );
    }
    if matches!(
        next,
        NextStep::Pending { .. } | NextStep::Planned(_, Step::Deploy { .. })
    ) {
        // What `next` would commit, push or refuse before the deploy, said without doing it:
        // taking the step below would commit or push.
        let repo = Repo::open(&config.repo)?;
        if let Some(state) = unpublished(&journal, &release, &repo)? {
            if !state.uncommitted.is_empty() {
                output::status(
                    "Would",
                    format!("first commit {}", state.uncommitted.join(", ")),
                );
            }
            if state.must_push(config.remote)? {
                output::status("Would", "then push");
            }
            output::note("dry run: nothing was written");
            return Ok(());
        }
    }
    if let NextStep::Planned(_, Step::Edit { edit }) = next {
        let repo = Repo::for_reading(&config.repo)?;
        let changes = edits::plan(&FileEdit::Step { edit }, config, &repo)?;
        if changes.is_empty() {
            output::status("Unchanged", "the files already say so");
        }
        for change in &changes {
            print!("{}", output::diff(change));
        }
        output::note("dry run: nothing was written");
        return Ok(());
    }
    // As in `next`; a dry run of an edit, above, asks git nothing.
    super::refuse_moved_on(&journal, &release)?;
    let mut prompt = UpToTheQuestion(None);
    let mut runner = Runner {
        journal: &mut journal,
        prompt: &mut prompt,
        commit: Commit::Never,
    };
    // The gate is left to `next`: it would journal its evaluation.
    let checks = Checks {
        verify: false,
        gate: None,
        ..Checks::default()
    };
    let taken = take_step(&mut runner, &release, &checks);
    match (taken, prompt.0) {
        (Err(_), Some(question)) => output::note(format!(
            "dry run: `next` would ask \"{question}\"; nothing was written"
        )),
        (Err(err), None) => return Err(err),
        // Every step but an edit asks before it records anything, and the journal is open for
        // reading only: nothing was recorded.
        (Ok(_), _) => output::note("dry run: nothing was written"),
    }
    Ok(())
}

/// The prompt of a dry run: the first question ends the step, before anything is written.
struct UpToTheQuestion(Option<String>);

impl UpToTheQuestion {
    fn stop<T>(&mut self, question: &str) -> Result<T, Error> {
        self.0 = Some(question.to_string());
        Err(Error::Declined("dry run: not asked".into()))
    }
}

impl prompt::Prompt for UpToTheQuestion {
    fn confirm(&mut self, question: &str) -> Result<bool, Error> {
        self.stop(question)
    }

    fn select(&mut self, question: &str, _choices: &[&str]) -> Result<usize, Error> {
        self.stop(question)
    }

    fn input(
        &mut self,
        question: &str,
        _flag: &str,
        _check: &dyn Fn(&str) -> Result<(), Error>,
    ) -> Result<String, Error> {
        self.stop(question)
    }
}

#[cfg(test)]
mod tests {
    //! The steps driven through the same prompt trait a person answers, with scripted answers.

    use std::path::Path;
    use std::process::Command;

    use super::*;
    use crate::journal::Journal;
    use crate::prompt::{AssumeYes, Prompt, Scripted};
    use crate::release::{Environment, Settings};
    use crate::workflow::{OutOfBandEdit, Position};

    const DIGEST: &str = "sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f";

    struct Setup {
        _dir: tempfile::TempDir,
        repo: std::path::PathBuf,
        journal: Journal,
        release: Release,
    }

    fn git(repo: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-example/gap");
        std::fs::create_dir_all(repo.join("gap")).unwrap();
        std::fs::copy(seed.join("gap.yaml"), repo.join("gap/gap.yaml")).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        git(&repo, &["config", "user.name", "test"]);
        git(&repo, &["config", "user.email", "test@example.invalid"]);
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", "seed"]);
        let config = Settings {
            service: "my-service".into(),
            repo: repo.canonicalize().unwrap(),
            namespace: "relational-data".into(),
            environments: ["staging", "production"]
                .map(|name| Environment {
                    name: name.into(),
                    hosts: vec![format!("{name}.example.com")],
                    context: None,
                    argocd: None,
                    prometheus: None,
                })
                .to_vec(),
            schedule: vec![50, 100],
            v1_image: Some(format!("registry/my-service@{DIGEST}").parse().unwrap()),
            method: Default::default(),
            switch: None,
            remote: crate::release::Remote::None,
            id: String::new(),
            adopted: None,
            gate: Default::default(),
            plan: crate::workflow::PlanVersion::CURRENT,
        };
        let mut journal = Journal::open(&dir.path().join("journal.db"), "test").unwrap();
        let release = journal
            .open_release(&config, &Position::default(), &[None, None])
            .unwrap();
        Setup {
            _dir: dir,
            repo,
            journal,
            release,
        }
    }

    impl Setup {
        fn step(&mut self, prompt: &mut dyn Prompt) -> anyhow::Result<Release> {
            let mut runner = Runner {
                journal: &mut self.journal,
                prompt,
                commit: Commit::Ask,
            };
            let result = take_step(&mut runner, &self.release, &Checks::default());
            if let Ok(release) = &result {
                self.release = release.clone();
            }
            result
        }

        fn gap_yaml(&self) -> String {
            std::fs::read_to_string(self.repo.join("gap/gap.yaml")).unwrap()
        }
    }

    #[test]
    fn a_declined_write_changes_neither_files_nor_journal() {
        let mut setup = setup();
        let before = setup.gap_yaml();
        let err = setup.step(&mut Scripted::new(&["n"])).unwrap_err();
        assert!(
            err.to_string().contains("declined; nothing was written"),
            "{err}"
        );
        assert_eq!(setup.gap_yaml(), before);
        let stored = setup.journal.in_flight("my-service").unwrap().unwrap();
        assert_eq!(stored.position, Position::default());
        assert_eq!(
            setup.journal.events(stored.id).unwrap().len(),
            1,
            "only 'opened'"
        );
    }

    #[test]
    fn a_write_whose_commit_is_declined_stays_uncommitted() {
        let mut setup = setup();
        setup.step(&mut Scripted::new(&["y", "n"])).unwrap();
        assert!(setup.gap_yaml().contains("  web-v1:\n"));
        assert_eq!(
            git(&setup.repo, &["status", "--porcelain"]),
            " M gap/gap.yaml\n"
        );
        assert_eq!(setup.release.position.index, 1);
    }

    #[test]
    fn the_v1_image_check_can_re_pin_web_v1_which_owes_a_deploy_everywhere() {
        let mut setup = setup();
        while setup
            .release
            .position
            .next(&plan(&setup.release.config.shape()))
            != NextStep::Planned(Phase::RouteToV1, Step::CheckV1Image)
        {
            setup.step(&mut AssumeYes).unwrap();
        }
        let other = format!("registry/my-service@sha256:{}", "1".repeat(64));
        setup
            .step(&mut Scripted::new(&["n", &other, "y", "y"]))
            .unwrap();
        assert!(
            setup
                .gap_yaml()
                .contains(&format!("tag: sha256:{}", "1".repeat(64)))
        );
        assert_eq!(setup.release.config.pinned().unwrap().to_string(), other);
        assert_eq!(
            setup.release.position.pending,
            vec![
                (0, OutOfBandEdit::RepinV1.into()),
                (1, OutOfBandEdit::RepinV1.into())
            ]
        );
    }

    #[test]
    #[should_panic(expected = "unexpected prompt")]
    fn a_question_the_script_does_not_expect_fails_the_test() {
        let mut setup = setup();
        let _ = setup.step(&mut Scripted::new(&[]));
    }

    #[test]
    #[should_panic(expected = "answers never asked for")]
    fn answers_left_over_fail_the_test() {
        let mut setup = setup();
        setup.step(&mut AssumeYes).unwrap();
        // A deploy step asks once; the second answer is never wanted.
        let _ = setup.step(&mut Scripted::new(&["y", "y"]));
    }
}
