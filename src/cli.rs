//! The command line: global options, one subcommand per file under `commands/`.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

use crate::commands::{self, Globals};

/// The phase map and the exit codes, below the command list of `canary --help`.
fn after_help() -> String {
    let mut text = String::from(
        "A release walks these phases, each ending with a deploy to every environment:\n",
    );
    for e in &crate::workflow::PHASES[..8] {
        text.push_str(&format!("  {:<12}  {}\n", e.phase.name(), e.summary));
    }
    text.push_str(
        "\nExit codes: 0 success; 2 bad usage or bad input; 3 refused: the workflow does not\n\
         allow that now (the message names what comes first), `canary check` finds an error\n\
         where the step would write, deploy or start, or the metric gate failed; 4 the metric\n\
         gate cannot judge yet (too little v2 traffic or time; run again later); 75 busy, run\n\
         it again: another canary holds the release (or the journal) or pushed its steps from\n\
         another clone, a file changed under canary's plan, or a git process holds the\n\
         repository's index (index.lock); 1\n\
         anything else. On any error nothing changed, except what the message says was left\n\
         (a push rejected after the commit, say), and a release set to --gate-auto-abort\n\
         aborts on a failed gate.\n\n\
         Example:\n  canary demo --yes        # a whole release on a copy of the seed example\n  \
         canary start my-service --repo . --namespace relational-data \\\n      \
         --v1-image registry/my-service@sha256:<64 hex digits> \\\n      \
         --host staging=my-service-staging.example.com --host production=my-service.example.net\n  \
         canary next              # one step at a time, until done\n  \
         canary status --json",
    );
    text
}

/// Guides a weight-based canary release of one service on Kubernetes with Istio, the GitOps
/// way: canary edits the repository files for each step, shows the diff, asks before writing,
/// waits for each deploy, and journals every action so that `canary next` resumes where it
/// stopped.
#[derive(Debug, Parser)]
#[command(name = "canary", version, after_help = after_help(), max_term_width = 100)]
pub struct Cli {
    /// The journal file [default: canary/journal.db in the XDG data directory]
    #[arg(long, global = true, env = "CANARY_JOURNAL", value_name = "PATH")]
    pub journal: Option<PathBuf>,

    /// Print no status lines (what canary is doing and did); notes, diffs, questions, tables
    /// and errors still print
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    // Boxed: its flags outweigh every other command's.
    Start(Box<commands::start::Args>),
    Next(commands::next::Args),
    Run(commands::run::Args),
    Status(commands::status::Args),
    List(commands::list::Args),
    Weight(commands::weight::Args),
    Abort(commands::abort::Args),
    Cancel(commands::cancel::Args),
    Verify(commands::verify::Args),
    Gate(commands::gate::Args),
    Context(commands::context::Args),
    Settings(commands::settings::Args),
    Check(commands::check::Args),
    Log(commands::log::Args),
    Demo(commands::demo::Args),
    Explain(commands::explain::Args),
    Journal(commands::journal::Args),
    Completions(commands::completions::Args),
    Man(commands::completions::ManArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let command = match cli.command {
        // The demo needs no default journal path: unless one is named, its journal goes beside
        // its repository.
        Command::Demo(args) => return commands::demo::run(cli.journal, cli.quiet, args),
        command => command,
    };
    let globals = Globals::from_env(cli.journal, cli.quiet)?;
    crate::report::set_journal(&globals.journal, crate::journal::default_path().as_deref());
    match command {
        Command::Start(args) => commands::start::run(&globals, *args),
        Command::Next(args) => commands::next::run(&globals, args),
        Command::Run(args) => commands::run::run(&globals, args),
        Command::Status(args) => commands::status::run(&globals, args),
        Command::List(args) => commands::list::run(&globals, args),
        Command::Weight(args) => commands::weight::run(&globals, args),
        Command::Abort(args) => commands::abort::run(&globals, args),
        Command::Cancel(args) => commands::cancel::run(&globals, args),
        Command::Verify(args) => commands::verify::run(&globals, args),
        Command::Gate(args) => commands::gate::run(&globals, args),
        Command::Context(args) => commands::context::run(&globals, args),
        Command::Settings(args) => commands::settings::run(&globals, args),
        Command::Check(args) => commands::check::run(&globals, args),
        Command::Log(args) => commands::log::run(&globals, args),
        Command::Demo(_) => unreachable!("the demo ran above"),
        Command::Explain(args) => commands::explain::run(&globals, args),
        Command::Journal(args) => commands::journal::run(&globals, args),
        Command::Completions(args) => commands::completions::run(args, Cli::command()),
        Command::Man(args) => commands::completions::man(args, Cli::command()),
    }
}
