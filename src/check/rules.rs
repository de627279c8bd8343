//! The cross-references between canary's objects: what Istio and Kubernetes do not check
//! when each object is applied alone, but what decides whether traffic reaches the right pods.
//!
//! Pods are matched the way gap labels them: a deployment `D` of service `S` runs pods with
//! its `podLabels`, plus `app: S-D` and `applicationName: S`.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::schema::{self, IstioKind};
use super::{Code, Findings, Loaded, Object, Scope};
use crate::settings::{INGRESS_NAMESPACE, INGRESS_SERVICE_ACCOUNT, Switch, Version, WEB, WEB_V1};
use crate::workflow::Method;
use crate::yaml::Seg;

type Labels = BTreeMap<String, String>;

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

pub(super) fn cross_references(l: &Loaded, scope: &Scope, out: &mut Findings) {
    let pods = l
        .gap
        .as_ref()
        .map(|gap| pods(gap, scope))
        .unwrap_or_default();
    let defined = subsets(l.destination_rule.as_ref());
    let mut named: Vec<String> = Vec::new();
    let dr_host = l
        .destination_rule
        .as_ref()
        .and_then(|dr| dr.value()["spec"]["host"].as_str());
    let host = scope.cluster_host();

    if let Some(dr) = &l.destination_rule
        && let Some(got) = dr_host
    {
        let ok = match &host {
            Some(want) => got == want,
            None => got
                .strip_prefix(&format!("{}.", scope.service_name()))
                .is_some_and(|rest| rest.ends_with(".svc.cluster.local")),
        };
        if !ok {
            let want = host
                .clone()
                .unwrap_or_else(|| format!("{}.NAMESPACE.svc.cluster.local", scope.service_name()));
            out.at(
                Code::DestinationRuleHost,
                dr,
                &[key("spec"), key("host")],
                format!(
                    "the DestinationRule's host is {got}, not the Service's in-cluster name {want}"
                ),
            );
        }
    }

    for (env, object) in &l.routes {
        let Some(vs) = object else { continue };
        for (h, http) in vs.value()["spec"]["http"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(route) = http["route"].as_array() else {
                continue;
            };
            let route_path = [key("spec"), key("http"), Seg::Index(h), key("route")];
            weights(vs, env, &route_path, route, out);
            for (r, dest) in route.iter().enumerate() {
                let at = |k: &str| {
                    let mut p = route_path.to_vec();
                    p.extend([Seg::Index(r), key("destination"), key(k)]);
                    p
                };
                if let Some(subset) = dest["destination"]["subset"].as_str() {
                    named.push(subset.to_string());
                    if !defined.iter().any(|(name, _, _)| name == subset) {
                        let why = match &l.destination_rule {
                            Some(dr) => format!("{} does not define it", dr.path),
                            None => "there is no DestinationRule".into(),
                        };
                        out.at(
                            Code::UndefinedSubset,
                            vs,
                            &at("subset"),
                            format!("{env}'s route names subset {subset}, but {why}"),
                        );
                    }
                }
                let want = dr_host.map(str::to_string).or_else(|| host.clone());
                if let (Some(got), Some(want)) = (dest["destination"]["host"].as_str(), want)
                    && got != want
                {
                    out.at(
                        Code::RouteHost,
                        vs,
                        &at("host"),
                        format!("{env}'s route goes to host {got}, not {want}"),
                    );
                }
            }
        }
    }

    hosts_of_one_environment(l, out);

    if let Some(dr) = &l.destination_rule {
        for (name, labels, i) in &defined {
            let selected: Vec<&str> = pods
                .iter()
                .filter(|(_, p)| selects(labels, p))
                .map(|(d, _)| d.as_str())
                .collect();
            let path = [key("spec"), key("subsets"), Seg::Index(*i), key("labels")];
            if selected.len() > 1 {
                out.at(
                    Code::SubsetSelection,
                    dr,
                    &path,
                    format!(
                        "subset {name} selects the pods of {} deployments ({}); it must select one",
                        selected.len(),
                        selected.join(", ")
                    ),
                );
            } else if selected.is_empty() && named.iter().any(|n| n == name) {
                out.at(
                    Code::SubsetSelection,
                    dr,
                    &path,
                    format!("subset {name} selects no deployment's pods, yet a route names it"),
                );
            }
        }
    }

    if let Some(patch) = &l.service_patch {
        service_selector(patch, scope, &pods, out);
    }
    if let Some(gap) = &l.gap {
        twin(gap, scope, named.iter().any(|n| n == "v1"), out);
    }
}

