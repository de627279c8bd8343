//! The release's state as the files show it, as the journal's position expects it, and the
//! position that a set of files fits (`canary start --adopt`).
//!
//! A position says which of canary's edits are done, and so which objects exist: web-v1 from
//! deploy-v1 to cleanup-1, the DestinationRule from add-routing to cleanup-3, and so on. The
//! weights are the exception: `canary weight` moves them without moving the position, so the
//! journal keeps, with every file canary writes, its hash and (for a VirtualService patch) its
//! weights, and a file whose hash differs is compared on its weights.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Code, Findings, Journaled, Loaded, Object, Scope};
use crate::edits;
use crate::error::Error;
use crate::repo::sha256;
use crate::settings::{Switch, Version, WEB, WEB_V1};
use crate::workflow::{FIRST_V2_WEIGHT, Phase, Position, Resource, Shape, Step, StepEdit, plan};
use crate::yaml::Seg;

/// What canary last wrote to a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// sha256 of the content; `None` when canary deleted the file.
    pub hash: Option<String>,
    /// `(subset, weight)` of every destination, for a VirtualService patch.
    pub weights: Option<Vec<(String, i64)>>,
}

/// Which of canary's objects exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Presence {
    pub twin: bool,
    pub policy: bool,
    pub destination_rule: bool,
    /// The VirtualService patches (every environment alike).
    pub routes: bool,
    /// The routes still have their v1 destination.
    pub v1_route: bool,
    pub service_patch: bool,
}

impl Presence {
    fn set(&mut self, resource: Resource, present: bool) {
        let field = match resource {
            Resource::Twin => &mut self.twin,
            Resource::Policy => &mut self.policy,
            Resource::DestinationRule => &mut self.destination_rule,
            Resource::Routes => &mut self.routes,
            Resource::V1Route => &mut self.v1_route,
            Resource::ServicePatch => &mut self.service_patch,
        };
        *field = present;
    }
}

/// The plan's edits before `index`, in order.
fn edits_before(plan: &[(Phase, Step)], index: usize) -> impl Iterator<Item = StepEdit> + '_ {
    plan[..index.min(plan.len())]
        .iter()
        .filter_map(|(_, step)| match step {
            Step::Edit { edit } => Some(*edit),
            _ => None,
        })
}

/// The objects that exist once the edits before `index` in the plan are done.
pub fn expected(plan: &[(Phase, Step)], index: usize) -> Presence {
    let mut presence = Presence::default();
    for edit in edits_before(plan, index) {
        edit.adds().iter().for_each(|&r| presence.set(r, true));
        edit.removes().iter().for_each(|&r| presence.set(r, false));
    }
    presence
}

/// The v2 weight of each environment after the edits before `index`, when only the plan's
/// own edits moved them (`None`: no route). Used to adopt a release, never to judge one.
fn planned_weights(shape: &Shape, plan: &[(Phase, Step)], index: usize) -> Vec<Option<i64>> {
    let envs = shape.environments.len();
    let mut w: Vec<Option<i64>> = vec![None; envs];
    for edit in edits_before(plan, index) {
        if edit.adds().contains(&Resource::Routes) {
            w.fill(Some(i64::from(FIRST_V2_WEIGHT)));
        }
        if edit.removes().contains(&Resource::Routes) {
            w.fill(None);
        }
        let weights = edit.weights(envs);
        w[weights.envs].fill(Some(i64::from(weights.v2)));
    }
    w
}

/// The files as canary reads its state off them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub labels: bool,
    pub presence: Presence,
    /// Per environment: the VirtualService patch's `(subset, weight)` pairs, if there is one.
    pub routes: Vec<Option<Vec<(String, i64)>>>,
    /// Environments whose patch exists when another's does not, or disagree on v1's route.
    pub uneven: bool,
}

