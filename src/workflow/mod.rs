//! The release workflow as data: phases, steps, and the single function that decides what may
//! follow what. Pure logic, no I/O: the commands, the journal and the file edits sit around it.
//!
//! A release walks a fixed *plan* (a list of steps derived from its environments and ramp
//! schedule). Its position is an index into that plan plus the environments whose files changed
//! out of band (`canary weight`, `canary abort`, a re-pinned v1 image) and still wait for a deploy,
//! and the observation that a production weight set by hand owes before the ramp goes on.
//!
//! What each phase and each edit means (its words, the objects it adds and removes, the weights
//! it writes, its explanation) is said once, in [`phases`], for everything else to read.

pub mod phases;

use std::fmt::{self, Display};

use serde::{Deserialize, Serialize};

pub use phases::{
    AnyEdit, Deleted, Delivery, Explanation, FIRST_V2_WEIGHT, OutOfBandEdit, PHASES, Resource,
    StepEdit, Weights, deploy_question,
};

/// The eight phases of a release, then `done`. Names are the ones users see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    DeployV1,
    AddRouting,
    RouteToV1,
    DeployV2,
    Ramp,
    #[serde(rename = "cleanup-1")]
    Cleanup1,
    #[serde(rename = "cleanup-2")]
    Cleanup2,
    #[serde(rename = "cleanup-3")]
    Cleanup3,
    Done,
}

impl Phase {
    pub const ALL: [Phase; 9] = [
        Phase::DeployV1,
        Phase::AddRouting,
        Phase::RouteToV1,
        Phase::DeployV2,
        Phase::Ramp,
        Phase::Cleanup1,
        Phase::Cleanup2,
        Phase::Cleanup3,
        Phase::Done,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::DeployV1 => "deploy-v1",
            Phase::AddRouting => "add-routing",
            Phase::RouteToV1 => "route-to-v1",
            Phase::DeployV2 => "deploy-v2",
            Phase::Ramp => "ramp",
            Phase::Cleanup1 => "cleanup-1",
            Phase::Cleanup2 => "cleanup-2",
            Phase::Cleanup3 => "cleanup-3",
            Phase::Done => "done",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One step of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Step {
    /// Write files.
    Edit { edit: StepEdit },
    /// The operator deploys the last edit to one environment (index into the environments).
    Deploy { env: usize, after: StepEdit },
    /// The operator confirms that the deployed web-v1 runs the pinned image.
    CheckV1Image,
    /// The operator lands the v2 code and deploys it to one environment.
    DeployV2 { env: usize },
    /// The operator confirms that v2 was tested on the first environment(s).
    ConfirmV2Tested,
    /// The operator watched v2 at this production weight and wants to go on.
    Observe { weight: u8 },
}

/// How v1 and v2 are held apart, in the seed's words.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// v1 is pinned to its last build; the v2 code replaces it in web (the seed's default).
    #[default]
    Succession,
    /// One image holds both; a switch passed to the container selects v1 or v2, and canary
    /// itself flips web's switch to v2 in deploy-v2.
    Coexistence,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Succession => "succession",
            Method::Coexistence => "coexistence",
        }
    }

    pub fn is_default(&self) -> bool {
        *self == Method::default()
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The shape of a release that the plan depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// Environment names, in deploy order; the last one is production, the one that is ramped.
    pub environments: Vec<String>,
    /// Production's v2 weights during the ramp: strictly increasing, ending at 100.
    pub schedule: Vec<u8>,
    /// Absent from releases journaled before coexistence existed: those are successions.
    #[serde(default, skip_serializing_if = "Method::is_default")]
    pub method: Method,
    /// Absent from releases journaled before staging led production: those keep their plan.
    #[serde(default, skip_serializing_if = "PlanVersion::is_default")]
    pub plan: PlanVersion,
}

