//! Edits of gap.yaml, the service's deploy config in the GitOps repo.
//!
//! The canary runs a second deployment (the "twin", e.g. `web-v1`) next to
//! the service's own (`web`); these functions add, adjust and remove it.

use std::rc::Rc;

use serde_json::{Map, Value, json};

use super::emit::{self, line, quoted, scalar};
use super::flow::{self, Flow};
use super::locate::{Doc, Edit, Entry, Node, Style, ValueKind, find, unsupported};
use super::{Intended, YamlError, locator, parse_counted, parse_shared, verify};

/// Keys a twin gets from canary rather than by copying them from `dep`.
const OWN_KEYS: [&str; 4] = ["podLabels", "ingress", "image", "authorizationPolicy"];

/// Make `deployments.<dep>.podLabels` contain `labels`.
///
/// A missing `podLabels` becomes the deployment's first key; missing labels
/// are appended to an existing one. A label with another value is a conflict.
pub fn ensure_pod_labels(
    text: &str,
    dep: &str,
    labels: &[(&str, &str)],
) -> Result<String, YamlError> {
    let gap = Gap::open(text)?;
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
        return Ok(text.to_string());
    }

    let doc = &gap.doc;
    let step = doc.style.step;
    let edit = match gap.locate_any(dep)? {
        Found::Flow { flow, .. } => match flow.get("podLabels") {
            // Inside the flow mapping, as its first key (where a block one is put).
            None => match flow.items.first() {
                Some(first) => Edit::insert(
                    first.start,
                    format!("podLabels: {{{}}}, ", label_items(&missing).join(", ")),
                ),
                None => append_in(
                    text,
                    &flow,
                    vec![format!(
                        "podLabels: {{{}}}",
                        label_items(&missing).join(", ")
                    )],
                ),
            },
            Some(item) => append_in(
                text,
                &gap.flow_at(item.value, &path)?,
                label_items(&missing),
            ),
        },
        Found::Block(deployment) => match find(&deployment.children, "podLabels") {
            None => {
                let col = deployment.node.col;
                let mut new = vec![line(col, "podLabels:")];
                new.extend(label_lines(col + step, &missing));
                doc.insert_after(deployment.entry.line, &new)
            }
            Some(pl) if pl.value.kind == ValueKind::Flow => append_in(
                text,
                &gap.flow_at(pl.value.start, &path)?,
                label_items(&missing),
            ),
            Some(pl) => match doc.child(pl, &path)? {
                Some(node) => doc.insert_after(pl.last, &label_lines(node.col, &missing)),
                None if pl.value.kind == ValueKind::Empty => {
                    doc.insert_after(pl.line, &label_lines(pl.col + step, &missing))
                }
                None => {
                    return Err(unsupported(
                        pl.line,
                        format!("{path} is not a block mapping"),
                    ));
                }
            },
        },
    };

    let mut labelled = gap.value["deployments"][dep].clone();
    for &(key, value) in &missing {
        labelled["podLabels"][key] = Value::from(value);
    }
    gap.verify(vec![edit], dep, Some(labelled))
}

