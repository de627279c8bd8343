//! `canary run`: every step of a release in one command, as `next` takes them one by one, with
//! what would stop it part way refused before its first step.

use expectrl::Expect;

use crate::common::{
    Output, SERVICE, Sandbox, UNATTENDED, assert_unchanged, changed_paths, exit_code,
    unattended_run,
};

fn run(sandbox: &Sandbox, extra: &[&str]) -> Output {
    let mut args = vec!["run", SERVICE];
    args.extend_from_slice(extra);
    sandbox.canary(&args)
}

/// The kind and phase of every event, with the step, environment and weight it names: what a
/// walk did, without when, by whom, or the ids of its release and commits.
fn events(sandbox: &Sandbox) -> Vec<String> {
    sandbox
        .log()
        .iter()
        .map(|e| {
            let d = &e["detail"];
            format!(
                "{} {} {} {} {} {}",
                e["kind"], e["phase"], d["step"], d["env"], d["weight"], d["answered"]
            )
        })
        .collect()
}

#[test]
fn a_run_takes_every_step_to_done_as_nexts_do_and_pushes_each_commit() {
    let serial = Sandbox::new();
    serial.start();
    serial.walk_to("done");

    let sandbox = Sandbox::new();
    sandbox.start();
    let mut args = vec!["--yes"];
    args.extend(UNATTENDED);
    let out = run(&sandbox, &args).ok();
    assert_eq!(sandbox.phase(), "done", "{out}");
    assert!(out.stderr.contains("Step"), "each step is named:\n{out}");
    assert!(
        changed_paths(&sandbox.files(), &serial.files()).is_empty(),
        "the files differ from a walk of nexts"
    );
    assert_eq!(sandbox.commit_subjects(), serial.commit_subjects());
    assert_eq!(events(&sandbox), events(&serial));
    // Every commit reached the remote Argo CD deploys from.
    assert_eq!(
        sandbox.remote_git(&["rev-parse", "main"]),
        sandbox.git(&["rev-parse", "HEAD"])
    );
    // Once done, another run has nothing left to do.
    let again = run(&sandbox, &args).ok();
    assert_eq!(events(&sandbox), events(&serial), "{again}");
}

#[test]
fn until_stops_where_the_phase_begins_and_a_second_run_goes_on_from_there() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut args = vec!["--yes", "--until", "ramp"];
    args.extend(UNATTENDED);
    let out = run(&sandbox, &args).ok();
    assert_eq!(sandbox.phase(), "ramp", "{out}");
    assert!(out.stderr.contains("Reached ramp"), "{out}");
    // Production's weight has not moved yet: the ramp's first step was not taken.
    assert_eq!(
        sandbox.weights(),
        vec![
            ("staging".into(), Some(100)),
            ("production".into(), Some(0))
        ]
    );
    // At the phase already: nothing to do.
    let before = sandbox.snapshot();
    run(&sandbox, &args).ok();
    assert_unchanged(&before, &sandbox.snapshot(), "a run already at --until");

    let mut args = vec!["--yes"];
    args.extend(UNATTENDED);
    run(&sandbox, &args).ok();
    assert_eq!(sandbox.phase(), "done");
}

