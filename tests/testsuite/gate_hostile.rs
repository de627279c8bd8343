//! The gate against a Prometheus that misbehaves (common/hostile.rs): what it cannot use is
//! never a pass, what it reads is bounded in size and time, and what it prints of the server's
//! words cannot drive the terminal. One release, ramped to production's 50% with the gate
//! standing before the raise to 100%, meets each misbehaviour in turn.
#![cfg(feature = "cluster")]

use crate::common::hostile::{self, Mode, Server};
use crate::common::{self, SERVICE, Sandbox};
use crate::gate::{gate_events, ramped_team, started_with, window_passes};

const CHECKS: &str =
    "checks:\n  - name: queue\n    query: max(queue{v=\"$version\"})\n    max: 5\n";

/// `next --yes` at the gate: it exits `code`, writes no file, commits nothing, and production
/// stays at 50%.
fn refused(sandbox: &Sandbox, code: i32, what: &str) -> common::Output {
    let before = sandbox.files();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, code, "{what}: {out}");
    assert_eq!(sandbox.files(), before, "{what}: the repository changed");
    assert_eq!(
        sandbox.weights().last().and_then(|(_, w)| *w),
        Some(50),
        "{what}"
    );
    out
}

/// Ten v2 requests: too few to judge, the gate waits.
const QUIET: Mode = Mode::Values {
    requests: "10",
    errors: "0",
    bucket: "10",
};

/// A release at the gate, its window passed, the Prometheus answering as `mode`.
fn at_the_gate(mode: Mode) -> (Server, Sandbox) {
    let server = Server::start(mode);
    let sandbox = ramped_team("hostile", &server.url, CHECKS);
    window_passes();
    (server, sandbox)
}

/// `canary ARGS` started in the background, once it has journaled a gate evaluation: a gate
/// that cannot judge yet is in its pause then.
fn evaluating(sandbox: &Sandbox, args: &[&str]) -> std::process::Child {
    let evaluations = gate_events(sandbox).len();
    let child = sandbox
        .canary_command(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while gate_events(sandbox).len() == evaluations {
        assert!(
            std::time::Instant::now() < deadline,
            "the gate never evaluated"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child
}

#[test]
fn answers_the_gate_cannot_use_are_never_a_pass() {
    let (server, sandbox) = at_the_gate(hostile::HEALTHY);
    for (requests, errors, bucket, says) in [
        ("40000", "NaN", "40000", "v2's 5xx count answered NaN"),
        ("40000", "+Inf", "40000", "v2's 5xx count answered +Inf"),
        ("40000", "-12", "40000", "v2's 5xx count answered -12"),
        (
            "4000",
            "4500",
            "4000",
            "v2's 5xx count 4500 is more than its 4000 requests",
        ),
        ("NaN", "4", "40000", "v2's request count answered NaN"),
        (
            "40000",
            "4",
            "NaN",
            "v2's latency histogram cannot be read: bucket le=100 counted NaN",
        ),
        (
            "40000",
            "4",
            "+Inf",
            "v2's latency histogram cannot be read: bucket le=100 counted +Inf",
        ),
    ] {
        server.set(Mode::Values {
            requests,
            errors,
            bucket,
        });
        let out = refused(&sandbox, 3, says);
        assert!(
            out.stderr.contains("the metric gate cannot judge v2") && out.stderr.contains(says),
            "{says}: {out}"
        );
        // The query that answered it is named.
        assert!(out.stderr.contains("destination_version=\"v2\""), "{out}");
        let last = gate_events(&sandbox).pop().unwrap();
        assert_eq!(
            last["detail"]["verdict"]["outcome"], "cannot-judge",
            "{last:#}"
        );
    }
    // The same server healthy again: the gate passes and production goes to 100%.
    server.set(hostile::HEALTHY);
    sandbox.next();
    assert_eq!(sandbox.weights().last().and_then(|(_, w)| *w), Some(100));
}

#[test]
fn a_hostile_answer_is_bounded_and_printed_inert() {
    let (server, sandbox) = at_the_gate(hostile::HEALTHY);

    server.set(Mode::Endless);
    let out = refused(&sandbox, 1, "an endless body");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(out.stderr.contains("answered more than 1024 KiB"), "{out}");

    let escapes = format!(
        "\u{1b}[2J\u{1b}]0;owned\u{7}parse error{}",
        "!".repeat(5000)
    );
    server.set(Mode::Error(escapes));
    let out = refused(&sandbox, 1, "an error with escapes");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        !out.stderr.contains('\u{1b}') && !out.stderr.contains('\u{7}'),
        "{out:?}"
    );
    assert!(
        out.stderr
            .contains("answered HTTP 400: \\u{1b}[2J\\u{1b}]0;owned\\u{7}parse error"),
        "{out}"
    );
    assert!(out.stderr.contains("characters cut)"), "{out}");
    assert!(out.stderr.len() < 1000, "{out}");

    // A team check renamed to 70,000 characters in the repository: refused before anything
    // is read or journaled, in one line.
    server.set(hostile::HEALTHY);
    let events = sandbox.log().len();
    sandbox.write(
        "gate-checks.yaml",
        &CHECKS.replace("name: queue", &format!("name: {}", "q".repeat(70_000))),
    );
    sandbox.git(&["commit", "-qam", "a long name"]);
    sandbox.git(&["push", "-q"]);
    let out = refused(&sandbox, 2, "a check name of 70,000 characters");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        out.stderr.contains("name is 70000 characters long"),
        "{out}"
    );
    assert_eq!(sandbox.log().len(), events, "nothing is journaled");
}

#[test]
fn a_server_that_trickles_is_given_up_on_at_the_deadline() {
    let (server, sandbox) = at_the_gate(hostile::HEALTHY);
    server.set(Mode::Trickle);
    let started = std::time::Instant::now();
    let out = refused(&sandbox, 1, "a trickling server");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        out.stderr
            .contains("did not answer the gate's queries within 60s"),
        "{out}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(90),
        "{out}"
    );
}