/// Add the twin deployment right after `dep`: canary's `podLabels`,
/// `ingress` and `image`, then a verbatim copy of dep's other keys.
///
/// An existing twin that already means this (ignoring the
/// `authorizationPolicy` that [`ensure_ingress_authorization`] adds) is
/// left alone; any other existing twin is a conflict.
pub fn ensure_twin_deployment(
    text: &str,
    dep: &str,
    twin: &str,
    twin_labels: &[(&str, &str)],
    image_repository: &str,
    image_tag: &str,
) -> Result<String, YamlError> {
    let gap = Gap::open(text)?;
    let want = twin_value(&gap, dep, twin_labels, image_repository, image_tag)?;
    if let Some(existing) = gap.deployments()?.get(twin) {
        let mut existing = existing.clone();
        if let Some(m) = existing.as_object_mut() {
            m.remove("authorizationPolicy");
        }
        if existing == want {
            return Ok(text.to_string());
        }
        return Err(YamlError::Conflict(format!(
            "deployments.{twin} already exists{} and differs from what canary writes",
            at(gap.line_of(&["deployments", twin]))
        )));
    }

    let deployment = match gap.locate_any(dep)? {
        Found::Block(deployment) => deployment,
        Found::Flow { entry, flow } => {
            // A flow `web` gets a flow twin on one line: canary's keys, then web's others
            // verbatim.
            let mut items = Vec::new();
            if let Some(labels) = twin_labels_flow(&gap, flow.get("podLabels"), dep, twin_labels)? {
                items.push(format!("podLabels: {labels}"));
            }
            items.push("ingress: {enabled: false}".into());
            items.push(format!(
                "image: {{repository: {}, tag: {}}}",
                scalar(image_repository),
                scalar(image_tag)
            ));
            items.extend(
                flow.items
                    .iter()
                    .filter(|i| i.key.as_deref().is_none_or(|k| !OWN_KEYS.contains(&k)))
                    .map(|i| text[i.start..i.end].to_string()),
            );
            let new = line(
                entry.col,
                format!("{}: {{{}}}", scalar(twin), items.join(", ")),
            );
            let edit = gap.doc.insert_after(entry.last, &[new]);
            return gap.verify(vec![edit], twin, Some(want));
        }
    };
    let child = deployment.node.col;
    let step = gap.doc.style.step;
    let mut new = vec![line(deployment.entry.col, format!("{}:", scalar(twin)))];
    new.extend(twin_labels_lines(&gap, &deployment, dep, twin_labels)?);
    new.extend([
        line(child, "ingress:"),
        line(child + step, "enabled: false"),
        line(child, "image:"),
        line(
            child + step,
            format!("repository: {}", scalar(image_repository)),
        ),
        line(child + step, format!("tag: {}", scalar(image_tag))),
    ]);
    for e in &deployment.children {
        if !OWN_KEYS.contains(&&*e.key) {
            new.extend(copy_entry(&gap.doc, e));
        }
    }

    let edit = gap.doc.insert_after(deployment.entry.last, &new);
    gap.verify(vec![edit], twin, Some(want))
}

/// Give `twin` an `authorizationPolicy` (appended as its last key): dep's
/// policy, with rules extended by one admitting the ingress controller.
pub fn ensure_ingress_authorization(
    text: &str,
    dep: &str,
    twin: &str,
    ingress_namespace: &str,
    ingress_service_account: &str,
) -> Result<String, YamlError> {
    let gap = Gap::open(text)?;
    let rule = json!({"from": [{"source": {"principals": [{
        "namespace": ingress_namespace,
        "serviceAccountName": [ingress_service_account],
    }]}}]});
    let (want, add_rule) = wanted_policy(&gap, dep, &rule)?;
    if let Some(existing) = gap.deployment(twin)?.get("authorizationPolicy") {
        if *existing == want {
            return Ok(text.to_string());
        }
        return Err(YamlError::Conflict(format!(
            "deployments.{twin}.authorizationPolicy already exists{} and differs from what canary writes",
            at(gap.line_of(&["deployments", twin, "authorizationPolicy"]))
        )));
    }

    let mut authorized = gap.value["deployments"][twin].clone();
    authorized["authorizationPolicy"] = want.clone();
    let flow_policy = format!("authorizationPolicy: {}", emit::flow(&want));
    let edit = match gap.locate_any(twin)? {
        Found::Flow { flow, .. } => append_in(text, &flow, vec![flow_policy]),
        Found::Block(target) => {
            let rule_text = add_rule.then_some(IngressRule {
                namespace: ingress_namespace,
                service_account: ingress_service_account,
            });
            // web's policy copied and extended where it is block style; where it (or web)
            // is written in flow style, the twin's is one flow mapping too.
            let block = match gap.locate_any(dep)? {
                Found::Block(source) => {
                    match policy_lines(&gap.doc, &source, dep, target.node.col, rule_text) {
                        Ok(lines) => Some(lines),
                        Err(YamlError::Unsupported { .. }) => None,
                        Err(e) => return Err(e),
                    }
                }
                Found::Flow { .. } => None,
            };
            let new = block.unwrap_or_else(|| vec![line(target.node.col, flow_policy)]);
            gap.doc.insert_after(target.entry.last, &new)
        }
    };
    gap.verify(vec![edit], twin, Some(authorized))
}

