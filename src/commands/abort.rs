//! `canary abort`: every environment back to the last routes known good.

use super::Globals;
use crate::edits::Move;
use crate::settings::Version;

/// Send all traffic back to where it was last known good.
///
/// In route-to-v1, once its edit has moved the routes to v1 (the pinned v1 misbehaves): every
/// VirtualService patch goes back to 100% v2, as add-routing left it. The deploys follow as the
/// next steps, then the release is back at the v1 image check, where web-v1 may be re-pinned
/// before traffic moves to it again.
///
/// In deploy-v2 and ramp (v2 misbehaves): every VirtualService patch goes back to 100% v1. The
/// deploys follow as the next steps, then v2 is deployed (fixed) and tested again before the
/// ramp starts over.
///
/// In coexistence, the note after it says that web's switch, set back to its v1 value, is the
/// second line of defence.
///
/// Before route-to-v1 has moved a route, and from cleanup-1 on, there is nothing to go back to,
/// and abort is refused.
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
    let shell = &globals.shell;
    // In coexistence, the switch is a second way back once the routes are.
    let mut second_line = None;
    super::write_out_of_band(globals, &args.service, args.yes, |_, _, release| {
        second_line = release.config.switch.clone();
        Ok(Move::abort(&release.position, &release.config))
    })?;
    if let Some(switch) = second_line {
        shell.note(format!(
            "the routes are the first line of defence; the second is web's switch: setting it \
             back to {:?} in gap/gap.yaml ({switch}) makes web serve v1 too, whatever its weight",
            switch.value(Version::V1)
        ));
    }
    Ok(())
}