#[test]
fn a_gate_that_waits_never_keeps_abort_from_the_release() {
    // Too few v2 requests to judge: without --yes, `next` waits and evaluates again.
    let (_server, sandbox) = at_the_gate(QUIET);
    let waiting = evaluating(&sandbox, &["next", SERVICE]);
    let abort = sandbox.canary(&["abort", SERVICE, "--yes"]);
    assert_eq!(abort.code, 0, "abort while the gate waits: {abort}");
    let after_abort = sandbox.files();
    let waited = common::Output::new(&["next", SERVICE], waiting.wait_with_output().unwrap());
    assert_eq!(waited.code, 3, "{waited}");
    assert!(
        waited
            .stderr
            .contains("moved the release of my-service on while the gate waited"),
        "{waited}"
    );
    assert_eq!(
        sandbox.files(),
        after_abort,
        "the waiting next wrote nothing"
    );
    let aborted = sandbox
        .log()
        .into_iter()
        .filter(|e| e["kind"] == "aborted")
        .count();
    assert_eq!(aborted, 1);
}

#[test]
fn the_team_checks_are_read_as_git_holds_them_and_a_change_is_shown() {
    let server = Server::start(hostile::HEALTHY);
    // At start, a checks file git does not hold is refused, nothing journaled.
    let untracked = Sandbox::new();
    untracked.write("gate-checks.yaml", CHECKS);
    let mut args = untracked.start_args();
    args.extend(["--gate-checks", "gate-checks.yaml"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = untracked.canary(&args);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("gate-checks.yaml is not committed"),
        "{out}"
    );
    assert!(untracked.journal_bytes().is_none());

    let sandbox = ramped_team("hostile", &server.url, CHECKS);
    window_passes();
    // An edit in the work tree that would fail v2 (the team's query answers 1) is not read.
    let failing = CHECKS.replace("max: 5", "max: 0");
    sandbox.write("gate-checks.yaml", &failing);
    let out = sandbox.canary(&["gate", SERVICE]);
    assert_eq!(out.code, 0, "an uncommitted edit was read: {out}");
    assert!(!out.stdout.contains("Changed"), "{out}");
    // Committed, it is: the change is said and journaled with the evaluation.
    sandbox.git(&["commit", "-qam", "a stricter queue check"]);
    let out = sandbox.canary(&["gate", SERVICE]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stdout
            .contains("Changed gate-checks.yaml since the gate's last evaluation"),
        "{out}"
    );
    let hashes: Vec<_> = gate_events(&sandbox)
        .iter()
        .map(|e| e["detail"]["checks_sha256"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(hashes.len(), 2, "{hashes:?}");
    assert_ne!(hashes[0], hashes[1]);
    let log = sandbox.canary(&["log", SERVICE]).ok();
    assert!(
        log.stdout
            .contains("(the team's checks changed since the last evaluation)"),
        "{log}"
    );
}

#[test]
fn a_prometheus_is_asked_when_it_is_set_and_a_wrong_one_refused() {
    // Nothing listens: refused at start, in one line, nothing journaled.
    let gone = Server::start(hostile::HEALTHY);
    gone.stop();
    let sandbox = Sandbox::new();
    let mut args = sandbox.start_args();
    args.extend([
        "--prometheus".to_string(),
        format!("production={}", gone.url),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sandbox.canary(&args);
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(out.stderr.contains("cannot be reached"), "{out}");
    assert!(sandbox.journal_bytes().is_none());

    // A Prometheus without the service's series: refused as bad input.
    let empty = Server::start(Mode::Empty);
    let mut args = sandbox.start_args();
    args.extend([
        "--prometheus".to_string(),
        format!("production={}", empty.url),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sandbox.canary(&args);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("has no istio_requests_total")
            && out.stderr.contains("for my-service-web in namespace"),
        "{out}"
    );
    assert!(sandbox.journal_bytes().is_none());

    // `canary context` asks too, and changes nothing when it cannot.
    sandbox.start();
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["context", SERVICE, "production", "--prometheus", &empty.url]);
    assert_eq!(out.code, 2, "{out}");
    common::assert_unchanged(
        &before,
        &sandbox.snapshot(),
        "a Prometheus without the series",
    );
    let good = Server::start(hostile::HEALTHY);
    sandbox
        .canary(&["context", SERVICE, "production", "--prometheus", &good.url])
        .ok();
}

#[test]
fn a_prometheus_gone_or_empty_later_is_one_line_and_changes_nothing() {
    let (server, sandbox) = at_the_gate(hostile::HEALTHY);
    // The series gone since start (a scrape stopped): an error, not a verdict.
    server.set(Mode::Empty);
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("has no istio_requests_total"), "{out}");
    common::assert_unchanged(&before, &sandbox.snapshot(), "no Istio metrics");
    // Prometheus itself gone.
    server.stop();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "production's Prometheus ({}): cannot be reached",
            server.url
        )),
        "{out}"
    );
    common::assert_unchanged(&before, &sandbox.snapshot(), "an unreachable Prometheus");
}

#[test]
fn gate_watch_evaluates_again_as_traffic_comes_in_until_it_decides() {
    // Too few v2 requests at first: not yet.
    let (server, sandbox) = at_the_gate(QUIET);
    let evaluations = gate_events(&sandbox).len();
    let watching = evaluating(&sandbox, &["gate", SERVICE, "--watch", "--timeout", "2m"]);
    // The traffic comes: the next look passes.
    server.set(hostile::HEALTHY);
    let out = common::Output::new(
        &["gate", SERVICE, "--watch"],
        watching.wait_with_output().unwrap(),
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("Gate not enough traffic yet"), "{out}");
    assert!(
        out.stdout.contains("Waiting for the gate to judge"),
        "{out}"
    );
    assert!(out.stdout.contains("Gate pass for v2 at 50%"), "{out}");
    // Not a terminal: no live line, nothing on stderr.
    assert_eq!(out.stderr, "", "{out}");
    let outcomes: Vec<_> = gate_events(&sandbox)[evaluations..]
        .iter()
        .map(|e| {
            e["detail"]["verdict"]["outcome"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        outcomes.first().unwrap(),
        "not-enough-traffic",
        "{outcomes:?}"
    );
    assert_eq!(outcomes.last().unwrap(), "pass", "{outcomes:?}");
    // Nothing moved: the gate on demand only judges.
    assert_eq!(sandbox.weights().last().and_then(|(_, w)| *w), Some(50));

    let out = sandbox.canary(&["gate", SERVICE, "--timeout", "1m"]);
    assert_eq!(out.code, 2, "{out}");
}

/// `canary run` at a gate that cannot judge yet waits within its --timeout, then stops as a
/// failure (exit 1, not `next --yes`'s 4), with production where it was; the team hears the
/// gate's verdict, then the stop.
#[test]
fn a_run_whose_timeout_passes_at_the_gate_stops_and_changes_nothing() {
    let (_server, sandbox) = at_the_gate(QUIET);
    let hook = crate::common::webhook::Receiver::start("200 OK");
    let before = sandbox.snapshot();
    let args = common::unattended_run(&["--timeout", "2s", "--webhook", &hook.url]);
    let out = common::Output::new(
        &args,
        sandbox
            .canary_command(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("error: the run stopped at its --timeout of 2s: the gate still cannot judge"),
        "{out}"
    );
    assert_eq!(sandbox.files(), before.0, "the repository changed");
    assert_eq!(sandbox.weights().last().and_then(|(_, w)| *w), Some(50));
    let told: Vec<String> = hook
        .received()
        .iter()
        .map(|(_, body)| body["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(
        told[0]
            .starts_with("canary: my-service ramp: gate at production v2 50%: not-enough-traffic"),
        "{told:?}"
    );
    assert!(
        told[1].starts_with("canary: my-service ramp: the run stopped at its --timeout of 2s"),
        "{told:?}"
    );
}

/// v2 answering one request in ten with a 5xx: the gate fails.
const FAILING: Mode = Mode::Values {
    requests: "40000",
    errors: "4000",
    bucket: "40000",
};

fn run_at_the_gate(sandbox: &Sandbox, extra: &[&str]) -> common::Output {
    sandbox.canary(&common::unattended_run(extra))
}

/// A failed gate in `canary run` aborts the release by itself (the release was not started
/// with --gate-auto-abort): the abort is committed, pushed and deployed, journaled as the
/// gate's, and the run exits 3 with all traffic back on v1.
#[test]
fn a_run_whose_gate_fails_aborts_by_itself_and_deploys_the_abort() {
    let (_server, sandbox) = at_the_gate(FAILING);
    let out = run_at_the_gate(&sandbox, &[]);
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stderr.contains("the metric gate failed"), "{out}");
    assert!(
        out.stderr.contains("the release aborted by itself"),
        "{out}"
    );
    let log = sandbox.log();
    let aborted = log
        .iter()
        .position(|e| e["kind"] == "aborted")
        .expect("an abort");
    assert_eq!(log[aborted]["detail"]["by"], "gate");
    let deployed: Vec<&str> = log[aborted..]
        .iter()
        .filter(|e| e["kind"] == "deploy-confirmed")
        .map(|e| e["detail"]["env"].as_str().unwrap())
        .collect();
    assert_eq!(
        deployed,
        ["staging", "production"],
        "the abort's deploys were taken"
    );
    assert_eq!(
        sandbox.weights(),
        [("staging".into(), Some(0)), ("production".into(), Some(0))]
    );
    assert_eq!(
        sandbox.remote_git(&["rev-parse", "main"]),
        sandbox.git(&["rev-parse", "HEAD"]),
        "the abort reached the remote"
    );
}

/// With --on-gate-fail stop, a failed gate stops the run and leaves the release as it was.
#[test]
fn a_run_told_to_stop_on_a_failed_gate_changes_nothing() {
    let (_server, sandbox) = at_the_gate(FAILING);
    let before = sandbox.files();
    let out = run_at_the_gate(&sandbox, &["--on-gate-fail", "stop"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stderr.contains("the metric gate failed"), "{out}");
    assert!(!out.stderr.contains("aborted by itself"), "{out}");
    assert_eq!(sandbox.files(), before);
    assert!(sandbox.details("aborted").is_empty());
    assert_eq!(sandbox.weights().last().and_then(|(_, w)| *w), Some(50));
}

/// A run killed while the gate waits for evidence goes on when run again, and the gate it
/// meets then decides afresh.
#[test]
fn a_run_killed_while_the_gate_waits_goes_on_when_run_again() {
    let (server, sandbox) = at_the_gate(QUIET);
    let args = common::unattended_run(&["--until", "cleanup-1"]);
    let mut waiting = evaluating(&sandbox, &args);
    waiting.kill().unwrap();
    waiting.wait().unwrap();
    assert_eq!(sandbox.weights().last().and_then(|(_, w)| *w), Some(50));
    server.set(hostile::HEALTHY);
    let out = sandbox.canary(&args);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(sandbox.phase(), "cleanup-1");
    assert_eq!(sandbox.weights().last().and_then(|(_, w)| *w), Some(100));
}

/// A run killed while the staging gate waits for traffic has not answered "was v2 tested?";
/// run again, it meets the staging gate afresh, which answers once staging shows v2 good.
#[test]
fn a_run_killed_while_the_staging_gate_waits_goes_on_when_run_again() {
    let server = Server::start(QUIET);
    let staging = format!("staging={}", server.url);
    let sandbox = started_with("hostile", &server.url, &["--prometheus", &staging], |_| {});
    let args = common::unattended_run(&["--staging-gate", "--until", "ramp"]);
    let mut waiting = evaluating(&sandbox, &args);
    waiting.kill().unwrap();
    waiting.wait().unwrap();
    assert_eq!(sandbox.phase(), "deploy-v2");
    assert!(sandbox.steps_done("v2 tested").is_empty());
    let evaluated = gate_events(&sandbox);
    assert_eq!(evaluated.last().unwrap()["detail"]["env"], "staging");
    server.set(hostile::HEALTHY);
    let out = sandbox.canary(&args);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(sandbox.phase(), "ramp");
    let tested = sandbox.steps_done("v2 tested");
    assert_eq!(tested.len(), 1, "{tested:?}");
    assert_eq!(tested[0]["answered"], "--staging-gate");
}
