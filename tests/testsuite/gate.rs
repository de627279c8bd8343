//! The metric gate end to end: the real binary ramps a release in a real repository while a
//! real Prometheus (Debian's `prometheus`) scrapes Istio's series for each scenario from an
//! exporter on loopback (common/prometheus.rs). Without Prometheus installed these tests
//! skip with a note, unless CANARY_REQUIRE_PROMETHEUS=1 (CI), when they fail.
//!
//! Every release ramps 50% then 100%, with a 6 s gate window: production's 50% is deployed
//! and observed, and the gate stands before the raise to 100%.
//!
//! The gate's HTTP client is kube's: without the `cluster` feature, without_cluster.rs
//! checks that it says so instead.
#![cfg(feature = "cluster")]

use crate::common;

use std::time::Duration;

use crate::common::hostile;
use crate::common::prometheus::{self, Behaviour, HEALTHY, Scenario, Server};
use crate::common::{SERVICE, Sandbox};
use serde_json::Value;

const WINDOW: &str = "6s";

const SCENARIOS: [Scenario; 8] = [
    Scenario {
        namespace: "healthy",
        v1: HEALTHY,
        v2: HEALTHY,
    },
    // v2 answers 3% of its requests 5xx, v1 0.1%.
    Scenario {
        namespace: "errors",
        v1: HEALTHY,
        v2: Behaviour {
            error_share: 0.03,
            ..HEALTHY
        },
    },
    Scenario {
        namespace: "auto-abort",
        v1: HEALTHY,
        v2: Behaviour {
            error_share: 0.03,
            ..HEALTHY
        },
    },
    // v2's p99 175 ms, more than twice v1's 75 ms, both under Flagger's 500 ms.
    Scenario {
        namespace: "slow",
        v1: HEALTHY,
        v2: Behaviour {
            slow_le: 250.0,
            ..HEALTHY
        },
    },
    // Two requests a second: about 14 in the window, the gate wants 100.
    Scenario {
        namespace: "quiet",
        v1: HEALTHY,
        v2: Behaviour {
            rps: 2.0,
            ..HEALTHY
        },
    },
    // A load spike: both versions at 5% errors and a p99 of 750 ms.
    Scenario {
        namespace: "spike",
        v1: Behaviour {
            rps: 400.0,
            error_share: 0.05,
            slow_le: 1000.0,
        },
        v2: Behaviour {
            rps: 400.0,
            error_share: 0.05,
            slow_le: 1000.0,
        },
    },
    // v2 at a quarter of v1's traffic, and half its errors: a pass, and some 5xx answers.
    Scenario {
        namespace: "team",
        v1: HEALTHY,
        v2: Behaviour {
            rps: 1000.0,
            error_share: 0.0005,
            ..HEALTHY
        },
    },
    Scenario {
        namespace: "team-fails",
        v1: HEALTHY,
        v2: HEALTHY,
    },
];

