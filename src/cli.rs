//! The command line: global options, one subcommand per file under `commands/`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands;

const AFTER_HELP: &str = "\
A release walks these phases, each ending with a deploy to every environment:
  deploy-v1     pin a v1 twin of the old image; label v1 and v2
  add-routing   DestinationRule subsets and v1's AuthorizationPolicy, then the
                VirtualService patches and the Service selector patch
  route-to-v1   100% of traffic to v1
  deploy-v2     land the v2 code; test it on staging
  ramp          production's v2 weight up the schedule to 100%
  cleanup-1..3  remove v1, then the routes, then the DestinationRule

Exit codes: 0 success; 2 bad usage or bad input; 3 refused, the workflow does
not allow that now (the message names what comes first); 75 another canary is
working on the same release; 1 anything else. On any error nothing changed.

Example:
  canary start my-service --repo . --namespace relational-data \\
      --v1-image registry/my-service@sha256:<64 hex digits> \\
      --host staging=my-service-staging.example.com --host production=my-service.example.net
  canary next            # one step at a time, until done
  canary status --json";

/// Guides a weight-based canary release of one service on Kubernetes with Istio, the GitOps
/// way: canary edits the repository files for each step, shows the diff, asks before writing,
/// waits for each deploy, and journals every action so that `canary next` resumes where it
/// stopped.
#[derive(Debug, Parser)]
#[command(name = "canary", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// The journal file [default: canary/journal.db in the XDG data directory]
    #[arg(long, global = true, env = "CANARY_JOURNAL", value_name = "PATH")]
    pub journal: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Start(commands::start::Args),
    Next(commands::next::Args),
    Status(commands::status::Args),
    List(commands::list::Args),
    Weight(commands::weight::Args),
    Abort(commands::abort::Args),
    Log(commands::log::Args),
    Demo(commands::demo::Args),
}

/// What every command needs to know about its surroundings.
pub struct Globals {
    pub journal: PathBuf,
    pub operator: String,
}

impl Globals {
    pub fn from_env(journal: Option<PathBuf>) -> anyhow::Result<Globals> {
        let journal = match journal {
            Some(path) => path,
            None => crate::journal::default_path().ok_or_else(|| {
                crate::error::bad_input(
                    "cannot tell where the journal goes (no home directory); pass --journal PATH",
                )
            })?,
        };
        let operator = ["CANARY_OPERATOR", "USER", "USERNAME"]
            .iter()
            .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| "unknown".into());
        Ok(Globals { journal, operator })
    }
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let globals = Globals::from_env(cli.journal)?;
    match cli.command {
        Command::Start(args) => commands::start::run(&globals, args),
        Command::Next(args) => commands::next::run(&globals, args),
        Command::Status(args) => commands::status::run(&globals, args),
        Command::List(args) => commands::list::run(&globals, args),
        Command::Weight(args) => commands::weight::run(&globals, args),
        Command::Abort(args) => commands::abort::run(&globals, args),
        Command::Log(args) => commands::log::run(&globals, args),
        Command::Demo(args) => commands::demo::run(args),
    }
}
