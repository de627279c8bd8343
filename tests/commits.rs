//! What canary commits: each step's files, and files an earlier step wrote but left
//! uncommitted (declined, or the process died before committing).

mod common;

use common::{SERVICE, Sandbox};

fn uncommitted(sandbox: &Sandbox) -> String {
    sandbox.git(&["status", "--porcelain"])
}

#[test]
fn files_left_uncommitted_by_an_earlier_step_go_into_the_next_commit() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("route-to-v1");
    sandbox.next(); // the v1 image check
    sandbox
        .canary(&["next", SERVICE, "--yes", "--no-commit"])
        .ok();
    let left = uncommitted(&sandbox);
    assert!(
        left.contains("gap/staging/gap_patch_canary_virtual_service.yaml"),
        "{left}"
    );
    assert!(
        left.contains("gap/production/gap_patch_canary_virtual_service.yaml"),
        "{left}"
    );
    while sandbox.weights()[1].1 != Some(1) {
        sandbox.next();
    }
    // The 1% step wrote only production's file; staging's, left by route-to-v1, went with it.
    assert_eq!(uncommitted(&sandbox), "");
    let files = sandbox.git(&["show", "--name-only", "--format=%s", "HEAD"]);
    assert!(files.starts_with("canary(my-service): ramp: send 1% of production traffic to v2"));
    assert!(
        files.contains("gap/staging/gap_patch_canary_virtual_service.yaml"),
        "{files}"
    );
}

#[test]
fn a_person_s_uncommitted_change_is_neither_overwritten_nor_committed() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let gap = std::fs::read_to_string(sandbox.repo.join("gap/gap.yaml")).unwrap();
    sandbox.write(
        "gap/gap.yaml",
        &format!("{gap}# a note of mine, not committed yet\n"),
    );
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("gap/gap.yaml has uncommitted changes that canary did not make"),
        "{out}"
    );
    common::assert_unchanged(&before, &sandbox.snapshot(), "a refused step");
}
