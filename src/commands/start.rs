//! `canary start`: open a release of one service.

use std::path::PathBuf;

use super::Globals;
use crate::argocd::AppRef;
use crate::check;
use crate::error::{Error, bad_input};
use crate::gate::Thresholds;
use crate::journal::Journal;
use crate::names::{self, check_host, check_label};
use crate::notify::Webhook;
use crate::output::{self, Shell};
use crate::prompt::{self, Prompt};
use crate::repo::{CanaryCommit, Repo};
use crate::settings::{
    self, DEFAULT_ENVIRONMENTS, DEFAULT_SCHEDULE, Environment, Image, Remote, Settings, Switch,
};
use crate::workflow::{Method, Position};
use crate::yaml;

/// Open a release of SERVICE in a GitOps repository.
///
/// SERVICE is the `name:` in the repository's gap/gap.yaml.
///
/// Environments are deployed in the order given; the last one is production, the one whose
/// weight is ramped. Each needs at least one public host; the in-cluster host
/// SERVICE-web.NAMESPACE.svc.cluster.local is always added. On a terminal, missing values are
/// asked for.
///
/// Example:
///   canary start my-service --repo ~/src/deploy --namespace relational-data \
///     --v1-image registry.example/my-service@sha256:be6b...f65f \
///     --host staging=my-service-staging.example.com --host production=my-service.example.net
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service to release, as gap/gap.yaml names it
    pub service: Option<String>,
    /// The repository's work tree (it holds gap/gap.yaml)
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// The last v1 build, pinned by digest: REPOSITORY@sha256:HEX (succession only)
    #[arg(long = "v1-image", value_name = "IMAGE")]
    pub v1_image: Option<String>,
    /// How v1 and v2 are held apart: succession (v1 pinned to its last build, v2 code
    /// replaces it) or coexistence (one image holds both; a switch selects one)
    #[arg(long, value_enum, default_value_t = MethodArg::Succession)]
    pub method: MethodArg,
    /// Coexistence: what selects v1 or v2 in web's container, an environment variable
    /// (env:NAME=V1VALUE,V2VALUE) or an argument of web's command (arg:V1ARG,V2ARG)
    #[arg(long, value_name = "SWITCH")]
    pub switch: Option<String>,
    /// The Kubernetes namespace the service runs in
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// An environment, in deploy order (repeatable) [default: staging, production]
    #[arg(long = "env", value_name = "NAME")]
    pub envs: Vec<String>,
    /// A public host of an environment (repeatable)
    #[arg(long = "host", value_name = "ENV=HOST")]
    pub hosts: Vec<String>,
    /// The kubeconfig context of an environment's cluster (repeatable); deploys to it are then
    /// checked against the cluster
    #[arg(long = "context", value_name = "ENV=CONTEXT")]
    pub contexts: Vec<String>,
    /// Let environments share a kubeconfig context, as in a lab where one cluster stands in
    /// for staging and production. Otherwise a context given to two environments is refused:
    /// canary would read one environment's objects as the other's, and take a deploy to one
    /// for a deploy to both
    #[arg(long)]
    pub shared_context: bool,
    /// The Argo CD Application that deploys an environment (repeatable; the environment needs a
    /// --context too): deploys to it then also wait until it is Synced at canary's commit, or a
    /// later one, and Healthy
    #[arg(long = "argocd", value_name = "ENV=NAMESPACE/NAME")]
    pub argocd: Vec<String>,
    /// Production's v2 weights during the ramp, ending at 100
    #[arg(long, value_name = "LIST", default_value_t = settings::schedule_text(&DEFAULT_SCHEDULE))]
    pub steps: String,
    /// Answer yes to every question; values must then come from the flags
    #[arg(long)]
    pub yes: bool,
    /// Push each of canary's commits to the branch's upstream (otherwise the operator
    /// pushes, and a deploy waits until the upstream has canary's commits)
    #[arg(long, conflicts_with = "no_remote")]
    pub push: bool,
    /// The repository has no remote: a deploy needs canary's commits on the branch only
    #[arg(long)]
    pub no_remote: bool,
    /// Open the release where the repository files show it stands (begun by hand): after the
    /// last edit they show, its deploys still to confirm. The v1 image defaults to web-v1's
    #[arg(long)]
    pub adopt: bool,
    /// A webhook `canary run` tells what it does (repeat for more); journaled and shown by
    /// host only, as its URL is a secret (`canary settings --webhook` changes them)
    #[arg(long = "webhook", value_name = "URL")]
    pub webhooks: Vec<String>,
    #[command(flatten)]
    pub gate: GateFlags,
}

