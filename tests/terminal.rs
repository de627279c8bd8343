//! The real prompts, driven through a pseudo-terminal as a person would answer them.

mod common;

use std::time::Duration;

use common::{Sandbox, V1_IMAGE};
use expectrl::session::OsSession as Session;
use expectrl::{Eof, Expect};

const NEW_DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// `canary ARGS` (with the sandbox's journal) on a pseudo-terminal of its own.
fn terminal(sandbox: &Sandbox, args: &[&str]) -> Session {
    let mut cmd = sandbox.canary_command(args);
    cmd.env("TERM", "dumb");
    let mut session = Session::spawn(cmd).unwrap();
    session.set_expect_timeout(Some(Duration::from_secs(20)));
    session
}

fn gap_yaml(sandbox: &Sandbox) -> String {
    std::fs::read_to_string(sandbox.repo.join("gap/gap.yaml")).unwrap()
}

/// Assert that `text` does not appear within a second: the process is still waiting where it
/// was. (What has been read stays in the buffer for the next expectation.)
#[track_caller]
fn not_yet(session: &mut Session, text: &str) {
    session.set_expect_timeout(Some(Duration::from_secs(1)));
    match session.expect(text) {
        Err(expectrl::Error::ExpectTimeout) => {}
        other => panic!("{text:?} appeared, or the session failed: {other:?}"),
    }
    session.set_expect_timeout(Some(Duration::from_secs(20)));
}

/// The `detail` of every event of the release of this `kind`, oldest first.
fn details(sandbox: &Sandbox, kind: &str) -> Vec<serde_json::Value> {
    sandbox
        .log()
        .into_iter()
        .filter(|e| e["kind"] == kind)
        .map(|e| e["detail"].clone())
        .collect()
}

const HINT: &str = "type y or n (yes or no), then Enter";

fn exited_ok(session: &mut Session) {
    session.expect(Eof).unwrap();
    let status = session.get_process_mut().wait().unwrap();
    assert_eq!(
        format!("{status:?}").split(", ").last(),
        Some("0)"),
        "{status:?}"
    );
}

#[test]
fn start_asks_for_every_missing_value_on_a_terminal() {
    let sandbox = Sandbox::new();
    let mut term = terminal(&sandbox, &["start"]);
    term.expect("Service").unwrap();
    term.send_line("my-service").unwrap();
    term.expect("Repository directory").unwrap();
    term.send_line(sandbox.repo.to_str().unwrap()).unwrap();
    term.expect("v1 image").unwrap();
    // A tag is not a digest: the prompt says so and asks again.
    term.send_line("my-service:latest").unwrap();
    term.expect("has no digest").unwrap();
    term.send_line(V1_IMAGE).unwrap();
    term.expect("Namespace").unwrap();
    term.send_line("relational-data").unwrap();
    term.expect("Public host of staging").unwrap();
    term.send_line("my-service-staging.gservice.emarsys.com")
        .unwrap();
    term.expect("Public host of production").unwrap();
    term.send_line("my-service.gservice.emarsys.net").unwrap();
    term.expect("Started").unwrap();
    exited_ok(&mut term);
    let status = sandbox.status();
    assert_eq!(status["phase"], "deploy-v1");
    assert_eq!(status["v1_image"], V1_IMAGE);
}

#[test]
fn a_declined_write_changes_nothing_and_an_accepted_one_writes_and_commits() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let before = gap_yaml(&sandbox);

    let mut term = terminal(&sandbox, &["next", "my-service"]);
    term.expect("Write add the pinned web-v1 deployment")
        .unwrap();
    term.send_line("n").unwrap();
    term.expect("declined; nothing was written").unwrap();
    term.expect(Eof).unwrap();
    assert_eq!(gap_yaml(&sandbox), before);
    assert_eq!(sandbox.status()["phase"], "deploy-v1");

    let mut term = terminal(&sandbox, &["next", "my-service"]);
    term.expect("Write add the pinned web-v1 deployment")
        .unwrap();
    term.send_line("y").unwrap();
    term.expect("Commit these files?").unwrap();
    term.send_line("y").unwrap();
    term.expect("Committed").unwrap();
    exited_ok(&mut term);
    assert!(gap_yaml(&sandbox).contains("  web-v1:\n"));
    let subjects = sandbox.commit_subjects();
    assert_eq!(
        subjects.first().map(String::as_str),
        Some(
            "canary(my-service): deploy-v1: add the pinned web-v1 deployment and the version labels"
        )
    );
}

#[test]
fn one_key_answers_nothing_until_enter() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let before = sandbox.snapshot();
    let mut term = terminal(&sandbox, &["next", "my-service"]);
    term.expect("(1 files)?").unwrap();
    term.send("y").unwrap();
    // The key is read (the prompt echoes it) and answers nothing: no write, no next prompt.
    term.expect("[y/n] y").unwrap();
    not_yet(&mut term, "Commit these files?");
    common::assert_unchanged(&before, &sandbox.snapshot(), "after `y` without Enter");
    term.send("\n").unwrap();
    term.expect("Commit these files?").unwrap();
    term.send_line("n").unwrap();
    exited_ok(&mut term);
    assert!(gap_yaml(&sandbox).contains("  web-v1:\n"));
    assert_eq!(sandbox.commit_subjects().len(), 1, "committed after no");
}

