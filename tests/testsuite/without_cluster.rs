//! A canary built without the `cluster` feature works as before where no environment has a
//! context, and says clearly that cluster support is missing where one does.
#![cfg(not(feature = "cluster"))]

use crate::common;

use crate::common::{SERVICE, Sandbox};

#[test]
fn cluster_commands_say_that_cluster_support_was_not_compiled_in() {
    let sandbox = Sandbox::new();
    let mut args = sandbox.start_args();
    args.extend(["--context".into(), "staging=kind-staging".into()]);
    sandbox
        .canary(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    sandbox.next();
    let before = sandbox.snapshot();
    for args in [
        &["verify", SERVICE][..],
        &["next", SERVICE, "--yes"],
        &["status", SERVICE, "--live"],
    ] {
        let out = sandbox.canary(args);
        assert_eq!(out.code, 1, "{out}");
        assert!(
            out.stderr.contains(
                "staging (context kind-staging): cluster support was not compiled into this canary"
            ),
            "{out}"
        );
    }
    common::assert_unchanged(&before, &sandbox.snapshot(), "without cluster support");
    sandbox
        .canary(&["next", SERVICE, "--yes", "--no-verify"])
        .ok();
}

#[test]
fn the_metric_gate_says_that_it_needs_the_cluster_feature() {
    let sandbox = Sandbox::new();
    let mut args = sandbox.start_args();
    args.extend([
        "--prometheus".into(),
        "production=http://127.0.0.1:9090".into(),
    ]);
    sandbox
        .canary(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["gate", SERVICE]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(
            "metric gate reads Prometheus, and this canary was built without the `cluster` feature"
        ),
        "{out}"
    );
    common::assert_unchanged(
        &before,
        &sandbox.snapshot(),
        "a gate without cluster support",
    );
}
