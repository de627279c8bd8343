//! What in the repository stands in the way of the release itself rather than of one of
//! canary's objects: a web without the ingress whose VirtualService canary patches, other
//! patches of the objects canary patches, labels that canary's selectors would also match,
//! and YAML in web that canary cannot copy into web-v1 as it is written.
//!
//! These hold in every state of a release, so `canary check` on a repository that no release
//! has touched lists what would otherwise stop one halfway, and `canary next` stops on any of
//! them that a hand edit brings in later.

use serde_json::Value;

use super::{Code, Findings, Loaded, Object, PatchFile, Scope};
use crate::settings::{WEB, WEB_V1};
use crate::yaml::{self, Seg};

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

pub(super) fn conflicts(l: &Loaded, scope: &Scope, out: &mut Findings) {
    if let Some(gap) = &l.gap {
        ingress(gap, out);
        labels(gap, out);
        anchors(gap, out);
    }
    for patch in &l.patches {
        patched_twice(patch, scope, out);
    }
}

/// gap makes the VirtualService that canary patches only for a deployment with its ingress on.
fn ingress(gap: &Object, out: &mut Findings) {
    let web = &gap.value()["deployments"][WEB];
    let enabled = &web["ingress"]["enabled"];
    if !web.is_object() || *enabled == Value::Bool(true) {
        return;
    }
    let now = if enabled.is_null() {
        "absent".to_string()
    } else {
        enabled.to_string()
    };
    out.at(
        Code::NoIngress,
        gap,
        &[key("deployments"), key(WEB), key("ingress"), key("enabled")],
        format!(
            "{WEB}'s ingress.enabled is {now}: gap makes no VirtualService for {WEB}, so canary's \
             VirtualService patches would patch nothing and no traffic would be split; set \
             {WEB}'s ingress.enabled to true (canary releases a {WEB} that takes ingress traffic)"
        ),
    );
}

/// canary labels web `version: v2, canary: enabled`, web-v1 `version: v1, canary: enabled`,
/// and selects by those labels alone: the DestinationRule's subsets by `version`, the patched
/// Service by `canary` (and `applicationName`, which every deployment of the service has).
fn labels(gap: &Object, out: &mut Findings) {
    let Some(deployments) = gap.value()["deployments"].as_object() else {
        return;
    };
    let label =
        |name: &str, label: &str| [key("deployments"), key(name), key("podLabels"), key(label)];
    if let Some(web) = deployments.get(WEB) {
        for (name, want) in [("version", "v2"), ("canary", "enabled")] {
            let got = &web["podLabels"][name];
            if !got.is_null() && got != want {
                let got = got.as_str().map_or_else(|| got.to_string(), str::to_string);
                out.at(
                    Code::WebLabels,
                    gap,
                    &label(WEB, name),
                    format!(
                        "{WEB} is labelled {name}: {got}, where canary labels it {name}: {want} \
                         (its subset and the patched Service select it by that label); remove \
                         the label from {WEB}, and canary adds its own"
                    ),
                );
            }
        }
    }
    for (name, deployment) in deployments {
        if name == WEB || name == WEB_V1 {
            continue;
        }
        let labels = &deployment["podLabels"];
        if labels["canary"] == "enabled" {
            out.at(
                Code::LabelsTaken,
                gap,
                &label(name, "canary"),
                format!(
                    "{name} is labelled canary: enabled, the label canary's Service patch selects \
                     {WEB} and {WEB_V1} by: the Service would send {WEB}'s traffic to {name}'s \
                     pods too; remove the label from {name} or rename it"
                ),
            );
        }
        if let Some(version) = labels["version"]
            .as_str()
            .filter(|v| ["v1", "v2"].contains(v))
        {
            out.at(
                Code::LabelsTaken,
                gap,
                &label(name, "version"),
                format!(
                    "{name} is labelled version: {version}, the label the DestinationRule's \
                     subset {version} selects by: the subset would take in {name}'s pods too; \
                     remove the label from {name} or rename it"
                ),
            );
        }
    }
}

/// web-v1 is web's text, copied: an anchor in web would be defined twice.
fn anchors(gap: &Object, out: &mut Findings) {
    for anchor in crate::edits::gap_yaml::anchors_in_deployment(&gap.doc, WEB) {
        out.add(
            Code::AnchorInWeb,
            &gap.path,
            Some(anchor.line),
            format!(
                "{WEB} defines the anchor &{name}: canary copies {WEB} into {WEB_V1} as it is \
                 written, so &{name} would be defined twice and every *{name} after {WEB_V1} \
                 would read {WEB_V1}'s copy, which does not follow {WEB}'s changes; move the \
                 anchored value out of {WEB} (to a top-level key) and refer to it from {WEB} \
                 with *{name}",
                name = anchor.name
            ),
        );
    }
}

/// A patch of someone else's that sets what one of canary's patches sets, on the same object:
/// the VirtualService's `hosts` and `http` lists, which a patch replaces whole (canary's routes
/// would be lost, or this patch's timeouts and retries), or the Service's selector, which this
/// patch could give `app:` back (web-v1's pods would never serve).
fn patched_twice(patch: &PatchFile, scope: &Scope, out: &mut Findings) {
    let virtual_service = format!("{}--web", scope.service);
    let service = scope.service_name();
    // canary's own VirtualService patch beside this one; every environment's for one in gap/.
    let dir = patch.path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let routes = match scope
        .environments
        .iter()
        .find(|env| dir == format!("gap/{env}"))
    {
        Some(env) => crate::edits::virtual_service_patch(env),
        None => crate::edits::virtual_service_patch("ENV"),
    };
    for (i, doc) in patch.docs.iter().enumerate() {
        let name = &doc["metadata"]["name"];
        let (fields, object, canary, after): (&[&str], _, _, _) = match doc["kind"].as_str() {
            Some("VirtualService") if name == virtual_service.as_str() => (
                &["http", "hosts"],
                &virtual_service,
                routes.as_str(),
                "cleanup-2",
            ),
            Some("Service") if name == service.as_str() => (
                &["selector"],
                &service,
                crate::edits::SERVICE_PATCH,
                "cleanup-1",
            ),
            _ => continue,
        };
        let Some(field) = fields.iter().find(|f| !doc["spec"][**f].is_null()) else {
            continue;
        };
        let path = [key("spec"), key(field)];
        out.add(
            Code::PatchedTwice,
            &patch.path,
            yaml::line_of(&patch.text, i, &path),
            format!(
                "patches {kind} {object}'s spec.{field}, which canary's patch ({canary}) sets \
                 during the release: one patch's value would replace the other's; take \
                 spec.{field} out of {file} for the release (it may come back after {after})",
                kind = doc["kind"].as_str().unwrap_or_default(),
                file = patch.path,
            ),
        );
    }
}