/// Every deployment's pod labels, as gap sets them.
fn pods(gap: &Object, scope: &Scope) -> BTreeMap<String, Labels> {
    let Some(deployments) = gap.value()["deployments"].as_object() else {
        return BTreeMap::new();
    };
    deployments
        .iter()
        .map(|(name, d)| {
            let mut labels: Labels = d["podLabels"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), scalar_text(v)))
                .collect();
            labels.insert("app".into(), format!("{}-{name}", scope.service));
            labels.insert("applicationName".into(), scope.service.clone());
            (name.clone(), labels)
        })
        .collect()
}

fn scalar_text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn selects(selector: &Labels, pod: &Labels) -> bool {
    selector.iter().all(|(k, v)| pod.get(k) == Some(v))
}

/// The DestinationRule's subsets: name, labels and index.
fn subsets(dr: Option<&Object>) -> Vec<(String, Labels, usize)> {
    let Some(dr) = dr else { return Vec::new() };
    dr.value()["spec"]["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, s)| {
            let labels = s["labels"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), scalar_text(v)))
                .collect();
            Some((s["name"].as_str()?.to_string(), labels, i))
        })
        .collect()
}

/// A public host belongs to one environment: listed by two environments' VirtualService
/// patches, each environment's routes would claim the other's traffic (production's weights
/// applied to staging's host). The in-cluster host is every environment's own, in its cluster.
fn hosts_of_one_environment(l: &Loaded, out: &mut Findings) {
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (env, object) in &l.routes {
        let Some(vs) = object else { continue };
        let hosts = vs.value()["spec"]["hosts"].as_array().into_iter().flatten();
        for (i, host) in hosts.enumerate() {
            let Some(host) = host.as_str() else { continue };
            if host.ends_with(".svc.cluster.local") {
                continue;
            }
            match seen.iter().find(|(h, e)| *h == host && e != env) {
                Some((_, other)) => out.at(
                    Code::HostOfTwo,
                    vs,
                    &[key("spec"), key("hosts"), Seg::Index(i)],
                    format!(
                        "{env}'s VirtualService patch lists host {host}, which {other}'s lists \
                         too: a host belongs to one environment, or {env}'s weights would \
                         route {other}'s traffic"
                    ),
                ),
                None => seen.push((host, env)),
            }
        }
    }
}

/// Whole numbers from 0 to 100 that add up to 100 in every route.
fn weights(vs: &Object, env: &str, route_path: &[Seg], route: &[Value], out: &mut Findings) {
    let mut sum = 0;
    for (r, dest) in route.iter().enumerate() {
        let mut path = route_path.to_vec();
        path.extend([Seg::Index(r), key("weight")]);
        match &dest["weight"] {
            Value::Null if route.len() == 1 => sum += 100,
            Value::Null => out.at(
                Code::Weights,
                vs,
                &path[..path.len() - 1],
                format!("a destination of {env}'s route has no weight, beside others"),
            ),
            w => match w.as_i64().filter(|w| (0..=100).contains(w)) {
                Some(w) => sum += w,
                None => out.at(
                    Code::Weights,
                    vs,
                    &path,
                    format!("weight {w} in {env}'s route is not a whole number from 0 to 100"),
                ),
            },
        }
    }
    if sum != 100 {
        out.at(
            Code::Weights,
            vs,
            route_path,
            format!("the weights of {env}'s route add up to {sum}, not 100"),
        );
    }
}

/// The Service's selector once the patch is applied to gap's own (`app: S-web`) must select
/// exactly web and web-v1.
fn service_selector(
    patch: &Object,
    scope: &Scope,
    pods: &BTreeMap<String, Labels>,
    out: &mut Findings,
) {
    let name_path = [key("metadata"), key("name")];
    let name = &patch.value()["metadata"]["name"];
    if name != scope.service_name().as_str() {
        out.at(
            Code::Identity,
            patch,
            &name_path,
            format!(
                "patches the Service {name}, not the web Service {}",
                scope.service_name()
            ),
        );
    }
    let mut selector = Labels::from([("app".to_string(), scope.service_name())]);
    for (k, v) in patch.value()["spec"]["selector"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if v.is_null() {
            selector.remove(k);
        } else {
            selector.insert(k.clone(), scalar_text(v));
        }
    }
    let selected: Vec<&str> = pods
        .iter()
        .filter(|(_, p)| selects(&selector, p))
        .map(|(d, _)| d.as_str())
        .collect();
    if selected != [WEB, WEB_V1] && selected != [WEB_V1, WEB] {
        let shown = if selected.is_empty() {
            "no deployment".to_string()
        } else {
            selected.join(", ")
        };
        out.at(
            Code::ServiceSelector,
            patch,
            &[key("spec"), key("selector")],
            format!(
                "the patched Service selects {shown}; it must select exactly {WEB} and {WEB_V1}"
            ),
        );
    }
}