/// Point the twin at another image, editing the two scalars in place.
pub fn set_twin_image(
    text: &str,
    twin: &str,
    image_repository: &str,
    image_tag: &str,
) -> Result<String, YamlError> {
    let gap = Gap::open(text)?;
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
        return Ok(text.to_string());
    }

    let deployment = gap.locate(twin)?;
    let entry = find(&deployment.children, "image").ok_or_else(|| {
        unsupported(
            deployment.entry.line,
            format!("{path} is not a plain block key"),
        )
    })?;
    let node = gap
        .doc
        .child(entry, &path)?
        .ok_or_else(|| unsupported(entry.line, format!("{path} is not a block mapping")))?;
    let entries = gap.doc.entries(node)?;
    let mut edits = Vec::new();
    let mut repinned = gap.value["deployments"][twin].clone();
    for (key, value) in changes {
        let e = find(&entries, key).ok_or_else(|| {
            unsupported(entry.line, format!("{path}.{key} is not a plain block key"))
        })?;
        if e.value.kind != ValueKind::Scalar {
            return Err(unsupported(
                e.line,
                format!("{path}.{key} is not a one-line scalar, so canary cannot replace it"),
            ));
        }
        edits.push(gap.doc.replace(e.value, scalar(value)));
        repinned["image"][key] = Value::from(value);
    }
    gap.verify(edits, twin, Some(repinned))
}

/// Remove `deployments.<dep>` (key line through its last content line).
/// Nothing to do when it is absent.
pub fn remove_deployment(text: &str, dep: &str) -> Result<String, YamlError> {
    let gap = Gap::open(text)?;
    let present = gap
        .value
        .get("deployments")
        .and_then(Value::as_object)
        .is_some_and(|d| d.contains_key(dep));
    if !present {
        return Ok(text.to_string());
    }
    let (_, entries) = gap.deployment_entries()?;
    let entry = find_deployment(&entries, dep)?;
    if entries.len() == 1 {
        return Err(unsupported(
            entry.line,
            format!(
                "deployments.{dep} is the only deployment; removing it would leave deployments empty"
            ),
        ));
    }
    let edit = gap.doc.remove(entry.line, entry.last);
    gap.verify(vec![edit], dep, None)
}

/// The parsed value of `deployments.<dep>`, if present.
pub fn deployment_value(text: &str, dep: &str) -> Result<Option<Value>, YamlError> {
    Ok(parse_shared(text)?
        .get("deployments")
        .and_then(|d| d.get(dep))
        .cloned())
}

/// The service's name (gap.yaml's top-level `name:`).
pub fn service_name(text: &str) -> Result<String, YamlError> {
    parse_shared(text)?
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| YamlError::Missing("no top-level name in gap.yaml".into()))
}

/// A parsed gap.yaml with its text locator.
struct Gap<'a> {
    text: &'a str,
    doc: Doc<'a>,
    value: Rc<Value>,
    /// See [`super::Last::nodes`].
    nodes: Option<usize>,
}

/// A deployment as written: a block mapping, or a flow mapping (`web: {...}`).
enum Found<'a> {
    Block(Located<'a>),
    Flow { entry: Entry<'a>, flow: Flow },
}

/// A deployment as written: its entry, its mapping and the mapping's entries.
struct Located<'a> {
    entry: Entry<'a>,
    node: Node,
    children: Vec<Entry<'a>>,
}

impl<'a> Gap<'a> {
    fn open(text: &'a str) -> Result<Self, YamlError> {
        let (value, nodes) = parse_counted(text)?;
        Ok(Gap {
            text,
            value,
            nodes,
            doc: locator(text),
        })
    }

    /// Applies `edits`, checking that the result is this file with `deployments.<name>` set to
    /// `value` (removed when `None`). Takes the file's value along, so that the result's can be
    /// made from it.
    fn verify(
        self,
        edits: Vec<Edit>,
        name: &str,
        value: Option<Value>,
    ) -> Result<String, YamlError> {
        let intended = Intended {
            base: self.value,
            nodes: self.nodes,
            name,
            value,
        };
        verify(self.text, self.doc, edits, intended)
    }

    fn deployments(&self) -> Result<&Map<String, Value>, YamlError> {
        self.value
            .get("deployments")
            .and_then(Value::as_object)
            .ok_or_else(|| YamlError::Missing("no deployments mapping".into()))
    }

    fn deployment(&self, dep: &str) -> Result<&Map<String, Value>, YamlError> {
        self.deployments()?
            .get(dep)
            .and_then(Value::as_object)
            .ok_or_else(|| YamlError::Missing(format!("no deployments.{dep} mapping")))
    }

    /// The `deployments` entry and its children, as written.
    fn deployment_entries(&self) -> Result<(Entry<'a>, Vec<Entry<'a>>), YamlError> {
        let root = self
            .doc
            .single_root()?
            .ok_or_else(|| YamlError::Missing("no deployments mapping".into()))?;
        let entries = self.doc.entries(root)?;
        let deployments = find(&entries, "deployments")
            .ok_or_else(|| unsupported(root.line, "`deployments` is not a plain top-level key"))?;
        let node = self
            .doc
            .child(deployments, "deployments")?
            .ok_or_else(|| unsupported(deployments.line, "deployments is not a block mapping"))?;
        Ok((deployments.clone(), self.doc.entries(node)?))
    }