/// Each case: the run's arguments, the exit code, and what the first line of its error says.
#[test]
fn what_would_stop_a_run_part_way_is_refused_before_its_first_step() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("add-routing");
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &[
                "--trust-deploys",
                "staging",
                "--trust-deploys",
                "production",
            ],
            2,
            "error: a run asks what no check answers (the staging test, each \
             observation) and there is no terminal to ask; pass --yes to answer yes",
        ),
        (
            &["--yes"],
            3,
            "error: refused: a run waits until each deploy shows on its cluster, and \
             staging and production have no kubeconfig context to see them",
        ),
        (
            &["--yes", "--trust-deploys", "staging"],
            3,
            "error: refused: a run waits until each deploy shows on its cluster, and \
             production has no kubeconfig context to see it",
        ),
        (
            &["--yes", "--trust-deploys", "qa"],
            2,
            "error: --trust-deploys qa: my-service's release has no environment qa; it has \
             staging, production",
        ),
        (
            &["--yes", "--until", "deploy-v1"],
            2,
            "error: --until deploy-v1: my-service's release is already in add-routing, past it",
        ),
        (
            &["--yes", "--steps", "1,50@1h,100"],
            2,
            "error: --steps lists the weights 1,50,100, and my-service's release ramps through \
             1,5,10,25,50,100: list those, each with @DURATION where it bakes longer or shorter \
             than --bake",
        ),
        (
            &["--yes", "--until", "halfway"],
            2,
            "error: invalid value 'halfway' for '--until <PHASE>': not a phase; one of \
             deploy-v1, add-routing, route-to-v1, deploy-v2, ramp, cleanup-1, cleanup-2, \
             cleanup-3, done",
        ),
    ];
    for (extra, code, first_line) in cases {
        let before = sandbox.snapshot();
        let out = run(&sandbox, extra);
        assert_eq!(out.code, *code, "{extra:?}: {out}");
        assert_eq!(
            out.stderr.lines().next(),
            Some(*first_line),
            "{extra:?}: {out}"
        );
        assert_unchanged(&before, &sandbox.snapshot(), &format!("run {extra:?}"));
    }
    // The refusal names both ways on: a context, or trust.
    let out = run(&sandbox, &["--yes"]);
    assert!(
        out.stderr.contains(
            "first: give staging a context, or take its deploys on trust with \
             --trust-deploys staging"
        ),
        "{out}"
    );
    assert!(
        out.stderr
            .contains(&sandbox.hint("context my-service staging CONTEXT")),
        "{out}"
    );
}

#[test]
fn a_release_whose_commits_the_operator_pushes_is_refused() {
    let sandbox = Sandbox::new();
    let mut args = sandbox.start_args();
    args.retain(|a| a != "--push");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sandbox.canary(&args).ok();
    let before = sandbox.snapshot();
    let mut extra = vec!["--yes"];
    extra.extend(UNATTENDED);
    let out = run(&sandbox, &extra);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr.starts_with(
            "error: refused: a run pushes each of its commits, and my-service's release \
             was started for the operator to push them (without --push)"
        ),
        "{out}"
    );
    assert_unchanged(
        &before,
        &sandbox.snapshot(),
        "a run of an operator-pushed release",
    );
}

#[test]
fn a_run_while_another_command_holds_the_release_exits_75_and_changes_nothing() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut term = sandbox.on_terminal(&["next", SERVICE]);
    term.expect("Write add the pinned web-v1 deployment")
        .unwrap();
    let before = sandbox.snapshot();
    let mut extra = vec!["--yes"];
    extra.extend(UNATTENDED);
    let out = run(&sandbox, &extra);
    assert_eq!(out.code, 75, "{out}");
    assert!(out.stderr.contains("another canary process"), "{out}");
    assert_unchanged(&before, &sandbox.snapshot(), "a run refused as busy");
    term.send_line("n").unwrap();
    assert_eq!(exit_code(&mut term), 1);
}

#[test]
fn on_a_terminal_a_run_asks_each_question_and_stops_at_a_no() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut args = vec!["run", SERVICE];
    args.extend(UNATTENDED);
    let mut term = sandbox.on_terminal(&args);
    term.expect("Write add the pinned web-v1 deployment")
        .unwrap();
    term.send_line("y").unwrap();
    // The write was committed and pushed; the deploy to staging is asked next.
    term.expect("staging").unwrap();
    term.send_line("n").unwrap();
    let code = exit_code(&mut term);
    assert_ne!(code, 0);
    assert_eq!(sandbox.phase(), "deploy-v1");
    assert_eq!(
        sandbox.remote_git(&["rev-parse", "main"]),
        sandbox.git(&["rev-parse", "HEAD"])
    );
}

