//! What canary commits: each step's files, and files an earlier step wrote but left
//! uncommitted (declined, or the process died before committing), before their deploy.

use crate::common;

use crate::common::{SERVICE, Sandbox};

fn uncommitted(sandbox: &Sandbox) -> String {
    sandbox.git(&["status", "--porcelain"])
}

#[test]
fn files_left_uncommitted_by_an_earlier_step_are_committed_before_their_deploy() {
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
    // The deploy of route-to-v1 commits them first, under route-to-v1's subject: they reach
    // Argo CD before the deploy is confirmed, not with a later step's commit.
    sandbox.next();
    assert_eq!(uncommitted(&sandbox), "");
    let files = sandbox.git(&["show", "--name-only", "--format=%s", "HEAD"]);
    assert_eq!(
        files,
        "canary(my-service): route-to-v1: route 100% of traffic to v1\n\n\
         gap/production/gap_patch_canary_virtual_service.yaml\n\
         gap/staging/gap_patch_canary_virtual_service.yaml\n"
    );
    while sandbox.weights()[1].1 != Some(1) {
        sandbox.next();
    }
    let files = sandbox.git(&["show", "--name-only", "--format=%s", "HEAD"]);
    assert_eq!(
        files,
        "canary(my-service): ramp: send 1% of production traffic to v2\n\n\
         gap/production/gap_patch_canary_virtual_service.yaml\n"
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
