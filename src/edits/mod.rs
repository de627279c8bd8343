//! What each step does to the repository files, computed without writing anything: a list of
//! [`FileChange`]s that the runner shows, asks about, and writes. Every edit is idempotent: run
//! over its own output it changes nothing, which is what makes an interrupted step safe to redo.

pub mod gap_yaml;
mod moves;
mod patch_twins;
pub mod templates;
pub mod virtual_service;

pub use moves::Move;
pub use patch_twins::{refuse_links, refuse_patched_switch};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, bad_input};
use crate::repo::Repo;
use crate::settings::{
    INGRESS_NAMESPACE, INGRESS_SERVICE_ACCOUNT, Settings, Switch, Version, WEB, WEB_V1,
};
use crate::source::{FileChange, Source};
use crate::workflow::{Action, FIRST_V2_WEIGHT, StepEdit, Weights};
use crate::yaml::splice::{Plan, prove};
use crate::yaml::{self, Document, YamlError};

pub const GAP_YAML: &str = "gap/gap.yaml";
pub const DESTINATION_RULE: &str = "gap/gap_canary_destination_rule.yaml";
/// The seed's cleanup spells the DestinationRule this way; a hand-made one may use it.
pub const DESTINATION_RULE_ALT: &str = "gap/gap_canary_destinationrule.yaml";
pub const SERVICE_PATCH: &str = "gap/gap_patch_canary_service.yaml";

pub fn virtual_service_patch(env: &str) -> String {
    format!("gap/{env}/gap_patch_canary_virtual_service.yaml")
}

/// The directories gap reads patches from: `gap/` and each environment's.
pub fn patch_dirs<'a>(environments: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    std::iter::once("gap".to_string())
        .chain(environments.into_iter().map(|env| format!("gap/{env}")))
        .collect()
}

/// Each environment's v2 weight as its VirtualService patch file says it; `None` where the
/// environment has no patch, no v2 route, or a file that cannot be read (all of them without
/// a repository).
pub fn v2_weights(repo: Option<&Repo>, config: &Settings) -> Vec<Option<u8>> {
    let weight = |env: &crate::settings::Environment| -> Option<u8> {
        let path = virtual_service_patch(&env.name);
        let text = repo?.read(&path).ok()??;
        if let Some(v2) = templates::v2_weight_if_as_written(&text, &path, config, env) {
            return Some(v2);
        }
        let weights = virtual_service::route_weights(&Document::parse(text).ok()?).ok()?;
        let (_, w) = weights.iter().find(|(subset, _)| subset == "v2")?;
        u8::try_from(*w).ok()
    };
    config.environments.iter().map(weight).collect()
}

/// A change to the files: a planned step's edit, or a [`Move`] made out of band. What a step's
/// edit means is the workflow's ([`StepEdit`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "job")]
pub enum FileEdit {
    Step {
        edit: StepEdit,
    },
    /// Journaled with the move's own `job` tag, as before moves were a kind of their own.
    #[serde(untagged)]
    Move(Move),
}

impl FileEdit {
    /// How the edit moves the workflow, given the files it changed: what did not change needs
    /// no deploy.
    pub fn action(&self, changes: &[FileChange], config: &Settings) -> Action {
        match self {
            FileEdit::Step { .. } => Action::Complete {
                changed: !changes.is_empty(),
            },
            FileEdit::Move(m) => m.action(changes, config),
        }
    }
}

/// The files as they would be after the edit, read once each.
struct Draft<'a> {
    src: &'a dyn Source,
    /// Each file as it is, and as the edit leaves it once the edit has set it. Nothing is copied
    /// until the edit sets a file: a gap.yaml runs to 100 kB.
    files: BTreeMap<String, (Option<String>, Option<Option<String>>)>,
    /// The YAML files edited so far, as their last edit read them back.
    documents: BTreeMap<String, Document>,
    /// Edits planned on a file's document and not proved yet: a step's edits of one file are
    /// applied together and proved by one re-read, when the file is next read or the draft ends.
    plans: BTreeMap<String, Plan>,
}

