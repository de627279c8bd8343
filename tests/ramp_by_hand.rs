//! A production weight set by hand during the ramp is a step of the ramp like a scheduled one:
//! its deploy, then its observation, come before production's weight may go up again. The real
//! binary against a real repository and journal.

mod common;

use common::{SERVICE, Sandbox, assert_unchanged, golden};

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
