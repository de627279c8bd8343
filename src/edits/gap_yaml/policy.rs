//! The twin's `authorizationPolicy`: the service's own, admitting the ingress controller too.

use serde_json::{Map, Value, json};

use super::{Found, Gap};
use crate::yaml::cursor::{is_empty, last};
use crate::yaml::emit::{self, line, quoted, scalar};
use crate::yaml::splice::{Plan, Style, first_dash, leading_comments, lines};
use crate::yaml::{Document, Entry, YamlError};

/// Give `twin` an `authorizationPolicy` (appended as its last key): dep's
/// policy, with rules extended by one admitting the ingress controller.
pub(crate) fn plan_ingress_authorization(
    doc: &Document,
    dep: &str,
    twin: &str,
    ingress_namespace: &str,
    ingress_service_account: &str,
) -> Result<Option<Plan>, YamlError> {
    let gap = Gap::open(doc)?;
    let rule = json!({"from": [{"source": {"principals": [{
        "namespace": ingress_namespace,
        "serviceAccountName": [ingress_service_account],
    }]}}]});
    let (want, add_rule) = wanted_policy(&gap, dep, &rule)?;
    if let Some(existing) = gap.deployment(twin)?.get("authorizationPolicy") {
        if *existing == want {
            return Ok(None);
        }
        return Err(YamlError::Conflict(format!(
            "deployments.{twin}.authorizationPolicy already exists{} and differs from what canary writes",
            gap.at_keys(&["deployments", twin, "authorizationPolicy"])
        )));
    }

    let mut authorized = gap.value()["deployments"][twin].clone();
    authorized["authorizationPolicy"] = want.clone();
    let flow_policy = format!(
        "authorizationPolicy: {}",
        emit::flow(&want, gap.style.quote)
    );
    let splice = match gap.locate_any(twin)? {
        Found::Flow(flow) => gap.add_flow_entries(flow, vec![flow_policy]),
        Found::Block(target) => {
            let rule_text = add_rule.then_some(IngressRule {
                namespace: ingress_namespace,
                service_account: ingress_service_account,
            });
            // web's policy copied and extended where it is block style; where it (or web)
            // is written in flow style, the twin's is one flow mapping too.
            let target_col = gap.col(target.value.start);
            let block = match gap.locate_any(dep)? {
                Found::Block(source) => {
                    match policy_lines(&gap, source, dep, target_col, rule_text) {
                        Ok(lines) => Some(lines),
                        Err(YamlError::Unsupported { .. }) => None,
                        Err(e) => return Err(e),
                    }
                }
                Found::Flow(_) => None,
            };
            let new = block.unwrap_or_else(|| vec![line(target_col, flow_policy)]);
            gap.insert_after(last(target), &new)
        }
    };
    Ok(Some(gap.plan(vec![splice], twin, Some(authorized))))
}

/// What the twin's policy must be, and whether the ingress rule is new.
fn wanted_policy(gap: &Gap, dep: &str, rule: &Value) -> Result<(Value, bool), YamlError> {
    let path = format!("deployments.{dep}.authorizationPolicy");
    let mut policy = match gap.deployment(dep)?.get("authorizationPolicy") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(gap.not_a_mapping(&path)),
    };
    let rules = policy.entry("rules").or_insert(Value::Null);
    if rules.is_null() {
        *rules = Value::Array(Vec::new());
    }
    let Value::Array(list) = rules else {
        return Err(YamlError::Conflict(format!("{path}.rules is not a list")));
    };
    let add = !list.contains(rule);
    if add {
        list.push(rule.clone());
    }
    Ok((Value::Object(policy), add))
}

struct IngressRule<'s> {
    namespace: &'s str,
    service_account: &'s str,
}

impl IngressRule<'_> {
    /// The rule as a sequence item whose `-` is at column `dash`.
    fn lines(&self, dash: usize, style: Style) -> Vec<String> {
        let Style {
            step, seq_offset, ..
        } = style;
        let from = dash + 2;
        let source_dash = from + seq_offset;
        let principals = source_dash + 2 + step;
        let principal_dash = principals + seq_offset;
        let account_dash = principal_dash + 2 + seq_offset;
        vec![
            line(dash, "- from:"),
            line(source_dash, "- source:"),
            line(principals, "principals:"),
            line(
                principal_dash,
                format!("- namespace: {}", scalar(self.namespace, style.quote)),
            ),
            line(principal_dash + 2, "serviceAccountName:"),
            line(account_dash, format!("- {}", quoted(self.service_account))),
        ]
    }
}

/// The twin's `authorizationPolicy` block at child column `col`: dep's
/// policy verbatim (re-indented if the twin's keys sit elsewhere) with the
/// ingress rule appended to its rules.
fn policy_lines(
    gap: &Gap,
    source: &Entry,
    dep: &str,
    col: usize,
    rule: Option<IngressRule>,
) -> Result<Vec<String>, YamlError> {
    let style = gap.style;
    let Some(policy) = source.value.get("authorizationPolicy") else {
        let mut out = vec![
            line(col, "authorizationPolicy:"),
            line(col + style.step, "rules:"),
        ];
        if let Some(rule) = rule {
            out.extend(rule.lines(col + style.step + style.seq_offset, style));
        }
        return Ok(out);
    };
    let path = format!("deployments.{dep}.authorizationPolicy");
    let first = leading_comments(gap.text, policy.key_start);
    let mut out = lines(gap.text, first, last(policy));
    if let Some(rule) = rule {
        let node = gap.child(policy, &path)?;
        if node.is_none() && !is_empty(policy) {
            return Err(gap
                .doc
                .unsupported(policy.key_start, format!("{path} is not a block mapping")));
        }
        match node.and_then(|n| n.get("rules")) {
            Some(rules) => {
                let dash = match gap.child(rules, &format!("{path}.rules"))? {
                    Some(n) => gap.col(first_dash(gap.text, n)),
                    None if is_empty(rules) => gap.col(rules.key_start) + style.seq_offset,
                    None => {
                        return Err(gap.doc.unsupported(
                            rules.key_start,
                            format!("{path}.rules is not a block sequence"),
                        ));
                    }
                };
                let at = lines(gap.text, first, last(rules)).len();
                out.splice(at..at, rule.lines(dash, style));
            }
            None => {
                let key = node.map_or(gap.col(policy.key_start) + style.step, |n| gap.col(n.start));
                out.push(line(key, "rules:"));
                out.extend(rule.lines(key + style.seq_offset, style));
            }
        }
    }
    Ok(reindent(out, gap.col(source.value.start), col))
}

/// Shifts lines copied from a mapping at column `from` to column `to`.
fn reindent(lines: Vec<String>, from: usize, to: usize) -> Vec<String> {
    if from == to {
        return lines;
    }
    lines
        .into_iter()
        .map(|l| {
            if l.trim().is_empty() {
                l
            } else if to > from {
                format!("{:width$}{l}", "", width = to - from)
            } else {
                let spaces = l.len() - l.trim_start_matches(' ').len();
                l[spaces.min(from - to)..].to_string()
            }
        })
        .collect()
}
