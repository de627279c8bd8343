//! `canary abort`: every environment back to 100% v1.

use serde_json::json;

use super::OutOfBand;
use crate::cli::Globals;
use crate::edits::{Job, virtual_service_patch};
use crate::journal::NewEvent;
use crate::workflow::Action;

/// Send all traffic back to v1, during deploy-v2 or ramp.
///
/// Every environment's traffic goes back to v1.
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
    super::write_out_of_band(globals, &args.service, args.yes, |release| {
        let paths: Vec<String> = release
            .config
            .environments
            .iter()
            .map(|env| virtual_service_patch(&env.name))
            .collect();
        Ok(OutOfBand {
            job: Job::Abort,
            what: "send all traffic back to v1".into(),
            action: Box::new(move |changes| Action::Abort {
                changed: (0..paths.len())
                    .filter(|&env| changes.iter().any(|c| c.path == paths[env]))
                    .collect(),
            }),
            event: NewEvent::new("aborted", json!({})),
        })
    })
}
