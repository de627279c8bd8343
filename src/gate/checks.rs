//! The team's own checks (as Argo Rollouts' AnalysisTemplate or Flagger's MetricTemplate): a
//! YAML file in the GitOps repository, each check a PromQL query with placeholders and a
//! condition on its value, evaluated for v1 and v2 and required of v2.
//!
//! ```yaml
//! checks:
//!   - name: queue wait
//!     query: max(queue_wait_seconds{namespace="$namespace", app="$service", version="$version"})
//!     max: 2
//! ```
//!
//! Placeholders go inside a PromQL string's double quotes; canary fills them in escaped
//! ([`super::promql::escape`]): `$namespace`, `$service` (the release's service),
//! `$workload` (the version's Deployment), `$version` (`v1`, `v2`), and `$range` (the range
//! the gate reads, such as `420s`, for a `[...]`).

use serde_json::Value;

use super::promql::{self, escape};
use super::verdict::Condition;
use crate::error::{Error, bad_input};

/// The longest name a check may have, in characters.
const MAX_NAME_CHARS: usize = 80;

const PLACEHOLDERS: [&str; 5] = ["namespace", "service", "workload", "version", "range"];

#[derive(Debug, Clone, PartialEq)]
pub struct TeamCheck {
    pub name: String,
    pub query: String,
    pub condition: Condition,
}

/// The team's checks as one evaluation reads them.
pub struct Loaded {
    pub checks: Vec<TeamCheck>,
    /// The file's sha256, journaled with the evaluation.
    pub sha256: String,
}

/// Read the checks file `rel` as git holds it at HEAD, the branch canary commits to: a
/// release is judged by checks that went through review, never by an untracked or edited copy
/// in the work tree (nor anything under `.git`, which no commit holds).
pub fn load(repo: &crate::repo::Repo, rel: &str) -> Result<Loaded, Error> {
    let text = repo.text_at("HEAD", rel)?.ok_or_else(|| {
        bad_input(format!(
            "the gate's checks file {rel} is not committed in {}: canary reads the checks as \
             git holds them; commit it",
            repo.root().display()
        ))
    })?;
    let checks = parse(&text).map_err(|why| bad_input(format!("gate checks file {rel}: {why}")))?;
    Ok(Loaded {
        checks,
        sha256: crate::repo::sha256(&text),
    })
}

pub fn parse(text: &str) -> Result<Vec<TeamCheck>, String> {
    let value = crate::yaml::parse(text).map_err(|e| e.to_string())?;
    let items = value
        .get("checks")
        .and_then(Value::as_array)
        .ok_or("it needs a `checks:` list")?;
    let mut checks = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = |key: &str| item.get(key).and_then(Value::as_str);
        let name = field("name")
            .filter(|n| !n.trim().is_empty() && !n.chars().any(char::is_control))
            .ok_or(format!("check {} has no `name:`", i + 1))?;
        // A name is a table's row heading and a line of the journal, not a document.
        let chars = name.chars().count();
        if chars > MAX_NAME_CHARS {
            return Err(format!(
                "check {}'s name is {chars} characters long; give it at most {MAX_NAME_CHARS}",
                i + 1
            ));
        }
        let query = field("query").ok_or(format!("check {name:?} has no `query:`"))?;
        let limit = |key: &str| item.get(key).map(|v| v.as_f64().filter(|f| f.is_finite()));
        let condition = match (limit("max"), limit("min")) {
            (Some(Some(max)), None) => Condition::AtMost(max),
            (None, Some(Some(min))) => Condition::AtLeast(min),
            (Some(None), _) | (_, Some(None)) => {
                return Err(format!("check {name:?}: `max:` or `min:` is not a number"));
            }
            _ => {
                return Err(format!(
                    "check {name:?} needs exactly one of `max:` and `min:`, the limit of v2's value"
                ));
            }
        };
        for placeholder in placeholders(query) {
            if !PLACEHOLDERS.contains(&placeholder) {
                return Err(format!(
                    "check {name:?} names ${placeholder}; the placeholders are ${}",
                    PLACEHOLDERS.join(", $")
                ));
            }
        }
        checks.push(TeamCheck {
            name: name.to_string(),
            query: query.to_string(),
            condition,
        });
    }
    Ok(checks)
}

