//! The findings of one environment: where its cluster differs from what the repository files
//! say it holds once synced.

use std::collections::BTreeMap;

use super::expect::{Expected, WantedSwitch, subsets_of};
use super::{Deployment, ISTIO_NETWORKING, Snapshot, argocd, describe_weights, live_weights};
use crate::edits::GAP_YAML;
use crate::finding::Finding;
use crate::settings::{INGRESS_NAMESPACE, INGRESS_SERVICE_ACCOUNT};

pub fn compare(expected: &Expected, live: &Snapshot) -> Vec<Finding> {
    // First: while Argo CD has not synced canary's commit, that is what the deploy waits for.
    let mut findings: Vec<Finding> = expected
        .argocd
        .as_ref()
        .map(|wanted| argocd::verdict(wanted, live.application.as_ref()))
        .into_iter()
        .collect();
    deployments(expected, live, &mut findings);
    v2_code(expected, live, &mut findings);
    authorization(expected, live, &mut findings);
    destination_rule(expected, live, &mut findings);
    virtual_service(expected, live, &mut findings);
    service(expected, live, &mut findings);
    for finding in &mut findings {
        finding.env = Some(expected.env.clone());
    }
    findings
}

/// How to remove an object that the files no longer have.
fn prune_hint(kind: &str, name: &str) -> String {
    format!("prune it (Argo CD's Prune) or `kubectl delete {kind} {name}`")
}

fn not_ready(deployment: &Deployment) -> Option<String> {
    (!deployment.rolled_out || deployment.ready < deployment.desired).then(|| {
        format!(
            "Deployment {} has {} of {} replicas ready{}",
            deployment.name,
            deployment.ready,
            deployment.desired,
            if deployment.rolled_out {
                ""
            } else {
                " and is still rolling out"
            }
        )
    })
}

/// v2's code deploy: web's Deployment runs gap.yaml's image for web where gap.yaml names one,
/// and in any case no longer v1's (the digest web-v1 is pinned to), neither in its template nor
/// on any pod, with every replica available.
fn v2_code(expected: &Expected, live: &Snapshot, findings: &mut Vec<Finding>) {
    let (Some(v2), Some(web)) = (&expected.v2_code, &live.web) else {
        return;
    };
    let name = &expected.web;
    let v1 = &v2.v1_digest;
    let runs_v1 = |image: &str| image.ends_with(&format!("@{v1}"));
    let mut not_yet = |message: String, line: Option<usize>| {
        findings.push(Finding::error("v2-not-deployed", message).at(GAP_YAML, line));
    };
    let images: Vec<&str> = web
        .containers
        .iter()
        .filter_map(|c| c.image.as_deref())
        .collect();
    if let Some((image, line)) = &expected.web_image {
        if runs_v1(image) {
            not_yet(
                format!(
                    "gap.yaml still gives web v1's image {image}, the one web-v1 is pinned to: \
                     land the v2 code's image there"
                ),
                *line,
            );
        } else if !images.contains(&image.as_str()) {
            not_yet(
                format!(
                    "Deployment {name} runs {}, but gap.yaml gives web {image}",
                    if images.is_empty() {
                        "no image".to_string()
                    } else {
                        images.join(", ")
                    }
                ),
                *line,
            );
        }
    }
    for container in &web.containers {
        if let Some(image) = container.image.as_deref().filter(|i| runs_v1(i)) {
            not_yet(
                format!(
                    "Deployment {name}'s container {} still runs v1's image {image}, the one \
                     web-v1 is pinned to",
                    container.name
                ),
                None,
            );
        }
    }
    for pod in &live.web_pods {
        if pod.digests.iter().any(|(_, d)| d.as_deref() == Some(v1)) {
            not_yet(
                format!("pod {} of {name} still runs v1's image ({v1})", pod.name),
                None,
            );
        }
    }
    if web.rolled_out && web.available < web.desired {
        not_yet(
            format!(
                "Deployment {name} has {} of {} replicas available",
                web.available, web.desired
            ),
            None,
        );
    }
}

