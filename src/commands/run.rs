//! `canary run`: take every step of a release, in order, until it is done or reaches a phase.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::Globals;
use super::staging_test::StagingTest;
use super::tell::Teller;
use crate::cluster::{self, Target, Wait, lease};
use crate::engine::{self, Checks, gate::IfNotYet};
use crate::error::{Error, bad_input};
use crate::journal::{Event, Release};
use crate::notify::{self, Webhook};
use crate::prompt;
use crate::runner::{Commit, Publish, Runner};
use crate::settings::Remote;
use crate::workflow::{NextStep, Phase, Step, plan};

/// Take every step of a release, in order, until it is done.
///
/// The same steps as `next`, one after the other: each edit is written, committed and pushed,
/// each deploy waited for on its cluster, the ramp gated where production has a Prometheus.
/// Deploys are verified: every environment needs a kubeconfig context (`canary context`), or
/// must be named with --trust-deploys, which takes the operator's word (or --yes) for its
/// deploys. A run stopped by Ctrl-C, a crash or --timeout goes on where it stopped when run
/// again; nothing is done twice.
///
/// Exit codes: 0 done (or at --until), 3 stopped (a refusal, or a failed gate), 75 another
/// canary process is working on the release, 1 an error or --timeout.
///
/// Examples:
///   canary run my-service --yes                          # in a pipeline
///   canary run my-service --until ramp                   # deploy v2, then stop
///   canary run my-service --yes --trust-deploys staging  # staging has no context
///   canary run my-service --yes --staging-gate           # staging's metrics test v2
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service whose release to run; may be left out when exactly one is in flight
    pub service: Option<String>,
    /// Stop once the release reaches this phase, before its first step
    #[arg(long, value_name = "PHASE", value_parser = parse_phase)]
    pub until: Option<Phase>,
    /// How long the whole run may take (90s, 30m, 2h)
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = cluster::parse_duration)]
    pub timeout: Duration,
    /// How long each production weight is held, from its deploy, before the run goes on
    /// (where production has a Prometheus, the gate also waits for its window and evidence)
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = cluster::parse_duration)]
    pub bake: Duration,
    /// The release's ramp weights with a bake of their own where one is given, such as
    /// 1,5,10,25@30m,50@1h,100 (the others bake for --bake)
    #[arg(long, value_name = "LIST", value_parser = parse_steps)]
    pub steps: Option<Steps>,
    /// Take deploys to this environment as confirmed (by --yes, or the person at the
    /// terminal) instead of seeing them on its cluster; repeat for each environment
    #[arg(long, value_name = "ENV")]
    pub trust_deploys: Vec<String>,
    /// Post each step done, deploy, gate verdict, abort, the end and a stop as JSON to this
    /// URL (Slack's and Teams' incoming webhooks read its text); repeat for more. Shown only
    /// by its host, as its path is a secret: better given in CANARY_WEBHOOK_URL than typed here
    #[arg(
        long = "webhook",
        value_name = "URL",
        env = "CANARY_WEBHOOK_URL",
        hide_env_values = true
    )]
    pub webhooks: Vec<String>,
    /// What a failed metric gate does: abort the release by itself (all traffic back to v1,
    /// committed, pushed and deployed), or stop and leave the release where it is
    #[arg(long, value_enum, value_name = "WHAT", default_value_t = OnGateFail::Abort)]
    pub on_gate_fail: OnGateFail,
    /// Answer "was v2 tested on staging?" by running this shell command (exit 0: yes), with
    /// CANARY_SERVICE, CANARY_ENV, CANARY_HOST and CANARY_HOSTS set to staging's
    #[arg(long, value_name = "CMD")]
    pub staging_test: Option<String>,
    /// Answer "was v2 tested on staging?" with the metric gate on staging's Prometheus: v2
    /// alone, once shown within the success-rate and p99 limits with the gate's confidence
    /// (`canary gate --staging` shows it on demand); a failure stops the run
    #[arg(long, conflicts_with = "staging_test")]
    pub staging_gate: bool,
    /// Print each event the run journals as a line of JSON on stdout (as `canary log --json`
    /// shows it); what a person reads (steps, diffs, waits) is on stderr either way
    #[arg(long)]
    pub json: bool,
    /// Answer yes to the questions no check answers (the staging test, each observation);
    /// without it, `run` asks them on a terminal and refuses to start without one
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnGateFail {
    /// Abort the release, as `canary abort` does, and deploy the abort
    Abort,
    /// Stop the run; the release stays where it is
    Stop,
}

/// `--steps`: each weight of the ramp, and its bake where the list gives one.
#[derive(Debug, Clone, PartialEq)]
pub struct Steps(Vec<(u8, Option<Duration>)>);

