//! `canary list`: every release in flight.

use std::fmt::Write;

use super::Globals;
use crate::workflow::{self, Method, Phase, Plans, Position, Shape, Step};

use super::status::{WeightsFrom, recorded_or_read, status_of};
use crate::error::JournalError;
use crate::journal::Summary;
use crate::settings::Settings;

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
    /// Include finished releases, and cancelled ones
    #[arg(long)]
    pub all: bool,
    /// Print a JSON array of status objects for scripts
    #[arg(long)]
    pub json: bool,
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let journal = super::read_journal(globals)?;
    match &journal {
        Some(journal) => journal.map_into_memory()?,
        // Nothing to list, but a journal that could never be there is worth a word: a
        // mistyped --journal or CANARY_JOURNAL would otherwise look like an empty journal. The
        // default one is simply not made yet on a machine that never started a release.
        None => {
            let default = crate::journal::default_path().is_some_and(|d| d == globals.journal);
            if let Some(why) = cannot_be_there(&globals.journal).filter(|_| !default) {
                eprintln!(
                    "canary: no journal can be at {}: {why}",
                    globals.journal.display()
                );
            }
        }
    }
    if args.json {
        // Streamed, one release at a time: memory stays flat however many are listed.
        let mut plans = Plans::default();
        use serde::ser::{SerializeSeq, Serializer};
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut json = serde_json::Serializer::pretty(&mut out);
        let mut seq = json.serialize_seq(None)?;
        if let Some(journal) = &journal {
            journal.each_release(args.all, |release| -> anyhow::Result<()> {
                Ok(seq.serialize_element(&status_of(&release, WeightsFrom::Journal, &mut plans))?)
            })?;
        }
        seq.end()?;
        writeln!(out)?;
        out.flush()?;
        return Ok(());
    }
    let mut table = Table::default();
    if let Some(journal) = &journal {
        journal.each_summary(args.all, |summary| table.add(summary))?;
    }
    if journal.is_none() {
        let none = format!(
            "No releases: no journal yet at {}; `canary start SERVICE` opens the first.",
            globals.journal.display()
        );
        println!("{}", crate::report::commands(&none));
        return Ok(());
    }
    if table.is_empty() {
        println!(
            "{}",
            if args.all {
                "No releases."
            } else {
                "No release in flight."
            }
        );
        return Ok(());
    }
    print!("{}", table.render(crate::output::width()));
    Ok(())
}

/// The table's rows.
#[derive(Default)]
struct Table {
    /// Each shape met so far, by its JSON text, with its plan. A journal holds one or two shapes
    /// among a thousand releases in flight: decoding the shape of each row was most of the work
    /// of listing them.
    shapes: Vec<KnownShape>,
    /// Every cell's text, row after row, [`CELLS`] cells to a row: a thousand rows in flight
    /// held as a `String` per cell cost four allocations and four frees each, about 7% of
    /// listing them.
    text: String,
    /// Where each cell ends in `text`; the next begins there.
    ends: Vec<usize>,
}

/// A row's cells: service, phase (with the method where it is not the default), each
/// environment's v2 weight, next step.
const CELLS: usize = 4;

/// A shape, decoded from its JSON text, and its plan.
struct KnownShape {
    json: String,
    shape: Shape,
    plan: Vec<(Phase, Step)>,
}

