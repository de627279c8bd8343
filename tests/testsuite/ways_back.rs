//! Every way forward has a way back: `canary abort` in each phase where traffic has moved, the
//! real binary against a real repository and journal.

use crate::common;

use crate::common::{SERVICE, Sandbox, assert_unchanged, golden};

fn step(sandbox: &Sandbox) -> String {
    sandbox.status()["step"].as_str().unwrap().to_string()
}

/// `next --yes` until `status` names `step` as the next one.
#[track_caller]
fn next_until(sandbox: &Sandbox, step_is: &str) {
    for _ in 0..common::MAX_STEPS {
        if step(sandbox) == step_is {
            return;
        }
        sandbox.next();
    }
    panic!("never reached {step_is:?}");
}

#[track_caller]
fn assert_files(sandbox: &Sandbox, golden_tree: &str, when: &str) {
    let expected = golden(golden_tree);
    assert!(
        sandbox.files() == expected,
        "{when}: the files are not as at the end of {golden_tree}:\n{}",
        common::describe_difference(&expected, &sandbox.files())
    );
}

#[test]
fn abort_in_route_to_v1_is_refused_until_its_edit_moved_the_routes() {
    let sandbox = Sandbox::new();
    sandbox.start();
    for step_is in [
        "route-to-v1: check that web-v1 runs the pinned image",
        "route-to-v1: route 100% of traffic to v1",
    ] {
        next_until(&sandbox, step_is);
        let before = sandbox.snapshot();
        let out = sandbox.canary(&["abort", SERVICE, "--yes"]);
        assert_eq!(out.code, 3, "abort at {step_is:?}:\n{out}");
        assert!(
            out.stderr.starts_with(
                "error: refused: abort has nothing to undo: route-to-v1 has not moved any route \
                 to v1"
            ),
            "{out}"
        );
        assert!(
            out.stderr.contains(&format!("  first: {step_is}\n")),
            "{out}"
        );
        assert_unchanged(
            &before,
            &sandbox.snapshot(),
            &format!("abort at {step_is:?}"),
        );
    }
}

/// The pinned v1 misbehaves once it has traffic, in some environments or all: abort puts every
/// route back to 100% v2 (the files as add-routing left them), the deploys follow, and the
/// release is back at the v1 image check, from where it goes on to the end.
#[test]
fn abort_in_route_to_v1_goes_back_to_100_percent_v2_and_to_the_v1_image_check() {
    for deployed in ["staging", "production"] {
        let sandbox = Sandbox::new();
        sandbox.start();
        next_until(&sandbox, "route-to-v1: deploy to staging");
        if deployed == "production" {
            sandbox.next();
        }
        assert_eq!(
            step(&sandbox),
            format!("route-to-v1: deploy to {deployed}"),
            "where the abort starts"
        );
        assert_files(&sandbox, "route-to-v1", "before the abort");

        let out = sandbox.canary(&["abort", SERVICE, "--yes"]).ok();
        assert!(out.stdout.contains("-          weight: 0\n"), "{out}");
        assert_files(&sandbox, "add-routing", "after the abort");
        let when = format!("after an abort with {deployed} next to deploy");
        assert_eq!(
            sandbox.weights(),
            [
                ("staging".to_string(), Some(100)),
                ("production".to_string(), Some(100))
            ],
            "{when}"
        );
        assert_eq!(
            sandbox.commit_subjects()[0],
            "canary(my-service): route-to-v1: send all traffic back to v2",
            "{when}"
        );
        let aborted: Vec<_> = sandbox
            .log()
            .into_iter()
            .filter(|e| e["kind"] == "aborted")
            .collect();
        assert_eq!(aborted.len(), 1, "{when}: {aborted:?}");
        assert_eq!(aborted[0]["detail"]["to"], "v2", "{when}");
        assert_eq!(aborted[0]["phase"], "route-to-v1", "{when}");

        // The deploys of the abort, in every environment, then the v1 image check.
        let status = sandbox.status();
        assert_eq!(status["phase"], "route-to-v1", "{when}: {status}");
        for env in ["staging", "production"] {
            assert_eq!(
                step(&sandbox),
                format!("route-to-v1: deploy to {env} (route 100% of traffic back to v2)"),
                "{when}"
            );
            sandbox.next();
        }
        assert_eq!(
            step(&sandbox),
            "route-to-v1: check that web-v1 runs the pinned image",
            "{when}"
        );
        // A second abort has nothing left to undo.
        assert_eq!(
            sandbox.canary(&["abort", SERVICE, "--yes"]).code,
            3,
            "{when}"
        );

        // route-to-v1 again, then the rest of the release.
        next_until(&sandbox, "deploy-v2: deploy the v2 code to staging");
        assert_files(
            &sandbox,
            "route-to-v1",
            &format!("{when}, route-to-v1 again"),
        );
        sandbox.walk_to("done");
        assert_files(&sandbox, "done", &when);
    }
}

#[test]
fn abort_help_says_what_it_does_in_each_phase() {
    let sandbox = Sandbox::new();
    let help = sandbox.canary(&["abort", "--help"]).ok().stdout;
    for words in [
        "In route-to-v1",
        "back to 100% v2",
        "the v1 image check",
        "In deploy-v2 and ramp",
        "back to 100% v1",
        "abort is refused",
    ] {
        assert!(
            help.contains(words),
            "`canary abort --help` lacks {words:?}:\n{help}"
        );
    }
}