fn parse_steps(text: &str) -> Result<Steps, String> {
    let mut weights = Vec::new();
    let mut bakes = Vec::new();
    for item in text.split(',') {
        let (weight, bake) = match item.split_once('@') {
            Some((weight, bake)) => (weight, Some(cluster::parse_duration(bake.trim())?)),
            None => (item, None),
        };
        weights.push(weight.trim());
        bakes.push(bake);
    }
    let schedule =
        crate::settings::parse_schedule(&weights.join(",")).map_err(|e| e.to_string())?;
    Ok(Steps(schedule.into_iter().zip(bakes).collect()))
}

impl Steps {
    /// How long `weight` bakes: its own bake, or `default`.
    fn bake(&self, weight: u8, default: Duration) -> Duration {
        self.0
            .iter()
            .find(|(w, _)| *w == weight)
            .and_then(|(_, bake)| *bake)
            .unwrap_or(default)
    }
}

fn parse_phase(text: &str) -> Result<Phase, String> {
    Phase::ALL
        .into_iter()
        .find(|p| p.name() == text)
        .ok_or_else(|| {
            let names: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
            format!("not a phase; one of {}", names.join(", "))
        })
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    if !args.yes && !prompt::terminal_available() {
        return Err(bad_input(
            "a run asks what no check answers (the staging test, each observation) and \
             there is no terminal to ask; pass --yes to answer yes",
        )
        .into());
    }
    let given = args
        .webhooks
        .iter()
        .map(|url| Webhook::parse(url))
        .collect::<Result<Vec<_>, _>>()?;
    // What a person (or a pipeline's log) reads goes to stderr, a line per step and per wait;
    // stdout is for --json's lines.
    let on_stderr = globals.shell.on_stderr();
    let shell = &on_stderr;
    let started = Instant::now();
    let Some(mut locked) =
        super::next::lock_unless_finished(globals, shell, args.service.as_deref())?
    else {
        return Ok(());
    };
    let release = locked.release.clone();
    refuse_unfit(&release, &args)?;
    // The release's own webhooks (`start`, `settings`), then those given here.
    let mut hooks = Vec::new();
    for url in locked.journal.webhooks(release.id)? {
        hooks.push(Webhook::parse(&url)?);
    }
    for hook in given {
        if !hooks.iter().any(|h| h.url() == hook.url()) {
            hooks.push(hook);
        }
    }
    if !hooks.is_empty() && !notify::AVAILABLE {
        return Err(bad_input(
            "this canary was built without the cluster feature, which posts webhooks; leave \
             --webhook and CANARY_WEBHOOK_URL out, and remove the release's own with `canary \
             settings --no-webhooks`",
        )
        .into());
    }
    let repo = std::mem::take(&mut locked.repo);
    engine::refuse_moved_on(&locked.journal, &release, &repo)?;
    // Across machines, where the release has a cluster: its Lease, held until the run ends.
    let lease = (0..release.config.environments.len())
        .rev()
        .find_map(|env| Target::of(&release.config, env))
        .map(|target| {
            lease::take(
                &target,
                &release.config.service,
                &lease::holder(),
                args.timeout,
                &|what| shell.status("Waiting", what),
            )
        })
        .transpose()?;
    let mut teller = Teller::new(hooks, args.json, &locked.journal, &release)?;
    let mut prompt = prompt::for_process(args.yes);
    if let Some(command) = &args.staging_test {
        prompt = Box::new(StagingTest::new(prompt, command, &release.config));
    }
    let mut runner = Runner {
        journal: &mut locked.journal,
        prompt: prompt.as_mut(),
        shell,
        commit: Commit::Always,
        repo,
        locks: Some(&mut locked.locks),
    };
    let until = args.until.unwrap_or(Phase::Done);
    let steps = plan(&release.config.shape());
    let mut release = release;
    while release.phase < until && release.position.next(&steps) != NextStep::Done {
        let left = args.timeout.saturating_sub(started.elapsed());
        // The last event before this step: what the step journals comes after it.
        let mark = runner
            .journal
            .events(release.id)?
            .last()
            .map_or(0, |r| r.id);
        let mut step = || -> anyhow::Result<Release> {
            if let Some(lost) = lease.as_ref().and_then(lease::Held::lost) {
                return Err(Error::Overtaken(format!(
                    "{lost}: another runner holds {}'s release now, so this one stops",
                    release.config.service
                ))
                .into());
            }
            if left.is_zero() {
                return Err(Error::Failed(format!(
                    "the run stopped at its --timeout of {}, in {}; `canary run` again goes on \
                     from there",
                    cluster::format_duration(args.timeout),
                    release.phase
                ))
                .into());
            }
            let checks = Checks {
                verify: true,
                wait: Wait { timeout: left },
                gate: Some(IfNotYet::Wait(left)),
                abort_on_fail: Some(args.on_gate_fail == OnGateFail::Abort),
                staging_gate: args.staging_gate.then_some(IfNotYet::Wait(left)),
                publish: Publish::First,
            };
            let mut release = release.clone();
            if let Some(weight) = observing(&release, &steps) {
                let baking = args
                    .steps
                    .as_ref()
                    .map_or(args.bake, |s| s.bake(weight, args.bake));
                release = bake(&mut runner, &release, weight, baking, left)?;
            }
            engine::announce(shell, &release);
            engine::take_step(&mut runner, &release, &checks)
                .map_err(|err| past_timeout(err, args.timeout))
        };
        match step() {
            Ok(moved) => {
                release = moved;
                teller.tell_new(runner.journal, &release)?;
            }
            Err(err) => {
                // A gate that aborted the release leaves the abort's deploys owed: they are
                // taken, so that all traffic is back on v1 when the run stops.
                let deployed = deploy_abort(&mut runner, &release, mark, &steps, args.timeout);
                if let Err(deploying) = deployed {
                    shell.note(format!("the abort was not deployed: {deploying:#}"));
                }
                // What the step journaled before it stopped (an abort by the gate, say), then
                // the stop; the release as the journal now holds it.
                let why = format!("{err:#}");
                let why = why.lines().next().unwrap_or_default();
                let told = runner.journal.latest(&release.config.service).map(|now| {
                    let now = now.unwrap_or(release);
                    teller
                        .tell_new(runner.journal, &now)
                        .and_then(|()| teller.tell_stopped(runner.journal, &now, why))
                });
                // The stop's own error is what the run ends with; telling it is second.
                if let Err(told) = told.map_err(anyhow::Error::from).and_then(|t| t) {
                    shell.note(format!("the stop was not told: {told:#}"));
                }
                return Err(err);
            }
        }
    }
    if release.phase == until {
        shell.status("Reached", format!("{until}, where --until stops the run"));
    }
    super::print_next(shell, &release);
    Ok(())
}

