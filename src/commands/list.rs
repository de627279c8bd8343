//! `canary list`: every release in flight.

use std::collections::HashMap;
use std::rc::Rc;

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
    if table.rows.is_empty() {
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
    rows: Vec<Row>,
}

/// A shape, decoded from its JSON text, and its plan; and the cells written so far for its
/// releases, by the JSON text they are written from. Releases in flight stand at one of a
/// plan's few dozen steps, with one of a few sets of weights: a thousand of them repeat a few
/// dozen positions, each decoded and described once.
struct KnownShape {
    json: String,
    shape: Shape,
    plan: Vec<(Phase, Step)>,
    /// A position's phase, its cell (the method beside it where it is not the default), and
    /// its next step.
    positions: HashMap<String, (&'static str, Rc<str>, Rc<str>)>,
    /// A list of v2 weights' cell.
    weights: HashMap<String, Rc<str>>,
}

/// A release's cells in the table.
struct Row {
    service: String,
    /// The phase, and the method where it is not the default.
    phase: Rc<str>,
    weights: Rc<str>,
    step: Rc<str>,
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
                    positions: HashMap::new(),
                    weights: HashMap::new(),
                });
                self.shapes.len() - 1
            }
        };
        let known = &mut self.shapes[i];
        let weights = match summary.v2_weights {
            Some(text) => match known.weights.get(text) {
                Some(cell) => Rc::clone(cell),
                None => {
                    let weights: Vec<Option<u8>> =
                        serde_json::from_str(text).map_err(|e| corrupt("v2 weights", e))?;
                    let cell: Rc<str> = weights_cell(&known.shape, &weights).into();
                    known.weights.insert(text.to_string(), Rc::clone(&cell));
                    cell
                }
            },
            // Recorded before schema 4: each release's own files say.
            None => {
                let config: Settings = serde_json::from_str(summary.config.unwrap_or_default())
                    .map_err(|e| corrupt("config", e))?;
                weights_cell(&known.shape, &recorded_or_read(None, &config)).into()
            }
        };
        let (phase, cell, step) = match known.positions.get(summary.position) {
            Some((phase, cell, step)) => (*phase, Rc::clone(cell), Rc::clone(step)),
            None => {
                let position: Position =
                    serde_json::from_str(summary.position).map_err(|e| corrupt("position", e))?;
                let phase = position.phase(&known.plan).name();
                let cells: (&'static str, Rc<str>, Rc<str>) = (
                    phase,
                    match known.shape.method {
                        Method::Succession => phase.into(),
                        method => format!("{phase} ({method})").into(),
                    },
                    position
                        .describe_next_step(&known.shape, &known.plan)
                        .into(),
                );
                known
                    .positions
                    .insert(summary.position.to_string(), cells.clone());
                cells
            }
        };
        self.rows.push(if summary.cancelled {
            // Only with --all: the phase it was cancelled in, and no next step.
            Row {
                service: summary.service.to_string(),
                phase: format!("cancelled in {phase}").into(),
                weights,
                step: "none: cancelled".into(),
            }
        } else {
            Row {
                service: summary.service.to_string(),
                phase: cell,
                weights,
                step,
            }
        });
        Ok(())
    }

    /// One aligned row per release under a header, cut to the terminal's width.
    fn render(&self, width: usize) -> String {
        let header = ["SERVICE", "PHASE", "V2 WEIGHT", "NEXT STEP"];
        let rows = std::iter::once(header).chain(
            self.rows
                .iter()
                .map(|r| [&*r.service, &*r.phase, &*r.weights, &*r.step]),
        );
        table(rows, width)
    }
}

/// Each environment's v2 weight, e.g. `staging 50%, production 25%`.
fn weights_cell(shape: &Shape, weights: &[Option<u8>]) -> String {
    // Pushed, not formatted: with weights tested freely on staging, a journal can hold as many
    // distinct cells as releases.
    let mut cell = String::with_capacity(32);
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
    cell
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

    /// Rows written from the cells of an earlier row read as rows written afresh: each
    /// position and each set of weights is its own, per shape.
    #[test]
    fn rows_that_share_a_position_or_weights_read_as_their_own() {
        let succession = r#"{"environments":["staging","production"],"schedule":[1,50,100],"plan":"staging-first"}"#;
        let coexistence = r#"{"environments":["staging","production"],"schedule":[1,50,100],"method":"coexistence","plan":"staging-first"}"#;
        let summary = |service, shape, position, v2_weights, cancelled| Summary {
            service,
            shape,
            position,
            v2_weights: Some(v2_weights),
            config: None,
            cancelled,
        };
        let mut table = Table::default();
        let mut fresh = Vec::new();
        for row in [
            summary(
                "a",
                succession,
                r#"{"index":1,"pending":[]}"#,
                "[0,0]",
                false,
            ),
            summary(
                "b",
                succession,
                r#"{"index":1,"pending":[]}"#,
                "[100,1]",
                false,
            ),
            summary(
                "c",
                coexistence,
                r#"{"index":1,"pending":[]}"#,
                "[0,0]",
                false,
            ),
            summary(
                "d",
                succession,
                r#"{"index":2,"pending":[]}"#,
                "[0,0]",
                false,
            ),
            summary(
                "e",
                succession,
                r#"{"index":1,"pending":[]}"#,
                "[100,1]",
                true,
            ),
            summary(
                "f",
                succession,
                r#"{"index":1,"pending":[]}"#,
                "[0,0]",
                false,
            ),
        ] {
            let mut alone = Table::default();
            alone.add(row).unwrap();
            fresh.push(alone.rows.pop().unwrap());
            table.add(row).unwrap();
        }
        let cells = |r: &Row| [&*r.service, &*r.phase, &*r.weights, &*r.step].map(str::to_string);
        let listed: Vec<_> = table.rows.iter().map(cells).collect();
        assert_eq!(listed, fresh.iter().map(cells).collect::<Vec<_>>());
        assert_eq!(listed[1][2], "staging 100%, production 1%");
        assert!(listed[2][1].ends_with(" (coexistence)"), "{listed:?}");
        assert_ne!(listed[3][3], listed[0][3]);
        assert!(listed[4][1].starts_with("cancelled in ") && listed[4][3] == "none: cancelled");
        assert_eq!(listed[5][1..], listed[0][1..]);
    }

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
        assert_eq!(weights_cell(&shape, &weights), expected.join(", "));
    }
}
