//! `canary explain`: what a phase does and why it comes where it does.

use console::style;

use super::Globals;
use crate::workflow::{Method, PHASES, Phase};

/// Explain a phase, the two methods, or the map of phases.
///
/// `methods`: succession and coexistence, and when to choose which.
///
/// A phase: what it does, the files it touches, why it comes where it does, and the words of
/// the seed process it implements. Without a phase: the whole map, with the position of the
/// release in flight marked.
///
/// Examples:
///   canary explain
///   canary explain cleanup-3
///   canary explain methods
///   canary explain deploy-v2 --method coexistence
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// methods, or a phase: deploy-v1, add-routing, route-to-v1, deploy-v2, ramp, cleanup-1,
    /// cleanup-2, cleanup-3
    #[arg(value_parser = parse_topic)]
    pub phase: Option<Topic>,
    /// Explain the phases as this method walks them [default: the release in flight's, else
    /// succession]
    #[arg(long, value_enum)]
    pub method: Option<super::start::MethodArg>,
}

/// What `canary explain` can explain besides the map.
#[derive(Debug, Clone, Copy)]
pub enum Topic {
    Phase(Phase),
    Methods,
}

fn parse_topic(text: &str) -> Result<Topic, String> {
    if text == "methods" {
        return Ok(Topic::Methods);
    }
    Phase::ALL
        .into_iter()
        .find(|p| p.name() == text)
        .map(Topic::Phase)
        .ok_or_else(|| {
            let names: Vec<&str> = Phase::ALL.iter().map(|p| p.name()).collect();
            format!("unknown topic; methods, or a phase: {}", names.join(", "))
        })
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    let current = current_release(globals);
    let method = args
        .method
        .map(Method::from)
        .or(current.as_ref().map(|c| c.method))
        .unwrap_or_default();
    match args.phase {
        Some(Topic::Phase(phase)) => print!("{}", one(phase, method)),
        Some(Topic::Methods) => print!("{}", methods()),
        None => print!("{}", map(current.as_ref(), method)),
    }
    Ok(())
}

/// The seed's two methods, and its own advice on choosing.
pub fn methods() -> String {
    let mut out = format!(
        "{}

",
        style("Two ways to hold v1 and v2").bold()
    );
    out.push_str(&wrap(
        "First: if the change can be toggled by a feature switch, use one; a canary release is \
         the last resort, for changes too extensive to toggle (a core library, the HTTP server).",
        "",
    ));
    out.push_str(&format!("\n{}\n", style("succession (the default)").bold()));
    out.push_str(&wrap(
        "web-v1 is pinned to the last v1 build by digest (--v1-image); from then on the codebase \
         is v2, and the operator lands the v2 code in deploy-v2. Choose it for simplicity; a \
         change to v1 during the release is hard (roll back v2, re-pin web-v1).",
        "  ",
    ));
    out.push_str(&format!(
        "\n{}\n",
        style("coexistence (--method coexistence)").bold()
    ));
    out.push_str(&wrap(
        "Both implementations live in one codebase and image; a flag passed to the container \
         selects one (--switch env:NAME=V1,V2 or arg:V1ARG,V2ARG). web-v1 is web's twin with the \
         v1 value and runs web's image; deploy-v2 is canary's edit of web's switch to v2. Choose \
         it when v1 must keep changing during the release; the risk is that the two diverge, so \
         a change made to v1 must go into v2 too (canary check reports web and web-v1 differing \
         in anything but the switch).",
        "  ",
    ));
    out
}

/// The only release in flight, if there is exactly one.
pub struct Current {
    service: String,
    phase: Phase,
    method: Method,
}

fn current_release(globals: &Globals) -> Option<Current> {
    let journal = super::read_journal(globals).ok()??;
    let release = super::find_release(&journal, None).ok()?;
    Some(Current {
        method: release.config.method,
        service: release.config.service,
        phase: release.phase,
    })
}

pub fn one(phase: Phase, method: Method) -> String {
    let e = phase.explanation();
    let mut out = format!("{} — {}\n\n", style(phase.name()).bold(), e.summary(method));
    if e.coexistence.is_some() && method == Method::Coexistence {
        out.push_str(&format!("{}\n", style(format!("In {method}:")).dim()));
    }
    out.push_str(&wrap(e.does(method), ""));
    let files = e.files(method);
    if !files.is_empty() {
        out.push_str(&format!("\n{}\n", style("Files").bold()));
        for file in files {
            out.push_str(&format!("  {file}\n"));
        }
    }
    out.push_str(&format!("\n{}\n", style("Why here").bold()));
    out.push_str(&wrap(e.why_here, "  "));
    out.push_str(&format!("\n{}\n", style("The seed says").bold()));
    out.push_str(&wrap(e.seed, "  > "));
    out
}

pub fn map(current: Option<&Current>, method: Method) -> String {
    let mut out = String::new();
    match current {
        Some(c) if method == Method::Coexistence => {
            out.push_str(&format!("The release of {} (coexistence):\n", c.service));
        }
        Some(c) => out.push_str(&format!("The release of {}:\n", c.service)),
        None if method == Method::Coexistence => out.push_str("In coexistence:\n"),
        None => {}
    }
    let marks = crate::output::marks();
    for e in &PHASES {
        let mark = match current.map(|c| c.phase) {
            Some(p) if p == e.phase => style(marks.current).cyan().bold().to_string(),
            Some(p) if e.phase < p => style(marks.done).green().to_string(),
            _ => " ".into(),
        };
        out.push_str(&format!(
            "{mark} {:<12} {}\n",
            e.phase.name(),
            e.summary(method)
        ));
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