/// Killed at a failpoint of every step that writes files, and run again until done: the
/// release ends as an uninterrupted run leaves it, every step taken once, the journal intact.
/// Each run dies at the next step's failpoint: the runs alternate between the failpoint
/// under test and `after-step-started`, which a resumed step does not pass again (a resume
/// writes files, so under `after-files-written` it would die where it died).
#[test]
fn a_run_killed_at_every_failpoint_of_every_step_goes_on_when_run_again() {
    let whole = Sandbox::new();
    whole.start();
    let mut args = vec!["run", SERVICE, "--yes"];
    args.extend(UNATTENDED);
    whole.canary(&args).ok();
    let steps_done = |sandbox: &Sandbox| {
        sandbox
            .log()
            .iter()
            .filter(|e| e["kind"] == "step-done")
            .map(|e| {
                format!(
                    "{} {} {}",
                    e["phase"], e["detail"]["step"], e["detail"]["weight"]
                )
            })
            .collect::<Vec<_>>()
    };
    for failpoint in [
        "after-step-started",
        "after-first-file-written",
        "after-files-written",
        "before-step-done",
        "after-step-done",
        "after-commit",
    ] {
        let sandbox = Sandbox::new();
        sandbox.start();
        let mut kills = 0;
        loop {
            let out = Output::new(
                &args,
                sandbox
                    .canary_command(&args)
                    .env(
                        "CANARY_FAILPOINT",
                        [failpoint, "after-step-started"][kills % 2],
                    )
                    .stdin(std::process::Stdio::null())
                    .output()
                    .unwrap(),
            );
            match (out.code, out.signal) {
                (0, _) => break,
                (_, Some(6)) => kills += 1,
                _ => panic!("{failpoint}: after {kills} kills: {out}"),
            }
            assert!(kills <= 40, "{failpoint}: the run never ended");
        }
        assert!(kills >= 10, "{failpoint}: killed only {kills} times");
        assert_eq!(sandbox.phase(), "done", "{failpoint}");
        assert!(
            changed_paths(&sandbox.files(), &whole.files()).is_empty(),
            "{failpoint}: the files differ from an uninterrupted run"
        );
        assert_eq!(steps_done(&sandbox), steps_done(&whole), "{failpoint}");
        assert_eq!(
            sandbox.remote_git(&["rev-parse", "main"]),
            sandbox.git(&["rev-parse", "HEAD"]),
            "{failpoint}: every commit pushed"
        );
        assert_eq!(sandbox.git(&["status", "--porcelain"]), "", "{failpoint}");
        sandbox.assert_journal_intact();
        sandbox.assert_no_temporary_files(failpoint);
    }
}

/// Each step done, each deploy and the end reach the team's webhook as a message whose text a
/// channel shows; the webhook's path, a secret, is shown nowhere: not in what the run prints,
/// not in the journal.
#[cfg(feature = "cluster")]
#[test]
fn the_team_hears_each_step_and_the_end_and_the_webhook_s_path_is_shown_nowhere() {
    use crate::common::webhook::{Receiver, SECRET};
    let hook = Receiver::start("200 OK");
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut args = vec!["run", SERVICE, "--yes"];
    args.extend(UNATTENDED);
    let out = Output::new(
        &args,
        sandbox
            .canary_command(&args)
            .env("CANARY_WEBHOOK_URL", &hook.url)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    )
    .ok();
    let received = hook.received();
    assert!(received.iter().all(|(path, _)| path == SECRET));
    let events: Vec<&str> = received
        .iter()
        .map(|(_, body)| body["event"].as_str().unwrap())
        .collect();
    // As the journal has them: every step-done, deploy-confirmed and the end, in order.
    let journaled: Vec<String> = sandbox
        .log()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .filter(|k| matches!(k.as_str(), "step-done" | "deploy-confirmed" | "finished"))
        .collect();
    assert_eq!(events, journaled);
    assert_eq!(events.last(), Some(&"finished"));
    let (_, first) = &received[0];
    assert_eq!(
        first["text"],
        "canary: my-service deploy-v1: done: add the pinned web-v1 deployment and the version \
         labels"
    );
    assert_eq!(first["service"], SERVICE);
    assert_eq!(first["detail"]["changed"], true);
    let deploy = received
        .iter()
        .find(|(_, b)| b["event"] == "deploy-confirmed")
        .unwrap();
    assert!(
        deploy.1["text"]
            .as_str()
            .unwrap()
            .starts_with("canary: my-service deploy-v1: deployed to staging"),
        "{}",
        deploy.1
    );
    let shown = [
        out.stdout.clone(),
        out.stderr.clone(),
        sandbox.canary(&["log", SERVICE, "--json"]).stdout,
        sandbox.canary(&["status", SERVICE, "--json"]).stdout,
    ];
    for text in shown {
        assert!(
            !text.contains("SECRET"),
            "the webhook's path was shown: {text}"
        );
    }
    let journal = sandbox.journal_bytes().unwrap();
    assert!(
        !journal.windows(6).any(|w| w == b"SECRET"),
        "the journal holds the webhook's path"
    );
}