/// The metric gate: where each environment's Prometheus is, and the limits v2 must meet
/// before production's weight goes up (docs/gate.md).
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Metric gate (docs/gate.md)")]
pub struct GateFlags {
    /// An environment's Prometheus (repeatable): http(s)://HOST:PORT, or
    /// cluster:NAMESPACE/SERVICE:PORT through its cluster's API server (needs --context).
    /// With one for production, every increase of its v2 weight waits for the gate
    #[arg(long = "prometheus", value_name = "ENV=URL")]
    pub prometheus: Vec<String>,
    /// How long a weight must have been deployed before the gate judges it; the gate reads
    /// the whole time since the deploy
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = crate::cluster::parse_duration)]
    pub gate_window: std::time::Duration,
    /// v2 requests needed to judge
    #[arg(long, value_name = "N", default_value_t = Thresholds::default().min_requests)]
    pub gate_min_requests: u64,
    /// v2's least share of non-5xx answers, in percent (Flagger's request-success-rate)
    #[arg(long, value_name = "PERCENT", default_value_t = Thresholds::default().success_rate, value_parser = crate::gate::parse_percent)]
    pub gate_success_rate: f64,
    /// The gate's confidence over the whole release, in percent: 100 minus the chance that a
    /// v2 as good as v1 is stopped anywhere in it, shared by every check, raise and look
    #[arg(long, value_name = "PERCENT", default_value_t = Thresholds::default().confidence, value_parser = crate::gate::parse_percent)]
    pub gate_confidence: f64,
    /// How much higher than v1's v2's error rate may be for a pass, in percentage points (or
    /// half v1's rate, where that is more)
    #[arg(long, value_name = "POINTS", default_value_t = Thresholds::default().margin)]
    pub gate_margin: f64,
    /// v2's highest p99 latency, in milliseconds (Flagger's request-duration)
    #[arg(long, value_name = "MS", default_value_t = Thresholds::default().p99_max_ms)]
    pub gate_p99_max_ms: f64,
    /// v2's p99 may be at most v1's times this
    #[arg(long, value_name = "FACTOR", default_value_t = Thresholds::default().p99_factor)]
    pub gate_p99_factor: f64,
    /// Abort the release by itself when the gate fails (for pipelines)
    #[arg(long)]
    pub gate_auto_abort: bool,
    /// The team's own PromQL checks, a YAML file in the repository (docs/gate.md)
    #[arg(long, value_name = "FILE")]
    pub gate_checks: Option<String>,
}

impl Default for GateFlags {
    /// As the command line without gate flags: no Prometheus, every limit its default.
    fn default() -> GateFlags {
        let t = Thresholds::default();
        GateFlags {
            prometheus: Vec::new(),
            gate_window: std::time::Duration::from_secs(t.window_secs),
            gate_min_requests: t.min_requests,
            gate_success_rate: t.success_rate,
            gate_confidence: t.confidence,
            gate_margin: t.margin,
            gate_p99_max_ms: t.p99_max_ms,
            gate_p99_factor: t.p99_factor,
            gate_auto_abort: t.auto_abort,
            gate_checks: t.checks,
        }
    }
}

impl GateFlags {
    fn thresholds(&self) -> Thresholds {
        Thresholds {
            window_secs: self.gate_window.as_secs(),
            min_requests: self.gate_min_requests,
            success_rate: self.gate_success_rate,
            confidence: self.gate_confidence,
            margin: self.gate_margin,
            p99_max_ms: self.gate_p99_max_ms,
            p99_factor: self.gate_p99_factor,
            auto_abort: self.gate_auto_abort,
            checks: self.gate_checks.clone(),
        }
    }
}

/// `--method`'s values, the workflow's methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    Succession,
    Coexistence,
}

