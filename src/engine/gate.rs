//! The metric gate before production's v2 weight goes up, or its ramp is declared done: when it
//! stands (`due`), each evaluation journaled, and its verdict enforced for `next` and `weight`;
//! and the same gate on staging, judging v2 alone, as the staging test of `run --staging-gate`.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::edits::{FileEdit, Move};
use crate::error::Error;
use crate::gate::{self, Judged, Outcome, Prometheus, Verdict, verdict};
use crate::journal::{Event, Journal, Record, Release, Update};
use crate::lock::Locks;
use crate::output::Shell;
use crate::prompt::AssumeYes;
use crate::repo::Repo;
use crate::runner::{Commit, Runner};
use crate::workflow::{NextStep, Phase, Step, StepEdit};

/// Whether taking `next` is one of the gate's moments: production's v2 weight going up from
/// one v2 has been serving (`weight`: its weight now), or the observation that ends its ramp.
pub fn due(next: NextStep, weight: Option<u8>) -> bool {
    match next {
        NextStep::Planned(
            Phase::Ramp,
            Step::Edit {
                edit: StepEdit::RampLast(to),
            },
        ) => raises(weight, to),
        NextStep::Planned(_, Step::Observe { weight: 100 }) | NextStep::Observe { weight: 100 } => {
            true
        }
        _ => false,
    }
}

/// Whether setting production's weight `to` raises it from a weight v2 has been serving.
pub fn raises(weight: Option<u8>, to: u8) -> bool {
    weight.is_some_and(|w| w > 0 && w < to)
}

/// Production's v2 weight as canary last wrote it (read from the files for a release journaled
/// before that was recorded).
pub fn production_weight(release: &Release) -> Option<u8> {
    weight_in(release, release.config.environments.len() - 1)
}

/// An environment's v2 weight as canary last wrote it.
pub fn weight_in(release: &Release, env: usize) -> Option<u8> {
    let config = &release.config;
    let weights = release.v2_weights.clone().unwrap_or_else(|| {
        crate::edits::v2_weights(Repo::for_reading(&config.repo).ok().as_ref(), config)
    });
    weights.get(env).copied().flatten()
}

/// How the gate judges v2 in an environment: against v1 in production, alone elsewhere
/// (staging, where v2 serves all of the traffic when it is tested).
fn judged(release: &Release, env: usize) -> Judged {
    if env + 1 == release.config.environments.len() {
        Judged::AgainstV1
    } else {
        Judged::Alone
    }
}

/// How a gate that cannot judge yet is met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfNotYet {
    /// Wait and evaluate again, up to this long (a person at a terminal).
    Wait(Duration),
    /// Exit with [`crate::error::exit::NOT_YET`], nothing changed (`--yes`).
    Exit,
}

/// The gate before production's weight moves on: `Ok` with the release (its evaluation
/// journaled) when it passes, or when production has no Prometheus; otherwise an error that
/// says why, after aborting the release if `abort_on_fail` and the gate failed.
pub fn before_increase(
    shell: &Shell,
    journal: &mut Journal,
    locks: Option<&mut Locks>,
    release: &Release,
    not_yet: IfNotYet,
    abort_on_fail: bool,
) -> anyhow::Result<Release> {
    let config = &release.config;
    if config.environments[config.environments.len() - 1]
        .prometheus
        .is_none()
    {
        return Ok(release.clone());
    }
    let production = config.environments.len() - 1;
    let (verdict, release) = until_decided(shell, journal, locks, release, production, not_yet)?;
    match verdict.outcome {
        Outcome::Pass => Ok(release),
        Outcome::Fail if abort_on_fail => {
            Err(auto_abort(shell, journal, &release, &verdict)?.into())
        }
        // A failure, or an answer the gate cannot use (which waiting does not mend, and
        // which is no evidence against v2 either: refused, never aborted), or not yet.
        _ => Err(settle(&release, production, &verdict).unwrap_err()),
    }
}

