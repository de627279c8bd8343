//! `canary list`: every release in flight.

use crate::cli::Globals;

use super::status::status_of;

/// List the releases in flight, one row each.
///
/// Examples:
///   canary list
///   canary list --all --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Include finished releases
    #[arg(long)]
    pub all: bool,
    /// Print a JSON array of status objects for scripts
    #[arg(long)]
    pub json: bool,
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let releases = match super::read_journal(globals)? {
        Some(journal) => journal.releases(args.all)?,
        None => Vec::new(),
    };
    let statuses: Vec<_> = releases.iter().map(status_of).collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&statuses)?);
        return Ok(());
    }
    if statuses.is_empty() {
        println!("No release in flight.");
        return Ok(());
    }
    let width = statuses
        .iter()
        .map(|s| s.service.len())
        .max()
        .unwrap_or(0)
        .max(7);
    println!(
        "{:<width$}  {:<12}  {:<30}  NEXT STEP",
        "SERVICE", "PHASE", "WEIGHTS (v2)"
    );
    for s in &statuses {
        let weights: Vec<String> = s
            .environments
            .iter()
            .map(|e| match e.v2_weight {
                Some(w) => format!("{} {w}%", e.name),
                None => format!("{} -", e.name),
            })
            .collect();
        println!(
            "{:<width$}  {:<12}  {:<30}  {}",
            s.service,
            s.phase,
            weights.join(", "),
            s.step
        );
    }
    Ok(())
}
