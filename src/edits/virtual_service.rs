//! Weight edits of the VirtualService patch file canary generates.
//!
//! A person may have commented or reformatted the file since, so
//! destinations are found by meaning (`destination.subset`) and edited in
//! place; every document's `spec.http[*].route` is considered.

use serde_json::Value;

use crate::yaml::YamlError;
use crate::yaml::cursor::Cursor;
use crate::yaml::emit::line;
use crate::yaml::splice::{dash_before, remove_lines, verify_all};
use crate::yaml::{Document, Node};

/// `(subset, weight)` of every route destination, in file order. A
/// destination without `weight` counts as 100 when it is its route's only one.
pub fn route_weights(doc: &Document) -> Result<Vec<(String, i64)>, YamlError> {
    let dests = destinations(doc.values())?;
    dests
        .iter()
        .map(|d| {
            let weight = match d.value.get("weight") {
                Some(w) => w.as_i64().ok_or_else(|| {
                    YamlError::Conflict(format!("{}.weight is {w}, not a whole number", d.path))
                })?,
                None if d.route_len == 1 => 100,
                None => return Err(YamlError::Missing(format!("{} has no weight", d.path))),
            };
            Ok((d.subset()?.to_string(), weight))
        })
        .collect()
}

/// Set the weight of every destination by its subset, in every route.
///
/// Every subset in the file must be listed, and every listed subset must be
/// in the file; comments on the `weight:` lines are kept. `None` when every weight already is
/// what is asked.
pub fn set_route_weights(
    doc: &Document,
    weights: &[(&str, u8)],
) -> Result<Option<Document>, YamlError> {
    let values = doc.values();
    let dests = destinations(values)?;
    let mut changes = Vec::new();
    for (i, d) in dests.iter().enumerate() {
        let subset = d.subset()?;
        let Some(&(_, weight)) = weights.iter().find(|(s, _)| *s == subset) else {
            let listed: Vec<&str> = weights.iter().map(|(s, _)| *s).collect();
            return Err(YamlError::Conflict(format!(
                "{} routes to subset {}, which is not among the subsets canary sets ({})",
                d.path,
                Value::from(subset),
                listed.join(", ")
            )));
        };
        if d.value.get("weight") != Some(&Value::from(weight)) {
            changes.push((i, weight));
        }
    }
    if let Some((absent, _)) = weights
        .iter()
        .find(|(s, _)| !dests.iter().any(|d| d.subset().is_ok_and(|x| x == *s)))
    {
        return Err(YamlError::Missing(format!(
            "no route destination with subset {}",
            Value::from(*absent)
        )));
    }
    if changes.is_empty() {
        return Ok(None);
    }

    let written = written(doc)?;
    let cursor = Cursor::new(doc);
    let mut expected = values.to_vec();
    let mut splices = Vec::new();
    for (i, weight) in changes {
        let (d, w) = (&dests[i], written[i]);
        expected[d.doc]["spec"]["http"][d.http]["route"][d.route]["weight"] = Value::from(weight);
        splices.push(match w.get("weight") {
            Some(e) => cursor
                .set_scalar(&e.value, &Value::from(weight))
                .ok_or_else(|| {
                    doc.unsupported(
                        e.key_start,
                        format!("{}.weight is not a one-line scalar", d.path),
                    )
                })?,
            None => cursor.insert_after(
                w.end.saturating_sub(1).max(w.start),
                &[line(cursor.col(w.start), format!("weight: {weight}"))],
            ),
        });
    }
    verify_all(doc, splices, &expected).map(Some)
}