impl<'a> Draft<'a> {
    fn get(&mut self, path: &str) -> Result<Option<&str>, Error> {
        if !self.files.contains_key(path) {
            let text = self.src.read(path)?;
            self.files.insert(path.to_string(), (text, None));
        }
        let (before, after) = &self.files[path];
        Ok(after.as_ref().unwrap_or(before).as_deref())
    }

    fn require(&mut self, path: &str, made_by: &str) -> Result<&str, Error> {
        self.get(path)?.ok_or_else(|| missing(path, made_by))
    }

    fn set(&mut self, path: &str, text: Option<String>) -> Result<(), Error> {
        self.get(path)?;
        self.files.get_mut(path).expect("read above").1 = Some(text);
        Ok(())
    }

    /// A YAML file as the job has left it so far, read once: where the source already read
    /// it (the state the steps before would leave), as the source read it.
    fn document(&mut self, path: &str, made_by: &str) -> Result<&Document, Error> {
        self.prove(path)?;
        if !self.documents.contains_key(path) {
            let doc = if self.files.contains_key(path) {
                Document::parse(self.require(path, made_by)?.to_string())
            } else {
                let doc = self
                    .src
                    .document(path)?
                    .ok_or_else(|| missing(path, made_by))?;
                if let Ok(doc) = &doc {
                    let before = Some(doc.text().to_string());
                    self.files.insert(path.to_string(), (before, None));
                }
                doc
            };
            let doc = doc.map_err(|e| in_file(path, e))?;
            self.documents.insert(path.to_string(), doc);
        }
        Ok(&self.documents[path])
    }

    /// Plan edits of a YAML file on its document as the calls before left it, naming the file
    /// in any error.
    fn plan(
        &mut self,
        path: &str,
        made_by: &str,
        f: impl FnOnce(&Document) -> Result<Option<Plan>, YamlError>,
    ) -> Result<(), Error> {
        let doc = self.document(path, made_by)?;
        if let Some(plan) = f(doc).map_err(|e| in_file(path, e))? {
            self.plans.insert(path.to_string(), plan);
        }
        Ok(())
    }

    /// Apply the edits planned on a file and read the result, which must mean what they intend.
    fn prove(&mut self, path: &str) -> Result<(), Error> {
        let Some(plan) = self.plans.remove(path) else {
            return Ok(());
        };
        let doc = self.documents.remove(path).expect("planned on it");
        let proved = prove(&doc, plan).map_err(|e| in_file(path, e))?;
        self.set(path, Some(proved.text().to_string()))?;
        self.documents.insert(path.to_string(), proved);
        Ok(())
    }

    /// Apply an edit to a YAML file, naming the file in any error.
    fn edit(
        &mut self,
        path: &str,
        made_by: &str,
        f: impl FnOnce(&Document) -> Result<Option<Document>, YamlError>,
    ) -> Result<(), Error> {
        self.document(path, made_by)?;
        let doc = self.documents.remove(path).expect("read above");
        let doc = match f(&doc).map_err(|e| in_file(path, e))? {
            Some(edited) => {
                self.set(path, Some(edited.text().to_string()))?;
                edited
            }
            None => doc,
        };
        self.documents.insert(path.to_string(), doc);
        Ok(())
    }

    /// Create a file canary owns, or accept it when it already says the same thing.
    fn create(&mut self, path: &str, text: String) -> Result<(), Error> {
        match self.get(path)? {
            None => self.set(path, Some(text))?,
            Some(existing) if existing == text => {}
            Some(existing) => {
                let same = yaml::parse_all(existing).map_err(|e| in_file(path, e))?
                    == yaml::parse_all(&text).map_err(|e| in_file(path, e))?;
                if !same {
                    return Err(bad_input(format!(
                        "{path} already exists and differs from what canary would write; move it \
                         away or make it match, then run this again"
                    )));
                }
            }
        }
        Ok(())
    }

