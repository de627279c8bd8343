//! What the repository files say one environment's cluster should hold once they are synced,
//! and the names under which a gap sync creates the objects.

use std::collections::BTreeMap;
use std::rc::Rc;

use serde_json::Value;

use super::argocd;
use crate::edits::{
    DESTINATION_RULE, DESTINATION_RULE_ALT, GAP_YAML, SERVICE_PATCH, virtual_service_patch,
};
use crate::error::{Error, bad_input};
use crate::finding::first_line_containing;
use crate::repo::Repo;
use crate::settings::{Settings, Switch, WEB, WEB_V1};
use crate::yaml;

#[derive(Debug, Clone)]
pub struct Expected {
    pub env: String,
    /// The Service and the web Deployment: `SERVICE-web`.
    pub web: String,
    /// The v1 Deployment: `SERVICE-web-v1`.
    pub web_v1: String,
    pub service: String,
    /// web-v1 as gap.yaml declares it; `None` once it is removed (or before it is added).
    pub v1: Option<V1>,
    /// The DestinationRule's name: from its file, else the one canary gives it.
    pub destination_rule_name: String,
    pub destination_rule: Option<DestinationRuleFile>,
    /// The VirtualService's name: from the environment's patch, else the one gap gives it.
    pub virtual_service_name: String,
    pub virtual_service: Option<VirtualServiceFile>,
    /// The Service patch's line that names `canary: enabled`, when the patch exists.
    pub service_patch: Option<Option<usize>>,
    /// Canary's own labels that the patched selector adds.
    pub application_name: String,
    /// The environment's Argo CD Application and what it must report; the commit is the
    /// caller's to name ([`Expected::synced_at`]).
    pub argocd: Option<argocd::Wanted>,
    /// In coexistence: the switch, and its value in web and in web-v1 as gap.yaml sets them.
    pub switch: Option<WantedSwitch>,
    /// web's image as gap.yaml names it (`repository:tag`, or `repository@sha256:…`), and the
    /// line of its `image:`; `None` where gap.yaml leaves web's image to the pipeline.
    pub web_image: Option<(String, Option<usize>)>,
    /// Set for v2's code deploy ([`Expected::expect_v2_code`]): web must run another image
    /// than v1's.
    pub v2_code: Option<V2Code>,
}

/// What v2's code deploy changes: web's Deployment runs another image than v1's last build,
/// the one gap.yaml pins web-v1 to, on every pod, rolled out and available.
#[derive(Debug, Clone)]
pub struct V2Code {
    /// The `sha256:` digest of v1's image.
    pub v1_digest: String,
}

