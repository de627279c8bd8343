//! `canary status`: where a release stands, as the journal and the repository files say.

use serde::Serialize;

use super::Globals;
use crate::argocd::{AppRef, AppStatus};
use crate::cluster::{Expected, Session, Target, live_weights, v2_weight};
use crate::edits;
use console::style;

use crate::journal::{Record, Release};
use crate::output::{self};
use crate::repo::Repo;
use crate::settings::{Image, Settings, Switch};
use crate::workflow::{NextStep, Phase, Plans};

/// Show where a release stands and what comes next.
///
/// Its phase, its next step, and each environment's v2 weight as the repository files say it;
/// with --live, also as each cluster (with a kubeconfig context) has it, and each Argo CD
/// Application's sync and health. Without SERVICE: the
/// only release in flight or, when none is, the one that moved last.
///
/// Examples:
///   canary status
///   canary status my-service --json
///   canary status my-service --live
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service; may be left out when exactly one release is in flight
    pub service: Option<String>,
    /// Print a JSON object for scripts
    #[arg(long)]
    pub json: bool,
    /// Read each environment's live VirtualService weights from its cluster too, and what its
    /// Argo CD Application reports (sync, revision, health)
    #[arg(long)]
    pub live: bool,
}

/// Borrowed from the release it describes: `list --json` builds a thousand of these.
#[derive(Debug, Serialize)]
pub struct Status<'a> {
    pub service: &'a str,
    pub phase: &'static str,
    /// The step that comes next, in words.
    pub step: String,
    pub done: bool,
    /// Ended by `canary cancel` before it was done.
    pub cancelled: bool,
    pub environments: Vec<EnvStatus<'a>>,
    /// The command that takes the next step; null when done.
    pub next: Option<String>,
    pub interrupted: bool,
    /// null in coexistence, where web-v1 runs web's image.
    #[serde(serialize_with = "as_text_or_null")]
    pub v1_image: Option<&'a Image>,
    /// `succession` or `coexistence`.
    pub method: &'static str,
    /// The coexistence switch (`env:NAME=V1,V2` or `arg:V1,V2`); null in succession.
    #[serde(serialize_with = "as_text_or_null")]
    pub switch: Option<&'a Switch>,
    #[serde(serialize_with = "as_text")]
    pub repo: std::path::Display<'a>,
    pub updated_at: &'a str,
    /// The metric gate's last evaluation (`at`, `v2_weight`, `verdict`: outcome, reason, each
    /// check's v1 and v2 values and limit); absent when none was journaled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate: Option<serde_json::Value>,
}

fn as_text<T: std::fmt::Display, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn as_text_or_null<T: std::fmt::Display, S: serde::Serializer>(
    value: &Option<&T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => serializer.collect_str(value),
        None => serializer.serialize_none(),
    }
}

#[derive(Debug, Serialize)]
pub struct EnvStatus<'a> {
    pub name: &'a str,
    /// Its public hosts, as its VirtualService patch lists them (the in-cluster host besides).
    pub hosts: &'a [String],
    /// The kubeconfig context that reaches its cluster; null: deploys are confirmed by the
    /// operator.
    pub context: Option<&'a str>,
    /// The Argo CD Application that deploys it, NAMESPACE/NAME; null when none is set.
    #[serde(serialize_with = "as_text_or_null")]
    pub argocd_application: Option<&'a AppRef>,
    /// Where the metric gate reads its metrics (a URL, or cluster:NAMESPACE/SERVICE:PORT);
    /// null when none is set.
    #[serde(serialize_with = "as_text_or_null")]
    pub prometheus: Option<&'a crate::gate::Endpoint>,
    /// null before the environment has a VirtualService patch.
    pub v2_weight: Option<u8>,
    /// With --live, for an environment with a context: v2's weight in the live VirtualService
    /// (null when it routes to no subset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_v2_weight: Option<Option<u8>>,
    /// With --live, for an environment with an Argo CD Application: what it reports
    /// (`application`, `sync`, `revision`, `health`…; `missing: true` when the cluster lacks it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub argocd: Option<serde_json::Value>,
}

/// Where a status takes each environment's v2 weight from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFrom {
    /// The VirtualService patch files as they are now.
    Files,
    /// The journal: the files as canary last wrote them, so that listing many releases reads
    /// no file. A release that has no record yet falls back to the files.
    Journal,
}

/// The weights a release recorded, if they fit its environments; otherwise its files'.
pub fn recorded_or_read(recorded: Option<&[Option<u8>]>, config: &Settings) -> Vec<Option<u8>> {
    match recorded {
        Some(recorded) if recorded.len() == config.environments.len() => recorded.to_vec(),
        _ => edits::v2_weights(Repo::for_reading(&config.repo).ok().as_ref(), config),
    }
}

