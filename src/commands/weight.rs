//! `canary weight`: set one environment's v2 weight by hand, in its patch file or, with
//! `--live`, on the live VirtualService for a short while.

use super::Globals;
use crate::cluster::{Expected, Session, Target, describe_weights};
use crate::edits::Move;
use crate::engine::gate;
use crate::error::{Error, bad_input};
use crate::journal::{Event, Release, Update};
use crate::output::Shell;
use crate::prompt::Prompt;
use crate::repo::Repo;
use crate::runner::advance;
use crate::workflow::Action;

/// Set an environment's v2 weight; v1 gets the rest.
///
/// The weight is written to ENV's VirtualService patch file.
///
/// Allowed for staging (every environment but the last) during deploy-v2 and ramp, to test v2,
/// and for production during ramp. The deploy of that environment follows as the next step.
/// Production's weight goes up (live or in the file) only once v2 at its current weight is
/// deployed there and observed (the ramp's observation, which `canary next` asks for); going
/// down is always allowed.
///
/// With --live, the live VirtualService in ENV's cluster is patched instead (the seed's
/// short-term edit): an RFC 6902 JSON Patch that first tests the current weights, so that a
/// concurrent change makes it fail whole. The file keeps its weights, and a GitOps sync with
/// self-heal puts them back.
///
/// Examples:
///   canary weight my-service staging 50
///   canary weight my-service production 30 --live
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service whose release is in flight
    pub service: String,
    /// The environment, as named at `canary start` (staging, production, ...)
    pub env: String,
    /// v2's share of the traffic, a whole number from 0 to 100 (a trailing % is allowed)
    #[arg(value_parser = percent, allow_negative_numbers = true)]
    pub percent: u8,
    /// Patch the live VirtualService in the environment's cluster, not the file
    #[arg(long)]
    pub live: bool,
    /// Answer yes to every question
    #[arg(long)]
    pub yes: bool,
}

/// A weight as people write it: `50` or `50%`.
fn percent(text: &str) -> Result<u8, String> {
    let digits = text.strip_suffix('%').unwrap_or(text);
    digits
        .parse::<u8>()
        .ok()
        .filter(|p| *p <= 100 && digits.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("{text} is not a whole number from 0 to 100"))
}

/// How long raising production's weight by hand waits for the gate to be able to judge.
const GATE_WAIT: std::time::Duration = std::time::Duration::from_secs(600);

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let percent = args.percent;
    if args.live {
        let (mut prompt, mut locked) = super::lock_for_edit(globals, &args.service, args.yes)?;
        let env = locked.release.config.env_index(&args.env)?;
        let action = Move::Weight { env, percent }.action(&[], &locked.release.config);
        return live(
            &globals.shell,
            &mut locked.journal,
            prompt.as_mut(),
            &locked.release,
            env,
            percent,
            action,
        );
    }
    super::write_out_of_band(
        globals,
        &args.service,
        args.yes,
        |journal, locks, release| {
            let env = release.config.env_index(&args.env)?;
            let production = env == release.config.environments.len() - 1;
            if production && gate::raises(gate::production_weight(release), percent) {
                // The workflow's refusal comes before any measurement.
                advance(
                    release,
                    Move::Weight { env, percent }.action(&[], &release.config),
                )?;
                let not_yet = if args.yes {
                    gate::IfNotYet::Exit
                } else {
                    gate::IfNotYet::Wait(GATE_WAIT)
                };
                gate::before_increase(
                    &globals.shell,
                    journal,
                    Some(locks),
                    release,
                    not_yet,
                    release.config.gate.auto_abort,
                )?;
            }
            Ok(Move::Weight { env, percent })
        },
    )
}

/// Patch the live weights; the release stays where it is, the journal records the change.
fn live(
    shell: &Shell,
    journal: &mut crate::journal::Journal,
    prompt: &mut dyn Prompt,
    release: &Release,
    env: usize,
    percent: u8,
    action: Action,
) -> anyhow::Result<()> {
    let config = &release.config;
    let name = &config.environments[env].name;
    // A live edit is allowed exactly when a file edit would be.
    advance(release, action)?;
    let target = Target::of(config, env).ok_or_else(|| {
        bad_input(format!(
            "{name} has no kubeconfig context, so canary cannot reach its cluster; `canary \
             context {} {name} CONTEXT` sets one",
            config.service
        ))
    })?;
    let expected = Expected::read(config, &Repo::open(&config.repo)?, env)?;
    let Some(file) = &expected.virtual_service else {
        return Err(bad_input(format!(
            "{name} has no VirtualService patch yet, so its route has no subsets to weigh"
        ))
        .into());
    };
    let vs = &expected.virtual_service_name;
    if !prompt.confirm(&format!(
        "Patch the live VirtualService {vs} in {name} (context {}) to send {percent}% to v2?",
        target.context
    ))? {
        return Err(Error::Declined("declined; nothing was changed".into()).into());
    }
    let session = Session::connect(&target)?;
    let before = session.patch_weights(vs, &[("v1", 100 - percent), ("v2", percent)])?;
    journal.record(
        release,
        Update {
            events: vec![Event::LiveWeightChanged {
                env: name.clone(),
                context: target.context.clone(),
                virtual_service: vs.clone(),
                v2_weight: percent,
                before: before.clone(),
            }],
            ..Update::default()
        },
    )?;
    shell.status(
        "Patched",
        format!(
            "the live VirtualService {vs} in {name}: was {}, now v1 {}%, v2 {percent}%",
            describe_weights(&before),
            100 - percent
        ),
    );
    if crate::cluster::v2_weight(&file.weights) == Some(percent) {
        shell.note(format!(
            "the live weights are {}'s again ({}): a GitOps sync leaves them so",
            file.path,
            describe_weights(&file.weights)
        ));
    } else {
        shell.note(format!(
            "{} still says {}: a GitOps sync with self-heal puts that back; to keep {percent}%, \
             `canary weight {} {name} {percent}` changes the file too",
            file.path,
            describe_weights(&file.weights),
            config.service
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn a_weight_may_end_in_a_percent_sign() {
        assert_eq!(percent("50"), Ok(50));
        assert_eq!(percent("50%"), Ok(50));
        assert_eq!(percent("0%"), Ok(0));
        assert_eq!(percent("100%"), Ok(100));
        for bad in [
            "101", "101%", "-1", "+5", "12.5", "%", "50%%", "5 %", "", "abc", "1e2",
        ] {
            assert!(percent(bad).is_err(), "{bad:?}");
        }
    }
}