impl From<MethodArg> for Method {
    fn from(arg: MethodArg) -> Method {
        match arg {
            MethodArg::Succession => Method::Succession,
            MethodArg::Coexistence => Method::Coexistence,
        }
    }
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let shell = &globals.shell;
    // Say that a release is already in flight before asking for, or complaining about, values.
    // Only reading, never migrating: a start refused for its values leaves the journal as it
    // was. An empty or older journal is checked when the release is recorded.
    if let Some(service) = &args.service {
        names::check_service(service)?;
        if let Some(journal) = Journal::open_if_current(&globals.journal, &globals.operator)?
            && let Some(existing) = journal.in_flight(service)?
        {
            return Err(already_in_flight(&existing).into());
        }
    }
    let mut prompt = prompt::for_process(args.yes);
    let adopt = args.adopt;
    let webhooks = args
        .webhooks
        .iter()
        .map(|url| Webhook::parse(url))
        .collect::<Result<Vec<_>, _>>()?;
    let mut config = settle(args, prompt.as_mut())?;
    let owner = release_in_history(globals, &config)?;
    match owner {
        // Taken over: its commits, and the position its files show, are this release's.
        Some(other) if adopt => config.adopted = Some(other.release),
        Some(other) => return Err(owned_elsewhere(&config, &other).into()),
        None => {}
    }
    for env in 0..config.environments.len() {
        check_cluster(shell, &config, env)?;
        check_prometheus(shell, &config, env)?;
    }
    let position = if adopt {
        adopted_position(shell, &config)?
    } else {
        let position = Position::default();
        refuse_uncommitted(&config, &check::walk::walk(&config, &position)?)?;
        position
    };
    let release = open(globals, &config, &position, &webhooks)?;
    shell.status(
        "Started",
        format!(
            "the release of {} in {} ({})",
            config.service,
            config.repo.display(),
            config
                .environments
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(&format!(" {} ", output::marks().then))
        ),
    );
    super::print_next(shell, &release);
    Ok(())
}

/// Record the release in the journal with its webhooks, unless one of this service is already
/// in flight.
pub fn open(
    globals: &Globals,
    config: &Settings,
    position: &Position,
    webhooks: &[Webhook],
) -> anyhow::Result<crate::journal::Release> {
    let mut journal = Journal::open(&globals.journal, &globals.operator)?;
    let _lock = crate::lock::lock(&globals.journal, &config.service)?;
    let _repo_lock = crate::lock::lock_in_repo(&Repo::for_reading(&config.repo)?, &config.service)?;
    if let Some(existing) = journal.in_flight(&config.service)? {
        return Err(already_in_flight(&existing).into());
    }
    // An adopted release may start with routes in place.
    let weights = crate::edits::v2_weights(Repo::for_reading(&config.repo).ok().as_ref(), config);
    let webhooks: Vec<(String, String)> = webhooks
        .iter()
        .map(|w| (w.url().to_string(), w.shown().to_string()))
        .collect();
    Ok(journal.open_release_with_webhooks(config, position, &weights, &webhooks)?)
}

/// The one position the repository's files fit, with the rest of the release walked from there
/// as `start` walks a new one.
fn adopted_position(shell: &Shell, config: &Settings) -> anyhow::Result<Position> {
    let repo = Repo::open(&config.repo)?;
    let scope = check::Scope::of(config);
    let shape = config.shape();
    let (seen, positions) = check::state::adopt(&repo, &scope, &shape)?;
    let plan = crate::workflow::plan(&shape);
    let found = check::state::describe(&seen, &scope).join("\n  ");
    let position = match <[Position; 1]>::try_from(positions) {
        Ok([position]) => position,
        Err(positions) => {
            let fits = if positions.is_empty() {
                "they fit no position of the release".to_string()
            } else {
                let names: Vec<String> = positions
                    .iter()
                    .map(|p| p.describe_next(&shape, &plan))
                    .collect();
                format!("they fit more than one position ({})", names.join("; "))
            };
            return Err(bad_input(format!(
                "cannot adopt the release: {fits}. The files show:\n  {found}"
            ))
            .into());
        }
    };
    refuse_uncommitted(config, &check::walk::walk(config, &position)?)?;
    shell.status(
        "Adopted",
        format!("the files fit {}", position.phase(&plan)),
    );
    Ok(position)
}

/// A person's uncommitted change to a file the release will write: `next` would refuse to
/// write over it (or commit it), so `start` does.
fn refuse_uncommitted(config: &Settings, paths: &[String]) -> anyhow::Result<()> {
    let repo = Repo::open(&config.repo)?;
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    if let Some(path) = repo.uncommitted(&paths)?.first() {
        return Err(bad_input(format!(
            "{path} has uncommitted changes, and the release writes that file; commit or stash \
             them first, then start again"
        ))
        .into());
    }
    Ok(())
}