/// Remove the destinations routing to `subset` (their whole sequence
/// items) from every route. `None` when there are none.
pub fn remove_subset_destination(
    doc: &Document,
    subset: &str,
) -> Result<Option<Document>, YamlError> {
    let values = doc.values();
    let dests = destinations(values)?;
    let doomed: Vec<usize> = (0..dests.len())
        .filter(|&i| dests[i].subset().is_ok_and(|s| s == subset))
        .collect();
    if doomed.is_empty() {
        return Ok(None);
    }
    for &i in &doomed {
        let d = &dests[i];
        let same_route = |j: &&usize| dests[**j].doc == d.doc && dests[**j].http == d.http;
        if doomed.iter().filter(same_route).count() == d.route_len {
            return Err(YamlError::Conflict(format!(
                "removing subset {} would leave {} without destinations",
                Value::from(subset),
                d.route_path()
            )));
        }
    }

    let written = written(doc)?;
    let text = doc.text();
    let mut expected = values.to_vec();
    let mut splices = Vec::new();
    for &i in doomed.iter().rev() {
        let d = &dests[i];
        if let Some(route) = expected[d.doc]["spec"]["http"][d.http]["route"].as_array_mut() {
            route.remove(d.route);
        }
        let item = written[i];
        splices.push(remove_lines(
            text,
            dash_before(text, item.start),
            item.end.saturating_sub(1).max(item.start),
        ));
    }
    verify_all(doc, splices, &expected).map(Some)
}

/// A route destination as parsed: where it is and what it says.
struct Dest<'v> {
    doc: usize,
    http: usize,
    route: usize,
    /// `spec.http[h].route[r]`, prefixed by the document when there are several.
    path: String,
    route_len: usize,
    value: &'v Value,
}

impl Dest<'_> {
    fn subset(&self) -> Result<&str, YamlError> {
        self.value
            .pointer("/destination/subset")
            .and_then(Value::as_str)
            .ok_or_else(|| YamlError::Missing(format!("{} has no destination.subset", self.path)))
    }

    fn route_path(&self) -> String {
        self.path
            .rsplit_once('[')
            .map_or_else(|| self.path.clone(), |(p, _)| p.to_string())
    }
}

/// Every destination of every `spec.http[*].route`, in file order.
fn destinations(values: &[Value]) -> Result<Vec<Dest<'_>>, YamlError> {
    let mut out = Vec::new();
    for (doc, value) in values.iter().enumerate() {
        let prefix = if values.len() > 1 {
            format!("document {}: ", doc + 1)
        } else {
            String::new()
        };
        let http = value.pointer("/spec/http").and_then(Value::as_array);
        for (h, item) in http.into_iter().flatten().enumerate() {
            let Some(route) = item.get("route").and_then(Value::as_array) else {
                continue;
            };
            for (i, dest) in route.iter().enumerate() {
                out.push(Dest {
                    doc,
                    http: h,
                    route: i,
                    path: format!("{prefix}spec.http[{h}].route[{i}]"),
                    route_len: route.len(),
                    value: dest,
                });
            }
        }
    }
    if out.is_empty() {
        return Err(YamlError::Missing(
            "no spec.http[*].route destinations in the VirtualService".into(),
        ));
    }
    Ok(out)
}

/// The destinations as written, in the same order as [`destinations`]: each a block mapping
/// in a block sequence, so that a line can be edited or removed.
fn written(doc: &Document) -> Result<Vec<&Node>, YamlError> {
    let mut out = Vec::new();
    for (root, value) in doc.roots().iter().zip(doc.values()) {
        let Some(http) = value.pointer("/spec/http").and_then(Value::as_array) else {
            continue;
        };
        let has_route = |h: &Value| {
            h.get("route")
                .and_then(Value::as_array)
                .is_some_and(|r| !r.is_empty())
        };
        if !http.iter().any(has_route) {
            continue;
        }
        let items = block_at(doc, root, &["spec", "http"])?;
        for (item, h) in items.iter().zip(http) {
            if !has_route(h) {
                continue;
            }
            for dest in block_at(doc, item, &["route"])? {
                if dest.flow || dest.has_props() || dest.entries().is_none() {
                    return Err(doc.unsupported(
                        dest.start,
                        "a route destination canary edits must be a block mapping",
                    ));
                }
                out.push(dest);
            }
        }
    }
    Ok(out)
}

