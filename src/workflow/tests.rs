//! Exhaustive tests of the workflow: every reachable position of several release shapes, every
//! action from each, checked against a model of the repository files and of what each
//! environment runs. The model is written independently of the transition function: it knows
//! what each edit does to the files, and the invariants say what production must never see,
//! at any moment and at any change.

use std::collections::{HashSet, VecDeque};

use super::*;

/// What the files say about routing for one environment (gap.yaml and the shared files are the
/// same for all environments; the VirtualService patch is per environment).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
struct Files {
    v1_deployment: bool,
    v1_authorized: bool,
    destination_rule: bool,
    service_patch: bool,
    /// (v1 weight, v2 weight) of the route, `None` without a VirtualService patch; a route
    /// without the v1 destination has v1 weight `None`.
    route: Option<(Option<u8>, u8)>,
    image_pins: u8,
    /// Coexistence: web's switch selects v2 (web-v1's always selects v1).
    switch_v2: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct World {
    position: Position,
    files: Vec<Files>,
    deployed: Vec<Files>,
    v2_code: Vec<bool>,
    v2_tested: bool,
    /// Production's v2 weight, once the operator watched v2 at it as deployed; any change of
    /// production's file forgets it, as a new weight has to be deployed and watched.
    watched: Option<u8>,
    /// The first change that broke a rule of the ramp, for [`World::check_invariants`].
    broken: Option<String>,
    /// deploy-v2 sent staging to v2 since the last abort (a plan that leads with staging).
    staging_sent: bool,
    /// Since then, staging's deployed routes sent 100% to v2.
    staging_served: bool,
}

/// v2's share of an environment's traffic: without a route, web (which becomes v2) has it all.
fn v2_share(f: &Files) -> u8 {
    f.route.map_or(100, |(_, v2)| v2)
}

fn v1_share(f: &Files) -> u8 {
    f.route.and_then(|(v1, _)| v1).unwrap_or(0)
}

impl World {
    fn new(shape: &Shape) -> World {
        let n = shape.environments.len();
        World {
            position: Position::default(),
            files: vec![Files::default(); n],
            deployed: vec![Files::default(); n],
            v2_code: vec![false; n],
            v2_tested: false,
            watched: None,
            broken: None,
            staging_sent: false,
            staging_served: false,
        }
    }

    /// Staging served 100% v2 once it was sent there and that is deployed.
    fn latch_staging(&mut self) {
        if self.staging_sent && v2_share(&self.deployed[0]) == 100 {
            self.staging_served = true;
        }
    }

    fn observe(&mut self, shape: &Shape, weight: u8) {
        let deployed = v2_share(&self.deployed[shape.last_env()]);
        if deployed != weight && self.broken.is_none() {
            self.broken = Some(format!(
                "asked to observe v2 at {weight}% while production runs {deployed}%"
            ));
        }
        self.watched = Some(deployed);
    }

    /// What an edit does to the files, as the seed describes it.
    fn edit(
        &mut self,
        shape: &Shape,
        edit: impl Into<AnyEdit>,
        target: Option<usize>,
    ) -> Vec<usize> {
        use AnyEdit::{OutOfBand as O, Step as S};
        let edit = edit.into();
        let before = self.files.clone();
        let last = shape.last_env();
        for (env, f) in self.files.iter_mut().enumerate() {
            let set = |f: &mut Files, v2: u8| f.route = Some((Some(100 - v2), v2));
            match edit {
                S(StepEdit::DeployV1) => f.v1_deployment = true,
                S(StepEdit::SwitchToV2) => f.switch_v2 = true,
                S(StepEdit::RoutingSubsets) => {
                    f.destination_rule = true;
                    f.v1_authorized = true;
                }
                S(StepEdit::RoutingRoutes) => {
                    f.service_patch = true;
                    if f.route.is_none() {
                        set(f, 100);
                    }
                }
                // Each re-pin writes a new digest; two suffice to tell one from the next.
                O(OutOfBandEdit::RepinV1) => f.image_pins = (f.image_pins + 1) % 2,
                S(StepEdit::RouteToV1) | O(OutOfBandEdit::Abort) => set(f, 0),
                O(OutOfBandEdit::AbortToV2) => set(f, 100),
                S(StepEdit::RampLast(w)) if env == last => set(f, w),
                S(StepEdit::RampOthers) if env != last => set(f, 100),
                S(StepEdit::StagingToV2) if env == 0 => set(f, 100),
                O(OutOfBandEdit::SetWeight(w)) if Some(env) == target => set(f, w),
                S(StepEdit::RampLast(_))
                | S(StepEdit::RampOthers)
                | S(StepEdit::StagingToV2)
                | O(OutOfBandEdit::SetWeight(_)) => {}
                S(StepEdit::Cleanup1) => {
                    f.v1_deployment = false;
                    f.v1_authorized = false;
                    f.service_patch = false;
                    f.route = f.route.map(|(_, v2)| (None, v2));
                }
                S(StepEdit::Cleanup2) => f.route = None,
                S(StepEdit::Cleanup3) => f.destination_rule = false,
            }
        }
        let (was, now) = (v2_share(&before[last]), v2_share(&self.files[last]));
        if was != now {
            if self.v2_code[last] && now > was && !self.may_increase_from(shape, was) {
                self.broken.get_or_insert(format!(
                    "{edit:?} raised production's v2 weight from {was}% to {now}% before v2 was \
                     deployed and watched at {was}%"
                ));
            }
            self.watched = None;
        }
        (0..self.files.len())
            .filter(|&env| self.files[env] != before[env])
            .collect()
    }