/// A release started in `namespace`, its ramp 50%, 100%, production's gate reading
/// `prometheus`; `prepare` runs on the sandbox before the start.
pub(crate) fn started_with(
    namespace: &str,
    prometheus: &str,
    extra: &[&str],
    prepare: impl FnOnce(&Sandbox),
) -> Sandbox {
    let sandbox = Sandbox::new();
    prepare(&sandbox);
    let mut args = sandbox.start_args();
    let ns = args.iter().position(|a| a == "--namespace").unwrap() + 1;
    args[ns] = namespace.into();
    args.extend(
        [
            "--steps",
            "50,100",
            "--prometheus",
            &format!("production={prometheus}"),
            "--gate-window",
            WINDOW,
        ]
        .map(String::from),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sandbox.canary(&args).ok();
    sandbox
}

/// A release in `namespace` ramped to production's 50%, deployed and observed, its gate
/// reading `prometheus`; the gate stands before the next step (the raise to 100%).
pub(crate) fn ramped_with(
    namespace: &str,
    prometheus: &str,
    extra: &[&str],
    prepare: impl FnOnce(&Sandbox),
) -> Sandbox {
    let sandbox = started_with(namespace, prometheus, extra, prepare);
    sandbox.walk_to("ramp");
    while sandbox.weights().last().and_then(|(_, w)| *w) != Some(50) {
        sandbox.next();
    }
    sandbox.next(); // production's deploy of 50%
    sandbox.next(); // its observation
    let step = sandbox.status()["step"].as_str().unwrap().to_string();
    assert!(
        step.contains("100%"),
        "the gate should stand before: {step}"
    );
    sandbox
}

fn ramped(namespace: &str, extra: &[&str]) -> Option<(Sandbox, &'static Server)> {
    let server = prometheus::server(&SCENARIOS)?;
    Some((ramped_with(namespace, &server.url, extra, |_| {}), server))
}

/// Wait out the gate window after production's deploy.
pub(crate) fn window_passes() {
    std::thread::sleep(Duration::from_secs(7));
}

fn gate_json(sandbox: &Sandbox, code: i32) -> Value {
    let out = sandbox.canary(&["gate", SERVICE, "--json"]);
    assert_eq!(out.code, code, "{out}");
    out.json()["verdict"].clone()
}

fn check<'a>(verdict: &'a Value, name: &str) -> &'a Value {
    verdict["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {verdict:#}"))
}

fn close(value: &Value, expected: f64, within: f64) -> bool {
    value
        .as_f64()
        .is_some_and(|v| (v - expected).abs() <= within)
}

fn production_weight(sandbox: &Sandbox) -> Option<u64> {
    sandbox.weights().last().and_then(|(_, w)| *w)
}

pub(crate) fn gate_events(sandbox: &Sandbox) -> Vec<Value> {
    sandbox
        .log()
        .into_iter()
        .filter(|e| e["kind"] == "gate-evaluated")
        .collect()
}

#[test]
fn a_healthy_v2_passes_the_gate_at_each_raise_and_at_the_end_of_the_ramp() {
    let Some((sandbox, _)) = ramped("healthy", &[]) else {
        return;
    };
    // Deployed a moment ago: not enough time, nothing changed, nothing read.
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--dry-run"]).ok();
    assert!(
        out.stdout.contains("Would first pass the metric gate"),
        "{out}"
    );
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 4, "{out}");
    assert!(out.stdout.contains("not enough time yet"), "{out}");
    assert!(out.stderr.contains("cannot judge yet"), "{out}");
    common::assert_unchanged(&before, &sandbox.snapshot(), "a gate with too little time");

    window_passes();
    let verdict = gate_json(&sandbox, 0);
    assert_eq!(verdict["outcome"], "pass", "{verdict:#}");
    // The numbers are the scenario's: 0.1% errors, p99 75 ms, on both sides.
    let rate = check(&verdict, "success rate");
    assert!(
        close(&rate["v1"], 99.9, 0.02) && close(&rate["v2"], 99.9, 0.02),
        "{rate}"
    );
    let p99 = check(&verdict, "p99 latency");
    assert!(
        close(&p99["v1"], 75.0, 3.0) && close(&p99["v2"], 75.0, 3.0),
        "{p99}"
    );
    assert!(check(&verdict, "requests")["v2"].as_f64().unwrap() > 1000.0);

    let out = sandbox.next();
    assert!(out.stdout.contains("Gate pass for v2 at 50%"), "{out}");
    assert_eq!(production_weight(&sandbox), Some(100));
    // The deploy of 100%, then the gate before the ramp is declared done.
    sandbox.next();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 4, "{out}");
    window_passes();
    let out = sandbox.next();
    assert!(out.stdout.contains("Gate pass for v2 at 100%"), "{out}");

    let events = gate_events(&sandbox);
    assert_eq!(
        events.len(),
        3,
        "gate, next at 50%, next at 100%: {events:#?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["detail"]["verdict"]["outcome"] == "pass")
    );
    let status = sandbox.status();
    assert_eq!(status["gate"]["verdict"]["outcome"], "pass", "{status:#}");
    assert_eq!(status["gate"]["v2_weight"], 100);
    let text = sandbox.canary(&["status", SERVICE]).ok();
    assert!(text.stdout.contains("gate pass at 100%"), "{text}");
    let log = sandbox.canary(&["log", SERVICE]).ok();
    assert!(log.stdout.contains("gate-evaluated"), "{log}");
    assert!(
        log.stdout.contains("success rate v1 99.90% v2 99.90%"),
        "{log}"
    );
}