/// Which plan a release walks. A release keeps the plan it started with, so that one in flight
/// when canary's plan changes walks on as it was journaled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanVersion {
    /// Production ramps while staging serves 0% v2; staging goes to v2 after production.
    #[default]
    ProductionFirst,
    /// Staging serves 100% v2, deployed, before v2 is confirmed tested and production ramps.
    StagingFirst,
}

impl PlanVersion {
    /// The plan of every release started now.
    pub const CURRENT: PlanVersion = PlanVersion::StagingFirst;

    pub fn is_default(&self) -> bool {
        *self == PlanVersion::default()
    }
}

impl Shape {
    pub fn last_env(&self) -> usize {
        self.environments.len() - 1
    }
}

/// The full, ordered list of steps for a release of this shape, each with its phase.
pub fn plan(shape: &Shape) -> Vec<(Phase, Step)> {
    let envs = 0..shape.environments.len();
    let mut plan = Vec::new();
    let edit_then_deploy = |plan: &mut Vec<_>, edit: StepEdit, envs: std::ops::Range<usize>| {
        let phase = edit.phase();
        plan.push((phase, Step::Edit { edit }));
        plan.extend(envs.map(|env| (phase, Step::Deploy { env, after: edit })));
    };
    edit_then_deploy(&mut plan, StepEdit::DeployV1, envs.clone());
    edit_then_deploy(&mut plan, StepEdit::RoutingSubsets, envs.clone());
    edit_then_deploy(&mut plan, StepEdit::RoutingRoutes, envs.clone());
    match shape.method {
        // web-v1 runs a pinned image, which the operator confirms before it gets traffic; then
        // the operator lands the v2 code.
        Method::Succession => {
            plan.push((Phase::RouteToV1, Step::CheckV1Image));
            edit_then_deploy(&mut plan, StepEdit::RouteToV1, envs.clone());
            plan.extend(
                envs.clone()
                    .map(|env| (Phase::DeployV2, Step::DeployV2 { env })),
            );
        }
        // web-v1 runs web's own image, which the analysis checks at every step; the v2 code
        // is already in it, and canary flips web's switch.
        Method::Coexistence => {
            edit_then_deploy(&mut plan, StepEdit::RouteToV1, envs.clone());
            edit_then_deploy(&mut plan, StepEdit::SwitchToV2, envs.clone());
        }
    }
    let last = shape.last_env();
    if shape.plan == PlanVersion::StagingFirst && last > 0 {
        // v2 is tested where it serves all of the traffic before production gets any.
        edit_then_deploy(&mut plan, StepEdit::StagingToV2, 0..1);
    }
    plan.push((Phase::DeployV2, Step::ConfirmV2Tested));
    for &weight in &shape.schedule {
        edit_then_deploy(&mut plan, StepEdit::RampLast(weight), last..last + 1);
        plan.push((Phase::Ramp, Step::Observe { weight }));
    }
    if last > 0 {
        edit_then_deploy(&mut plan, StepEdit::RampOthers, 0..last);
    }
    edit_then_deploy(&mut plan, StepEdit::Cleanup1, envs.clone());
    edit_then_deploy(&mut plan, StepEdit::Cleanup2, envs.clone());
    edit_then_deploy(&mut plan, StepEdit::Cleanup3, envs);
    plan
}

/// Plans by shape: listing many releases, most of them of one or two shapes, builds each
/// plan once. A short list searched in order beats hashing a shape per release.
#[derive(Debug, Default)]
pub struct Plans(Vec<(Shape, Vec<(Phase, Step)>)>);

impl Plans {
    pub fn of(&mut self, shape: &Shape) -> &[(Phase, Step)] {
        let i = match self.0.iter().position(|(s, _)| s == shape) {
            Some(i) => i,
            None => {
                self.0.push((shape.clone(), plan(shape)));
                self.0.len() - 1
            }
        };
        &self.0[i].1
    }
}