/// Only what says whether web-v1 runs the pinned image: its Deployment and its pods.
pub fn compare_v1(expected: &Expected, live: &Snapshot) -> Vec<Finding> {
    let mut findings = Vec::new();
    web_v1(expected, live, &mut findings);
    for finding in &mut findings {
        finding.env = Some(expected.env.clone());
    }
    findings
}

fn deployments(expected: &Expected, live: &Snapshot, findings: &mut Vec<Finding>) {
    match &live.web {
        None => findings.push(
            Finding::error(
                "deployment-missing",
                format!("Deployment {} is not in the cluster", expected.web),
            )
            .at(GAP_YAML, None),
        ),
        Some(web) => findings.extend(
            not_ready(web).map(|m| Finding::error("deployment-not-ready", m).at(GAP_YAML, None)),
        ),
    }
    web_v1(expected, live, findings);
}

fn web_v1(expected: &Expected, live: &Snapshot, findings: &mut Vec<Finding>) {
    match (&expected.v1, &live.web_v1) {
        (None, None) => {}
        (None, Some(_)) => findings.push(Finding::error(
            "not-pruned",
            format!(
                "Deployment {} is still in the cluster, but gap.yaml no longer has web-v1: {}",
                expected.web_v1,
                prune_hint("deployment", &expected.web_v1)
            ),
        )),
        (Some(v1), None) => findings.push(
            Finding::error(
                "deployment-missing",
                format!("Deployment {} is not in the cluster", expected.web_v1),
            )
            .at(GAP_YAML, v1.line),
        ),
        (Some(v1), Some(web_v1)) => {
            if let Some(message) = not_ready(web_v1) {
                findings
                    .push(Finding::error("deployment-not-ready", message).at(GAP_YAML, v1.line));
            }
            if let Some(switch) = &expected.switch {
                coexistence(expected, switch, live, findings);
                return;
            }
            for pod in &live.v1_pods {
                if pod
                    .digests
                    .iter()
                    .any(|(_, d)| d.as_deref() == Some(&v1.digest))
                {
                    continue;
                }
                let runs: Vec<String> = pod
                    .digests
                    .iter()
                    .map(|(container, d)| {
                        format!(
                            "{container} {}",
                            d.as_deref().unwrap_or("an unknown digest")
                        )
                    })
                    .collect();
                findings.push(
                    Finding::error(
                        "v1-image-mismatch",
                        format!(
                            "pod {} runs {}, but web-v1 is pinned to {}",
                            pod.name,
                            if runs.is_empty() {
                                "no container yet".to_string()
                            } else {
                                runs.join(", ")
                            },
                            v1.digest
                        ),
                    )
                    .at(GAP_YAML, v1.digest_line),
                );
            }
        }
    }
}

/// In coexistence web-v1 runs web's image and only the switch tells them apart: each of
/// web-v1's containers runs the image of web's container of that name, and each Deployment's
/// switch has the value gap.yaml gives it.
fn coexistence(
    expected: &Expected,
    wanted: &WantedSwitch,
    live: &Snapshot,
    findings: &mut Vec<Finding>,
) {
    let (Some(web), Some(web_v1)) = (&live.web, &live.web_v1) else {
        return;
    };
    for twin in &web_v1.containers {
        let theirs = web.containers.iter().find(|c| c.name == twin.name);
        let theirs = theirs.and_then(|c| c.image.as_deref());
        if theirs != twin.image.as_deref() {
            findings.push(
                Finding::error(
                    "twin-image-differs",
                    format!(
                        "Deployment {}'s container {} runs {}, but {}'s runs {}: in coexistence \
                         web-v1 runs web's image, and only the switch differs",
                        expected.web_v1,
                        twin.name,
                        twin.image.as_deref().unwrap_or("no image"),
                        expected.web,
                        theirs.unwrap_or("no such container")
                    ),
                )
                .at(GAP_YAML, wanted.web_v1_line),
            );
        }
    }
    for (name, deployment, value, line) in [
        (&expected.web, web, &wanted.web, wanted.web_line),
        (&expected.web_v1, web_v1, &wanted.web_v1, wanted.web_v1_line),
    ] {
        let live_value = deployment
            .containers
            .iter()
            .find_map(|c| wanted.switch.read(&c.as_gap()).map(str::to_string));
        if live_value != *value {
            findings.push(
                Finding::error(
                    "switch-mismatch",
                    format!(
                        "Deployment {name} runs with the switch {} at {}, but gap.yaml sets {}",
                        wanted.switch,
                        live_value
                            .as_deref()
                            .map_or("no value".into(), |v| format!("{v:?}")),
                        value.as_deref().map_or("none".into(), |v| format!("{v:?}"))
                    ),
                )
                .at(GAP_YAML, line),
            );
        }
    }
}

