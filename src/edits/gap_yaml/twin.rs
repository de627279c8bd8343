//! The v1 twin: a second deployment beside the service's own, and the image it runs.

use serde_json::{Map, Value, json};

use super::labels::{label_items, label_lines};
use super::{Found, Gap};
use crate::yaml::cursor::last;
use crate::yaml::emit::{line, scalar};
use crate::yaml::splice::Plan;
use crate::yaml::{Document, Entry, YamlError};

/// Keys a twin gets from canary rather than by copying them from `dep`.
const OWN_KEYS: [&str; 4] = ["podLabels", "ingress", "image", "authorizationPolicy"];

/// [`ensure_twin_deployment`](super::ensure_twin_deployment), with the image pinned (`(repository, tag)`) or, without one, the
/// twin running whatever image `dep` runs (coexistence): dep's own `image:` is copied then.
pub(crate) fn plan_twin(
    doc: &Document,
    dep: &str,
    twin: &str,
    twin_labels: &[(&str, &str)],
    image: Option<(&str, &str)>,
) -> Result<Option<Plan>, YamlError> {
    let gap = Gap::open(doc)?;
    let own = |key: &str| OWN_KEYS.contains(&key) && (image.is_some() || key != "image");
    let want = twin_value(&gap, dep, twin_labels, image, own)?;
    if let Some(existing) = gap.deployments()?.get(twin) {
        let mut existing = existing.clone();
        if let Some(m) = existing.as_object_mut() {
            m.remove("authorizationPolicy");
        }
        if existing == want {
            return Ok(None);
        }
        return Err(YamlError::Conflict(format!(
            "deployments.{twin} already exists{} and differs from what canary writes",
            gap.at_keys(&["deployments", twin])
        )));
    }

    let deployment = match gap.locate_any(dep)? {
        Found::Block(deployment) => deployment,
        Found::Flow(flow) => {
            // A flow `web` gets a flow twin on one line: canary's keys, then web's others
            // verbatim.
            let entry = gap.entry(dep)?;
            let mut items = Vec::new();
            if let Some(labels) = twin_labels_flow(&gap, flow.get("podLabels"), dep, twin_labels)? {
                items.push(format!("podLabels: {labels}"));
            }
            items.push("ingress: {enabled: false}".into());
            if let Some((repository, tag)) = image {
                items.push(format!(
                    "image: {{repository: {}, tag: {}}}",
                    scalar(repository, gap.style.quote),
                    scalar(tag, gap.style.quote)
                ));
            }
            items.extend(
                flow.entries()
                    .into_iter()
                    .flatten()
                    .filter(|e| !own(&e.key))
                    .map(|e| gap.written(e).to_string()),
            );
            let new = line(
                gap.col(entry.key_start),
                format!(
                    "{}: {{{}}}",
                    scalar(twin, gap.style.quote),
                    items.join(", ")
                ),
            );
            let splice = gap.insert_after(last(entry), &[new]);
            return Ok(Some(gap.plan(vec![splice], twin, Some(want))));
        }
    };
    let child = gap.col(deployment.value.start);
    let step = gap.style.step;
    let mut new = vec![line(
        gap.col(deployment.key_start),
        format!("{}:", scalar(twin, gap.style.quote)),
    )];
    new.extend(twin_labels_lines(&gap, deployment, dep, twin_labels)?);
    new.extend([
        line(child, "ingress:"),
        line(child + step, "enabled: false"),
    ]);
    if let Some((repository, tag)) = image {
        new.extend([
            line(child, "image:"),
            line(
                child + step,
                format!("repository: {}", scalar(repository, gap.style.quote)),
            ),
            line(
                child + step,
                format!("tag: {}", scalar(tag, gap.style.quote)),
            ),
        ]);
    }
    for e in deployment.value.entries().into_iter().flatten() {
        if !own(&e.key) {
            new.extend(gap.copy_entry(e));
        }
    }

    let splice = gap.insert_after(last(deployment), &new);
    Ok(Some(gap.plan(vec![splice], twin, Some(want))))
}