/// Where a release stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    /// Index of the next step in the plan; `plan.len()` once done.
    pub index: usize,
    /// Environments whose files an out-of-band edit changed, waiting for their deploy, with
    /// the edit that changed them. Kept in environment order.
    pub pending: Vec<(usize, AnyEdit)>,
    /// A production v2 weight set by hand during the ramp: once its deploy is confirmed, v2 is
    /// observed at it before the plan goes on, as at every scheduled weight. Absent from
    /// journals written before it was kept, which read as owing nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observe: Option<u8>,
    /// Whether the first environment has served 100% v2 since deploy-v2 sent it there: v2 is
    /// confirmed tested only then. Absent before that step, and from older journals.
    #[serde(default, skip_serializing_if = "StagingV2::is_default")]
    pub staging: StagingV2,
}

/// The first environment's v2 traffic from deploy-v2's [`StepEdit::StagingToV2`] on, until the
/// question "was v2 tested?" is answered. `canary weight` may still move it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state", content = "weight")]
pub enum StagingV2 {
    /// The step has not sent it to v2 (in this round of deploy-v2).
    #[default]
    NotSent,
    /// Its files send this much to v2, and it has not yet served 100% v2 deployed.
    Written(u8),
    /// It served 100% v2, deployed.
    Served,
}

impl StagingV2 {
    pub fn is_default(&self) -> bool {
        *self == StagingV2::default()
    }
}

/// What `canary next` does from a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// A deploy owed by an out-of-band edit comes before the plan goes on.
    Pending { env: usize, after: AnyEdit },
    /// The observation owed by a production weight set by hand, once it is deployed.
    Observe { weight: u8 },
    /// The plan's own step.
    Planned(Phase, Step),
    /// Nothing left.
    Done,
}

/// Something a person or a command asks of the release. `changed` says whether the edit that
/// goes with it changed any file: what did not change needs no deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    /// Finish the step `next` would take.
    Complete { changed: bool },
    /// Set one environment's v2 weight (0 to 100) in its patch file (`canary weight`).
    SetWeight {
        env: usize,
        percent: u8,
        changed: bool,
    },
    /// Every environment back to the last routes known good (`canary abort`; see
    /// [`Position::abort_edit`]); `changed` lists the environments whose files changed.
    Abort { changed: Vec<usize> },
    /// Pin web-v1 to another image at the v1 image check.
    RepinV1,
}

/// Why an action is not allowed now: what must come first, and what to run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refusal {
    pub reason: String,
    /// The step that must come first, as users see it; `None` once the release is done.
    pub first: Option<String>,
    /// `canary weight` to run first (environment, percent), where that is the way on.
    pub weight: Option<(usize, u8)>,
}

impl Position {
    /// The position of a release read off its files (`start --adopt`): right before step
    /// `index`, owing nothing else. Past the step that sent staging to v2, the files send it
    /// 100% v2 (that is what fits), and its deploy, once confirmed, is staging serving it.
    pub fn read_off_files(plan: &[(Phase, Step)], index: usize) -> Position {
        let sent = plan[..index.min(plan.len())].iter().any(|(_, s)| {
            *s == Step::Edit {
                edit: StepEdit::StagingToV2,
            }
        });
        Position {
            index,
            staging: match sent {
                true => StagingV2::Written(100),
                false => StagingV2::NotSent,
            },
            ..Position::default()
        }
    }

    pub fn next(&self, plan: &[(Phase, Step)]) -> NextStep {
        if let Some(&(env, after)) = self.pending.first() {
            return NextStep::Pending { env, after };
        }
        if let Some(weight) = self.observe {
            return NextStep::Observe { weight };
        }
        match plan.get(self.index) {
            Some(&(phase, step)) => NextStep::Planned(phase, step),
            None => NextStep::Done,
        }
    }

