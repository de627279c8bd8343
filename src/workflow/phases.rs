//! What each phase and each edit of a release means, said once: its words, the objects it adds
//! to the repository or takes away, the weights it writes, and the explanation behind `canary
//! explain`. The plan ([`super::plan`]), the file edits (`edits::plan`), the analysis
//! (`check::state`) and the explanations (`canary explain`, `canary --help`) all read it here.

use std::fmt::{self, Display};
use std::ops::Range;

use serde::{Deserialize, Serialize};

use super::{Method, Phase, Shape, Step};

/// An edit of the plan: one step that writes files, made once in every release (`RampLast`
/// once per scheduled weight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "edit", content = "weight")]
pub enum StepEdit {
    /// v2 labels on `web`, the pinned `web-v1` twin, twins of patches that target `web`.
    DeployV1,
    /// Round one of add-routing: the DestinationRule subsets and web-v1's AuthorizationPolicy.
    RoutingSubsets,
    /// Round two of add-routing: the VirtualService patches and the Service selector patch.
    RoutingRoutes,
    /// Every environment's route to 100% v1.
    RouteToV1,
    /// Coexistence: web's switch to its v2 value.
    SwitchToV2,
    /// The first environment to 100% v2, where v2 is tested before production's ramp.
    StagingToV2,
    /// The last environment's v2 weight to this ramp value.
    RampLast(u8),
    /// Every environment but the last to 100% v2, so that cleanup may begin.
    RampOthers,
    /// Drop the v1 destination, the Service patch, web-v1 and every patch of it.
    Cleanup1,
    /// Drop the VirtualService patches.
    Cleanup2,
    /// Drop the DestinationRule.
    Cleanup3,
}

/// An edit made outside the plan: it leaves deploys owed, and the plan goes on after them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "edit", content = "weight")]
pub enum OutOfBandEdit {
    /// A new digest for web-v1, when the deployed v1 does not run the pinned image.
    RepinV1,
    /// Weights set by hand with `canary weight`.
    SetWeight(u8),
    /// `canary abort` during deploy-v2 and ramp: every environment back to 100% v1.
    Abort,
    /// `canary abort` during route-to-v1: every environment back to 100% v2, the routes as
    /// add-routing left them (v1 has had no traffic before).
    AbortToV2,
}

/// The edit whose files an environment has still to be deployed with: the plan's, or one made
/// out of band. Journaled as the edit alone, as it was before the two were told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AnyEdit {
    Step(StepEdit),
    OutOfBand(OutOfBandEdit),
}

/// One of the objects canary adds to the repository during a release, and removes again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `web-v1` in gap.yaml.
    Twin,
    /// web-v1's authorizationPolicy.
    Policy,
    DestinationRule,
    /// The VirtualService patches (every environment alike).
    Routes,
    /// The routes' destination to subset v1.
    V1Route,
    ServicePatch,
}

/// The environments whose routes an edit sets, and the v2 weight it sets (v1 gets the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weights {
    pub envs: Range<usize>,
    pub v2: u8,
}

/// The v2 weight of the VirtualService patches add-routing creates: v2 keeps all the traffic.
pub const FIRST_V2_WEIGHT: u8 = 100;

impl StepEdit {
    /// The phase whose step it is.
    pub fn phase(self) -> Phase {
        match self {
            StepEdit::DeployV1 => Phase::DeployV1,
            StepEdit::RoutingSubsets | StepEdit::RoutingRoutes => Phase::AddRouting,
            StepEdit::RouteToV1 => Phase::RouteToV1,
            StepEdit::SwitchToV2 | StepEdit::StagingToV2 => Phase::DeployV2,
            StepEdit::RampLast(_) | StepEdit::RampOthers => Phase::Ramp,
            StepEdit::Cleanup1 => Phase::Cleanup1,
            StepEdit::Cleanup2 => Phase::Cleanup2,
            StepEdit::Cleanup3 => Phase::Cleanup3,
        }
    }