    fn into_changes(mut self) -> Result<Vec<FileChange>, Error> {
        let planned: Vec<String> = self.plans.keys().cloned().collect();
        for path in planned {
            self.prove(&path)?;
        }
        Ok(self
            .files
            .into_iter()
            .filter_map(|(path, (before, after))| {
                let after = after.filter(|after| *after != before)?;
                let document = self
                    .documents
                    .remove(&path)
                    .filter(|doc| after.as_deref() == Some(doc.text()));
                Some(FileChange {
                    path,
                    before,
                    after,
                    document,
                })
            })
            .collect())
    }
}

fn missing(path: &str, made_by: &str) -> Error {
    bad_input(format!(
        "{path} is missing; {made_by} writes it, and the release is past that step"
    ))
}

/// A YAML problem in a user's file is bad input; a failed self-check is canary's own bug.
fn in_file(path: &str, e: YamlError) -> Error {
    match e {
        YamlError::Verify(_) => Error::Failed(format!("{path}: {e}; nothing was written")),
        other => bad_input(format!("{path}: {other}")),
    }
}

/// The changes an edit makes to the files `src` shows (the repository as it stands, or as the
/// steps before it would leave it); empty when it is already applied.
pub fn plan(
    edit: &FileEdit,
    config: &Settings,
    src: &dyn Source,
) -> Result<Vec<FileChange>, Error> {
    let mut draft = Draft {
        src,
        files: BTreeMap::new(),
        documents: BTreeMap::new(),
        plans: BTreeMap::new(),
    };
    let envs = config.environments.len();
    match edit {
        FileEdit::Step { edit: step } => match *step {
            StepEdit::DeployV1 => deploy_v1(&mut draft, config)?,
            StepEdit::RoutingSubsets => routing_subsets(&mut draft, config)?,
            StepEdit::RoutingRoutes => routing_routes(&mut draft, config)?,
            StepEdit::RouteToV1
            | StepEdit::StagingToV2
            | StepEdit::RampLast(_)
            | StepEdit::RampOthers => set_weights(&mut draft, config, step.weights(envs))?,
            StepEdit::SwitchToV2 => {
                let switch = config.switch.as_ref().ok_or_else(|| {
                    Error::Failed(format!(
                        "the release of {} has no switch to set; only coexistence flips one",
                        config.service
                    ))
                })?;
                draft.plan(GAP_YAML, "deploy-v1", |doc| {
                    set_switch(doc, WEB, switch, Version::V2)
                })?
            }
            StepEdit::Cleanup1 => cleanup_1(&mut draft, config)?,
            StepEdit::Cleanup2 => {
                for env in &config.environments {
                    draft.set(&virtual_service_patch(&env.name), None)?;
                }
            }
            StepEdit::Cleanup3 => {
                for path in [DESTINATION_RULE, DESTINATION_RULE_ALT] {
                    draft.set(path, None)?;
                }
            }
        },
        FileEdit::Move(m) => m.edit(&mut draft, config)?,
    }
    draft.into_changes()
}

fn deploy_v1(draft: &mut Draft, config: &Settings) -> Result<(), Error> {
    let image = config
        .v1_image
        .as_ref()
        .map(|i| (i.repository.as_str(), i.digest.as_str()));
    let twin = |doc: &Document| {
        gap_yaml::plan_twin(
            doc,
            WEB,
            WEB_V1,
            &[("version", "v1"), ("canary", "enabled")],
            image,
        )
    };
    // A conflict names its line; the line of the file on disk, not of the draft.
    let mut on_disk = None;
    draft.plan(GAP_YAML, "the repository", |doc| {
        let service = gap_yaml::service_name(doc)?;
        if service != config.service {
            return Err(YamlError::Conflict(format!(
                "the service is named {service:?} here, not {:?}",
                config.service
            )));
        }
        let labelled =
            gap_yaml::plan_pod_labels(doc, WEB, &[("version", "v2"), ("canary", "enabled")])?;
        // The twin copies web's keys other than its labels, which the labels leave as they
        // are: both are planned on this one reading.
        let Some(switch) = &config.switch else {
            return Ok(labelled.into_iter().chain(twin(doc)?).reduce(Plan::join));
        };
        // In coexistence web serves v1 until deploy-v2 flips its switch, and its twin is made
        // from it with that same v1 value: from the file as the switch leaves it.
        on_disk = twin(doc).err();
        let switched = set_switch(doc, WEB, switch, Version::V1)?;
        Ok(labelled.into_iter().chain(switched).reduce(Plan::join))
    })?;
    if config.switch.is_some() {
        draft.plan(GAP_YAML, "the repository", |doc| match twin(doc) {
            Err(e @ YamlError::Conflict(_)) => Err(on_disk.unwrap_or(e)),
            planned => planned,
        })?;
    }
    for (path, text) in patch_twins::twins(draft.src, config)? {
        draft.create(&path, text)?;
    }
    Ok(())
}