/// A webhook that answers 500 to everything is tried three times for each message, each
/// failure journaled by the webhook's host alone, and the release goes on regardless.
#[cfg(feature = "cluster")]
#[test]
fn a_webhook_that_fails_is_retried_and_journaled_and_never_stops_the_release() {
    use crate::common::webhook::Receiver;
    let hook = Receiver::start("500 Internal Server Error");
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut args = vec![
        "run",
        SERVICE,
        "--yes",
        "--until",
        "add-routing",
        "--webhook",
        &hook.url,
    ];
    args.extend(UNATTENDED);
    run(&sandbox, &args[2..]).ok();
    assert_eq!(sandbox.phase(), "add-routing");
    let failed = sandbox.details("notify-failed");
    let about: Vec<&str> = failed
        .iter()
        .map(|d| d["about"].as_str().unwrap())
        .collect();
    assert_eq!(about, ["step-done", "deploy-confirmed", "deploy-confirmed"]);
    let host = hook.url.split("/services").next().unwrap();
    for detail in &failed {
        assert_eq!(detail["to"], format!("{host}/…"));
        assert_eq!(detail["attempts"], 3);
        assert_eq!(detail["error"], "answered HTTP 500");
    }
    assert_eq!(
        hook.received().len(),
        9,
        "three attempts for each of three messages"
    );
}

#[test]
fn a_webhook_that_is_not_a_url_is_refused_without_showing_it() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let before = sandbox.snapshot();
    let mut args = vec!["--yes", "--webhook", "hooks.example/services/SECRET"];
    args.extend(UNATTENDED);
    let out = run(&sandbox, &args);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.starts_with(
            "error: a webhook URL (--webhook or CANARY_WEBHOOK_URL) is not an http:// or \
             https:// URL; it is not shown here, as a webhook's URL is a secret"
        ),
        "{out}"
    );
    assert!(!out.stderr.contains("SECRET"), "{out}");
    assert_unchanged(&before, &sandbox.snapshot(), "a run with a bad webhook");
    // The same where a release keeps its own.
    let out = sandbox.canary(&[
        "settings",
        SERVICE,
        "--webhook",
        "ftp://hooks.example/SECRET",
    ]);
    assert_eq!(out.code, 2, "{out}");
    assert!(!out.stderr.contains("SECRET"), "{out}");
    assert_unchanged(&before, &sandbox.snapshot(), "settings with a bad webhook");
    let fresh = Sandbox::new();
    let mut start = fresh.start_args();
    start.extend(["--webhook".to_string(), "hooks.example/SECRET".to_string()]);
    let start: Vec<&str> = start.iter().map(String::as_str).collect();
    let out = fresh.canary(&start);
    assert_eq!(out.code, 2, "{out}");
    assert!(!out.stderr.contains("SECRET"), "{out}");
    assert!(
        fresh.journal_bytes().is_none(),
        "start with a bad webhook made a journal"
    );
}

/// A pipeline's runner is disposable: stopped at a phase, its journal lost with its machine,
/// the release is adopted afresh (`start --adopt`, from the files and canary's commits) and a
/// run on the new journal carries it to the end, without repeating or skipping a step: the
/// commits are those of one uninterrupted run.
#[test]
fn a_new_runner_adopts_the_release_and_runs_it_on_without_repeating_a_step() {
    let whole = Sandbox::new();
    whole.start();
    let mut args = vec!["--yes"];
    args.extend(UNATTENDED);
    run(&whole, &args).ok();
    for phase in ["add-routing", "deploy-v2", "ramp", "cleanup-2"] {
        let sandbox = Sandbox::new();
        sandbox.start();
        let mut until = args.clone();
        until.extend(["--until", phase]);
        run(&sandbox, &until).ok();
        // The runner's machine is gone, and its journal with it.
        std::fs::remove_file(&sandbox.journal).unwrap();
        // The pipeline starts the release as before, adopting it: with the v1 image, which
        // the files no longer show once cleanup-1 removed web-v1.
        let mut adopt = sandbox.start_args();
        adopt.push("--adopt".into());
        let adopt: Vec<&str> = adopt.iter().map(String::as_str).collect();
        sandbox.canary(&adopt).ok();
        // The files cannot tell a deploy done from one owed: the adopted release may owe the
        // last edit's deploys again, which the new run confirms (on a cluster, sees) again.
        let adopted = sandbox.phase();
        assert!(
            adopted == phase
                || sandbox.status()["step"]
                    .as_str()
                    .unwrap()
                    .contains("deploy"),
            "{phase}: adopted at {}",
            sandbox.status()
        );
        run(&sandbox, &args).ok();
        assert_eq!(sandbox.phase(), "done", "{phase}");
        assert!(
            changed_paths(&sandbox.files(), &whole.files()).is_empty(),
            "{phase}: the files differ from an uninterrupted run"
        );
        assert_eq!(
            sandbox.commit_subjects(),
            whole.commit_subjects(),
            "{phase}"
        );
        assert_eq!(
            sandbox.remote_git(&["rev-parse", "main"]),
            sandbox.git(&["rev-parse", "HEAD"]),
            "{phase}"
        );
    }
}

