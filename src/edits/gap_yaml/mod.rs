//! Edits of gap.yaml, the service's deploy config in the GitOps repo.
//!
//! The canary runs a second deployment (the "twin", e.g. `web-v1`) next to
//! the service's own (`web`); these functions add, adjust and remove it. Each `plan_*` returns
//! the splices of its edit and what they mean, or `None` when the file already says what the
//! edit would make it say; plans made on one reading join, and a step proves them together by
//! one re-read. The public functions plan one edit and prove it at once.

use serde_json::{Map, Value, json};

use crate::yaml::YamlError;
use crate::yaml::emit::{self, Quote, line, quoted, scalar};
use crate::yaml::splice::{
    Plan, Splice, Style, col, entry_end, first_dash, insert_after, leading_comments, lines, prove,
    remove_lines,
};
use crate::yaml::{Document, Entry, Kind, Node, Seg};

/// Keys a twin gets from canary rather than by copying them from `dep`.
const OWN_KEYS: [&str; 4] = ["podLabels", "ingress", "image", "authorizationPolicy"];

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
                let line = gap.line_of(&["deployments", dep, "podLabels", key]);
                return Err(YamlError::Conflict(format!(
                    "{path}.{key} is {other}{}; canary needs {}",
                    at(line),
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
                None => gap.append_in(
                    flow,
                    vec![format!(
                        "podLabels: {{{}}}",
                        label_items(&missing, gap.style.quote).join(", ")
                    )],
                ),
            },
            Some(item) => gap.append_in(
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
            Some(pl) if pl.value.flow && !pl.value.has_props() => gap.append_in(
                gap.flow_at(pl, &path)?,
                label_items(&missing, gap.style.quote),
            ),
            Some(pl) => match gap.child(pl, &path)? {
                Some(node) => gap.insert_after(
                    last(pl),
                    &label_lines(gap.col(node.start), &missing, gap.style.quote),
                ),
                None if is_empty(pl) => gap.insert_after(
                    pl.key_start,
                    &label_lines(gap.col(pl.key_start) + step, &missing, gap.style.quote),
                ),
                None => {
                    return Err(
                        gap.unsupported(pl.key_start, format!("{path} is not a block mapping"))
                    );
                }
            },
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

/// Add the twin deployment right after `dep`: canary's `podLabels`,
/// `ingress` and `image`, then a verbatim copy of dep's other keys.
///
/// An existing twin that already means this (ignoring the
/// `authorizationPolicy` that [`ensure_ingress_authorization`] adds) is
/// left alone; any other existing twin is a conflict.
pub fn ensure_twin_deployment(
    doc: &Document,
    dep: &str,
    twin: &str,
    twin_labels: &[(&str, &str)],
    image_repository: &str,
    image_tag: &str,
) -> Result<Option<Document>, YamlError> {
    ensure_twin(
        doc,
        dep,
        twin,
        twin_labels,
        Some((image_repository, image_tag)),
    )
}

/// [`ensure_twin_deployment`], with the image pinned (`(repository, tag)`) or, without one, the
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
            at(gap.line_of(&["deployments", twin]))
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
            at(gap.line_of(&["deployments", twin, "authorizationPolicy"]))
        )));
    }

    let mut authorized = gap.value()["deployments"][twin].clone();
    authorized["authorizationPolicy"] = want.clone();
    let flow_policy = format!(
        "authorizationPolicy: {}",
        emit::flow(&want, gap.style.quote)
    );
    let splice = match gap.locate_any(twin)? {
        Found::Flow(flow) => gap.append_in(flow, vec![flow_policy]),
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
        gap.unsupported(
            deployment.key_start,
            format!("{path} is not a plain block key"),
        )
    })?;
    let node = gap.child(entry, &path)?.ok_or_else(|| {
        gap.unsupported(entry.key_start, format!("{path} is not a block mapping"))
    })?;
    let mut splices = Vec::new();
    let mut repinned = gap.value()["deployments"][twin].clone();
    for (key, value) in changes {
        let e = node.get(key).ok_or_else(|| {
            gap.unsupported(
                entry.key_start,
                format!("{path}.{key} is not a plain block key"),
            )
        })?;
        if !gap.one_line_scalar(&e.value) {
            return Err(gap.unsupported(
                e.key_start,
                format!("{path}.{key} is not a one-line scalar, so canary cannot replace it"),
            ));
        }
        splices.push(Splice::replace(
            e.value.start,
            e.value.end,
            scalar(value, gap.style.quote),
        ));
        repinned["image"][key] = Value::from(value);
    }
    Ok(Some(gap.plan(splices, twin, Some(repinned))))
}

/// Make `deployments.<dep>.env` set `name` to `value` (a coexistence switch): the value is
/// replaced in place, or a `- name:`/`value:` item is appended to the list, or the list is
/// added to the deployment. A list the deployment only inherits (through a merge key) is
/// written out whole, its items kept, since a key of its own replaces what `<<:` gave. A
/// variable set through `valueFrom` is a conflict.
pub(crate) fn plan_env_value(
    doc: &Document,
    dep: &str,
    name: &str,
    value: &str,
) -> Result<Option<Plan>, YamlError> {
    let gap = Gap::open(doc)?;
    let path = format!("deployments.{dep}.env");
    let at_item = env_item(&gap, dep, name)?;
    if let Some((_, item)) = at_item
        && item.get("value").and_then(Value::as_str) == Some(value)
    {
        return Ok(None);
    }
    let mut want = gap.value()["deployments"][dep].clone();
    let item = json!({"name": name, "value": value});
    match at_item {
        Some((i, _)) => want["env"][i]["value"] = Value::from(value),
        None if want["env"].is_array() => want["env"].as_array_mut().expect("a list").push(item),
        None => want["env"] = json!([item]),
    }
    let found = gap.locate_any(dep)?;
    let own = match found {
        Found::Flow(flow) => flow.get("env"),
        Found::Block(deployment) => deployment.value.get("env"),
    };
    let splice = match (own, at_item) {
        (Some(env), Some((i, _))) if !env.value.has_props() => {
            let entry = env.value.items().and_then(|items| items[i].get("value"));
            let entry = entry.filter(|e| gap.one_line_scalar(&e.value)).ok_or_else(|| {
                gap.unsupported(
                    env.key_start,
                    format!("{path}[{i}].value is not a one-line scalar, so canary cannot replace it"),
                )
            })?;
            Splice::replace(
                entry.value.start,
                entry.value.end,
                scalar(value, gap.style.quote),
            )
        }
        (Some(env), None) if !is_empty(env) => {
            let seq = gap.child(env, &path)?.ok_or_else(|| {
                gap.unsupported(env.key_start, format!("{path} is not a block list"))
            })?;
            let dash = gap.col(first_dash(gap.text, seq));
            gap.insert_after(
                last(env),
                &env_item_lines(dash, name, value, gap.style.quote),
            )
        }
        // `env:` with nothing after it: the item goes under it.
        (Some(empty), None) if matches!(found, Found::Block(_)) => {
            let dash = gap.col(empty.key_start) + gap.style.seq_offset;
            gap.insert_after(
                empty.key_start,
                &env_item_lines(dash, name, value, gap.style.quote),
            )
        }
        (Some(env), _) => {
            return Err(gap.unsupported(
                env.key_start,
                format!("{path} uses an anchor, tag or alias, which canary does not edit"),
            ));
        }
        // No list of its own: the whole list, inherited items first.
        (None, _) => {
            let items = want["env"].as_array().expect("a list, set above");
            match found {
                Found::Flow(flow) => {
                    let items: Vec<String> = items
                        .iter()
                        .map(|item| emit::flow(item, gap.style.quote))
                        .collect();
                    gap.append_in(flow, vec![format!("env: [{}]", items.join(", "))])
                }
                Found::Block(deployment) => {
                    let col = gap.col(deployment.value.start);
                    let dash = col + gap.style.seq_offset;
                    let mut new = vec![line(col, "env:")];
                    for item in items {
                        if item["name"] == name {
                            new.extend(env_item_lines(dash, name, value, gap.style.quote));
                        } else {
                            new.push(line(
                                dash,
                                format!("- {}", emit::flow(item, gap.style.quote)),
                            ));
                        }
                    }
                    gap.insert_after(last(deployment), &new)
                }
            }
        }
    };
    // Only the list is meant, so that the labels planned on the same reading join this.
    let env = Some(want["env"].take());
    Ok(Some(
        Plan::new(vec![splice]).and_set(&["deployments", dep, "env"], env),
    ))
}

