//! `canary abort`: every environment back to 100% v1.

use serde_json::json;

use crate::cli::Globals;
use crate::edits::{Job, virtual_service_patch};
use crate::journal::NewEvent;
use crate::prompt;
use crate::runner::{Commit, Runner};
use crate::workflow::Action;

/// Send all traffic of every environment back to v1, during deploy-v2 or ramp.
///
/// The VirtualService patches go to 100% v1; the deploys follow as the next steps. Then v2 is
/// deployed (fixed) and tested again before the ramp may start over.
///
/// Example:
///   canary abort my-service
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service whose release is in flight
    pub service: String,
    /// Answer yes to every question
    #[arg(long)]
    pub yes: bool,
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let mut prompt = prompt::for_process(args.yes);
    let mut locked = super::lock_release(globals, Some(&args.service))?;
    let release = &locked.release;
    super::refuse_if_interrupted(release)?;
    let envs = release.config.environments.clone();
    let mut runner = Runner {
        journal: &mut locked.journal,
        prompt: prompt.as_mut(),
        commit: Commit::Ask,
    };
    let release = runner.write(
        release,
        Job::Abort,
        "send all traffic back to v1",
        |changes| Action::Abort {
            changed: (0..envs.len())
                .filter(|&i| {
                    let path = virtual_service_patch(&envs[i].name);
                    changes.iter().any(|c| c.path == path)
                })
                .collect(),
        },
        vec![NewEvent::new("aborted", json!({}))],
    )?;
    super::print_next(&release);
    Ok(())
}
