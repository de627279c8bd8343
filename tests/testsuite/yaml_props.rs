//! Property test of the gap.yaml edits: generated documents (indentation, sequence style,
//! flow or block collections, comments, quoting, line endings, other deployments), every
//! step's edit applied in order, each result re-parsed: its meaning is the input's plus
//! exactly the intended change, each edit is idempotent, and removing web-v1 gives back the
//! labelled file byte for byte.

use canary::yaml;

use crate::common::yaml_text;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const REPO: &str = "registry.example/my-service";
const TAG: &str = "sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f";

#[derive(Debug, Clone)]
struct Style {
    step: usize,
    indentless: bool,
    crlf: bool,
    marker: bool,
    comments: bool,
}

#[derive(Debug, Clone)]
struct Web {
    flow: bool,
    labels: Option<(bool, Vec<(String, String)>)>,
    ingress_flow: bool,
    command: (bool, Vec<String>),
    policy: Option<String>,
}

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "start",
        "/opt/docker/bin/start",
        "--port=8080",
        "true",
        "a b",
        "x: y",
        "it's",
        "1.5",
    ])
    .prop_map(str::to_string)
}

fn style() -> impl Strategy<Value = Style> {
    (
        prop::sample::select(vec![2usize, 4]),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(step, indentless, crlf, marker, comments)| Style {
            step,
            indentless,
            crlf,
            marker,
            comments,
        })
}

