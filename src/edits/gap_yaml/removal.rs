//! Removing a deployment (the twin, at the end of a rollout).

use serde_json::Value;

use super::Gap;
use crate::yaml::splice::Plan;
use crate::yaml::{Document, YamlError};

/// Remove `deployments.<dep>` (key line through its last content line).
/// Nothing to do when it is absent.
pub(crate) fn plan_removal(doc: &Document, dep: &str) -> Result<Option<Plan>, YamlError> {
    let gap = Gap::open(doc)?;
    let present = gap
        .value()
        .get("deployments")
        .and_then(Value::as_object)
        .is_some_and(|d| d.contains_key(dep));
    if !present {
        return Ok(None);
    }
    let entries = gap.deployment_entries()?;
    let entry = gap.entry(dep)?;
    if entries.len() == 1 {
        return Err(gap.doc.unsupported(
            entry.key_start,
            format!(
                "deployments.{dep} is the only deployment; removing it would leave deployments empty"
            ),
        ));
    }
    let splice = gap.remove_entry(entry);
    Ok(Some(gap.plan(vec![splice], dep, None)))
}