/// The v1 AuthorizationPolicy is the one whose selector matches the v1 pods.
fn authorization(expected: &Expected, live: &Snapshot, findings: &mut Vec<Finding>) {
    let Some(web_v1) = &live.web_v1 else {
        return;
    };
    let selects_v1 = |labels: &BTreeMap<String, String>| {
        !labels.is_empty()
            && labels
                .iter()
                .all(|(k, v)| web_v1.pod_labels.get(k) == Some(v))
    };
    let policies: Vec<_> = live
        .policies
        .iter()
        .filter(|p| selects_v1(&p.match_labels))
        .collect();
    let wanted = expected.v1.as_ref().and_then(|v1| v1.authorization_line);
    match (expected.v1.as_ref().map(|_| wanted), policies.is_empty()) {
        (Some(Some(line)), true) => findings.push(
            Finding::error(
                "authorization-policy-missing",
                format!(
                    "no AuthorizationPolicy selects the pods of {}: the ingress cannot reach v1",
                    expected.web_v1
                ),
            )
            .at(GAP_YAML, Some(line)),
        ),
        (Some(Some(line)), false) => {
            let principal = format!("/ns/{INGRESS_NAMESPACE}/sa/{INGRESS_SERVICE_ACCOUNT}");
            let admits_ingress = policies.iter().any(|p| {
                p.spec["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|rule| {
                        rule["from"].as_array().into_iter().flatten().any(|from| {
                            from["source"]["principals"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .any(|p| p.as_str().is_some_and(|p| p.ends_with(&principal)))
                        })
                    })
            });
            if !admits_ingress {
                let names: Vec<&str> = policies.iter().map(|p| p.name.as_str()).collect();
                findings.push(
                    Finding::warning(
                        "authorization-policy-no-ingress",
                        format!(
                            "AuthorizationPolicy {} selects the v1 pods but names no principal \
                             ending in {principal}",
                            names.join(", ")
                        ),
                    )
                    .at(GAP_YAML, Some(line)),
                );
            }
        }
        // web-v1 is gone from gap.yaml while its Deployment is not: its policy goes with it.
        (None, false) => {
            for policy in policies {
                findings.push(Finding::error(
                    "not-pruned",
                    format!(
                        "AuthorizationPolicy {} of web-v1 is still in the cluster: {}",
                        policy.name,
                        prune_hint("authorizationpolicy", &policy.name)
                    ),
                ));
            }
        }
        _ => {}
    }
}