    /// The edit in words; `shape` names the environment that is ramped. Written as it is shown
    /// (no `String` of its own): `canary list` writes a thousand of them into one table.
    pub fn describe(self, shape: &Shape) -> impl fmt::Display + '_ {
        fmt::from_fn(move |f| match self {
            StepEdit::DeployV1 => f.write_str(match shape.method {
                Method::Succession => "add the pinned web-v1 deployment and the version labels",
                Method::Coexistence => {
                    "add web-v1, web's twin, both with the v1 switch, and the version labels"
                }
            }),
            StepEdit::RoutingSubsets => {
                f.write_str("add the DestinationRule subsets and web-v1's AuthorizationPolicy")
            }
            StepEdit::RoutingRoutes => {
                f.write_str("add the VirtualService patches and the Service patch")
            }
            StepEdit::RouteToV1 => f.write_str("route 100% of traffic to v1"),
            StepEdit::SwitchToV2 => f.write_str("set web's switch to v2"),
            StepEdit::StagingToV2 => write!(
                f,
                "send 100% of {} traffic to v2, to test it",
                shape.environments[0]
            ),
            StepEdit::RampLast(w) => write!(
                f,
                "send {w}% of {} traffic to v2",
                shape.environments[shape.last_env()]
            ),
            StepEdit::RampOthers => {
                f.write_str("send 100% of the other environments' traffic to v2")
            }
            StepEdit::Cleanup1 => f.write_str("remove the v1 route, the Service patch and web-v1"),
            StepEdit::Cleanup2 => f.write_str("remove the VirtualService patches"),
            StepEdit::Cleanup3 => f.write_str("remove the DestinationRule"),
        })
    }

    /// The objects the edit adds to the repository.
    pub fn adds(self) -> &'static [Resource] {
        match self {
            StepEdit::DeployV1 => &[Resource::Twin],
            StepEdit::RoutingSubsets => &[Resource::DestinationRule, Resource::Policy],
            StepEdit::RoutingRoutes => {
                &[Resource::Routes, Resource::V1Route, Resource::ServicePatch]
            }
            _ => &[],
        }
    }

    /// The objects the edit takes away.
    pub fn removes(self) -> &'static [Resource] {
        match self {
            StepEdit::Cleanup1 => &[
                Resource::V1Route,
                Resource::ServicePatch,
                Resource::Twin,
                Resource::Policy,
            ],
            StepEdit::Cleanup2 => &[Resource::Routes],
            StepEdit::Cleanup3 => &[Resource::DestinationRule],
            _ => &[],
        }
    }

    /// The routes it sets the weights of in a release of `envs` environments: none for the
    /// edits that add or remove objects.
    pub fn weights(self, envs: usize) -> Weights {
        let last = envs - 1;
        let (envs, v2) = match self {
            StepEdit::RouteToV1 => (0..envs, 0),
            StepEdit::RampLast(w) => (last..envs, w),
            StepEdit::StagingToV2 => (0..1, 100),
            StepEdit::RampOthers => (0..last, 100),
            _ => (0..0, 0),
        };
        Weights { envs, v2 }
    }
}