#[test]
fn v2_failing_3_percent_against_v1s_0_1_is_refused_with_both_side_by_side() {
    let Some((sandbox, _)) = ramped("errors", &[]) else {
        return;
    };
    window_passes();
    let files = sandbox.files();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr
            .contains(&format!("run:   {}", sandbox.hint("abort my-service"))),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("the metric gate failed: v2 fails success rate 97.00%"),
        "{out}"
    );
    let row = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("success rate "))
        .unwrap_or_else(|| panic!("no success rate row:\n{out}"));
    assert!(
        row.contains("99.90%") && row.contains("97.00%") && row.ends_with("FAILED"),
        "{row}"
    );
    assert!(out.stdout.contains("success rate vs v1"), "{out}");
    assert_eq!(sandbox.files(), files, "a refused step writes nothing");
    assert_eq!(production_weight(&sandbox), Some(50));

    let verdict = gate_json(&sandbox, 3);
    assert_eq!(verdict["outcome"], "fail");
    assert_eq!(verdict["incident"], false);
    assert_eq!(check(&verdict, "success rate vs v1")["passed"], false);
    let versus = check(&verdict, "success rate vs v1");
    assert!(
        versus["e_value"].as_f64().unwrap() >= verdict["threshold"].as_f64().unwrap(),
        "{verdict:#}"
    );
    assert_eq!(verdict["threshold"], 80.0);
    let events = gate_events(&sandbox);
    assert_eq!(
        events.last().unwrap()["detail"]["verdict"]["outcome"],
        "fail"
    );
}

#[test]
fn a_v2_slower_than_v1_is_refused_though_under_the_limit() {
    let Some((sandbox, _)) = ramped("slow", &[]) else {
        return;
    };
    window_passes();
    let verdict = gate_json(&sandbox, 3);
    let p99 = check(&verdict, "latency vs v1");
    assert_eq!(p99["passed"], false, "{verdict:#}");
    assert!(
        close(&p99["v1"], 75.0, 3.0) && close(&p99["v2"], 175.0, 5.0),
        "{p99}"
    );
    assert_eq!(check(&verdict, "p99 latency")["passed"], true);
    assert_eq!(check(&verdict, "success rate")["passed"], true);
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 3, "{out}");
    assert_eq!(production_weight(&sandbox), Some(50));
}

#[test]
fn too_little_v2_traffic_waits_and_changes_nothing() {
    let Some((sandbox, _)) = ramped("quiet", &[]) else {
        return;
    };
    window_passes();
    let verdict = gate_json(&sandbox, 4);
    assert_eq!(verdict["outcome"], "not-enough-traffic", "{verdict:#}");
    let files = sandbox.files();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 4, "{out}");
    assert!(out.stdout.contains("not enough traffic yet"), "{out}");
    assert_eq!(sandbox.files(), files);
}

#[test]
fn both_versions_equally_bad_under_a_load_spike_is_an_incident_not_a_pass() {
    let Some((sandbox, _)) = ramped("spike", &[]) else {
        return;
    };
    window_passes();
    let verdict = gate_json(&sandbox, 3);
    assert_eq!(verdict["outcome"], "fail", "{verdict:#}");
    assert_eq!(verdict["incident"], true, "{verdict:#}");
    assert!(
        verdict["reason"]
            .as_str()
            .unwrap()
            .contains("v1 fails as much"),
        "{verdict:#}"
    );
    let rate = check(&verdict, "success rate");
    assert!(
        close(&rate["v1"], 95.0, 0.1) && close(&rate["v2"], 95.0, 0.1),
        "{rate}"
    );
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stderr.contains("an incident, not v2's fault"), "{out}");
    assert_eq!(production_weight(&sandbox), Some(50));
}