/// Make `deployments.<dep>.command` hold `value` where it holds `other` (the switch's other
/// value), or append it; the command must exist, since an argument needs a program.
pub(crate) fn plan_command_arg(
    doc: &Document,
    dep: &str,
    other: &str,
    value: &str,
) -> Result<Option<Plan>, YamlError> {
    let gap = Gap::open(doc)?;
    let path = format!("deployments.{dep}.command");
    let args = command_args(&gap, dep)?;
    if args.iter().any(|a| a == value) {
        return Ok(None);
    }
    let mut want = gap.value()["deployments"][dep].clone();
    let deployment = gap.locate(dep)?;
    let entry = deployment
        .value
        .get("command")
        .expect("command_args found it");
    let seq = gap
        .child(entry, &path)?
        .ok_or_else(|| gap.unsupported(entry.key_start, format!("{path} is not a block list")))?;
    let splice = match args.iter().position(|a| a == other) {
        Some(i) => {
            want["command"][i] = Value::from(value);
            let node = &seq.items().expect("a list, as its value says")[i];
            if !gap.one_line_scalar(node) {
                return Err(gap.unsupported(
                    entry.key_start,
                    format!("{path}[{i}] is not a one-line scalar, so canary cannot replace it"),
                ));
            }
            Splice::replace(node.start, node.end, scalar(value, gap.style.quote))
        }
        None => {
            want["command"]
                .as_array_mut()
                .expect("a list")
                .push(Value::from(value));
            let dash = gap.col(first_dash(gap.text, seq));
            gap.insert_after(
                last(entry),
                &[line(dash, format!("- {}", scalar(value, gap.style.quote)))],
            )
        }
    };
    let command = Some(want["command"].take());
    Ok(Some(
        Plan::new(vec![splice]).and_set(&["deployments", dep, "command"], command),
    ))
}

/// Make `deployments.<dep>.podLabels` contain `labels` (see [`plan_pod_labels`]).
pub fn ensure_pod_labels(
    doc: &Document,
    dep: &str,
    labels: &[(&str, &str)],
) -> Result<Option<Document>, YamlError> {
    proved(doc, plan_pod_labels(doc, dep, labels))
}

/// See [`plan_twin`].
pub fn ensure_twin(
    doc: &Document,
    dep: &str,
    twin: &str,
    twin_labels: &[(&str, &str)],
    image: Option<(&str, &str)>,
) -> Result<Option<Document>, YamlError> {
    proved(doc, plan_twin(doc, dep, twin, twin_labels, image))
}

/// See [`plan_ingress_authorization`].
pub fn ensure_ingress_authorization(
    doc: &Document,
    dep: &str,
    twin: &str,
    ingress_namespace: &str,
    ingress_service_account: &str,
) -> Result<Option<Document>, YamlError> {
    let plan =
        plan_ingress_authorization(doc, dep, twin, ingress_namespace, ingress_service_account);
    proved(doc, plan)
}

/// See [`plan_twin_image`].
pub fn set_twin_image(
    doc: &Document,
    twin: &str,
    image_repository: &str,
    image_tag: &str,
) -> Result<Option<Document>, YamlError> {
    proved(doc, plan_twin_image(doc, twin, image_repository, image_tag))
}

/// See [`plan_removal`].
pub fn remove_deployment(doc: &Document, dep: &str) -> Result<Option<Document>, YamlError> {
    proved(doc, plan_removal(doc, dep))
}

/// An edit planned alone, proved at once.
fn proved(
    doc: &Document,
    plan: Result<Option<Plan>, YamlError>,
) -> Result<Option<Document>, YamlError> {
    plan?.map(|plan| prove(doc, plan)).transpose()
}

/// See [`plan_env_value`].
pub fn set_env_value(
    doc: &Document,
    dep: &str,
    name: &str,
    value: &str,
) -> Result<Option<Document>, YamlError> {
    proved(doc, plan_env_value(doc, dep, name, value))
}

/// See [`plan_command_arg`].
pub fn set_command_arg(
    doc: &Document,
    dep: &str,
    other: &str,
    value: &str,
) -> Result<Option<Document>, YamlError> {
    proved(doc, plan_command_arg(doc, dep, other, value))
}

/// Whether `deployments.<dep>` can carry a coexistence switch as canary writes it: an env var
/// set at most once, by `value:` (a `valueFrom` is the cluster's, not the file's) and, when
/// set, to one of the two values (canary would overwrite a third), or an argument that a
/// command holds at most once, in one of its two values.
pub fn check_switch(
    doc: &Document,
    dep: &str,
    env: Option<&str>,
    values: [&str; 2],
) -> Result<(), YamlError> {
    let gap = Gap::open(doc)?;
    match env {
        Some(name) => match env_item(&gap, dep, name)? {
            Some((i, item)) if !values.iter().any(|v| item["value"] == *v) => {
                let line = gap.doc.line_of(
                    0,
                    &["deployments", dep, "env"]
                        .map(|k| Seg::Key(k.into()))
                        .into_iter()
                        .chain([Seg::Index(i), Seg::Key("value".into())])
                        .collect::<Vec<_>>(),
                );
                Err(YamlError::Conflict(format!(
                    "deployments.{dep}.env{} sets {name} to {}, neither {} nor {}; canary \
                     would overwrite it with {} at deploy-v1: set it to one of the two by \
                     hand first, or name the values it means in --switch",
                    at(line),
                    item["value"],
                    values[0],
                    values[1],
                    values[0]
                )))
            }
            _ => Ok(()),
        },
        None => {
            let args = command_args(&gap, dep)?;
            let count = args.iter().filter(|a| values.contains(&a.as_str())).count();
            if count > 1 {
                return Err(YamlError::Conflict(format!(
                    "deployments.{dep}.command{} holds the switch {count} times ({} or {}); \
                     canary flips exactly one argument, so leave one",
                    at(gap.line_of(&["deployments", dep, "command"])),
                    values[0],
                    values[1]
                )));
            }
            Ok(())
        }
    }
}

