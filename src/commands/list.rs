//! `canary list`: every release in flight.

use crate::cli::Globals;

use super::status::{Status, status_of};

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
    let journal = super::read_journal(globals)?;
    if args.json {
        // Streamed, one release at a time: memory stays flat however many are listed.
        use serde::ser::{SerializeSeq, Serializer};
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut json = serde_json::Serializer::pretty(&mut out);
        let mut seq = json.serialize_seq(None)?;
        if let Some(journal) = &journal {
            journal.each_release(args.all, |release| -> anyhow::Result<()> {
                Ok(seq.serialize_element(&status_of(&release))?)
            })?;
        }
        seq.end()?;
        writeln!(out)?;
        out.flush()?;
        return Ok(());
    }
    let mut statuses = Vec::new();
    if let Some(journal) = &journal {
        journal.each_release(args.all, |release| -> anyhow::Result<()> {
            statuses.push(status_of(&release));
            Ok(())
        })?;
    }
    if statuses.is_empty() {
        println!("No release in flight.");
        return Ok(());
    }
    print!("{}", table(&statuses, crate::output::width()));
    Ok(())
}

/// One aligned row per release, cut to the terminal's width.
pub fn table(statuses: &[Status], width: usize) -> String {
    let weights = |s: &Status| -> String {
        s.environments
            .iter()
            .map(|e| match e.v2_weight {
                Some(w) => format!("{} {w}%", e.name),
                None => format!("{} -", e.name),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rows: Vec<[String; 4]> = statuses
        .iter()
        .map(|s| {
            let step = s
                .step
                .split_once(": ")
                .map_or(s.step.as_str(), |(_, step)| step);
            [
                s.service.clone(),
                s.phase.clone(),
                weights(s),
                step.to_string(),
            ]
        })
        .collect();
    let header = ["SERVICE", "PHASE", "V2 WEIGHT", "NEXT STEP"].map(String::from);
    let widths: Vec<usize> = (0..3)
        .map(|c| {
            rows.iter()
                .chain([&header])
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    std::iter::once(&header)
        .chain(&rows)
        .map(|r| {
            let line = format!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            );
            format!("{}\n", crate::output::fit(line.trim_end(), width))
        })
        .collect()
}
