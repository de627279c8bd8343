//! Issue 12, class 1: canary writes only over the bytes it planned from, and commits exactly
//! the bytes it wrote. A colleague's commit pulled, or an editor's save, while canary waits at
//! its prompt is never reverted, and nothing canary did not plan is committed.

use crate::common::{SERVICE, Sandbox, assert_unchanged, exit_code};
use expectrl::Expect;

fn gap_yaml(sandbox: &Sandbox) -> String {
    std::fs::read_to_string(sandbox.repo.join("gap/gap.yaml")).unwrap()
}

#[test]
fn a_commit_pulled_while_canary_waits_at_the_prompt_is_not_overwritten() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut term = sandbox.on_terminal(&["next", SERVICE]);
    term.expect("Write add the pinned web-v1 deployment")
        .unwrap();
    // Meanwhile a colleague's change reaches the remote and the operator pulls it.
    sandbox.colleague_pushes(
        "gap/gap.yaml",
        |text| format!("{text}# a colleague's note\n"),
        "A colleague's change",
    );
    sandbox.git(&["pull", "-q", "--ff-only"]);
    let before = sandbox.snapshot();
    term.send_line("y").unwrap();
    term.expect("gap/gap.yaml changed since canary read it")
        .unwrap();
    assert_eq!(exit_code(&mut term), 75);
    assert_unchanged(
        &before,
        &sandbox.snapshot(),
        "a write planned on stale bytes",
    );

    // Run again, canary plans on the new content: the colleague's line stays.
    sandbox.next();
    let gap = gap_yaml(&sandbox);
    assert!(gap.contains("  web-v1:\n"), "{gap}");
    assert!(gap.contains("# a colleague's note\n"), "{gap}");
    let committed = sandbox.git(&["show", "HEAD:gap/gap.yaml"]);
    assert_eq!(committed, gap);
}

#[test]
fn an_editor_s_save_during_a_weight_prompt_is_not_overwritten() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("deploy-v2");
    let patch = "gap/staging/gap_patch_canary_virtual_service.yaml";
    let mut term = sandbox.on_terminal(&["weight", SERVICE, "staging", "50"]);
    term.expect("Write send 50% of staging's traffic to v2")
        .unwrap();
    let saved = format!(
        "{}# timeouts to follow\n",
        std::fs::read_to_string(sandbox.repo.join(patch)).unwrap()
    );
    sandbox.write(patch, &saved);
    let before = sandbox.snapshot();
    term.send_line("y").unwrap();
    term.expect(format!("{patch} changed since canary read it").as_str())
        .unwrap();
    assert_eq!(exit_code(&mut term), 75);
    assert_unchanged(
        &before,
        &sandbox.snapshot(),
        "a weight planned on stale bytes",
    );
    assert_eq!(sandbox.weights()[0].1, Some(0));
}

#[test]
fn canary_commits_its_own_files_and_leaves_what_a_person_staged() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.write("gap/notes.yaml", "mine: staged, not canary's\n");
    sandbox.git(&["add", "gap/notes.yaml"]);
    sandbox.next();
    let committed = sandbox.git(&["show", "--name-only", "--format=%s", "HEAD"]);
    assert_eq!(
        committed,
        "canary(my-service): deploy-v1: add the pinned web-v1 deployment and the version \
         labels\n\ngap/gap.yaml\n"
    );
    assert_eq!(
        sandbox.git(&["status", "--porcelain"]),
        "A  gap/notes.yaml\n"
    );
}

#[test]
fn a_file_changed_after_canary_wrote_it_is_not_committed_nor_deployed() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox
        .canary(&["next", SERVICE, "--yes", "--no-commit"])
        .ok();
    let head = sandbox.git(&["rev-parse", "HEAD"]);
    let edited = format!("{}# edited after canary wrote it\n", gap_yaml(&sandbox));
    sandbox.write("gap/gap.yaml", &edited);
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr
            .contains("gap/gap.yaml no longer holds what canary wrote"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains(&format!("run:   {}", sandbox.hint("next my-service"))),
        "{out}"
    );
    assert_unchanged(&before, &sandbox.snapshot(), "a refused deploy");
    assert_eq!(sandbox.git(&["rev-parse", "HEAD"]), head);
}
