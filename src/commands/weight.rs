//! `canary weight`: set one environment's v2 weight by hand.

use serde_json::json;

use super::OutOfBand;
use crate::cli::Globals;
use crate::edits::Job;
use crate::journal::NewEvent;
use crate::workflow::Action;

/// Set ENV's v2 weight (v1 gets the rest) in its VirtualService patch file.
///
/// Allowed for staging (every environment but the last) during deploy-v2 and ramp, to test v2,
/// and for production during ramp. The deploy of that environment follows as the next step.
///
/// Example:
///   canary weight my-service staging 50
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service whose release is in flight
    pub service: String,
    /// The environment, as named at `canary start` (staging, production, ...)
    pub env: String,
    /// v2's share of the traffic, a whole number from 0 to 100
    #[arg(value_parser = clap::value_parser!(u8).range(0..=100), allow_negative_numbers = true)]
    pub percent: u8,
    /// Answer yes to every question
    #[arg(long)]
    pub yes: bool,
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let percent = args.percent;
    super::write_out_of_band(globals, &args.service, args.yes, |release| {
        let env = release.config.env_index(&args.env)?;
        Ok(OutOfBand {
            job: Job::Weight { env, percent },
            what: format!("send {percent}% of {}'s traffic to v2", args.env),
            action: Box::new(move |changes| Action::SetWeight {
                env,
                percent,
                changed: !changes.is_empty(),
            }),
            event: NewEvent::new(
                "weight-changed",
                json!({ "env": args.env, "v2_weight": percent }),
            ),
        })
    })
}
