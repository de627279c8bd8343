//! The cluster with the real binary: `canary verify`, deploy steps checked against the
//! cluster, `canary weight --live` and the errors of a cluster that cannot be read, against
//! fake API servers (one per environment) that the tests start and reach through kubeconfig
//! files they write, as KUBECONFIG with two files.
#![cfg(feature = "cluster")]

use crate::common;

use std::time::{Duration, Instant};

use crate::common::cluster::{
    PRODUCTION_CONTEXT, STAGING_CONTEXT, TwoClusters, documented_roles, kubeconfig, synced_objects,
};
use crate::common::{NAMESPACE, Output, SERVICE, Sandbox, V1_IMAGE, assert_unchanged};
use serde_json::{Value, json};

const STAGING: &str = STAGING_CONTEXT;
const PRODUCTION: &str = PRODUCTION_CONTEXT;
const OTHER_DIGEST: &str =
    "sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn pinned_digest() -> &'static str {
    V1_IMAGE.split_once('@').unwrap().1
}

fn deployment_path(name: &str) -> String {
    format!("/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{name}")
}

fn virtual_service_path() -> String {
    format!(
        "/apis/networking.istio.io/v1beta1/namespaces/{NAMESPACE}/virtualservices/{SERVICE}--web"
    )
}

fn context_of(env: &str) -> &'static str {
    if env == "staging" {
        STAGING
    } else {
        PRODUCTION
    }
}

fn pod_path() -> String {
    format!("/api/v1/namespaces/{NAMESPACE}/pods/{SERVICE}-web-v1-5d8f7-abcde")
}

/// A release whose two environments each have a cluster.
struct Release(TwoClusters);

impl std::ops::Deref for Release {
    type Target = TwoClusters;

    fn deref(&self) -> &TwoClusters {
        &self.0
    }
}

impl Release {
    /// Started with a context for each environment, unless `contexts` is false.
    fn start(contexts: bool) -> Release {
        Release(TwoClusters::start(contexts, Sandbox::start_args))
    }

    /// Started in coexistence, with the demo's switch and a context for each environment.
    fn start_coexistence() -> Release {
        Release(TwoClusters::start(true, |sandbox| {
            sandbox.coexistence_args(common::COEXISTENCE_SWITCH)
        }))
    }

    /// What a GitOps sync of the repository as it stands makes of the environment's cluster.
    fn sync(&self, env: &str) {
        self.sync_with(env, pinned_digest());
    }

    fn sync_with(&self, env: &str, v1_digest: &str) {
        self.server(env).set_objects(&synced_objects(
            &self.sandbox.repo,
            env,
            NAMESPACE,
            SERVICE,
            v1_digest,
        ));
    }

    fn next(&self) -> Output {
        self.canary(&["next", SERVICE, "--yes", "--timeout", "5s"])
    }

    /// Sync both clusters and take steps until the release is in `phase`.
    fn walk_to(&self, phase: &str) {
        for _ in 0..common::MAX_STEPS {
            if self.sandbox.phase() == phase {
                return;
            }
            self.sync("staging");
            self.sync("production");
            self.next().ok();
        }
        panic!("never reached {phase}");
    }

    /// The next step, in words, as `status` says it.
    fn step(&self) -> String {
        self.sandbox.status()["step"].as_str().unwrap().to_string()
    }
}

#[test]
fn a_whole_release_walks_with_every_deploy_checked_on_the_cluster() {
    let release = Release::start(true);
    release.walk_to("done");
    // Every deploy, v2's code included: `--yes` answers questions, it does not skip a check.
    let deploys = release.events("deploy-confirmed");
    assert_eq!(deploys.len(), 23, "{deploys:#?}");
    assert_eq!(
        deploys.iter().filter(|e| e["what"] == "v2 code").count(),
        2,
        "{deploys:#?}"
    );
    for deploy in &deploys {
        assert_eq!(deploy["verified"], true, "{deploy}");
        assert!(deploy.get("answered").is_none(), "{deploy}");
        let context = if deploy["env"] == "staging" {
            STAGING
        } else {
            PRODUCTION
        };
        assert_eq!(deploy["context"], context, "{deploy}");
    }
    let checked = release.events("step-done");
    assert!(
        checked.iter().any(|e| e["step"] == "v1 image checked"
            && e["verified"] == json!(["staging", "production"])),
        "{checked:#?}"
    );
    for server in [&release.staging, &release.production] {
        assert!(
            server.requests().iter().all(|r| r.starts_with("GET ")),
            "a deploy check only reads"
        );
    }
}

#[test]
fn verify_says_when_the_cluster_matches_and_reports_each_drift_with_its_line() {
    let release = Release::start(true);
    release.walk_to("ramp");
    release.sync("staging");
    release.sync("production");
    let out = release.canary(&["verify", SERVICE]).ok();
    assert!(
        out.stdout
            .contains("Verified staging (context kind-staging, namespace relational-data) matches"),
        "{out}"
    );

    release.production.edit(&virtual_service_path(), |vs| {
        vs["spec"]["http"][0]["route"][0]["weight"] = json!(70);
        vs["spec"]["http"][0]["route"][1]["weight"] = json!(30);
    });
    release.production.edit(&pod_path(), |pod| {
        pod["status"]["containerStatuses"][0]["imageID"] = json!(format!(
            "docker-pullable://registry.example/my-service@{OTHER_DIGEST}"
        ));
    });
    let out = release.canary(&["verify", SERVICE]);
    assert_eq!(out.code, 1, "{out}");
    println!("{out}");
    assert!(
        out.stdout.contains(
            "error[live-weights-differ] production: \
             gap/production/gap_patch_canary_virtual_service.yaml:20: VirtualService \
             my-service--web routes v1 70%, v2 30% live, the file v1 100%, v2 0%"
        ),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("error[v1-image-mismatch] production: gap/gap.yaml:20: pod"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("the cluster differs from the repository (2 errors)"),
        "{out}"
    );

    let out = release.canary(&["verify", SERVICE, "--env", "production", "--json"]);
    assert_eq!(out.code, 1, "{out}");
    let findings = out.json();
    let codes: Vec<&str> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["v1-image-mismatch", "live-weights-differ"]);
    let drift = &findings[1];
    assert_eq!(drift["severity"], "error");
    assert_eq!(drift["env"], "production");
    assert_eq!(
        drift["file"],
        "gap/production/gap_patch_canary_virtual_service.yaml"
    );
    assert_eq!(drift["line"], 20);
}