/// Point the twin at another image, editing the two scalars in place.
pub(crate) fn plan_twin_image(
    doc: &Document,
    twin: &str,
    image_repository: &str,
    image_tag: &str,
) -> Result<Option<Plan>, YamlError> {
    let gap = Gap::open(doc)?;
    let path = format!("deployments.{twin}.image");
    let image = gap
        .deployment(twin)?
        .get("image")
        .and_then(Value::as_object)
        .ok_or_else(|| YamlError::Missing(format!("no {path} mapping")))?;
    let wanted = [("repository", image_repository), ("tag", image_tag)];
    if let Some((key, _)) = wanted.iter().find(|(k, _)| !image.contains_key(*k)) {
        return Err(YamlError::Missing(format!("no {path}.{key}")));
    }
    let changes: Vec<_> = wanted
        .into_iter()
        .filter(|(k, v)| image.get(*k).and_then(Value::as_str) != Some(v))
        .collect();
    if changes.is_empty() {
        return Ok(None);
    }

    let deployment = gap.locate(twin)?;
    let entry = deployment.value.get("image").ok_or_else(|| {
        gap.doc.unsupported(
            deployment.key_start,
            format!("{path} is not a plain block key"),
        )
    })?;
    let node = gap.child(entry, &path)?.ok_or_else(|| {
        gap.doc
            .unsupported(entry.key_start, format!("{path} is not a block mapping"))
    })?;
    let mut splices = Vec::new();
    let mut repinned = gap.value()["deployments"][twin].clone();
    for (key, value) in changes {
        let e = node.get(key).ok_or_else(|| {
            gap.doc.unsupported(
                entry.key_start,
                format!("{path}.{key} is not a plain block key"),
            )
        })?;
        splices.push(
            gap.set_scalar(&e.value, &Value::from(value))
                .ok_or_else(|| {
                    gap.doc.unsupported(
                        e.key_start,
                        format!(
                            "{path}.{key} is not a one-line scalar, so canary cannot replace it"
                        ),
                    )
                })?,
        );
        repinned["image"][key] = Value::from(value);
    }
    Ok(Some(gap.plan(splices, twin, Some(repinned))))
}

/// The twin's labels as a flow mapping: dep's other labels verbatim, then the twin's; `None`
/// when there are none at all.
fn twin_labels_flow(
    gap: &Gap,
    source: Option<&Entry>,
    dep: &str,
    twin_labels: &[(&str, &str)],
) -> Result<Option<String>, YamlError> {
    let keys: Vec<&str> = twin_labels.iter().map(|(k, _)| *k).collect();
    let extra = label_items(twin_labels, gap.style.quote);
    Ok(match source {
        Some(entry) => {
            let flow = gap.flow_at(entry, &format!("deployments.{dep}.podLabels"))?;
            Some(gap.rewrite(flow, &keys, &extra))
        }
        None if extra.is_empty() => None,
        None => Some(format!("{{{}}}", extra.join(", "))),
    })
}

/// What the twin means, from dep's parsed value.
fn twin_value(
    gap: &Gap,
    dep: &str,
    twin_labels: &[(&str, &str)],
    image: Option<(&str, &str)>,
    own: impl Fn(&str) -> bool,
) -> Result<Value, YamlError> {
    let source = gap.deployment(dep)?;
    let mut labels = match source.get("podLabels") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(gap.not_a_mapping(&format!("deployments.{dep}.podLabels"))),
    };
    labels.retain(|k, _| !twin_labels.iter().any(|(t, _)| t == k));
    for (k, v) in twin_labels {
        labels.insert((*k).to_string(), Value::from(*v));
    }
    let mut twin = Map::new();
    if !labels.is_empty() {
        twin.insert("podLabels".into(), Value::Object(labels));
    }
    twin.insert("ingress".into(), json!({"enabled": false}));
    if let Some((repository, tag)) = image {
        twin.insert(
            "image".into(),
            json!({"repository": repository, "tag": tag}),
        );
    }
    for (k, v) in source {
        if !own(k) {
            twin.insert(k.clone(), v.clone());
        }
    }
    Ok(Value::Object(twin))
}

/// The twin's `podLabels` lines: dep's other labels verbatim, then the twin's; in flow
/// style when dep writes its labels so. Empty when there are no labels at all.
fn twin_labels_lines(
    gap: &Gap,
    deployment: &Entry,
    dep: &str,
    twin_labels: &[(&str, &str)],
) -> Result<Vec<String>, YamlError> {
    let col = gap.col(deployment.value.start);
    let path = format!("deployments.{dep}.podLabels");
    let source = deployment.value.get("podLabels");
    if let Some(pl) = source.filter(|pl| pl.value.flow) {
        let flow = gap.flow_at(pl, &path)?;
        let keys: Vec<&str> = twin_labels.iter().map(|(k, _)| *k).collect();
        let labels = gap.rewrite(flow, &keys, &label_items(twin_labels, gap.style.quote));
        return Ok(vec![line(col, format!("podLabels: {labels}"))]);
    }
    let mut out = Vec::new();
    let mut label_col = col + gap.style.step;
    if let Some(pl) = source
        && let Some(node) = gap.child(pl, &path)?
    {
        label_col = gap.col(node.start);
        for e in node.entries().into_iter().flatten() {
            if !twin_labels.iter().any(|(k, _)| *k == e.key) {
                out.extend(gap.copy_entry(e));
            }
        }
    }
    out.extend(label_lines(label_col, twin_labels, gap.style.quote));
    if !out.is_empty() {
        out.insert(0, line(col, "podLabels:"));
    }
    Ok(out)
}
