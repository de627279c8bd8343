//! `canary log`: a release's journal, oldest first.

use std::io::Write;

use super::Globals;
use crate::gate::verdict::Verdict;
use crate::journal::{DeployConfirmed, Event};

/// Show the journal of a release, oldest event first.
///
/// Every step started and done, every file written with its hash, every deploy confirmed,
/// weight changed and abort, with time and operator. A confirmed deploy says how it was
/// confirmed: verified against the cluster (its objects, and the Argo CD Application at the
/// revision it reported), or by the operator's word (on a terminal, by --yes, or with
/// --no-verify).
///
/// Examples:
///   canary log                # the only release in flight
///   canary log my-service
///   canary log my-service --json
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The service, whose most recent release is shown; may be left out when exactly one
    /// release is in flight (or none is: then the one that moved last)
    pub service: Option<String>,
    /// Print a JSON array of events for scripts
    #[arg(long)]
    pub json: bool,
}

pub fn run(globals: &Globals, args: Args) -> anyhow::Result<()> {
    if let Some(service) = &args.service {
        crate::names::check_service(service)?;
    }
    let journal = super::read_journal(globals)?.ok_or_else(|| {
        crate::error::bad_input(match &args.service {
            Some(service) => format!("no release of {service} in the journal"),
            None => "the journal holds no release; `canary start SERVICE` opens one".into(),
        })
    })?;
    let release = super::shown_release(&journal, args.service.as_deref())?;
    let events = journal.events(release.id)?;
    // One write for the whole log, not one a line: stdout flushes at each newline.
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &events)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(());
    }
    // The team's checks file as the previous evaluation read it.
    let mut checks_read: Option<&String> = None;
    for entry in &events {
        let event = &entry.event;
        let mut what = what(event);
        match event {
            Event::DeployConfirmed(confirmed) => {
                what = format!("{what}  {}", how_confirmed(confirmed));
            }
            Event::GateEvaluated {
                verdict,
                checks_sha256,
                ..
            } => {
                what = format!("{what}  {}", gate_numbers(verdict));
                if let Some(now) = checks_sha256 {
                    if checks_read.is_some_and(|before| before != now) {
                        what.push_str(" (the team's checks changed since the last evaluation)");
                    }
                    checks_read = Some(now);
                }
            }
            _ => {}
        }
        writeln!(
            out,
            "{}  {:<10}  {:<12}  {:<16}  {}",
            entry.at,
            entry.operator,
            entry.phase,
            event.kind(),
            what
        )?;
    }
    out.flush()?;
    Ok(())
}