impl Step {
    /// The step in words, e.g. `deploy to staging`, written as [`StepEdit::describe`] is.
    pub fn describe(self, shape: &Shape) -> impl fmt::Display + '_ {
        fmt::from_fn(move |f| {
            let env = |i: usize| shape.environments[i].as_str();
            match self {
                Step::Edit { edit } => edit.describe(shape).fmt(f),
                Step::Deploy { env: e, .. } => write!(f, "deploy to {}", env(e)),
                Step::CheckV1Image => f.write_str("check that web-v1 runs the pinned image"),
                Step::DeployV2 { env: e } => write!(f, "deploy the v2 code to {}", env(e)),
                Step::ConfirmV2Tested => write!(f, "confirm that v2 was tested on {}", env(0)),
                Step::Observe { weight } => {
                    write!(f, "observe v2 at {weight}% in {}", env(shape.last_env()))
                }
            }
        })
    }

    /// What the operator does for v2's code deploy while canary watches the cluster for it,
    /// said where canary sees the deploy itself instead of asking [`Step::question`].
    pub fn doing(self, shape: &Shape) -> Option<String> {
        match self {
            Step::DeployV2 { env } => Some(format!(
                "land the v2 code and deploy it to {}",
                shape.environments[env]
            )),
            _ => None,
        }
    }

    /// The question whose yes completes a step the operator answers for, in a release of
    /// `service`. `None` for an edit, whose question is asked over its diff, and for a deploy
    /// of the files, asked as [`deploy_question`] says.
    pub fn question(self, shape: &Shape, service: &str) -> Option<String> {
        let env = |i: usize| shape.environments[i].as_str();
        Some(match self {
            Step::Edit { .. } | Step::Deploy { .. } => return None,
            Step::CheckV1Image => "Does the deployed web-v1 run the pinned image?".into(),
            Step::DeployV2 { env: e } => {
                let name = env(e);
                format!(
                    "Land the v2 code and deploy it to {name}. No production traffic reaches v2 \
                     yet. Is v2 deployed to {name}?"
                )
            }
            Step::ConfirmV2Tested => format!(
                "Test v2 on {} (`canary weight {service} {} PERCENT` moves its traffic). Was v2 \
                 tested and found good?",
                env(0),
                env(0)
            ),
            Step::Observe { weight } => format!(
                "Watch v2 at {weight}% in {}. Does it work well enough to go on? (If not, `canary \
                 abort {service}` sends all traffic back to v1.)",
                env(shape.last_env())
            ),
        })
    }
}

/// Who brings a step's commit to the remote Argo CD deploys from, which is what a deploy asks
/// the operator to do first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The operator pushes, then deploys.
    OperatorPushes,
    /// canary pushed; the operator deploys.
    Pushed,
    /// No remote: the operator deploys what the branch holds.
    Deploy,
}

/// The question that confirms a deploy to `env` of the files `what` wrote, and what the
/// operator does meanwhile (said when canary watches the cluster instead of asking).
pub fn deploy_question(env: &str, what: &str, delivery: Delivery) -> (String, String) {
    let question = match delivery {
        Delivery::OperatorPushes => {
            format!("Push and deploy to {env} ({what}). Is it deployed to {env}?")
        }
        Delivery::Pushed => format!("Pushed ({what}). Is it deployed to {env}?"),
        Delivery::Deploy => format!("Deploy to {env} ({what}). Is it deployed to {env}?"),
    };
    let doing = match delivery {
        Delivery::OperatorPushes => "push and deploy",
        Delivery::Pushed | Delivery::Deploy => "deploy",
    };
    (question, format!("{doing} to {env} ({what})"))
}

/// What a cleanup deleted, by the names the release gives it, for the note at its production
/// deploy: there, Argo CD removes a deleted resource only when the sync prunes.
pub struct Deleted<'a> {
    /// Production's name.
    pub env: &'a str,
    pub namespace: &'a str,
    /// The Service's name, which web-v1's is made from.
    pub service: &'a str,
    /// The patches of web-v1 that cleanup-1 deleted with it.
    pub patches: &'a [String],
    /// The VirtualService patches that cleanup-2 deletes.
    pub routes: &'a [String],
    pub virtual_service: &'a str,
    pub destination_rule: &'a str,
}