pub fn status_of<'a>(release: &'a Release, source: WeightsFrom, plans: &mut Plans) -> Status<'a> {
    let config = &release.config;
    let shape = config.shape();
    let plan = plans.of(&shape);
    let recorded = match source {
        WeightsFrom::Journal => release.v2_weights.as_deref(),
        WeightsFrom::Files => None,
    };
    let weights = recorded_or_read(recorded, config);
    Status {
        service: &config.service,
        phase: release.position.phase(plan).name(),
        step: release.position.describe_next(&shape, plan),
        done: release.position.next(plan) == NextStep::Done,
        cancelled: release.is_cancelled(),
        environments: config
            .environments
            .iter()
            .zip(weights)
            .map(|(e, v2_weight)| EnvStatus {
                name: &e.name,
                hosts: &e.hosts,
                context: e.context.as_deref(),
                argocd_application: e.argocd.as_ref(),
                prometheus: e.prometheus.as_ref(),
                v2_weight,
                live_v2_weight: None,
                argocd: None,
            })
            .collect(),
        next: super::next_command(release, plan),
        interrupted: release.in_progress.is_some(),
        v1_image: config.v1_image.as_ref(),
        method: config.method.name(),
        switch: config.switch.as_ref(),
        repo: config.repo.display(),
        updated_at: &release.updated_at,
        gate: None,
    }
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let journal = super::read_journal(globals)?
        .ok_or_else(|| crate::error::bad_input("no release is in flight; the journal is empty"))?;
    let release = super::shown_release(&journal, args.service.as_deref())?;
    let mut status = status_of(&release, WeightsFrom::Files, &mut Plans::default());
    status.gate = journal.last_gate_evaluation(release.id)?.map(|e| {
        let mut gate = e.event.detail();
        gate["at"] = e.at.into();
        gate
    });
    if args.live {
        read_live(&release, &mut status)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    let last = journal.last_event(release.id)?;
    print!("{}", render(&status, last.as_ref(), output::width()));
    Ok(())
}

/// Each environment's live v2 weight, where it has a kubeconfig context.
fn read_live(release: &Release, status: &mut Status) -> anyhow::Result<()> {
    let config = &release.config;
    let repo = Repo::open(&config.repo)?;
    for (env, env_status) in status.environments.iter_mut().enumerate() {
        let Some(target) = Target::of(config, env) else {
            continue;
        };
        let expected = Expected::read(config, &repo, env)?;
        let session = Session::connect(&target)?;
        let spec = session.virtual_service(&expected.virtual_service_name)?;
        env_status.live_v2_weight = Some(v2_weight(&live_weights(&spec)));
        if let Some(app) = &config.environments[env].argocd {
            env_status.argocd = Some(match session.application(app)? {
                Some(live) => {
                    let mut detail = serde_json::to_value(AppStatus::read(&live))?;
                    detail["application"] = app.to_string().into();
                    detail
                }
                None => serde_json::json!({ "application": app, "missing": true }),
            });
        }
    }
    Ok(())
}