/// The release of this service that the repository's history (the branch and its upstream)
/// holds unfinished and this journal does not know: someone else's, in flight.
fn release_in_history(
    globals: &Globals,
    config: &Settings,
) -> anyhow::Result<Option<CanaryCommit>> {
    let Some(newest) = Repo::open(&config.repo)?.unfinished_release(&config.service)? else {
        return Ok(None);
    };
    let known = match Journal::open_if_current(&globals.journal, &globals.operator)? {
        Some(journal) => journal
            .releases(true)?
            .iter()
            .any(|r| r.config.owns(&newest.release)),
        None => false,
    };
    Ok((!known).then_some(newest))
}

fn owned_elsewhere(config: &Settings, other: &CanaryCommit) -> Error {
    bad_input(format!(
        "the history of {} holds a release of {} that this journal does not own: release {}, \
         last step \"{}\", committed by {} in {}. Finish it where it was begun, or take it \
         over from the files with `canary start {} --adopt` and the same values",
        config.repo.display(),
        config.service,
        other.release,
        other.step,
        other.author,
        other.short(),
        config.service
    ))
}

fn already_in_flight(existing: &crate::journal::Release) -> Error {
    let service = &existing.config.service;
    Error::Refused {
        reason: format!(
            "a release of {service} is already in flight, in {}",
            existing.phase
        ),
        first: Some("finish the release in flight".into()),
        run: Some(format!("canary next {service}")),
    }
}

/// Every value of the release, validated, asked for where missing and a terminal is there.
pub fn settle(args: Args, prompt: &mut dyn Prompt) -> anyhow::Result<Settings> {
    let service = match args.service {
        Some(s) => s,
        None => prompt.input("Service", "the SERVICE argument", &|s| {
            names::check_service(s)
        })?,
    };
    names::check_service(&service)?;
    let schedule = settings::parse_schedule(&args.steps)?;
    let repo_dir = match args.repo {
        Some(dir) => dir,
        None => prompt
            .input("Repository directory", "--repo DIR", &|s| {
                Repo::open(std::path::Path::new(s)).map(drop)
            })?
            .into(),
    };
    let repo = Repo::open(&repo_dir)?;
    let remote = remote(&repo, args.push, args.no_remote)?;
    let gap = repo.read(crate::edits::GAP_YAML)?.unwrap_or_default();
    let gap =
        yaml::Document::parse_one(gap).map_err(|e| bad_input(format!("gap/gap.yaml: {e}")))?;
    let named = crate::edits::gap_yaml::service_name(&gap)
        .map_err(|e| bad_input(format!("gap/gap.yaml: {e}")))?;
    if named != service {
        return Err(bad_input(format!(
            "gap/gap.yaml in {} is for service {named:?}, not {service:?}",
            repo.root().display()
        ))
        .into());
    }
    if crate::edits::gap_yaml::deployment_value(&gap, settings::WEB).is_none() {
        return Err(bad_input("gap/gap.yaml has no deployments.web to release").into());
    }
    // An adopted release already pins web-v1 in gap.yaml.
    let twin_image = || -> Option<String> {
        let twin = crate::edits::gap_yaml::deployment_value(&gap, settings::WEB_V1)?;
        Some(format!(
            "{}@{}",
            twin["image"]["repository"].as_str()?,
            twin["image"]["tag"].as_str()?
        ))
    };
    let method = Method::from(args.method);
    let (v1_image, switch) = match method {
        Method::Succession => {
            if args.switch.is_some() {
                return Err(bad_input(
                    "--switch is for --method coexistence; a succession pins web-v1 with \
                     --v1-image instead",
                )
                .into());
            }
            let v1_image = args
                .v1_image
                .or_else(|| args.adopt.then(twin_image).flatten());
            let v1_image: Image = match v1_image {
                Some(image) => image.parse()?,
                None => prompt
                    .input("v1 image (REPOSITORY@sha256:HEX)", "--v1-image", &|s| {
                        s.parse::<Image>().map(drop)
                    })?
                    .parse()?,
            };
            (Some(v1_image), None)
        }
        Method::Coexistence => {
            if args.v1_image.is_some() {
                return Err(bad_input(
                    "--v1-image is for --method succession; in coexistence web-v1 runs web's \
                     image, and --switch tells v1 from v2",
                )
                .into());
            }
            let switch: Switch = match args.switch {
                Some(switch) => switch.parse()?,
                None => prompt
                    .input(
                        "Switch (env:NAME=V1,V2 or arg:V1ARG,V2ARG)",
                        "--switch",
                        &|s| s.parse::<Switch>().map(drop),
                    )?
                    .parse()?,
            };
            let (env, values) = match &switch {
                Switch::Env { name, v1, v2 } => (Some(name.as_str()), [v1.as_str(), v2.as_str()]),
                Switch::Arg { v1, v2 } => (None, [v1.as_str(), v2.as_str()]),
            };
            crate::edits::gap_yaml::check_switch(&gap, settings::WEB, env, values).map_err(
                |e| {
                    bad_input(format!(
                        "gap/gap.yaml: web cannot carry the switch {switch}: {e}"
                    ))
                },
            )?;
            (None, Some(switch))
        }
    };
    let namespace = match args.namespace {
        Some(ns) => ns,
        None => prompt.input("Namespace", "--namespace", &|s| {
            check_label("namespace", s, 63)
        })?,
    };
    check_label("namespace", &namespace, 63)?;
    let mut environments = environments(&args.envs, &args.hosts, &args.contexts, prompt)?;
    refuse_shared_hosts(&environments)?;
    if !args.shared_context {
        refuse_shared_context(&environments, None, "--shared-context")?;
    }
    applications(&mut environments, &args.argocd)?;
    prometheus_sources(&mut environments, &args.gate.prometheus)?;
    let gate = args.gate.thresholds();
    gate.validate()?;
    if let Some(rel) = &gate.checks {
        crate::gate::checks::load(&repo, rel)?;
    }
    let id = settings::new_release_id(&service, repo.root());
    let config = Settings {
        service,
        repo: repo.root().to_path_buf(),
        namespace,
        environments,
        schedule,
        v1_image,
        method,
        switch,
        remote,
        id,
        adopted: None,
        gate,
        plan: crate::workflow::PlanVersion::CURRENT,
    };
    // A step would refuse a patch that is a link; the release is refused before it begins.
    crate::edits::refuse_links(&repo, &config)?;
    crate::edits::refuse_patched_switch(&repo, &config)?;
    Ok(config)
}