#[test]
fn a_release_set_to_abort_on_a_failed_gate_aborts_by_itself() {
    let Some((sandbox, _)) = ramped("auto-abort", &["--gate-auto-abort"]) else {
        return;
    };
    window_passes();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stderr.contains("aborted by itself"), "{out}");
    assert_eq!(
        production_weight(&sandbox),
        Some(0),
        "every route back to v1"
    );
    let aborted = sandbox
        .log()
        .into_iter()
        .find(|e| e["kind"] == "aborted")
        .expect("the abort is journaled");
    assert_eq!(aborted["detail"]["by"], "gate");
    assert!(
        sandbox
            .commit_subjects()
            .iter()
            .any(|s| s.contains("send all traffic back to v1")),
        "{:?}",
        sandbox.commit_subjects()
    );
}

const TEAM_CHECKS: &str = "\
checks:
  - name: answered
    query: sum(increase(istio_requests_total{reporter=\"destination\",destination_service_namespace=\"$namespace\",destination_workload=\"$workload\",destination_version=\"$version\",response_code=\"200\"}[$range]))
    min: 1
";

#[test]
fn the_teams_checks_are_filled_in_per_version_and_judged() {
    let Some(server) = prometheus::server(&SCENARIOS) else {
        return;
    };
    let sandbox = ramped_team("team", &server.url, TEAM_CHECKS);
    window_passes();
    let verdict = gate_json(&sandbox, 0);
    let answered = check(&verdict, "answered");
    // v1 serves 4,000 requests a second, v2 1,000: the placeholders told the versions apart.
    let (v1, v2) = (
        answered["v1"].as_f64().unwrap(),
        answered["v2"].as_f64().unwrap(),
    );
    assert!((v1 / v2 - 4.0).abs() < 0.2, "{answered}");

    let failing = format!(
        "{TEAM_CHECKS}  - name: no 5xx at all\n    query: sum(increase(istio_requests_total{{reporter=\"destination\",destination_service_namespace=\"$namespace\",destination_version=\"$version\",response_code=~\"5..\"}}[$range]))\n    max: 0\n"
    );
    let sandbox = ramped_team("team-fails", &server.url, &failing);
    window_passes();
    let verdict = gate_json(&sandbox, 3);
    let failed: Vec<&str> = verdict["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["no 5xx at all"], "{verdict:#}");
}

/// A release whose repository holds the team's checks file, committed before the start.
pub(crate) fn ramped_team(namespace: &str, url: &str, checks: &str) -> Sandbox {
    ramped_with(
        namespace,
        url,
        &["--gate-checks", "gate-checks.yaml"],
        |sandbox| {
            sandbox.write("gate-checks.yaml", checks);
            sandbox.git(&["add", "gate-checks.yaml"]);
            sandbox.git(&["commit", "-qm", "the team's gate checks"]);
            sandbox.git(&["push", "-q"]);
        },
    )
}

#[test]
fn a_service_without_istio_metrics_is_refused_at_start() {
    let Some(server) = prometheus::server(&SCENARIOS) else {
        return;
    };
    let sandbox = Sandbox::new();
    let mut args = sandbox.start_args();
    let ns = args.iter().position(|a| a == "--namespace").unwrap() + 1;
    args[ns] = "not-in-the-mesh".into();
    args.extend([
        "--prometheus".to_string(),
        format!("production={}", server.url),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sandbox.canary(&args);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("has no istio_requests_total"), "{out}");
    assert!(sandbox.journal_bytes().is_none());
}

#[test]
fn before_the_ramp_the_gate_has_nothing_to_judge() {
    let server = hostile::Server::start(hostile::HEALTHY);
    let sandbox = Sandbox::new();
    let mut args = sandbox.start_args();
    args.extend([
        "--prometheus".to_string(),
        format!("production={}", server.url),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sandbox.canary(&args).ok();
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["gate", SERVICE]);
    assert_eq!(out.code, 4, "{out}");
    assert!(
        out.stdout
            .contains("production routes no traffic to v2 yet"),
        "{out}"
    );
    common::assert_unchanged(&before, &sandbox.snapshot(), "a gate before the ramp");
}

#[test]
fn bad_gate_settings_at_start_are_one_line_and_write_nothing() {
    for (extra, says) in [
        (
            &["--gate-success-rate", "140"][..],
            "--gate-success-rate 140% is not a percentage",
        ),
        (&["--gate-window", "0s"], "--gate-window 0 reads no metrics"),
        (&["--gate-confidence", "100"], "--gate-confidence 100%"),
        (
            &["--gate-p99-factor", "0.5"],
            "--gate-p99-factor 0.5 is below 1",
        ),
        (
            &["--prometheus", "production=ftp://prometheus"],
            "is not an http:// or https:// URL",
        ),
        (
            &["--prometheus", "prod=http://127.0.0.1:9090"],
            "names environment \"prod\"",
        ),
        (
            &[
                "--prometheus",
                "production=cluster:istio-system/prometheus:9090",
            ],
            "production has no kubeconfig context",
        ),
        (
            &["--gate-margin=-1"],
            "--gate-margin -1 is not a number of percentage points from 0 to 100",
        ),
        (
            &["--gate-checks", "missing.yaml"],
            "missing.yaml is not committed",
        ),
    ] {
        let sandbox = Sandbox::new();
        let mut args = sandbox.start_args();
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sandbox.canary(&args);
        assert_eq!(out.code, 2, "{extra:?}: {out}");
        assert!(out.stderr.contains(says), "{extra:?}: {out}");
        assert_eq!(out.stderr.lines().count(), 1, "{extra:?}: {out}");
        assert!(
            sandbox.journal_bytes().is_none(),
            "{extra:?}: a journal was written"
        );
    }
}

#[test]
fn without_yes_a_gate_that_cannot_judge_yet_waits_then_judges() {
    let Some((sandbox, _)) = ramped("healthy", &[]) else {
        return;
    };
    // No terminal and no --yes: the gate waits out the window, passes, and only then does the
    // raise ask its question, which nobody can answer here.
    let started = std::time::Instant::now();
    let out = sandbox.canary(&["next", SERVICE]);
    let waited = started.elapsed();
    assert!(out.stdout.contains("Waiting"), "{out}");
    assert!(out.stdout.contains("Gate pass for v2 at 50%"), "{out}");
    assert_ne!(out.code, 0, "{out}");
    assert!(
        waited >= Duration::from_secs(3),
        "waited only {waited:?}: {out}"
    );
    assert_eq!(production_weight(&sandbox), Some(50), "nothing was written");
    let events = gate_events(&sandbox);
    assert_eq!(events.len(), 1, "{events:#?}");
}

/// `canary ARGS` with KUBECONFIG set.
fn canary_with(sandbox: &Sandbox, kubeconfig: &std::path::Path, args: &[&str]) -> common::Output {
    let mut cmd = sandbox.canary_command(args);
    cmd.env("KUBECONFIG", kubeconfig)
        .stdin(std::process::Stdio::null());
    common::Output::new(args, cmd.output().unwrap())
}

#[test]
fn a_prometheus_in_the_cluster_is_asked_through_the_api_servers_service_proxy() {
    use common::cluster::{FakeApiServer, TOKEN, documented_roles, kubeconfig, roles_in};
    let Some(server) = prometheus::server(&SCENARIOS) else {
        return;
    };
    let api = FakeApiServer::start();
    api.state().proxies.insert(
        "istio-system/prometheus:9090".into(),
        server.url.trim_start_matches("http://").into(),
    );
    // The scenarios' namespace, which `start` now finds in the cluster before it journals.
    api.state().namespaces.insert("errors".into());
    let sandbox = Sandbox::new();
    let config = sandbox.tmp.path().join("kubeconfig");
    std::fs::write(&config, kubeconfig(&[("prod", &api.url)], TOKEN)).unwrap();
    let mut args = sandbox.start_args();
    let ns = args.iter().position(|a| a == "--namespace").unwrap() + 1;
    args[ns] = "errors".into();
    args.extend(
        [
            "--steps",
            "50,100",
            "--context",
            "production=prod",
            "--prometheus",
            "production=cluster:istio-system/prometheus:9090",
            "--gate-window",
            WINDOW,
        ]
        .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    canary_with(&sandbox, &config, &args).ok();
    // Deploys confirmed by hand: the fake holds no objects to verify them against.
    for _ in 0..common::MAX_STEPS {
        let step = sandbox.status()["step"].as_str().unwrap().to_string();
        if step.contains("send 100% of production") {
            break;
        }
        canary_with(
            &sandbox,
            &config,
            &["next", SERVICE, "--yes", "--no-verify"],
        )
        .ok();
    }
    window_passes();
    let out = canary_with(&sandbox, &config, &["gate", SERVICE, "--json"]);
    assert_eq!(out.code, 3, "{out}");
    let verdict = &out.json()["verdict"];
    let rate = check(verdict, "success rate");
    assert!(
        close(&rate["v1"], 99.9, 0.02) && close(&rate["v2"], 97.0, 0.05),
        "{rate}"
    );
    assert!(
        api.requests().iter().any(|r| r.starts_with(
            "GET /api/v1/namespaces/istio-system/services/prometheus:9090/proxy/api/v1/query?query="
        )),
        "{:?}",
        api.requests()
    );

    // With the documented Roles, the gate's own included, the proxy answers; without the
    // gate's, the refusal names what is missing, in one line.
    let mut roles = documented_roles();
    roles.extend(roles_in("docs/gate.md"));
    api.enforce_roles(&roles);
    let out = canary_with(&sandbox, &config, &["gate", SERVICE]);
    assert_eq!(out.code, 3, "{out}");
    api.enforce_roles(&documented_roles());
    let out = canary_with(&sandbox, &config, &["gate", SERVICE]);
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        out.stderr.contains("answered HTTP 403")
            && out
                .stderr
                .contains("cannot get resource \"services/proxy\"")
            && out.stderr.contains(
                "context prod needs `get` on services/proxy named prometheus:9090 in namespace \
                 istio-system: the Role in canary's docs/gate.md grants it"
            ),
        "{out}"
    );
    // A Role that names the Service without its port, as docs/gate.md once did, is refused
    // as the real API server refuses it.
    let mut roles = documented_roles();
    let mut gate_roles = roles_in("docs/gate.md");
    let names = &mut gate_roles[0]["rules"][0]["resourceNames"];
    assert_eq!(*names, serde_json::json!(["prometheus:9090"]));
    *names = serde_json::json!(["prometheus"]);
    roles.extend(gate_roles);
    api.enforce_roles(&roles);
    let out = canary_with(&sandbox, &config, &["gate", SERVICE]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("answered HTTP 403"), "{out}");
}

#[test]
fn canary_context_sets_and_removes_an_environments_prometheus() {
    let server = hostile::Server::start(hostile::HEALTHY);
    let sandbox = Sandbox::new();
    sandbox.start();
    let out = sandbox
        .canary(&[
            "context",
            SERVICE,
            "production",
            "--prometheus",
            &server.url,
        ])
        .ok();
    assert!(
        out.stdout
            .contains(&format!("the metric gate reads Prometheus {}", server.url)),
        "{out}"
    );
    let set = sandbox
        .log()
        .into_iter()
        .rfind(|e| e["kind"] == "context-set")
        .unwrap();
    assert_eq!(set["detail"]["prometheus_to"], server.url.as_str());

    let before = sandbox.snapshot();
    for (args, says) in [
        (
            &["--prometheus", "127.0.0.1:9090"][..],
            "is not an http:// or https:// URL",
        ),
        (
            &["--prometheus", "cluster:istio-system/prometheus:9090"],
            "production has no kubeconfig context",
        ),
    ] {
        let mut full = vec!["context", SERVICE, "production"];
        full.extend_from_slice(args);
        let out = sandbox.canary(&full);
        assert_eq!(out.code, 2, "{out}");
        assert!(out.stderr.contains(says), "{out}");
    }
    common::assert_unchanged(&before, &sandbox.snapshot(), "a bad Prometheus");

    sandbox
        .canary(&["context", SERVICE, "production", "--no-prometheus"])
        .ok();
    let status = sandbox.canary(&["gate", SERVICE]);
    assert_eq!(status.code, 2, "{status}");
    assert!(
        status
            .stderr
            .contains("production has no Prometheus for the gate"),
        "{status}"
    );
}

#[test]
fn an_error_answer_from_prometheus_is_one_line_and_changes_nothing() {
    let Some(server) = prometheus::server(&SCENARIOS) else {
        return;
    };
    // PromQL that Prometheus refuses to parse, in the team's checks: its error answer.
    let broken =
        "checks:\n  - name: broken\n    query: sum(rate(x{a=\"$version\"}[$range])\n    max: 1\n";
    let sandbox = ramped_team("team", &server.url, broken);
    window_passes();
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(out.stderr.contains("answered HTTP 400: "), "{out}");
    assert!(out.stderr.contains("parse error"), "{out}");
    common::assert_unchanged(&before, &sandbox.snapshot(), "an error answer");
}

/// `canary start` in `namespace` with production's gate reading `server`, and the ramp
/// 50%, 100%; then `canary run` of the whole release, deploys on --yes's word, no bake; with
/// `staging_gate`, staging reads `server` too and its gate is the staging test.
fn run_whole(namespace: &str, server: &Server, staging_gate: bool) -> (Sandbox, common::Output) {
    let staging = format!("staging={}", server.url);
    let (start, run): (&[&str], &[&str]) = match staging_gate {
        true => (&["--prometheus", &staging], &["--staging-gate"]),
        false => (&[], &[]),
    };
    let sandbox = started_with(namespace, &server.url, start, |_| {});
    let out = sandbox.canary(&common::unattended_run(run));
    (sandbox, out)
}

/// A whole release in one `canary run` against a real Prometheus: the gate waits for its
/// window at the raise to 100%, passes a healthy v2, and the run ends done.
#[test]
fn a_run_of_a_healthy_v2_passes_the_gate_and_ends_done() {
    let Some(server) = prometheus::server(&SCENARIOS) else {
        return;
    };
    let (sandbox, out) = run_whole("healthy", server, false);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(sandbox.phase(), "done");
    let verdicts: Vec<Value> = sandbox
        .details("gate-evaluated")
        .into_iter()
        .map(|d| d["verdict"]["outcome"].clone())
        .collect();
    assert_eq!(verdicts.last(), Some(&Value::from("pass")), "{verdicts:?}");
    assert!(sandbox.details("aborted").is_empty());
}

/// A v2 that answers 3% of its requests 5xx, against a real Prometheus: the run's gate fails
/// it at the raise to 100%, the release aborts by itself and the abort is deployed (exit 3).
#[test]
fn a_run_of_a_bad_v2_aborts_by_itself() {
    let Some(server) = prometheus::server(&SCENARIOS) else {
        return;
    };
    let (sandbox, out) = run_whole("errors", server, false);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr.contains("the release aborted by itself"),
        "{out}"
    );
    let aborted = sandbox.details("aborted");
    assert_eq!(aborted.len(), 1);
    assert_eq!(aborted[0]["by"], "gate");
    assert_eq!(
        sandbox.weights(),
        [("staging".into(), Some(0)), ("production".into(), Some(0))]
    );
}

/// The staging test as the gate on staging's real Prometheus: v2 alone, shown within the
/// limits, answers "was v2 tested?", and the run goes on to done.
#[test]
fn a_run_s_staging_gate_passes_a_healthy_v2_on_staging_s_metrics() {
    let Some(server) = prometheus::server(&SCENARIOS) else {
        return;
    };
    let (sandbox, out) = run_whole("healthy", server, true);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(sandbox.phase(), "done");
    assert!(out.stderr.contains("yes (--staging-gate passed)"), "{out}");
    let events = sandbox.details("gate-evaluated");
    let staging: Vec<&Value> = events.iter().filter(|e| e["env"] == "staging").collect();
    assert_eq!(
        staging.last().unwrap()["verdict"]["outcome"],
        "pass",
        "{staging:?}"
    );
    // v2 alone: no check against v1, and no v1 figures.
    let checks = staging.last().unwrap()["verdict"]["checks"]
        .as_array()
        .unwrap();
    assert!(
        checks
            .iter()
            .all(|c| c["v1"].is_null() && !c["name"].as_str().unwrap().ends_with("vs v1")),
        "{checks:?}"
    );
    // Staging's evaluations come before production's, which judge v2 against v1 as before.
    let first_production = events.iter().position(|e| e["env"] == "production");
    let last_staging = events.iter().rposition(|e| e["env"] == "staging");
    assert!(last_staging < first_production, "{events:?}");
    let tested = sandbox.steps_done("v2 tested");
    assert_eq!(tested.len(), 1, "{tested:?}");
    assert_eq!(tested[0]["answered"], "--staging-gate");
}

/// A v2 that answers 3% of its requests 5xx fails the staging gate: the run stops (exit 3)
/// with v2 untested, production untouched and nothing aborted; `canary gate --staging` says
/// the same on demand.
#[test]
fn a_run_s_staging_gate_stops_a_bad_v2_before_production_serves_it() {
    let Some(server) = prometheus::server(&SCENARIOS) else {
        return;
    };
    let (sandbox, out) = run_whole("errors", server, true);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr
            .contains("the metric gate on staging failed: v2 fails success rate"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("v2 does not count as tested on staging"),
        "{out}"
    );
    assert_eq!(sandbox.phase(), "deploy-v2");
    assert!(sandbox.details("aborted").is_empty());
    assert_eq!(
        sandbox.weights(),
        [
            ("staging".into(), Some(100)),
            ("production".into(), Some(0))
        ]
    );
    assert!(sandbox.steps_done("v2 tested").is_empty());
    let out = sandbox.canary(&["gate", SERVICE, "--staging", "--json"]);
    assert_eq!(out.code, 3, "{out}");
    let shown: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(shown["env"], "staging");
    assert_eq!(shown["verdict"]["outcome"], "fail");
}

/// `--staging-gate` where it has nothing to judge with is refused before the run's first
/// step, in one line, nothing changed: staging without a Prometheus, and `--staging-test`
/// besides it.
#[test]
fn the_staging_gate_without_staging_s_prometheus_is_refused_at_once() {
    let Some(server) = prometheus::server(&SCENARIOS) else {
        return;
    };
    let sandbox = started_with("healthy", &server.url, &[], |_| {});
    let before = sandbox.snapshot();
    let out = sandbox.canary(&common::unattended_run(&["--staging-gate"]));
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("--staging-gate: staging has no Prometheus to judge v2 on; set one with")
            && out
                .stderr
                .contains("context my-service staging --prometheus URL`"),
        "{out}"
    );
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    let out = sandbox.canary(&common::unattended_run(&[
        "--staging-gate",
        "--staging-test",
        "true",
    ]));
    assert_eq!(out.code, 2, "{out}");
    let out = sandbox.canary(&["gate", SERVICE, "--staging"]);
    assert_eq!(out.code, 2, "{out}");
    common::assert_unchanged(&before, &sandbox.snapshot(), "a refused staging gate");

    // One environment: nowhere that serves v2 alone before production does.
    let alone = {
        let sandbox = Sandbox::new();
        let mut args = sandbox.start_args();
        let at = args.iter().position(|a| a == common::STAGING_HOST).unwrap();
        args.drain(at - 1..=at);
        let ns = args.iter().position(|a| a == "--namespace").unwrap() + 1;
        args[ns] = "healthy".into();
        args.extend(
            ["--env", "production", "--prometheus"]
                .map(String::from)
                .into_iter()
                .chain([format!("production={}", server.url)]),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sandbox.canary(&args).ok();
        sandbox
    };
    let before = alone.snapshot();
    let out = alone.canary(&[
        "run",
        SERVICE,
        "--yes",
        "--trust-deploys",
        "production",
        "--staging-gate",
    ]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains(
            "--staging-gate: my-service's release has no staging that serves v2 alone before \
             production (it has 1 environment)"
        ),
        "{out}"
    );
    common::assert_unchanged(&before, &alone.snapshot(), "a staging gate with no staging");
}
