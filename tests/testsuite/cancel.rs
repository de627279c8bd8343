//! `canary cancel`: a release started by mistake ends, journaled, once its files are as before
//! it (or kept with --keep-files), and a new release of the service may start.

use crate::common::{SERVICE, Sandbox, assert_unchanged, exit_code};
use expectrl::Expect;
use serde_json::Value;

/// The newest event of the release `canary log` shows.
fn last_event(sandbox: &Sandbox) -> Value {
    sandbox.log().pop().expect("the release has events")
}

#[test]
fn a_release_with_nothing_written_is_cancelled_at_once_and_a_new_one_may_start() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let out = sandbox.canary(&["cancel", SERVICE, "--yes"]).ok();
    assert!(
        out.stdout
            .contains("Cancelled the release of my-service, in deploy-v1"),
        "{out}"
    );
    let cancelled = last_event(&sandbox);
    assert_eq!(cancelled["kind"], "cancelled");
    assert_eq!(cancelled["operator"], "test");
    assert_eq!(cancelled["phase"], "deploy-v1");
    assert!(cancelled["at"].is_string(), "{cancelled}");
    assert_eq!(
        cancelled["detail"]["step"],
        "deploy-v1: add the pinned web-v1 deployment and the version labels"
    );
    assert_eq!(cancelled["detail"]["answered"], "--yes");
    assert_eq!(cancelled["detail"]["left"], serde_json::json!([]));

    let status = sandbox.status();
    assert_eq!(status["cancelled"], true, "{status}");
    assert_eq!(status["next"], Value::Null, "{status}");
    let text = sandbox.canary(&["status", SERVICE]).ok().stdout;
    assert!(text.contains("cancelled   in deploy-v1"), "{text}");

    // Gone from the releases in flight, listed among all of them.
    let list = sandbox.canary(&["list"]).ok().stdout;
    assert!(list.contains("No release in flight."), "{list}");
    let all = sandbox.canary(&["list", "--all"]).ok().stdout;
    assert!(
        all.contains("my-service  cancelled in deploy-v1") && all.contains("none: cancelled"),
        "{all}"
    );
    let all = sandbox.canary(&["list", "--all", "--json"]).ok().json();
    assert_eq!(all[0]["cancelled"], true, "{all}");
    // `next` has nothing to do on it.
    let next = sandbox.canary(&["next", SERVICE, "--yes"]).ok();
    assert!(next.stdout.contains("Cancelled the release"), "{next}");

    // A new release starts, and walks.
    sandbox.start();
    sandbox.next();
    assert_eq!(sandbox.status()["cancelled"], false);
    let list = sandbox.canary(&["list", "--all"]).ok().stdout;
    assert_eq!(list.lines().count(), 3, "{list}");
}

#[test]
fn written_files_refuse_the_cancel_until_they_are_as_before_the_release() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.next(); // deploy-v1's edit of gap/gap.yaml, committed and pushed
    let before = sandbox.snapshot();
    let refused = sandbox.canary(&["cancel", SERVICE, "--yes"]);
    assert_eq!(refused.code, 3, "{refused}");
    assert!(
        refused.stderr.contains(
            "gap/gap.yaml (written by \"deploy-v1: add the pinned web-v1 deployment and the \
             version labels\")"
        ) && refused
            .stderr
            .contains(&sandbox.hint("cancel my-service --keep-files")),
        "{refused}"
    );
    assert_unchanged(&before, &sandbox.snapshot(), "a refused cancel");

    // Put back by hand but not committed: still not as before.
    let head = sandbox.git(&["rev-parse", "HEAD"]);
    sandbox.git(&["checkout", "HEAD~1", "--", "gap/gap.yaml"]);
    let refused = sandbox.canary(&["cancel", SERVICE, "--yes"]);
    assert_eq!(refused.code, 3, "{refused}");
    // Committed: as before the release.
    sandbox.git(&["commit", "-qm", "undo the release started by mistake"]);
    assert_ne!(sandbox.git(&["rev-parse", "HEAD"]), head);
    sandbox.canary(&["cancel", SERVICE, "--yes"]).ok();
    assert_eq!(last_event(&sandbox)["kind"], "cancelled");

    // The cancelled release's commit in the history stands in no new release's way.
    sandbox.git(&["push", "-q"]);
    sandbox.start();
    sandbox.walk_to("add-routing");
}

#[test]
fn keep_files_ends_the_release_and_says_which_files_are_left() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("add-routing");
    sandbox.next(); // the DestinationRule and web-v1's policy
    let files = sandbox.files();
    let out = sandbox
        .canary(&["cancel", SERVICE, "--keep-files", "--yes"])
        .ok();
    assert!(
        out.stdout
            .contains("left as they are: gap/gap.yaml (written by \"add-routing:")
            && out
                .stdout
                .contains("gap/gap_canary_destination_rule.yaml (written by"),
        "{out}"
    );
    assert_eq!(sandbox.files(), files, "--keep-files changed a file");
    let cancelled = last_event(&sandbox);
    assert_eq!(
        cancelled["detail"]["left"],
        serde_json::json!(["gap/gap.yaml", "gap/gap_canary_destination_rule.yaml"])
    );
    let log = sandbox.canary(&["log", SERVICE]).ok().stdout;
    assert!(
        log.contains("files left: gap/gap.yaml, gap/gap_canary_destination_rule.yaml"),
        "{log}"
    );
}

#[test]
fn on_a_terminal_cancel_asks_and_a_no_changes_nothing() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let before = sandbox.snapshot();
    let mut term = sandbox.on_terminal(&["cancel", SERVICE]);
    term.expect("Cancel the release of my-service at \"deploy-v1:")
        .unwrap();
    term.send_line("n").unwrap();
    term.expect("declined; the release goes on").unwrap();
    assert_eq!(exit_code(&mut term), 1);
    assert_unchanged(&before, &sandbox.snapshot(), "a declined cancel");

    let mut term = sandbox.on_terminal(&["cancel", SERVICE]);
    term.expect("It cannot be resumed.").unwrap();
    term.send_line("y").unwrap();
    assert_eq!(exit_code(&mut term), 0);
    let cancelled = last_event(&sandbox);
    assert_eq!(cancelled["detail"]["answered"], "terminal");
}

#[test]
fn cancel_of_no_release_in_flight_is_bad_input_and_changes_nothing() {
    let sandbox = Sandbox::new();
    sandbox.start();
    for args in [
        &["cancel", "other-service", "--yes"][..],
        &["cancel", "Not_A_Service", "--yes"],
    ] {
        let before = sandbox.snapshot();
        let out = sandbox.canary(args);
        assert_eq!(out.code, 2, "{out}");
        assert_eq!(out.stderr.lines().count(), 1, "{out}");
        assert_unchanged(&before, &sandbox.snapshot(), "cancel of no release");
    }
    sandbox.canary(&["cancel", SERVICE, "--yes"]).ok();
    let before = sandbox.snapshot();
    let again = sandbox.canary(&["cancel", SERVICE, "--yes"]);
    assert_eq!(again.code, 2, "{again}");
    assert_unchanged(&before, &sandbox.snapshot(), "a second cancel");
}
