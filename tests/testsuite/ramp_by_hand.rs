//! A production weight set by hand during the ramp is a step of the ramp like a scheduled one:
//! its deploy, then its observation, come before production's weight may go up again. The real
//! binary against a real repository and journal.

use crate::common;

use crate::common::{SERVICE, Sandbox, assert_unchanged, golden};

fn step(sandbox: &Sandbox) -> String {
    sandbox.status()["step"].as_str().unwrap().to_string()
}

fn production_weight(sandbox: &Sandbox) -> Option<u64> {
    sandbox.weights()[1].1
}

/// `canary weight my-service production PERCENT --yes`.
fn weight(sandbox: &Sandbox, percent: &str) -> common::Output {
    sandbox.canary(&["weight", SERVICE, "production", percent, "--yes"])
}

/// The weights of the `observed` events, oldest first.
fn observed(sandbox: &Sandbox) -> Vec<u64> {
    sandbox
        .log()
        .iter()
        .filter(|e| e["detail"]["step"] == "observed")
        .map(|e| e["detail"]["weight"].as_u64().unwrap())
        .collect()
}

#[track_caller]
fn assert_refused_to_raise(sandbox: &Sandbox, percent: &str, owed: u64, first: &str) {
    let before = sandbox.snapshot();
    let out = weight(sandbox, percent);
    assert_eq!(
        out.code, 3,
        "weight {percent} with {owed}% unobserved:\n{out}"
    );
    assert_eq!(
        out.stderr,
        format!(
            "error: refused: production's v2 weight may go above {owed}% only once v2 at {owed}% \
             is deployed there and observed; the release is in ramp\n  first: {first}\n  run:   \
             {}\n",
            sandbox.hint(&format!("next {SERVICE}"))
        )
    );
    assert_unchanged(&before, &sandbox.snapshot(), &format!("weight {percent}"));
}

#[test]
fn a_production_weight_set_by_hand_is_deployed_and_observed_before_the_next_increase() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("ramp");
    assert_eq!(step(&sandbox), "ramp: send 1% of production traffic to v2");

    // Up by hand, from 0% straight to 30%.
    weight(&sandbox, "30").ok();
    assert_eq!(production_weight(&sandbox), Some(30));
    let deploy = "ramp: deploy to production (set the v2 weight to 30%)";
    assert_eq!(step(&sandbox), deploy);
    assert_refused_to_raise(&sandbox, "50", 30, deploy);
    sandbox.next();

    // The observation is a step like any: status, list and a dry run show it.
    let observe = "ramp: observe v2 at 30% in production";
    assert_eq!(step(&sandbox), observe);
    let text = sandbox.canary(&["status", SERVICE]).ok().stdout;
    assert!(
        text.contains("ramp         observe v2 at 30% in production\n"),
        "{text}"
    );
    let listed = sandbox.canary(&["list"]).ok().stdout;
    assert!(
        listed.contains("observe v2 at 30% in production"),
        "{listed}"
    );
    let dry = sandbox.canary(&["next", SERVICE, "--dry-run"]).ok();
    assert!(dry.stdout.contains(observe), "{dry}");
    assert_refused_to_raise(&sandbox, "50", 30, observe);
    let out = sandbox.next();
    assert!(
        out.stderr
            .contains("? Watch v2 at 30% in production. Does it work well enough to go on?"),
        "{out}"
    );
    assert_eq!(observed(&sandbox), [30]);
    // The ramp goes on from the first scheduled weight above 30%.
    assert_eq!(step(&sandbox), "ramp: send 50% of production traffic to v2");

    // Down by hand is a way back at any point, and is observed too.
    sandbox.next();
    assert_eq!(step(&sandbox), "ramp: deploy to production");
    weight(&sandbox, "10").ok();
    assert_eq!(
        step(&sandbox),
        "ramp: deploy to production (set the v2 weight to 10%)"
    );
    sandbox.next();
    assert_eq!(step(&sandbox), "ramp: observe v2 at 10% in production");
    sandbox.next();
    assert_eq!(observed(&sandbox), [30, 10]);
    assert_eq!(step(&sandbox), "ramp: send 25% of production traffic to v2");

    // The same weight again writes nothing and skips no step.
    let before = sandbox.snapshot();
    let out = weight(&sandbox, "10").ok();
    assert!(out.stdout.contains("Unchanged"), "{out}");
    assert_eq!(step(&sandbox), "ramp: send 25% of production traffic to v2");
    assert_eq!(sandbox.files(), before.0);

    // And the release still ends as it should, every weight observed on the way.
    sandbox.walk_to("done");
    assert!(sandbox.files() == golden("done"));
    assert_eq!(observed(&sandbox), [30, 10, 25, 50, 100]);
}