/// The `$word`s of a query.
fn placeholders(query: &str) -> impl Iterator<Item = &str> {
    query.split('$').skip(1).filter_map(|rest| {
        let end = rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(rest.len());
        (end > 0).then(|| &rest[..end])
    })
}

impl TeamCheck {
    /// The query for one version, its placeholders filled in escaped.
    pub fn query_for(&self, service: &str, version: &promql::Selector, range_secs: u64) -> String {
        let mut out = String::with_capacity(self.query.len());
        let mut rest = self.query.as_str();
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let name = PLACEHOLDERS
                .iter()
                .filter(|p| {
                    after.starts_with(*p)
                        && !after[p.len()..]
                            .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                })
                .copied()
                .next();
            let Some(name) = name else {
                out.push('$');
                rest = after;
                continue;
            };
            out.push_str(&match name {
                "namespace" => escape(&version.namespace),
                "service" => escape(service),
                "workload" => escape(&version.workload),
                "version" => escape(&version.version),
                _ => format!("{range_secs}s"),
            });
            rest = &after[name.len()..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checks_file_reads_into_checks_with_conditions() {
        let checks = parse(
            "checks:\n  - name: queue wait\n    query: max(q{ns=\"$namespace\"}[$range])\n    max: 2\n\
             \x20 - name: hits\n    query: avg(h{v=\"$version\"})\n    min: 0.5\n",
        )
        .unwrap();
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].condition, Condition::AtMost(2.0));
        assert_eq!(checks[1].condition, Condition::AtLeast(0.5));
    }

    #[test]
    fn bad_checks_files_say_what_is_wrong() {
        for (text, says) in [
            ("{}", "`checks:` list"),
            ("checks:\n  - query: x\n    max: 1\n", "no `name:`"),
            ("checks:\n  - name: a\n    max: 1\n", "no `query:`"),
            ("checks:\n  - name: a\n    query: x\n", "exactly one of"),
            (
                "checks:\n  - name: a\n    query: x\n    max: 1\n    min: 0\n",
                "exactly one of",
            ),
            (
                "checks:\n  - name: a\n    query: x\n    max: lots\n",
                "not a number",
            ),
            (
                "checks:\n  - name: a\n    query: x{a=\"$pod\"}\n    max: 1\n",
                "names $pod",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
        }
        let long = format!(
            "checks:\n  - name: {}\n    query: x\n    max: 1\n",
            "n".repeat(70_000)
        );
        assert_eq!(
            parse(&long).unwrap_err(),
            "check 1's name is 70000 characters long; give it at most 80"
        );
        let longest = format!(
            "checks:\n  - name: {}\n    query: x\n    max: 1\n",
            "é".repeat(80)
        );
        assert_eq!(parse(&longest).unwrap()[0].name.chars().count(), 80);
    }

    #[test]
    fn placeholders_are_filled_in_escaped() {
        let check = TeamCheck {
            name: "x".into(),
            query: "sum(m{ns=\"$namespace\",svc=\"$service\",w=\"$workload\",v=\"$version\"}[$range]) $versions $$".into(),
            condition: Condition::AtMost(1.0),
        };
        let hostile = promql::Selector {
            namespace: "relational-data".into(),
            workload: "w\"}".into(),
            version: "v\\2\n".into(),
        };
        assert_eq!(
            check.query_for("my-service", &hostile, 420),
            "sum(m{ns=\"relational-data\",svc=\"my-service\",w=\"w\\\"}\",v=\"v\\\\2\\n\"}[420s]) $versions $$"
        );
    }
}