/// Refuse the staging gate where it has nothing to judge: a release whose plan never sends
/// staging all of its traffic on v2 before production gets any (one environment, or a plan
/// from before that step), or whose staging has no Prometheus.
pub fn refuse_no_staging_gate(release: &Release, flag: &str) -> Result<(), Error> {
    let config = &release.config;
    let service = &config.service;
    let shape = config.shape();
    if !crate::workflow::has_staging_step(&crate::workflow::plan(&shape)) {
        let why = match config.environments.len() {
            1 => "it has 1 environment".to_string(),
            _ => "its plan is from a canary before that step".to_string(),
        };
        return Err(crate::error::bad_input(format!(
            "{flag}: {service}'s release has no staging that serves v2 alone before production \
             ({why}); answer whether v2 was tested with --staging-test or --yes"
        )));
    }
    let staging = &config.environments[0];
    if staging.prometheus.is_none() {
        return Err(crate::error::bad_input(format!(
            "{flag}: {} has no Prometheus to judge v2 on; set one with `canary context {service} \
             {} --prometheus URL`",
            staging.name, staging.name
        )));
    }
    Ok(())
}

/// The staging test of `run --staging-gate`: the gate on staging's Prometheus, judging v2
/// alone against the fixed limits, waited on as `not_yet` says. `Ok` with the release (each
/// evaluation journaled) once v2 is shown within them; otherwise an error that says why. A
/// failure aborts nothing: production serves v2 no traffic yet.
pub fn staging_test(
    shell: &Shell,
    journal: &mut Journal,
    locks: Option<&mut Locks>,
    release: &Release,
    not_yet: IfNotYet,
) -> anyhow::Result<Release> {
    let (verdict, release) = until_decided(shell, journal, locks, release, 0, not_yet)?;
    settle(&release, 0, &verdict)?;
    Ok(release)
}

/// Evaluate the gate on environment `env`'s Prometheus; while it cannot judge yet and
/// `not_yet` waits, wait without the release's locks and evaluate again, the evidence growing
/// on one live line (on a terminal), until it passes, fails or cannot judge. The verdict it
/// stops at is shown in full.
pub fn until_decided(
    shell: &Shell,
    journal: &mut Journal,
    mut locks: Option<&mut Locks>,
    release: &Release,
    env: usize,
    not_yet: IfNotYet,
) -> anyhow::Result<(Verdict, Release)> {
    let config = &release.config;
    let started = Instant::now();
    let mut release = release.clone();
    let live = ProgressBar::new_spinner();
    live.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template"),
    );
    // A Prometheus may take up to its deadline to answer: said while it does (on a terminal).
    let environment = &config.environments[env];
    let asking = match &environment.prometheus {
        Some(source) => format!("asking {}'s Prometheus ({source})", environment.name),
        None => "asking Prometheus".into(),
    };
    live.set_message(asking.clone());
    live.enable_steady_tick(Duration::from_millis(120));
    let mut first = true;
    loop {
        let evaluated = evaluate(shell, journal, &release, env);
        let (verdict, evaluated) = match evaluated {
            Ok(evaluated) => evaluated,
            Err(e) => {
                live.finish_and_clear();
                return Err(e);
            }
        };
        release = evaluated;
        let IfNotYet::Wait(timeout) = not_yet else {
            live.finish_and_clear();
            show(shell, &release, env, &verdict);
            return Ok((verdict, release));
        };
        if !matches!(
            verdict.outcome,
            Outcome::NotEnoughTime | Outcome::NotEnoughTraffic
        ) {
            live.finish_and_clear();
            show(shell, &release, env, &verdict);
            return Ok((verdict, release));
        }
        let pause = match verdict.outcome {
            Outcome::NotEnoughTime => {
                config.gate.window_secs.saturating_sub(verdict.range_secs) + 1
            }
            _ => (config.gate.window_secs / 10).clamp(5, 30),
        };
        let pause = Duration::from_secs(pause);
        if started.elapsed() + pause > timeout {
            live.finish_and_clear();
            show(shell, &release, env, &verdict);
            return Err(Error::NotYet(format!(
                "the gate still cannot judge after {}: {}; nothing was changed",
                verdict::duration(started.elapsed().as_secs()),
                verdict.reason
            ))
            .into());
        }
        if first {
            // Once, in words that stay in the scrollback; then one line that changes.
            live.suspend(|| {
                show(shell, &release, env, &verdict);
                shell.status(
                    "Waiting",
                    format!(
                        "for the gate to judge, evaluating again as traffic comes in; up to {}",
                        verdict::duration(timeout.as_secs())
                    ),
                );
            });
            first = false;
        }
        live.set_message(format!(
            "{} (waited {}; next look in {}s)",
            live_line(&verdict),
            verdict::duration(started.elapsed().as_secs()),
            pause.as_secs()
        ));
        let paused =
            super::pause_unlocked(journal, locks.as_deref_mut(), &release, pause, "the gate");
        release = paused.inspect_err(|_| live.finish_and_clear())?;
        live.set_message(format!("{} ({asking})", live_line(&verdict)));
    }
}