/// With --json, stdout holds one line of JSON per event the run journaled, as `log --json`
/// shows them, and nothing else; what a person reads (the steps, the diffs) is on stderr,
/// without colour codes when it is not a terminal.
#[test]
fn with_json_stdout_is_the_run_s_events_one_per_line() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let before = sandbox.log().len();
    let mut args = vec!["--yes", "--json", "--until", "route-to-v1"];
    args.extend(UNATTENDED);
    let out = run(&sandbox, &args).ok();
    let lines: Vec<serde_json::Value> = out
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert_eq!(lines, sandbox.log()[before..]);
    assert!(lines.len() > 10, "{}", out.stdout);
    assert!(out.stderr.contains("Step deploy-v1"), "{out}");
    assert!(out.stderr.contains("+++ b/gap/gap.yaml"), "{out}");
    assert!(!out.stderr.contains('\x1b'), "{out}");
}

/// Each production weight is held for --bake from its deploy before it is observed and the
/// ramp goes on: the journal's times show it.
#[test]
fn each_production_weight_bakes_from_its_deploy_before_the_ramp_goes_on() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut args = vec!["--yes", "--until", "cleanup-1"];
    args.extend(&UNATTENDED[..4]);
    args.extend(["--bake", "2s"]);
    let out = run(&sandbox, &args).ok();
    assert!(
        out.stderr
            .contains("Baking v2 at 1% in production for 2s more (a bake of 2s)"),
        "{out}"
    );
    let log = sandbox.log();
    let seconds = |at: &serde_json::Value| -> f64 {
        let at = at.as_str().unwrap();
        let time = &at[11..at.len() - 1];
        let parts: Vec<f64> = time.split(':').map(|p| p.parse().unwrap()).collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
    };
    let mut deployed = None;
    let mut baked = 0;
    for event in &log {
        let detail = &event["detail"];
        if event["kind"] == "deploy-confirmed" && detail["env"] == "production" {
            deployed = Some(seconds(&event["at"]));
        }
        if event["kind"] == "step-done" && detail["step"] == "observed" {
            let held = seconds(&event["at"]) - deployed.unwrap();
            assert!(held >= 2.0, "{}% held {held:.2}s", detail["weight"]);
            baked += 1;
        }
    }
    assert_eq!(baked, 6, "every weight of the schedule");
}