    /// Whether production's v2 weight may go up from `was`: only from a weight that is
    /// deployed and was watched there.
    fn may_increase_from(&self, shape: &Shape, was: u8) -> bool {
        v2_share(&self.deployed[shape.last_env()]) == was && self.watched == Some(was)
    }

    fn deploy(&mut self, env: usize) {
        self.deployed[env] = self.files[env].clone();
        // In coexistence the v2 code is in the image all along: web runs it once its switch
        // says v2 and that is deployed.
        if self.deployed[env].switch_v2 {
            self.v2_code[env] = true;
        }
    }

    /// What must hold in every environment at every moment.
    fn check_invariants(&self, shape: &Shape, plan: &[(Phase, Step)]) -> Result<(), String> {
        if let Some(broken) = &self.broken {
            return Err(broken.clone());
        }
        // The v1 image is checked, and web-v1 re-pinned, only where v1 has no traffic: at the
        // start, and back there after an abort of route-to-v1 and its deploys.
        if self.position.next(plan) == NextStep::Planned(Phase::RouteToV1, Step::CheckV1Image)
            && let Some(env) = (0..self.files.len())
                .find(|&e| v1_share(&self.files[e]) > 0 || v1_share(&self.deployed[e]) > 0)
        {
            return Err(format!(
                "{}: at the v1 image check, v1 has traffic",
                shape.environments[env]
            ));
        }
        for (env, d) in self.deployed.iter().enumerate() {
            let name = &shape.environments[env];
            if d.route.is_some() && !d.destination_rule {
                return Err(format!(
                    "{name}: a route names subsets no DestinationRule defines"
                ));
            }
            if let Some((Some(v1), v2)) = d.route {
                if v1 as u16 + v2 as u16 != 100 {
                    return Err(format!("{name}: weights {v1}+{v2} do not sum to 100"));
                }
                if v1 > 0 && !(d.v1_deployment && d.v1_authorized && d.service_patch) {
                    return Err(format!(
                        "{name}: traffic to v1 before it is deployed and allowed"
                    ));
                }
            }
            // Before the routes exist, web carries all of the traffic.
            if d.switch_v2 && d.route.is_none() && !self.v2_tested {
                return Err(format!(
                    "{name}: web serves v2 to all traffic before v2 was tested"
                ));
            }
            if let Some((None, v2)) = d.route
                && v2 != 100
            {
                return Err(format!("{name}: the v1 route went while it had weight"));
            }
            if env == shape.last_env()
                && self.v2_code[env]
                && d.route.is_some_and(|(_, v2)| v2 > 0)
                && !self.v2_tested
            {
                return Err(format!("{name}: v2 gets traffic before it was tested"));
            }
        }
        // Staging leads production: no production weight for v2 is even written before
        // staging served 100% v2.
        let last = shape.last_env();
        if leads_with_staging(shape)
            && self.v2_code[last]
            && self.files[last].route.is_some_and(|(_, v2)| v2 > 0)
            && !self.staging_served
        {
            return Err(format!(
                "{}: a v2 weight before {} served 100% v2",
                shape.environments[last], shape.environments[0]
            ));
        }
        Ok(())
    }