/// The index and value of the item of `deployments.<dep>.env` that sets `name`, refusing a
/// variable set twice or through `valueFrom`.
fn env_item<'v>(
    gap: &Gap<'v>,
    dep: &str,
    name: &str,
) -> Result<Option<(usize, &'v Value)>, YamlError> {
    let path = format!("deployments.{dep}.env");
    let items = match gap.deployment(dep)?.get("env") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(YamlError::Conflict(format!(
                "{path}{} is not a list of name/value items",
                at(gap.line_of(&["deployments", dep, "env"]))
            )));
        }
    };
    let mut found = items.iter().enumerate().filter(|(_, i)| i["name"] == name);
    let first = found.next();
    let line = || at(gap.line_of(&["deployments", dep, "env"]));
    if found.next().is_some() {
        return Err(YamlError::Conflict(format!(
            "{path}{} sets {name} more than once; leave one, so that the switch means one value",
            line()
        )));
    }
    if let Some((_, item)) = first
        && (item.get("valueFrom").is_some() || !item.get("value").is_none_or(Value::is_string))
    {
        return Err(YamlError::Conflict(format!(
            "{path}{} sets {name} through valueFrom or as a non-string; canary needs a plain \
             `value:` there to switch v1 and v2, or choose another variable",
            line()
        )));
    }
    Ok(first)
}

/// The strings of `deployments.<dep>.command`.
fn command_args(gap: &Gap, dep: &str) -> Result<Vec<String>, YamlError> {
    let path = format!("deployments.{dep}.command");
    match gap.deployment(dep)?.get("command") {
        Some(Value::Array(args)) => Ok(args
            .iter()
            .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
            .collect()),
        _ => Err(YamlError::Conflict(format!(
            "{path} is not a list, so it has no argument to switch; give web a command or \
             switch with an environment variable (--switch env:NAME=V1,V2)"
        ))),
    }
}

fn env_item_lines(dash: usize, name: &str, value: &str, quote: Quote) -> Vec<String> {
    vec![
        line(dash, format!("- name: {}", scalar(name, quote))),
        line(dash + 2, format!("value: {}", scalar(value, quote))),
    ]
}

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
        return Err(gap.unsupported(
            entry.key_start,
            format!(
                "deployments.{dep} is the only deployment; removing it would leave deployments empty"
            ),
        ));
    }
    let splice = remove_lines(gap.text, entry.key_start, last(entry));
    Ok(Some(gap.plan(vec![splice], dep, None)))
}

/// The parsed value of `deployments.<dep>`, if present.
pub fn deployment_value(doc: &Document, dep: &str) -> Option<Value> {
    doc.value().get("deployments")?.get(dep).cloned()
}

/// The service's name (gap.yaml's top-level `name:`).
pub fn service_name(doc: &Document) -> Result<String, YamlError> {
    doc.value()
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| YamlError::Missing("no top-level name in gap.yaml".into()))
}

/// An anchor definition: its name, and the 1-based line of its `&name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub name: String,
    pub line: usize,
}

/// The anchors defined in `deployments.<dep>`, the deployment's own node included. canary
/// copies web into web-v1 as it is written: an anchor there would be defined twice, and the
/// aliases after web-v1 would then point at web-v1's copy.
pub fn anchors_in_deployment(doc: &Document, dep: &str) -> Vec<Anchor> {
    let deployment = doc
        .root()
        .and_then(|root| root.get("deployments"))
        .and_then(|deployments| deployments.value.get(dep));
    let mut found = Vec::new();
    let mut todo: Vec<&Node> = deployment.map(|e| &e.value).into_iter().collect();
    while let Some(node) = todo.pop() {
        if let Some((name, at)) = &node.anchor {
            found.push(Anchor {
                name: name.clone(),
                line: doc.line_number(*at),
            });
        }
        match &node.kind {
            Kind::Map(entries) => todo.extend(entries.iter().rev().map(|e| &e.value)),
            Kind::Seq(items) => todo.extend(items.iter().rev()),
            Kind::Scalar { .. } | Kind::Alias => {}
        }
    }
    found
}

/// gap.yaml as parsed, with the style its blocks are written in.
struct Gap<'a> {
    doc: &'a Document,
    text: &'a str,
    style: Style,
}