/// Set `dep`'s switch to the value that selects `version`.
fn set_switch(
    doc: &Document,
    dep: &str,
    switch: &Switch,
    version: Version,
) -> Result<Option<Plan>, YamlError> {
    let other = match version {
        Version::V1 => Version::V2,
        Version::V2 => Version::V1,
    };
    match switch {
        Switch::Env { name, .. } => gap_yaml::plan_env_value(doc, dep, name, switch.value(version)),
        Switch::Arg { .. } => {
            gap_yaml::plan_command_arg(doc, dep, switch.value(other), switch.value(version))
        }
    }
}

fn routing_subsets(draft: &mut Draft, config: &Settings) -> Result<(), Error> {
    let path = destination_rule_path(draft)?;
    draft.create(path, templates::destination_rule(path, config))?;
    draft.plan(GAP_YAML, "deploy-v1", |doc| {
        gap_yaml::plan_ingress_authorization(
            doc,
            WEB,
            WEB_V1,
            INGRESS_NAMESPACE,
            INGRESS_SERVICE_ACCOUNT,
        )
    })
}

/// The seed's file name, unless a person already made the DestinationRule under the other one.
fn destination_rule_path(draft: &mut Draft) -> Result<&'static str, Error> {
    Ok(
        if draft.get(DESTINATION_RULE)?.is_none() && draft.get(DESTINATION_RULE_ALT)?.is_some() {
            DESTINATION_RULE_ALT
        } else {
            DESTINATION_RULE
        },
    )
}

fn routing_routes(draft: &mut Draft, config: &Settings) -> Result<(), Error> {
    for env in &config.environments {
        let path = virtual_service_patch(&env.name);
        // A patch that already routes keeps its weights: only a missing one starts at 100% v2.
        if draft.get(&path)?.is_none() {
            draft.create(
                &path,
                templates::virtual_service_patch(&path, config, env, FIRST_V2_WEIGHT),
            )?;
        }
    }
    draft.create(
        SERVICE_PATCH,
        templates::service_patch(SERVICE_PATCH, config),
    )
}

fn set_weights(
    draft: &mut Draft,
    config: &Settings,
    Weights { envs, v2 }: Weights,
) -> Result<(), Error> {
    for env in &config.environments[envs] {
        draft.edit(&virtual_service_patch(&env.name), "add-routing", |doc| {
            virtual_service::set_route_weights(doc, &[("v1", 100 - v2), ("v2", v2)])
        })?;
    }
    Ok(())
}

fn cleanup_1(draft: &mut Draft, config: &Settings) -> Result<(), Error> {
    for env in &config.environments {
        let path = virtual_service_patch(&env.name);
        let doc = draft.document(&path, "add-routing")?;
        let weights = virtual_service::route_weights(doc).map_err(|e| in_file(&path, e))?;
        if let Some((_, w)) = weights.iter().find(|(subset, w)| subset == "v1" && *w > 0) {
            return Err(bad_input(format!(
                "{path} still sends {w}% to v1; web-v1 cannot go while it has traffic"
            )));
        }
        draft.edit(&path, "add-routing", |doc| {
            virtual_service::remove_subset_destination(doc, "v1")
        })?;
    }
    draft.set(SERVICE_PATCH, None)?;
    draft.plan(GAP_YAML, "the repository", |doc| {
        gap_yaml::plan_removal(doc, WEB_V1)
    })?;
    for path in patch_twins::web_v1_patches(draft.src, config)? {
        draft.set(&path, None)?;
    }
    Ok(())
}
