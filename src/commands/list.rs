//! `canary list`: every release in flight.

use crate::cli::Globals;
use crate::workflow::Plans;

use super::status::{Weights, recorded_or_read, status_of};
use crate::journal::{JournalError, Summary};
use crate::release::ReleaseConfig;

/// List the releases in flight, one row each.
///
/// Each environment's v2 weight is the one canary last wrote, as the journal recorded it:
/// listing reads no repository file. `canary status SERVICE` reads the files themselves.
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
    if let Some(journal) = &journal {
        journal.map_into_memory()?;
    }
    let mut plans = Plans::default();
    if args.json {
        // Streamed, one release at a time: memory stays flat however many are listed.
        use serde::ser::{SerializeSeq, Serializer};
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut json = serde_json::Serializer::pretty(&mut out);
        let mut seq = json.serialize_seq(None)?;
        if let Some(journal) = &journal {
            journal.each_release(args.all, |release| -> anyhow::Result<()> {
                Ok(seq.serialize_element(&status_of(&release, Weights::Journal, &mut plans))?)
            })?;
        }
        seq.end()?;
        writeln!(out)?;
        out.flush()?;
        return Ok(());
    }
    // Only the cells are kept: the columns' widths need every row before the first prints.
    let mut rows = Vec::new();
    if let Some(journal) = &journal {
        journal.each_summary(args.all, |summary| -> anyhow::Result<()> {
            rows.push(row(summary, &mut plans)?);
            Ok(())
        })?;
    }
    if rows.is_empty() {
        println!("No release in flight.");
        return Ok(());
    }
    print!("{}", table(&rows, crate::output::width()));
    Ok(())
}

/// A release's cells: service, phase, v2 weights, next step.
fn row(summary: Summary<'_>, plans: &mut Plans) -> Result<Row, JournalError> {
    use std::fmt::Write;
    let corrupt = |detail: String| JournalError::Corrupt {
        service: summary.service.to_string(),
        detail,
    };
    let (shape, plan) = plans
        .of_json(summary.shape)
        .map_err(|e| corrupt(format!("shape: {e}")))?;
    let weights = match (summary.v2_weights, summary.config) {
        (Some(recorded), _) => recorded,
        (None, config) => {
            let config: ReleaseConfig = serde_json::from_str(config.unwrap_or_default())
                .map_err(|e| corrupt(format!("config: {e}")))?;
            recorded_or_read(None, &config)
        }
    };
    let mut cell = String::with_capacity(32);
    for (i, (env, weight)) in shape.environments.iter().zip(weights).enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = match weight {
            Some(w) => write!(cell, "{sep}{env} {w}%"),
            None => write!(cell, "{sep}{env} -"),
        };
    }
    Ok(Row {
        service: summary.service.to_string(),
        phase: summary.position.phase(plan).name(),
        weights: cell,
        step: summary.position.describe_next_step(shape, plan),
    })
}

/// A release's cells in the table.
struct Row {
    service: String,
    phase: &'static str,
    weights: String,
    step: String,
}

/// One aligned row per release under a header, cut to the terminal's width.
fn table(rows: &[Row], width: usize) -> String {
    let header = ["SERVICE", "PHASE", "V2 WEIGHT", "NEXT STEP"];
    let rows = std::iter::once(header).chain(
        rows.iter()
            .map(|r| [r.service.as_str(), r.phase, &r.weights, &r.step]),
    );
    // Characters, not bytes; service names and phases are ASCII, where they are the same.
    let chars = |cell: &str| {
        if cell.is_ascii() {
            cell.len()
        } else {
            cell.chars().count()
        }
    };
    let mut widths = [0; 3];
    for row in rows.clone() {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(chars(cell));
        }
    }
    const SPACES: &str = "                                                                ";
    let mut out = String::new();
    let mut line = String::new();
    for [service, phase, weights, step] in rows {
        line.clear();
        for (cell, w) in [service, phase, weights].into_iter().zip(widths) {
            line.push_str(cell);
            let mut pad = w - chars(cell) + 2;
            while pad > 0 {
                let n = pad.min(SPACES.len());
                line.push_str(&SPACES[..n]);
                pad -= n;
            }
        }
        line.push_str(step);
        out.push_str(&crate::output::fit(line.trim_end(), width));
        out.push('\n');
    }
    out
}