impl Phase {
    /// The note at a cleanup phase's production deploy on what it leaves to prune. `prune` says
    /// it of objects where the Application is known (whether its sync prunes on its own); `None`
    /// outside the cleanup.
    pub fn cleanup_note(
        self,
        deleted: &Deleted,
        prune: &dyn Fn(&[String]) -> Option<String>,
    ) -> Option<String> {
        let Deleted {
            env: name,
            namespace: ns,
            ..
        } = *deleted;
        let prune = |what: &str, delete: &str, objects: &[String]| {
            prune(objects).unwrap_or_else(|| {
                format!(
                    "{name} keeps {what} until it is pruned: sync with Argo CD's Prune option, or \
                     {delete} by hand"
                )
            })
        };
        Some(match self {
            Phase::Cleanup1 => {
                let web_v1 = format!("{}-v1", deleted.service);
                let patches = deleted.patches;
                let with_patches = if patches.is_empty() {
                    String::new()
                } else {
                    format!(" (its patches went with it: {})", patches.join(", "))
                };
                format!(
                    "cleanup-1 deleted the Deployment {web_v1}{with_patches} and web-v1's \
                     AuthorizationPolicy; {}. The Service patch went too: the sync gives the \
                     Service {} its own selector back",
                    prune(
                        "them",
                        &format!(
                            "`kubectl -n {ns} delete deployment {web_v1}` and delete web-v1's \
                             AuthorizationPolicy"
                        ),
                        &[
                            format!("Deployment {web_v1}"),
                            "web-v1's AuthorizationPolicy".into(),
                        ]
                    ),
                    deleted.service
                )
            }
            Phase::Cleanup2 => format!(
                "cleanup-2 deleted the VirtualService patches ({}); no resource goes with them: \
                 the sync gives the VirtualService {} its own routes back, with nothing to prune",
                deleted.routes.join(", "),
                deleted.virtual_service
            ),
            Phase::Cleanup3 => {
                let rule = deleted.destination_rule;
                format!(
                    "cleanup-3 deleted the DestinationRule {rule}; {}",
                    prune(
                        "it",
                        &format!("`kubectl -n {ns} delete destinationrule {rule}`"),
                        &[format!("DestinationRule {rule}")]
                    )
                )
            }
            Phase::DeployV1
            | Phase::AddRouting
            | Phase::RouteToV1
            | Phase::DeployV2
            | Phase::Ramp
            | Phase::Done => return None,
        })
    }
}

impl OutOfBandEdit {
    pub fn describe(self) -> String {
        match self {
            OutOfBandEdit::RepinV1 => "pin web-v1 to a new image".into(),
            OutOfBandEdit::SetWeight(w) => format!("set the v2 weight to {w}%"),
            OutOfBandEdit::Abort => "route 100% of traffic back to v1".into(),
            OutOfBandEdit::AbortToV2 => "route 100% of traffic back to v2".into(),
        }
    }

    /// What it sets on the routes of `envs`, the environments it is made to (all of them for
    /// an abort, the one named for a weight): a re-pin sets no weight.
    pub fn weights(self, envs: Range<usize>) -> Weights {
        match self {
            OutOfBandEdit::RepinV1 => Weights { envs: 0..0, v2: 0 },
            OutOfBandEdit::SetWeight(v2) => Weights { envs, v2 },
            OutOfBandEdit::Abort => Weights { envs, v2: 0 },
            OutOfBandEdit::AbortToV2 => Weights { envs, v2: 100 },
        }
    }
}

impl AnyEdit {
    pub fn describe(self, shape: &Shape) -> impl fmt::Display + '_ {
        fmt::from_fn(move |f| match self {
            AnyEdit::Step(edit) => edit.describe(shape).fmt(f),
            AnyEdit::OutOfBand(edit) => f.write_str(&edit.describe()),
        })
    }
}

impl From<StepEdit> for AnyEdit {
    fn from(edit: StepEdit) -> AnyEdit {
        AnyEdit::Step(edit)
    }
}

impl From<OutOfBandEdit> for AnyEdit {
    fn from(edit: OutOfBandEdit) -> AnyEdit {
        AnyEdit::OutOfBand(edit)
    }
}

/// A phase in words: what it does, which files it touches, why it comes where it does, and the
/// words of the seed process it implements.
pub struct Explanation {
    pub phase: Phase,
    pub summary: &'static str,
    pub does: &'static str,
    pub files: &'static [&'static str],
    pub why_here: &'static str,
    /// The seed's own words for this phase.
    pub seed: &'static str,
    /// What the phase summary and text are in coexistence, where they differ.
    pub coexistence: Option<InCoexistence>,
}

/// A phase's summary and what it does in coexistence (the files, the reason and the seed's
/// words are succession's).
pub struct InCoexistence {
    pub summary: &'static str,
    pub does: &'static str,
    /// `None`: succession's files.
    pub files: Option<&'static [&'static str]>,
}