    /// Apply an action to the model and to the position together.
    fn act(
        &self,
        shape: &Shape,
        plan: &[(Phase, Step)],
        kind: &ActionKind,
    ) -> Result<World, Refusal> {
        let mut world = self.clone();
        let action = match *kind {
            ActionKind::Next => {
                let changed = match self.position.next(plan) {
                    NextStep::Pending { env, .. } => {
                        world.deploy(env);
                        true
                    }
                    NextStep::Observe { weight } => {
                        world.observe(shape, weight);
                        true
                    }
                    NextStep::Planned(_, step) => world.perform(shape, step),
                    NextStep::Done => false,
                };
                Action::Complete { changed }
            }
            ActionKind::Weight { env, percent } => {
                let allowed = self.position.apply(
                    shape,
                    plan,
                    Action::SetWeight {
                        env,
                        percent,
                        changed: false,
                    },
                );
                allowed?;
                let changed = !world
                    .edit(shape, OutOfBandEdit::SetWeight(percent), Some(env))
                    .is_empty();
                Action::SetWeight {
                    env,
                    percent,
                    changed,
                }
            }
            ActionKind::Abort => {
                self.position
                    .apply(shape, plan, Action::Abort { changed: vec![] })?;
                // Back to what was known good: before v2 code has production traffic, that is
                // the routes add-routing left; after, v1.
                let edit = match self.position.phase(plan) {
                    Phase::RouteToV1 => OutOfBandEdit::AbortToV2,
                    _ => {
                        // v2 is fixed and tested anew, on staging first.
                        world.staging_sent = false;
                        world.staging_served = false;
                        OutOfBandEdit::Abort
                    }
                };
                assert_eq!(self.position.abort_edit(plan), edit);
                Action::Abort {
                    changed: world.edit(shape, edit, None),
                }
            }
            ActionKind::Repin => {
                self.position.apply(shape, plan, Action::RepinV1)?;
                world.edit(shape, OutOfBandEdit::RepinV1, None);
                Action::RepinV1
            }
        };
        world.position = self.position.apply(shape, plan, action)?;
        world.latch_staging();
        Ok(world)
    }