impl Table {
    fn add(&mut self, summary: Summary<'_>) -> Result<(), JournalError> {
        let corrupt = |what: &str, e: serde_json::Error| JournalError::Corrupt {
            service: summary.service.to_string(),
            detail: format!("{what}: {e}"),
        };
        let i = match self
            .shapes
            .iter()
            .position(|known| known.json == summary.shape)
        {
            Some(i) => i,
            None => {
                let shape: Shape =
                    serde_json::from_str(summary.shape).map_err(|e| corrupt("shape", e))?;
                let plan = workflow::plan(&shape);
                self.shapes.push(KnownShape {
                    json: summary.shape.to_string(),
                    shape,
                    plan,
                });
                self.shapes.len() - 1
            }
        };
        let position: Position =
            serde_json::from_str(summary.position).map_err(|e| corrupt("position", e))?;
        let weights: Vec<Option<u8>> = match summary.v2_weights {
            Some(text) => serde_json::from_str(text).map_err(|e| corrupt("v2 weights", e))?,
            // Recorded before schema 4: each release's own files say.
            None => {
                let config: Settings = serde_json::from_str(summary.config.unwrap_or_default())
                    .map_err(|e| corrupt("config", e))?;
                recorded_or_read(None, &config)
            }
        };
        // Decoded whole before the first cell is written: a corrupt row adds none.
        let KnownShape { shape, plan, .. } = &self.shapes[i];
        let phase = position.phase(plan).name();
        let text = &mut self.text;
        text.push_str(summary.service);
        self.ends.push(text.len());
        match (summary.cancelled, shape.method) {
            (true, _) => write!(text, "cancelled in {phase}"),
            (false, Method::Succession) => text.write_str(phase),
            (false, method) => write!(text, "{phase} ({method})"),
        }
        .expect("a String takes any text");
        self.ends.push(text.len());
        push_weights(text, shape, &weights);
        self.ends.push(text.len());
        if summary.cancelled {
            text.push_str("none: cancelled");
        } else {
            write!(text, "{}", position.describe_next_step(shape, plan))
                .expect("a String takes any text");
        }
        self.ends.push(text.len());
        Ok(())
    }

    /// Each row's cells, in the order they were added.
    fn rows(&self) -> impl Iterator<Item = [&str; CELLS]> + Clone {
        let (rows, _) = self.ends.as_chunks::<CELLS>();
        rows.iter().enumerate().map(|(i, ends)| {
            let mut start = if i == 0 { 0 } else { self.ends[i * CELLS - 1] };
            ends.map(|end| {
                let cell = &self.text[start..end];
                start = end;
                cell
            })
        })
    }

    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// One aligned row per release under a header, cut to the terminal's width.
    fn render(&self, width: usize) -> String {
        let header = ["SERVICE", "PHASE", "V2 WEIGHT", "NEXT STEP"];
        table(std::iter::once(header).chain(self.rows()), width)
    }
}

/// Each environment's v2 weight, e.g. `staging 50%, production 25%`, pushed onto `cell`.
fn push_weights(cell: &mut String, shape: &Shape, weights: &[Option<u8>]) {
    // Pushed, not formatted: with weights tested freely on staging, a journal can hold as many
    // distinct cells as releases.
    for (i, (env, weight)) in shape.environments.iter().zip(weights).enumerate() {
        if i > 0 {
            cell.push_str(", ");
        }
        cell.push_str(env);
        match *weight {
            Some(w) => {
                cell.push(' ');
                if w >= 100 {
                    cell.push(char::from(b'0' + w / 100));
                }
                if w >= 10 {
                    cell.push(char::from(b'0' + w / 10 % 10));
                }
                cell.push(char::from(b'0' + w % 10));
                cell.push('%');
            }
            None => cell.push_str(" -"),
        }
    }
}

/// One aligned row per release under a header, cut to the terminal's width.
fn table<'a>(rows: impl Iterator<Item = [&'a str; 4]> + Clone, width: usize) -> String {
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

/// Why no journal could ever be at `path` (its directory is missing or is not one), or `None`
/// when one could: the usual state before the first `canary start`.
fn cannot_be_there(path: &std::path::Path) -> Option<String> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => None,
        Ok(_) => Some(format!("{} is not a directory", dir.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("{} does not exist", dir.display()))
        }
        Err(e) => Some(format!("{}: {e}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weights_cell_spells_every_weight_as_formatting_would() {
        let weights: Vec<Option<u8>> = (0..=u8::MAX).map(Some).chain([None]).collect();
        let shape = Shape {
            environments: (0..weights.len()).map(|i| format!("env-{i}")).collect(),
            schedule: vec![100],
            method: Default::default(),
            plan: Default::default(),
        };
        let expected: Vec<String> = shape
            .environments
            .iter()
            .zip(&weights)
            .map(|(env, w)| match w {
                Some(w) => format!("{env} {w}%"),
                None => format!("{env} -"),
            })
            .collect();
        let mut cell = String::new();
        push_weights(&mut cell, &shape, &weights);
        assert_eq!(cell, expected.join(", "));
    }
}
