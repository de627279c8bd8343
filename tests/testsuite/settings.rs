//! A release's settings: `status` shows each environment's, `canary context` and `canary
//! settings` mend those that no written file depends on yet and refuse the others with the
//! file and the step, and `canary log` says what each change changed, before and after.

use crate::common::cluster::{FakeApiServer, TOKEN, kubeconfig};
use crate::common::hostile;
use crate::common::{SERVICE, Sandbox, assert_unchanged};
use serde_json::{Value, json};

const STAGING_VS: &str = "gap/staging/gap_patch_canary_virtual_service.yaml";

/// A cluster that every kubeconfig context these tests name reaches, as `~/.kube/config`:
/// `start` and `context` look a context up and ask its cluster for the namespace. With a
/// Prometheus that answers, at its URL and as `cluster:istio-system/prometheus:9090`.
fn with_cluster(sandbox: &Sandbox) -> (FakeApiServer, hostile::Server) {
    let server = FakeApiServer::start();
    let contexts = ["kind-staging", "prod-eu-1", "kind"].map(|c| (c, server.url.as_str()));
    let dir = sandbox.home.join(".kube");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config"), kubeconfig(&contexts, TOKEN)).unwrap();
    let prometheus = hostile::Server::start(hostile::HEALTHY);
    server.state().proxies.insert(
        "istio-system/prometheus:9090".into(),
        prometheus.url.trim_start_matches("http://").into(),
    );
    (server, prometheus)
}

/// `canary log my-service`, as people read it.
fn log_text(sandbox: &Sandbox) -> String {
    sandbox.canary(&["log", SERVICE]).ok().stdout
}

/// Run a command that must be refused by the workflow (exit 3) and change nothing.
#[track_caller]
fn refused(sandbox: &Sandbox, args: &[&str], names: &[&str]) {
    let before = sandbox.snapshot();
    let out = sandbox.canary(args);
    assert_eq!(out.code, 3, "{out}");
    for name in names {
        assert!(out.stderr.contains(name), "{name:?} not said:\n{out}");
    }
    assert_unchanged(&before, &sandbox.snapshot(), &out.args);
}