/// How the release's commits reach what Argo CD deploys, refusing a repository where they
/// could not: a detached HEAD, or a branch with no upstream unless there is no remote.
fn remote(repo: &Repo, push: bool, no_remote: bool) -> Result<Remote, Error> {
    let branch = repo.branch()?;
    if no_remote {
        return Ok(Remote::None);
    }
    if branch.upstream.is_none() {
        return Err(bad_input(format!(
            "branch {} of {} has no upstream: Argo CD deploys from a remote, and canary confirms \
             a deploy only once its commits are there. Set one (`git push --set-upstream \
             origin {}`), or start with --no-remote if the repository has no remote",
            branch.name,
            repo.root().display(),
            branch.name
        )));
    }
    Ok(if push { Remote::Push } else { Remote::Operator })
}

fn environments(
    names: &[String],
    hosts: &[String],
    contexts: &[String],
    prompt: &mut dyn Prompt,
) -> anyhow::Result<Vec<Environment>> {
    let names: Vec<String> = if names.is_empty() {
        DEFAULT_ENVIRONMENTS.iter().map(|s| s.to_string()).collect()
    } else {
        names.to_vec()
    };
    let mut envs = Vec::new();
    for name in names {
        check_label("environment name", &name, 63)?;
        if envs.iter().any(|e: &Environment| e.name == name) {
            return Err(bad_input(format!("environment {name:?} is given twice")).into());
        }
        envs.push(Environment {
            name,
            hosts: Vec::new(),
            context: None,
            argocd: None,
            prometheus: None,
        });
    }
    for pair in hosts {
        let (env, host) = env_pair(&mut envs, "--host", "HOST", pair)?;
        check_host(host)?;
        if !env.hosts.iter().any(|h| h == host) {
            env.hosts.push(host.to_string());
        }
    }
    for pair in contexts {
        let (env, context) = env_pair(&mut envs, "--context", "CONTEXT", pair)?;
        names::check_context(context)?;
        if env.context.as_deref().is_some_and(|c| c != context) {
            return Err(bad_input(format!("--context gives {} two contexts", env.name)).into());
        }
        env.context = Some(context.to_string());
    }
    for env in &mut envs {
        if env.hosts.is_empty() {
            let flag = format!("--host {}=HOST", env.name);
            let host = prompt.input(&format!("Public host of {}", env.name), &flag, &|s| {
                check_host(s)
            })?;
            check_host(&host)?;
            env.hosts.push(host);
        }
    }
    Ok(envs)
}