/// web-v1 in gap.yaml: pinned by digest (succession) or web's twin but for the switch
/// (coexistence), and admitting what web admits plus the ingress.
fn twin(gap: &Object, scope: &Scope, v1_routed: bool, out: &mut Findings) {
    let deployments = &gap.value()["deployments"];
    let twin = &deployments[WEB_V1];
    if twin.is_null() {
        return;
    }
    match scope.method {
        Method::Succession => pinned(gap, twin, out),
        Method::Coexistence => coexisting(gap, scope.switch.as_ref(), out),
    }
    policy(gap, twin, v1_routed, out);
}

/// Coexistence: web-v1 is web, one image, but for the switch (v1 in web-v1, v1 or v2 in web),
/// its labels, ingress and policy: the seed's warning is that the two diverge.
fn coexisting(gap: &Object, switch: Option<&Switch>, out: &mut Findings) {
    let deployments = &gap.value()["deployments"];
    let (web, twin) = (&deployments[WEB], &deployments[WEB_V1]);
    let mut shared = [web.clone(), twin.clone()];
    for dep in &mut shared {
        let Some(m) = dep.as_object_mut() else { return };
        for own in ["podLabels", "ingress", "authorizationPolicy"] {
            m.remove(own);
        }
        match switch {
            Some(switch) => switch.strip(dep),
            // Without the journal the switch is unknown: env and command may hold it.
            None => {
                m.remove("env");
                m.remove("command");
            }
        }
    }
    let [web_shared, twin_shared] = &shared;
    let mut keys: Vec<&String> = web_shared
        .as_object()
        .into_iter()
        .chain(twin_shared.as_object())
        .flat_map(|m| m.keys())
        .collect();
    keys.sort();
    keys.dedup();
    if let Some(k) = keys
        .into_iter()
        .find(|k| web_shared.get(k) != twin_shared.get(k))
    {
        let path = match twin.get(k.as_str()) {
            Some(_) => vec![key("deployments"), key(WEB_V1), key(k)],
            None => vec![key("deployments"), key(WEB_V1)],
        };
        let what = if k == "image" {
            "runs another image than web".to_string()
        } else {
            format!("differs from web in {k}")
        };
        out.at(
            Code::TwinDiverges,
            gap,
            &path,
            format!(
                "{WEB_V1} {what}: in coexistence the two are one image and differ only in the \
                 switch, so make web-v1's {k} what web's is (a change to v1 goes into v2 too)"
            ),
        );
    }
    let Some(switch) = switch else { return };
    let (v1, v2) = (switch.value(Version::V1), switch.value(Version::V2));
    let place = |dep: &str| match switch {
        Switch::Env { .. } => vec![key("deployments"), key(dep), key("env")],
        Switch::Arg { .. } => vec![key("deployments"), key(dep), key("command")],
    };
    let read = |dep: &Value| {
        switch
            .read(dep)
            .map_or("none".to_string(), |v| format!("{v:?}"))
    };
    if switch.read(twin) != Some(v1) {
        out.at(
            Code::SwitchValue,
            gap,
            &place(WEB_V1),
            format!(
                "{WEB_V1}'s switch ({switch}) is {}, not the v1 value {v1:?}: web-v1 must serve v1",
                read(twin)
            ),
        );
    }
    if !matches!(switch.read(web), Some(v) if v == v1 || v == v2) {
        out.at(
            Code::SwitchValue,
            gap,
            &place(WEB),
            format!(
                "{WEB}'s switch ({switch}) is {}, neither {v1:?} nor {v2:?}",
                read(web)
            ),
        );
    }
}

