//! `canary context`: set or change the kubeconfig context of an environment, and the Argo CD
//! Application that deploys it, and the Prometheus the metric gate reads, on a release in flight.

use super::Globals;
use crate::argocd::AppRef;
use crate::edits::virtual_service_patch;
use crate::error::bad_input;
use crate::journal::{ContextSet, Event, Update};
use crate::names;
use crate::settings::{Environment, Settings};

/// Set an environment's kubeconfig context and Argo CD Application.
///
/// The context reaches ENV's cluster; --unset removes it. Two environments share one only
/// with --shared-context.
///
/// With a context, canary checks each deploy to ENV against the cluster, `canary verify` reads
/// it and `canary weight --live` edits it. The context is looked up in the kubeconfig as kubectl
/// does (KUBECONFIG, several files allowed) each time canary talks to the cluster.
///
/// With an Argo CD Application (--argocd NAMESPACE/NAME, read through the context), a deploy to
/// ENV also waits until the Application is Synced at canary's commit, or a later one, and
/// Healthy; --no-argocd removes it.
///
/// With a Prometheus (--prometheus URL), the metric gate judges ENV's weights from its Istio
/// metrics (docs/gate.md); --no-prometheus removes it.
///
/// ENV's public hosts (--host, repeatable) change until add-routing writes its VirtualService
/// patch, which lists them; after that, a change is refused.
///
/// Each change is journaled; `canary log` shows it, before and after.
///
/// Examples:
///   canary context my-service production prod-eu-1
///   canary context my-service production --argocd argocd/my-service-production
///   canary context my-service staging --no-argocd --unset
///   canary context my-service production --prometheus cluster:istio-system/prometheus:9090
///   canary context my-service staging --host my-service-staging.example.com
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    pub service: String,
    pub env: String,
    /// A context of your kubeconfig (`kubectl config get-contexts` lists them)
    #[arg(required_unless_present_any = ["unset", "argocd", "no_argocd", "prometheus", "no_prometheus", "hosts", "webhooks"], conflicts_with = "unset")]
    pub context: Option<String>,
    /// Remove the environment's context: its deploys are confirmed by the operator again
    #[arg(long)]
    pub unset: bool,
    /// The Argo CD Application that deploys ENV, NAMESPACE/NAME (such as
    /// argocd/my-service-production); ENV needs a context
    #[arg(long, value_name = "NAMESPACE/NAME", conflicts_with = "no_argocd")]
    pub argocd: Option<String>,
    /// Remove the environment's Argo CD Application: deploys are checked on the objects only
    #[arg(long)]
    pub no_argocd: bool,
    /// ENV's Prometheus for the metric gate: http(s)://HOST:PORT, or
    /// cluster:NAMESPACE/SERVICE:PORT through ENV's cluster (docs/gate.md)
    #[arg(long, value_name = "URL", conflicts_with = "no_prometheus")]
    pub prometheus: Option<String>,
    /// Remove ENV's Prometheus: the gate no longer judges its weights
    #[arg(long)]
    pub no_prometheus: bool,
    /// ENV's public hosts, in place of those it has (repeatable); only until add-routing writes
    /// ENV's VirtualService patch, which lists them
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Let ENV share its context with another environment (a lab where one cluster holds both)
    #[arg(long)]
    pub shared_context: bool,
    /// Webhooks are the release's, not an environment's: taken here only to say where they
    /// are set (`canary settings --webhook`), without repeating the URL, a secret
    #[arg(long = "webhook", value_name = "URL", hide = true)]
    pub webhooks: Vec<String>,
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    if !args.webhooks.is_empty() {
        return Err(bad_input(format!(
            "webhooks are the release's, not {}'s: set them with `canary settings {} --webhook \
             URL` (or `canary start --webhook`), better given in CANARY_WEBHOOK_URL to `canary \
             run`; nothing was changed",
            args.env, args.service
        ))
        .into());
    }
    let shell = &globals.shell;
    if let Some(context) = &args.context {
        names::check_context(context)?;
    }
    for host in &args.hosts {
        names::check_host(host)?;
    }
    let app: Option<AppRef> = args.argocd.as_deref().map(str::parse).transpose()?;
    let prometheus: Option<crate::gate::Endpoint> =
        args.prometheus.as_deref().map(str::parse).transpose()?;
    let mut locked = super::lock_release(globals, Some(&args.service))?;
    let release = &locked.release;
    let env = release.config.env_index(&args.env)?;
    let before = &release.config.environments[env];
    let mut after = before.clone();
    if args.unset {
        after.context = None;
    } else if args.context.is_some() {
        after.context = args.context.clone();
    }
    if args.no_argocd {
        after.argocd = None;
    } else if app.is_some() {
        after.argocd = app;
    }
    if args.no_prometheus {
        after.prometheus = None;
    } else if prometheus.is_some() {
        after.prometheus = prometheus;
    }
    if !args.hosts.is_empty() {
        after.hosts.clear();
        for host in &args.hosts {
            if !after.hosts.contains(host) {
                after.hosts.push(host.clone());
            }
        }
    }
    if let Some(source) = &after.prometheus {
        super::start::check_prometheus_context(&after, source)?;
    }
    let mut environments = release.config.environments.clone();
    environments[env] = after.clone();
    super::start::refuse_shared_hosts(&environments)?;
    if !args.shared_context && after.context != before.context {
        super::start::refuse_shared_context(&environments, Some(env), "--shared-context")?;
    }
    if after.hosts != before.hosts {
        super::refuse_if_written(
            &locked.journal,
            release,
            &format!("{}'s hosts are listed", args.env),
            &[virtual_service_patch(&args.env)],
        )?;
    }
    if let (Some(app), None) = (&after.argocd, &after.context) {
        return Err(bad_input(format!(
            "{} would have Argo CD Application {app} but no kubeconfig context, and canary reads \
             the Application through one; give a CONTEXT too, or --no-argocd",
            args.env,
        ))
        .into());
    }
    // A context, Application or Prometheus named here is checked, even when unchanged.
    if args.context.is_some() || args.argocd.is_some() || args.prometheus.is_some() {
        let mut config = release.config.clone();
        config.environments[env] = after.clone();
        if args.context.is_some() || args.argocd.is_some() {
            super::start::check_cluster(shell, &config, env)?;
        }
        if args.prometheus.is_some() || args.context.is_some() {
            super::start::check_prometheus(shell, &config, env)?;
        }
    }
    if after == *before {
        shell.status(
            "Unchanged",
            format!("{} already has {}", args.env, describe(&after)),
        );
        return Ok(());
    }
    let mut detail = ContextSet {
        env: args.env.clone(),
        from: before.context.clone(),
        to: after.context.clone(),
        ..ContextSet::default()
    };
    if after.prometheus != before.prometheus {
        detail.prometheus_from = Some(before.prometheus.clone());
        detail.prometheus_to = Some(after.prometheus.clone());
    }
    if after.argocd != before.argocd {
        detail.argocd_from = Some(before.argocd.clone());
        detail.argocd_to = Some(after.argocd.clone());
    }
    if after.hosts != before.hosts {
        detail.hosts_from = Some(before.hosts.clone());
        detail.hosts_to = Some(after.hosts.clone());
    }
    let mut config: Settings = release.config.clone();
    config.environments[env] = after.clone();
    locked.journal.record(
        release,
        Update {
            events: vec![Event::ContextSet(detail)],
            config: Some(config),
            ..Update::default()
        },
    )?;
    shell.status("Set", format!("{} now has {}", args.env, describe(&after)));
    Ok(())
}

fn describe(env: &Environment) -> String {
    let hosts = format!("hosts {}", env.hosts.join(", "));
    let deploys = match (&env.context, &env.argocd) {
        (Some(context), Some(app)) => format!(
            "kubeconfig context {context} and Argo CD Application {app}: deploys are checked on \
             the cluster and wait for the Application to be Synced and Healthy"
        ),
        (Some(context), None) => {
            format!("kubeconfig context {context}: deploys are checked on the cluster")
        }
        (None, _) => "no kubeconfig context: deploys are confirmed by the operator".into(),
    };
    match &env.prometheus {
        Some(source) => format!("{hosts}; {deploys}; the metric gate reads Prometheus {source}"),
        None => format!("{hosts}; {deploys}"),
    }
}
