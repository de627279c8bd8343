//! `canary log`: a release's journal, oldest first.

use std::io::Write;

use super::Globals;

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
    for event in &events {
        let mut what = what(&event.kind, &event.detail);
        if event.kind == "deploy-confirmed" {
            what = format!("{what}  {}", how_confirmed(&event.detail));
        }
        if event.kind == "gate-evaluated" {
            what = format!("{what}  {}", gate_numbers(&event.detail["verdict"]));
        }
        writeln!(
            out,
            "{}  {:<10}  {:<12}  {:<16}  {}",
            event.at, event.operator, event.phase, event.kind, what
        )?;
    }
    out.flush()?;
    Ok(())
}

/// What an event of `kind` did, in a few words: for a change of settings each setting that
/// changed, before and after; for a cancel, the step and the files it left.
pub fn what(kind: &str, detail: &serde_json::Value) -> String {
    match kind {
        "context-set" => {
            let env = detail["env"].as_str().unwrap_or("?");
            format!("{env}  {}", setting_changes(detail))
        }
        "settings-changed" => setting_changes(detail),
        "cancelled" => {
            let mut what = summary(detail);
            let left: Vec<&str> = detail["left"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str())
                .collect();
            if !left.is_empty() {
                what.push_str(&format!("  files left: {}", left.join(", ")));
            }
            what
        }
        _ => summary(detail),
    }
}

/// The settings a `context-set` event changed, each as `NAME BEFORE -> AFTER`. The context is
/// journaled as `from` and `to` (also when it did not change); every other setting as
/// `KEY_from` and `KEY_to`, only when it changed.
pub fn setting_changes(detail: &serde_json::Value) -> String {
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
    let mut changes = Vec::new();
    for (name, from, to) in [
        ("context", "from", "to"),
        ("Argo CD", "argocd_from", "argocd_to"),
        ("Prometheus", "prometheus_from", "prometheus_to"),
        ("hosts", "hosts_from", "hosts_to"),
        ("namespace", "namespace_from", "namespace_to"),
    ] {
        let (Some(from), Some(to)) = (detail.get(from), detail.get(to)) else {
            continue;
        };
        if from != to {
            changes.push(format!("{name} {} -> {}", text(from), text(to)));
        }
    }
    if let Some(gate) = detail.get("gate").and_then(|g| g.as_object()) {
        for (limit, change) in gate {
            changes.push(format!(
                "gate {limit} {} -> {}",
                text(&change["from"]),
                text(&change["to"])
            ));
        }
    }
    if changes.is_empty() {
        "nothing changed".into()
    } else {
        changes.join("; ")
    }
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
    // Commits are journaled by their full id; people read the short one. Where a commit went
    // reads as one phrase: "pushed 1a2b3c4 to origin/main".
    let commit = field("commit").map(|c| crate::repo::short_id(&c).to_string());
    let to = field("to").map(|to| format!("to {to}"));
    let (commit, to) = match (commit, to) {
        (Some(commit), Some(to)) => (Some(format!("{commit} {to}")), None),
        other => other,
    };
    [field("step"), field("env"), commit, to]
        .into_iter()
        .flatten()
        .chain(detail.get("v2_weight").map(|w| format!("v2 {w}%")))
        .collect::<Vec<_>>()
        .join("  ")
}

/// A gate evaluation's outcome and numbers: each check's v1 and v2 values, and which failed.
pub fn gate_numbers(verdict: &serde_json::Value) -> String {
    let checks: Vec<String> = verdict["checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let value = |v: &serde_json::Value| {
                crate::gate::verdict::value(v.as_f64(), c["unit"].as_str().unwrap_or_default())
            };
            let failed = if c["passed"] == false { " FAILED" } else { "" };
            format!(
                "{} v1 {} v2 {}{failed}",
                c["name"].as_str().unwrap_or_default(),
                value(&c["v1"]),
                value(&c["v2"])
            )
        })
        .collect();
    let mut out = verdict["outcome"].as_str().unwrap_or_default().to_string();
    if verdict["incident"] == true {
        out.push_str(" (incident: v1 fails as much)");
    }
    if !checks.is_empty() {
        out.push_str(&format!(": {}", checks.join("; ")));
    }
    out
}

