//! `canary gate`: the metric gate on demand (the gate that `next` and `weight` pass is the
//! engine's, `engine::gate`).

use serde_json::json;

use super::Globals;
use crate::engine::gate::{IfNotYet, refuse_no_staging_gate, settle, until_decided, weight_in};

/// Judge v2 against v1 from Prometheus now; moves nothing.
///
/// Reads production's Prometheus over the time since its weight was deployed (at least the
/// release's --gate-window), from Istio's istio_requests_total and
/// istio_request_duration_milliseconds_bucket: v2's requests, its success rate against the
/// limit and against v1's, its latency against the limit and against v1's, and the team's
/// checks (docs/gate.md). Each statistical check fails only once its evidence over the
/// release reaches its share of the release's error budget (--gate-confidence); a pass needs
/// v2's error rate shown within the margin of v1's. The evaluation is journaled.
///
/// Exit codes: 0 the gate passes; 3 it fails, or cannot judge what Prometheus answered; 4 not
/// yet (too little evidence either way, or the weight not deployed for the window); 1
/// Prometheus could not be asked.
///
/// With --staging it judges v2 alone on staging's Prometheus against the fixed limits, as `canary
/// run --staging-gate` does to answer whether v2 was tested there: it passes only once v2's
/// error rate and its share of requests slower than the p99 limit are shown within the limits.
///
/// With --watch it evaluates again as traffic comes in, the evidence on one live line, until
/// the gate passes, fails or cannot judge (or --timeout passes); the release's locks are let
/// go between evaluations, so that `canary abort` is never kept waiting.
///
/// Examples:
///   canary gate my-service
///   canary gate my-service --json
///   canary gate my-service --watch --timeout 30m
///   canary gate my-service --staging --watch
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service; may be left out when exactly one release is in flight
    pub service: Option<String>,
    /// Print the evaluation as JSON
    #[arg(long)]
    pub json: bool,
    /// Evaluate again as traffic comes in until the gate decides
    #[arg(long)]
    pub watch: bool,
    /// Judge v2 alone on staging (the first environment) against the fixed limits, instead
    /// of against v1 in production
    #[arg(long)]
    pub staging: bool,
    /// How long --watch waits for the gate to decide
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = crate::cluster::parse_duration, requires = "watch")]
    pub timeout: std::time::Duration,
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let mut locked = super::lock_release(globals, args.service.as_deref())?;
    let release = locked.release.clone();
    let config = &release.config;
    let env = if args.staging {
        refuse_no_staging_gate(&release, "--staging")?;
        0
    } else {
        config.environments.len() - 1
    };
    // JSON alone on stdout: the verdict's table and status lines are left out.
    let quiet = crate::output::Shell::new(true);
    let shell = if args.json { &quiet } else { &globals.shell };
    let not_yet = if args.watch {
        IfNotYet::Wait(args.timeout)
    } else {
        IfNotYet::Exit
    };
    let (verdict, _) = until_decided(
        shell,
        &mut locked.journal,
        Some(&mut locked.locks),
        &release,
        env,
        not_yet,
    )?;
    if args.json {
        let out = json!({
            "service": config.service,
            "env": config.environments[env].name,
            "v2_weight": weight_in(&release, env),
            "verdict": verdict,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    settle(&release, env, &verdict)
}