pub(super) fn observe(l: &Loaded) -> Observed {
    let deployments = l.gap.as_ref().map(|g| &g.value()["deployments"]);
    let dep = |name: &str| deployments.map(|d| &d[name]).filter(|d| d.is_object());
    let labels = dep(WEB).is_some_and(|web| {
        web["podLabels"]["version"] == "v2" && web["podLabels"]["canary"] == "enabled"
    });
    let routes: Vec<Option<Vec<(String, i64)>>> = l
        .routes
        .iter()
        .map(|(_, vs)| vs.as_ref().map(route_weights))
        .collect();
    let has_v1 = |r: &Option<Vec<(String, i64)>>| {
        r.as_ref().is_some_and(|w| w.iter().any(|(s, _)| s == "v1"))
    };
    let all_routes = !routes.is_empty() && routes.iter().all(Option::is_some);
    let any_routes = routes.iter().any(Option::is_some);
    let all_v1 = all_routes && routes.iter().all(has_v1);
    let any_v1 = routes.iter().any(has_v1);
    Observed {
        labels,
        presence: Presence {
            twin: dep(WEB_V1).is_some(),
            policy: dep(WEB_V1).is_some_and(|t| !t["authorizationPolicy"].is_null()),
            destination_rule: l.destination_rule.is_some(),
            routes: all_routes,
            v1_route: all_v1,
            service_patch: l.service_patch.is_some(),
        },
        uneven: all_routes != any_routes || all_v1 != any_v1,
        routes,
    }
}

fn route_weights(vs: &Object) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for http in vs.value()["spec"]["http"].as_array().into_iter().flatten() {
        let route = http["route"].as_array().cloned().unwrap_or_default();
        for dest in &route {
            let subset = dest["destination"]["subset"].as_str().unwrap_or_default();
            let weight = dest["weight"]
                .as_i64()
                .unwrap_or(if route.len() == 1 { 100 } else { 0 });
            out.push((subset.to_string(), weight));
        }
    }
    out
}

fn v2_weight(weights: &[(String, i64)]) -> Option<i64> {
    weights.iter().find(|(s, _)| s == "v2").map(|(_, w)| *w)
}