/// The items of the block sequence at `keys` below `node`.
fn block_at<'d>(
    doc: &Document,
    mut node: &'d Node,
    keys: &[&str],
) -> Result<&'d [Node], YamlError> {
    let mut at = node.start;
    for key in keys {
        let e = node
            .get(key)
            .ok_or_else(|| doc.unsupported(at, format!("`{key}` is not a plain block key here")))?;
        at = e.key_start;
        node = &e.value;
        if node.flow {
            return Err(doc.unsupported(at,
                format!(
                    "{key} is written in flow style ({{...}} or [...]); canary edits only block-style YAML"
                ),
            ));
        }
        if node.has_props() {
            return Err(doc.unsupported(
                at,
                format!("{key} uses an anchor, tag or alias, which canary does not edit"),
            ));
        }
    }
    node.items()
        .ok_or_else(|| doc.unsupported(at, format!("{} is not a block sequence", keys.join("."))))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The edits on text, as the tests below were written.
    fn route_weights(text: &str) -> Result<Vec<(String, i64)>, YamlError> {
        super::route_weights(&Document::parse(text)?)
    }

    fn set_route_weights(text: &str, weights: &[(&str, u8)]) -> Result<String, YamlError> {
        let doc = Document::parse(text)?;
        Ok(super::set_route_weights(&doc, weights)?
            .map_or_else(|| text.to_string(), Document::into_text))
    }

    fn remove_subset_destination(text: &str, subset: &str) -> Result<String, YamlError> {
        let doc = Document::parse(text)?;
        Ok(super::remove_subset_destination(&doc, subset)?
            .map_or_else(|| text.to_string(), Document::into_text))
    }

    const SEED: &str = "\
# gap/production/gap_patch_canary_virtual_service.yaml
---
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: relational-data-access--web
spec:
  hosts:
    - my-service.gservice.emarsys.net
    - my-service-web.relational-data.svc.cluster.local
  http:
    - route:
        - destination:
            host: my-service-web.relational-data.svc.cluster.local
            subset: v1 # this refers to the names in the destination rule
          weight: 0
        - destination:
            host: my-service-web.relational-data.svc.cluster.local
            subset: v2 # this refers to the names in the destination rule
          weight: 100
";

    fn pairs(list: &[(&str, i64)]) -> Vec<(String, i64)> {
        list.iter().map(|(s, w)| ((*s).to_string(), *w)).collect()
    }

    #[test]
    fn reads_weights() {
        assert_eq!(
            route_weights(SEED).unwrap(),
            pairs(&[("v1", 0), ("v2", 100)])
        );
    }

    #[test]
    fn sets_weights_in_place() {
        let out = set_route_weights(SEED, &[("v1", 10), ("v2", 90)]).unwrap();
        assert_eq!(
            out,
            SEED.replace("weight: 0\n", "weight: 10\n")
                .replace("weight: 100\n", "weight: 90\n")
        );
        assert_eq!(
            set_route_weights(&out, &[("v2", 90), ("v1", 10)]).unwrap(),
            out
        );
        assert_eq!(
            route_weights(&out).unwrap(),
            pairs(&[("v1", 10), ("v2", 90)])
        );
        assert_eq!(
            set_route_weights(SEED, &[("v1", 0), ("v2", 100)]).unwrap(),
            SEED
        );
    }

    #[test]
    fn keeps_comments_and_crlf() {
        let text = SEED
            .replace("weight: 0\n", "weight: 0 # note\n")
            .replace(
                "      - route:\n",
                "      # default route\n      - route:\n",
            )
            .replace('\n', "\r\n");
        let out = set_route_weights(&text, &[("v1", 100), ("v2", 0)]).unwrap();
        assert_eq!(
            out,
            text.replace("weight: 0 # note", "weight: 100 # note")
                .replace("weight: 100\r\n", "weight: 0\r\n")
        );
        assert_eq!(
            set_route_weights(&out, &[("v1", 100), ("v2", 0)]).unwrap(),
            out
        );
    }

    #[test]
    fn removes_a_destination() {
        let out = remove_subset_destination(SEED, "v1").unwrap();
        let removed = "        - destination:
            host: my-service-web.relational-data.svc.cluster.local
            subset: v1 # this refers to the names in the destination rule
          weight: 0
";
        assert_eq!(out, SEED.replace(removed, ""));
        assert_eq!(remove_subset_destination(&out, "v1").unwrap(), out);
        assert_eq!(route_weights(&out).unwrap(), pairs(&[("v2", 100)]));
        let err = remove_subset_destination(&out, "v2").unwrap_err();
        assert_eq!(
            err.to_string(),
            "removing subset \"v2\" would leave spec.http[0].route without destinations"
        );
    }

    const REFORMATTED: &str = "\
spec:
    http:
    -   match:
        -   uri:
                prefix: /api
        route:
        -   destination:
                subset: v2
            weight: 100   # all traffic
        # the canary
        -
            destination: {host: h, subset: v1}
            weight: 0
    -   route:
        -   destination:
                subset: v1
        -   destination:
                subset: v2 # no weight yet
