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

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

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
            IstioKind::DestinationRule => include_str!("../../schemas/istio/destinationrule.json"),
            IstioKind::VirtualService => include_str!("../../schemas/istio/virtualservice.json"),
            IstioKind::AuthorizationPolicy => {
                include_str!("../../schemas/istio/authorizationpolicy.json")
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
        crd.versions
            .keys()
            .map(|v| format!("{}/{v}", crd.group))
            .collect()
    }
}

/// One CRD: its group and the schema of each served version.
struct Crd {
    group: String,
    versions: BTreeMap<String, ServedVersion>,
}

/// A served version's schema, kept as its text until a file of that version is checked: a
/// CRD's versions are nearly the same schema, and building all of them cost more than the rest
/// of a step.
struct ServedVersion {
    text: &'static RawValue,
    schema: OnceLock<Value>,
}

impl ServedVersion {
    fn schema(&self) -> &Value {
        self.schema.get_or_init(|| {
            serde_json::from_str(self.text.get()).expect("an embedded schema parses")
        })
    }
}

/// The parts of a CRD document canary reads; serde skips the rest without building it.
#[derive(Deserialize)]
struct CrdDocument<'a> {
    #[serde(borrow)]
    spec: CrdSpec<'a>,
}

#[derive(Deserialize)]
struct CrdSpec<'a> {
    group: String,
    #[serde(borrow)]
    versions: Vec<CrdVersion<'a>>,
}

#[derive(Deserialize)]
struct CrdVersion<'a> {
    name: String,
    #[serde(default)]
    served: bool,
    #[serde(borrow)]
    schema: CrdSchema<'a>,
}

#[derive(Deserialize)]
struct CrdSchema<'a> {
    #[serde(rename = "openAPIV3Schema", borrow)]
    open_api_v3: &'a RawValue,
}