/// In coexistence every deploy is checked as in succession, but web-v1 must run web's image
/// (there is no pinned one) and each Deployment the switch value its gap.yaml entry sets.
#[test]
fn a_coexistence_release_is_checked_for_one_image_and_the_switch_values() {
    let release = Release::start_coexistence();
    release.walk_to("ramp");
    release.sync("production");
    release
        .canary(&["verify", SERVICE, "--env", "production"])
        .ok();
    let web_v1 = deployment_path("my-service-web-v1");
    let container = "/spec/template/spec/containers/0";

    release.production.edit(&web_v1, |d| {
        d.pointer_mut(&format!("{container}/image"))
            .unwrap()
            .clone_from(&json!(format!(
                "sap-ems-base-infra-package-p/gap-images/my-service@{OTHER_DIGEST}"
            )));
    });
    release
        .production
        .edit(&deployment_path("my-service-web"), |d| {
            d.pointer_mut(&format!("{container}/env/0/value"))
                .unwrap()
                .clone_from(&json!("v1"));
        });
    let out = release.canary(&["verify", SERVICE, "--env", "production", "--json"]);
    assert_eq!(out.code, 1, "{out}");
    let findings = out.json();
    let messages: Vec<String> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {}",
                f["code"],
                f["line"],
                f["message"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(
        messages[0].starts_with("\"twin-image-differs\" 15 Deployment my-service-web-v1's container web runs ")
            && messages[0].contains(OTHER_DIGEST)
            && messages[0].contains("but my-service-web's runs sap-ems-base-infra-package-p/gap-images/my-service@sha256:2222"),
        "{messages:#?}"
    );
    assert_eq!(
        messages[1],
        "\"switch-mismatch\" 4 Deployment my-service-web runs with the switch \
         env:IMPLEMENTATION=v1,v2 at \"v1\", but gap.yaml sets \"v2\""
    );

    // Synced again, the cluster is the files once more, and the release ends.
    release.walk_to("done");
}

#[test]
fn a_deploy_step_waits_until_the_cluster_shows_it() {
    let release = Release::start(true);
    release.next().ok(); // deploy-v1's edit: web-v1 in gap.yaml
    release.sync("staging");
    release
        .staging
        .edit(&deployment_path("my-service-web-v1"), |d| {
            d["status"]["readyReplicas"] = json!(0);
        });
    let started = Instant::now();
    let child = release
        .command(&["next", SERVICE, "--yes", "--timeout", "60s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    release.sync("staging"); // the pod is ready now
    let out = Output::new(&["next"], child.wait_with_output().unwrap()).ok();
    assert!(started.elapsed() >= Duration::from_millis(2500));
    assert!(
        out.stdout
            .contains("Waiting for staging (context kind-staging) to match its files; up to 1m"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("error[deployment-not-ready] staging: gap/gap.yaml:12: Deployment my-service-web-v1 has 0 of 1 replicas ready"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("Verified staging (context kind-staging) shows the deploy"),
        "{out}"
    );
    assert_eq!(release.events("deploy-confirmed")[0]["verified"], true);
}

#[test]
fn a_deploy_that_never_shows_times_out_and_records_nothing() {
    let release = Release::start(true);
    release.next().ok();
    release.sync("staging");
    release.staging.edit(&pod_path(), |pod| {
        pod["status"]["containerStatuses"][0]["imageID"] =
            json!(format!("docker-pullable://r/my-service@{OTHER_DIGEST}"));
    });
    let before = release.sandbox.snapshot();
    let out = release.canary(&["next", SERVICE, "--yes", "--timeout", "1s"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(
            "staging (context kind-staging) did not show the deploy within 1s: pod \
             my-service-web-v1-5d8f7-abcde runs web sha256:1111"
        ),
        "{out}"
    );
    assert!(out.stderr.contains("--no-verify"), "{out}");
    assert_unchanged(
        &before,
        &release.sandbox.snapshot(),
        "a deploy that timed out",
    );
}

/// The cluster as it is before v2's code lands: web's Deployment and pod run v1's build, the
/// image web-v1 is pinned to.
fn web_runs_v1(server: &common::cluster::FakeApiServer) {
    server.edit(&deployment_path(&format!("{SERVICE}-web")), |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!(V1_IMAGE);
    });
    server.edit(
        &format!("/api/v1/namespaces/{NAMESPACE}/pods/{SERVICE}-web-7c9d4-fghij"),
        |p| {
            p["spec"]["containers"][0]["image"] = json!(V1_IMAGE);
            p["status"]["containerStatuses"][0]["image"] = json!(V1_IMAGE);
            p["status"]["containerStatuses"][0]["imageID"] =
                json!(format!("docker-pullable://{V1_IMAGE}"));
        },
    );
}

#[test]
fn v2s_code_deploy_waits_under_yes_until_web_runs_another_image_than_v1s() {
    let release = Release::start(true);
    release.walk_to("deploy-v2");
    for env in ["staging", "production"] {
        release.sync(env);
        web_runs_v1(release.server(env));
        let before = release.sandbox.snapshot();
        let out = release.canary(&["next", SERVICE, "--yes", "--timeout", "2s"]);
        assert_eq!(out.code, 1, "{out}");
        assert!(
            out.stderr.contains(&format!(
                "{env} (context {}) did not show the deploy within 2s",
                context_of(env)
            )) && out.stderr.contains(&format!(
                "Deployment {SERVICE}-web's container web still runs v1's image {V1_IMAGE}"
            )) && out.stderr.contains(&format!(
                "pod {SERVICE}-web-7c9d4-fghij of {SERVICE}-web still runs v1's image"
            )),
            "{out}"
        );
        assert!(!out.stdout.contains("Is v2 deployed"), "not asked: {out}");
        assert_unchanged(&before, &release.sandbox.snapshot(), "v2 not yet deployed");
        // web's pods were read by its Deployment's selector.
        let requests = release.server(env).requests();
        assert!(
            requests
                .iter()
                .any(|r| r.contains("/pods?") && r.contains(&format!("app%3D{SERVICE}-web&"))),
            "{requests:#?}"
        );
        // The v2 code lands: web runs another build.
        release.sync(env);
        let out = release.next().ok();
        assert!(
            out.stdout
                .contains(&format!("Verified {env} (context {})", context_of(env))),
            "{out}"
        );
        let confirmed = release.events("deploy-confirmed");
        let last = confirmed.last().unwrap();
        assert_eq!(
            (&last["env"], &last["what"], &last["verified"]),
            (&json!(env), &json!("v2 code"), &json!(true)),
            "{last}"
        );
    }
}

#[test]
fn no_verify_takes_the_operators_word_and_the_journal_says_so() {
    let release = Release::start(true);
    // `start` checked the namespace; nothing since reads the cluster.
    let checked = release.staging.requests();
    release.next().ok();
    release
        .canary(&["next", SERVICE, "--yes", "--no-verify"])
        .ok();
    let deploy = &release.events("deploy-confirmed")[0];
    assert_eq!(deploy["verified"], false);
    assert_eq!(
        deploy["note"],
        "confirmed without verification (--no-verify)"
    );
    assert_eq!(release.staging.requests(), checked);
}

#[test]
fn cleanup_on_production_lists_what_must_be_pruned_and_waits_for_it_to_go() {
    let release = Release::start(true);
    release.walk_to("cleanup-1");
    release.next().ok(); // cleanup-1's edit
    release.sync("staging");
    release.next().ok(); // staging prunes by itself
    let out = release.canary(&["next", SERVICE, "--yes", "--timeout", "1s"]);
    assert_eq!(out.code, 1, "{out}");
    for expected in [
        "Prune option",
        "error[not-pruned] production: Deployment my-service-web-v1 is still in the cluster, but \
         gap.yaml no longer has web-v1: prune it (Argo CD's Prune) or `kubectl delete deployment \
         my-service-web-v1`",
        "error[not-pruned] production: AuthorizationPolicy my-service-web-v1 of web-v1 is still \
         in the cluster",
        "error[service-selector-differs] production: Service my-service-web still selects",
        "error[live-weights-differ] production: gap/production/gap_patch_canary_virtual_service.yaml:",
    ] {
        assert!(out.stdout.contains(expected), "{expected}\n{out}");
    }
    release.sync("production");
    release.next().ok();
    assert!(
        release.step().starts_with("cleanup-2"),
        "{}",
        release.step()
    );
}

#[test]
fn route_to_v1_first_checks_that_v1_runs_the_pinned_image() {
    let release = Release::start(true);
    release.walk_to("route-to-v1");
    release.sync("staging");
    release.sync_with("production", OTHER_DIGEST);
    let before = release.sandbox.snapshot();
    let out = release.next();
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains("error[v1-image-mismatch] production: gap/gap.yaml:20: pod my-service-web-v1-5d8f7-abcde runs web sha256:1111"),
        "{out}"
    );
    assert!(out.stderr.contains("web-v1 does not run"), "{out}");
    assert_unchanged(&before, &release.sandbox.snapshot(), "a wrong v1 image");

    release.sync("production");
    let out = release.next().ok();
    assert!(out.stdout.contains("Verified web-v1 runs"), "{out}");
    assert!(
        release.step().starts_with("route-to-v1: route 100%"),
        "{}",
        release.step()
    );
}

#[test]
fn a_live_weight_patches_the_virtual_service_and_says_the_file_wins_at_the_next_sync() {
    let release = Release::start(true);
    release.walk_to("ramp");
    release.sync("production");
    let out = release
        .canary(&["weight", SERVICE, "production", "30", "--live", "--yes"])
        .ok();
    assert!(out.stdout.contains("Patched the live VirtualService my-service--web in production: was v1 100%, v2 0%, now v1 70%, v2 30%"), "{out}");
    assert!(out.stdout.contains("self-heal"), "{out}");
    let vs = release.production.object(&virtual_service_path()).unwrap();
    assert_eq!(vs["spec"]["http"][0]["route"][0]["weight"], 70);
    assert_eq!(vs["spec"]["http"][0]["route"][1]["weight"], 30);
    let patch = release
        .production
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PATCH "))
        .count();
    assert_eq!(patch, 1);
    let live = release.events("live-weight-changed");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0]["v2_weight"], 30);
    assert_eq!(live[0]["context"], PRODUCTION);

    let status = release
        .canary(&["status", SERVICE, "--live", "--json"])
        .ok()
        .json();
    assert_eq!(status["environments"][1]["v2_weight"], 0);
    assert_eq!(status["environments"][1]["live_v2_weight"], 30);
    let text = release.canary(&["status", SERVICE, "--live"]).ok();
    assert!(
        text.stdout.contains("live: v2 30%, not the file's"),
        "{text}"
    );
    let out = release.canary(&["verify", SERVICE, "--env", "production"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.contains("error[live-weights-differ]"), "{out}");

    // Back to the weight the file holds: nothing left for a sync to put back.
    let out = release
        .canary(&["weight", SERVICE, "production", "0", "--live", "--yes"])
        .ok();
    assert!(!out.stdout.contains("still says"), "{out}");
    assert!(
        out.stdout.contains(
            "the live weights are gap/production/gap_patch_canary_virtual_service.yaml's again \
             (v1 100%, v2 0%)"
        ),
        "{out}"
    );
    release
        .canary(&["verify", SERVICE, "--env", "production"])
        .ok();
}

#[test]
fn a_concurrent_change_fails_the_live_patch_whole() {
    let release = Release::start(true);
    release.walk_to("ramp");
    release.sync("production");
    release.production.state().race_on_patch = true;
    let before = release.sandbox.snapshot();
    let out = release.canary(&["weight", SERVICE, "production", "30", "--live", "--yes"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(
            "error: production (context kind-production): changed concurrently: VirtualService \
             my-service--web changed since canary read it"
        ),
        "{out}"
    );
    assert_unchanged(&before, &release.sandbox.snapshot(), "a failed live patch");
    let vs = release.production.object(&virtual_service_path()).unwrap();
    assert_eq!(
        vs["spec"]["http"][0]["route"][0]["weight"], 42,
        "the other change stays"
    );
    assert_eq!(vs["spec"]["http"][0]["route"][1]["weight"], 0);
}

#[test]
fn live_weights_follow_the_workflow_and_need_a_context() {
    let release = Release::start(true);
    let checked = release.production.requests();
    let out = release.canary(&["weight", SERVICE, "production", "30", "--live", "--yes"]);
    assert_eq!(out.code, 3, "{out}");
    assert_eq!(release.production.requests(), checked);
}

#[test]
fn cluster_errors_are_one_line_that_names_the_environment_and_context() {
    let release = Release::start(true);
    release.walk_to("add-routing");
    release.sync("staging");
    let extra = release.sandbox.home.join(".kube/extra.yaml");
    // `canary context` checks a context when it is set: each is sound then, and breaks after.
    let sound = kubeconfig(
        &[
            ("nope", &release.staging.url),
            ("gone", &release.staging.url),
            ("expired", &release.staging.url),
        ],
        common::cluster::TOKEN,
    );
    let broken = kubeconfig(
        &[
            ("gone", "http://127.0.0.1:1"),
            ("expired", &release.staging.url),
        ],
        "an-expired-token",
    );
    let mut paths: Vec<_> = std::env::split_paths(&release.kubeconfig).collect();
    paths.push(extra.clone());
    let release = Release(TwoClusters {
        kubeconfig: std::env::join_paths(paths).unwrap(),
        ..release.0
    });
    let check = |context: &str, setup: &dyn Fn(), expected: &str| {
        std::fs::write(&extra, &sound).unwrap();
        {
            let mut state = release.staging.state();
            state.rbac = None;
            state.istio = true;
        }
        release
            .canary(&["context", SERVICE, "staging", context])
            .ok();
        std::fs::write(&extra, &broken).unwrap();
        setup();
        let before = release.sandbox.snapshot();
        for args in [
            &["verify", SERVICE, "--env", "staging"][..],
            &["next", SERVICE, "--yes", "--timeout", "5s"],
        ] {
            let out = release.canary(args);
            assert_eq!(out.code, 1, "{out}");
            assert_eq!(out.stderr.lines().count(), 1, "{out}");
            assert!(
                out.stderr
                    .starts_with(&format!("error: staging (context {context}): {expected}")),
                "{expected}\n{out}"
            );
            assert_unchanged(&before, &release.sandbox.snapshot(), expected);
        }
    };
    // add-routing's edit first, so that `next` is at a deploy step.
    release.next().ok();
    check("nope", &|| {}, "no such context in the kubeconfig");
    check("gone", &|| {}, "the cluster is unreachable");
    check(
        "expired",
        &|| {},
        "the cluster refused the credentials (expired? log in again)",
    );
    check(
        STAGING,
        &|| release.staging.state().rbac = Some(Vec::new()),
        "forbidden by the cluster's RBAC: canary may not list deployments.apps in namespace \
         relational-data; docs/cluster.md lists the Role canary needs",
    );
    check(
        STAGING,
        &|| {
            let mut state = release.staging.state();
            state.rbac = None;
            state.istio = false;
        },
        "the cluster does not serve networking.istio.io: are Istio's CRDs installed?",
    );
}

#[test]
fn start_and_context_refuse_an_unknown_context_and_a_namespace_the_cluster_lacks() {
    let clusters = TwoClusters::new();
    let start = |contexts: &[&str]| {
        let mut args = clusters.start_args(false, Sandbox::start_args);
        for pair in contexts {
            args.extend(["--context".to_string(), pair.to_string()]);
        }
        clusters.canary(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let refused = |out: &Output, code: i32, expected: &str| {
        assert_eq!(out.code, code, "{out}");
        assert_eq!(out.stderr.lines().count(), 1, "{out}");
        assert!(out.stderr.starts_with(expected), "{expected}\n{out}");
        assert!(
            clusters.sandbox.journal_bytes().is_none(),
            "journaled: {out}"
        );
    };
    refused(
        &start(&["staging=kind-stagnig", &format!("production={PRODUCTION}")]),
        2,
        "error: staging (context kind-stagnig): no such context in the kubeconfig",
    );
    clusters.staging.state().namespaces.remove(NAMESPACE);
    let both = [
        format!("staging={STAGING}"),
        format!("production={PRODUCTION}"),
    ];
    let both: Vec<&str> = both.iter().map(String::as_str).collect();
    refused(
        &start(&both),
        2,
        "error: staging (context kind-staging): namespace relational-data does not exist in this \
         cluster",
    );
    // Under the documented Role, a missing namespace is a 403: named, not passed.
    clusters.staging.enforce_roles(&documented_roles());
    refused(
        &start(&both),
        1,
        "error: staging (context kind-staging): forbidden by the cluster's RBAC: canary may not \
         get namespaces in namespace relational-data (if relational-data does not exist, no Role \
         there can grant it); docs/cluster.md lists the Role canary needs",
    );
    clusters.staging.state().namespaces.insert(NAMESPACE.into());
    start(&both).ok();
    assert!(
        clusters
            .staging
            .requests()
            .contains(&format!("GET /api/v1/namespaces/{NAMESPACE}")),
        "{:#?}",
        clusters.staging.requests()
    );

    // `canary context` checks what it is given, and records nothing it refuses.
    let before = clusters.sandbox.snapshot();
    let out = clusters.canary(&["context", SERVICE, "production", "prod-typo"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.starts_with(
            "error: production (context prod-typo): no such context in the kubeconfig"
        ),
        "{out}"
    );
    clusters.production.state().namespaces.remove(NAMESPACE);
    let out = clusters.canary(&["context", SERVICE, "production", PRODUCTION]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.starts_with(
            "error: production (context kind-production): namespace relational-data does not \
             exist in this cluster"
        ),
        "{out}"
    );
    assert_unchanged(&before, &clusters.sandbox.snapshot(), "refused contexts");

    // Found later: named as the cause, at a deploy (at once, not at the timeout) and in verify,
    // which reads the other environment all the same.
    let release = Release(clusters);
    release
        .production
        .state()
        .namespaces
        .insert(NAMESPACE.into());
    // Whoever may read namespaces (a 404 for a missing one; under a Role alone, every read in
    // a missing namespace is a 403, named as above).
    release.staging.state().rbac = None;
    release.next().ok();
    release.sync("production");
    release.staging.state().namespaces.remove(NAMESPACE);
    let out = release.canary(&["next", SERVICE, "--yes", "--timeout", "10s"]);
    let out2 = release.canary(&["verify", SERVICE]);
    for out in [&out, &out2] {
        assert_eq!(out.code, 1, "{out}");
        assert!(
            out.stdout
                .contains("namespace relational-data does not exist in this cluster")
                || out
                    .stderr
                    .contains("namespace relational-data does not exist in this cluster"),
            "{out}"
        );
        assert!(!out.stdout.contains("deployment-missing"), "{out}");
    }
    assert!(!out.stdout.contains("Waiting"), "{out}");
    assert!(
        out2.stdout.contains(&format!(
            "Unreadable staging (context {STAGING}): namespace relational-data does not exist"
        )) && out2.stdout.contains(&format!(
            "production (context {PRODUCTION}, namespace {NAMESPACE})"
        )),
        "{out2}"
    );
    assert!(
        out2.stderr
            .contains("the cluster of staging could not be read"),
        "{out2}"
    );
    let json = release.canary(&["verify", SERVICE, "--json"]).json();
    assert_eq!(json[0]["code"], "cluster-unreadable", "{json}");
    assert_eq!(json[0]["env"], "staging", "{json}");
}

#[test]
fn a_context_set_on_a_release_in_flight_is_used_from_then_on() {
    let release = Release::start(false);
    release.next().ok();
    let out = release.canary(&["verify", SERVICE]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "`{}` sets one",
            release.sandbox.hint("context my-service ENV CONTEXT")
        )),
        "{out}"
    );
    release
        .canary(&["context", SERVICE, "staging", STAGING])
        .ok();
    let set = release.events("context-set");
    assert_eq!(
        set,
        [json!({"env": "staging", "from": null, "to": STAGING})]
    );
    release.sync("staging");
    release.next().ok();
    assert_eq!(release.events("deploy-confirmed")[0]["context"], STAGING);
    let out = release.canary(&["verify", SERVICE]).ok();
    assert!(
        out.stdout
            .contains("production has no kubeconfig context and was not checked"),
        "{out}"
    );
}

/// Objects of other services in the same namespace, `n` of each kind.
fn unrelated(n: usize) -> Vec<Value> {
    let mut objects = Vec::new();
    for i in 0..n {
        let name = format!("other-{i}");
        let meta = json!({"name": name, "namespace": NAMESPACE, "labels": {"app": name}});
        objects.push(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}}}),
        );
        objects.push(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"selector": {"app": name}}}),
        );
        objects.push(
            json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
            "metadata": meta, "spec": {"hosts": [name], "http": []}}),
        );
        objects.push(json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": []}}));
    }
    objects
}