fn destination_rule(expected: &Expected, live: &Snapshot, findings: &mut Vec<Finding>) {
    let name = &expected.destination_rule_name;
    match (&expected.destination_rule, &live.destination_rule) {
        (None, None) => {}
        (None, Some(_)) => findings.push(Finding::error(
            "not-pruned",
            format!(
                "DestinationRule {name} is still in the cluster, but the repository no longer \
                 has it: {}",
                prune_hint("destinationrule", name)
            ),
        )),
        (Some(file), None) => findings.push(
            Finding::error(
                "destination-rule-missing",
                format!("DestinationRule {name} is not in the cluster"),
            )
            .at(&file.path, None),
        ),
        (Some(file), Some(spec)) => {
            let subsets = subsets_of(spec);
            if subsets != file.subsets {
                let show = |subsets: &[(String, BTreeMap<String, String>)]| {
                    subsets
                        .iter()
                        .map(|(name, labels)| {
                            let labels: Vec<String> =
                                labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                            format!("{name} ({})", labels.join(","))
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                findings.push(
                    Finding::error(
                        "destination-rule-differs",
                        format!(
                            "DestinationRule {name} has subsets {} live, the file {}",
                            show(&subsets),
                            show(&file.subsets)
                        ),
                    )
                    .at(&file.path, file.line),
                );
            }
            let host = spec["host"].as_str();
            if file.host.is_some() && host != file.host.as_deref() {
                findings.push(
                    Finding::error(
                        "destination-rule-differs",
                        format!(
                            "DestinationRule {name} is for host {} live, {} in the file",
                            host.unwrap_or("(none)"),
                            file.host.as_deref().unwrap_or_default()
                        ),
                    )
                    .at(&file.path, None),
                );
            }
        }
    }
}

fn virtual_service(expected: &Expected, live: &Snapshot, findings: &mut Vec<Finding>) {
    let name = &expected.virtual_service_name;
    let live_weights = live.virtual_service.as_ref().map(live_weights);
    match (&expected.virtual_service, live_weights) {
        (Some(file), None) => findings.push(
            Finding::error(
                "virtual-service-missing",
                format!("VirtualService {name} ({ISTIO_NETWORKING}) is not in the cluster"),
            )
            .at(&file.path, None),
        ),
        (Some(file), Some(live)) => {
            if sorted(&live) != sorted(&file.weights) {
                findings.push(
                    Finding::error(
                        "live-weights-differ",
                        format!(
                            "VirtualService {name} routes {} live, the file {}",
                            describe_weights(&live),
                            describe_weights(&file.weights)
                        ),
                    )
                    .at(&file.path, file.line),
                );
            }
        }
        // Without its patch the VirtualService gap makes routes to the Service, not to subsets.
        (None, Some(live)) if !live.is_empty() => findings.push(Finding::error(
            "live-weights-differ",
            format!(
                "VirtualService {name} still routes {} live, but {} has no canary patch",
                describe_weights(&live),
                expected.env
            ),
        )),
        (None, _) => {}
    }
}

fn sorted(weights: &[(String, i64)]) -> Vec<(String, i64)> {
    let mut weights = weights.to_vec();
    weights.sort();
    weights
}

fn service(expected: &Expected, live: &Snapshot, findings: &mut Vec<Finding>) {
    let name = &expected.service;
    let Some(selector) = &live.service_selector else {
        findings.push(
            Finding::error(
                "service-missing",
                format!("Service {name} is not in the cluster"),
            )
            .at(GAP_YAML, None),
        );
        return;
    };
    let show = |selector: &BTreeMap<String, String>| {
        selector
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let canary = selector.get("canary").map(String::as_str) == Some("enabled")
        && selector.get("applicationName") == Some(&expected.application_name)
        && !selector.contains_key("app");
    match expected.service_patch {
        Some(line) if !canary => findings.push(
            Finding::error(
                "service-selector-differs",
                format!(
                    "Service {name} selects {} live; the patch selects canary=enabled, \
                     applicationName={} and no app",
                    show(selector),
                    expected.application_name
                ),
            )
            .at(crate::edits::SERVICE_PATCH, line),
        ),
        None if selector.contains_key("canary") => findings.push(Finding::error(
            "service-selector-differs",
            format!(
                "Service {name} still selects {} live, but the Service patch is gone",
                show(selector)
            ),
        )),
        _ => {}
    }
}
