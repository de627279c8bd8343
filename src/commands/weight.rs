//! `canary weight`: set one environment's v2 weight by hand.

use serde_json::json;

use crate::cli::Globals;
use crate::edits::Job;
use crate::journal::NewEvent;
use crate::prompt;
use crate::runner::{Commit, Runner};
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
    let mut prompt = prompt::for_process(args.yes);
    let mut locked = super::lock_release(globals, Some(&args.service))?;
    let release = &locked.release;
    super::refuse_if_interrupted(release)?;
    let env = release.config.env_index(&args.env)?;
    let percent = args.percent;
    let mut runner = Runner {
        journal: &mut locked.journal,
        prompt: prompt.as_mut(),
        commit: Commit::Ask,
    };
    let release = runner.write(
        release,
        Job::Weight { env, percent },
        &format!("send {percent}% of {}'s traffic to v2", args.env),
        |changes| Action::SetWeight {
            env,
            percent,
            changed: !changes.is_empty(),
        },
        vec![NewEvent::new(
            "weight-changed",
            json!({ "env": args.env, "v2_weight": percent }),
        )],
    )?;
    super::print_next(&release);
    Ok(())
}
