//! `canary journal check` and `canary journal export`: the journal's own health, and all of it
//! as JSON for audits and backups.

use super::Globals;
use crate::error::bad_input;
use crate::journal::Journal;

/// Check or export the journal itself.
///
/// Examples:
///   canary journal check
///   canary journal export --json > canary-journal.json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    #[command(subcommand)]
    pub command: JournalCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum JournalCommand {
    /// Check the journal's integrity and every release in it
    ///
    /// Runs SQLite's integrity and foreign-key checks and reads every release; exit 1 on a
    /// problem.
    ///
    /// Example:
    ///   canary journal check
    #[command(verbatim_doc_comment)]
    Check,
    /// Print every release and every event as one JSON document
    ///
    /// Example:
    ///   canary journal export --json > canary-journal.json
    #[command(verbatim_doc_comment)]
    Export {
        /// JSON is the only format; the flag says so in scripts
        #[arg(long)]
        json: bool,
    },
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let shell = &globals.shell;
    let journal =
        Journal::open_read_only(&globals.journal, &globals.operator)?.ok_or_else(|| {
            bad_input(format!(
                "there is no journal at {}",
                globals.journal.display()
            ))
        })?;
    match args.command {
        JournalCommand::Check => {
            let problems = journal.problems()?;
            if problems.is_empty() {
                shell.status(
                    "Checked",
                    format!("{}: no problem found", globals.journal.display()),
                );
                return Ok(());
            }
            for problem in &problems {
                println!("{problem}");
            }
            anyhow::bail!(
                "{} problem(s) in {}; restore a backup (journal.db.bak-N, or a copy) or export what is readable",
                problems.len(),
                globals.journal.display()
            )
        }
        JournalCommand::Export { json: _ } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            journal.export(&mut out)?;
            Ok(())
        }
    }
}