/// The files against the journal: every object the position says exists is there, none it
/// says is gone (or not yet made) is, and no weight moved since canary wrote it.
pub(super) fn agreement(l: &Loaded, scope: &Scope, journal: &Journaled, out: &mut Findings) {
    let shape = journal.config.shape();
    let plan = plan(&shape);
    let index = journal.position.index;
    let phase = journal.position.phase(&plan);
    let want = expected(&plan, index);
    let seen = observe(l);
    let dr_path = l
        .destination_rule
        .as_ref()
        .map_or(edits::DESTINATION_RULE, |o| o.path.as_str())
        .to_string();
    let gap_line = |key: &str| {
        l.gap
            .as_ref()
            .and_then(|g| g.line(&[Seg::Key("deployments".into()), Seg::Key(key.into())]))
    };
    presence(
        out,
        phase,
        seen.presence.twin,
        want.twin,
        edits::GAP_YAML,
        gap_line(WEB_V1).or(gap_line(WEB)),
        "deployments.web-v1",
    );
    if seen.presence.twin && want.twin {
        presence(
            out,
            phase,
            seen.presence.policy,
            want.policy,
            edits::GAP_YAML,
            gap_line(WEB_V1),
            "deployments.web-v1.authorizationPolicy",
        );
    }
    presence(
        out,
        phase,
        seen.presence.destination_rule,
        want.destination_rule,
        &dr_path,
        None,
        "the DestinationRule",
    );
    presence(
        out,
        phase,
        seen.presence.service_patch,
        want.service_patch,
        edits::SERVICE_PATCH,
        None,
        "the Service patch",
    );
    for ((env, vs), weights) in l.routes.iter().zip(&seen.routes) {
        let path = edits::virtual_service_patch(env);
        presence(
            out,
            phase,
            vs.is_some(),
            want.routes,
            &path,
            None,
            &format!("{env}'s VirtualService patch"),
        );
        let (Some(vs), Some(weights)) = (vs, weights) else {
            continue;
        };
        let has_v1 = weights.iter().any(|(s, _)| s == "v1");
        if want.routes {
            presence(
                out,
                phase,
                has_v1,
                want.v1_route,
                &path,
                vs.line(&[Seg::Key("spec".into()), Seg::Key("http".into())]),
                &format!("{env}'s route to subset v1"),
            );
        }
        let Some(record) = journal.written.get(&path) else {
            continue;
        };
        if record.hash.as_deref() == Some(&sha256(vs.text())) {
            continue;
        }
        if let Some(wrote) = &record.weights
            && wrote != weights
        {
            let show = |w: &[(String, i64)]| {
                w.iter()
                    .map(|(s, w)| format!("{s} {w}%"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            // Only where `canary weight` would take it: production's weight moves in the ramp.
            let last = scope.environments.last() == Some(env);
            let movable = phase == Phase::Ramp || (phase == Phase::DeployV2 && !last);
            let again = v2_weight(wrote)
                .filter(|_| movable)
                .map_or(String::new(), |w| {
                    format!(" or `canary weight {} {env} {w}`", scope.service)
                });
            out.at(
                Code::WeightMoved,
                vs,
                &[Seg::Key("spec".into()), Seg::Key("http".into())],
                format!(
                    "{env} routes {}, but canary last wrote {}: a hand edit moved it; restore it (git checkout){again}",
                    show(weights),
                    show(wrote)
                ),
            );
        }
    }
    if let (Some(gap), Some(switch), true) = (&l.gap, &journal.config.switch, want.twin) {
        // v1 from deploy-v1 on, v2 once deploy-v2's edit is made; at that edit itself (where
        // an abort brings the release back) web may already say v2.
        let wanted = if edits_before(&plan, index).any(|e| e == StepEdit::SwitchToV2) {
            Some(Version::V2)
        } else if phase == Phase::DeployV2 {
            None
        } else {
            Some(Version::V1)
        };
        let web = &gap.value()["deployments"][WEB];
        if let Some(version) = wanted
            && switch.read(web) != Some(switch.value(version))
        {
            let place = match switch {
                Switch::Env { .. } => "env",
                Switch::Arg { .. } => "command",
            };
            out.at(
                Code::SwitchValue,
                gap,
                &[
                    Seg::Key("deployments".into()),
                    Seg::Key(WEB.into()),
                    Seg::Key(place.into()),
                ],
                format!(
                    "{WEB}'s switch ({switch}) is {}, but in {phase} canary has set it to {:?}: \
                     a hand edit flipped it; restore it (git checkout)",
                    switch
                        .read(web)
                        .map_or("absent".to_string(), |v| format!("{v:?}")),
                    switch.value(version)
                ),
            );
        }
    }
    if let Some(gap) = &l.gap {
        let tag = &gap.value()["deployments"][WEB_V1]["image"];
        if let Some(image) = &journal.config.v1_image
            && tag.is_object()
            && (tag["repository"] != image.repository.as_str()
                || tag["tag"] != image.digest.as_str())
        {
            out.at(
                Code::ImageDiffers,
                gap,
                &[
                    Seg::Key("deployments".into()),
                    Seg::Key(WEB_V1.into()),
                    Seg::Key("image".into()),
                ],
                format!(
                    "{WEB_V1} runs {}@{}, but the release pinned {image}",
                    tag["repository"].as_str().unwrap_or("?"),
                    tag["tag"].as_str().unwrap_or("?")
                ),
            );
        }
    }
}

/// A finding when an object's presence is not what the release's phase expects.
fn presence(
    out: &mut Findings,
    phase: Phase,
    exists: bool,
    expected: bool,
    file: &str,
    line: Option<usize>,
    what: &str,
) {
    if exists == expected {
        return;
    }
    if expected {
        out.add(
            Code::Missing,
            file,
            line,
            format!(
                "{what} is missing, but the release is in {phase}, where canary has written it; restore it (git checkout)"
            ),
        );
    } else {
        out.add(
            Code::Unexpected,
            file,
            line,
            format!(
                "{what} is present, but in {phase} canary has not written it yet or has removed it; remove it, or let canary's steps make it"
            ),
        );
    }
}

/// The positions whose objects and weights are what the files show: right after one of the
/// plan's edits (its deploys still to confirm), or at the very start.
pub(super) fn fitting_positions(seen: &Observed, shape: &Shape) -> Vec<usize> {
    let plan = plan(shape);
    let after_edit = (1..plan.len()).filter(|&i| matches!(plan[i - 1].1, Step::Edit { .. }));
    std::iter::once(0)
        .chain(after_edit)
        .filter(|&i| {
            let want = expected(&plan, i);
            let labels_fit = i == 0 || seen.labels;
            let weights: Vec<Option<i64>> = seen
                .routes
                .iter()
                .map(|r| r.as_ref().and_then(|w| v2_weight(w)))
                .collect();
            !seen.uneven
                && labels_fit
                && want == seen.presence
                && weights == planned_weights(shape, &plan, i)
        })
        .collect()
}

/// What the files show, in words, for a refusal to adopt.
pub fn describe(seen: &Observed, scope: &Scope) -> Vec<String> {
    let yes_no = |b: bool| if b { "present" } else { "absent" };
    let mut out = vec![
        format!(
            "gap/gap.yaml: web {} the canary labels; web-v1 {}{}",
            if seen.labels { "has" } else { "lacks" },
            yes_no(seen.presence.twin),
            if seen.presence.policy {
                " with its authorizationPolicy"
            } else {
                ""
            }
        ),
        format!(
            "the DestinationRule: {}",
            yes_no(seen.presence.destination_rule)
        ),
        format!(
            "{}: {}",
            edits::SERVICE_PATCH,
            yes_no(seen.presence.service_patch)
        ),
    ];
    for (env, route) in scope.environments.iter().zip(&seen.routes) {
        out.push(match route {
            None => format!("{}: absent", edits::virtual_service_patch(env)),
            Some(w) => format!(
                "{}: {}",
                edits::virtual_service_patch(env),
                w.iter()
                    .map(|(s, w)| format!("{s} {w}%"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    out
}

/// Read the release's state off the files (for `--adopt`); the observation, and the one
/// position it fits or every position it fits.
pub fn adopt(
    src: &dyn super::Source,
    scope: &Scope,
    shape: &Shape,
) -> Result<(Observed, Vec<Position>), Error> {
    let mut ignored = Findings(Vec::new());
    let loaded = super::load(src, scope, &mut ignored)?;
    let seen = observe(&loaded);
    let plan = plan(shape);
    let positions = fitting_positions(&seen, shape)
        .into_iter()
        .map(|index| Position::read_off_files(&plan, index))
        .collect();
    Ok((seen, positions))
}

/// The journal's record of what canary wrote in a release, read from its `files-written`
/// events (the last one naming a path wins).
pub fn written_from_events(events: &[crate::journal::Record]) -> BTreeMap<String, Written> {
    let mut out = BTreeMap::new();
    for entry in events {
        let crate::journal::Event::FilesWritten { files } = &entry.event else {
            continue;
        };
        for file in files {
            out.insert(
                file.path.clone(),
                Written {
                    hash: file.after.clone(),
                    weights: file.weights.clone(),
                },
            );
        }
    }
    out
}

/// A planned file's record, as the runner journals it.
pub fn record(path: &str, after: Option<&str>) -> Written {
    let weights = after
        .filter(|_| path.ends_with("/gap_patch_canary_virtual_service.yaml"))
        .and_then(|text| {
            crate::edits::virtual_service::route_weights(&crate::yaml::Document::parse(text).ok()?)
                .ok()
        });
    Written {
        hash: after.map(sha256),
        weights,
    }
}