/// How a deploy was confirmed: verified against the cluster, and by what, or on the operator's
/// word.
pub fn how_confirmed(detail: &serde_json::Value) -> String {
    let answered = match detail["answered"].as_str() {
        Some(how) => format!(" ({how})"),
        None => String::new(),
    };
    match detail["verified"].as_bool() {
        Some(true) => {
            let mut how = format!(
                "verified on the cluster (context {}): objects",
                detail["context"].as_str().unwrap_or("?")
            );
            let app = &detail["argocd"];
            if let Some(name) = app["application"].as_str() {
                how.push_str(&format!(", Argo CD Application {name}"));
                if let Some(revision) = app["revision"].as_str() {
                    how.push_str(&format!(" at {}", crate::repo::short_id(revision)));
                }
                how.push_str(&format!(
                    " {}/{}",
                    app["sync"].as_str().unwrap_or("?"),
                    app["health"].as_str().unwrap_or("?")
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

    #[test]
    fn a_settings_change_says_what_changed_before_and_after() {
        // As journaled before the other settings could change: the context alone.
        assert_eq!(
            setting_changes(&json!({"env": "staging", "from": null, "to": "kind-staging"})),
            "context none -> kind-staging"
        );
        assert_eq!(
            setting_changes(&json!({"env": "production", "from": "a", "to": "a",
                "prometheus_from": null, "prometheus_to": "http://p:9090",
                "argocd_from": "argocd/x", "argocd_to": null,
                "hosts_from": ["a.example.com"], "hosts_to": ["b.example.com", "c.example.com"],
                "gate": {"min_requests": {"from": 100, "to": 50}}})),
            "Argo CD argocd/x -> none; Prometheus none -> http://p:9090; hosts a.example.com -> \
             b.example.com,c.example.com; gate min_requests 100 -> 50"
        );
        assert_eq!(
            setting_changes(&json!({"env": "staging", "from": "a", "to": "a"})),
            "nothing changed"
        );
    }

    #[test]
    fn a_gate_evaluation_shows_each_checks_numbers_for_both_versions() {
        let verdict = json!({"outcome": "fail", "incident": false, "checks": [
            {"name": "success rate", "v1": 99.9, "v2": 99.8999999, "unit": "%", "passed": true},
            {"name": "p99 latency vs v1", "v1": 74.99999999999983, "v2": 175.0, "unit": "ms",
             "passed": false},
            {"name": "queue", "v1": null, "v2": 3.0, "unit": "", "passed": true}]});
        assert_eq!(
            gate_numbers(&verdict),
            "fail: success rate v1 99.90% v2 99.90%; p99 latency vs v1 v1 75 ms v2 175 ms \
             FAILED; queue v1 no data v2 3"
        );
    }

    #[test]
    fn a_deploy_says_whether_the_cluster_or_the_operator_confirmed_it() {
        assert_eq!(
            how_confirmed(&json!({"env": "staging", "answered": "terminal"})),
            "confirmed by the operator (terminal)"
        );
        assert_eq!(
            how_confirmed(&json!({"verified": false, "context": "k", "answered": "--yes"})),
            "confirmed by the operator (--yes), not verified (--no-verify)"
        );
        assert_eq!(
            how_confirmed(&json!({"verified": true, "context": "k"})),
            "verified on the cluster (context k): objects"
        );
        assert_eq!(
            how_confirmed(&json!({"verified": true, "context": "k", "argocd": {
                "application": "argocd/web", "revision": "1a2b3c4d5e6f708192a3",
                "sync": "Synced", "health": "Healthy"}})),
            "verified on the cluster (context k): objects, Argo CD Application argocd/web at \
             1a2b3c4d5e6f Synced/Healthy"
        );
    }
}
