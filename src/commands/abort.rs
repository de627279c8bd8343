//! `canary abort`: every environment back to the last routes known good.

use super::Globals;
use crate::edits::Move;
use crate::settings::Version;

// The arguments of `canary abort`. Its help is on its variant of `cli::Command`, where clap
// finds it without building them (they are deferred).
#[derive(Debug, clap::Args)]
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