/// 100% by hand leaves only the other environments to follow: v2 is still observed at 100%
/// in production before they go.
#[test]
fn production_at_100_percent_by_hand_is_observed_before_the_other_environments_follow() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("ramp");
    weight(&sandbox, "100").ok();
    sandbox.next();
    assert_eq!(step(&sandbox), "ramp: observe v2 at 100% in production");
    let staging = sandbox.weights()[0].1;
    sandbox.next();
    assert_eq!(
        step(&sandbox),
        "ramp: send 100% of the other environments' traffic to v2"
    );
    assert_eq!(sandbox.weights()[0].1, staging, "staging waited");
    assert_eq!(observed(&sandbox), [100]);
}

/// `next` until `status` shows `wanted` as the next step.
#[track_caller]
fn walk_to_step(sandbox: &Sandbox, wanted: &str) {
    for _ in 0..common::MAX_STEPS {
        if step(sandbox) == wanted {
            return;
        }
        sandbox.next();
    }
    panic!("never reached {wanted:?}");
}

/// deploy-v2 sends staging to 100% v2 before the question "was v2 tested?"; staging moved
/// back by hand before that deploy has never served v2, and the question is refused (before
/// it is asked, changing nothing) until staging serves all of it.
#[test]
fn v2_is_confirmed_tested_only_once_staging_served_all_of_its_traffic() {
    let sandbox = Sandbox::new();
    sandbox.start();
    walk_to_step(
        &sandbox,
        "deploy-v2: send 100% of staging traffic to v2, to test it",
    );
    // v2's code is deployed everywhere and production has no v2 traffic yet.
    assert_eq!(sandbox.weights()[0].1, Some(0));
    sandbox.next();
    assert_eq!(sandbox.weights()[0].1, Some(100));
    assert_eq!(step(&sandbox), "deploy-v2: deploy to staging");
    // Moved back before the deploy: staging never serves v2.
    let staging = |percent: &str| {
        sandbox
            .canary(&["weight", SERVICE, "staging", percent, "--yes"])
            .ok()
    };
    staging("0");
    sandbox.next(); // the weight's deploy
    sandbox.next(); // the step's deploy, of the same files
    assert_eq!(
        step(&sandbox),
        "deploy-v2: confirm that v2 was tested on staging"
    );
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 3, "{out}");
    assert_eq!(
        out.stderr,
        format!(
            "error: refused: v2 counts as tested on staging only once staging has served it 100% \
             of its traffic since deploy-v2 sent it there, deployed; staging's routes send v2 0% \
             (`{}` set it after that step); the release is in deploy-v2\n  first: \
             deploy-v2: set staging's v2 weight to 100% and deploy it\n  run:   {}, then `{}` \
             to deploy it\n",
            sandbox.hint("weight"),
            sandbox.hint(&format!("weight {SERVICE} staging 100")),
            sandbox.hint(&format!("next {SERVICE}")),
        )
    );
    assert!(
        !out.stdout.contains("Was v2 tested"),
        "asked anyway:\n{out}"
    );
    assert_unchanged(&before, &sandbox.snapshot(), "the refused question");
    // Production is still not to be touched.
    assert_eq!(weight(&sandbox, "1").code, 3);
    // What the refusal names is the way on.
    staging("100");
    sandbox.next(); // its deploy: staging serves 100% v2
    let out = sandbox.next();
    assert!(out.stderr.contains("Was v2 tested"), "{out}");
    assert_eq!(sandbox.phase(), "ramp");
    sandbox.walk_to("done");
    assert_eq!(sandbox.files(), golden("done"));
}
