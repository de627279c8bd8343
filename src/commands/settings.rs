//! `canary settings`: mend a release's own settings, the namespace and the metric gate's limits,
//! while no file it wrote depends on them (an environment's are `canary context`'s).

use std::collections::BTreeMap;

use serde_json::json;

use super::Globals;
use crate::edits::{self, DESTINATION_RULE, DESTINATION_RULE_ALT};
use crate::gate::Thresholds;
use crate::journal::{Change, Event, SettingsChanged, Update};
use crate::names::check_label;
use crate::notify::Webhook;

/// Change a release's namespace, metric gate limits or webhooks.
///
/// The namespace changes until add-routing writes the files that name it (the DestinationRule
/// and the VirtualService patches, through the Service's in-cluster host); after that, a change
/// is refused, naming the file and the step that wrote it. The gate's limits change at any
/// time, and apply from the next evaluation on. An environment's context, Argo CD Application,
/// Prometheus and hosts are `canary context`'s.
///
/// Each change is journaled; `canary log` shows it, before and after.
///
/// Examples:
///   canary settings my-service --namespace relational-data
///   canary settings my-service --gate-min-requests 50 --gate-p99-max-ms 800
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service whose release is in flight
    pub service: String,
    /// The Kubernetes namespace the service runs in
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// How long a weight must have been deployed before the gate judges it
    #[arg(long, value_name = "DURATION", value_parser = crate::cluster::parse_duration)]
    pub gate_window: Option<std::time::Duration>,
    /// v2 requests needed to judge
    #[arg(long, value_name = "N")]
    pub gate_min_requests: Option<u64>,
    /// v2's least share of non-5xx answers, in percent
    #[arg(long, value_name = "PERCENT", value_parser = crate::gate::parse_percent)]
    pub gate_success_rate: Option<f64>,
    /// The gate's confidence over the whole release, in percent (its evidence so far stays)
    #[arg(long, value_name = "PERCENT", value_parser = crate::gate::parse_percent)]
    pub gate_confidence: Option<f64>,
    /// How much higher than v1's v2's error rate may be for a pass, in percentage points
    #[arg(long, value_name = "POINTS")]
    pub gate_margin: Option<f64>,
    /// v2's highest p99 latency, in milliseconds
    #[arg(long, value_name = "MS")]
    pub gate_p99_max_ms: Option<f64>,
    /// v2's p99 may be at most v1's times this
    #[arg(long, value_name = "FACTOR")]
    pub gate_p99_factor: Option<f64>,
    /// Abort the release by itself when the gate fails
    #[arg(long, conflicts_with = "no_gate_auto_abort")]
    pub gate_auto_abort: bool,
    /// Leave aborting to the operator when the gate fails
    #[arg(long)]
    pub no_gate_auto_abort: bool,
    /// The release's webhooks, which `canary run` tells (repeat for more): these in place of
    /// those it had. Journaled and shown by host only; the URL itself is a secret
    #[arg(long = "webhook", value_name = "URL", conflicts_with = "no_webhooks")]
    pub webhooks: Vec<String>,
    /// Remove the release's webhooks
    #[arg(long)]
    pub no_webhooks: bool,
}

impl Args {
    /// The limits with every one given on the command line in place of `gate`'s.
    fn thresholds(&self, gate: &Thresholds) -> Thresholds {
        let mut after = gate.clone();
        if let Some(window) = self.gate_window {
            after.window_secs = window.as_secs();
        }
        after.min_requests = self.gate_min_requests.unwrap_or(after.min_requests);
        after.success_rate = self.gate_success_rate.unwrap_or(after.success_rate);
        after.confidence = self.gate_confidence.unwrap_or(after.confidence);
        after.margin = self.gate_margin.unwrap_or(after.margin);
        after.p99_max_ms = self.gate_p99_max_ms.unwrap_or(after.p99_max_ms);
        after.p99_factor = self.gate_p99_factor.unwrap_or(after.p99_factor);
        if self.gate_auto_abort || self.no_gate_auto_abort {
            after.auto_abort = self.gate_auto_abort;
        }
        after
    }
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let shell = &globals.shell;
    if let Some(namespace) = &args.namespace {
        check_label("namespace", namespace, 63)?;
    }
    let webhooks = args
        .webhooks
        .iter()
        .map(|url| Webhook::parse(url))
        .collect::<Result<Vec<_>, _>>()?;
    let mut locked = super::lock_release(globals, Some(&args.service))?;
    let release = &locked.release;
    let mut config = release.config.clone();
    config.gate = args.thresholds(&release.config.gate);
    config.gate.validate()?;
    if let Some(namespace) = &args.namespace {
        config.namespace = namespace.clone();
    }
    let mut detail = SettingsChanged::default();
    if config.namespace != release.config.namespace {
        let mut paths = vec![
            DESTINATION_RULE.to_string(),
            DESTINATION_RULE_ALT.to_string(),
        ];
        paths.extend(
            config
                .environments
                .iter()
                .map(|e| edits::virtual_service_patch(&e.name)),
        );
        super::refuse_if_written(
            &locked.journal,
            release,
            "the namespace is named (the Service's in-cluster host)",
            &paths,
        )?;
        detail.namespace_from = Some(release.config.namespace.clone());
        detail.namespace_to = Some(config.namespace.clone());
    }
    let gate = gate_changes(&release.config.gate, &config.gate);
    if !gate.is_empty() {
        detail.gate = Some(gate);
    }
    let mut new_webhooks = None;
    let urls: Vec<String> = webhooks.iter().map(|w| w.url().to_string()).collect();
    let stored = locked.journal.webhooks(release.id)?;
    if (!webhooks.is_empty() || args.no_webhooks) && urls != stored {
        detail.webhooks_from = Some(shown(&stored));
        detail.webhooks_to = Some(webhooks.iter().map(|w| w.shown().to_string()).collect());
        new_webhooks = Some(urls);
    }
    if detail == SettingsChanged::default() {
        shell.status("Unchanged", "the release already has those settings");
        return Ok(());
    }
    let event = Event::SettingsChanged(detail);
    let what = super::log::setting_changes(&event);
    locked.journal.record(
        release,
        Update {
            events: vec![event],
            config: Some(config),
            webhooks: new_webhooks,
            ..Update::default()
        },
    )?;
    shell.status("Set", what);
    Ok(())
}

/// Each limit that differs, by its name, with `from` and `to`.
fn gate_changes(before: &Thresholds, after: &Thresholds) -> BTreeMap<String, Change> {
    let (before, after) = (json!(before), json!(after));
    let mut changes = BTreeMap::new();
    for (limit, to) in after.as_object().into_iter().flatten() {
        let from = &before[limit];
        if from != to {
            changes.insert(
                limit.clone(),
                Change {
                    from: from.clone(),
                    to: to.clone(),
                },
            );
        }
    }
    changes
}

/// Stored webhooks as canary shows them: by scheme and host.
fn shown(urls: &[String]) -> Vec<String> {
    urls.iter()
        .map(|url| Webhook::parse(url).map_or_else(|_| "?".into(), |w| w.shown().to_string()))
        .collect()
}