#[test]
fn status_shows_each_environments_hosts_context_argocd_and_prometheus() {
    let sandbox = Sandbox::new();
    let _cluster = with_cluster(&sandbox);
    let mut args = sandbox.start_args();
    args.extend(
        [
            "--context",
            "production=prod-eu-1",
            "--argocd",
            "production=argocd/my-service-production",
            "--prometheus",
            "production=cluster:istio-system/prometheus:9090",
        ]
        .map(String::from),
    );
    sandbox
        .canary(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    let status = sandbox.status();
    assert_eq!(
        status["environments"],
        json!([
            {"name": "staging", "hosts": ["my-service-staging.gservice.emarsys.com"],
             "context": null, "argocd_application": null, "prometheus": null,
             "v2_weight": null},
            {"name": "production", "hosts": ["my-service.gservice.emarsys.net"],
             "context": "prod-eu-1", "argocd_application": "argocd/my-service-production",
             "prometheus": "cluster:istio-system/prometheus:9090", "v2_weight": null},
        ])
    );
    let text = sandbox.canary(&["status", SERVICE]).ok().stdout;
    for line in [
        "hosts my-service-staging.gservice.emarsys.com",
        "no context: deploys confirmed by the operator",
        "hosts my-service.gservice.emarsys.net",
        "context prod-eu-1, Argo CD argocd/my-service-production, Prometheus \
         cluster:istio-system/prometheus:9090",
    ] {
        assert!(text.contains(line), "{line:?} not shown:\n{text}");
    }
}

#[test]
fn log_says_what_each_context_change_changed_before_and_after() {
    let sandbox = Sandbox::new();
    let (_cluster, prometheus) = with_cluster(&sandbox);
    sandbox.start();
    for args in [
        &["context", SERVICE, "staging", "kind-staging"][..],
        &["context", SERVICE, "production", "prod-eu-1"],
        &[
            "context",
            SERVICE,
            "production",
            "--argocd",
            "argocd/my-service",
            "--prometheus",
            &prometheus.url,
        ],
        &["context", SERVICE, "production", "--no-prometheus"],
        &["context", SERVICE, "staging", "--unset"],
    ] {
        sandbox.canary(args).ok();
    }
    let log = log_text(&sandbox);
    let url = &prometheus.url;
    for change in [
        "context-set       staging  context none -> kind-staging".to_string(),
        "context-set       production  context none -> prod-eu-1".into(),
        format!(
            "context-set       production  Argo CD none -> argocd/my-service; Prometheus none -> \
             {url}"
        ),
        format!("context-set       production  Prometheus {url} -> none"),
        "context-set       staging  context kind-staging -> none".into(),
    ] {
        assert!(log.contains(&change), "{change:?} not in the log:\n{log}");
    }
    let status = sandbox.canary(&["status", SERVICE]).ok().stdout;
    assert!(
        status.contains("context prod-eu-1, Argo CD argocd/my-service\n"),
        "{status}"
    );
}

#[test]
fn hosts_change_until_add_routing_writes_them() {
    let sandbox = Sandbox::new();
    let _cluster = with_cluster(&sandbox);
    sandbox.start();
    sandbox
        .canary(&[
            "context",
            SERVICE,
            "staging",
            "--host",
            "my-service-staging.example.com",
        ])
        .ok();
    assert_eq!(
        sandbox.status()["environments"][0]["hosts"],
        json!(["my-service-staging.example.com"])
    );
    assert!(
        log_text(&sandbox).contains(
            "staging  hosts my-service-staging.gservice.emarsys.com -> \
             my-service-staging.example.com"
        ),
        "{}",
        log_text(&sandbox)
    );
    // Another environment's host, or one that is no host, is bad input.
    for (host, names) in [
        (
            "my-service.gservice.emarsys.net",
            "host my-service.gservice.emarsys.net is given to both staging and production",
        ),
        ("a b", "host \"a b\" is not a DNS name"),
    ] {
        let before = sandbox.snapshot();
        let out = sandbox.canary(&["context", SERVICE, "staging", "--host", host]);
        assert_eq!(out.code, 2, "{out}");
        assert!(out.stderr.contains(names), "{out}");
        assert_unchanged(&before, &sandbox.snapshot(), host);
    }

    sandbox.walk_to("route-to-v1");
    let patch = std::fs::read_to_string(sandbox.repo.join(STAGING_VS)).unwrap();
    assert!(
        patch.contains("- my-service-staging.example.com\n"),
        "{patch}"
    );
    refused(
        &sandbox,
        &["context", SERVICE, "staging", "--host", "x.example.com"],
        &[
            "staging's hosts are listed in gap/staging/gap_patch_canary_virtual_service.yaml, \
             which \"add-routing: add the VirtualService patches and the Service patch\" wrote",
            &sandbox.hint("cancel my-service"),
        ],
    );
    // What no file depends on still changes.
    sandbox
        .canary(&["context", SERVICE, "staging", "kind-staging"])
        .ok();
}

#[test]
fn a_context_of_another_environment_is_refused_unless_shared() {
    let sandbox = Sandbox::new();
    let _cluster = with_cluster(&sandbox);
    sandbox.start();
    sandbox
        .canary(&["context", SERVICE, "staging", "kind"])
        .ok();
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["context", SERVICE, "production", "kind"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("kubeconfig context kind is given to both staging and production")
            && out.stderr.contains("--shared-context"),
        "{out}"
    );
    assert_unchanged(&before, &sandbox.snapshot(), "a shared context");
    sandbox
        .canary(&["context", SERVICE, "production", "kind", "--shared-context"])
        .ok();
    let envs = sandbox.status()["environments"].clone();
    assert_eq!(
        (&envs[0]["context"], &envs[1]["context"]),
        (&json!("kind"), &json!("kind"))
    );
}

#[test]
fn the_namespace_changes_until_a_file_names_it_and_the_gate_limits_at_any_time() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox
        .canary(&["settings", SERVICE, "--namespace", "other-data"])
        .ok();
    assert!(
        log_text(&sandbox).contains("settings-changed  namespace relational-data -> other-data"),
        "{}",
        log_text(&sandbox)
    );
    sandbox.walk_to("route-to-v1");
    let patch = std::fs::read_to_string(sandbox.repo.join(STAGING_VS)).unwrap();
    assert!(
        patch.contains("host: my-service-web.other-data.svc.cluster.local"),
        "{patch}"
    );
    refused(
        &sandbox,
        &["settings", SERVICE, "--namespace", "third-data"],
        &[
            "the namespace is named (the Service's in-cluster host) in \
             gap/gap_canary_destination_rule.yaml",
            "\"add-routing: add the DestinationRule subsets and web-v1's AuthorizationPolicy\"",
        ],
    );
    sandbox
        .canary(&[
            "settings",
            SERVICE,
            "--gate-min-requests",
            "50",
            "--gate-auto-abort",
        ])
        .ok();
    let changed: Vec<Value> = sandbox
        .log()
        .into_iter()
        .filter(|e| e["kind"] == "settings-changed")
        .map(|e| e["detail"].clone())
        .collect();
    assert_eq!(
        changed[1],
        json!({"gate": {"min_requests": {"from": 100, "to": 50},
                        "auto_abort": {"from": false, "to": true}}})
    );
    let log = log_text(&sandbox);
    assert!(
        log.contains("gate auto_abort false -> true; gate min_requests 100 -> 50"),
        "{log}"
    );
    // Limits the gate would refuse are bad input, and change nothing.
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["settings", SERVICE, "--gate-min-requests", "0"]);
    assert_eq!(out.code, 2, "{out}");
    assert_unchanged(&before, &sandbox.snapshot(), "a bad gate limit");
}