    /// The phase the release is in. An owed observation keeps it in the ramp, even where the
    /// ramp's own steps are all behind it (production set to 100% by hand).
    pub fn phase(&self, plan: &[(Phase, Step)]) -> Phase {
        if self.observe.is_some() {
            return Phase::Ramp;
        }
        plan.get(self.index)
            .map_or(Phase::Done, |&(phase, _)| phase)
    }

    /// What `canary abort` writes from here: back to 100% v1 once v2 may have traffic, back to
    /// 100% v2 while route-to-v1 moves traffic onto the pinned v1.
    pub fn abort_edit(&self, plan: &[(Phase, Step)]) -> OutOfBandEdit {
        match self.phase(plan) {
            Phase::RouteToV1 => OutOfBandEdit::AbortToV2,
            _ => OutOfBandEdit::Abort,
        }
    }

    /// Apply an action, or say why it may not happen now.
    pub fn apply(
        &self,
        shape: &Shape,
        plan: &[(Phase, Step)],
        action: Action,
    ) -> Result<Position, Refusal> {
        match action {
            Action::Complete { changed } => self.complete(shape, plan, changed),
            Action::SetWeight {
                env,
                percent,
                changed,
            } => self.set_weight(shape, plan, env, percent, changed),
            Action::Abort { changed } => self.abort(shape, plan, &changed),
            Action::RepinV1 => self.repin(shape, plan),
        }
    }

    fn complete(
        &self,
        shape: &Shape,
        plan: &[(Phase, Step)],
        changed: bool,
    ) -> Result<Position, Refusal> {
        let mut next = self.clone();
        match self.next(plan) {
            NextStep::Done => {
                return Err(Refusal {
                    reason: "the release is done; there is no step left".into(),
                    first: None,
                    weight: None,
                });
            }
            NextStep::Pending { env, .. } => {
                next.pending.remove(0);
                next.deployed(env);
            }
            NextStep::Observe { .. } => next.observe = None,
            NextStep::Planned(_, Step::ConfirmV2Tested)
                if self.staging != StagingV2::Served && has_staging_step(plan) =>
            {
                return Err(self.untested(shape, plan));
            }
            NextStep::Planned(_, step) => {
                match step {
                    Step::Edit {
                        edit: StepEdit::StagingToV2,
                    } => {
                        // Unchanged, the files already sent it 100% v2, and no deploy is owed.
                        next.staging = match changed {
                            true => StagingV2::Written(100),
                            false => StagingV2::Served,
                        }
                    }
                    Step::Deploy { env, .. } => next.deployed(env),
                    _ => {}
                }
                next.index += 1;
                if let (Step::Edit { edit }, false) = (step, changed) {
                    // Nothing was written, so there is nothing to deploy.
                    while let Some((_, Step::Deploy { after, .. })) = plan.get(next.index) {
                        debug_assert_eq!(*after, edit);
                        next.index += 1;
                    }
                }
            }
        }
        Ok(next)
    }