#[test]
fn the_enter_of_one_answer_does_not_answer_the_next_prompt() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut term = terminal(&sandbox, &["next", "my-service"]);
    term.expect("(1 files)? [y/n] ").unwrap();
    // A second Enter typed ahead reaches "Commit these files?" as a bare Enter: refused there.
    term.send("y\n\n").unwrap();
    term.expect("Commit these files?").unwrap();
    term.expect(HINT).unwrap();
    not_yet(&mut term, "Committed");
    assert_eq!(
        sandbox.commit_subjects().len(),
        1,
        "committed on a bare Enter"
    );
    assert!(details(&sandbox, "committed").is_empty());
    term.send_line("yes").unwrap();
    term.expect("Committed").unwrap();
    exited_ok(&mut term);
    assert_eq!(sandbox.commit_subjects().len(), 2);
}

#[test]
fn a_bare_enter_at_a_deploy_question_confirms_nothing_and_asks_again() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.next();
    sandbox.next();
    let step = "deploy-v1: deploy to production";
    assert_eq!(sandbox.status()["step"], step);
    let before = sandbox.snapshot();

    let mut term = terminal(&sandbox, &["next", "my-service"]);
    term.expect("Is it deployed to production? [y/n] ").unwrap();
    term.send("\n").unwrap();
    term.expect(HINT).unwrap();
    // Anything but y, yes, n or no is refused the same way.
    term.send_line("yep").unwrap();
    term.expect(HINT).unwrap();
    not_yet(&mut term, "Next");
    common::assert_unchanged(&before, &sandbox.snapshot(), "after a bare Enter and `yep`");
    term.send_line(" No ").unwrap();
    term.expect("not confirmed; the release stays where it is")
        .unwrap();
    term.expect(Eof).unwrap();
    common::assert_unchanged(&before, &sandbox.snapshot(), "after no");
    assert_eq!(sandbox.status()["step"], step);

    let mut term = terminal(&sandbox, &["next", "my-service"]);
    term.expect("Is it deployed to production? [y/n] ").unwrap();
    term.send_line("  YES ").unwrap();
    term.expect("Is it deployed to production? yes").unwrap();
    exited_ok(&mut term);
    assert_eq!(
        sandbox.status()["step"],
        "add-routing: add the DestinationRule subsets and web-v1's AuthorizationPolicy"
    );
    // How each deploy was confirmed: staging by `--yes`, production typed at the terminal.
    let confirmed: Vec<_> = details(&sandbox, "deploy-confirmed")
        .iter()
        .map(|d| (d["env"].clone(), d["answered"].clone()))
        .collect();
    assert_eq!(
        confirmed,
        [
            ("staging".into(), "--yes".into()),
            ("production".into(), "terminal".into())
        ]
    );
}

/// `canary next` up to the v1 image check of route-to-v1.
fn at_the_v1_image_check() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.start();
    while sandbox.status()["step"] != "route-to-v1: check that web-v1 runs the pinned image" {
        sandbox.next();
    }
    sandbox
}

#[test]
fn n_at_the_v1_image_question_asks_for_another_image_and_checks_nothing() {
    let sandbox = at_the_v1_image_check();
    let before = sandbox.snapshot();
    let mut term = terminal(&sandbox, &["next", "my-service"]);
    term.expect("Does the deployed web-v1 run the pinned image? [y/n] ")
        .unwrap();
    term.send_line("n").unwrap();
    term.expect("The image web-v1 should run").unwrap();
    common::assert_unchanged(&before, &sandbox.snapshot(), "after n");
    // Ctrl-C at the image: no answer, nothing recorded.
    term.send("\x03").unwrap();
    term.expect(Eof).unwrap();
    let status = term.get_process_mut().wait().unwrap();
    assert!(
        format!("{status:?}").contains("SIGINT"),
        "not ended by Ctrl-C: {status:?}"
    );
    common::assert_unchanged(&before, &sandbox.snapshot(), "after Ctrl-C");
    assert!(
        !details(&sandbox, "step-done")
            .iter()
            .any(|d| d["step"] == "v1 image checked"),
        "the v1 image was recorded as checked"
    );
}

#[test]
fn the_v1_image_check_can_pin_another_image_which_is_deployed_before_the_check_again() {
    let sandbox = at_the_v1_image_check();
    let mut term = terminal(&sandbox, &["next", "my-service"]);
    term.expect("Does the deployed web-v1 run the pinned image?")
        .unwrap();
    term.send_line("no").unwrap();
    term.expect("The image web-v1 should run").unwrap();
    let repository = V1_IMAGE.split('@').next().unwrap();
    term.send_line(format!("{repository}@{NEW_DIGEST}"))
        .unwrap();
    term.expect("Write pin web-v1 to the new image").unwrap();
    term.send_line("y").unwrap();
    term.expect("Commit these files?").unwrap();
    term.send_line("y").unwrap();
    exited_ok(&mut term);

    assert!(gap_yaml(&sandbox).contains(&format!("      tag: {NEW_DIGEST}\n")));
    let status = sandbox.status();
    assert_eq!(status["v1_image"], format!("{repository}@{NEW_DIGEST}"));
    assert_eq!(
        status["step"],
        "route-to-v1: deploy to staging (pin web-v1 to a new image)"
    );
    sandbox.next();
    sandbox.next();
    assert_eq!(
        sandbox.status()["step"],
        "route-to-v1: check that web-v1 runs the pinned image"
    );

    // Yes, typed, checks the new image, and the journal says so.
    let mut term = terminal(&sandbox, &["next", "my-service"]);
    term.expect("Does the deployed web-v1 run the pinned image?")
        .unwrap();
    term.send_line("y").unwrap();
    exited_ok(&mut term);
    let checked: Vec<_> = details(&sandbox, "step-done")
        .into_iter()
        .filter(|d| d["step"] == "v1 image checked")
        .collect();
    assert_eq!(checked.len(), 1, "{checked:?}");
    assert_eq!(checked[0]["image"], format!("{repository}@{NEW_DIGEST}"));
    assert_eq!(checked[0]["answered"], "terminal");
}