/// What an event did, in a few words: the step, the environment, the commit, where it went,
/// the weight, or the files it wrote; for a change of settings each setting that changed,
/// before and after; for a cancel, the step and the files it left.
pub fn what(event: &Event) -> String {
    let words = |words: &[Option<String>]| {
        words
            .iter()
            .flatten()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("  ")
    };
    let weight = |w: &Option<u8>| w.map(|w| format!("v2 {w}%"));
    let paths = |files: &[crate::journal::PlannedFile]| {
        files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match event {
        Event::Opened(config) => format!("service {}", config.service),
        Event::StepStarted { files, .. } | Event::FilesWritten { files } => paths(files),
        Event::StepDone(done) => words(&[Some(done.step.clone()), done.env.clone()]),
        Event::DeployConfirmed(confirmed) => confirmed.env.clone(),
        Event::WeightChanged { env, v2_weight }
        | Event::LiveWeightChanged { env, v2_weight, .. } => {
            words(&[Some(env.clone()), weight(&Some(*v2_weight))])
        }
        Event::GateEvaluated { env, v2_weight, .. } => {
            words(&[Some(env.clone()), weight(v2_weight)])
        }
        Event::Aborted { to, .. } | Event::Repinned { to, .. } => format!("to {to}"),
        // Commits are journaled by their full id; people read the short one. Where a commit
        // went reads as one phrase: "pushed 1a2b3c4 to origin/main".
        Event::Committed(committed) => crate::repo::short_id(&committed.commit).to_string(),
        Event::Pushed { commit, to, .. } => {
            format!("{} to {to}", crate::repo::short_id(commit))
        }
        Event::Finished {} => String::new(),
        Event::ContextSet(set) => format!("{}  {}", set.env, setting_changes(event)),
        Event::SettingsChanged(_) => setting_changes(event),
        Event::NotifyFailed {
            to,
            about,
            attempts,
            error,
        } => format!("{about} to {to}: {attempts} attempts, {error}"),
        Event::Cancelled { step, left, .. } => {
            let mut what = step.clone();
            if !left.is_empty() {
                what.push_str(&format!("  files left: {}", left.join(", ")));
            }
            what
        }
    }
}

/// The settings a `context-set` or `settings-changed` event changed, each as `NAME BEFORE ->
/// AFTER`. The context is journaled before and after (also when it did not change); every
/// other setting only when it changed.
pub fn setting_changes(event: &Event) -> String {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "none".to_string(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    fn pair<T: serde::Serialize>(
        name: &'static str,
        from: &Option<T>,
        to: &Option<T>,
    ) -> Option<(&'static str, serde_json::Value, serde_json::Value)> {
        let value = |v| serde_json::to_value(v).expect("settings serialise");
        Some((name, value(from.as_ref()?), value(to.as_ref()?)))
    }
    let (pairs, gate) = match event {
        Event::ContextSet(set) => (
            vec![
                pair("context", &Some(&set.from), &Some(&set.to)),
                pair("Argo CD", &set.argocd_from, &set.argocd_to),
                pair("Prometheus", &set.prometheus_from, &set.prometheus_to),
                pair("hosts", &set.hosts_from, &set.hosts_to),
            ],
            None,
        ),
        Event::SettingsChanged(changed) => (
            vec![
                pair("namespace", &changed.namespace_from, &changed.namespace_to),
                pair("webhooks", &changed.webhooks_from, &changed.webhooks_to),
            ],
            changed.gate.as_ref(),
        ),
        _ => (Vec::new(), None),
    };
    let mut changes = Vec::new();
    for (name, from, to) in pairs.into_iter().flatten() {
        if from != to {
            changes.push(format!("{name} {} -> {}", text(&from), text(&to)));
        }
    }
    for (limit, change) in gate.into_iter().flatten() {
        changes.push(format!(
            "gate {limit} {} -> {}",
            text(&change.from),
            text(&change.to)
        ));
    }
    if changes.is_empty() {
        "nothing changed".into()
    } else {
        changes.join("; ")
    }
}

/// A gate evaluation's outcome and numbers: each check's v1 and v2 values, and which failed.
pub fn gate_numbers(verdict: &Verdict) -> String {
    let checks: Vec<String> = verdict
        .checks
        .iter()
        .map(|c| {
            let value = |v: Option<f64>| crate::gate::verdict::value(v, &c.unit);
            let failed = if c.passed { "" } else { " FAILED" };
            // The evidence against v2 over the release, where the check keeps one.
            let evidence = match (c.e_value, verdict.threshold) {
                (Some(e), Some(needed)) => format!(
                    " e {} of {}",
                    crate::gate::verdict::e_text(e),
                    crate::gate::verdict::number(needed)
                ),
                _ => String::new(),
            };
            format!(
                "{} v1 {} v2 {}{evidence}{failed}",
                c.name,
                value(c.v1),
                value(c.v2)
            )
        })
        .collect();
    let mut out = verdict.outcome.key().to_string();
    if verdict.incident {
        out.push_str(" (incident: v1 fails as much)");
    }
    if !checks.is_empty() {
        out.push_str(&format!(": {}", checks.join("; ")));
    } else if verdict.outcome == crate::gate::Outcome::CannotJudge {
        out.push_str(&format!(": {}", verdict.reason));
    }
    out
}

/// How a deploy was confirmed: verified against the cluster, and by what, or on the operator's
/// word.
pub fn how_confirmed(confirmed: &DeployConfirmed) -> String {
    let answered = match &confirmed.answered {
        Some(how) => format!(" ({how})"),
        None => String::new(),
    };
    match confirmed.verified {
        Some(true) => {
            let mut how = format!(
                "verified on the cluster (context {}): objects",
                confirmed.context.as_deref().unwrap_or("?")
            );
            if let Some(app) = &confirmed.argocd {
                how.push_str(&format!(", Argo CD Application {}", app.application));
                if let Some(revision) = app.text("revision") {
                    how.push_str(&format!(" at {}", crate::repo::short_id(revision)));
                }
                how.push_str(&format!(
                    " {}/{}",
                    app.text("sync").unwrap_or("?"),
                    app.text("health").unwrap_or("?")
                ));
            }
            how
        }
        Some(false) => format!("confirmed by the operator{answered}, not verified (--no-verify)"),
        None => format!("confirmed by the operator{answered}"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{gate_numbers, how_confirmed, setting_changes};
    use crate::journal::{DeployConfirmed, Event};

    /// An event as its kind and detail columns hold it.
    fn event(kind: &str, detail: serde_json::Value) -> Event {
        Event::from_columns(kind, &detail.to_string()).unwrap()
    }

    fn confirmed(detail: serde_json::Value) -> DeployConfirmed {
        match event("deploy-confirmed", detail) {
            Event::DeployConfirmed(confirmed) => confirmed,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_settings_change_says_what_changed_before_and_after() {
        // As journaled before the other settings could change: the context alone.
        assert_eq!(
            setting_changes(&event(
                "context-set",
                json!({"env": "staging", "from": null, "to": "kind-staging"})
            )),
            "context none -> kind-staging"
        );
        assert_eq!(
            setting_changes(&event(
                "context-set",
                json!({"env": "production", "from": "a", "to": "a",
                "prometheus_from": null, "prometheus_to": "http://p:9090",
                "argocd_from": "argocd/x", "argocd_to": null,
                "hosts_from": ["a.example.com"], "hosts_to": ["b.example.com", "c.example.com"]})
            )),
            "Argo CD argocd/x -> none; Prometheus none -> http://p:9090; hosts a.example.com -> \
             b.example.com,c.example.com"
        );
        assert_eq!(
            setting_changes(&event(
                "settings-changed",
                json!({"gate": {"min_requests": {"from": 100, "to": 50}}})
            )),
            "gate min_requests 100 -> 50"
        );
        assert_eq!(
            setting_changes(&event(
                "context-set",
                json!({"env": "staging", "from": "a", "to": "a"})
            )),
            "nothing changed"
        );
    }

    #[test]
    fn a_gate_evaluation_shows_each_checks_numbers_for_both_versions() {
        let verdict = serde_json::from_value(json!({"outcome": "fail", "incident": false,
            "range_secs": 300, "reason": "", "checks": [
            {"name": "success rate", "v1": 99.9, "v2": 99.8999999, "unit": "%", "limit": "",
             "passed": true},
            {"name": "p99 latency vs v1", "v1": 74.99999999999983, "v2": 175.0, "unit": "ms",
             "limit": "", "passed": false},
            {"name": "queue", "v1": null, "v2": 3.0, "unit": "", "limit": "", "passed": true}]}))
        .unwrap();
        assert_eq!(
            gate_numbers(&verdict),
            "fail: success rate v1 99.90% v2 99.90%; p99 latency vs v1 v1 75 ms v2 175 ms \
             FAILED; queue v1 no data v2 3"
        );
        let cannot = serde_json::from_value(json!({"outcome": "cannot-judge", "incident": false,
            "range_secs": 300, "reason": "v2's 5xx count answered NaN (q)", "checks": []}))
        .unwrap();
        assert_eq!(
            gate_numbers(&cannot),
            "cannot-judge: v2's 5xx count answered NaN (q)"
        );
    }

    #[test]
    fn a_deploy_says_whether_the_cluster_or_the_operator_confirmed_it() {
        assert_eq!(
            how_confirmed(&confirmed(
                json!({"env": "staging", "answered": "terminal"})
            )),
            "confirmed by the operator (terminal)"
        );
        assert_eq!(
            how_confirmed(&confirmed(
                json!({"env": "staging", "verified": false, "context": "k", "answered": "--yes"})
            )),
            "confirmed by the operator (--yes), not verified (--no-verify)"
        );
        assert_eq!(
            how_confirmed(&confirmed(
                json!({"env": "staging", "verified": true, "context": "k"})
            )),
            "verified on the cluster (context k): objects"
        );
        assert_eq!(
            how_confirmed(&confirmed(
                json!({"env": "staging", "verified": true, "context": "k",
                "argocd": {"application": "argocd/web", "revision": "1a2b3c4d5e6f708192a3",
                "sync": "Synced", "health": "Healthy"}})
            )),
            "verified on the cluster (context k): objects, Argo CD Application argocd/web at \
             1a2b3c4d5e6f Synced/Healthy"
        );
    }
}