    fn set_weight(
        &self,
        shape: &Shape,
        plan: &[(Phase, Step)],
        env: usize,
        percent: u8,
        changed: bool,
    ) -> Result<Position, Refusal> {
        let phase = self.phase(plan);
        let is_last = env == shape.last_env();
        let allowed = match phase {
            Phase::Ramp => true,
            Phase::DeployV2 => !is_last,
            _ => false,
        };
        if !allowed {
            let when = if is_last {
                "during ramp, once v2 is deployed to it and tested"
            } else {
                "during deploy-v2 and ramp"
            };
            return Err(self.refuse(
                shape,
                plan,
                format!(
                    "{}'s weights may change only {when}; the release is in {phase}",
                    shape.environments[env]
                ),
            ));
        }
        if is_last && let Some(owed) = self.unobserved(plan).filter(|&owed| percent > owed) {
            return Err(self.refuse(
                shape,
                plan,
                format!(
                    "{}'s v2 weight may go above {owed}% only once v2 at {owed}% is deployed \
                     there and observed; the release is in {phase}",
                    shape.environments[env]
                ),
            ));
        }
        if !changed {
            // The file already says so: nothing to deploy, nothing new to observe, and no step
            // of the plan may be skipped for it.
            return Ok(self.clone());
        }
        let mut next = self.clone();
        next.add_pending(env, OutOfBandEdit::SetWeight(percent));
        if env == 0 && matches!(self.staging, StagingV2::Written(_)) {
            next.staging = StagingV2::Written(percent);
        }
        if phase == Phase::Ramp {
            let ramp_others = plan
                .iter()
                .position(|(_, s)| {
                    *s == Step::Edit {
                        edit: StepEdit::RampOthers,
                    }
                })
                .unwrap_or_else(|| phase_start(plan, Phase::Cleanup1));
            if is_last {
                // v2 is observed at the weight set by hand; then the ramp goes on from the
                // first scheduled weight above it.
                next.observe = Some(percent);
                next.index =
                    shape
                        .schedule
                        .iter()
                        .find(|&&w| w > percent)
                        .map_or(ramp_others, |&w| {
                            let edit = Step::Edit {
                                edit: StepEdit::RampLast(w),
                            };
                            plan.iter().position(|(_, s)| *s == edit).expect("planned")
                        });
            } else {
                // Cleanup may begin only once this environment is back at 100% v2.
                next.index = next.index.min(ramp_others);
            }
        }
        Ok(next)
    }

    /// The production v2 weight still to be deployed or observed before it may go up: one set
    /// by hand, or a scheduled one between its edit and its observation.
    fn unobserved(&self, plan: &[(Phase, Step)]) -> Option<u8> {
        self.observe.or(match plan.get(self.index) {
            Some(&(
                _,
                Step::Deploy {
                    after: StepEdit::RampLast(w),
                    ..
                }
                | Step::Observe { weight: w },
            )) => Some(w),
            _ => None,
        })
    }

    fn abort(
        &self,
        shape: &Shape,
        plan: &[(Phase, Step)],
        changed: &[usize],
    ) -> Result<Position, Refusal> {
        let phase = self.phase(plan);
        let restart = match phase {
            // v2 has to be deployed (fixed) and tested again before the ramp may start over.
            Phase::DeployV2 | Phase::Ramp => Phase::DeployV2,
            // The pinned v1 is checked (and re-pinned if need be) before traffic moves to it
            // again (in coexistence, the route-to-v1 edit is made again).
            Phase::RouteToV1 if self.index > step_index(plan, StepEdit::RouteToV1) => {
                Phase::RouteToV1
            }
            Phase::RouteToV1 => {
                return Err(self.refuse(
                    shape,
                    plan,
                    "abort has nothing to undo: route-to-v1 has not moved any route to v1, so \
                     the files still send 100% to v2; the release is in route-to-v1"
                        .into(),
                ));
            }
            _ => {
                return Err(self.refuse(
                    shape,
                    plan,
                    format!(
                        "abort routes traffic back to where it was known good, which is possible \
                         only once route-to-v1 has written its routes (back to 100% v2) and \
                         during deploy-v2 and ramp (back to 100% v1); the release is in {phase}"
                    ),
                ));
            }
        };
        let edit = self.abort_edit(plan);
        let mut next = self.clone();
        for &env in changed {
            next.add_pending(env, edit);
        }
        next.index = phase_start(plan, restart);
        next.observe = None;
        // v2 is deployed and tested anew, staging first.
        next.staging = StagingV2::NotSent;
        Ok(next)
    }

    fn repin(&self, shape: &Shape, plan: &[(Phase, Step)]) -> Result<Position, Refusal> {
        if self.next(plan) != NextStep::Planned(Phase::RouteToV1, Step::CheckV1Image) {
            return Err(self.refuse(
                shape,
                plan,
                "web-v1's image may be re-pinned only at the v1 image check of route-to-v1".into(),
            ));
        }
        let mut next = self.clone();
        for env in 0..shape.environments.len() {
            next.add_pending(env, OutOfBandEdit::RepinV1);
        }
        Ok(next)
    }