";

    #[test]
    fn reformatted_file_with_several_routes() {
        let err = route_weights(REFORMATTED).unwrap_err();
        assert_eq!(err.to_string(), "spec.http[1].route[0] has no weight");
        let out = set_route_weights(REFORMATTED, &[("v1", 5), ("v2", 95)]).unwrap();
        assert_eq!(
            out,
            "\
spec:
    http:
    -   match:
        -   uri:
                prefix: /api
        route:
        -   destination:
                subset: v2
            weight: 95   # all traffic
        # the canary
        -
            destination: {host: h, subset: v1}
            weight: 5
    -   route:
        -   destination:
                subset: v1
            weight: 5
        -   destination:
                subset: v2 # no weight yet
            weight: 95
"
        );
        assert_eq!(
            set_route_weights(&out, &[("v1", 5), ("v2", 95)]).unwrap(),
            out
        );
        assert_eq!(
            route_weights(&out).unwrap(),
            pairs(&[("v2", 95), ("v1", 5), ("v1", 5), ("v2", 95)])
        );

        let removed = remove_subset_destination(&out, "v1").unwrap();
        assert_eq!(
            removed,
            "\
spec:
    http:
    -   match:
        -   uri:
                prefix: /api
        route:
        -   destination:
                subset: v2
            weight: 95   # all traffic
        # the canary
    -   route:
        -   destination:
                subset: v2 # no weight yet
            weight: 95
"
        );
        assert_eq!(remove_subset_destination(&removed, "v1").unwrap(), removed);
    }

    #[test]
    fn single_destination_without_weight_has_all_traffic() {
        let text = "spec:\n  http:\n    - route:\n        - destination:\n            subset: v2\n";
        assert_eq!(route_weights(text).unwrap(), pairs(&[("v2", 100)]));
    }

    #[test]
    fn subsets_must_match() {
        let err = set_route_weights(SEED, &[("v2", 100)]).unwrap_err();
        assert!(matches!(err, YamlError::Conflict(_)), "{err}");
        assert_eq!(
            err.to_string(),
            "spec.http[0].route[0] routes to subset \"v1\", which is not among the subsets canary sets (v2)"
        );
        let err = set_route_weights(SEED, &[("v1", 0), ("v2", 50), ("v3", 50)]).unwrap_err();
        assert!(matches!(err, YamlError::Missing(_)), "{err}");
        assert_eq!(err.to_string(), "no route destination with subset \"v3\"");
        let err = route_weights("kind: VirtualService\nspec:\n  hosts: [a]\n").unwrap_err();
        assert!(matches!(err, YamlError::Missing(_)), "{err}");
    }

    #[test]
    fn flow_style_route_is_unsupported() {
        let text = "spec:\n  http:\n    - route: [{destination: {subset: v1}, weight: 0}, {destination: {subset: v2}, weight: 100}]\n";
        assert_eq!(
            route_weights(text).unwrap(),
            pairs(&[("v1", 0), ("v2", 100)])
        );
        assert_eq!(
            set_route_weights(text, &[("v1", 0), ("v2", 100)]).unwrap(),
            text
        );
        let err = set_route_weights(text, &[("v1", 1), ("v2", 99)]).unwrap_err();
        assert!(
            matches!(err, YamlError::Unsupported { line: 3, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("flow style"), "{err}");
    }

    #[test]
    fn several_documents() {
        let text = format!("{SEED}---\napiVersion: v1\nkind: ConfigMap\ndata:\n  a: b\n");
        let out = set_route_weights(&text, &[("v1", 50), ("v2", 50)]).unwrap();
        assert_eq!(
            out,
            text.replace("weight: 0\n", "weight: 50\n")
                .replace("weight: 100\n", "weight: 50\n")
        );
    }

    #[test]
    fn not_yaml() {
        let err = set_route_weights("spec: [\n", &[("v1", 1)]).unwrap_err();
        assert!(matches!(err, YamlError::Parse(_)), "{err}");
    }
}