/// The release at a glance: the phases with done, current and to-come marks, each
/// environment's traffic split as a bar, the pinned image, the last step and the next command.
pub fn render(status: &Status, last: Option<&Record>, width: usize) -> String {
    let mut out = format!("{}\n", style(&status.service).bold());
    let current = Phase::ALL
        .iter()
        .position(|p| p.name() == status.phase)
        .unwrap_or(Phase::ALL.len());
    let marks = output::marks();
    for (i, phase) in Phase::ALL[..8].iter().enumerate() {
        let line = if i < current {
            format!(
                "  {} {}",
                style(marks.done).green(),
                style(phase.name()).dim()
            )
        } else if i == current {
            let step = status.step.split_once(": ").map_or("", |(_, s)| s);
            format!(
                "  {} {:<12} {}",
                style(marks.current).cyan().bold(),
                style(phase.name()).bold(),
                step
            )
        } else {
            format!(
                "  {} {}",
                style(marks.to_come).dim(),
                style(phase.name()).dim()
            )
        };
        out.push_str(&output::fit(&line, width));
        out.push('\n');
    }
    if status.done {
        out.push_str(&format!("  {} done\n", style(marks.done).green()));
    }
    out.push('\n');
    let name_width = status
        .environments
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(0)
        .max(10);
    // The bar takes what the line leaves, between 5 and 20 cells.
    let bar_cells = width.saturating_sub(name_width + 26).clamp(5, 20);
    for env in &status.environments {
        let split = match env.v2_weight {
            Some(v2) => format!(
                "v1 {} v2  {:>3}% / {}%",
                output::bar(100 - v2, bar_cells),
                100 - v2,
                v2
            ),
            None => style("no canary route").dim().to_string(),
        };
        let live = match env.live_v2_weight {
            Some(live) if live != env.v2_weight => match live {
                Some(v2) => format!(
                    "  {}",
                    style(format!("live: v2 {v2}%, not the file's")).yellow()
                ),
                None => format!("  {}", style("live: no canary route").yellow()),
            },
            _ => String::new(),
        };
        out.push_str(&format!("  {:<name_width$}  {split}{live}\n", env.name));
        for line in settings_lines(env) {
            let line = format!("  {:<name_width$}  {}", "", style(line).dim());
            out.push_str(&output::fit(&line, width));
            out.push('\n');
        }
        if let Some(app) = &env.argocd {
            let reports = match serde_json::from_value::<AppStatus>(app.clone()) {
                _ if app["missing"] == true => style("not in the cluster").yellow().to_string(),
                Ok(live) if live.is_synced() && live.is_healthy() => live.summary(),
                Ok(live) => style(live.summary()).yellow().to_string(),
                Err(_) => String::new(),
            };
            let line = format!(
                "  {:<name_width$}  Argo CD {}: {reports}",
                "",
                app["application"].as_str().unwrap_or_default()
            );
            out.push_str(&output::fit(&line, width));
            out.push('\n');
        }
    }
    if let Some(gate) = &status.gate {
        let production = status.environments.last().map_or("", |e| e.name);
        let line = format!("  {:<name_width$}  {}", "", gate_line(gate, production));
        out.push_str(&output::fit(&line, width));
        out.push('\n');
    }
    out.push('\n');
    let field = |label: &str, value: &str| {
        output::fit(&format!("  {label:<10}  {value}"), width).into_owned()
    };
    if let Some(image) = status.v1_image {
        out.push_str(&field("v1 image", &image.to_string()));
        out.push('\n');
    }
    if let Some(switch) = status.switch {
        // web-v1 runs web's image: the switch is all that tells the two apart.
        out.push_str(&field(
            "switch",
            &format!("{switch} ({}: web-v1 runs web's image)", status.method),
        ));
        out.push('\n');
    }
    if let Some(event) = last {
        let at = event.at.get(..16).unwrap_or(&event.at).replace('T', " ");
        let what = format!("{} {}", event.event.kind(), super::log::what(&event.event));
        out.push_str(&field(
            "last",
            &format!("{at} UTC by {}: {}", event.operator, what.trim()),
        ));
        out.push('\n');
    }
    if status.interrupted {
        out.push_str(&field(
            "interrupted",
            &crate::report::commands("a step was cut short; `canary next` finishes it"),
        ));
        out.push('\n');
    }
    match &status.next {
        None if status.cancelled => {
            out.push_str(&field(
                "cancelled",
                &format!(
                    "in {}; `canary start {}` opens a new release",
                    status.phase, status.service
                ),
            ));
            out.push('\n');
        }
        Some(command) => {
            out.push_str(&field("next", &status.step));
            out.push('\n');
            out.push_str(&field(
                "run",
                &style(crate::report::command(command)).bold().to_string(),
            ));
            out.push('\n');
        }
        None => {
            out.push_str(&field("next", "nothing: the release is done"));
            out.push('\n');
        }
    }
    out
}

/// What an environment is set to, under its bar: its hosts, then how its deploys are checked
/// and where the gate reads its metrics.
fn settings_lines(env: &EnvStatus) -> [String; 2] {
    let mut reached = match env.context {
        Some(context) => format!("context {context}"),
        None => "no context: deploys confirmed by the operator".into(),
    };
    if let Some(app) = env.argocd_application {
        reached.push_str(&format!(", Argo CD {app}"));
    }
    if let Some(source) = env.prometheus {
        reached.push_str(&format!(", Prometheus {source}"));
    }
    [format!("hosts {}", env.hosts.join(", ")), reached]
}

/// The gate's last evaluation in one line, beside production's bar; one of staging's (its
/// test of v2 alone) names staging.
fn gate_line(gate: &serde_json::Value, production: &str) -> String {
    let verdict = &gate["verdict"];
    let outcome = verdict["outcome"].as_str().unwrap_or("?");
    let at = gate["at"].as_str().unwrap_or_default();
    let at = at.get(11..16).unwrap_or(at);
    let mut weight = gate["v2_weight"]
        .as_u64()
        .map(|w| format!(" at {w}%"))
        .unwrap_or_default();
    if let Some(env) = gate["env"].as_str().filter(|env| *env != production) {
        weight = format!("{weight} in {env}");
    }
    // The statistical check nearest to failing v2, and how near: the evidence so far.
    let strongest = verdict["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["name"].as_str()?, c["e_value"].as_f64()?)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let evidence = match (strongest, verdict["threshold"].as_f64()) {
        (Some((name, e)), Some(needed)) => format!(
            " [evidence: {name} e {} of {}]",
            crate::gate::verdict::e_text(e),
            crate::gate::verdict::number(needed)
        ),
        _ => String::new(),
    };
    let text = format!(
        "gate {outcome}{weight} ({at} UTC): {}{evidence}",
        verdict["reason"].as_str().unwrap_or_default()
    );
    match outcome {
        "pass" => style(text).green().to_string(),
        "fail" => style(text).red().to_string(),
        _ => style(text).yellow().to_string(),
    }
}