    fn refuse(&self, shape: &Shape, plan: &[(Phase, Step)], reason: String) -> Refusal {
        Refusal {
            reason,
            first: (self.next(plan) != NextStep::Done).then(|| self.describe_next(shape, plan)),
            weight: None,
        }
    }

    /// A deploy to `env` confirmed: the first environment now serves what its files say.
    fn deployed(&mut self, env: usize) {
        if env == 0 && self.staging == StagingV2::Written(100) {
            self.staging = StagingV2::Served;
        }
    }

    /// Why v2 cannot be confirmed tested yet: the first environment never served it all.
    fn untested(&self, shape: &Shape, plan: &[(Phase, Step)]) -> Refusal {
        let env = &shape.environments[0];
        let now = match self.staging {
            StagingV2::Written(w) => format!("{w}% (`canary weight` set it after that step)"),
            _ => "less than 100%".into(),
        };
        Refusal {
            reason: format!(
                "v2 counts as tested on {env} only once {env} has served it 100% of its traffic \
                 since deploy-v2 sent it there, deployed; {env}'s routes send v2 {now}; the \
                 release is in {}",
                self.phase(plan)
            ),
            first: Some(format!(
                "{}: set {env}'s v2 weight to 100% and deploy it",
                self.phase(plan)
            )),
            weight: Some((0, 100)),
        }
    }

    fn add_pending(&mut self, env: usize, edit: impl Into<AnyEdit>) {
        let edit = edit.into();
        match self.pending.iter_mut().find(|(e, _)| *e == env) {
            Some(entry) => entry.1 = edit,
            None => {
                self.pending.push((env, edit));
                self.pending.sort_by_key(|(e, _)| *e);
            }
        }
    }

    /// The next step in words, e.g. `add-routing: deploy to staging`.
    pub fn describe_next(&self, shape: &Shape, plan: &[(Phase, Step)]) -> String {
        match self.next(plan) {
            NextStep::Done => "done".into(),
            _ => format!(
                "{}: {}",
                self.phase(plan),
                self.describe_next_step(shape, plan)
            ),
        }
    }

    /// The next step in words without its phase, e.g. `deploy to staging`, written as
    /// [`Step::describe`] is.
    pub fn describe_next_step<'a>(
        &self,
        shape: &'a Shape,
        plan: &[(Phase, Step)],
    ) -> impl fmt::Display + 'a {
        let next = self.next(plan);
        fmt::from_fn(move |f| match next {
            NextStep::Pending { env, after } => write!(
                f,
                "deploy to {} ({})",
                shape.environments[env],
                after.describe(shape)
            ),
            NextStep::Observe { weight } => Step::Observe { weight }.describe(shape).fmt(f),
            NextStep::Planned(_, step) => step.describe(shape).fmt(f),
            NextStep::Done => f.write_str("done"),
        })
    }
}

fn phase_start(plan: &[(Phase, Step)], phase: Phase) -> usize {
    plan.iter()
        .position(|(p, _)| *p == phase)
        .expect("every plan has every phase")
}

/// Whether the plan sends the first environment to v2 before the test (a plan of
/// [`PlanVersion::StagingFirst`] with more than one environment).
pub fn has_staging_step(plan: &[(Phase, Step)]) -> bool {
    plan.iter().any(|(_, s)| {
        *s == Step::Edit {
            edit: StepEdit::StagingToV2,
        }
    })
}

/// Where the plan makes an edit that every plan makes once.
fn step_index(plan: &[(Phase, Step)], edit: StepEdit) -> usize {
    plan.iter()
        .position(|(_, s)| *s == Step::Edit { edit })
        .expect("every plan makes this edit")
}

#[cfg(test)]
mod tests;