    /// `deployments.<dep>` as written, block or flow; call after checking it is a mapping.
    fn locate_any(&self, dep: &str) -> Result<Found<'a>, YamlError> {
        let (_, entries) = self.deployment_entries()?;
        let entry = find_deployment(&entries, dep)?.clone();
        if entry.value.kind == ValueKind::Flow && self.text[entry.value.start..].starts_with('{') {
            let flow = self.flow_at(entry.value.start, &format!("deployments.{dep}"))?;
            return Ok(Found::Flow { entry, flow });
        }
        self.block(entry, dep).map(Found::Block)
    }

    /// The flow mapping whose `{` is at `at` (the value of `path`).
    fn flow_at(&self, at: usize, path: &str) -> Result<Flow, YamlError> {
        if !self.text[at..].starts_with('{') {
            let line = self.text[..at].matches('\n').count();
            return Err(unsupported(
                line,
                format!("{path} is not a mapping canary can edit"),
            ));
        }
        flow::parse(self.text, at)
    }

    /// `deployments.<dep>` as written; call after checking it is a mapping.
    fn locate(&self, dep: &str) -> Result<Located<'a>, YamlError> {
        let (_, entries) = self.deployment_entries()?;
        self.block(find_deployment(&entries, dep)?.clone(), dep)
    }

    /// The block mapping of `deployments.<dep>`, whose entry is `entry`.
    fn block(&self, entry: Entry<'a>, dep: &str) -> Result<Located<'a>, YamlError> {
        let node = self
            .doc
            .child(&entry, &format!("deployments.{dep}"))?
            .ok_or_else(|| {
                unsupported(
                    entry.line,
                    format!("deployments.{dep} is not a block mapping"),
                )
            })?;
        let children = self.doc.entries(node)?;
        Ok(Located {
            entry,
            node,
            children,
        })
    }

    /// 1-based line of a key path, for messages; `None` when not locatable.
    /// Stops at the deepest key it can locate, so a label inside a flow
    /// mapping still points at its `podLabels:` line.
    fn line_of(&self, keys: &[&str]) -> Option<usize> {
        let mut node = self.doc.single_root().ok().flatten();
        let mut line = None;
        for key in keys {
            let Some(entries) = node.and_then(|n| self.doc.entries(n).ok()) else {
                break;
            };
            let Some(e) = find(&entries, key) else { break };
            line = Some(e.line + 1);
            node = self.doc.child(e, key).ok().flatten();
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

fn find_deployment<'e, 'a>(
    entries: &'e [Entry<'a>],
    dep: &str,
) -> Result<&'e Entry<'a>, YamlError> {
    find(entries, dep).ok_or_else(|| {
        let line = entries.first().map_or(0, |e| e.line);
        unsupported(
            line,
            format!("deployments.{dep} is not a plain block key here"),
        )
    })
}

/// " (line N)" when the line is known.
fn at(line: Option<usize>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

/// `key: value` items for a flow mapping.
fn label_items(labels: &[(&str, &str)]) -> Vec<String> {
    labels
        .iter()
        .map(|(k, v)| format!("{}: {}", scalar(k), scalar(v)))
        .collect()
}

/// The edit that appends `items` inside a flow collection.
fn append_in(text: &str, flow: &Flow, items: Vec<String>) -> Edit {
    let (at, add) = flow::append(text, flow, &items);
    Edit::insert(at, add)
}

/// The twin's labels as a flow mapping: dep's other labels verbatim, then the twin's; `None`
/// when there are none at all.
fn twin_labels_flow(
    gap: &Gap,
    source: Option<&flow::FlowItem>,
    dep: &str,
    twin_labels: &[(&str, &str)],
) -> Result<Option<String>, YamlError> {
    let keys: Vec<&str> = twin_labels.iter().map(|(k, _)| *k).collect();
    let extra = label_items(twin_labels);
    Ok(match source {
        Some(item) => {
            let flow = gap.flow_at(item.value, &format!("deployments.{dep}.podLabels"))?;
            Some(flow::rewrite(gap.text, &flow, &keys, &extra))
        }
        None if extra.is_empty() => None,
        None => Some(format!("{{{}}}", extra.join(", "))),
    })
}

fn label_lines(col: usize, labels: &[(&str, &str)]) -> Vec<String> {
    labels
        .iter()
        .map(|(k, v)| line(col, format!("{}: {}", scalar(k), scalar(v))))
        .collect()
}

/// An entry's lines (with the comments directly above it), verbatim.
fn copy_entry(doc: &Doc, e: &Entry) -> Vec<String> {
    doc.texts(doc.leading_comments(e.line, e.col), e.last)
        .map(str::to_string)
        .collect()
}

/// What the twin means, from dep's parsed value.
fn twin_value(
    gap: &Gap,
    dep: &str,
    twin_labels: &[(&str, &str)],
    image_repository: &str,
    image_tag: &str,
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
    twin.insert(
        "image".into(),
        json!({"repository": image_repository, "tag": image_tag}),
    );
    for (k, v) in source {
        if !OWN_KEYS.contains(&k.as_str()) {
            twin.insert(k.clone(), v.clone());
        }
    }
    Ok(Value::Object(twin))
}

/// The twin's `podLabels` lines: dep's other labels verbatim, then the twin's; in flow
/// style when dep writes its labels so. Empty when there are no labels at all.
fn twin_labels_lines(
    gap: &Gap,
    deployment: &Located,
    dep: &str,
    twin_labels: &[(&str, &str)],
) -> Result<Vec<String>, YamlError> {
    let doc = &gap.doc;
    let col = deployment.node.col;
    let path = format!("deployments.{dep}.podLabels");
    let source = find(&deployment.children, "podLabels");
    if let Some(pl) = source.filter(|pl| pl.value.kind == ValueKind::Flow) {
        let flow = gap.flow_at(pl.value.start, &path)?;
        let keys: Vec<&str> = twin_labels.iter().map(|(k, _)| *k).collect();
        let labels = flow::rewrite(gap.text, &flow, &keys, &label_items(twin_labels));
        return Ok(vec![line(col, format!("podLabels: {labels}"))]);
    }
    let mut out = Vec::new();
    let mut label_col = col + doc.style.step;
    if let Some(pl) = source
        && let Some(node) = doc.child(pl, &path)?
    {
        label_col = node.col;
        for e in doc.entries(node)? {
            if !twin_labels.iter().any(|(k, _)| *k == e.key) {
                out.extend(copy_entry(doc, &e));
            }
        }
    }
    out.extend(label_lines(label_col, twin_labels));
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
                format!("- namespace: {}", scalar(self.namespace)),
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
    doc: &Doc,
    source: &Located,
    dep: &str,
    col: usize,
    rule: Option<IngressRule>,
) -> Result<Vec<String>, YamlError> {
    let style = doc.style;
    let Some(policy) = find(&source.children, "authorizationPolicy") else {
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
    let first = doc.leading_comments(policy.line, policy.col);
    let mut out: Vec<String> = doc.texts(first, policy.last).map(str::to_string).collect();
    if let Some(rule) = rule {
        let node = doc.child(policy, &path)?;
        if node.is_none() && policy.value.kind != ValueKind::Empty {
            return Err(unsupported(
                policy.line,
                format!("{path} is not a block mapping"),
            ));
        }
        let entries = node
            .map(|n| doc.entries(n))
            .transpose()?
            .unwrap_or_default();
        match find(&entries, "rules") {
            Some(rules) => {
                let dash = match doc.child(rules, &format!("{path}.rules"))? {
                    Some(n) => n.col,
                    None if rules.value.kind == ValueKind::Empty => rules.col + style.seq_offset,
                    None => {
                        return Err(unsupported(
                            rules.line,
                            format!("{path}.rules is not a block sequence"),
                        ));
                    }
                };
                let at = rules.last - first + 1;
                out.splice(at..at, rule.lines(dash, style));
            }
            None => {
                let key = node.map_or(policy.col + style.step, |n| n.col);
                out.push(line(key, "rules:"));
                out.extend(rule.lines(key + style.seq_offset, style));
            }
        }
    }
    Ok(reindent(out, source.node.col, col))
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
        ensure_pod_labels(text, "web", &LABELS)
    }

    fn twin(text: &str) -> Result<String, YamlError> {
        ensure_twin_deployment(text, "web", "web-v1", &TWIN_LABELS, REPO, TAG)
    }

    fn policy(text: &str) -> Result<String, YamlError> {
        ensure_ingress_authorization(text, "web", "web-v1", "ingress-nginx", "ingress-nginx")
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
        let out = ensure_twin_deployment(SEED, "web", "web-v1", &[], REPO, TAG).unwrap();
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
                .replace(&format!("\"{TAG}\" # pinned"), "1.2.3 # pinned")
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