/// The team's test of v2 on staging answers the question no check can: it runs with staging's
/// host in its environment, its yes is journaled as the test's, and a test that fails stops
/// the run there (exit 3) until one passes.
#[test]
fn a_staging_test_command_answers_whether_v2_was_tested() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut args = vec![
        "--yes",
        "--staging-test",
        "echo testing $CANARY_HOST >&2; exit 7",
    ];
    args.extend(UNATTENDED);
    let out = run(&sandbox, &args);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr
            .contains("testing my-service-staging.gservice.emarsys.com"),
        "{out}"
    );
    assert!(
        out.stderr.contains(
            "error: refused: the staging test `echo testing $CANARY_HOST >&2; exit 7` exited 7: \
             v2 does not count as tested on staging"
        ),
        "{out}"
    );
    assert_eq!(
        sandbox.status()["step"],
        "deploy-v2: confirm that v2 was tested on staging"
    );

    let test = "test \"$CANARY_ENV $CANARY_HOSTS\" = \
                'staging my-service-staging.gservice.emarsys.com'";
    let mut args = vec!["--yes", "--until", "ramp", "--staging-test", test];
    args.extend(UNATTENDED);
    let out = run(&sandbox, &args).ok();
    assert_eq!(sandbox.phase(), "ramp", "{out}");
    let tested = sandbox.steps_done("v2 tested");
    assert_eq!(tested.len(), 1, "{tested:?}");
    assert_eq!(tested[0]["answered"], "--staging-test");
    // The other questions were still --yes's.
    let observed = sandbox.details("deploy-confirmed");
    assert!(
        observed.iter().all(|d| d["answered"] == "--yes"),
        "{observed:?}"
    );
}

/// A run killed while the staging test runs has not answered "was v2 tested?"; run again, the
/// test is run again, and its yes is journaled once.
#[test]
fn a_run_killed_while_the_staging_test_runs_goes_on_when_run_again() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let started = sandbox.tmp.path().join("test-started");
    let test = format!("touch {}; sleep 20", started.display());
    let mut args = vec![
        "run",
        SERVICE,
        "--yes",
        "--until",
        "ramp",
        "--staging-test",
        &test,
    ];
    args.extend(UNATTENDED);
    let mut child = sandbox
        .canary_command(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the staging test never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(sandbox.phase(), "deploy-v2");
    assert!(sandbox.steps_done("v2 tested").is_empty());
    let mut args = vec!["--yes", "--until", "ramp", "--staging-test", "true"];
    args.extend(UNATTENDED);
    let out = run(&sandbox, &args);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(sandbox.phase(), "ramp");
    assert_eq!(sandbox.steps_done("v2 tested").len(), 1);
}

/// Two runners on one release, each with its own clone and journal (the second adopted the
/// release): once the first has pushed steps the second lacks, the second stops with 75,
/// naming what the other pushed, and writes nothing, in its clone or its journal.
#[test]
fn a_second_runner_behind_the_first_stops_with_75_and_writes_nothing() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut args = vec!["--yes", "--until", "add-routing"];
    args.extend(UNATTENDED);
    run(&sandbox, &args).ok();

    // Runner B: a clone of the remote and a journal of its own, adopting the release.
    let b_repo = sandbox.tmp.path().join("runner-b");
    let b_journal = sandbox.tmp.path().join("runner-b.db");
    sandbox.git(&[
        "clone",
        "-q",
        sandbox.remote.to_str().unwrap(),
        b_repo.to_str().unwrap(),
    ]);
    let mut start = sandbox.start_args();
    let at = start.iter().position(|a| a == "--repo").unwrap() + 1;
    start[at] = b_repo.to_str().unwrap().to_string();
    start.push("--adopt".into());
    let mut b = vec!["--journal", b_journal.to_str().unwrap()];
    b.extend(start.iter().map(String::as_str));
    sandbox.canary_raw(&b).ok();
    // It confirms the deploys the files cannot show were done, as far as A got.
    let mut b = vec!["--journal", b_journal.to_str().unwrap(), "run", SERVICE];
    b.extend(&args);
    sandbox.canary_raw(&b).ok();

    // Runner A goes on and pushes add-routing's steps.
    let mut args = vec!["--yes", "--until", "route-to-v1"];
    args.extend(UNATTENDED);
    run(&sandbox, &args).ok();

    let before = (
        crate::common::read_tree(&b_repo),
        crate::common::journal_bytes(&b_journal),
    );
    let mut b = vec!["--journal", b_journal.to_str().unwrap(), "run", SERVICE];
    b.extend(&args);
    let out = sandbox.canary_raw(&b);
    assert_eq!(out.code, 75, "{out}");
    assert!(
        out.stderr.contains(
            "error: another canary pushed 2 step(s) of my-service's release to origin/main since \
             this clone was pulled (the newest: add-routing: add the VirtualService patches and \
             the Service patch)"
        ),
        "{out}"
    );
    assert_unchanged(
        &before,
        &(
            crate::common::read_tree(&b_repo),
            crate::common::journal_bytes(&b_journal),
        ),
        "the runner that was overtaken",
    );
}