    /// Carry out a planned step in the model; returns whether it changed a file.
    fn perform(&mut self, shape: &Shape, step: Step) -> bool {
        let last = shape.last_env();
        match step {
            Step::Edit { edit } => {
                if edit == StepEdit::StagingToV2 {
                    self.staging_sent = true;
                }
                !self.edit(shape, edit, None).is_empty()
            }
            Step::Deploy { env, .. } => {
                self.deploy(env);
                true
            }
            Step::DeployV2 { env } => {
                self.v2_code[env] = true;
                true
            }
            Step::ConfirmV2Tested => {
                self.v2_tested = true;
                // v2 at production's weight (none) is what was tested: the ramp starts there.
                self.watched = Some(v2_share(&self.deployed[last]));
                true
            }
            Step::Observe { weight } => {
                self.observe(shape, weight);
                true
            }
            Step::CheckV1Image => true,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum ActionKind {
    Next,
    Weight { env: usize, percent: u8 },
    Abort,
    Repin,
}

fn actions(shape: &Shape) -> Vec<ActionKind> {
    let mut all = vec![ActionKind::Next, ActionKind::Abort, ActionKind::Repin];
    for env in 0..shape.environments.len() {
        for percent in [0, 30, 100] {
            all.push(ActionKind::Weight { env, percent });
        }
    }
    all
}

/// Whether staging is sent to v2 and must serve it before the question "was v2 tested?".
fn leads_with_staging(shape: &Shape) -> bool {
    shape.plan == PlanVersion::StagingFirst && shape.environments.len() > 1
}

/// Successions first (the tests that take one by index take those), then the same shapes in
/// coexistence, then both methods of two environments in the plan of releases journaled before
/// staging led production.
fn shapes() -> Vec<Shape> {
    let envs = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let of = |method| {
        vec![
            Shape {
                environments: envs(&["production"]),
                schedule: vec![100],
                method,
                plan: PlanVersion::CURRENT,
            },
            Shape {
                environments: envs(&["staging", "production"]),
                schedule: vec![1, 5, 10, 25, 50, 100],
                method,
                plan: PlanVersion::CURRENT,
            },
            Shape {
                environments: envs(&["dev", "staging", "production"]),
                schedule: vec![50, 100],
                method,
                plan: PlanVersion::CURRENT,
            },
        ]
    };
    let mut all = of(Method::Succession);
    all.extend(of(Method::Coexistence));
    for method in [Method::Succession, Method::Coexistence] {
        all.push(Shape {
            plan: PlanVersion::ProductionFirst,
            ..of(method).swap_remove(1)
        });
    }
    all
}

/// Whether the rules of `docs/workflow` allow this action now, said from the phase alone.
fn allowed_by_rules(
    shape: &Shape,
    plan: &[(Phase, Step)],
    world: &World,
    kind: ActionKind,
) -> bool {
    let phase = world.position.phase(plan);
    match kind {
        ActionKind::Next => {
            phase != Phase::Done
                && !(world.position.next(plan) == NextStep::Planned(phase, Step::ConfirmV2Tested)
                    && leads_with_staging(shape)
                    && !world.staging_served)
        }
        ActionKind::Weight { env, percent } if env == shape.last_env() => {
            let now = v2_share(&world.files[env]);
            phase == Phase::Ramp && (percent <= now || world.may_increase_from(shape, now))
        }
        ActionKind::Weight { .. } => matches!(phase, Phase::Ramp | Phase::DeployV2),
        // In route-to-v1, only once its edit sent traffic to v1.
        ActionKind::Abort => {
            matches!(phase, Phase::DeployV2 | Phase::Ramp)
                || (phase == Phase::RouteToV1 && world.files.iter().any(|f| v1_share(f) > 0))
        }
        ActionKind::Repin => {
            world.position.pending.is_empty()
                && plan.get(world.position.index).map(|(_, s)| *s) == Some(Step::CheckV1Image)
        }
    }
}

/// Every reachable world, each with every action: allowed exactly when the rules say so, and
/// the invariants hold in every world reached.
#[test]
fn every_position_and_action_follows_the_rules_and_keeps_the_invariants() {
    for shape in shapes() {
        let plan = plan(&shape);
        let start = World::new(&shape);
        let mut seen = HashSet::from([start.clone()]);
        let mut queue = VecDeque::from([start]);
        let (mut allowed, mut refused) = (0, 0);
        while let Some(world) = queue.pop_front() {
            for kind in actions(&shape) {
                let expected = allowed_by_rules(&shape, &plan, &world, kind);
                match world.act(&shape, &plan, &kind) {
                    Ok(next) => {
                        assert!(expected, "{kind:?} allowed at {:?}", world.position);
                        allowed += 1;
                        if let Err(e) = next.check_invariants(&shape, &plan) {
                            panic!("{e} after {kind:?} from {world:?}");
                        }
                        if seen.insert(next.clone()) {
                            queue.push_back(next);
                        }
                    }
                    Err(refusal) => {
                        assert!(
                            !expected,
                            "{kind:?} refused at {:?}: {refusal}",
                            world.position
                        );
                        refused += 1;
                        // A refusal names what comes first, unless nothing does: the next
                        // step, or the weight that staging must serve before it.
                        let next = world.position.next(&plan);
                        let first = match refusal.weight {
                            Some((0, 100)) => Some(format!(
                                "deploy-v2: set {}'s v2 weight to 100% and deploy it",
                                shape.environments[0]
                            )),
                            Some(other) => panic!("refused for weight {other:?}"),
                            None => (next != NextStep::Done)
                                .then(|| world.position.describe_next(&shape, &plan)),
                        };
                        assert_eq!(refusal.first, first);
                    }
                }
            }
        }
        // Guards against a model that reaches nothing.
        assert!(
            seen.len() > plan.len(),
            "only {} worlds reached",
            seen.len()
        );
        assert!(allowed > 0 && refused > 0);
    }
}

/// From every reachable world, `next` alone finishes the release, with everything cleaned up.
#[test]
fn next_alone_always_reaches_done_from_anywhere() {
    for shape in shapes() {
        let plan = plan(&shape);
        let start = World::new(&shape);
        let mut seen = HashSet::from([start.clone()]);
        let mut queue = VecDeque::from([start]);
        while let Some(world) = queue.pop_front() {
            let mut walk = world.clone();
            for _ in 0..=plan.len() + shape.environments.len() * 2 + 2 {
                if walk.position.next(&plan) == NextStep::Done {
                    break;
                }
                walk = match walk.act(&shape, &plan, &ActionKind::Next) {
                    Ok(next) => next,
                    // Staging never served 100% v2: the refusal names the way on.
                    Err(refusal) => {
                        assert_eq!(refusal.weight, Some((0, 100)), "{refusal}");
                        let env = 0;
                        walk.act(&shape, &plan, &ActionKind::Weight { env, percent: 100 })
                            .unwrap()
                    }
                };
            }
            assert_eq!(
                walk.position.next(&plan),
                NextStep::Done,
                "stuck from {world:?}"
            );
            assert!(walk.deployed.iter().all(|d| *d
                == Files {
                    image_pins: d.image_pins,
                    // web keeps the v2 value once the v1 code path is gone.
                    switch_v2: shape.method == Method::Coexistence,
                    ..Files::default()
                }));
            for kind in actions(&shape) {
                if let Ok(next) = world.act(&shape, &plan, &kind)
                    && seen.insert(next.clone())
                {
                    queue.push_back(next);
                }
            }
        }
    }
}

#[test]
fn a_plain_walk_takes_every_phase_in_order_with_a_deploy_per_environment() {
    let shape = &shapes()[1];
    let plan = plan(shape);
    let phases: Vec<Phase> = plan.iter().map(|(p, _)| *p).collect();
    let mut distinct = phases.clone();
    distinct.dedup();
    assert_eq!(distinct, Phase::ALL[..8].to_vec());
    let deploys_after = |edit| {
        plan.iter()
            .filter(|(_, s)| matches!(s, Step::Deploy { after, .. } if *after == edit))
            .count()
    };
    assert_eq!(deploys_after(StepEdit::DeployV1), 2);
    assert_eq!(deploys_after(StepEdit::RampLast(25)), 1);
    assert_eq!(deploys_after(StepEdit::RampOthers), 1);
    assert_eq!(deploys_after(StepEdit::Cleanup3), 2);
    // staging is deployed before production, every time.
    for pair in plan.windows(2) {
        if let [
            (_, Step::Deploy { env: a, .. }),
            (_, Step::Deploy { env: b, .. }),
        ] = pair
        {
            assert!(a < b);
        }
    }
}

#[test]
fn coexistence_flips_the_switch_in_deploy_v2_and_has_no_image_to_check_or_code_to_land() {
    let shape = &shapes()[4];
    assert_eq!(shape.method, Method::Coexistence);
    let plan = plan(shape);
    let deploy_v2: Vec<Step> = plan
        .iter()
        .filter(|(p, _)| *p == Phase::DeployV2)
        .map(|(_, s)| *s)
        .collect();
    let edit = StepEdit::SwitchToV2;
    assert_eq!(
        deploy_v2,
        [
            Step::Edit { edit },
            Step::Deploy {
                env: 0,
                after: edit
            },
            Step::Deploy {
                env: 1,
                after: edit
            },
            Step::Edit {
                edit: StepEdit::StagingToV2
            },
            Step::Deploy {
                env: 0,
                after: StepEdit::StagingToV2
            },
            Step::ConfirmV2Tested,
        ]
    );
    assert!(
        !plan
            .iter()
            .any(|(_, s)| matches!(s, Step::CheckV1Image | Step::DeployV2 { .. }))
    );
    // The rest is succession's, step for step.
    let succession = super::plan(&shapes()[1]);
    let outside = |p: &[(Phase, Step)]| -> Vec<(Phase, Step)> {
        p.iter()
            .filter(|(phase, s)| *phase != Phase::DeployV2 && *s != Step::CheckV1Image)
            .copied()
            .collect()
    };
    assert_eq!(outside(&plan), outside(&succession));
}

#[test]
fn deploy_v2_sends_staging_to_v2_after_the_code_and_before_the_question_in_the_new_plan_only() {
    for shape in shapes() {
        let plan = plan(&shape);
        let deploy_v2: Vec<Step> = plan
            .iter()
            .filter(|(p, _)| *p == Phase::DeployV2)
            .map(|(_, s)| *s)
            .collect();
        let code = match shape.method {
            Method::Succession => (0..shape.environments.len())
                .map(|env| Step::DeployV2 { env })
                .collect::<Vec<_>>(),
            Method::Coexistence => std::iter::once(Step::Edit {
                edit: StepEdit::SwitchToV2,
            })
            .chain((0..shape.environments.len()).map(|env| Step::Deploy {
                env,
                after: StepEdit::SwitchToV2,
            }))
            .collect(),
        };
        let mut expected = code;
        if leads_with_staging(&shape) {
            let edit = StepEdit::StagingToV2;
            expected.push(Step::Edit { edit });
            expected.push(Step::Deploy {
                env: 0,
                after: edit,
            });
        }
        expected.push(Step::ConfirmV2Tested);
        assert_eq!(deploy_v2, expected, "{shape:?}");
    }
}

#[test]
fn v2_is_confirmed_tested_only_once_staging_served_all_of_it() {
    let shape = &shapes()[1];
    let plan = plan(shape);
    let edit = StepEdit::StagingToV2;
    let complete = |p: &Position| p.apply(shape, &plan, Action::Complete { changed: true });
    let at_edit = before(&plan, Step::Edit { edit });
    let written = complete(&at_edit).unwrap();
    assert_eq!(written.staging, StagingV2::Written(100));
    // Moved back before its deploy: staging never serves v2, and the question is refused.
    let back = written.apply(shape, &plan, set_weight(0, 0)).unwrap();
    let back = complete(&complete(&back).unwrap()).unwrap();
    assert_eq!(
        back.next(&plan),
        NextStep::Planned(Phase::DeployV2, Step::ConfirmV2Tested)
    );
    let refusal = complete(&back).unwrap_err();
    assert_eq!(
        refusal.reason,
        "v2 counts as tested on staging only once staging has served it 100% of its traffic \
         since deploy-v2 sent it there, deployed; staging's routes send v2 0% (`canary weight` \
         set it after that step); the release is in deploy-v2"
    );
    assert_eq!(
        refusal.first.as_deref(),
        Some("deploy-v2: set staging's v2 weight to 100% and deploy it")
    );
    assert_eq!(refusal.weight, Some((0, 100)));
    // What the refusal names is the way on.
    let again = back.apply(shape, &plan, set_weight(0, 100)).unwrap();
    assert!(complete(&again).and_then(|p| complete(&p)).is_ok());
    // Served once, staging may be moved back for the rest of the test.
    let served = complete(&written).unwrap();
    assert_eq!(served.staging, StagingV2::Served);
    let moved = served.apply(shape, &plan, set_weight(0, 30)).unwrap();
    assert_eq!(moved.staging, StagingV2::Served);
    assert!(complete(&complete(&moved).unwrap()).is_ok());
    // Files already at 100% v2 (set and deployed by hand): the step writes nothing, and
    // staging has served v2.
    let unchanged = at_edit
        .apply(shape, &plan, Action::Complete { changed: false })
        .unwrap();
    assert_eq!(unchanged.staging, StagingV2::Served);
    assert_eq!(
        unchanged.next(&plan),
        NextStep::Planned(Phase::DeployV2, Step::ConfirmV2Tested)
    );
    // An abort starts deploy-v2 over: staging is sent to v2 and serves it anew.
    let aborted = served
        .apply(
            shape,
            &plan,
            Action::Abort {
                changed: vec![0, 1],
            },
        )
        .unwrap();
    assert_eq!(aborted.staging, StagingV2::NotSent);
    // The old plan never asks.
    let old = &shapes()[6];
    assert_eq!(old.plan, PlanVersion::ProductionFirst);
    let old_plan = super::plan(old);
    assert!(
        before(&old_plan, Step::ConfirmV2Tested)
            .apply(old, &old_plan, Action::Complete { changed: true })
            .is_ok()
    );
}

#[test]
fn an_edit_that_changed_nothing_skips_its_deploys() {
    let shape = &shapes()[1];
    let plan = plan(shape);
    let at = plan
        .iter()
        .position(|(_, s)| {
            *s == Step::Edit {
                edit: StepEdit::RampOthers,
            }
        })
        .unwrap();
    let position = Position {
        index: at,
        ..Position::default()
    };
    let next = position
        .apply(shape, &plan, Action::Complete { changed: false })
        .unwrap();
    assert_eq!(next.phase(&plan), Phase::Cleanup1);
    let next = position
        .apply(shape, &plan, Action::Complete { changed: true })
        .unwrap();
    assert_eq!(
        next.next(&plan),
        NextStep::Planned(
            Phase::Ramp,
            Step::Deploy {
                env: 0,
                after: StepEdit::RampOthers
            }
        )
    );
}

/// The position right before `step` of the plan, owing nothing.
fn before(plan: &[(Phase, Step)], step: Step) -> Position {
    Position {
        index: plan.iter().position(|(_, s)| *s == step).expect("planned"),
        ..Position::default()
    }
}

fn set_weight(env: usize, percent: u8) -> Action {
    Action::SetWeight {
        env,
        percent,
        changed: true,
    }
}

/// `next` from `position` until it reaches `until`, with the steps taken on the way.
fn steps_until(
    shape: &Shape,
    plan: &[(Phase, Step)],
    mut position: Position,
    until: NextStep,
) -> Vec<NextStep> {
    let mut taken = Vec::new();
    while position.next(plan) != until {
        taken.push(position.next(plan));
        position = position
            .apply(shape, plan, Action::Complete { changed: true })
            .unwrap();
        assert!(taken.len() <= plan.len(), "never reached {until:?}");
    }
    taken
}

#[test]
fn a_production_weight_set_by_hand_is_deployed_and_observed_before_the_ramp_goes_on() {
    let shape = &shapes()[1];
    let plan = plan(shape);
    let ramp_last = |w| Step::Edit {
        edit: StepEdit::RampLast(w),
    };
    // Up from the start of the ramp, and down from between 50%'s edit and its deploy.
    for from in [
        ramp_last(1),
        Step::Deploy {
            env: 1,
            after: StepEdit::RampLast(50),
        },
    ] {
        let after_30 = before(&plan, from)
            .apply(shape, &plan, set_weight(1, 30))
            .unwrap();
        assert_eq!(
            after_30.pending,
            vec![(1, OutOfBandEdit::SetWeight(30).into())]
        );
        assert_eq!(after_30.observe, Some(30));
        assert_eq!(
            steps_until(
                shape,
                &plan,
                after_30.clone(),
                NextStep::Planned(Phase::Ramp, ramp_last(50))
            ),
            [
                NextStep::Pending {
                    env: 1,
                    after: OutOfBandEdit::SetWeight(30).into()
                },
                NextStep::Observe { weight: 30 },
            ],
            "from {from:?}"
        );
        assert_eq!(
            after_30.describe_next(shape, &plan),
            "ramp: deploy to production (set the v2 weight to 30%)"
        );
        let deployed = after_30
            .apply(shape, &plan, Action::Complete { changed: true })
            .unwrap();
        assert_eq!(
            deployed.describe_next(shape, &plan),
            "ramp: observe v2 at 30% in production"
        );
    }
    // 100% by hand is observed before the other environments go to v2.
    let after_100 = before(&plan, ramp_last(1))
        .apply(shape, &plan, set_weight(1, 100))
        .unwrap();
    assert_eq!(
        steps_until(
            shape,
            &plan,
            after_100,
            NextStep::Planned(
                Phase::Ramp,
                Step::Edit {
                    edit: StepEdit::RampOthers
                }
            )
        )
        .last(),
        Some(&NextStep::Observe { weight: 100 })
    );
}

#[test]
fn with_production_alone_an_observation_owed_after_the_ramp_keeps_the_release_in_it() {
    let shape = &shapes()[0];
    let plan = plan(shape);
    let set = before(
        &plan,
        Step::Edit {
            edit: StepEdit::RampLast(100),
        },
    )
    .apply(shape, &plan, set_weight(0, 100))
    .unwrap();
    assert_eq!(set.index, phase_start(&plan, Phase::Cleanup1));
    assert_eq!(set.phase(&plan), Phase::Ramp);
    let deployed = set
        .apply(shape, &plan, Action::Complete { changed: true })
        .unwrap();
    assert_eq!(
        deployed.describe_next(shape, &plan),
        "ramp: observe v2 at 100% in production"
    );
    // Still in the ramp, so its weight may still come down, or the release abort.
    assert!(deployed.apply(shape, &plan, set_weight(0, 30)).is_ok());
    assert!(
        deployed
            .apply(shape, &plan, Action::Abort { changed: vec![0] })
            .is_ok_and(|p| p.observe.is_none() && p.phase(&plan) == Phase::DeployV2)
    );
    let observed = deployed
        .apply(shape, &plan, Action::Complete { changed: true })
        .unwrap();
    assert_eq!(observed.phase(&plan), Phase::Cleanup1);
}

#[test]
fn production_goes_up_by_hand_only_from_a_weight_deployed_and_observed() {
    let shape = &shapes()[1];
    let plan = plan(shape);
    let observe_10 = before(&plan, Step::Observe { weight: 10 });
    let deploy_10 = before(
        &plan,
        Step::Deploy {
            env: 1,
            after: StepEdit::RampLast(10),
        },
    );
    let owed_30 = before(
        &plan,
        Step::Edit {
            edit: StepEdit::RampLast(1),
        },
    )
    .apply(shape, &plan, set_weight(1, 30))
    .unwrap();
    let owed_30_deployed = owed_30
        .apply(shape, &plan, Action::Complete { changed: true })
        .unwrap();
    for (owed, at) in [
        (10, &observe_10),
        (10, &deploy_10),
        (30, &owed_30),
        (30, &owed_30_deployed),
    ] {
        let refusal = at.apply(shape, &plan, set_weight(1, owed + 1)).unwrap_err();
        assert_eq!(
            refusal.reason,
            format!(
                "production's v2 weight may go above {owed}% only once v2 at {owed}% is \
                 deployed there and observed; the release is in ramp"
            )
        );
        assert_eq!(refusal.first, Some(at.describe_next(shape, &plan)));
        // Down is always a way back; staging is not held up.
        let down = at.apply(shape, &plan, set_weight(1, owed - 5)).unwrap();
        assert_eq!(down.observe, Some(owed - 5));
        assert!(at.apply(shape, &plan, set_weight(0, 100)).is_ok());
    }
    // Once 10% is observed, the next increase may be by hand.
    let observed = observe_10
        .apply(shape, &plan, Action::Complete { changed: true })
        .unwrap();
    assert!(observed.apply(shape, &plan, set_weight(1, 30)).is_ok());
}

#[test]
fn a_weight_the_file_already_has_changes_nothing_and_skips_no_step() {
    let shape = &shapes()[1];
    let plan = plan(shape);
    for (index, _) in plan.iter().enumerate() {
        let at = Position {
            index,
            ..Position::default()
        };
        for env in 0..2 {
            let same = Action::SetWeight {
                env,
                percent: 10,
                changed: false,
            };
            if let Ok(next) = at.apply(shape, &plan, same) {
                assert_eq!(next, at, "at {:?}", plan[index]);
            }
        }
    }
}

#[test]
fn a_position_without_an_owed_observation_reads_and_writes_as_before() {
    let old = r#"{"index":20,"pending":[[1,{"edit":"set-weight","weight":30}]]}"#;
    let position: Position = serde_json::from_str(old).unwrap();
    assert_eq!(
        position,
        Position {
            index: 20,
            pending: vec![(1, OutOfBandEdit::SetWeight(30).into())],
            observe: None,
            staging: StagingV2::NotSent,
        }
    );
    assert_eq!(serde_json::to_string(&position).unwrap(), old);
    let owed = Position {
        observe: Some(30),
        ..position
    };
    let json = serde_json::to_string(&owed).unwrap();
    assert!(json.ends_with(r#","observe":30}"#), "{json}");
    assert_eq!(serde_json::from_str::<Position>(&json).unwrap(), owed);
}

#[test]
fn abort_in_route_to_v1_undoes_only_what_its_edit_wrote() {
    for shape in shapes() {
        let plan = plan(&shape);
        let n = shape.environments.len();
        let edit = before(
            &plan,
            Step::Edit {
                edit: StepEdit::RouteToV1,
            },
        );
        // Where the release goes back to: the v1 image check, or in coexistence (web-v1 runs
        // web's image, nothing to re-pin) the route-to-v1 edit itself.
        let succession = shape.method == Method::Succession;
        let check = if succession {
            before(&plan, Step::CheckV1Image)
        } else {
            edit.clone()
        };
        let every = (0..n).collect::<Vec<_>>();
        // Before the routes move there is nothing to undo.
        for at in [&check, &edit] {
            let refusal = at
                .apply(
                    &shape,
                    &plan,
                    Action::Abort {
                        changed: every.clone(),
                    },
                )
                .unwrap_err();
            assert!(
                refusal.reason.starts_with("abort has nothing to undo"),
                "{refusal}"
            );
            assert_eq!(refusal.first, Some(at.describe_next(&shape, &plan)));
        }
        // Written, deployed to none, some or all but the last environment.
        for deployed in 0..n {
            let at = Position {
                index: edit.index + 1 + deployed,
                ..Position::default()
            };
            assert_eq!(at.phase(&plan), Phase::RouteToV1);
            assert_eq!(at.abort_edit(&plan), OutOfBandEdit::AbortToV2);
            let aborted = at
                .apply(
                    &shape,
                    &plan,
                    Action::Abort {
                        changed: every.clone(),
                    },
                )
                .unwrap();
            assert_eq!(
                aborted.pending,
                every
                    .iter()
                    .map(|&e| (e, OutOfBandEdit::AbortToV2.into()))
                    .collect::<Vec<_>>()
            );
            // Its deploys, then the v1 image check, where web-v1 may be re-pinned.
            let taken = steps_until(&shape, &plan, aborted.clone(), check.next(&plan));
            assert_eq!(taken.len(), n);
            let back = Position {
                pending: vec![],
                ..aborted
            };
            assert_eq!(back, check);
            assert_eq!(
                back.apply(&shape, &plan, Action::RepinV1).is_ok(),
                succession
            );
            assert_eq!(
                at.apply(&shape, &plan, Action::Abort { changed: vec![] })
                    .unwrap(),
                check,
                "a file already back at 100% v2 owes no deploy"
            );
        }
        // Once every environment runs 100% v1, v2 is next and abort means back to v1.
        let deploy_v2 = Position {
            index: edit.index + 1 + n,
            ..Position::default()
        };
        assert_eq!(deploy_v2.phase(&plan), Phase::DeployV2);
        assert_eq!(deploy_v2.abort_edit(&plan), OutOfBandEdit::Abort);
    }
}

#[test]
fn refusals_name_the_step_that_comes_first() {
    let shape = &shapes()[1];
    let plan = plan(shape);
    let refusal = Position::default()
        .apply(
            shape,
            &plan,
            Action::SetWeight {
                env: 1,
                percent: 50,
                changed: true,
            },
        )
        .unwrap_err();
    assert_eq!(
        refusal.reason,
        "production's weights may change only during ramp, once v2 is deployed to it and tested; \
         the release is in deploy-v1"
    );
    assert_eq!(
        refusal.first.as_deref(),
        Some("deploy-v1: add the pinned web-v1 deployment and the version labels")
    );
}

#[test]
fn plans_hold_each_shapes_plan_once() {
    let mut plans = Plans::default();
    for _ in 0..2 {
        for shape in shapes() {
            assert_eq!(plans.of(&shape), plan(&shape).as_slice());
        }
    }
    assert_eq!(plans.0.len(), shapes().len(), "one plan per shape");
}
