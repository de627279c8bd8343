//! `canary explain`: what a phase does and why it comes where it does.

use console::style;

use crate::cli::Globals;
use crate::workflow::PHASES;
use crate::workflow::Phase;

/// Explain a phase of a release, or the whole map of phases.
///
/// A phase: what it does, the files it touches, why it comes where it does, and the words of
/// the seed process it implements. Without a phase: the whole map, with the position of the
/// release in flight marked.
///
/// Examples:
///   canary explain
///   canary explain cleanup-3
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// deploy-v1, add-routing, route-to-v1, deploy-v2, ramp, cleanup-1, cleanup-2, cleanup-3
    #[arg(value_parser = parse_phase)]
    pub phase: Option<Phase>,
}

fn parse_phase(text: &str) -> Result<Phase, String> {
    Phase::ALL
        .into_iter()
        .find(|p| p.name() == text)
        .ok_or_else(|| {
            let names: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
            format!("unknown phase; one of: {}", names.join(", "))
        })
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    match args.phase {
        Some(phase) => print!("{}", one(phase)),
        None => print!("{}", map(current_phase(globals))),
    }
    Ok(())
}

/// The phase of the only release in flight, if there is exactly one.
fn current_phase(globals: &Globals) -> Option<(String, Phase)> {
    let journal = super::read_journal(globals).ok()??;
    let release = super::find_release(&journal, None).ok()?;
    Some((release.config.service, release.phase))
}

pub fn one(phase: Phase) -> String {
    let e = phase.explanation();
    let mut out = format!("{} — {}\n\n", style(phase.name()).bold(), e.summary);
    out.push_str(&wrap(e.does, ""));
    if !e.files.is_empty() {
        out.push_str(&format!("\n{}\n", style("Files").bold()));
        for file in e.files {
            out.push_str(&format!("  {file}\n"));
        }
    }
    out.push_str(&format!("\n{}\n", style("Why here").bold()));
    out.push_str(&wrap(e.why_here, "  "));
    out.push_str(&format!("\n{}\n", style("The seed says").bold()));
    out.push_str(&wrap(e.seed, "  > "));
    out
}

pub fn map(current: Option<(String, Phase)>) -> String {
    let mut out = String::new();
    if let Some((service, _)) = &current {
        out.push_str(&format!("The release of {service}:\n"));
    }
    let marks = crate::output::marks();
    for e in &PHASES {
        let mark = match &current {
            Some((_, p)) if *p == e.phase => style(marks.current).cyan().bold().to_string(),
            Some((_, p)) if e.phase < *p => style(marks.done).green().to_string(),
            _ => " ".into(),
        };
        out.push_str(&format!("{mark} {:<12} {}\n", e.phase.name(), e.summary));
    }
    out.push_str(
        "\n`canary explain PHASE` tells what a phase does and why it comes where it does.\n",
    );
    out
}

/// Wrap prose at 88 columns with a prefix on every line.
fn wrap(text: &str, prefix: &str) -> String {
    let mut out = String::new();
    let mut line = String::from(prefix);
    for word in text.split_whitespace() {
        if line.len() > prefix.len() && line.len() + 1 + word.len() > 88 {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(prefix);
        }
        if line.len() > prefix.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}