impl Explanation {
    pub fn summary(&self, method: Method) -> &'static str {
        match (&self.coexistence, method) {
            (Some(c), Method::Coexistence) => c.summary,
            _ => self.summary,
        }
    }

    pub fn does(&self, method: Method) -> &'static str {
        match (&self.coexistence, method) {
            (Some(c), Method::Coexistence) => c.does,
            _ => self.does,
        }
    }

    pub fn files(&self, method: Method) -> &'static [&'static str] {
        match (&self.coexistence, method) {
            (Some(InCoexistence { files: Some(f), .. }), Method::Coexistence) => f,
            _ => self.files,
        }
    }
}

impl Phase {
    pub fn explanation(self) -> &'static Explanation {
        PHASES
            .iter()
            .find(|e| e.phase == self)
            .expect("every phase is explained")
    }
}

/// Every phase in words, in order.
pub const PHASES: [Explanation; 9] = [
    Explanation {
        phase: Phase::DeployV1,
        summary: "pin a v1 twin of the old image; label v1 and v2",
        does: "web gets the pod labels version: v2 and canary: enabled. A new deployment web-v1 \
               gets version: v1 and canary: enabled, ingress disabled, the image pinned to the \
               last v1 build by digest, and a copy of web's other settings. Patches that target \
               web get a twin for web-v1. Then deploy to every environment.",
        files: &[
            "gap/gap.yaml",
            "gap/**/<patch>_canary_v1.yaml (twins of web's patches)",
        ],
        why_here: "The existing deployment becomes v2 and keeps the ingress, so no traffic moves \
                   while v1 appears beside it: v1 and v2 are identical releases at this point.",
        seed: "The initial step involves creating a new v1 deployment. The existing deployment \
               will be transitioned to v2. [...] The image version for v1 should point to the \
               last v1 commit. Additionally, please note that we only enable ingress for v2. [...] \
               Don't forget to apply already existing patches to the v1 deployment as well.",
        coexistence: Some(InCoexistence {
            summary: "web-v1, web's twin on its image, both with the switch at v1; label v1 and v2",
            does: "web gets the pod labels version: v2 and canary: enabled, and its switch (the \
                   env var or argument of --switch) set to the v1 value, added if web had none. \
                   A new deployment web-v1 gets version: v1 and canary: enabled, ingress \
                   disabled, the switch at v1 and a copy of web's other settings, with no \
                   pinned image: it runs whatever web runs. Patches that target web get a twin \
                   for web-v1. Then deploy to every environment.",
            files: None,
        }),
    },
    Explanation {
        phase: Phase::AddRouting,
        summary: "subsets and v1's AuthorizationPolicy; then the routes and the Service patch",
        does: "Round one: the DestinationRule with subsets v1 and v2 (selected by the version \
               label), and web-v1's authorizationPolicy (web's rules plus the ingress \
               controller's); deploy everywhere. Round two: a VirtualService patch per \
               environment (v1 weight 0, v2 weight 100) and the Service selector patch that \
               matches both deployments; deploy everywhere.",
        files: &[
            "gap/gap_canary_destination_rule.yaml",
            "gap/gap.yaml (authorizationPolicy of web-v1)",
            "gap/ENV/gap_patch_canary_virtual_service.yaml",
            "gap/gap_patch_canary_service.yaml",
        ],
        why_here: "A VirtualService that names a subset no DestinationRule defines answers 503, \
                   so the subsets are deployed everywhere before any route names them (the seed \
                   does both at once; canary keeps them apart). An ALLOW AuthorizationPolicy \
                   denies what it does not name, so v1 is allowed before it can get traffic.",
        seed: "Add a new the DestinationRule and patch the VirtualService [...] Initially, 100% \
               of the traffic is routed to v2 [...] Subsequently, patch the existing service to \
               match both of the deployments. [...] In addition, the authorization policy for v1 \
               also needs to be patched to allow traffic from ingress to the pods.",
        coexistence: None,
    },
    Explanation {
        phase: Phase::RouteToV1,
        summary: "100% of traffic to v1",
        does: "First the operator confirms that the deployed web-v1 runs the pinned image, or \
               pins another one, which is deployed before the check is asked again. Then every \
               VirtualService patch routes v1 100, v2 0; deploy everywhere. If the pinned v1 \
               misbehaves, `canary abort` routes everything back to v2 100, as add-routing left \
               it; once that is deployed, the release is back at the image check.",
        files: &["gap/ENV/gap_patch_canary_virtual_service.yaml"],
        why_here: "v1 can take the traffic only once it is deployed, routed and allowed \
                   everywhere; v2 must carry none before the new code lands in it.",
        seed: "Ensure that the v1 version is running the correct image. If not, perform one \
               final update. Configure the weights to route 100% of the traffic to v1 by editing \
               the weights in the VirtualService patch files.",
        coexistence: Some(InCoexistence {
            summary: "100% of traffic to v1",
            does: "Every VirtualService patch routes v1 100, v2 0; deploy everywhere. There is no \
                   pinned image to confirm: web-v1 runs web's image, which `canary check` and \
                   `canary verify` compare. If v1 misbehaves, `canary abort` routes everything \
                   back to v2 100, as add-routing left it.",
            files: None,
        }),
    },
    Explanation {
        phase: Phase::DeployV2,
        summary: "land the v2 code; staging to 100% v2; test it there",
        does: "The operator deploys the v2 code to every environment (no production traffic \
               reaches it). Then staging's VirtualService patch sends 100% to v2; deploy to \
               staging. The operator tests v2 there and confirms it; the question is refused \
               while staging has not served 100% v2 since that step (moved back by `canary \
               weight` before its deploy). `canary weight SERVICE staging PERCENT` still moves \
               staging's traffic meanwhile.",
        files: &["gap/staging/gap_patch_canary_virtual_service.yaml"],
        why_here: "Production traffic may reach v2 only after v2 runs in production and served \
                   all of staging's traffic, tested there: staging leads production.",
        seed: "Implement the necessary changes to the codebase and deploy it to production. \
               Since no production traffic is currently directed to the v2 routes, this is safe \
               to do. You can test the v2 (by changing the weights) on staging.",
        coexistence: Some(InCoexistence {
            summary: "set web's switch to v2; staging to 100% v2; test it there",
            does: "canary sets web's switch to the v2 value in gap.yaml (an edit like any step: \
                   diffed, asked, journaled, committed) and it is deployed to every environment \
                   (no production traffic reaches web yet). Then staging's VirtualService patch \
                   sends 100% to v2; deploy to staging. The operator tests v2 there and \
                   confirms it; the question is refused while staging has not served 100% v2 \
                   since that step. `canary weight SERVICE staging PERCENT` still moves \
                   staging's traffic meanwhile.",
            files: Some(&[
                "gap/gap.yaml (web's switch)",
                "gap/staging/gap_patch_canary_virtual_service.yaml",
            ]),
        }),
    },
    Explanation {
        phase: Phase::Ramp,
        summary: "production's v2 weight up the schedule to 100%",
        does: "For each weight of the schedule (1, 5, 10, 25, 50, 100 by default): edit \
               production's VirtualService patch, deploy, observe, confirm; staging serves 100% \
               v2 meanwhile. Then every other environment goes to v2 100 (staging already is, \
               unless moved by hand). `canary abort` sends everything back to v1 at any \
               point; `canary weight` sets a weight by hand, which is deployed and observed \
               before production's weight goes up again. Where production has a Prometheus, \
               each raise and the end of its ramp wait for the metric gate: v2 against v1 and \
               fixed limits, from Istio's metrics (docs/gate.md).",
        files: &["gap/ENV/gap_patch_canary_virtual_service.yaml"],
        why_here: "Only now is v2 deployed everywhere and tested with all of staging's \
                   traffic; small steps first limit what a bad v2 can hurt.",
        seed: "Upon completion of testing, start increasing the traffic to production v2. [...] \
               Progressively increase the weight until 100% traffic is directed to the v2 routes.",
        coexistence: None,
    },
    Explanation {
        phase: Phase::Cleanup1,
        summary: "remove v1: its route, the Service patch, web-v1 and its patches",
        does: "The v1 destination leaves every VirtualService patch, the Service patch goes, \
               web-v1 and every patch of it go (its twins, and any patch of web-v1 made by \
               hand). Deploy everywhere; on production, deleted resources must be pruned \
               (Argo CD's Prune) or deleted by hand.",
        files: &[
            "gap/ENV/gap_patch_canary_virtual_service.yaml",
            "gap/gap_patch_canary_service.yaml",
            "gap/gap.yaml",
        ],
        why_here: "v1 goes only when no environment sends it traffic, in the files and deployed.",
        seed: "Remove the destination to the v1 subset of the service from the \
               gap/(staging|production)/gap_patch_canary_virtual_service.yaml files. [...] Then, \
               remove the canary patch for the Service (gap/gap_patch_canary_service.yaml) and \
               remove the canary deployment from the gap.yaml files.",
        coexistence: None,
    },
    Explanation {
        phase: Phase::Cleanup2,
        summary: "remove the VirtualService patches",
        does: "The VirtualService patch files go; deploy everywhere.",
        files: &["gap/ENV/gap_patch_canary_virtual_service.yaml"],
        why_here: "Once deployed, nothing refers to the DestinationRule's subsets any more.",
        seed: "Remove the VirtualService patch [...] Deploy to staging and production to make \
               sure nothing else refers to the subsets defined in the DestinationRule.",
        coexistence: None,
    },
    Explanation {
        phase: Phase::Cleanup3,
        summary: "remove the DestinationRule",
        does: "The DestinationRule goes (whichever of the seed's two spellings exists); deploy \
               everywhere.",
        files: &["gap/gap_canary_destination_rule.yaml"],
        why_here: "Last, because a route that names a missing subset answers 503: the routes \
                   that named its subsets went in cleanup-2.",
        seed: "Remove the DestinationRule: gap/gap_canary_destinationrule.yaml. Deploy to \
               staging and production.",
        coexistence: None,
    },
    Explanation {
        phase: Phase::Done,
        summary: "the release is complete",
        does: "Nothing is left: gap.yaml is the original plus the two labels on web.",
        files: &[],
        why_here: "Every cleanup phase is deployed everywhere.",
        seed: "Congrats, you are done with the cleanup and the canary release!",
        coexistence: Some(InCoexistence {
            summary: "the release is complete",
            does: "Nothing is left of the release: gap.yaml is the original plus the two labels \
                   on web, and web's switch at v2. The v1 code path and the switch itself can \
                   now be removed from the codebase.",
            files: None,
        }),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_object_an_edit_adds_is_removed_later_and_only_then() {
        use super::super::PlanVersion;
        use super::super::{Step, plan};
        for (method, plan_version) in [Method::Succession, Method::Coexistence]
            .into_iter()
            .flat_map(|m| {
                [
                    (m, PlanVersion::ProductionFirst),
                    (m, PlanVersion::StagingFirst),
                ]
            })
        {
            let shape = Shape {
                environments: vec!["staging".into(), "production".into()],
                schedule: vec![10, 100],
                method,
                plan: plan_version,
            };
            let mut present: Vec<Resource> = Vec::new();
            for (phase, step) in plan(&shape) {
                let Step::Edit { edit } = step else { continue };
                assert_eq!(edit.phase(), phase);
                for r in edit.adds() {
                    assert!(!present.contains(r), "{edit:?} adds {r:?} twice");
                    present.push(*r);
                }
                for r in edit.removes() {
                    assert!(present.contains(r), "{edit:?} removes {r:?}, never added");
                    present.retain(|p| p != r);
                }
            }
            assert_eq!(present, [], "left at the end of the release");
        }
    }

    #[test]
    fn every_phase_is_explained_once_in_order() {
        let phases: Vec<Phase> = PHASES.iter().map(|e| e.phase).collect();
        assert_eq!(phases, Phase::ALL.to_vec());
    }
}