impl Crd {
    /// The embedded files are part of the build: failing to read one is a bug, caught by the
    /// unit tests below before any release.
    fn parse(text: &'static str) -> Crd {
        let doc: CrdDocument<'static> = serde_json::from_str(text).expect("embedded CRD parses");
        let versions = doc
            .spec
            .versions
            .into_iter()
            .filter(|v| v.served)
            .map(|v| {
                let version = ServedVersion {
                    text: v.schema.open_api_v3,
                    schema: OnceLock::new(),
                };
                (v.name, version)
            })
            .collect();
        Crd {
            group: doc.spec.group,
            versions,
        }
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
    match version.and_then(|v| crd.versions.get(v)) {
        Some(version) => {
            let schema = version.schema();
            // The API server adds apiVersion, kind and metadata to every CRD's schema.
            let mut out = Vec::new();
            let mut rest = object.clone();
            if let Some(map) = rest.as_object_mut() {
                for implicit in ["apiVersion", "kind", "metadata"] {
                    map.remove(implicit);
                }
            }
            if !object["metadata"]["name"].is_string() {
                violation(&[Seg::Key("metadata".into())], "has no name", &mut out);
            }
            validate(schema, &rest, &mut Vec::new(), &mut out);
            out
        }
        None => vec![Violation {
            path: vec![Seg::Key("apiVersion".into())],
            message: format!(
                "apiVersion {api_version:?} is not served for {kind:?}; use one of {}",
                kind.api_versions().join(", ")
            ),
        }],
    }
}

/// Validate one value (`spec`, say) against the named property of a served version's schema:
/// for a gap.yaml `authorizationPolicy`, which gap turns into an AuthorizationPolicy's spec.
pub fn validate_istio_spec(kind: IstioKind, spec: &Value) -> Vec<Violation> {
    let crd = kind.crd();
    let schema = crd
        .versions
        .values()
        .next_back()
        .map(|v| &v.schema()["properties"]["spec"])
        .expect("a CRD serves a version");
    let mut out = Vec::new();
    validate(schema, spec, &mut Vec::new(), &mut out);
    out
}

fn violation(path: &[Seg], message: impl Into<String>, out: &mut Vec<Violation>) {
    out.push(Violation {
        path: path.to_vec(),
        message: message.into(),
    });
}

fn validate(schema: &Value, value: &Value, path: &mut Vec<Seg>, out: &mut Vec<Violation>) {
    if value.is_null() {
        if schema["nullable"] != true && schema.get("type").is_some() {
            violation(path, "must not be null", out);
        }
        return;
    }
    let int_or_string = schema["x-kubernetes-int-or-string"] == true;
    if let Some(ty) = schema["type"].as_str() {
        let fits = match ty {
            _ if int_or_string => value.is_i64() || value.is_u64() || value.is_string(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !fits {
            let what = if int_or_string {
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
    if let Some(allowed) = schema["enum"].as_array()
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
            bound(
                schema,
                "minItems",
                "maxItems",
                items.len(),
                "items",
                path,
                out,
            );
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    validate(item_schema, item, path, out);
                    path.pop();
                }
            }
        }
        Value::Object(map) => object(schema, map, path, out),
        Value::Bool(_) | Value::Null => {}
    }
    combinators(schema, value, path, out);
}

fn string(schema: &Value, s: &str, path: &[Seg], out: &mut Vec<Violation>) {
    bound(
        schema,
        "minLength",
        "maxLength",
        s.chars().count(),
        "characters",
        path,
        out,
    );
    if let Some(pattern) = schema["pattern"].as_str()
        && let Ok(re) = regex::Regex::new(pattern)
        && !re.is_match(s)
    {
        violation(path, format!("{s:?} does not match {pattern:?}"), out);
    }
}

fn number(schema: &Value, n: f64, path: &[Seg], out: &mut Vec<Violation>) {
    if let Some(min) = schema["minimum"].as_f64() {
        let exclusive = schema["exclusiveMinimum"] == true;
        if n < min || (exclusive && n == min) {
            violation(path, format!("{n} is below the minimum {min}"), out);
        }
    }
    if let Some(max) = schema["maximum"].as_f64() {
        let exclusive = schema["exclusiveMaximum"] == true;
        if n > max || (exclusive && n == max) {
            violation(path, format!("{n} is above the maximum {max}"), out);
        }
    }
}

fn bound(
    schema: &Value,
    min: &str,
    max: &str,
    len: usize,
    unit: &str,
    path: &[Seg],
    out: &mut Vec<Violation>,
) {
    let limit = |key: &str| schema[key].as_u64().and_then(|n| usize::try_from(n).ok());
    if let Some(min) = limit(min)
        && len < min
    {
        violation(path, format!("has {len} {unit}, fewer than {min}"), out);
    }
    if let Some(max) = limit(max)
        && len > max
    {
        violation(path, format!("has {len} {unit}, more than {max}"), out);
    }
}

fn object(
    schema: &Value,
    map: &serde_json::Map<String, Value>,
    path: &mut Vec<Seg>,
    out: &mut Vec<Violation>,
) {
    bound(
        schema,
        "minProperties",
        "maxProperties",
        map.len(),
        "fields",
        path,
        out,
    );
    for key in schema["required"].as_array().into_iter().flatten() {
        if let Some(key) = key.as_str()
            && !map.contains_key(key)
        {
            violation(path, format!("the required field {key:?} is missing"), out);
        }
    }
    let properties = schema["properties"].as_object();
    let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    // A schema that only constrains (inside oneOf, say) names no type and no fields.
    let typed = schema["type"] == "object";
    for (key, child) in map {
        path.push(Seg::Key(key.clone()));
        match (properties.and_then(|p| p.get(key)), additional) {
            (Some(child_schema), _) | (None, Some(child_schema)) => {
                validate(child_schema, child, path, out)
            }
            (None, None) if typed && !preserve => violation(path, "unknown field", out),
            (None, None) => {}
        }
        path.pop();
    }
}

/// `oneOf`, `anyOf`, `allOf` and `not`, as the Istio schemas use them to make fields mutually
/// exclusive. Only whether a branch matches counts here, not what failed inside it.
fn combinators(schema: &Value, value: &Value, path: &mut Vec<Seg>, out: &mut Vec<Violation>) {
    let here = path.clone();
    let matches = |branch: &Value| {
        let mut inner = Vec::new();
        validate(branch, value, &mut here.clone(), &mut inner);
        inner.is_empty()
    };
    if let Some(branches) = schema["oneOf"].as_array() {
        let n = branches.iter().filter(|b| matches(b)).count();
        if n != 1 {
            violation(
                path,
                format!("must match exactly one of its alternatives (oneOf), matches {n}"),
                out,
            );
        }
    }
    if let Some(branches) = schema["anyOf"].as_array()
        && !branches.iter().any(matches)
    {
        violation(path, "matches none of its alternatives (anyOf)", out);
    }
    for branch in schema["allOf"].as_array().into_iter().flatten() {
        validate(branch, value, path, out);
    }
    if let Some(not) = schema.get("not")
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