/// Succession: web-v1 stays the last v1 build, pinned by digest.
fn pinned(gap: &Object, twin: &Value, out: &mut Findings) {
    let dep = |k: &str| vec![key("deployments"), key(WEB_V1), key(k)];
    let tag = twin["image"]["tag"].as_str().unwrap_or_default();
    let pinned = tag
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if !pinned || twin["image"]["repository"].as_str().is_none() {
        let mut path = dep("image");
        path.push(key("tag"));
        out.at(
            Code::V1Image,
            gap,
            &path,
            format!("{WEB_V1}'s image tag is {tag:?}, not a sha256 digest: v1 must stay the last v1 build"),
        );
    }
}

/// web-v1's authorizationPolicy: web's, plus the ingress controller.
fn policy(gap: &Object, twin: &Value, v1_routed: bool, out: &mut Findings) {
    let dep = |k: &str| vec![key("deployments"), key(WEB_V1), key(k)];
    let deployments = &gap.value()["deployments"];

    let policy_path = dep("authorizationPolicy");
    let Some(policy) = twin.get("authorizationPolicy").filter(|p| !p.is_null()) else {
        if v1_routed {
            out.at(
                Code::AuthorizationPolicy,
                gap,
                &[key("deployments"), key(WEB_V1)],
                format!("{WEB_V1} has no authorizationPolicy, yet a route names subset v1: the ingress controller could not reach it"),
            );
        }
        return;
    };
    let twin_spec = istio_policy(policy);
    for v in schema::validate_istio_spec(IstioKind::AuthorizationPolicy, &twin_spec) {
        let mut path = policy_path.clone();
        path.extend(v.path.iter().cloned());
        out.at(
            Code::Schema,
            gap,
            &path,
            format!("{}: {}", crate::yaml::path_text(&path), v.message),
        );
    }
    let web_spec = istio_policy(&deployments[WEB]["authorizationPolicy"]);
    let ingress = istio_policy(&json!({"rules": [{"from": [{"source": {"principals": [{
        "namespace": INGRESS_NAMESPACE, "serviceAccountName": [INGRESS_SERVICE_ACCOUNT]}]}}]}]}));
    let rules = |spec: &Value| spec["rules"].as_array().cloned().unwrap_or_default();
    let mut want = rules(&web_spec);
    for rule in rules(&ingress) {
        if !want.contains(&rule) {
            want.push(rule);
        }
    }
    let got = rules(&twin_spec);
    let missing = want.iter().filter(|r| !got.contains(r)).count();
    let extra = got.iter().filter(|r| !want.contains(r)).count();
    let others = |spec: &Value| {
        let mut spec = spec.clone();
        if let Some(m) = spec.as_object_mut() {
            m.remove("rules");
        }
        spec
    };
    let mut problems = Vec::new();
    if missing > 0 {
        problems.push(format!(
            "lacks {missing} of the rules web's policy and the ingress need"
        ));
    }
    if extra > 0 {
        problems.push(format!(
            "has {extra} rule(s) that neither web's policy nor the ingress has"
        ));
    }
    if others(&twin_spec) != others(&web_spec) {
        problems.push("differs from web's policy outside its rules".into());
    }
    if !problems.is_empty() {
        out.at(
            Code::AuthorizationPolicy,
            gap,
            &policy_path,
            format!(
                "{WEB_V1}'s authorizationPolicy {}: it must admit exactly what {WEB}'s admits plus {INGRESS_NAMESPACE}/{INGRESS_SERVICE_ACCOUNT}",
                problems.join(" and ")
            ),
        );
    }
}

/// gap's `authorizationPolicy` as the AuthorizationPolicy spec it becomes: gap writes a
/// principal as `{namespace, serviceAccountName: [..]}`, Istio as `cluster.local/ns/N/sa/A`.
fn istio_policy(policy: &Value) -> Value {
    let mut spec = match policy {
        Value::Object(_) => policy.clone(),
        _ => json!({}),
    };
    for rule in spec["rules"].as_array_mut().into_iter().flatten() {
        for from in rule["from"].as_array_mut().into_iter().flatten() {
            let Some(principals) = from["source"]["principals"].as_array_mut() else {
                continue;
            };
            *principals = principals
                .iter()
                .flat_map(
                    |p| match (p["namespace"].as_str(), p["serviceAccountName"].as_array()) {
                        (Some(ns), Some(accounts)) => accounts
                            .iter()
                            .map(|a| {
                                Value::from(format!("cluster.local/ns/{ns}/sa/{}", scalar_text(a)))
                            })
                            .collect(),
                        _ => vec![p.clone()],
                    },
                )
                .collect();
        }
    }
    spec
}
