//! The pod labels canary's versions are told apart by: `deployments.<dep>.podLabels`.

use serde_json::Value;

use super::{Found, Gap};
use crate::yaml::emit::{Quote, line, scalar};
use crate::yaml::splice::{Plan, Splice};
use crate::yaml::{Document, Entry, YamlError};

/// Make `deployments.<dep>.podLabels` contain `labels`.
///
/// A missing `podLabels` becomes the deployment's first key; missing labels
/// are appended to an existing one. A label with another value is a conflict.
pub(crate) fn plan_pod_labels(
    doc: &Document,
    dep: &str,
    labels: &[(&str, &str)],
) -> Result<Option<Plan>, YamlError> {
    let gap = Gap::open(doc)?;
    let path = format!("deployments.{dep}.podLabels");
    let existing = match gap.deployment(dep)?.get("podLabels") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err(gap.not_a_mapping(&path)),
    };
    let mut missing: Vec<(&str, &str)> = Vec::new();
    for &(key, value) in labels {
        match existing.and_then(|m| m.get(key)) {
            Some(Value::String(s)) if s == value => {}
            Some(other) => {
                return Err(YamlError::Conflict(format!(
                    "{path}.{key} is {other}{}; canary needs {}",
                    gap.at_keys(&["deployments", dep, "podLabels", key]),
                    Value::from(value)
                )));
            }
            None if !missing.iter().any(|(k, _)| *k == key) => missing.push((key, value)),
            None => {}
        }
    }
    if missing.is_empty() {
        return Ok(None);
    }

    let step = gap.style.step;
    let splice = match gap.locate_any(dep)? {
        Found::Flow(flow) => match flow.get("podLabels") {
            // Inside the flow mapping, as its first key (where a block one is put).
            None => match flow.entries().and_then(<[Entry]>::first) {
                Some(first) => Splice::insert(
                    first.key_start,
                    format!(
                        "podLabels: {{{}}}, ",
                        label_items(&missing, gap.style.quote).join(", ")
                    ),
                ),
                None => gap.add_flow_entries(
                    flow,
                    vec![format!(
                        "podLabels: {{{}}}",
                        label_items(&missing, gap.style.quote).join(", ")
                    )],
                ),
            },
            Some(item) => gap.add_flow_entries(
                gap.flow_at(item, &path)?,
                label_items(&missing, gap.style.quote),
            ),
        },
        Found::Block(deployment) => match deployment.value.get("podLabels") {
            None => {
                let col = gap.col(deployment.value.start);
                let mut new = vec![line(col, "podLabels:")];
                new.extend(label_lines(col + step, &missing, gap.style.quote));
                gap.insert_after(deployment.key_start, &new)
            }
            Some(pl) if pl.value.flow && !pl.value.has_props() => gap.add_flow_entries(
                gap.flow_at(pl, &path)?,
                label_items(&missing, gap.style.quote),
            ),
            Some(pl) => {
                gap.add_entries(pl, &path, |col| label_lines(col, &missing, gap.style.quote))?
            }
        },
    };

    // Only the labels are meant, so that a switch planned on the same reading joins this.
    let plan = missing
        .iter()
        .fold(Plan::new(vec![splice]), |plan, &(key, value)| {
            plan.and_set(
                &["deployments", dep, "podLabels", key],
                Some(Value::from(value)),
            )
        });
    Ok(Some(plan))
}

/// `key: value` items for a flow mapping.
pub(super) fn label_items(labels: &[(&str, &str)], quote: Quote) -> Vec<String> {
    labels
        .iter()
        .map(|(k, v)| format!("{}: {}", scalar(k, quote), scalar(v, quote)))
        .collect()
}

pub(super) fn label_lines(col: usize, labels: &[(&str, &str)], quote: Quote) -> Vec<String> {
    labels
        .iter()
        .map(|(k, v)| line(col, format!("{}: {}", scalar(k, quote), scalar(v, quote))))
        .collect()
}