/// A deployment as written: a block mapping, or a flow mapping (`web: {...}`).
enum Found<'a> {
    Block(&'a Entry),
    Flow(&'a Node),
}

impl<'a> Gap<'a> {
    fn open(doc: &'a Document) -> Result<Self, YamlError> {
        if let Some(second) = doc.roots().get(1) {
            return Err(unsupported(
                doc.line_number(second.start),
                "a second YAML document starts here; canary edits single-document files",
            ));
        }
        Ok(Gap {
            doc,
            text: doc.text(),
            style: Style::of(doc),
        })
    }

    fn value(&self) -> &'a Value {
        self.doc.value()
    }

    /// `splices`, meaning this file with `deployments.<name>` set to `value` (removed when
    /// `None`).
    fn plan(&self, splices: Vec<Splice>, name: &str, value: Option<Value>) -> Plan {
        Plan::new(splices).and_set(&["deployments", name], value)
    }

    fn deployments(&self) -> Result<&'a Map<String, Value>, YamlError> {
        self.value()
            .get("deployments")
            .and_then(Value::as_object)
            .ok_or_else(|| YamlError::Missing("no deployments mapping".into()))
    }

    fn deployment(&self, dep: &str) -> Result<&'a Map<String, Value>, YamlError> {
        self.deployments()?
            .get(dep)
            .and_then(Value::as_object)
            .ok_or_else(|| YamlError::Missing(format!("no deployments.{dep} mapping")))
    }

    /// The entries of `deployments`, as written.
    fn deployment_entries(&self) -> Result<&'a [Entry], YamlError> {
        let root = self
            .doc
            .root()
            .ok_or_else(|| YamlError::Missing("no deployments mapping".into()))?;
        let deployments = root
            .get("deployments")
            .filter(|_| !root.flow)
            .ok_or_else(|| {
                self.unsupported(root.start, "`deployments` is not a plain top-level key")
            })?;
        self.child(deployments, "deployments")?
            .and_then(Node::entries)
            .ok_or_else(|| {
                self.unsupported(deployments.key_start, "deployments is not a block mapping")
            })
    }

    /// The entry `deployments.<dep>`, as written.
    fn entry(&self, dep: &str) -> Result<&'a Entry, YamlError> {
        let entries = self.deployment_entries()?;
        entries.iter().find(|e| e.key == dep).ok_or_else(|| {
            let at = entries.first().map_or(0, |e| e.key_start);
            self.unsupported(
                at,
                format!("deployments.{dep} is not a plain block key here"),
            )
        })
    }

    /// `deployments.<dep>` as written, block or flow; call after checking it is a mapping.
    fn locate_any(&self, dep: &str) -> Result<Found<'a>, YamlError> {
        let entry = self.entry(dep)?;
        if entry.value.flow && !entry.value.has_props() {
            return self
                .flow_at(entry, &format!("deployments.{dep}"))
                .map(Found::Flow);
        }
        self.block(entry, dep).map(Found::Block)
    }

    /// `deployments.<dep>` as written; call after checking it is a mapping.
    fn locate(&self, dep: &str) -> Result<&'a Entry, YamlError> {
        self.block(self.entry(dep)?, dep)
    }

    /// The entry of `deployments.<dep>`, which must hold a block mapping.
    fn block(&self, entry: &'a Entry, dep: &str) -> Result<&'a Entry, YamlError> {
        match self.child(entry, &format!("deployments.{dep}"))? {
            Some(node) if node.entries().is_some() => Ok(entry),
            _ => Err(self.unsupported(
                entry.key_start,
                format!("deployments.{dep} is not a block mapping"),
            )),
        }
    }

    /// The block collection an entry holds; `None` for scalars and empty values.
    fn child(&self, e: &'a Entry, path: &str) -> Result<Option<&'a Node>, YamlError> {
        let value = &e.value;
        if value.has_props() {
            return Err(self.unsupported(
                e.key_start,
                format!("{path} uses an anchor, tag or alias, which canary does not edit"),
            ));
        }
        if value.flow {
            return Err(self.unsupported(
                e.key_start,
                format!(
                    "{path} is written in flow style ({{...}} or [...]); canary edits only block-style YAML"
                ),
            ));
        }
        Ok(matches!(value.kind, Kind::Map(_) | Kind::Seq(_)).then_some(value))
    }

    /// The flow mapping an entry holds (the value of `path`).
    fn flow_at(&self, e: &'a Entry, path: &str) -> Result<&'a Node, YamlError> {
        match &e.value {
            node @ Node {
                flow: true,
                kind: Kind::Map(_),
                ..
            } if !node.has_props() => Ok(node),
            _ => Err(self.unsupported(
                e.key_start,
                format!("{path} is not a mapping canary can edit"),
            )),
        }
    }

    /// The splice that appends `items` at the end of a flow mapping, in its own spacing:
    /// `{a: 1}` + `b: 2` → `{a: 1, b: 2}`; `{ }` → `{ b: 2 }`.
    fn append_in(&self, flow: &Node, items: Vec<String>) -> Splice {
        let joined = items.join(", ");
        match flow.entries().and_then(<[Entry]>::last) {
            Some(last) => Splice::insert(entry_end(last), format!(", {joined}")),
            None => {
                let inner = &self.text[flow.start + 1..flow.end - 1];
                if inner.trim().is_empty() && !inner.is_empty() {
                    Splice::insert(flow.start + 1, format!(" {joined}"))
                } else {
                    Splice::insert(flow.start + 1, joined)
                }
            }
        }
    }

    /// The same flow mapping written with its entries' text verbatim, minus the keys in
    /// `drop`, plus `extra` at the end: how a twin's flow mapping is made from its source's.
    fn rewrite(&self, flow: &Node, drop: &[&str], extra: &[String]) -> String {
        let items: Vec<String> = flow
            .entries()
            .into_iter()
            .flatten()
            .filter(|e| !drop.contains(&e.key.as_str()))
            .map(|e| self.written(e).to_string())
            .chain(extra.iter().cloned())
            .collect();
        format!("{{{}}}", items.join(", "))
    }

    /// An entry of a flow mapping as written, `key: value`.
    fn written(&self, e: &Entry) -> &'a str {
        &self.text[e.key_start..entry_end(e)]
    }

    fn one_line_scalar(&self, node: &Node) -> bool {
        matches!(
            node.kind,
            Kind::Scalar {
                block: false,
                empty: false
            }
        ) && !node.has_props()
            && !self.text[node.start..node.end].contains('\n')
    }

    fn col(&self, at: usize) -> usize {
        col(self.text, at)
    }

    fn insert_after(&self, at: usize, new: &[String]) -> Splice {
        insert_after(self.text, at, self.style.eol, new)
    }

    /// An entry's lines (with the comments directly above it), verbatim.
    fn copy_entry(&self, e: &Entry) -> Vec<String> {
        lines(self.text, leading_comments(self.text, e.key_start), last(e))
    }

    fn unsupported(&self, at: usize, message: impl Into<String>) -> YamlError {
        unsupported(self.doc.line_number(at), message)
    }

    /// 1-based line of a key path, for messages; the deepest key that is written, `None`
    /// when not even the first is.
    fn line_of(&self, keys: &[&str]) -> Option<usize> {
        let mut node = self.doc.root()?;
        let mut line = None;
        for key in keys {
            let Some(e) = node.get(key) else { break };
            line = Some(self.doc.line_number(e.key_start));
            node = &e.value;
        }
        line
    }

    fn not_a_mapping(&self, path: &str) -> YamlError {
        let keys: Vec<&str> = path.split('.').collect();
        YamlError::Conflict(format!(
            "{path} is not a mapping{}",
            at(self.line_of(&keys))
        ))
    }
}

fn unsupported(line: usize, message: impl Into<String>) -> YamlError {
    YamlError::Unsupported {
        line,
        message: message.into(),
    }
}

/// A byte on an entry's last line.
fn last(e: &Entry) -> usize {
    entry_end(e).saturating_sub(1).max(e.key_start)
}

fn is_empty(e: &Entry) -> bool {
    matches!(e.value.kind, Kind::Scalar { empty: true, .. }) && !e.value.has_props()
}

/// " (line N)" when the line is known.
fn at(line: Option<usize>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

/// `key: value` items for a flow mapping.
fn label_items(labels: &[(&str, &str)], quote: Quote) -> Vec<String> {
    labels
        .iter()
        .map(|(k, v)| format!("{}: {}", scalar(k, quote), scalar(v, quote)))
        .collect()
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

fn label_lines(col: usize, labels: &[(&str, &str)], quote: Quote) -> Vec<String> {
    labels
        .iter()
        .map(|(k, v)| line(col, format!("{}: {}", scalar(k, quote), scalar(v, quote))))
        .collect()
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
            return Err(gap.unsupported(policy.key_start, format!("{path} is not a block mapping")));
        }
        match node.and_then(|n| n.get("rules")) {
            Some(rules) => {
                let dash = match gap.child(rules, &format!("{path}.rules"))? {
                    Some(n) => gap.col(first_dash(gap.text, n)),
                    None if is_empty(rules) => gap.col(rules.key_start) + style.seq_offset,
                    None => {
                        return Err(gap.unsupported(
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

#[cfg(test)]
mod tests {
    use super::*;

    // The edits on text, as the tests below were written: read, edit, give the text back.
    fn on_text(
        text: &str,
        edit: impl FnOnce(&Document) -> Result<Option<Document>, YamlError>,
    ) -> Result<String, YamlError> {
        let doc = Document::parse_one(text)?;
        Ok(edit(&doc)?.map_or_else(|| text.to_string(), Document::into_text))
    }

    fn set_twin_image(
        text: &str,
        twin: &str,
        repository: &str,
        tag: &str,
    ) -> Result<String, YamlError> {
        on_text(text, |d| super::set_twin_image(d, twin, repository, tag))
    }

    fn remove_deployment(text: &str, dep: &str) -> Result<String, YamlError> {
        on_text(text, |d| super::remove_deployment(d, dep))
    }

    fn deployment_value(text: &str, dep: &str) -> Result<Option<Value>, YamlError> {
        Ok(super::deployment_value(&Document::parse_one(text)?, dep))
    }

    fn service_name(text: &str) -> Result<String, YamlError> {
        super::service_name(&Document::parse_one(text)?)
    }

    fn set_env(text: &str, value: &str) -> Result<String, YamlError> {
        on_text(text, |d| super::set_env_value(d, "web", "IMPL", value))
    }

    fn set_arg(text: &str, other: &str, value: &str) -> Result<String, YamlError> {
        on_text(text, |d| super::set_command_arg(d, "web", other, value))
    }

    #[test]
    fn an_env_switch_is_added_replaced_in_place_or_left_as_it_is() {
        let added = set_env("deployments:\n  web:\n    command: [a] # run\n", "v1").unwrap();
        assert_eq!(
            added,
            "deployments:\n  web:\n    command: [a] # run\n    env:\n      - name: IMPL\n        value: v1\n"
        );
        let appended = set_env(
            "deployments:\n  web:\n    env:\n    - name: A\n      value: x # keep\n",
            "v1",
        )
        .unwrap();
        assert_eq!(
            appended,
            "deployments:\n  web:\n    env:\n    - name: A\n      value: x # keep\n    - name: IMPL\n      value: v1\n"
        );
        let flipped = set_env(&appended, "v2").unwrap();
        assert_eq!(flipped, appended.replace("value: v1", "value: v2"));
        assert_eq!(set_env(&flipped, "v2").unwrap(), flipped);
    }

    #[test]
    fn an_env_switch_in_flow_style_or_under_a_merge_key_keeps_every_other_variable() {
        let flow = "deployments:\n  web: {command: [a], env: [{name: IMPL, value: v1}]}\n";
        assert_eq!(set_env(flow, "v2").unwrap(), flow.replace("v1", "v2"));
        assert_eq!(
            set_env("deployments:\n  web: {command: [a]}\n", "v1").unwrap(),
            "deployments:\n  web: {command: [a], env: [{name: IMPL, value: v1}]}\n"
        );
        // A list of its own replaces the one `<<:` gave: it is written out whole.
        let merged = "x: &d\n  env:\n    - {name: A, value: x}\ndeployments:\n  web:\n    <<: *d\n    command: [a]\n";
        let written = set_env(merged, "v1").unwrap();
        let read = Document::parse_one(written.as_str()).unwrap();
        assert_eq!(
            read.value()["deployments"]["web"]["env"],
            json!([{"name": "A", "value": "x"}, {"name": "IMPL", "value": "v1"}]),
            "{written}"
        );
        assert!(written.starts_with(merged), "{written}");
        // Inherited with the switch in it: the list of its own holds the new value.
        let inherited = merged.replace("{name: A, value: x}", "{name: IMPL, value: v1}");
        let flipped = set_env(&inherited, "v2").unwrap();
        let read = Document::parse_one(flipped.as_str()).unwrap();
        assert_eq!(
            read.value()["deployments"]["web"]["env"],
            json!([{"name": "IMPL", "value": "v2"}]),
            "{flipped}"
        );
        assert_eq!(read.value()["x"]["env"][0]["value"], "v1", "{flipped}");
    }

    #[test]
    fn an_env_switch_set_through_value_from_is_a_conflict() {
        let err = set_env(
            "deployments:\n  web:\n    env:\n      - name: IMPL\n        valueFrom: {configMapKeyRef: {name: c, key: k}}\n",
            "v1",
        )
        .unwrap_err();
        assert!(err.to_string().contains("valueFrom"), "{err}");
    }

    #[test]
    fn an_argument_switch_replaces_the_other_value_or_is_appended() {
        let text =
            "deployments:\n  web:\n    command:\n      - start # the program\n      - --impl=v1\n";
        let flipped = set_arg(text, "--impl=v1", "--impl=v2").unwrap();
        // A plain scalar that starts with `-` is quoted, as canary writes every such value.
        assert_eq!(flipped, text.replace("--impl=v1", "\"--impl=v2\""));
        assert_eq!(
            set_arg(&flipped, "--impl=v1", "--impl=v2").unwrap(),
            flipped
        );
        let appended = set_arg(
            "deployments:\n  web:\n    command:\n      - start\n",
            "--impl=v2",
            "--impl=v1",
        )
        .unwrap();
        assert_eq!(
            appended,
            "deployments:\n  web:\n    command:\n      - start\n      - \"--impl=v1\"\n"
        );
        assert!(set_arg("deployments:\n  web:\n    ingress: {}\n", "a", "b").is_err());
    }

    const LABELS: [(&str, &str); 2] = [("version", "v2"), ("canary", "enabled")];
    const TWIN_LABELS: [(&str, &str); 2] = [("version", "v1"), ("canary", "enabled")];
    const REPO: &str = "sap-ems-base-infra-package-p/gap-images/my-service";
    const TAG: &str = "sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f";

    const SEED: &str = "\
# gap/gap.yaml
name: my-service
deployments:
  web:
    ingress:
      enabled: true
    command:
      - /opt/docker/bin/start
";

    const SEED_LABELLED: &str = "\
# gap/gap.yaml
name: my-service
deployments:
  web:
    podLabels:
      version: v2
      canary: enabled
    ingress:
      enabled: true
    command:
      - /opt/docker/bin/start
";

    const SEED_TWIN: &str = "\
# gap/gap.yaml
name: my-service
deployments:
  web:
    podLabels:
      version: v2
      canary: enabled
    ingress:
      enabled: true
    command:
      - /opt/docker/bin/start
  web-v1:
    podLabels:
      version: v1
      canary: enabled
    ingress:
      enabled: false
    image:
      repository: sap-ems-base-infra-package-p/gap-images/my-service
      tag: sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f
    command:
      - /opt/docker/bin/start
";

    const SEED_POLICY: &str = "    authorizationPolicy:
      rules:
        - from:
            - source:
                principals:
                  - namespace: ingress-nginx
                    serviceAccountName:
                      - \"ingress-nginx\"
";

    fn labels(text: &str) -> Result<String, YamlError> {
        on_text(text, |d| ensure_pod_labels(d, "web", &LABELS))
    }

    fn twin(text: &str) -> Result<String, YamlError> {
        on_text(text, |d| {
            ensure_twin_deployment(d, "web", "web-v1", &TWIN_LABELS, REPO, TAG)
        })
    }

    fn policy(text: &str) -> Result<String, YamlError> {
        on_text(text, |d| {
            ensure_ingress_authorization(d, "web", "web-v1", "ingress-nginx", "ingress-nginx")
        })
    }

    /// Runs an edit twice: the second run must not change anything.
    fn idempotent(edit: fn(&str) -> Result<String, YamlError>, text: &str) -> String {
        let once = edit(text).unwrap();
        assert_eq!(edit(&once).unwrap(), once, "second run changed the text");
        once
    }

    /// twin + policy, then removing the twin gives back the input exactly.
    fn assert_round_trip(text: &str) {
        let with_twin = policy(&twin(text).unwrap()).unwrap();
        assert_ne!(with_twin, text);
        assert_eq!(remove_deployment(&with_twin, "web-v1").unwrap(), text);
    }

    /// Plans made on one reading of `text`, proved together by one re-read.
    fn planned_together(
        text: &str,
        plans: impl FnOnce(&Document) -> Result<Vec<Option<Plan>>, YamlError>,
    ) -> Result<String, YamlError> {
        let doc = Document::parse_one(text)?;
        let plan = plans(&doc)?.into_iter().flatten().reduce(Plan::join);
        Ok(proved(&doc, Ok(plan))?.map_or_else(|| text.to_string(), Document::into_text))
    }

    #[test]
    fn labels_and_twin_planned_on_one_reading_write_what_they_write_one_after_the_other() {
        let both = |text: &str| {
            planned_together(text, |doc| {
                let labels = plan_pod_labels(doc, "web", &LABELS)?;
                let twin = plan_twin(doc, "web", "web-v1", &TWIN_LABELS, Some((REPO, TAG)))?;
                Ok(vec![labels, twin])
            })
        };
        assert_eq!(both(SEED).unwrap(), SEED_TWIN);
        // Labels appended to the deployment's last key, where the twin goes too.
        let last = "deployments:\n  web:\n    replicas: 1\n    podLabels:\n      app: x\n";
        assert_eq!(both(last).unwrap(), twin(&labels(last).unwrap()).unwrap());
        let flow = "deployments:\n  web: {replicas: 1}\n";
        assert_eq!(both(flow).unwrap(), twin(&labels(flow).unwrap()).unwrap());
    }

    #[test]
    fn a_switch_and_labels_of_one_deployment_join() {
        let text = "deployments:\n  web:\n    command: [a]\n    env:\n      - name: IMPL\n        value: v2\n";
        let out = planned_together(text, |doc| {
            let labels = plan_pod_labels(doc, "web", &LABELS)?;
            let switch = plan_env_value(doc, "web", "IMPL", "v1")?;
            Ok(vec![labels, switch])
        })
        .unwrap();
        assert_eq!(out, set_env(&labels(text).unwrap(), "v1").unwrap());
    }

    #[test]
    fn a_joined_plan_that_misses_its_meaning_is_refused() {
        let doc = Document::parse_one(SEED).unwrap();
        let labels = plan_pod_labels(&doc, "web", &LABELS).unwrap().unwrap();
        // The labels' splices, said to mean a label they do not write.
        let wrong = labels.and_set(
            &["deployments", "web", "podLabels", "extra"],
            Some("x".into()),
        );
        let err = prove(&doc, wrong).unwrap_err().to_string();
        assert!(err.contains("deployments.web.podLabels.extra"), "{err}");
    }

    #[test]
    fn seed_gets_labels_twin_and_policy() {
        assert_eq!(idempotent(labels, SEED), SEED_LABELLED);
        assert_eq!(idempotent(twin, SEED_LABELLED), SEED_TWIN);
        assert_eq!(
            idempotent(policy, SEED_TWIN),
            format!("{SEED_TWIN}{SEED_POLICY}")
        );
        assert_round_trip(SEED_LABELLED);
        assert_round_trip(SEED);
    }

    #[test]
    fn twin_check_ignores_the_policy_it_does_not_write() {
        let full = policy(&twin(SEED_LABELLED).unwrap()).unwrap();
        assert_eq!(twin(&full).unwrap(), full);
    }

    #[test]
    fn crlf_is_kept() {
        let crlf = |s: &str| s.replace('\n', "\r\n");
        assert_eq!(labels(&crlf(SEED)).unwrap(), crlf(SEED_LABELLED));
        assert_eq!(idempotent(twin, &crlf(SEED_LABELLED)), crlf(SEED_TWIN));
        let full = idempotent(policy, &crlf(SEED_TWIN));
        assert_eq!(full, crlf(&format!("{SEED_TWIN}{SEED_POLICY}")));
        assert_round_trip(&crlf(SEED_LABELLED));
    }

    #[test]
    fn file_without_final_newline() {
        let text = SEED_LABELLED.trim_end();
        let with_twin = twin(text).unwrap();
        assert_eq!(with_twin, SEED_TWIN.trim_end());
        assert_round_trip(text);
    }

    const FOUR: &str = "\
name: svc
deployments:
    web:
        ingress:
            enabled: true
        command:
            - start
    worker:
        replicas: 1
";

    #[test]
    fn four_space_indentation() {
        let labelled = idempotent(labels, FOUR);
        assert_eq!(
            labelled,
            "\
name: svc
deployments:
    web:
        podLabels:
            version: v2
            canary: enabled
        ingress:
            enabled: true
        command:
            - start
    worker:
        replicas: 1
"
        );
        let full = idempotent(policy, &idempotent(twin, &labelled));
        assert_eq!(
            full,
            "\
name: svc
deployments:
    web:
        podLabels:
            version: v2
            canary: enabled
        ingress:
            enabled: true
        command:
            - start
    web-v1:
        podLabels:
            version: v1
            canary: enabled
        ingress:
            enabled: false
        image:
            repository: sap-ems-base-infra-package-p/gap-images/my-service
            tag: sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f
        command:
            - start
        authorizationPolicy:
            rules:
                - from:
                      - source:
                            principals:
                                - namespace: ingress-nginx
                                  serviceAccountName:
                                      - \"ingress-nginx\"
    worker:
        replicas: 1
"
        );
        assert_round_trip(&labelled);
        assert_round_trip(&labelled.replace('\n', "\r\n"));
    }

    const INDENTLESS: &str = "\
name: svc
deployments:
  web:
    command:
    - start
    env:
    - name: A
      value: b
";

    #[test]
    fn indentless_sequences() {
        let full = idempotent(policy, &idempotent(twin, &idempotent(labels, INDENTLESS)));
        assert_eq!(
            full,
            "\
name: svc
deployments:
  web:
    podLabels:
      version: v2
      canary: enabled
    command:
    - start
    env:
    - name: A
      value: b
  web-v1:
    podLabels:
      version: v1
      canary: enabled
    ingress:
      enabled: false
    image:
      repository: sap-ems-base-infra-package-p/gap-images/my-service
      tag: sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f
    command:
    - start
    env:
    - name: A
      value: b
    authorizationPolicy:
      rules:
      - from:
        - source:
            principals:
            - namespace: ingress-nginx
              serviceAccountName:
              - \"ingress-nginx\"
"
        );
        assert_round_trip(INDENTLESS);
    }

    const RICH: &str = "\
# gap/gap.yaml -- edited by hand
---
# the service
name: my-service   # service name
deployments:
  # the web frontend
  web:
    podLabels:
      team: x  # owning team
    ingress:
      enabled: true
    image:
      repository: old/repo
      tag: \"1.0\"
    # how to start
    command:
      - /opt/docker/bin/start
    env:
      - name: MODE
        value: \"web\"   # quoted
      # - name: DEBUG
    resources:
      limits:
        memory: 512Mi

    replicas: 2
    authorizationPolicy:
      rules:
        - from:
            - source:
                principals:
                  - namespace: other
                    serviceAccountName:
                      - \"caller\"
  # background jobs
  worker:
    command:
      - worker
  cron:
    schedule: \"*/5 * * * *\"
# end of file
";

    const RICH_TWIN: &str = "  web-v1:
    podLabels:
      team: x  # owning team
      version: v1
      canary: enabled
    ingress:
      enabled: false
    image:
      repository: sap-ems-base-infra-package-p/gap-images/my-service
      tag: sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f
    # how to start
    command:
      - /opt/docker/bin/start
    env:
      - name: MODE
        value: \"web\"   # quoted
    resources:
      limits:
        memory: 512Mi
    replicas: 2
";

    const RICH_POLICY: &str = "    authorizationPolicy:
      rules:
        - from:
            - source:
                principals:
                  - namespace: other
                    serviceAccountName:
                      - \"caller\"
        - from:
            - source:
                principals:
                  - namespace: ingress-nginx
                    serviceAccountName:
                      - \"ingress-nginx\"
";

    #[test]
    fn rich_file_keeps_comments_and_other_deployments() {
        let labelled = idempotent(labels, RICH);
        let expected_labels = RICH.replace(
            "      team: x  # owning team\n",
            "      team: x  # owning team\n      version: v2\n      canary: enabled\n",
        );
        assert_eq!(labelled, expected_labels);

        let with_twin = idempotent(twin, &labelled);
        let (head, tail) = labelled.split_once("  # background jobs\n").unwrap();
        assert_eq!(
            with_twin,
            format!("{head}{RICH_TWIN}  # background jobs\n{tail}")
        );

        let full = idempotent(policy, &with_twin);
        assert_eq!(
            full,
            format!("{head}{RICH_TWIN}{RICH_POLICY}  # background jobs\n{tail}")
        );
        assert_round_trip(&labelled);
        assert_round_trip(RICH);
    }

    #[test]
    fn policy_is_reindented_for_a_twin_at_another_column() {
        let text = "\
deployments:
  web:
    authorizationPolicy:
      action: ALLOW
      rules:
        - to: [{operation: {methods: [GET]}}]
  web-v1:
      replicas: 1
";
        let out = idempotent(policy, text);
        assert_eq!(
            out,
            "\
deployments:
  web:
    authorizationPolicy:
      action: ALLOW
      rules:
        - to: [{operation: {methods: [GET]}}]
  web-v1:
      replicas: 1
      authorizationPolicy:
        action: ALLOW
        rules:
          - to: [{operation: {methods: [GET]}}]
          - from:
              - source:
                  principals:
                    - namespace: ingress-nginx
                      serviceAccountName:
                        - \"ingress-nginx\"
"
        );
    }

    #[test]
    fn existing_ingress_rule_is_not_repeated() {
        // web already admits the ingress controller: the twin gets the same policy.
        let text = format!("{SEED}{SEED_POLICY}  web-v1:\n    replicas: 1\n");
        assert_eq!(idempotent(policy, &text), format!("{text}{SEED_POLICY}"));
    }

    #[test]
    fn block_scalars_are_copied_verbatim() {
        let text = "\
deployments:
  web:
    config: |
      # not a comment

      key: value
    replicas: 1
  cron:
    replicas: 0
";
        let out = idempotent(twin, text);
        let copy = "    config: |\n      # not a comment\n\n      key: value\n    replicas: 1\n";
        assert!(
            out.contains(&format!("      tag: {TAG}\n{copy}  cron:\n")),
            "{out}"
        );
        assert_eq!(remove_deployment(&out, "web-v1").unwrap(), text);
    }

    #[test]
    fn twin_without_any_labels() {
        let out = on_text(SEED, |d| {
            ensure_twin_deployment(d, "web", "web-v1", &[], REPO, TAG)
        })
        .unwrap();
        let tail = format!(
            "  web-v1:\n    ingress:\n      enabled: false\n    image:\n      repository: {REPO}\n      tag: {TAG}\n    command:\n      - /opt/docker/bin/start\n"
        );
        assert_eq!(out, format!("{SEED}{tail}"));
    }

    #[test]
    fn labels_merge_into_existing_pod_labels() {
        let text = "deployments:\n  web:\n    podLabels:\n      version: v2\n    replicas: 1\n";
        assert_eq!(
            idempotent(labels, text),
            "deployments:\n  web:\n    podLabels:\n      version: v2\n      canary: enabled\n    replicas: 1\n"
        );
        let empty = "deployments:\n  web:\n    podLabels:\n    replicas: 1\n";
        assert_eq!(
            idempotent(labels, empty),
            "deployments:\n  web:\n    podLabels:\n      version: v2\n      canary: enabled\n    replicas: 1\n"
        );
    }

    #[test]
    fn set_twin_image_keeps_line_comments() {
        let text = SEED_TWIN
            .replace("      tag: sha256:be6b", "      tag: \"sha256:be6b")
            .replace("7f65f\n    command", "7f65f\" # pinned\n    command");
        let out = set_twin_image(&text, "web-v1", "other/repo", "1.2.3").unwrap();
        assert_eq!(
            out,
            text.replace(REPO, "other/repo")
                .replace(&format!("\"{TAG}\" # pinned"), "\"1.2.3\" # pinned")
        );
        assert_eq!(
            set_twin_image(&out, "web-v1", "other/repo", "1.2.3").unwrap(),
            out
        );
        // Unchanged values keep their quoting.
        assert_eq!(set_twin_image(&text, "web-v1", REPO, TAG).unwrap(), text);
        let err = set_twin_image(SEED, "web-v1", "r", "t").unwrap_err();
        assert!(
            matches!(err, YamlError::Missing(ref m) if m == "no deployments.web-v1 mapping"),
            "{err}"
        );
    }

    #[test]
    fn remove_deployment_removes_comments_inside_and_is_idempotent() {
        let out = remove_deployment(RICH, "web").unwrap();
        let (head, rest) = RICH.split_once("  web:\n").unwrap();
        let (_, tail) = rest.split_once("  # background jobs\n").unwrap();
        assert_eq!(out, format!("{head}  # background jobs\n{tail}"));
        assert_eq!(remove_deployment(&out, "web").unwrap(), out);
        assert_eq!(remove_deployment(SEED, "web-v1").unwrap(), SEED);
        let err = remove_deployment(SEED, "web").unwrap_err();
        assert!(
            matches!(err, YamlError::Unsupported { line: 4, .. }),
            "{err}"
        );
    }

    #[test]
    fn readers() {
        assert_eq!(service_name(RICH).unwrap(), "my-service");
        assert_eq!(
            deployment_value(RICH, "worker").unwrap(),
            Some(json!({"command": ["worker"]}))
        );
        assert_eq!(deployment_value(RICH, "nope").unwrap(), None);
        assert!(matches!(service_name("a: 1\n"), Err(YamlError::Missing(_))));
    }

    #[test]
    fn missing_deployment() {
        let text = "name: x\ndeployments:\n  worker:\n    replicas: 1\n";
        for err in [
            labels(text).unwrap_err(),
            twin(text).unwrap_err(),
            policy(text).unwrap_err(),
        ] {
            assert_eq!(err.to_string(), "no deployments.web mapping");
            assert!(matches!(err, YamlError::Missing(_)));
        }
        let err = labels("name: x\n").unwrap_err();
        assert_eq!(err.to_string(), "no deployments mapping");
    }

    #[test]
    fn conflicting_label() {
        let text = "name: x\ndeployments:\n  web:\n    podLabels:\n      version: v3\n";
        let err = labels(text).unwrap_err();
        assert!(matches!(err, YamlError::Conflict(_)));
        assert_eq!(
            err.to_string(),
            "deployments.web.podLabels.version is \"v3\" (line 5); canary needs \"v2\""
        );
        let flow = "name: x\ndeployments:\n  web:\n    podLabels: {version: v3}\n";
        assert_eq!(
            labels(flow).unwrap_err().to_string(),
            "deployments.web.podLabels.version is \"v3\" (line 4); canary needs \"v2\""
        );
        let flow_ok = "name: x\ndeployments:\n  web: {podLabels: {version: v2, canary: enabled}}\n";
        assert_eq!(labels(flow_ok).unwrap(), flow_ok);
    }

    #[test]
    fn different_existing_twin() {
        let text = SEED_TWIN
            .replace("replicas", "x")
            .replace("enabled: false", "enabled: true");
        let err = twin(&text).unwrap_err();
        assert!(matches!(err, YamlError::Conflict(_)));
        assert_eq!(
            err.to_string(),
            "deployments.web-v1 already exists (line 12) and differs from what canary writes"
        );
        let other_policy = format!(
            "{SEED_TWIN}{}",
            SEED_POLICY.replace("ingress-nginx\"", "someone\"")
        );
        let err = policy(&other_policy).unwrap_err();
        assert_eq!(
            err.to_string(),
            "deployments.web-v1.authorizationPolicy already exists (line 23) and differs from what canary writes"
        );
    }

    #[test]
    fn flow_style_is_edited_inside_the_flow() {
        let text = "name: x\ndeployments:\n  web: {ingress: {enabled: true}, command: [a, \"b\"]}\n  worker:\n    replicas: 1\n";
        let labelled = idempotent(labels, text);
        assert_eq!(
            labelled,
            text.replace(
                "web: {",
                "web: {podLabels: {version: v2, canary: enabled}, "
            )
        );
        let full = idempotent(policy, &idempotent(twin, &labelled));
        let twin_line = format!(
            "  web-v1: {{podLabels: {{version: v1, canary: enabled}}, ingress: {{enabled: false}}, image: {{repository: {REPO}, tag: {TAG}}}, command: [a, \"b\"], authorizationPolicy: {{rules: [{{from: [{{source: {{principals: [{{namespace: ingress-nginx, serviceAccountName: [ingress-nginx]}}]}}}}]}}]}}}}\n"
        );
        assert_eq!(
            full,
            labelled.replace("  worker:", &format!("{twin_line}  worker:"))
        );
        assert_eq!(remove_deployment(&full, "web-v1").unwrap(), labelled);
    }

    #[test]
    fn flow_pod_labels_and_policy_in_a_block_deployment() {
        let text = "deployments:\n  web:\n    podLabels: { team: x }  # owners\n    authorizationPolicy: {rules: [{from: [{source: {principals: [{namespace: o, serviceAccountName: [c]}]}}]}]}\n";
        let labelled = idempotent(labels, text);
        assert!(
            labelled.contains("podLabels: { team: x, version: v2, canary: enabled }  # owners\n"),
            "{labelled}"
        );
        let full = idempotent(policy, &idempotent(twin, &labelled));
        assert!(
            full.contains("  web-v1:\n    podLabels: {team: x, version: v1, canary: enabled}\n"),
            "{full}"
        );
        assert!(
            full.ends_with("    authorizationPolicy: {rules: [{from: [{source: {principals: [{namespace: o, serviceAccountName: [c]}]}}]}, {from: [{source: {principals: [{namespace: ingress-nginx, serviceAccountName: [ingress-nginx]}]}}]}]}\n"),
            "{full}"
        );
        assert_eq!(remove_deployment(&full, "web-v1").unwrap(), labelled);
    }

    #[test]
    fn invalid_yaml_is_a_parse_error() {
        let err = labels("name: [oops\ndeployments:\n").unwrap_err();
        assert!(matches!(err, YamlError::Parse(_)), "{err}");
        assert!(err.to_string().contains("line "), "{err}");
    }

    #[test]
    /// How fast this is belongs to the benchmarks; here, only that a big file edits right.
    fn a_five_thousand_line_file_round_trips() {
        let mut text = String::from("name: big\ndeployments:\n");
        for i in 0..1000 {
            text.push_str(&format!(
                "  dep{i}:\n    # comment\n    command:\n      - run\n    replicas: {i}\n"
            ));
        }
        text.push_str(SEED.split_once("deployments:\n").unwrap().1);
        assert!(text.lines().count() > 5000);
        let out = policy(&twin(&labels(&text).unwrap()).unwrap()).unwrap();
        let back = remove_deployment(&out, "web-v1").unwrap();
        assert_eq!(back, labels(&text).unwrap());
    }
}

#[cfg(test)]
mod anchor_tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, usize)> {
        anchors_in_deployment(&Document::parse(text).unwrap(), "web")
            .into_iter()
            .map(|a| (a.name, a.line))
            .collect()
    }

    #[test]
    fn anchors_inside_the_deployment_are_found_with_their_lines() {
        let text = "\
name: s
x-base: &base {a: 1}
deployments:
  web: &web
    <<: *base
    env: &env
      - {name: A, value: \"a&b\"}   # not &an anchor
    command: [&cmd start]
  worker:
    env: *env
    other: &other 1
";
        assert_eq!(
            names(text),
            [("web".into(), 4), ("env".into(), 6), ("cmd".into(), 8)]
        );
    }

    #[test]
    fn aliases_in_the_deployment_and_anchors_elsewhere_are_not_its_anchors() {
        let text = "\
x: &x {deployments: {web: &no 1}}
deployments:
  worker: &w {web: &no2 1}
  web:
    <<: *x
    note: \"&quoted\"
    block: |
      &literal
---
deployments:
  web: &second-document 1
";
        assert_eq!(names(text), Vec::<(String, usize)>::new());
        assert_eq!(names("deployments:\n  web:\n    a: b\n"), Vec::new());
        assert_eq!(names("deployments: [&a web]\n"), Vec::new());
        assert!(Document::parse("deployments: [&a\n").is_err());
    }
}
