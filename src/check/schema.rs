//! Validation of canary's objects against the schemas the API server uses: Istio's CRD
//! OpenAPI schemas (in `schemas/istio/`, made from Istio's CRDs by `schemas/refresh.py` and
//! embedded at build time) and Kubernetes' own Service type (k8s-openapi).
//!
//! The CRD schemas are *structural* schemas, which the API server applies with its own rules
//! rather than JSON Schema's: a field the schema does not name is an error (kubectl's default
//! strict field validation) unless `x-kubernetes-preserve-unknown-fields` says otherwise, and
//! `x-kubernetes-int-or-string` widens a type. Those rules, plus the value checks the Istio
//! schemas use (`type`, `enum`, bounds, lengths, `pattern`, `required`, `oneOf`/`anyOf`/
//! `allOf`/`not`), are what this module implements. CEL rules (`x-kubernetes-validations`)
//! are not evaluated.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use crate::yaml::Seg;

/// An Istio kind canary writes (the AuthorizationPolicy in gap.yaml's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IstioKind {
    DestinationRule,
    VirtualService,
    AuthorizationPolicy,
}

impl IstioKind {
    fn source(self) -> &'static str {
        match self {
            IstioKind::DestinationRule => include_str!("../../schemas/istio/destinationrule.jsonl"),
            IstioKind::VirtualService => include_str!("../../schemas/istio/virtualservice.jsonl"),
            IstioKind::AuthorizationPolicy => {
                include_str!("../../schemas/istio/authorizationpolicy.jsonl")
            }
        }
    }

    fn cell(self) -> &'static OnceLock<Crd> {
        static DR: OnceLock<Crd> = OnceLock::new();
        static VS: OnceLock<Crd> = OnceLock::new();
        static AP: OnceLock<Crd> = OnceLock::new();
        match self {
            IstioKind::DestinationRule => &DR,
            IstioKind::VirtualService => &VS,
            IstioKind::AuthorizationPolicy => &AP,
        }
    }

    fn crd(self) -> &'static Crd {
        self.cell().get_or_init(|| Crd::parse(self.source()))
    }

    /// The `apiVersion`s the CRD serves, e.g. `networking.istio.io/v1beta1`.
    pub fn api_versions(self) -> Vec<String> {
        let crd = self.crd();
        let mut out: Vec<String> = crd
            .versions()
            .map(|v| format!("{}/{v}", crd.group))
            .collect();
        out.sort();
        out
    }
}

/// One CRD as `schemas/refresh.py` embeds it: its group, and its served versions grouped by
/// schema.
struct Crd {
    group: String,
    schemas: Vec<VersionsSchema<'static>>,
}

/// Served versions that share one schema, kept as a table of nodes (the root first) that
/// refer to their subschemas by index.
struct VersionsSchema<'a> {
    versions: Vec<String>,
    nodes: Vec<Node<'a>>,
}

/// The first line of an embedded CRD; its nodes follow, one per line.
#[derive(Deserialize)]
struct Header {
    group: String,
    schemas: Vec<HeaderEntry>,
}

#[derive(Deserialize)]
struct HeaderEntry {
    versions: Vec<String>,
    nodes: usize,
}

impl Crd {
    /// Only the first line is read as JSON here: a step reads a few of the hundreds of nodes,
    /// and finding each node by its line costs nothing next to scanning every node's JSON.
    fn parse(text: &'static str) -> Crd {
        // Split with memchr: the table is a thousand lines, and `str::lines` scanning them was
        // most of the cost of reading it.
        let mut start = 0;
        let mut lines = memchr::memchr_iter(b'\n', text.as_bytes()).map(|end| {
            let line = &text[start..end];
            start = end + 1;
            line
        });
        let header: Header =
            serde_json::from_str(lines.next().unwrap_or_default()).expect("embedded CRD parses");
        let schemas = header
            .schemas
            .into_iter()
            .map(|entry| VersionsSchema {
                versions: entry.versions,
                nodes: lines.by_ref().take(entry.nodes).map(Node::new).collect(),
            })
            .collect();
        Crd {
            group: header.group,
            schemas,
        }
    }

    fn versions(&self) -> impl Iterator<Item = &str> {
        self.schemas
            .iter()
            .flat_map(|s| s.versions.iter().map(String::as_str))
    }

    fn schema_of(&self, version: &str) -> Option<&VersionsSchema<'static>> {
        self.schemas
            .iter()
            .find(|s| s.versions.iter().any(|v| v == version))
    }
}

