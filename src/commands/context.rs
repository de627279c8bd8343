//! `canary context`: set or change the kubeconfig context of an environment on a release in
//! flight.

use serde_json::json;

use crate::cli::Globals;
use crate::journal::{NewEvent, Update};
use crate::output;
use crate::release::{self, Settings};

/// Set or remove the kubeconfig context of an environment's cluster.
///
/// The context reaches ENV's cluster; --unset removes it.
///
/// With a context, canary checks each deploy to ENV against the cluster, `canary verify` reads
/// it and `canary weight --live` edits it. The context is looked up in the kubeconfig as kubectl
/// does (KUBECONFIG, several files allowed) each time canary talks to the cluster.
///
/// Examples:
///   canary context my-service production prod-eu-1
///   canary context my-service staging --unset
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    pub service: String,
    pub env: String,
    /// A context of your kubeconfig (`kubectl config get-contexts` lists them)
    #[arg(required_unless_present = "unset", conflicts_with = "unset")]
    pub context: Option<String>,
    /// Remove the environment's context: its deploys are confirmed by the operator again
    #[arg(long)]
    pub unset: bool,
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    if let Some(context) = &args.context {
        release::check_context(context)?;
    }
    let mut locked = super::lock_release(globals, Some(&args.service))?;
    let release = &locked.release;
    let env = release.config.env_index(&args.env)?;
    if release.config.environments[env].context == args.context {
        output::status(
            "Unchanged",
            format!(
                "{} already has {}",
                args.env,
                describe(args.context.as_deref())
            ),
        );
        return Ok(());
    }
    let mut config: Settings = release.config.clone();
    config.environments[env].context = args.context.clone();
    locked.journal.record(
        release,
        Update {
            events: vec![NewEvent::new(
                "context-set",
                json!({
                    "env": args.env,
                    "from": release.config.environments[env].context,
                    "to": args.context,
                }),
            )],
            config: Some(config),
            ..Update::default()
        },
    )?;
    output::status(
        "Set",
        format!("{} now has {}", args.env, describe(args.context.as_deref())),
    );
    Ok(())
}

fn describe(context: Option<&str>) -> String {
    match context {
        Some(context) => {
            format!("kubeconfig context {context}: deploys are checked on the cluster")
        }
        None => "no kubeconfig context: deploys are confirmed by the operator".into(),
    }
}
