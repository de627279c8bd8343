//! Issue 17: git and the filesystem as they really are. A git step that fails is a failure
//! and the step waits, written and not committed, for a commit before its deploy.

mod common;

use common::{SERVICE, Sandbox};

const EDITED: &str = "deploy-v1: add the pinned web-v1 deployment and the version labels";
const FIRST_DEPLOY: &str = "deploy-v1: deploy to staging";

fn step(sandbox: &Sandbox) -> String {
    sandbox.status()["step"].as_str().unwrap().to_string()
}

fn head(sandbox: &Sandbox) -> String {
    sandbox.git(&["rev-parse", "HEAD"])
}

fn kinds(sandbox: &Sandbox) -> Vec<String> {
    sandbox
        .log()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The step's files are on disk and in the journal, not in a commit, and its deploy waits:
/// `next` fails as the commit did, and confirms nothing.
#[track_caller]
fn written_not_committed(sandbox: &Sandbox, before: &str, code: i32, says: &str) {
    assert_eq!(head(sandbox), before, "nothing was committed");
    assert_eq!(sandbox.git(&["status", "--porcelain"]), " M gap/gap.yaml\n");
    assert_eq!(step(sandbox), FIRST_DEPLOY, "the edit is recorded as done");
    assert!(!kinds(sandbox).contains(&"committed".to_string()));
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, code, "{out}");
    assert!(out.stderr.contains(says), "{out}");
    assert_eq!(head(sandbox), before, "nothing was committed");
    assert_eq!(step(sandbox), FIRST_DEPLOY, "no deploy was confirmed");
    assert!(!kinds(sandbox).contains(&"deploy-confirmed".to_string()));
}

/// Once the commit can be made, `next` makes it, pushes it, and only then confirms the deploy.
#[track_caller]
fn committed_then_deployed(sandbox: &Sandbox) {
    let out = sandbox.next();
    assert!(out.stdout.contains("Committed"), "{out}");
    assert!(out.stdout.contains("Pushed"), "{out}");
    assert_eq!(
        sandbox.git(&["log", "-1", "--format=%s"]).trim(),
        format!("canary(my-service): {EDITED}")
    );
    assert_eq!(sandbox.git(&["status", "--porcelain"]), "");
    assert_eq!(step(sandbox), "deploy-v1: deploy to production");
}

// Case 1: a git step that fails is a failure.

#[test]
fn commit_gpgsign_without_a_working_key_fails_the_commit_and_holds_the_deploy() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let before = head(&sandbox);
    sandbox.git(&["config", "commit.gpgSign", "true"]);
    sandbox.git(&["config", "gpg.program", "/nonexistent/gpg"]);
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("gpg failed to sign"), "{out}");
    assert!(
        out.stderr
            .contains("the files are written but not committed"),
        "{out}"
    );
    written_not_committed(&sandbox, &before, 1, "gpg failed to sign");

    sandbox.git(&["config", "--unset", "commit.gpgSign"]);
    committed_then_deployed(&sandbox);
}