/// `run ARGS` started in the background, once production's first weight is deployed: the run
/// is baking it then.
fn baking(sandbox: &Sandbox, extra: &[&str]) -> std::process::Child {
    let mut args = vec!["run", SERVICE, "--yes", "--bake", "60s"];
    args.extend(&UNATTENDED[..4]);
    args.extend(extra);
    let child = sandbox
        .canary_command(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !sandbox
        .details("deploy-confirmed")
        .iter()
        .any(|d| d["env"] == "production" && d["after"]["weight"] == 1)
    {
        assert!(std::time::Instant::now() < deadline, "the run never baked");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    child
}

/// A bake holds no lock: `canary abort` during it goes through, and the run stops, having
/// written nothing more. A run killed while it bakes goes on when run again and ends as an
/// uninterrupted run ends.
#[test]
fn a_baking_run_lets_abort_through_and_a_killed_one_goes_on() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let child = baking(&sandbox, &[]);
    let abort = sandbox.canary(&["abort", SERVICE, "--yes"]);
    assert_eq!(abort.code, 0, "abort during the bake: {abort}");
    let (files, events) = (sandbox.files(), sandbox.log().len());
    let stopped = std::time::Instant::now();
    let out = Output::new(&["run"], child.wait_with_output().unwrap());
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr
            .contains("moved the release of my-service on while the bake waited"),
        "{out}"
    );
    // Within a look or two, not at the end of the 60 s bake.
    assert!(stopped.elapsed().as_secs() < 30, "{:?}", stopped.elapsed());
    assert_eq!(sandbox.files(), files, "the run wrote after the abort");
    assert_eq!(
        sandbox.log().len(),
        events,
        "the run journaled after the abort"
    );

    let whole = Sandbox::new();
    whole.start();
    let mut args = vec!["--yes"];
    args.extend(UNATTENDED);
    run(&whole, &args).ok();
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut child = baking(&sandbox, &[]);
    child.kill().unwrap();
    child.wait().unwrap();
    run(&sandbox, &args).ok();
    assert_eq!(sandbox.phase(), "done");
    assert!(changed_paths(&sandbox.files(), &whole.files()).is_empty());
    assert_eq!(sandbox.commit_subjects(), whole.commit_subjects());
    sandbox.assert_journal_intact();
}

/// `--steps` gives one weight a bake of its own; the others keep --bake's.
#[test]
fn steps_give_a_weight_a_bake_of_its_own() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut args = vec![
        "--yes",
        "--until",
        "cleanup-1",
        "--steps",
        "1,5@2s,10,25,50,100",
    ];
    args.extend(UNATTENDED);
    let out = run(&sandbox, &args).ok();
    assert!(
        out.stderr
            .contains("Baking v2 at 5% in production for 2s more (a bake of 2s)"),
        "{out}"
    );
    assert_eq!(out.stderr.matches("Baking").count(), 1, "{out}");
}

/// A release's own webhook, set at `start`, is told by every run without --webhook, shown
/// nowhere (log, status, the export) but by its host; `settings --no-webhooks` removes it.
#[cfg(feature = "cluster")]
#[test]
fn a_release_s_own_webhook_is_told_by_its_runs_and_shown_by_host_only() {
    use crate::common::webhook::Receiver;
    let hook = Receiver::start("200 OK");
    let sandbox = Sandbox::new();
    let mut start = sandbox.start_args();
    start.extend(["--webhook".to_string(), hook.url.clone()]);
    let start: Vec<&str> = start.iter().map(String::as_str).collect();
    sandbox.canary(&start).ok();
    let host = hook.url.split("/services").next().unwrap();
    let set = sandbox.details("settings-changed");
    assert_eq!(
        set[0]["webhooks_to"],
        serde_json::json!([format!("{host}/…")])
    );
    let log = sandbox.canary(&["log", SERVICE]).ok();
    assert!(
        log.stdout.contains(&format!("webhooks  -> {host}/…")),
        "{log}"
    );

    let mut args = vec!["--yes", "--until", "add-routing"];
    args.extend(UNATTENDED);
    run(&sandbox, &args).ok();
    let told = hook.received().len();
    assert_eq!(told, 3, "deploy-v1's step and its two deploys");
    for shown in [
        sandbox.canary(&["log", SERVICE, "--json"]).stdout,
        sandbox.canary(&["status", SERVICE, "--json"]).stdout,
        sandbox.canary(&["journal", "export"]).stdout,
    ] {
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    // Where the words might lead: `context` sets an environment's things, and says
    // where a release's webhooks are set, without repeating the URL.
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["context", SERVICE, "production", "--webhook", &hook.url]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("webhooks are the release's, not production's")
            && out.stderr.contains("settings my-service --webhook URL"),
        "{out}"
    );
    assert!(!out.stderr.contains("SECRET"), "{out}");
    crate::common::assert_unchanged(&before, &sandbox.snapshot(), "context --webhook");

    sandbox.canary(&["settings", SERVICE, "--no-webhooks"]).ok();
    let set = sandbox.details("settings-changed");
    assert_eq!(set[1]["webhooks_to"], serde_json::json!([]));
    let mut args = vec!["--yes", "--until", "route-to-v1"];
    args.extend(UNATTENDED);
    run(&sandbox, &args).ok();
    assert_eq!(
        hook.received().len(),
        told,
        "told after its webhook was removed"
    );
}