impl<'a> VersionsSchema<'a> {
    fn root(&self) -> &Schema<'a> {
        self.node(0)
    }

    /// The embedded tables are read whole, every index followed, by the unit tests below: an
    /// index out of range or a node that does not read is a bug caught before any release.
    fn node(&self, index: usize) -> &Schema<'a> {
        self.nodes[index].get()
    }
}

/// A node kept as its text until a value being checked reaches it, then read once: an object
/// names a few of the hundreds of fields a CRD describes, and building the whole schema cost
/// more time and memory than all the rest of a step.
struct Node<'a> {
    text: &'a str,
    /// Boxed: the table holds a node for every schema, and only a few are ever read.
    schema: OnceLock<Box<Schema<'a>>>,
}

impl<'a> Node<'a> {
    fn new(text: &'a str) -> Node<'a> {
        Node {
            text,
            schema: OnceLock::new(),
        }
    }

    fn get(&self) -> &Schema<'a> {
        self.schema.get_or_init(|| {
            Box::new(serde_json::from_str(self.text).expect("an embedded schema node reads"))
        })
    }
}

/// A structural schema node, holding only the keywords validation reads (serde skips the
/// others, `format` and the CEL rules, without building them), its subschemas as indexes into
/// its table; names and patterns borrow the embedded text.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Schema<'a> {
    #[serde(rename = "type", borrow)]
    ty: Option<Cow<'a, str>>,
    #[serde(default)]
    nullable: bool,
    #[serde(rename = "x-kubernetes-int-or-string", default)]
    int_or_string: bool,
    #[serde(rename = "x-kubernetes-preserve-unknown-fields", default)]
    preserve_unknown_fields: bool,
    #[serde(rename = "enum")]
    allowed: Option<Vec<Value>>,
    #[serde(borrow)]
    pattern: Option<Cow<'a, str>>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    #[serde(default)]
    exclusive_minimum: bool,
    #[serde(default)]
    exclusive_maximum: bool,
    min_length: Option<u64>,
    max_length: Option<u64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    min_properties: Option<u64>,
    max_properties: Option<u64>,
    #[serde(borrow, default)]
    required: Vec<Cow<'a, str>>,
    #[serde(default)]
    properties: BTreeMap<String, usize>,
    additional_properties: Option<usize>,
    items: Option<usize>,
    one_of: Option<Vec<usize>>,
    any_of: Option<Vec<usize>>,
    #[serde(default)]
    all_of: Vec<usize>,
    not: Option<usize>,
}

impl Schema<'_> {
    fn property(&self, name: &str) -> Option<usize> {
        self.properties.get(name).copied()
    }
}

/// Something a schema does not allow, at a path inside the object.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    pub path: Vec<Seg>,
    pub message: String,
}

/// Validate a whole object (apiVersion, kind, metadata, spec) against the CRD schema of the
/// version its `apiVersion` names. An unserved apiVersion is itself a violation.
pub fn validate_istio(kind: IstioKind, object: &Value) -> Vec<Violation> {
    let crd = kind.crd();
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let version = api_version
        .strip_prefix(&crd.group)
        .and_then(|v| v.strip_prefix('/'));
    let Some(table) = version.and_then(|v| crd.schema_of(v)) else {
        return vec![Violation {
            path: vec![Seg::Key("apiVersion".into())],
            message: format!(
                "apiVersion {api_version:?} is not served for {kind:?}; use one of {}",
                kind.api_versions().join(", ")
            ),
        }];
    };
    let mut out = Vec::new();
    if !object["metadata"]["name"].is_string() {
        violation(&[Seg::Key("metadata".into())], "has no name", &mut out);
    }
    // The API server adds apiVersion, kind and metadata to every CRD's schema.
    let Value::Object(fields) = object else {
        validate(table, 0, object, &mut Vec::new(), &mut out);
        return out;
    };
    let rest: serde_json::Map<String, Value> = fields
        .iter()
        .filter(|(key, _)| !matches!(key.as_str(), "apiVersion" | "kind" | "metadata"))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    validate(table, 0, &Value::Object(rest), &mut Vec::new(), &mut out);
    out
}

/// Validate one value (`spec`, say) against the named property of a served version's schema:
/// for a gap.yaml `authorizationPolicy`, which gap turns into an AuthorizationPolicy's spec.
pub fn validate_istio_spec(kind: IstioKind, spec: &Value) -> Vec<Violation> {
    let crd = kind.crd();
    let table = crd.schemas.last().expect("a CRD serves a version");
    let schema = table
        .root()
        .property("spec")
        .expect("a CRD's schema has a spec");
    let mut out = Vec::new();
    validate(table, schema, spec, &mut Vec::new(), &mut out);
    out
}