/// A verdict that cannot judge yet in one line: why, and the check nearest to failing v2.
fn live_line(verdict: &Verdict) -> String {
    let strongest = verdict
        .checks
        .iter()
        .filter_map(|c| Some((c, c.e_value?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    match (strongest, verdict.threshold) {
        (Some((check, e)), Some(needed)) => format!(
            "gate {}: {} [{} e {} of {}]",
            verdict.outcome.name(),
            verdict.reason,
            check.name,
            verdict::e_text(e),
            verdict::number(needed)
        ),
        _ => format!("gate {}: {}", verdict.outcome.name(), verdict.reason),
    }
}

/// Evaluate the gate on environment `env` now and journal the evaluation (one that read
/// metrics).
fn evaluate(
    shell: &Shell,
    journal: &mut Journal,
    release: &Release,
    env: usize,
) -> anyhow::Result<(Verdict, Release)> {
    let config = &release.config;
    let name = &config.environments[env].name;
    let thresholds = &config.gate;
    // Connecting reads nothing yet; a Prometheus canary cannot ask at all is said at once.
    let environment = &config.environments[env];
    let prometheus = Prometheus::connect(
        &config.service,
        name,
        environment.prometheus.as_ref(),
        environment.context.as_deref(),
    )?;
    let weight = weight_in(release, env);
    if weight.is_none_or(|w| w == 0) {
        return Ok((Verdict::unrouted(name), release.clone()));
    }
    let deployed = journal.seconds_since_deploy(release.id, name)?;
    let Some(range) = deployed.filter(|&secs| secs >= thresholds.window_secs) else {
        return Ok((
            Verdict::not_enough_time(deployed.unwrap_or(0), thresholds),
            release.clone(),
        ));
    };
    let events = journal.events(release.id)?;
    let team = match &thresholds.checks {
        Some(rel) => {
            let loaded = gate::checks::load(&Repo::for_reading(&config.repo)?, rel)?;
            let before = events.iter().rev().find_map(|e| match &e.event {
                Event::GateEvaluated { checks_sha256, .. } => checks_sha256.as_ref(),
                _ => None,
            });
            if before.is_some_and(|before| *before != loaded.sha256) {
                shell.status(
                    "Changed",
                    format!(
                        "{rel} since the gate's last evaluation: the checks committed now are \
                         the ones read (journaled with this evaluation)"
                    ),
                );
            }
            Some(loaded)
        }
        None => None,
    };
    let verdict = gate::evaluate(
        &prometheus,
        &config.gate_subject(),
        judged(release, env),
        thresholds,
        team.as_ref().map_or(&[], |t| &t.checks),
        range,
        evidence_before(&events, name, weight),
    )?;
    let release = journal.record(
        release,
        Update {
            events: vec![Event::GateEvaluated {
                env: name.clone(),
                v2_weight: weight,
                verdict: verdict.clone(),
                checks_sha256: team.map(|t| t.sha256),
            }],
            ..Update::default()
        },
    )?;
    Ok((verdict, release))
}

/// The evidence of the release's earlier steps, which this step's multiplies: of each run of
/// evaluations in one environment at one v2 weight (staging's test, then each of production's
/// weights), the last one's (the e-value where that step stopped), but for the run in `env` at
/// `weight` where the release is now, which this evaluation supersedes. Runs are told apart
/// within each environment: a look at staging between two of production's at one weight does
/// not split that step in two. Evaluations journaled before evidence was kept bring none.
pub fn evidence_before(events: &[Record], env: &str, weight: Option<u8>) -> verdict::Evidence {
    let mut runs: Vec<((&str, Option<u8>), verdict::Evidence)> = Vec::new();
    for event in events {
        if let Event::GateEvaluated {
            env,
            v2_weight,
            verdict,
            ..
        } = &event.event
        {
            let step = verdict.evidence.unwrap_or_default();
            let at = (env.as_str(), *v2_weight);
            match runs.iter_mut().rev().find(|(run, _)| run.0 == at.0) {
                Some((run, last)) if *run == at => *last = step,
                _ => runs.push((at, step)),
            }
        }
    }
    if let Some(now) = runs.iter().rposition(|(run, _)| run.0 == env)
        && runs[now].0 == (env, weight)
    {
        runs.remove(now);
    }
    runs.into_iter()
        .fold(verdict::Evidence::default(), |all, (_, step)| all.and(step))
}

/// The verdict, v1 and v2 side by side (production's), or v2's alone (staging's).
fn show(shell: &Shell, release: &Release, env: usize, verdict: &Verdict) {
    let mut weight = weight_in(release, env)
        .map(|w| format!(" at {w}%"))
        .unwrap_or_default();
    if judged(release, env) == Judged::Alone {
        weight = format!("{weight} in {}", release.config.environments[env].name);
    }
    let over = match verdict.outcome {
        Outcome::NotEnoughTime => String::new(),
        _ => format!(" over {}", verdict::duration(verdict.range_secs)),
    };
    shell.status(
        "Gate",
        format!(
            "{} for v2{weight}{over}: {}",
            verdict.outcome.name(),
            verdict.reason
        ),
    );
    if !verdict.checks.is_empty() {
        for line in verdict::table(verdict) {
            shell.detail(line);
        }
    }
}

/// The exit a verdict on environment `env` makes: `Ok` for a pass.
pub fn settle(release: &Release, env: usize, verdict: &Verdict) -> anyhow::Result<()> {
    let service = &release.config.service;
    if judged(release, env) == Judged::Alone && verdict.outcome == Outcome::Fail {
        let name = &release.config.environments[env].name;
        return Err(Error::Refused {
            reason: format!(
                "the metric gate on {name} failed: {}; v2 does not count as tested on {name}",
                verdict.reason
            ),
            first: Some(format!(
                "fix v2 and run again, or send all traffic back to v1 with `canary abort \
                 {service}`"
            )),
            run: Some(format!("canary run {service}")),
        }
        .into());
    }
    match verdict.outcome {
        Outcome::Pass => Ok(()),
        Outcome::Fail => Err(Error::Refused {
            reason: format!("the metric gate failed: {}", verdict.reason),
            first: Some(if verdict.incident {
                "wait for the incident to pass, or send all traffic back to v1".into()
            } else {
                "send all traffic back to v1, fix v2".into()
            }),
            run: Some(format!("canary abort {service}")),
        }
        .into()),
        Outcome::CannotJudge => Err(Error::Refused {
            reason: format!(
                "the metric gate cannot judge v2 from what Prometheus answered: {}",
                verdict.reason
            ),
            first: Some(
                "find why that query answers so (the metric's series, the scrape, the team's \
                 check), or judge v2 yourself and send all traffic back to v1 if it is bad"
                    .into(),
            ),
            run: Some(format!("canary gate {service}")),
        }
        .into()),
        Outcome::NotEnoughTraffic | Outcome::NotEnoughTime => Err(Error::NotYet(format!(
            "the metric gate cannot judge yet: {}; nothing was changed, run `canary next {service}` \
             again later",
            verdict.reason
        ))
        .into()),
    }
}

/// A failed gate on a release set to abort by itself: the abort, journaled as any abort is
/// (and committed, so that it reaches the cluster), then the refusal that says so.
fn auto_abort(
    shell: &Shell,
    journal: &mut Journal,
    release: &Release,
    verdict: &Verdict,
) -> anyhow::Result<Error> {
    let service = &release.config.service;
    let abort = Move::abort(&release.position, &release.config);
    let mut yes = AssumeYes;
    let mut runner = Runner {
        journal,
        prompt: &mut yes,
        shell,
        commit: Commit::Always,
        repo: Default::default(),
        locks: None,
    };
    let mut event = Event::of_move(&abort, &release.config)?;
    if let Event::Aborted { by, .. } = &mut event {
        *by = Some("gate".into());
    }
    let what = abort.describe(&release.config);
    runner.write(release, FileEdit::Move(abort), &what, vec![event])?;
    Ok(Error::Refused {
        reason: format!(
            "the metric gate failed: {}; the release aborted by itself, as it is set to on a \
             failed gate: all traffic goes back to v1",
            verdict.reason
        ),
        first: Some("deploy the abort".into()),
        run: Some(format!("canary next {service}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluated(weight: u8, errors_vs_v1: f64) -> Record {
        evaluated_in(
            "production",
            weight,
            verdict::Evidence {
                errors_vs_v1,
                ..verdict::Evidence::default()
            },
        )
    }

    fn evaluated_in(env: &str, weight: u8, evidence: verdict::Evidence) -> Record {
        let mut verdict = Verdict::unrouted(env);
        verdict.evidence = Some(evidence);
        Record {
            id: 0,
            at: String::new(),
            operator: String::new(),
            phase: "ramp".into(),
            event: Event::GateEvaluated {
                env: env.into(),
                v2_weight: Some(weight),
                verdict,
                checks_sha256: None,
            },
        }
    }

    #[test]
    fn each_earlier_step_brings_its_last_evidence_and_the_current_one_none() {
        let events = [
            evaluated(1, 0.5),
            evaluated(1, 1.5),
            evaluated(5, -1.0),
            evaluated(5, 2.0),
            evaluated(10, 0.7),
            evaluated(10, 0.9),
        ];
        // At 10%: the 1% step's last (1.5) and the 5% step's last (2.0); the looks at 10%
        // so far are this step's, which the evaluation now supersedes.
        let close = |ln_e: f64, expected: f64| (ln_e - expected).abs() < 1e-12;
        assert!(close(
            evidence_before(&events, "production", Some(10)).errors_vs_v1,
            3.5
        ));
        // At 25%, not evaluated yet: every step so far.
        assert!(close(
            evidence_before(&events, "production", Some(25)).errors_vs_v1,
            4.4
        ));
        // An abort and a new ramp: 1% again is a step of its own.
        let mut again = events.to_vec();
        again.push(evaluated(1, 0.25));
        assert!(close(
            evidence_before(&again, "production", Some(1)).errors_vs_v1,
            4.4
        ));
        assert_eq!(
            evidence_before(&[], "production", Some(1)),
            verdict::Evidence::default()
        );
    }

    #[test]
    fn staging_s_test_is_a_step_of_the_release_s_evidence() {
        let success_rate = |success_rate| verdict::Evidence {
            success_rate,
            ..verdict::Evidence::default()
        };
        let events = [
            evaluated_in("staging", 100, success_rate(0.5)),
            evaluated_in("staging", 100, success_rate(1.25)),
            evaluated_in("production", 1, success_rate(2.0)),
        ];
        // Staging's looks so far are the one it is at, superseded.
        assert_eq!(
            evidence_before(&events[..2], "staging", Some(100)),
            verdict::Evidence::default()
        );
        // Production at 100%: its own 1% step's, and staging's last, however alike the weights.
        let all = evidence_before(&events, "production", Some(100));
        assert!((all.success_rate - 3.25).abs() < 1e-12, "{all:?}");
        let at_one = evidence_before(&events, "production", Some(1));
        assert!((at_one.success_rate - 1.25).abs() < 1e-12, "{at_one:?}");
        // `canary gate --staging` between two of production's looks at 1%: one step still,
        // counted once.
        let mut between = events.to_vec();
        between.push(evaluated_in("staging", 100, success_rate(4.0)));
        between.push(evaluated_in("production", 1, success_rate(3.0)));
        let at_one = evidence_before(&between, "production", Some(1));
        assert!((at_one.success_rate - 4.0).abs() < 1e-12, "{at_one:?}");
        let at_five = evidence_before(&between, "production", Some(5));
        assert!((at_five.success_rate - 7.0).abs() < 1e-12, "{at_five:?}");
    }

    #[test]
    fn the_gate_comes_before_raising_a_weight_v2_serves_and_before_the_ramp_ends() {
        let ramp = |to| {
            NextStep::Planned(
                Phase::Ramp,
                Step::Edit {
                    edit: StepEdit::RampLast(to),
                },
            )
        };
        assert!(due(ramp(5), Some(1)));
        assert!(due(ramp(100), Some(50)));
        // The first weight: v2 has served no production traffic to judge.
        assert!(!due(ramp(1), Some(0)));
        assert!(!due(ramp(1), None));
        // Going down is never held back.
        assert!(!due(ramp(10), Some(30)));
        assert!(due(
            NextStep::Planned(Phase::Ramp, Step::Observe { weight: 100 }),
            Some(100)
        ));
        assert!(due(NextStep::Observe { weight: 100 }, Some(100)));
        assert!(!due(
            NextStep::Planned(Phase::Ramp, Step::Observe { weight: 50 }),
            Some(50)
        ));
        assert!(!due(NextStep::Done, Some(100)));
        assert!(raises(Some(5), 30) && !raises(Some(30), 5) && !raises(Some(0), 5));
    }
}
