//! `canary log`: a release's journal, oldest first.

use crate::cli::Globals;

/// Show the journal of a release: every step started and done, every file written with its
/// hash, every deploy confirmed, weight changed and abort, with time and operator.
///
/// Examples:
///   canary log my-service
///   canary log my-service --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service; its most recent release is shown
    pub service: String,
    /// Print a JSON array of events for scripts
    #[arg(long)]
    pub json: bool,
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    crate::release::check_service(&args.service)?;
    let no_release =
        || crate::error::bad_input(format!("no release of {} in the journal", args.service));
    let journal = super::read_journal(globals)?.ok_or_else(no_release)?;
    let release = journal.latest(&args.service)?.ok_or_else(no_release)?;
    let events = journal.events(release.id)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&events)?);
        return Ok(());
    }
    for event in &events {
        println!(
            "{}  {:<10}  {:<12}  {:<16}  {}",
            event.at,
            event.operator,
            event.phase,
            event.kind,
            summary(&event.detail)
        );
    }
    Ok(())
}

/// The event's detail in a few words.
pub fn summary(detail: &serde_json::Value) -> String {
    let field = |k: &str| detail.get(k).and_then(|v| v.as_str()).map(str::to_string);
    if let Some(files) = detail.get("files").and_then(|f| f.as_array()) {
        let paths: Vec<&str> = files.iter().filter_map(|f| f["path"].as_str()).collect();
        return paths.join(", ");
    }
    if let Some(service) = field("service") {
        return format!("service {service}");
    }
    [field("step"), field("env"), field("commit"), field("to")]
        .into_iter()
        .flatten()
        .chain(detail.get("v2_weight").map(|w| format!("v2 {w}%")))
        .collect::<Vec<_>>()
        .join("  ")
}
