//! `canary gate`: the metric gate on demand (the gate that `next` and `weight` pass is the
//! engine's, `engine::gate`).

use serde_json::json;

use super::Globals;
use crate::engine::gate::{IfNotYet, refuse_no_staging_gate, settle, until_decided, weight_in};

// The arguments of `canary gate`. Its help is on its variant of `cli::Command`, where clap
// finds it without building them (they are deferred).
#[derive(Debug, clap::Args)]
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