/// After a step that failed: when the gate aborted the release by itself, take the abort's
/// deploys (and nothing else) before the run stops.
fn deploy_abort(
    runner: &mut Runner,
    before: &Release,
    mark: i64,
    steps: &[(Phase, Step)],
    timeout: Duration,
) -> anyhow::Result<()> {
    let Some(mut release) = runner.journal.latest(&before.config.service)? else {
        return Ok(());
    };
    let aborted_by_gate = runner.journal.events(release.id)?.iter().any(|r| {
        r.id > mark && matches!(&r.event, Event::Aborted { by: Some(by), .. } if by == "gate")
    });
    if !aborted_by_gate {
        return Ok(());
    }
    let checks = Checks {
        verify: true,
        wait: Wait { timeout },
        gate: None,
        abort_on_fail: Some(false),
        staging_gate: None,
        publish: Publish::First,
    };
    while matches!(release.position.next(steps), NextStep::Pending { .. }) {
        release = engine::take_step(runner, &release, &checks)?;
    }
    Ok(())
}

/// The production weight whose observation comes next, if one does.
fn observing(release: &Release, steps: &[(Phase, Step)]) -> Option<u8> {
    match release.position.next(steps) {
        NextStep::Observe { weight } | NextStep::Planned(_, Step::Observe { weight }) => {
            Some(weight)
        }
        _ => None,
    }
}

/// Hold production at `weight` until it has been deployed for `bake`, with the release's
/// locks let go meanwhile (`canary abort` is never kept waiting); within `left` of the run.
fn bake(
    runner: &mut Runner,
    release: &Release,
    weight: u8,
    bake: Duration,
    left: Duration,
) -> anyhow::Result<Release> {
    let production = &release.config.environments[release.config.environments.len() - 1].name;
    let deployed = runner
        .journal
        .seconds_since_deploy(release.id, production)?
        .unwrap_or(0);
    let wait = bake.saturating_sub(Duration::from_secs(deployed));
    if wait.is_zero() {
        return Ok(release.clone());
    }
    runner.shell.status(
        "Baking",
        format!(
            "v2 at {weight}% in {production} for {} more (a bake of {})",
            cluster::format_duration(wait),
            cluster::format_duration(bake)
        ),
    );
    // One line that counts, on a terminal only (indicatif draws nothing elsewhere).
    let live = ProgressBar::new_spinner();
    live.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed} of {prefix})")
            .expect("a valid template"),
    );
    live.set_message(format!("baking v2 at {weight}% in {production}"));
    live.set_prefix(cluster::format_duration(wait));
    live.enable_steady_tick(Duration::from_millis(120));
    let baked = engine::pause_unlocked(
        runner.journal,
        runner.locks.as_deref_mut(),
        release,
        wait.min(left),
        "the bake",
    );
    live.finish_and_clear();
    let baked = baked?;
    if wait > left {
        return Err(Error::Failed(format!(
            "the run stopped at its --timeout, baking v2 at {weight}% in {production}; `canary \
             run` again goes on from there"
        ))
        .into());
    }
    Ok(baked)
}