/// A public host belongs to one environment: given to two, each one's VirtualService patch
/// would list it, and production's weights would route staging's traffic (`canary check`'s
/// CANARY-E046).
pub fn refuse_shared_hosts(envs: &[Environment]) -> Result<(), Error> {
    for (i, env) in envs.iter().enumerate() {
        for other in &envs[i + 1..] {
            if let Some(host) = env.hosts.iter().find(|h| other.hosts.contains(h)) {
                return Err(bad_input(format!(
                    "host {host} is given to both {} and {}: a host belongs to one environment, \
                     or {}'s weights would route {}'s traffic; give each its own --host",
                    env.name, other.name, other.name, env.name
                )));
            }
        }
    }
    Ok(())
}

/// A kubeconfig context reaches one environment's cluster: shared, canary would read one
/// environment's objects as the other's. `env`, when given, is the only environment whose
/// context just changed; `allow` is the flag that permits sharing.
pub fn refuse_shared_context(
    envs: &[Environment],
    env: Option<usize>,
    allow: &str,
) -> Result<(), Error> {
    for (i, a) in envs.iter().enumerate() {
        for (j, b) in envs.iter().enumerate().skip(i + 1) {
            if env.is_some_and(|e| e != i && e != j) {
                continue;
            }
            if let (Some(context), Some(theirs)) = (&a.context, &b.context)
                && context == theirs
            {
                return Err(bad_input(format!(
                    "kubeconfig context {context} is given to both {} and {}: canary would \
                     read one environment's cluster as the other's and take a deploy to one \
                     for a deploy to both; give each its own context, or {allow} if one \
                     cluster really holds both (a lab)",
                    a.name, b.name
                )));
            }
        }
    }
    Ok(())
}

/// Each `--argocd ENV=NAMESPACE/NAME`, on an environment that has a context to read it through.
fn applications(envs: &mut [Environment], pairs: &[String]) -> Result<(), Error> {
    for pair in pairs {
        let (env, app) = env_pair(envs, "--argocd", "NAMESPACE/NAME", pair)?;
        let app: AppRef = app.parse()?;
        if env.argocd.as_ref().is_some_and(|a| *a != app) {
            return Err(bad_input(format!(
                "--argocd gives {} two Argo CD Applications",
                env.name
            )));
        }
        if env.context.is_none() {
            return Err(bad_input(format!(
                "--argocd {pair:?}: {} has no kubeconfig context, and canary reads its Argo CD \
                 Application through one; give --context {}=CONTEXT too",
                env.name, env.name
            )));
        }
        env.argocd = Some(app);
    }
    Ok(())
}

/// Each `--prometheus ENV=SOURCE`; one in the cluster needs the environment's context.
fn prometheus_sources(envs: &mut [Environment], pairs: &[String]) -> Result<(), Error> {
    for pair in pairs {
        let (env, source) = env_pair(envs, "--prometheus", "URL", pair)?;
        let source: crate::gate::Endpoint = source.parse()?;
        if env.prometheus.as_ref().is_some_and(|s| *s != source) {
            return Err(bad_input(format!(
                "--prometheus gives {} two Prometheus",
                env.name
            )));
        }
        check_prometheus_context(env, &source)?;
        env.prometheus = Some(source);
    }
    Ok(())
}