fn violation(path: &[Seg], message: impl Into<String>, out: &mut Vec<Violation>) {
    out.push(Violation {
        path: path.to_vec(),
        message: message.into(),
    });
}

/// Validate `value` against node `index` of `table`.
fn validate(
    table: &VersionsSchema,
    index: usize,
    value: &Value,
    path: &mut Vec<Seg>,
    out: &mut Vec<Violation>,
) {
    let schema = table.node(index);
    if value.is_null() {
        if !schema.nullable && schema.ty.is_some() {
            violation(path, "must not be null", out);
        }
        return;
    }
    if let Some(ty) = schema.ty.as_deref() {
        let fits = match ty {
            _ if schema.int_or_string => value.is_i64() || value.is_u64() || value.is_string(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !fits {
            let what = if schema.int_or_string {
                "an integer or a string"
            } else {
                ty
            };
            violation(
                path,
                format!("must be {}, not {}", article(what), kind_of(value)),
                out,
            );
            return;
        }
    }
    if let Some(allowed) = &schema.allowed
        && !allowed.contains(value)
    {
        let names: Vec<String> = allowed.iter().map(Value::to_string).collect();
        violation(
            path,
            format!("{value} is not one of {}", names.join(", ")),
            out,
        );
    }
    match value {
        Value::String(s) => string(schema, s, path, out),
        Value::Number(n) => number(schema, n.as_f64().unwrap_or_default(), path, out),
        Value::Array(items) => {
            let limits = (schema.min_items, schema.max_items);
            bound(limits, items.len(), "items", path, out);
            if let Some(item_schema) = schema.items {
                for (i, item) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    validate(table, item_schema, item, path, out);
                    path.pop();
                }
            }
        }
        Value::Object(map) => object(table, schema, map, path, out),
        Value::Bool(_) | Value::Null => {}
    }
    combinators(table, schema, value, path, out);
}

fn string(schema: &Schema, s: &str, path: &[Seg], out: &mut Vec<Violation>) {
    let limits = (schema.min_length, schema.max_length);
    bound(limits, s.chars().count(), "characters", path, out);
    if let Some(pattern) = schema.pattern.as_deref()
        && let Ok(re) = regex::Regex::new(pattern)
        && !re.is_match(s)
    {
        violation(path, format!("{s:?} does not match {pattern:?}"), out);
    }
}

fn number(schema: &Schema, n: f64, path: &[Seg], out: &mut Vec<Violation>) {
    if let Some(min) = schema.minimum
        && (n < min || (schema.exclusive_minimum && n == min))
    {
        violation(path, format!("{n} is below the minimum {min}"), out);
    }
    if let Some(max) = schema.maximum
        && (n > max || (schema.exclusive_maximum && n == max))
    {
        violation(path, format!("{n} is above the maximum {max}"), out);
    }
}

/// A count (of items, characters or fields) against a schema's lower and upper limits.
fn bound(
    (min, max): (Option<u64>, Option<u64>),
    len: usize,
    unit: &str,
    path: &[Seg],
    out: &mut Vec<Violation>,
) {
    let len = u64::try_from(len).unwrap_or(u64::MAX);
    if let Some(min) = min
        && len < min
    {
        violation(path, format!("has {len} {unit}, fewer than {min}"), out);
    }
    if let Some(max) = max
        && len > max
    {
        violation(path, format!("has {len} {unit}, more than {max}"), out);
    }
}

fn object(
    table: &VersionsSchema,
    schema: &Schema,
    map: &serde_json::Map<String, Value>,
    path: &mut Vec<Seg>,
    out: &mut Vec<Violation>,
) {
    let limits = (schema.min_properties, schema.max_properties);
    bound(limits, map.len(), "fields", path, out);
    for key in &schema.required {
        if !map.contains_key(key.as_ref()) {
            violation(path, format!("the required field {key:?} is missing"), out);
        }
    }
    // A schema that only constrains (inside oneOf, say) names no type and no fields.
    let typed = schema.ty.as_deref() == Some("object");
    for (key, child) in map {
        path.push(Seg::Key(key.clone()));
        match schema.property(key).or(schema.additional_properties) {
            Some(child_schema) => validate(table, child_schema, child, path, out),
            None if typed && !schema.preserve_unknown_fields => {
                violation(path, "unknown field", out)
            }
            None => {}
        }
        path.pop();
    }
}

/// `oneOf`, `anyOf`, `allOf` and `not`, as the Istio schemas use them to make fields mutually
/// exclusive. Only whether a branch matches counts here, not what failed inside it.
fn combinators(
    table: &VersionsSchema,
    schema: &Schema,
    value: &Value,
    path: &mut Vec<Seg>,
    out: &mut Vec<Violation>,
) {
    let here = path.clone();
    let matches = |branch: &usize| {
        let mut inner = Vec::new();
        validate(table, *branch, value, &mut here.clone(), &mut inner);
        inner.is_empty()
    };
    if let Some(branches) = &schema.one_of {
        let n = branches.iter().filter(|b| matches(b)).count();
        if n != 1 {
            violation(
                path,
                format!("must match exactly one of its alternatives (oneOf), matches {n}"),
                out,
            );
        }
    }
    if let Some(branches) = &schema.any_of
        && !branches.iter().any(matches)
    {
        violation(path, "matches none of its alternatives (anyOf)", out);
    }
    for &branch in &schema.all_of {
        validate(table, branch, value, path, out);
    }
    if let Some(not) = &schema.not
        && matches(not)
    {
        violation(
            path,
            "holds a combination of fields that is not allowed",
            out,
        );
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn article(ty: &str) -> String {
    match ty {
        "object" => "a mapping".into(),
        "array" => "a list".into(),
        "integer" => "an integer".into(),
        other if other.starts_with("an ") => other.into(),
        other => format!("a {other}"),
    }
}

/// Check a Service (strategic merge) patch against Kubernetes' Service type. A `null` value is
/// the patch's way of deleting a key (the seed's `app:` in the selector), so nulls are taken
/// out before reading; a field that the type does not have is reported, found by reading the
/// patch into the type and writing it back: whatever did not survive is unknown.
pub fn validate_service(object: &Value) -> Vec<Violation> {
    let patch = without_nulls(object);
    let service: k8s_openapi::api::core::v1::Service = match serde_json::from_value(patch.clone()) {
        Ok(service) => service,
        Err(e) => {
            return vec![Violation {
                path: Vec::new(),
                message: format!("is not a Kubernetes Service: {e}"),
            }];
        }
    };
    let back = serde_json::to_value(&service).unwrap_or(Value::Null);
    let mut out = Vec::new();
    lost_fields(&patch, &back, &mut Vec::new(), &mut out);
    out
}

fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn lost_fields(input: &Value, back: &Value, path: &mut Vec<Seg>, out: &mut Vec<Violation>) {
    match (input, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                path.push(Seg::Key(key.clone()));
                match b.get(key) {
                    Some(kept) => lost_fields(value, kept, path, out),
                    None => violation(path, "unknown field", out),
                }
                path.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                path.push(Seg::Index(i));
                lost_fields(x, y, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(v: &[Violation]) -> Vec<String> {
        v.iter()
            .map(|v| format!("{}: {}", crate::yaml::path_text(&v.path), v.message))
            .collect()
    }

    #[test]
    fn embedded_crds_serve_the_versions_canary_writes() {
        for kind in [
            IstioKind::DestinationRule,
            IstioKind::VirtualService,
            IstioKind::AuthorizationPolicy,
        ] {
            let versions = kind.api_versions();
            assert!(
                versions.iter().any(|v| v.ends_with("/v1beta1")),
                "{versions:?}"
            );
            assert!(versions.iter().any(|v| v.ends_with("/v1")), "{versions:?}");
        }
    }

    /// Each header counts exactly the lines that follow it: a node too many or too few would
    /// shift every index after it.
    #[test]
    fn every_embedded_header_counts_its_nodes() {
        for kind in [
            IstioKind::DestinationRule,
            IstioKind::VirtualService,
            IstioKind::AuthorizationPolicy,
        ] {
            let counted: usize = kind.crd().schemas.iter().map(|s| s.nodes.len()).sum();
            assert!(counted > 100, "{kind:?}: {counted} nodes");
            assert_eq!(kind.source().lines().count(), 1 + counted, "{kind:?}");
        }
    }

    /// Every node of every embedded schema reads, and every index in it names a node: walked
    /// from the root through every keyword that holds subschemas, each node reached.
    #[test]
    fn every_embedded_schema_node_reads() {
        fn walk(table: &VersionsSchema, index: usize, seen: &mut Vec<bool>) {
            seen[index] = true;
            let schema = table.node(index);
            let subschemas = schema
                .properties
                .values()
                .chain(&schema.additional_properties)
                .chain(&schema.items)
                .chain(schema.one_of.iter().flatten())
                .chain(schema.any_of.iter().flatten())
                .chain(&schema.all_of)
                .chain(&schema.not);
            for &sub in subschemas {
                walk(table, sub, seen);
            }
        }
        for kind in [
            IstioKind::DestinationRule,
            IstioKind::VirtualService,
            IstioKind::AuthorizationPolicy,
        ] {
            for table in &kind.crd().schemas {
                let mut seen = vec![false; table.nodes.len()];
                walk(table, 0, &mut seen);
                let unreached = seen.iter().filter(|s| !**s).count();
                assert_eq!(unreached, 0, "{kind:?}: nodes no schema refers to");
                // Over a hundred nodes each: the keywords are read by their right names.
                assert!(seen.len() > 50, "{kind:?}: {} nodes", seen.len());
            }
        }
    }

    fn dr(spec: Value) -> Value {
        json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
               "metadata": {"name": "x"}, "spec": spec})
    }

    #[test]
    fn a_valid_destination_rule_passes() {
        let ok = dr(json!({"host": "a.b.svc.cluster.local",
            "subsets": [{"name": "v1", "labels": {"version": "v1"}}]}));
        assert_eq!(
            messages(&validate_istio(IstioKind::DestinationRule, &ok)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn types_unknown_fields_required_and_versions_are_checked() {
        let bad = dr(json!({"subsets": [{"name": 1, "lables": {}}]}));
        let got = messages(&validate_istio(IstioKind::DestinationRule, &bad));
        assert!(
            got.contains(&"spec: the required field \"host\" is missing".into()),
            "{got:?}"
        );
        assert!(
            got.contains(&"spec.subsets[0].name: must be a string, not an integer".into()),
            "{got:?}"
        );
        assert!(
            got.contains(&"spec.subsets[0].lables: unknown field".into()),
            "{got:?}"
        );
        let mut wrong = dr(json!({"host": "h"}));
        wrong["apiVersion"] = json!("networking.istio.io/v9");
        let got = messages(&validate_istio(IstioKind::DestinationRule, &wrong));
        assert!(
            got[0].starts_with("apiVersion: apiVersion \"networking.istio.io/v9\" is not served"),
            "{got:?}"
        );
    }

    #[test]
    fn virtual_service_weights_and_one_of() {
        let vs = |route: Value| {
            json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
                   "metadata": {"name": "x"}, "spec": {"hosts": ["h"], "http": [{"route": route}]}})
        };
        let ok = vs(json!([{"destination": {"host": "h", "subset": "v1"}, "weight": 100}]));
        assert!(validate_istio(IstioKind::VirtualService, &ok).is_empty());
        let bad = vs(json!([{"destination": {"host": "h"}, "weight": "ten"}]));
        let got = messages(&validate_istio(IstioKind::VirtualService, &bad));
        assert_eq!(
            got,
            ["spec.http[0].route[0].weight: must be an integer, not a string"]
        );
        // Istio's schema makes `exact` and `prefix` of a match mutually exclusive (oneOf).
        let mut both = ok.clone();
        both["spec"]["http"][0]["match"] = json!([{"uri": {"exact": "/a", "prefix": "/b"}}]);
        let got = messages(&validate_istio(IstioKind::VirtualService, &both));
        assert!(
            got.iter()
                .any(|m| m.starts_with("spec.http[0].match[0].uri: ")),
            "{got:?}"
        );
    }

    #[test]
    fn authorization_policy_specs() {
        let ok =
            json!({"rules": [{"from": [{"source": {"principals": ["cluster.local/ns/a/sa/b"]}}]}]});
        assert!(validate_istio_spec(IstioKind::AuthorizationPolicy, &ok).is_empty());
        let bad =
            json!({"action": "MAYBE", "rules": [{"from": [{"source": {"principals": "x"}}]}]});
        let got = messages(&validate_istio_spec(IstioKind::AuthorizationPolicy, &bad));
        assert_eq!(got.len(), 2, "{got:?}");
    }

    #[test]
    fn service_patches_are_read_as_kubernetes_services() {
        let ok = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"},
            "spec": {"selector": {"app": null, "canary": "enabled"}}});
        assert!(validate_service(&ok).is_empty());
        let unknown = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"},
            "spec": {"selectr": {"canary": "enabled"}}});
        assert_eq!(
            messages(&validate_service(&unknown)),
            ["spec.selectr: unknown field"]
        );
        let wrong = json!({"apiVersion": "v1", "kind": "Service", "spec": {"selector": ["a"]}});
        assert!(
            messages(&validate_service(&wrong))[0].starts_with(": is not a Kubernetes Service")
        );
    }
}
