//! The edits made outside the plan: `canary weight`, `canary abort` (by hand or by the gate) and
//! the re-pin at the v1 image check. One kind of move, with its arguments, answers everything
//! else asks of it: the files it changes, how it moves the workflow, the event that records it,
//! its words and the settings it changes.

use serde::{Deserialize, Serialize};

use super::{Draft, FileChange, GAP_YAML, gap_yaml, set_weights, virtual_service_patch};
use crate::error::Error;
use crate::settings::{Image, Settings, WEB_V1};
use crate::workflow::{Action, OutOfBandEdit, Position, plan};

/// An edit made outside the plan. Journaled inside a step in progress as its `job`, as the
/// file edit it was before moves were one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "job")]
pub enum Move {
    /// One environment's v2 weight, set by hand.
    Weight { env: usize, percent: u8 },
    /// Every environment back to 100% v1 (an abort during deploy-v2 and ramp).
    Abort,
    /// Every environment back to 100% v2 (an abort during route-to-v1).
    AbortToV2,
    /// web-v1 pinned to another image, the one final image update.
    Repin { image: Image },
}

impl Move {
    /// The abort of `release` from where it stands, as `canary abort` and the gate's auto-abort
    /// make it.
    pub fn abort(position: &Position, config: &Settings) -> Move {
        match position.abort_edit(&plan(&config.shape())) {
            OutOfBandEdit::AbortToV2 => Move::AbortToV2,
            OutOfBandEdit::Abort | OutOfBandEdit::SetWeight(_) | OutOfBandEdit::RepinV1 => {
                Move::Abort
            }
        }
    }

    /// Draft the move's changes to the files.
    pub(super) fn edit(&self, draft: &mut Draft, config: &Settings) -> Result<(), Error> {
        let envs = config.environments.len();
        match self {
            Move::Weight { env, percent } => {
                let weights = OutOfBandEdit::SetWeight(*percent).weights(*env..*env + 1);
                set_weights(draft, config, weights)
            }
            Move::Abort => set_weights(draft, config, OutOfBandEdit::Abort.weights(0..envs)),
            Move::AbortToV2 => {
                set_weights(draft, config, OutOfBandEdit::AbortToV2.weights(0..envs))
            }
            Move::Repin { image } => draft.plan(GAP_YAML, "deploy-v1", |doc| {
                gap_yaml::plan_twin_image(doc, WEB_V1, &image.repository, &image.digest)
            }),
        }
    }

    /// How the move moves the workflow, given the files it changed: what did not change needs
    /// no deploy.
    pub fn action(&self, changes: &[FileChange], config: &Settings) -> Action {
        match *self {
            Move::Weight { env, percent } => Action::SetWeight {
                env,
                percent,
                changed: !changes.is_empty(),
            },
            Move::Abort | Move::AbortToV2 => {
                let paths: Vec<String> = config
                    .environments
                    .iter()
                    .map(|env| virtual_service_patch(&env.name))
                    .collect();
                Action::Abort {
                    changed: (0..paths.len())
                        .filter(|&env| changes.iter().any(|c| c.path == paths[env]))
                        .collect(),
                }
            }
            Move::Repin { .. } => Action::RepinV1,
        }
    }

    /// The move in words, as it is asked and journaled.
    pub fn describe(&self, config: &Settings) -> String {
        match self {
            Move::Weight { env, percent } => format!(
                "send {percent}% of {}'s traffic to v2",
                config.environments[*env].name
            ),
            Move::Abort => "send all traffic back to v1".into(),
            Move::AbortToV2 => "send all traffic back to v2".into(),
            Move::Repin { .. } => "pin web-v1 to the new image".into(),
        }
    }

    /// The release's settings once the move is made, where it changes them.
    pub fn settings(&self, config: &Settings) -> Option<Settings> {
        match self {
            Move::Repin { image } => Some(Settings {
                v1_image: Some(image.clone()),
                ..config.clone()
            }),
            Move::Weight { .. } | Move::Abort | Move::AbortToV2 => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::FileEdit;
    use super::*;
    use crate::workflow::StepEdit;

    /// A step in progress keeps its edit in the journal: the journals of every version read.
    #[test]
    fn a_file_edit_is_journaled_as_before_moves_were_a_kind() {
        let image: Image = format!("registry/s@sha256:{}", "1".repeat(64))
            .parse()
            .unwrap();
        for (edit, json) in [
            (
                FileEdit::Step {
                    edit: StepEdit::RampLast(5),
                },
                r#"{"job":"step","edit":{"edit":"ramp-last","weight":5}}"#.to_string(),
            ),
            (
                FileEdit::Move(Move::Weight {
                    env: 1,
                    percent: 30,
                }),
                r#"{"job":"weight","env":1,"percent":30}"#.into(),
            ),
            (FileEdit::Move(Move::Abort), r#"{"job":"abort"}"#.into()),
            (
                FileEdit::Move(Move::AbortToV2),
                r#"{"job":"abort-to-v2"}"#.into(),
            ),
            (
                FileEdit::Move(Move::Repin {
                    image: image.clone(),
                }),
                format!(
                    r#"{{"job":"repin","image":{}}}"#,
                    serde_json::to_string(&image).unwrap()
                ),
            ),
        ] {
            assert_eq!(serde_json::to_string(&edit).unwrap(), json);
            assert_eq!(serde_json::from_str::<FileEdit>(&json).unwrap(), edit);
        }
    }
}