/// A webhook that takes the connection and never answers holds the release up for its bounded
/// attempts only (three of 5 s, 1 s and 2 s apart), then the failure is journaled and the
/// run goes on to the end it was given.
#[cfg(feature = "cluster")]
#[test]
fn a_webhook_that_hangs_holds_the_run_up_for_its_bounded_attempts_only() {
    use crate::common::webhook::Receiver;
    let hook = Receiver::hanging();
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.next(); // deploy-v1's edit
    sandbox.next(); // its deploy to staging: one deploy left before add-routing
    let mut args = vec!["--yes", "--until", "add-routing", "--webhook", &hook.url];
    args.extend(UNATTENDED);
    let began = std::time::Instant::now();
    run(&sandbox, &args).ok();
    let took = began.elapsed();
    assert_eq!(sandbox.phase(), "add-routing");
    let failed = sandbox.details("notify-failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["about"], "deploy-confirmed");
    assert_eq!(failed[0]["error"], "no answer within 5s");
    assert_eq!(hook.received().len(), 3, "three attempts");
    // Bounded: three attempts and two pauses, with room for a slow machine.
    assert!(took.as_secs() < 60, "{took:?}");
}

/// Two runs of one release started at once: one takes every step, the other is turned away
/// at once (75) and changes nothing; the release ends as one run leaves it.
#[test]
fn two_runs_at_once_move_the_release_once() {
    let whole = Sandbox::new();
    whole.start();
    let args = unattended_run(&[]);
    Output::new(&args, whole.canary_command(&args).output().unwrap()).ok();
    let sandbox = Sandbox::new();
    sandbox.start();
    let spawn = || {
        sandbox
            .canary_command(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let mut codes: Vec<i32> = [a, b]
        .into_iter()
        .map(|child| Output::new(&args, child.wait_with_output().unwrap()).code)
        .collect();
    codes.sort();
    assert_eq!(codes, [0, 75]);
    assert_eq!(sandbox.phase(), "done");
    assert!(changed_paths(&sandbox.files(), &whole.files()).is_empty());
    assert_eq!(sandbox.commit_subjects(), whole.commit_subjects());
    sandbox.assert_journal_intact();
}

/// On a terminal, a bake is one live line that counts the time waited against the bake.
#[test]
fn on_a_terminal_a_bake_is_a_live_line() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut args = vec!["run", SERVICE, "--yes", "--until", "cleanup-1"];
    args.extend(&UNATTENDED[..4]);
    args.extend(["--bake", "2s"]);
    // A terminal that draws (on_terminal's is dumb, which draws no live lines).
    let mut cmd = sandbox.canary_command(&args);
    cmd.env("TERM", "xterm");
    let mut term = expectrl::session::OsSession::spawn(cmd).unwrap();
    term.set_expect_timeout(Some(std::time::Duration::from_secs(20)));
    term.expect("baking v2 at 1% in production (").unwrap();
    term.expect(" of 2s)").unwrap();
    assert_eq!(exit_code(&mut term), 0);
    assert_eq!(sandbox.phase(), "cleanup-1");
}
