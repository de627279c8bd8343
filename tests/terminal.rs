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
    term.send("n").unwrap();
    term.expect("declined; nothing was written").unwrap();
    term.expect(Eof).unwrap();
    assert_eq!(gap_yaml(&sandbox), before);
    assert_eq!(sandbox.status()["phase"], "deploy-v1");

    let mut term = terminal(&sandbox, &["next", "my-service"]);
    term.expect("Write add the pinned web-v1 deployment")
        .unwrap();
    term.send("y").unwrap();
    term.expect("Commit these files?").unwrap();
    term.send("y").unwrap();
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
fn the_v1_image_check_can_pin_another_image_which_is_deployed_before_the_check_again() {
    let sandbox = Sandbox::new();
    sandbox.start();
    while sandbox.status()["step"] != "route-to-v1: check that web-v1 runs the pinned image" {
        sandbox.next();
    }
    let mut term = terminal(&sandbox, &["next", "my-service"]);
    term.expect("Does the deployed web-v1 run the pinned image?")
        .unwrap();
    term.send("\x1b[B").unwrap(); // down: "no, pin web-v1 to another image"
    term.send("\r").unwrap();
    term.expect("The image web-v1 should run").unwrap();
    let repository = V1_IMAGE.split('@').next().unwrap();
    term.send_line(format!("{repository}@{NEW_DIGEST}"))
        .unwrap();
    term.expect("Write pin web-v1 to the new image").unwrap();
    term.send("y").unwrap();
    term.expect("Commit these files?").unwrap();
    term.send("y").unwrap();
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
}