fn web() -> impl Strategy<Value = Web> {
    (
        any::<bool>(),
        prop::option::of((
            any::<bool>(),
            prop::collection::vec(
                (prop::sample::select(vec!["team", "tier", "owner"]), word()),
                1..3,
            ),
        )),
        any::<bool>(),
        (any::<bool>(), prop::collection::vec(word(), 1..4)),
        prop::option::of(prop::sample::select(vec!["other-team", "ops"])),
    )
        .prop_map(|(flow, labels, ingress_flow, command, policy)| Web {
            flow,
            labels: labels.map(|(f, mut l)| {
                l.sort();
                l.dedup_by(|a, b| a.0 == b.0);
                (f, l.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
            ingress_flow,
            command,
            policy: policy.map(str::to_string),
        })
}

/// A scalar as a person might write it: plain where YAML reads it back as the string.
fn q(s: &str) -> String {
    let plain = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/-=._".contains(c))
        && !s.starts_with('-')
        && !matches!(s, "true" | "1.5");
    if plain {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

fn flow_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
    )
}

fn render(style: &Style, web: &Web, workers: usize) -> String {
    let s = style.step;
    let pad = |n: usize| " ".repeat(n);
    let seq = |key_col: usize| {
        if style.indentless {
            key_col
        } else {
            key_col + s
        }
    };
    let mut out = Vec::new();
    if style.marker {
        out.push("---".to_string());
    }
    if style.comments {
        out.push("# generated gap.yaml".into());
    }
    out.push("name: my-service".into());
    out.push("deployments:".into());
    if style.comments {
        out.push(format!("{}# the web deployment", pad(s)));
    }
    if web.flow {
        let mut items = Vec::new();
        if let Some((_, labels)) = &web.labels {
            let l: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}: {}", q(v)))
                .collect();
            items.push(format!("podLabels: {{{}}}", l.join(", ")));
        }
        items.push("ingress: {enabled: true}".into());
        items.push(format!("command: {}", flow_list(&web.command.1)));
        out.push(format!("{}web: {{{}}}", pad(s), items.join(", ")));
    } else {
        let c = 2 * s;
        out.push(format!("{}web:", pad(s)));
        if let Some((flow, labels)) = &web.labels {
            if *flow {
                let l: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", q(v)))
                    .collect();
                out.push(format!("{}podLabels: {{{}}}", pad(c), l.join(", ")));
            } else {
                out.push(format!("{}podLabels:", pad(c)));
                for (k, v) in labels {
                    out.push(format!("{}{k}: {}", pad(c + s), q(v)));
                }
            }
        }
        if web.ingress_flow {
            out.push(format!("{}ingress: {{enabled: true}}", pad(c)));
        } else {
            out.push(format!("{}ingress:", pad(c)));
            out.push(format!(
                "{}enabled: true{}",
                pad(c + s),
                if style.comments {
                    "  # behind the ingress"
                } else {
                    ""
                }
            ));
        }
        if web.command.0 {
            out.push(format!("{}command: {}", pad(c), flow_list(&web.command.1)));
        } else {
            out.push(format!("{}command:", pad(c)));
            for w in &web.command.1 {
                out.push(format!("{}- {}", pad(seq(c)), q(w)));
            }
        }
        if let Some(ns) = &web.policy {
            let r = seq(c + s);
            out.push(format!("{}authorizationPolicy:", pad(c)));
            out.push(format!("{}rules:", pad(c + s)));
            out.push(format!("{}- from:", pad(r)));
            let f = seq(r + 2);
            out.push(format!("{}- source:", pad(f)));
            out.push(format!("{}principals:", pad(f + 2 + s)));
            let p = seq(f + 2 + s);
            out.push(format!("{}- namespace: {ns}", pad(p)));
            out.push(format!("{}serviceAccountName:", pad(p + 2)));
            out.push(format!("{}- caller", pad(seq(p + 2))));
        }
        if style.comments {
            out.push(format!("{}# end of web", pad(c)));
        }
    }
    for i in 0..workers {
        out.push(format!("{}worker-{i}:", pad(s)));
        out.push(format!("{}replicas: {i}", pad(2 * s)));
    }
    let eol = if style.crlf { "\r\n" } else { "\n" };
    out.iter().map(|l| format!("{l}{eol}")).collect()
}

/// serde-saphyr's own reading: the edits check their results with canary's reading, and this
/// test is to check that reading, not to trust it.
fn parse(text: &str) -> Value {
    let mut docs = serde_saphyr::from_multiple::<Value>(text).unwrap();
    assert_eq!(docs.len(), 1, "{text}");
    docs.remove(0)
}

/// Runs an edit, checks it is idempotent, and returns its result.
fn idempotent(text: &str, edit: impl Fn(&str) -> Result<String, yaml::YamlError>) -> String {
    let once = edit(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(edit(&once).unwrap(), once, "a second run changed the file");
    once
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 200,
        // Integration tests have no lib.rs beside them for the regression file to go to.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_edit_changes_exactly_what_it_means_to(style in style(), web in web(), workers in 0..3usize) {
        let input = render(&style, &web, workers);
        let meaning = parse(&input);

        // deploy-v1: the labels on web...
        let labelled = idempotent(&input, |t| {
            yaml_text::ensure_pod_labels(t, "web", &[("version", "v2"), ("canary", "enabled")])
        });
        let mut want = meaning.clone();
        let labels = want["deployments"]["web"]
            .as_object_mut()
            .unwrap()
            .entry("podLabels")
            .or_insert_with(|| json!({}));
        labels["version"] = json!("v2");
        labels["canary"] = json!("enabled");
        prop_assert_eq!(parse(&labelled), want.clone());

        // ...and the twin: web's labels with its own version, canary's keys, web's others.
        let twinned = idempotent(&labelled, |t| {
            yaml_text::ensure_twin_deployment(t, "web", "web-v1", &[("version", "v1"), ("canary", "enabled")], REPO, TAG)
        });
        let web_value = want["deployments"]["web"].clone();
        let mut twin = Map::new();
        let mut twin_labels = web_value["podLabels"].clone();
        twin_labels["version"] = json!("v1");
        twin.insert("podLabels".into(), twin_labels);
        twin.insert("ingress".into(), json!({"enabled": false}));
        twin.insert("image".into(), json!({"repository": REPO, "tag": TAG}));
        for (k, v) in web_value.as_object().unwrap() {
            if !["podLabels", "ingress", "image", "authorizationPolicy"].contains(&k.as_str()) {
                twin.insert(k.clone(), v.clone());
            }
        }
        want["deployments"]["web-v1"] = Value::Object(twin);
        prop_assert_eq!(parse(&twinned), want.clone());

        // add-routing: web's rules plus the ingress rule.
        let policed = idempotent(&twinned, |t| {
            yaml_text::ensure_ingress_authorization(t, "web", "web-v1", "ingress-nginx", "ingress-nginx")
        });
        let mut rules = web_value["authorizationPolicy"]["rules"].as_array().cloned().unwrap_or_default();
        rules.push(json!({"from": [{"source": {"principals": [
            {"namespace": "ingress-nginx", "serviceAccountName": ["ingress-nginx"]}]}}]}));
        want["deployments"]["web-v1"]["authorizationPolicy"] = json!({"rules": rules});
        prop_assert_eq!(parse(&policed), want);

        // cleanup-1: web-v1 goes, and the file is the labelled one again, byte for byte.
        prop_assert_eq!(yaml_text::remove_deployment(&policed, "web-v1").unwrap(), labelled.clone());

        // Every edit kept the input's bytes: line endings too.
        prop_assert_eq!(policed.contains("\r\n"), style.crlf);
        prop_assert!(!style.crlf || !policed.replace("\r\n", "").contains('\n'));
    }
}