/// What a cluster can say of an environment's settings, asked when they are set (at `start`,
/// and by `canary context`) rather than found at the first deploy: its context is in the
/// kubeconfig, the release's namespace is in its cluster, and its Argo CD Application, where
/// the cluster has it, deploys this release (namespace, repository, path). Unknown or other
/// ones are bad input (exit 2); a cluster that cannot be asked is its one-line error (exit 1). A canary built without
/// cluster support says that it could not check.
pub fn check_cluster(shell: &Shell, config: &Settings, env: usize) -> anyhow::Result<()> {
    use crate::cluster::{ClusterError, Problem, Session, Target};
    let Some(target) = Target::of(config, env) else {
        return Ok(());
    };
    let checked = Session::connect(&target).and_then(|session| {
        session.check_namespace()?;
        let Some(app) = &config.environments[env].argocd else {
            return Ok(None);
        };
        Ok(session.application(app)?.map(|live| (app, live)))
    });
    match checked {
        // An Application the cluster does not have yet is said at each deploy.
        Ok(None) => Ok(()),
        Ok(Some((app, live))) => {
            let repo = crate::repo::Repo::for_reading(&config.repo)?;
            let release = crate::cluster::release_deploy(config, &repo, &target.env)?;
            let deploys = crate::argocd::Deploys::read(&live);
            match crate::argocd::differs(app, &release, &deploys) {
                Some(why) => Err(bad_input(format!(
                    "{} (context {}): {why}: it deploys something else than this release",
                    target.env, target.context
                ))
                .into()),
                None => Ok(()),
            }
        }
        Err(ClusterError {
            problem: Problem::NotCompiled,
            ..
        }) => {
            shell.note(format!(
                "{} (context {}) was not checked: this canary was built without cluster support",
                target.env, target.context
            ));
            Ok(())
        }
        Err(
            e @ ClusterError {
                problem: Problem::UnknownContext | Problem::NoNamespace(_),
                ..
            },
        ) => Err(bad_input(e.to_string()).into()),
        Err(e) => Err(e.into()),
    }
}

/// An environment's Prometheus, asked when it is set (at `start`, and by `canary context`):
/// it answers, and has Istio's series for the service ([`crate::gate::probe`]). A Prometheus
/// that cannot be asked is its one-line error (exit 1), one without the service's series bad
/// input (exit 2); a canary built without cluster support says that it could not ask.
pub fn check_prometheus(shell: &Shell, config: &Settings, env: usize) -> anyhow::Result<()> {
    let environment = &config.environments[env];
    let Some(source) = &environment.prometheus else {
        return Ok(());
    };
    if !cfg!(feature = "cluster") {
        shell.note(format!(
            "{}'s Prometheus ({source}) was not asked: this canary was built without cluster \
             support",
            environment.name
        ));
        return Ok(());
    }
    let prometheus = crate::gate::Prometheus::connect(
        &config.service,
        &environment.name,
        Some(source),
        environment.context.as_deref(),
    )?;
    crate::gate::probe(&prometheus, &config.gate_subject())?;
    Ok(())
}

/// A Prometheus in the cluster is reached through the environment's context.
pub fn check_prometheus_context(
    env: &Environment,
    source: &crate::gate::Endpoint,
) -> Result<(), Error> {
    if matches!(source, crate::gate::Endpoint::Cluster { .. }) && env.context.is_none() {
        return Err(bad_input(format!(
            "Prometheus {source} is reached through {}'s cluster, and {} has no kubeconfig \
             context; give --context {}=CONTEXT too, or the Prometheus URL",
            env.name, env.name, env.name
        )));
    }
    Ok(())
}

/// Split an `ENV=VALUE` flag and find its environment.
fn env_pair<'a, 'e>(
    envs: &'e mut [Environment],
    flag: &str,
    what: &str,
    pair: &'a str,
) -> Result<(&'e mut Environment, &'a str), Error> {
    let (name, value) = pair
        .split_once('=')
        .ok_or_else(|| bad_input(format!("{flag} {pair:?} is not ENV={what}")))?;
    let known = envs
        .iter()
        .map(|e| e.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let env = envs.iter_mut().find(|e| e.name == name).ok_or_else(|| {
        bad_input(format!(
            "{flag} {pair:?} names environment {name:?}, which is not one of {known}"
        ))
    })?;
    Ok((env, value))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Line {
        #[command(flatten)]
        gate: GateFlags,
    }

    #[test]
    fn the_gate_flags_default_to_the_default_thresholds() {
        let line = Line::try_parse_from(["canary"]).unwrap();
        assert_eq!(line.gate.thresholds(), Thresholds::default());
        assert_eq!(GateFlags::default().thresholds(), Thresholds::default());
    }
}