#[test]
fn verify_makes_the_same_requests_whatever_else_the_namespace_holds() {
    let release = Release::start(true);
    release.walk_to("ramp");
    release.sync("production");
    let verify = || {
        let before = release.production.requests().len();
        release
            .canary(&["verify", SERVICE, "--env", "production"])
            .ok();
        release.production.requests()[before..].to_vec()
    };
    let alone = verify();
    release.production.add_objects(&unrelated(500));
    let crowded = verify();
    assert_eq!(alone, crowded);
    // Discovery, then six objects by name and web-v1's pods by its selector.
    assert_eq!(alone.len(), 8, "{alone:#?}");
    assert_eq!(alone[0], "GET /apis");
    for request in &alone[1..] {
        assert!(
            request.contains("fieldSelector=metadata.name%3D")
                || request.contains("labelSelector="),
            "a read of everything: {request}"
        );
    }
}

#[test]
fn a_wait_watches_from_the_version_it_read_and_resumes_when_the_server_ends_the_watch() {
    let release = Release::start(true);
    release.next().ok(); // deploy-v1's edit: web-v1 in gap.yaml
    release.sync("staging");
    release
        .staging
        .edit(&deployment_path("my-service-web-v1"), |d| {
            d["status"]["readyReplicas"] = json!(0);
        });
    release.staging.state().close_watches_after = Some(Duration::from_millis(100));
    let child = release
        .command(&["next", SERVICE, "--yes", "--timeout", "60s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let watches_of_web_v1 = || {
        release
            .staging
            .requests()
            .into_iter()
            .filter(|r| {
                r.contains("/deployments?")
                    && r.contains("watch=true")
                    && r.contains("my-service-web-v1")
            })
            .collect::<Vec<_>>()
    };
    // Several watches, each ended by the server after 100 ms: canary watches on.
    let until = Instant::now() + Duration::from_secs(20);
    while watches_of_web_v1().len() < 4 {
        assert!(Instant::now() < until, "{:#?}", release.staging.requests());
        std::thread::sleep(Duration::from_millis(20));
    }
    release.sync("staging"); // the Deployment is ready now
    let out = Output::new(&["next"], child.wait_with_output().unwrap()).ok();
    assert!(
        out.stdout
            .contains("Verified staging (context kind-staging) shows the deploy"),
        "{out}"
    );
    let requests = release.staging.requests();
    let reads = requests
        .iter()
        .filter(|r| {
            r.contains("/deployments?") && !r.contains("watch=") && r.contains("my-service-web-v1")
        })
        .count();
    // Read once before the wait and once per change the watch brought, not every few seconds.
    assert!(reads <= 3, "{requests:#?}");
    for watch in watches_of_web_v1() {
        let version = watch
            .split('&')
            .find_map(|p| p.strip_prefix("resourceVersion="))
            .unwrap_or_default();
        assert!(
            version.parse::<u64>().is_ok_and(|v| v > 0),
            "a watch from a version canary read: {watch}"
        );
        assert!(watch.contains("timeoutSeconds=20"), "{watch}");
    }
    assert_eq!(release.events("deploy-confirmed")[0]["verified"], true);
}

#[test]
fn a_wait_whose_version_the_server_compacted_reads_again_and_watches_on() {
    let release = Release::start(true);
    release.next().ok();
    release.sync("staging");
    release
        .staging
        .edit(&deployment_path("my-service-web-v1"), |d| {
            d["status"]["readyReplicas"] = json!(0);
        });
    release.staging.state().close_watches_after = Some(Duration::from_millis(200));
    let child = release
        .command(&["next", SERVICE, "--yes", "--timeout", "60s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    release.staging.await_request(|r| r.contains("watch=true"));
    // Other services change, etcd compacts: canary's versions are gone at its next watch.
    release.staging.add_objects(&unrelated(1));
    let reads_before = release.staging.requests().len();
    release.staging.state().compact();
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let requests = release.staging.requests();
        let fresh_reads = requests[reads_before..]
            .iter()
            .filter(|r| r.contains("/deployments?") && !r.contains("watch="))
            .count();
        if fresh_reads > 0 {
            break;
        }
        assert!(Instant::now() < until, "no read after 410: {requests:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    release.sync("staging");
    let out = Output::new(&["next"], child.wait_with_output().unwrap()).ok();
    assert!(
        out.stdout
            .contains("Verified staging (context kind-staging) shows the deploy"),
        "{out}"
    );
}

#[test]
fn istio_is_read_and_patched_at_the_newest_version_the_cluster_serves() {
    for (served, used) in [
        (vec!["v1"], "v1"),
        (vec!["v1beta1"], "v1beta1"),
        (vec!["v1", "v1beta1"], "v1"),
    ] {
        let release = Release::start(true);
        for server in [&release.staging, &release.production] {
            server.state().istio_versions = served.clone();
        }
        release.walk_to("ramp");
        release.sync("production");
        release.canary(&["verify", SERVICE]).ok();
        release
            .canary(&["weight", SERVICE, "production", "30", "--live", "--yes"])
            .ok();
        for server in [&release.staging, &release.production] {
            let istio: Vec<String> = server
                .requests()
                .into_iter()
                .filter(|r| r.contains(".istio.io/"))
                .collect();
            assert!(!istio.is_empty());
            for request in &istio {
                assert!(
                    request.contains(&format!(".istio.io/{used}/")),
                    "{served:?}: {request}"
                );
            }
        }
    }
    let release = Release::start(true);
    release.walk_to("add-routing");
    release.next().ok();
    release.sync("staging");
    release.staging.state().istio_versions = vec!["v1alpha3"];
    let before = release.sandbox.snapshot();
    let out = release.canary(&["verify", SERVICE, "--env", "staging"]);
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        out.stderr.contains(
            "the cluster serves networking.istio.io only in v1alpha3; canary reads v1 or v1beta1"
        ),
        "{out}"
    );
    assert_unchanged(&before, &release.sandbox.snapshot(), "an Istio too old");
}

/// Each `(group, resource, verb)` a set of Roles grants, and the Roles without it.
fn each_grant_taken_away(roles: &[Value]) -> Vec<(String, Vec<Value>)> {
    let mut out = Vec::new();
    for (r, role) in roles.iter().enumerate() {
        for (i, rule) in role["rules"].as_array().unwrap().iter().enumerate() {
            let strings = |key: &str| -> Vec<String> {
                rule[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect()
            };
            for group in strings("apiGroups") {
                for resource in strings("resources") {
                    for verb in strings("verbs") {
                        let mut fewer = roles.to_vec();
                        let rules = fewer[r]["rules"].as_array_mut().unwrap();
                        rules.remove(i);
                        // The rest of the rule stays granted.
                        for g in strings("apiGroups") {
                            for x in strings("resources") {
                                for v in strings("verbs") {
                                    if (&g, &x, &v) != (&group, &resource, &verb) {
                                        rules.push(json!({"apiGroups": [g], "resources": [x],
                                                          "verbs": [v]}));
                                    }
                                }
                            }
                        }
                        let qualified = if group.is_empty() {
                            resource.clone()
                        } else {
                            format!("{resource}.{group}")
                        };
                        out.push((format!("canary may not {verb} {qualified}"), fewer));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn the_documented_role_is_all_canary_needs_and_each_missing_grant_is_named() {
    // The release's namespace; the Role that reads Argo CD's Applications is argocd.rs's, and
    // `canary run`'s Lease Role is the Lease tests'.
    let roles: Vec<Value> = documented_roles()
        .into_iter()
        .filter(|role| role["metadata"]["namespace"] == NAMESPACE)
        .filter(|role| role["metadata"]["name"] == "canary")
        .collect();
    let release = Release::start(true);
    for server in [&release.staging, &release.production] {
        server.enforce_roles(&roles);
    }
    release.walk_to("ramp");
    release.sync("production");
    release.canary(&["verify", SERVICE]).ok();
    release.canary(&["status", SERVICE, "--live"]).ok();
    let grants = each_grant_taken_away(&roles);
    let mut named = std::collections::BTreeSet::new();
    let refuses = |refused: &str, args: &[&str]| {
        let before = release.sandbox.snapshot();
        let out = release.canary(args);
        if !out.stderr.contains("forbidden") {
            return false;
        }
        assert_eq!(out.code, 1, "{out}");
        // One line of error, after the question `--yes` answered, if any.
        let error = out.stderr.lines().last().unwrap();
        assert!(out.stderr.ends_with(&format!("{error}\n")), "{out}");
        assert!(
            error.starts_with(
                "error: production (context kind-production): forbidden by the \
                               cluster's RBAC: "
            ) && error.contains(&format!("{refused} in namespace {NAMESPACE}")),
            "{refused}\n{out}"
        );
        assert_eq!(out.stderr.matches("error").count(), 1, "{out}");
        assert_unchanged(&before, &release.sandbox.snapshot(), refused);
        true
    };
    // Reading, and patching the live weights.
    for (refused, fewer) in &grants {
        release.production.enforce_roles(fewer);
        for args in [
            &["verify", SERVICE, "--env", "production"][..],
            &["weight", SERVICE, "production", "30", "--live", "--yes"],
            &["context", SERVICE, "production", PRODUCTION],
        ] {
            if refuses(refused, args) {
                named.insert(refused.clone());
                break;
            }
        }
    }
    release.production.enforce_roles(&roles);
    release
        .canary(&["weight", SERVICE, "production", "30", "--live", "--yes"])
        .ok();
    // Watching, at a deploy that the cluster does not show yet.
    release.next().ok();
    assert!(release.step().contains("deploy"), "{}", release.step());
    let unread: Vec<_> = grants.iter().filter(|(g, _)| !named.contains(g)).collect();
    for (refused, fewer) in unread {
        release.production.enforce_roles(fewer);
        if refuses(refused, &["next", SERVICE, "--yes", "--timeout", "3s"]) {
            named.insert(refused.clone());
        }
    }
    let unused: Vec<_> = grants
        .iter()
        .filter(|(g, _)| !named.contains(g))
        .map(|(g, _)| g)
        .collect();
    assert!(unused.is_empty(), "granted but never needed: {unused:?}");
}

const LEASE: &str =
    "/apis/coordination.k8s.io/v1/namespaces/relational-data/leases/canary-my-service";

/// A Lease of the release held by `holder`, renewed `ago` before now.
fn lease_held_by(holder: &str, ago: Duration) -> Value {
    let renewed = k8s_openapi::jiff::Timestamp::now()
        .checked_sub(k8s_openapi::jiff::SignedDuration::try_from(ago).unwrap())
        .unwrap();
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "canary-my-service", "namespace": NAMESPACE},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 60,
            "acquireTime": renewed.to_string(),
            "renewTime": renewed.to_string(),
            "leaseTransitions": 3
        }
    })
}

fn run(release: &Release, extra: &[&str]) -> Output {
    let mut args = vec!["run", SERVICE, "--yes", "--bake", "0s"];
    args.extend(extra);
    release.canary(&args)
}

/// `canary run` holds the release's Lease on production's cluster while it runs, and gives it
/// up when it ends; staging's cluster is not asked.
#[test]
fn a_run_holds_the_release_s_lease_and_gives_it_up_when_it_ends() {
    let release = Release::start(true);
    run(&release, &["--until", "deploy-v1"]).ok();
    let lease = release
        .production
        .object(LEASE)
        .expect("the Lease was made");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 60);
    assert_eq!(
        lease["spec"]["holderIdentity"],
        Value::Null,
        "given up: {lease}"
    );
    let asked = |server: &common::cluster::FakeApiServer| {
        server
            .requests()
            .iter()
            .filter(|r| r.contains("/leases"))
            .cloned()
            .collect::<Vec<_>>()
    };
    let production = asked(&release.production);
    assert!(
        production.iter().any(|r| r
            .starts_with("POST /apis/coordination.k8s.io/v1/namespaces/relational-data/leases")),
        "{production:?}"
    );
    assert!(asked(&release.staging).is_empty());
}

/// A Lease that a live runner holds keeps the run waiting, saying so, until its --timeout:
/// then it exits 75, naming the holder, having changed nothing.
#[test]
fn a_lease_another_runner_renews_keeps_the_run_out() {
    let release = Release::start(true);
    release
        .production
        .add_objects(&[lease_held_by("runner-a/7", Duration::ZERO)]);
    let before = release.sandbox.snapshot();
    let out = run(&release, &["--timeout", "3s"]);
    assert_eq!(out.code, 75, "{out}");
    assert!(
        out.stderr
            .contains("Waiting for the Lease canary-my-service, held by runner-a/7"),
        "{out}"
    );
    assert!(
        out.stderr.contains(
            "another canary process (runner-a/7, by the Lease canary-my-service in namespace \
             relational-data of production's cluster) is working on my-service"
        ),
        "{out}"
    );
    assert_unchanged(&before, &release.sandbox.snapshot(), "a run kept out");
    let lease = release.production.object(LEASE).unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "runner-a/7");
}

/// A run killed while it waits for another runner's Lease has changed nothing, the Lease
/// included; run again once that Lease has run out, it takes it over.
#[test]
fn a_run_killed_while_it_waits_for_a_lease_goes_on_when_run_again() {
    let release = Release::start(true);
    release
        .production
        .add_objects(&[lease_held_by("runner-a/7", Duration::ZERO)]);
    let before = release.sandbox.snapshot();
    let args = common::cluster::run_until("deploy-v1", "60s");
    let mut child = release.spawn_quiet(&args);
    // Waiting: it has read the Lease, held by runner-a, and not written it.
    release
        .production
        .await_request(|r| r.starts_with("GET ") && r.contains("/leases/canary-my-service"));
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_unchanged(&before, &release.sandbox.snapshot(), "a run killed waiting");
    let lease = release.production.object(LEASE).unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "runner-a/7");
    // runner-a stopped renewing a minute and more ago.
    release
        .production
        .add_objects(&[lease_held_by("runner-a/7", Duration::from_secs(600))]);
    let out = release.canary(&args);
    assert_eq!(out.code, 0, "{out}");
    let lease = release.production.object(LEASE).unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 4, "{lease}");
}

/// A Lease whose holder stopped renewing it (a killed runner) is taken over once its time is
/// out, as a transition of the Lease.
#[test]
fn a_lease_whose_holder_stopped_renewing_is_taken_over() {
    let release = Release::start(true);
    release
        .production
        .add_objects(&[lease_held_by("runner-a/7", Duration::from_secs(600))]);
    run(&release, &["--until", "deploy-v1"]).ok();
    let lease = release.production.object(LEASE).unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 4, "{lease}");
    assert_eq!(lease["spec"]["holderIdentity"], Value::Null, "{lease}");
}

/// A Lease another runner takes while the run holds it is noticed at the next renewal, and
/// the run stops with 75 before its next step, leaving the Lease to the one that took it.
#[test]
fn a_run_whose_lease_is_taken_stops_before_its_next_step() {
    let release = Release::start(true);
    let args = common::cluster::run_until("route-to-v1", "90s");
    let child = release
        .command(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while release
        .production
        .object(LEASE)
        .is_none_or(|l| l["spec"]["holderIdentity"].is_null())
    {
        assert!(Instant::now() < deadline, "the run never took the Lease");
        std::thread::sleep(Duration::from_millis(50));
    }
    release.production.edit(LEASE, |lease| {
        lease["spec"]["holderIdentity"] = json!("thief/1");
    });
    // The run waits for deploy-v1's deploy until the clusters show it, past its first renewal.
    std::thread::sleep(Duration::from_secs(22));
    let mut child = child;
    while child.try_wait().unwrap().is_none() {
        // A sync sets every object the files make; the Lease is the cluster's own, kept.
        let lease = release.production.object(LEASE).unwrap();
        release.sync("staging");
        release.sync("production");
        release.production.add_objects(&[lease]);
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = Output::new(&args, child.wait_with_output().unwrap());
    assert_eq!(out.code, 75, "{out}");
    assert!(
        out.stderr.contains(
            "the Lease canary-my-service was taken by thief/1: another runner holds \
             my-service's release now, so this one stops"
        ),
        "{out}"
    );
    assert_eq!(
        release.production.object(LEASE).unwrap()["spec"]["holderIdentity"],
        "thief/1"
    );
}

/// The documented Roles are all a run's Lease needs; without `canary-run`'s, the run stops
/// before its first step, naming the permission and where it is granted.
#[test]
fn the_documented_lease_role_is_all_a_run_needs() {
    let release = Release::start(true);
    let roles = documented_roles();
    release.production.enforce_roles(&roles);
    run(&release, &["--until", "deploy-v1"]).ok();
    let without: Vec<Value> = roles
        .into_iter()
        .filter(|role| role["metadata"]["name"] != "canary-run")
        .collect();
    release.production.enforce_roles(&without);
    let before = release.sandbox.snapshot();
    let out = run(&release, &["--until", "deploy-v1"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(
            "canary may not get leases.coordination.k8s.io in namespace relational-data: the \
             Role in canary's docs/cluster.md grants it"
        ),
        "{out}"
    );
    assert_unchanged(
        &before,
        &release.sandbox.snapshot(),
        "a run refused its Lease",
    );
}

/// A run killed while it waits for a deploy to show on the cluster goes on when run again:
/// the deploy is confirmed once, when the cluster shows it.
#[test]
fn a_run_killed_while_it_waits_for_a_deploy_goes_on_when_run_again() {
    let release = Release::start(true);
    let args = common::cluster::run_until("add-routing", "60s");
    let mut child = release.spawn_quiet(&args);
    // Waiting: it watches staging's cluster for deploy-v1's objects.
    release
        .staging
        .await_request(|r| r.starts_with("GET ") && r.contains("watch=true"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(release.events("deploy-confirmed").is_empty());
    release.sync("staging");
    release.sync("production");
    release.canary(&args).ok();
    assert_eq!(release.sandbox.phase(), "add-routing");
    assert_eq!(release.confirmed_envs(), ["staging", "production"]);
}