/// A gate that still could not judge when the run's time was up ends the run as its
/// --timeout does: a failure, not `next --yes`'s "not yet" (exit 4), which asks to be run again
/// later.
fn past_timeout(err: anyhow::Error, timeout: Duration) -> anyhow::Error {
    if crate::error::exit_code(&err) != crate::error::exit::NOT_YET {
        return err;
    }
    Error::Failed(format!(
        "the run stopped at its --timeout of {}: {err:#}; `canary run` again goes on from there",
        cluster::format_duration(timeout)
    ))
    .into()
}

/// What would stop the run part way, refused before its first step: a release whose commits
/// nobody would push, a deploy nobody could see, a phase already behind.
fn refuse_unfit(release: &Release, args: &Args) -> Result<(), Error> {
    let config = &release.config;
    let service = &config.service;
    for name in &args.trust_deploys {
        let Some(env) = config.environments.iter().find(|e| &e.name == name) else {
            let names: Vec<&str> = config
                .environments
                .iter()
                .map(|e| e.name.as_str())
                .collect();
            return Err(bad_input(format!(
                "--trust-deploys {name}: {service}'s release has no environment {name}; it has {}",
                names.join(", ")
            )));
        };
        if let Some(context) = &env.context {
            return Err(bad_input(format!(
                "--trust-deploys {name}: {name}'s deploys are seen on its cluster (context \
                 {context}); leave --trust-deploys {name} out"
            )));
        }
    }
    if let Some(steps) = &args.steps {
        let weights: Vec<u8> = steps.0.iter().map(|(w, _)| *w).collect();
        if weights != config.schedule {
            return Err(bad_input(format!(
                "--steps lists the weights {}, and {service}'s release ramps through {}: list \
                 those, each with @DURATION where it bakes longer or shorter than --bake",
                crate::settings::schedule_text(&weights),
                crate::settings::schedule_text(&config.schedule)
            )));
        }
    }
    if args.staging_gate {
        crate::engine::gate::refuse_no_staging_gate(release, "--staging-gate")?;
    }
    if let Some(until) = args.until
        && until < release.phase
    {
        return Err(bad_input(format!(
            "--until {until}: {service}'s release is already in {}, past it",
            release.phase
        )));
    }
    if config.remote == Remote::Operator {
        return Err(Error::Refused {
            reason: format!(
                "a run pushes each of its commits, and {service}'s release was started for \
                 the operator to push them (without --push)"
            ),
            first: Some("take the steps with `canary next`, pushing its commits yourself".into()),
            run: Some(format!("canary next {service}")),
        });
    }
    let unseen: Vec<&str> = config
        .environments
        .iter()
        .filter(|e| e.context.is_none() && !args.trust_deploys.contains(&e.name))
        .map(|e| e.name.as_str())
        .collect();
    if let Some(first) = unseen.first() {
        return Err(Error::Refused {
            reason: format!(
                "a run waits until each deploy shows on its cluster, and {} no kubeconfig \
                 context to see {}",
                match unseen.as_slice() {
                    [one] => format!("{one} has"),
                    many => format!("{} have", many.join(" and ")),
                },
                if unseen.len() == 1 { "it" } else { "them" },
            ),
            first: Some(format!(
                "give {first} a context, or take its deploys on trust with --trust-deploys \
                 {first}"
            )),
            run: Some(format!("canary context {service} {first} CONTEXT")),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_the_ramp_s_weights_each_with_its_bake_or_none() {
        let steps = parse_steps("1, 5,10,25@30m,50@1h,100").unwrap();
        let ten = Duration::from_secs(600);
        assert_eq!(steps.bake(1, ten), ten);
        assert_eq!(steps.bake(25, ten), Duration::from_secs(1800));
        assert_eq!(steps.bake(50, ten), Duration::from_secs(3600));
        assert_eq!(steps.bake(100, ten), ten);
        for bad in [
            "1,5@soon,100",
            "5,1,100",
            "1,5,50",
            "1,@5m,100",
            "0,100",
            "1,5@,100",
        ] {
            assert!(parse_steps(bad).is_err(), "{bad} read as steps");
        }
    }
}
