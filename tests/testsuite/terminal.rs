//! The real prompts, driven through a pseudo-terminal as a person would answer them.

use crate::common;

use std::time::Duration;

use crate::common::{Sandbox, V1_IMAGE};
use expectrl::session::OsSession as Session;
use expectrl::{Eof, Expect};

const NEW_DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

/// `canary ARGS` (with the sandbox's journal) on a pseudo-terminal of its own.
fn terminal(sandbox: &Sandbox, args: &[&str]) -> Session {
    let mut cmd = sandbox.canary_command(args);
    cmd.env("TERM", "dumb");
    let mut session = Session::spawn(cmd).unwrap();
    session.set_expect_timeout(Some(Duration::from_secs(20)));
    common::wide(&mut session);
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
    term.expect("(1 file)?").unwrap();
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
    term.expect("(1 file)? [y/n] ").unwrap();
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
    assert!(sandbox.details("committed").is_empty());
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
    let confirmed: Vec<_> = sandbox
        .details("deploy-confirmed")
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
        !sandbox
            .details("step-done")
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
    let checked: Vec<_> = sandbox
        .details("step-done")
        .into_iter()
        .filter(|d| d["step"] == "v1 image checked")
        .collect();
    assert_eq!(checked.len(), 1, "{checked:?}");
    assert_eq!(checked[0]["image"], format!("{repository}@{NEW_DIGEST}"));
    assert_eq!(checked[0]["answered"], "terminal");
}

/// `canary demo` on a pseudo-terminal with no `--journal`: the demo keeps a journal of its own,
/// in a directory of its own under the sandbox (TMPDIR).
fn demo_on_terminal(sandbox: &Sandbox) -> Session {
    let mut cmd = sandbox.command(env!("CARGO_BIN_EXE_canary"));
    cmd.arg("demo")
        .current_dir(sandbox.tmp.path())
        .env("TMPDIR", sandbox.tmp.path())
        .env("TERM", "dumb");
    let mut session = Session::spawn(cmd).unwrap();
    session.set_expect_timeout(Some(Duration::from_secs(20)));
    common::wide(&mut session);
    session
}

/// What the demo printed up to its end, once `answer` was typed at its first question; and the
/// hint it gave, split into arguments: `canary --journal PATH next my-service`.
fn demo_stopped_by(answer: &str) -> (Sandbox, Vec<String>) {
    let sandbox = Sandbox::new();
    let mut term = demo_on_terminal(&sandbox);
    term.expect("Write add the pinned web-v1 deployment")
        .unwrap();
    term.send(answer).unwrap();
    let hint = term
        .expect(expectrl::Regex("`canary [^`]*`"))
        .unwrap()
        .get(0)
        .map(|m| String::from_utf8_lossy(m).trim_matches('`').to_string())
        .unwrap();
    term.expect(Eof).unwrap();
    let status = term.get_process_mut().wait().unwrap();
    assert!(!format!("{status:?}").ends_with(", 0)"), "{status:?}");
    let args: Vec<String> = hint.split(' ').map(str::to_string).collect();
    (sandbox, args)
}

#[track_caller]
fn assert_the_hint_goes_on_with_the_demo_s_journal(sandbox: &Sandbox, hint: &[String]) {
    let journal = sandbox.tmp.path().join("canary-demo-");
    assert_eq!(hint[..2], ["canary", "--journal"], "{hint:?}");
    assert!(
        hint[2].starts_with(journal.to_str().unwrap()) && hint[2].ends_with("/journal.db"),
        "{hint:?}"
    );
    assert_eq!(hint[3..], ["next", "my-service"], "{hint:?}");
    // Copied as printed (with --yes, as there is no terminal here), it takes the step the demo
    // stopped at, in the demo's own release.
    let mut args: Vec<&str> = hint[1..].iter().map(String::as_str).collect();
    args.push("--yes");
    let out = sandbox.canary_raw(&args).ok();
    assert!(out.stdout.contains("Committed"), "{out}");
    let status = sandbox
        .canary_raw(&["--journal", &hint[2], "status", "my-service", "--json"])
        .ok()
        .json();
    assert_eq!(status["phase"], "deploy-v1", "{status}");
    assert!(status["in_progress"].is_null(), "{status}");
}

#[test]
fn the_demo_stopped_by_n_says_how_to_go_on_with_its_own_journal() {
    let (sandbox, hint) = demo_stopped_by("n\r");
    assert_the_hint_goes_on_with_the_demo_s_journal(&sandbox, &hint);
}

#[test]
fn the_demo_stopped_by_ctrl_c_says_how_to_go_on_with_its_own_journal() {
    let (sandbox, hint) = demo_stopped_by("\x03");
    assert_the_hint_goes_on_with_the_demo_s_journal(&sandbox, &hint);
}

/// A question wider than the terminal, answered wrongly twice at 80 columns: the screen (as a
/// terminal draws the bytes canary wrote) shows the question once, whole, with one hint above
/// it; no first line of an earlier drawing is left behind.
#[test]
fn a_question_wider_than_the_terminal_is_redrawn_whole_on_a_re_prompt() {
    const COLUMNS: u16 = 80;
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("add-routing");
    let mut cmd = sandbox.canary_command(&["next", "my-service"]);
    cmd.env("TERM", "xterm");
    let mut term = Session::spawn(cmd).unwrap();
    term.set_expect_timeout(Some(Duration::from_secs(20)));
    term.get_process_mut().set_window_size(COLUMNS, 24).unwrap();
    let size = |n: u16| std::num::NonZero::new(n).unwrap();
    let mut screen = vt100::Parser::new(size(24), size(COLUMNS), 0);
    let mut read = |term: &mut Session, until: &str| {
        let seen = term.expect(until).unwrap();
        screen.process(seen.as_bytes());
        screen.screen().contents()
    };
    let question = "Write add the DestinationRule subsets and web-v1's AuthorizationPolicy";
    read(&mut term, "[y/n] ");
    for wrong in ["maybe", "nope"] {
        term.send(format!("{wrong}\r")).unwrap();
        read(&mut term, HINT);
        let shown = read(&mut term, "[y/n] ");
        let rows: Vec<&str> = shown.lines().collect();
        let at = rows
            .iter()
            .position(|r| r.contains("Write add the DestinationRule"))
            .unwrap_or_else(|| panic!("the question is not on the screen:\n{shown}"));
        assert_eq!(
            rows.iter().filter(|r| r.contains("Write add the")).count(),
            1,
            "after {wrong:?}, the question is drawn more than once:\n{shown}"
        );
        assert_eq!(
            rows.iter().filter(|r| r.contains(HINT)).count(),
            1,
            "after {wrong:?}:\n{shown}"
        );
        assert!(rows[at - 1].contains(HINT), "after {wrong:?}:\n{shown}");
        // The question is wider than the screen, and all of it is there, below the hint.
        let question_rows: Vec<&str> = rows[at..]
            .iter()
            .map(|r| r.trim_end())
            .filter(|r| !r.is_empty())
            .collect();
        assert!(
            question_rows.len() >= 2,
            "the question fits on one row; the test shows nothing:\n{shown}"
        );
        let drawn = question_rows.join(" ");
        assert!(
            drawn.contains(question) && drawn.trim_end().ends_with("[y/n]"),
            "after {wrong:?}, the question is not drawn whole:\n{shown}"
        );
        assert!(
            !rows.iter().any(|r| r.contains(wrong)),
            "after {wrong:?}, the wrong answer is still on the screen:\n{shown}"
        );
    }
    term.send("n\r").unwrap();
    term.expect("declined; nothing was written").unwrap();
    term.expect(Eof).unwrap();
}