#[derive(Debug, Clone)]
pub struct WantedSwitch {
    pub switch: Switch,
    pub web: Option<String>,
    pub web_v1: Option<String>,
    /// The lines of web's and web-v1's entries in gap.yaml.
    pub web_line: Option<usize>,
    pub web_v1_line: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct V1 {
    /// The `sha256:` digest gap.yaml pins web-v1 to, and the line of its `tag:`.
    pub digest: String,
    pub digest_line: Option<usize>,
    pub line: Option<usize>,
    /// gap.yaml gives web-v1 an authorizationPolicy (the ingress may reach it).
    pub authorization_line: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct DestinationRuleFile {
    pub path: String,
    pub host: Option<String>,
    /// `(name, labels)` of each subset.
    pub subsets: Vec<(String, BTreeMap<String, String>)>,
    pub line: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct VirtualServiceFile {
    pub path: String,
    pub weights: Vec<(String, i64)>,
    /// The line of the v2 destination's weight, where a reader looks first.
    pub line: Option<usize>,
}

impl Expected {
    /// Read the files of one environment as they stand in the work tree.
    pub fn read(config: &Settings, repo: &Repo, env: usize) -> Result<Expected, Error> {
        let env_name = config.environments[env].name.clone();
        let gap = repo
            .read(GAP_YAML)?
            .ok_or_else(|| bad_input(format!("{GAP_YAML} is missing")))?;
        let gap =
            yaml::Document::parse_one(gap).map_err(|e| bad_input(format!("{GAP_YAML}: {e}")))?;
        let v1 = crate::edits::gap_yaml::deployment_value(&gap, WEB_V1).map(|web_v1| {
            let gap = gap.text();
            // In coexistence web-v1 runs web's image: the digest is whatever web's tag says.
            let digest = web_v1["image"]["tag"]
                .as_str()
                .map(str::to_string)
                .or_else(|| config.v1_image.as_ref().map(|i| i.digest.clone()))
                .unwrap_or_default();
            V1 {
                digest_line: first_line_containing(gap, &digest),
                digest,
                line: first_line_containing(gap, &format!("{WEB_V1}:")),
                authorization_line: web_v1
                    .get("authorizationPolicy")
                    .and_then(|_| line_of_after(gap, &format!("{WEB_V1}:"), "authorizationPolicy")),
            }
        });

        let switch = config.switch.clone().map(|switch| {
            let value = |dep: &str| {
                crate::edits::gap_yaml::deployment_value(&gap, dep)
                    .and_then(|d| switch.read(&d).map(str::to_string))
            };
            WantedSwitch {
                web: value(WEB),
                web_v1: value(WEB_V1),
                web_line: first_line_containing(gap.text(), &format!("{WEB}:")),
                web_v1_line: first_line_containing(gap.text(), &format!("{WEB_V1}:")),
                switch,
            }
        });

        let mut destination_rule = None;
        for path in [DESTINATION_RULE, DESTINATION_RULE_ALT] {
            if let Some(text) = repo.read(path)? {
                destination_rule = Some((path, text));
                break;
            }
        }
        let (destination_rule_name, destination_rule) = match destination_rule {
            None => (config.destination_rule_name(), None),
            Some((path, text)) => {
                let doc = document(path, &text, "DestinationRule")?;
                let subsets = subsets_of(&doc["spec"]);
                (
                    name_of(&doc).unwrap_or_else(|| config.destination_rule_name()),
                    Some(DestinationRuleFile {
                        path: path.to_string(),
                        host: doc["spec"]["host"].as_str().map(str::to_string),
                        subsets,
                        line: first_line_containing(&text, "subsets:"),
                    }),
                )
            }
        };

        let path = virtual_service_patch(&env_name);
        let (virtual_service_name, virtual_service) = match repo.read(&path)? {
            None => (config.virtual_service_name(), None),
            Some(text) => {
                let doc = document(&path, &text, "VirtualService")?;
                let weights = yaml::Document::parse(text.as_str())
                    .and_then(|parsed| crate::edits::virtual_service::route_weights(&parsed))
                    .map_err(|e| bad_input(format!("{path}: {e}")))?;
                (
                    name_of(&doc).unwrap_or_else(|| config.virtual_service_name()),
                    Some(VirtualServiceFile {
                        line: line_of_after(&text, "subset: v2", "weight:"),
                        path,
                        weights,
                    }),
                )
            }
        };

        let web_image = crate::edits::gap_yaml::deployment_value(&gap, WEB).and_then(|web| {
            let repository = web["image"]["repository"].as_str()?;
            let tag = web["image"]["tag"].as_str()?;
            let separator = if tag.starts_with("sha256:") { '@' } else { ':' };
            let line = line_of_after(gap.text(), &format!("{WEB}:"), "image:");
            Some((format!("{repository}{separator}{tag}"), line))
        });
        let service_patch = repo
            .read(SERVICE_PATCH)?
            .map(|text| first_line_containing(&text, "canary:"));
        Ok(Expected {
            env: env_name,
            web: config.service_name(),
            web_v1: format!("{}-{WEB_V1}", config.service),
            service: config.service_name(),
            v1,
            destination_rule_name,
            destination_rule,
            virtual_service_name,
            virtual_service,
            service_patch,
            application_name: config.service.clone(),
            argocd: match config.environments[env].argocd.clone() {
                Some(app) => Some(argocd::Wanted {
                    release: Some(release_deploy(
                        config,
                        repo,
                        &config.environments[env].name,
                    )?),
                    ..argocd::Wanted::any_revision(app)
                }),
                None => None,
            },
            switch,
            web_image,
            v2_code: None,
        })
    }
}

impl Expected {
    /// Ask for v2's code deployed: web runs another image than v1's pinned one.
    pub fn expect_v2_code(&mut self, config: &Settings) {
        let v1_digest = self
            .v1
            .as_ref()
            .map(|v1| v1.digest.clone())
            .filter(|d| !d.is_empty())
            .or_else(|| config.v1_image.as_ref().map(|i| i.digest.clone()));
        self.v2_code = v1_digest.map(|v1_digest| V2Code { v1_digest });
    }

    /// Ask the environment's Argo CD Application (if it has one) to be synced at `commit` or at
    /// a commit that has it among its ancestors, as the repository's git history tells.
    pub fn synced_at(&mut self, commit: Option<String>, repo: &Repo) {
        let (Some(wanted), Some(commit)) = (&mut self.argocd, commit) else {
            return;
        };
        let repo = repo.clone();
        let ours = commit.clone();
        wanted.relate = Rc::new(move |revision| relation(&repo, &ours, revision));
        wanted.commit = Some(commit);
    }
}

/// What the environment's Argo CD Application must deploy: the release's namespace, from the
/// remote the branch's upstream is on (not compared without one), the environment's files.
pub fn release_deploy(
    config: &Settings,
    repo: &Repo,
    env: &str,
) -> Result<argocd::ReleaseDeploy, Error> {
    let repo_url = match config.remote {
        crate::settings::Remote::None => None,
        // A branch without an upstream is refused where it matters (a deploy); here it only
        // leaves the repository uncompared.
        _ => repo.upstream_url().ok().flatten(),
    };
    Ok(argocd::ReleaseDeploy {
        env: env.to_string(),
        namespace: config.namespace.clone(),
        repo_url,
        gap_dir: format!("{}gap", repo.prefix()?),
    })
}

fn relation(repo: &Repo, commit: &str, revision: &str) -> argocd::Relation {
    use argocd::Relation;
    if !argocd::is_commit_id(revision) {
        return Relation::Unknown;
    }
    match repo.commit_id(revision) {
        Ok(Some(full)) if full == commit => Relation::At,
        Ok(Some(full)) if repo.is_ancestor(commit, &full).unwrap_or(false) => Relation::Later,
        Ok(Some(full)) if repo.is_ancestor(&full, commit).unwrap_or(false) => Relation::Older,
        Ok(Some(_)) => Relation::Lacks,
        Ok(None) | Err(_) => Relation::Unknown,
    }
}

/// The first document of this kind in a file.
fn document(path: &str, text: &str, kind: &str) -> Result<Value, Error> {
    yaml::parse_all(text)
        .map_err(|e| bad_input(format!("{path}: {e}")))?
        .into_iter()
        .find(|doc| doc["kind"] == kind)
        .ok_or_else(|| bad_input(format!("{path} holds no {kind}")))
}

fn name_of(doc: &Value) -> Option<String> {
    doc["metadata"]["name"].as_str().map(str::to_string)
}

/// A YAML mapping of strings, as labels and selectors are.
/// A DestinationRule spec's subsets: each name with its label selector.
pub fn subsets_of(spec: &Value) -> Vec<(String, BTreeMap<String, String>)> {
    spec["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                string_map(&s["labels"]),
            )
        })
        .collect()
}

pub fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// The line of the first `needle` at or after the first line holding `anchor`.
fn line_of_after(text: &str, anchor: &str, needle: &str) -> Option<usize> {
    let start = first_line_containing(text, anchor)?;
    text.lines()
        .skip(start - 1)
        .position(|l| l.contains(needle))
        .map(|i| start + i)
}
