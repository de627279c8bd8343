//! Argo CD with the real binary: an environment names its Application, a deploy step waits
//! until it is Synced at canary's commit (or a later one) and Healthy, `verify` and `status
//! --live` show it, the production cleanup says whether a sync with Prune is needed, and the
//! journal says how each deploy was verified. The Applications live on fake API servers with
//! the status Argo CD writes, checked against Argo CD's own CRD (tests/fixtures/argocd).
#![cfg(feature = "cluster")]

use crate::common;

use std::process::Stdio;

use crate::common::cluster::{STAGING_CONTEXT, TwoClusters, documented_roles, synced_objects};
use crate::common::{NAMESPACE, Output, SERVICE, Sandbox, V1_IMAGE, assert_unchanged};
use serde_json::{Value, json};

const STAGING: &str = STAGING_CONTEXT;
const ARGOCD_NS: &str = "argocd";

fn app_name(env: &str) -> String {
    format!("{SERVICE}-{env}")
}

fn app_path(env: &str) -> String {
    format!(
        "/apis/argoproj.io/v1alpha1/namespaces/{ARGOCD_NS}/applications/{}",
        app_name(env)
    )
}

fn short(commit: &str) -> &str {
    &commit[..12]
}

/// An Application as Argo CD keeps it: synced with `sync` at `revision`, of health `health`,
/// pruning on its own when `prune`.
fn application(env: &str, sync: &str, revision: &str, health: &str, prune: bool) -> Value {
    let source = json!({"repoURL": "https://git.example/deploy.git", "path": "gap",
                        "targetRevision": "main"});
    let destination = json!({"server": "https://kubernetes.default.svc", "namespace": NAMESPACE});
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": app_name(env), "namespace": ARGOCD_NS},
        "spec": {"project": "default", "source": source, "destination": destination,
                 "syncPolicy": {"automated": {"prune": prune, "selfHeal": true}}},
        "status": {
            "sync": {"status": sync, "revision": revision,
                     "comparedTo": {"source": source, "destination": destination}},
            "health": {"status": health, "lastTransitionTime": "2026-12-02T10:00:00Z"},
            "operationState": {
                "operation": {"sync": {"revision": revision}, "initiatedBy": {"automated": true}},
                "phase": "Succeeded", "message": "successfully synced (all tasks run)",
                "startedAt": "2026-12-02T10:00:00Z", "finishedAt": "2026-12-02T10:00:05Z",
                "syncResult": {"revision": revision, "source": source, "resources": []}
            },
            "sourceType": "Directory", "reconciledAt": "2026-12-02T10:00:05Z"
        }
    })
}

/// A release whose two environments each have a cluster and an Argo CD Application.
struct Release(TwoClusters);

impl std::ops::Deref for Release {
    type Target = TwoClusters;

    fn deref(&self) -> &TwoClusters {
        &self.0
    }
}

impl Release {
    /// Started with a context for each environment and the `--argocd` flags given.
    fn start(argocd: &[&str]) -> Release {
        Release(TwoClusters::start(true, |sandbox| {
            let mut args = sandbox.start_args();
            for flag in argocd {
                args.extend(["--argocd".to_string(), flag.to_string()]);
            }
            args
        }))
    }

    fn with_both() -> Release {
        Release::start(&[
            "staging=argocd/my-service-staging",
            "production=argocd/my-service-production",
        ])
    }

    fn next(&self, timeout: &str) -> Output {
        self.canary(&["next", SERVICE, "--yes", "--timeout", timeout])
    }

    fn head(&self) -> String {
        self.sandbox.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    /// The environment's objects as a sync of the repository makes them, its Application left
    /// as it is.
    fn sync_objects(&self, env: &str) {
        let server = self.server(env);
        let app = server.object(&app_path(env));
        let mut objects = synced_objects(
            &self.sandbox.repo,
            env,
            NAMESPACE,
            SERVICE,
            V1_IMAGE.split_once('@').unwrap().1,
        );
        objects.extend(app);
        server.set_objects(&objects);
    }

    /// A whole Argo CD sync: the objects, and the Application Synced at HEAD and Healthy.
    fn sync(&self, env: &str, prune: bool) {
        self.sync_objects(env);
        self.set_app(
            env,
            application(env, "Synced", &self.head(), "Healthy", prune),
        );
    }

    /// Write the Application as Argo CD would, as the CRD has it, deploying the sandbox's
    /// remote (in another form of its URL than the clone's); watches see the change.
    fn set_app(&self, env: &str, mut app: Value) {
        app["spec"]["source"]["repoURL"] =
            json!(format!("file://{}/", self.sandbox.remote.display()));
        check_against_crd(&app);
        let server = self.server(env);
        match server.object(&app_path(env)) {
            Some(_) => server.edit(&app_path(env), |old| *old = app),
            None => server.add_objects(&[app]),
        }
    }

    fn remove_app(&self, env: &str) {
        let server = self.server(env);
        let rest: Vec<Value> = server
            .state()
            .objects
            .iter()
            .filter(|(path, _)| **path != app_path(env))
            .map(|(_, o)| o.clone())
            .collect();
        server.set_objects(&rest);
    }

    fn edit_app(&self, env: &str, f: impl FnOnce(&mut Value)) {
        let mut app = self
            .server(env)
            .object(&app_path(env))
            .expect("an Application");
        f(&mut app);
        self.set_app(env, app);
    }

    fn walk_to(&self, phase: &str) {
        for _ in 0..common::MAX_STEPS {
            if self.sandbox.phase() == phase {
                return;
            }
            self.sync("staging", true);
            self.sync("production", true);
            self.next("5s").ok();
        }
        panic!("never reached {phase}");
    }
}

/// Argo CD's Application CRD: the schema of `argoproj.io/v1alpha1` `Application`.
fn crd_schema() -> &'static Value {
    static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        let text = std::fs::read_to_string(common::fixtures().join("argocd/application-crd.yaml"))
            .unwrap();
        let crd: Value = serde_saphyr::from_str(&text).unwrap();
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v1alpha1");
        version["schema"]["openAPIV3Schema"].clone()
    })
}

/// Where `value` breaks `schema`: types, required fields and fields the schema does not have.
fn violations(schema: &Value, value: &Value, at: &str, out: &mut Vec<String>) {
    let ok = match (schema["type"].as_str(), value) {
        (None, _) => true,
        (Some("object"), Value::Object(_))
        | (Some("array"), Value::Array(_))
        | (Some("string"), Value::String(_))
        | (Some("boolean"), Value::Bool(_))
        | (Some("number"), Value::Number(_)) => true,
        (Some("integer"), Value::Number(n)) => n.is_i64(),
        _ => false,
    };
    if !ok {
        out.push(format!("{at} is not of type {}", schema["type"]));
        return;
    }
    match value {
        Value::Object(map) => {
            for required in schema["required"].as_array().into_iter().flatten() {
                if !map.contains_key(required.as_str().unwrap()) {
                    out.push(format!("{at}.{} is required", required.as_str().unwrap()));
                }
            }
            let properties = schema["properties"].as_object();
            for (key, field) in map {
                let at = format!("{at}.{key}");
                match (
                    properties.and_then(|p| p.get(key)),
                    &schema["additionalProperties"],
                ) {
                    (Some(field_schema), _) => violations(field_schema, field, &at, out),
                    (None, additional) if additional.is_object() => {
                        violations(additional, field, &at, out)
                    }
                    (None, _) if properties.is_some() => {
                        out.push(format!("{at} is not in the CRD"))
                    }
                    (None, _) => {}
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                violations(&schema["items"], item, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[track_caller]
fn check_against_crd(app: &Value) {
    let mut out = Vec::new();
    violations(crd_schema(), app, "", &mut out);
    assert!(
        out.is_empty(),
        "not an Application as the CRD has it: {out:#?}"
    );
}

#[test]
fn the_fields_canary_reads_and_the_status_tests_write_are_argo_cds() {
    let schema = crd_schema();
    for path in [
        "status.sync.status",
        "status.sync.revision",
        "status.sync.revisions",
        "status.health.status",
        "status.health.message",
        "status.operationState.phase",
        "status.operationState.message",
        "spec.syncPolicy.automated.prune",
    ] {
        let mut at = schema;
        for key in path.split('.') {
            at = &at["properties"][key];
        }
        assert!(at["type"].is_string(), "{path} is not in the CRD's schema");
    }
    check_against_crd(&application(
        "staging",
        "OutOfSync",
        "abc",
        "Degraded",
        false,
    ));
    let mut broken = application("staging", "Synced", "abc", "Healthy", true);
    broken["status"]["sync"]["revison"] = json!("typo");
    broken["status"]["health"]["status"] = json!(1);
    let mut out = Vec::new();
    violations(schema, &broken, "", &mut out);
    assert_eq!(
        out,
        [
            ".status.health.status is not of type \"string\"",
            ".status.sync.revison is not in the CRD"
        ]
    );
}

#[test]
fn a_deploy_waits_for_the_application_to_be_synced_at_canarys_commit_and_healthy() {
    let release = Release::with_both();
    let seed = release.head();
    release.next("5s").ok(); // deploy-v1's edit: web-v1 in gap.yaml, committed and pushed
    let canary = release.head();
    // The objects already match: only the Application is behind, at the seed's commit.
    release.sync_objects("staging");
    release.set_app(
        "staging",
        application("staging", "OutOfSync", &seed, "Healthy", true),
    );
    let child = release
        .command(&["next", SERVICE, "--yes", "--timeout", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Argo CD syncs once canary has read the Application and watches it.
    let flipped = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                release
                    .staging
                    .await_request(|r| r.contains("/applications?") && r.contains("watch=true"));
                release.edit_app("staging", |app| {
                    app["status"]["sync"]["status"] = json!("Synced");
                    app["status"]["sync"]["revision"] = json!(canary);
                    app["status"]["operationState"]["syncResult"]["revision"] = json!(canary);
                });
            })
            .join()
    });
    flipped.unwrap();
    let out = Output::new(&["next"], child.wait_with_output().unwrap()).ok();
    println!("{out}");
    for expected in [
        "canary checks the cluster and Argo CD Application argocd/my-service-staging".to_string(),
        "Waiting for staging (context kind-staging) to match its files".to_string(),
        format!(
            "error[argocd-not-synced] staging: Argo CD Application argocd/my-service-staging \
             is not yet Synced at {} or later and Healthy: it reports \
             OutOfSync at {}, older than canary's commit {}, Healthy",
            short(&canary),
            short(&seed),
            short(&canary)
        ),
        format!(
            "info[argocd-application] staging: Argo CD Application argocd/my-service-staging \
             reports Synced at {}, Healthy",
            short(&canary)
        ),
        "Verified staging (context kind-staging) shows the deploy".to_string(),
    ] {
        assert!(out.stdout.contains(&expected), "{expected}\n{out}");
    }
    let deploy = &release.events("deploy-confirmed")[0];
    assert_eq!(deploy["verified"], true);
    assert_eq!(deploy["argocd"]["application"], "argocd/my-service-staging");
    assert_eq!(deploy["argocd"]["revision"], json!(canary));
    assert_eq!(
        (&deploy["argocd"]["sync"], &deploy["argocd"]["health"]),
        (&json!("Synced"), &json!("Healthy"))
    );
    // The deploy read the Application by name, and wrote nothing.
    assert!(
        release
            .staging
            .requests()
            .iter()
            .all(|r| r.starts_with("GET "))
    );
}

#[test]
fn a_degraded_application_and_its_sync_error_are_shown_and_a_timeout_records_nothing() {
    let release = Release::with_both();
    release.next("5s").ok();
    release.sync("staging", true);
    release.edit_app("staging", |app| {
        app["status"]["health"]["status"] = json!("Degraded");
        app["status"]["health"]["message"] =
            json!("Deployment my-service-web-v1 exceeded its progress deadline");
        app["status"]["operationState"]["phase"] = json!("Failed");
        app["status"]["operationState"]["message"] =
            json!("one or more objects failed to apply, reason: admission webhook denied it");
    });
    let before = release.sandbox.snapshot();
    let out = release.next("1s");
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "staging (context kind-staging) did not show the deploy within 1s: Argo CD \
             Application argocd/my-service-staging is not yet Synced at {0} or later and Healthy: \
             it reports Synced at {0}, Degraded (Deployment my-service-web-v1 exceeded its \
             progress deadline); its last sync failed: one or more objects failed to apply, \
             reason: admission webhook denied it",
            short(&release.head())
        )),
        "{out}"
    );
    assert_unchanged(
        &before,
        &release.sandbox.snapshot(),
        "a deploy that timed out",
    );
}

#[test]
fn the_objects_matching_is_not_enough_while_the_application_is_out_of_sync() {
    let release = Release::with_both();
    release.next("5s").ok();
    release.sync("staging", true);
    release.edit_app("staging", |app| {
        app["status"]["sync"]["status"] = json!("OutOfSync");
    });
    let out = release.next("1s");
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("it reports OutOfSync at"), "{out}");
    assert!(release.events("deploy-confirmed").is_empty());
}

#[test]
fn a_later_revision_counts_once_this_clone_has_it_and_not_before() {
    let release = Release::with_both();
    release.next("5s").ok();
    let canary = release.head();
    // A colleague's commit on top of canary's reaches the remote, and Argo CD syncs it.
    release
        .sandbox
        .colleague_pushes("NOTES.md", |_| "a note\n".into(), "A note");
    let later = release
        .sandbox
        .remote_git(&["rev-parse", "main"])
        .trim()
        .to_string();
    release.sync_objects("staging");
    release.set_app(
        "staging",
        application("staging", "Synced", &later, "Healthy", true),
    );
    let before = release.sandbox.snapshot();
    let out = release.next("1s");
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "it reports Synced at {}, which this clone does not have: `git fetch` brings it, \
             and canary then sees whether it holds canary's commit {}, Healthy",
            short(&later),
            short(&canary)
        )),
        "{out}"
    );
    assert_unchanged(&before, &release.sandbox.snapshot(), "an unknown revision");

    release.sandbox.git(&["fetch", "-q"]);
    release.next("5s").ok();
    let deploy = &release.events("deploy-confirmed")[0];
    assert_eq!(deploy["argocd"]["revision"], json!(later));
}

#[test]
fn a_revision_on_another_line_of_history_is_not_accepted() {
    let release = Release::with_both();
    let seed = release.head();
    release.next("5s").ok();
    // A commit that this clone has, beside canary's rather than after it.
    release.sandbox.git(&["branch", "other", &seed]);
    release.sandbox.git(&["switch", "-q", "other"]);
    release.sandbox.write("NOTES.md", "elsewhere\n");
    release.sandbox.git(&["add", "NOTES.md"]);
    release.sandbox.git(&["commit", "-q", "-m", "Elsewhere"]);
    let other = release.head();
    release.sandbox.git(&["switch", "-q", "main"]);
    release.sync_objects("staging");
    release.set_app(
        "staging",
        application("staging", "Synced", &other, "Healthy", true),
    );
    let out = release.next("1s");
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "it reports Synced at {}, which does not have canary's commit",
            short(&other)
        )),
        "{out}"
    );
}

#[test]
fn verify_and_status_live_show_each_applications_sync_and_health() {
    let release = Release::with_both();
    release.next("5s").ok();
    release.sync("staging", true);
    release.sync("production", true);
    let head = release.head();
    let out = release.canary(&["verify", SERVICE]).ok();
    for env in ["staging", "production"] {
        let expected = format!(
            "info[argocd-application] {env}: Argo CD Application argocd/my-service-{env} reports \
             Synced at {}, Healthy",
            short(&head)
        );
        assert!(out.stdout.contains(&expected), "{expected}\n{out}");
    }
    let findings = release
        .canary(&["verify", SERVICE, "--env", "staging", "--json"])
        .ok()
        .json();
    let app = findings
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "argocd-application")
        .expect("the Application's finding");
    assert_eq!(app["severity"], "info");
    assert_eq!(app["detail"]["application"], "argocd/my-service-staging");
    assert_eq!(app["detail"]["sync"], "Synced");
    assert_eq!(app["detail"]["health"], "Healthy");
    assert_eq!(app["detail"]["revision"], json!(head));

    release.edit_app("production", |app| {
        app["status"]["health"]["status"] = json!("Progressing");
    });
    let status = release
        .canary(&["status", SERVICE, "--live", "--json"])
        .ok()
        .json();
    let staging = &status["environments"][0]["argocd"];
    assert_eq!(
        (
            &staging["application"],
            &staging["sync"],
            &staging["health"]
        ),
        (
            &json!("argocd/my-service-staging"),
            &json!("Synced"),
            &json!("Healthy")
        )
    );
    assert_eq!(status["environments"][1]["argocd"]["health"], "Progressing");
    let text = release.canary(&["status", SERVICE, "--live"]).ok();
    for expected in [
        format!(
            "Argo CD argocd/my-service-staging: Synced at {}, Healthy",
            short(&head)
        ),
        format!(
            "Argo CD argocd/my-service-production: Synced at {}, Progressing",
            short(&head)
        ),
    ] {
        assert!(text.stdout.contains(&expected), "{expected}\n{text}");
    }
    let out = release.canary(&["verify", SERVICE, "--env", "production"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains("error[argocd-not-synced] production:")
            && out.stdout.contains("Progressing"),
        "{out}"
    );

    release.remove_app("staging");
    let out = release.canary(&["verify", SERVICE, "--env", "staging"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains(
            "error[argocd-app-missing] staging: Argo CD Application argocd/my-service-staging is \
             not in the cluster"
        ),
        "{out}"
    );
}

#[test]
fn the_production_cleanup_says_whether_a_sync_with_prune_is_needed() {
    let release = Release::with_both();
    release.walk_to("cleanup-1");
    release.next("5s").ok(); // cleanup-1's edit
    release.sync("staging", true);
    release.next("5s").ok(); // staging prunes by itself
    // Production's Application is synced at an older commit and keeps web-v1.
    release.edit_app("production", |app| {
        app["spec"]["syncPolicy"]["automated"]["prune"] = json!(false);
    });
    let out = release.next("1s");
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains(
            "Argo CD Application argocd/my-service-production does not prune automatically: sync \
             it with Prune (`argocd app sync my-service-production --prune`, or Prune in the UI); \
             that sync deletes Deployment my-service-web-v1, web-v1's AuthorizationPolicy"
        ),
        "{out}"
    );
    assert!(!out.stdout.contains("prunes automatically"), "{out}");

    release.edit_app("production", |app| {
        app["spec"]["syncPolicy"]["automated"]["prune"] = json!(true);
    });
    let out = release.next("1s");
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains(
            "Argo CD Application argocd/my-service-production prunes automatically \
             (spec.syncPolicy.automated.prune): its sync deletes Deployment my-service-web-v1, \
             web-v1's AuthorizationPolicy"
        ),
        "{out}"
    );
    release.sync("production", true);
    release.next("5s").ok();
}

#[test]
fn the_log_says_how_each_deploy_was_verified() {
    let release = Release::start(&["staging=argocd/my-service-staging"]);
    release.next("5s").ok();
    release.sync("staging", true);
    let head = release.head();
    release.next("5s").ok(); // staging: objects and Application
    release.sync_objects("production");
    release.next("5s").ok(); // production: objects only
    release.next("5s").ok(); // the next edit
    release
        .canary(&["next", SERVICE, "--yes", "--no-verify"])
        .ok();
    let log = release.canary(&["log", SERVICE]).ok();
    let deploys: Vec<&str> = log
        .stdout
        .lines()
        .filter(|l| l.contains("deploy-confirmed"))
        .collect();
    assert_eq!(deploys.len(), 3, "{log}");
    assert!(
        deploys[0].ends_with(&format!(
            "verified on the cluster (context kind-staging): objects, Argo CD Application \
             argocd/my-service-staging at {} Synced/Healthy",
            short(&head)
        )),
        "{log}"
    );
    assert!(
        deploys[1].ends_with("verified on the cluster (context kind-production): objects"),
        "{log}"
    );
    assert!(
        deploys[2].ends_with("confirmed by the operator (--yes), not verified (--no-verify)"),
        "{log}"
    );
}

#[test]
fn v2s_code_deploy_waits_for_the_application_under_yes_too() {
    let release = Release::with_both();
    release.walk_to("deploy-v2");
    // web runs v2's build, but Argo CD is still rolling it out.
    release.sync("staging", true);
    release.edit_app("staging", |app| {
        app["status"]["health"] = json!({"status": "Progressing",
                                         "message": "Waiting for rollout to finish"});
    });
    let before = release.sandbox.snapshot();
    let out = release.next("2s");
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout
            .contains("Progressing (Waiting for rollout to finish)"),
        "{out}"
    );
    assert_unchanged(&before, &release.sandbox.snapshot(), "v2 still rolling out");
    release.sync("staging", true);
    release.next("5s").ok();
    let confirmed = release.events("deploy-confirmed");
    let last = confirmed.last().unwrap();
    assert_eq!(
        (&last["what"], &last["verified"], &last["argocd"]["health"]),
        (&json!("v2 code"), &json!(true), &json!("Healthy")),
        "{last}"
    );
}

#[test]
fn an_application_that_deploys_another_namespace_repository_or_path_is_not_the_releases() {
    let clusters = TwoClusters::new();
    let remote = clusters.sandbox.remote.display().to_string();
    // As a person writes them: the same repository in another form of its URL.
    let ours = format!("file://{remote}/");
    let cases = [
        (
            json!({"namespace": "payments"}),
            json!({}),
            "Argo CD Application argocd/my-service-staging deploys to namespace payments \
          (spec.destination.namespace), the release to relational-data"
                .to_string(),
        ),
        (
            json!({}),
            json!({"repoURL": "git@git.example:team/other-deploy.git"}),
            format!(
                "Argo CD Application argocd/my-service-staging deploys from \
                  git@git.example:team/other-deploy.git (spec.source.repoURL), the release's \
                  repository is {remote}"
            ),
        ),
        (
            json!({}),
            json!({"path": "gap/production"}),
            "Argo CD Application argocd/my-service-staging deploys path gap/production \
          (spec.source.path), the release's staging files are in gap/staging (or gap, the gap \
          directory)"
                .to_string(),
        ),
    ];
    let app = |destination: &Value, source: &Value| {
        let mut app = application("staging", "Synced", "abc", "Healthy", true);
        app["spec"]["source"]["repoURL"] = json!(ours);
        app["spec"]["source"]["path"] = json!("gap/staging");
        for (key, value) in destination.as_object().unwrap() {
            app["spec"]["destination"][key] = value.clone();
        }
        for (key, value) in source.as_object().unwrap() {
            app["spec"]["source"][key] = value.clone();
        }
        app
    };
    let mut args = clusters.start_args(true, Sandbox::start_args);
    args.extend([
        "--argocd".into(),
        "staging=argocd/my-service-staging".into(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for (destination, source, expected) in &cases {
        clusters.staging.set_objects(&[app(destination, source)]);
        let out = clusters.canary(&args);
        assert_eq!(out.code, 2, "{out}");
        assert_eq!(out.stderr.lines().count(), 1, "{out}");
        assert!(
            out.stderr.starts_with(&format!(
                "error: staging (context {STAGING}): {expected}: it deploys something else"
            )),
            "{expected}\n{out}"
        );
        assert!(
            clusters.sandbox.journal_bytes().is_none(),
            "journaled: {out}"
        );
    }
    // The release's own, in the path of its environment or of the gap directory.
    clusters
        .staging
        .set_objects(&[app(&json!({}), &json!({"path": "./gap/"}))]);
    clusters.canary(&args).ok();

    let release = Release(clusters);
    let (destination, source, expected) = &cases[0];
    let before = release.sandbox.snapshot();
    release.staging.set_objects(&[app(destination, source)]);
    let out = release.canary(&[
        "context",
        SERVICE,
        "staging",
        STAGING,
        "--argocd",
        "argocd/my-service-staging",
    ]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains(expected.as_str()), "{out}");
    assert_unchanged(&before, &release.sandbox.snapshot(), "context refused");

    // Found later, by verify, and by a deploy at once rather than at its timeout.
    release.next("5s").ok();
    release.sync_objects("staging");
    let before = release.sandbox.snapshot();
    let out = release.canary(&["verify", SERVICE, "--env", "staging"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout
            .contains(&format!("error[argocd-app-differs] staging: {expected}")),
        "{out}"
    );
    let out = release.next("30s");
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .starts_with(&format!("error: staging (context {STAGING}): {expected}")),
        "{out}"
    );
    assert_unchanged(&before, &release.sandbox.snapshot(), "deploy refused");
}

#[test]
fn bad_argocd_values_are_refused_at_start_and_by_context() {
    // A cluster for the context that is set in the end: `context` checks it.
    let clusters = TwoClusters::new();
    let sandbox = &clusters.sandbox;
    for (flags, expected) in [
        (
            &[
                "--context",
                "staging=kind-staging",
                "--argocd",
                "staging=my-app",
            ][..],
            "Argo CD Application \"my-app\" is not NAMESPACE/NAME",
        ),
        (
            &[
                "--context",
                "staging=kind-staging",
                "--argocd",
                "qa=argocd/my-app",
            ],
            "--argocd \"qa=argocd/my-app\" names environment \"qa\", which is not one of staging, production",
        ),
        (
            &["--argocd", "staging=argocd/my-app"],
            "staging has no kubeconfig context, and canary reads its Argo CD Application through one",
        ),
        (
            &[
                "--context",
                "staging=kind-staging",
                "--argocd",
                "staging=argocd/My_App",
            ],
            "Argo CD Application name \"My_App\" is not valid",
        ),
    ] {
        let mut args = sandbox.start_args();
        args.extend(flags.iter().map(|f| f.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sandbox.canary(&args);
        assert_eq!(out.code, 2, "{out}");
        assert_eq!(out.stderr.lines().count(), 1, "{out}");
        assert!(out.stderr.contains(expected), "{expected}\n{out}");
        assert!(sandbox.journal_bytes().is_none(), "nothing journaled");
    }

    sandbox.start();
    for (args, expected) in [
        (
            &["context", SERVICE, "staging", "--argocd", "argocd"][..],
            "is not NAMESPACE/NAME",
        ),
        (
            &["context", SERVICE, "qa", "--argocd", "argocd/app"],
            "unknown environment \"qa\"",
        ),
        (
            &["context", SERVICE, "staging", "--argocd", "argocd/app"],
            "staging would have Argo CD Application argocd/app but no kubeconfig context",
        ),
    ] {
        let before = sandbox.snapshot();
        let out = sandbox.canary(args);
        assert_eq!(out.code, 2, "{out}");
        assert_eq!(out.stderr.lines().count(), 1, "{out}");
        assert!(out.stderr.contains(expected), "{expected}\n{out}");
        assert_unchanged(&before, &sandbox.snapshot(), expected);
    }
    let out = clusters
        .canary(&[
            "context",
            SERVICE,
            "staging",
            STAGING,
            "--argocd",
            "argocd/app",
        ])
        .ok();
    assert!(
        out.stdout.contains("Argo CD Application argocd/app"),
        "{out}"
    );
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["context", SERVICE, "staging", "--unset"]);
    assert_eq!(out.code, 2, "{out}");
    assert_unchanged(&before, &sandbox.snapshot(), "--unset with an Application");
    sandbox
        .canary(&["context", SERVICE, "staging", "--no-argocd", "--unset"])
        .ok();
    let set: Vec<Value> = sandbox
        .log()
        .into_iter()
        .filter(|e| e["kind"] == "context-set")
        .map(|e| e["detail"].clone())
        .collect();
    assert_eq!(
        set,
        [
            json!({"env": "staging", "from": null, "to": STAGING,
                   "argocd_from": null, "argocd_to": "argocd/app"}),
            json!({"env": "staging", "from": STAGING, "to": null,
                   "argocd_from": "argocd/app", "argocd_to": null}),
        ]
    );
}

#[test]
fn the_documented_argo_cd_role_is_all_a_deploy_needs_and_each_missing_verb_is_named() {
    let roles = documented_roles();
    let argocd = roles
        .iter()
        .position(|role| role["metadata"]["namespace"] == ARGOCD_NS)
        .expect("docs/cluster.md has a Role for Argo CD's namespace");
    let release = Release::with_both();
    release.staging.enforce_roles(&roles);
    release.next("5s").ok();
    release.sync("staging", true);
    release
        .canary(&["verify", SERVICE, "--env", "staging"])
        .ok();
    // The Application is behind: the deploy has to read it, then watch it.
    release.edit_app("staging", |app| {
        app["status"]["sync"]["status"] = json!("OutOfSync");
    });
    for verb in ["list", "watch"] {
        let mut fewer = roles.clone();
        for rule in fewer[argocd]["rules"].as_array_mut().unwrap() {
            rule["verbs"].as_array_mut().unwrap().retain(|v| v != verb);
        }
        release.staging.enforce_roles(&fewer);
        let before = release.sandbox.snapshot();
        let out = release.next("3s");
        assert_eq!(out.code, 1, "{out}");
        let error = out.stderr.lines().last().unwrap();
        assert_eq!(out.stderr.matches("error").count(), 1, "{out}");
        assert!(
            error.starts_with(&format!(
                "error: staging (context kind-staging): forbidden by the cluster's RBAC: canary \
                 may not {verb} applications.argoproj.io in namespace {ARGOCD_NS}"
            )),
            "{out}"
        );
        assert_unchanged(&before, &release.sandbox.snapshot(), verb);
    }
    release.staging.enforce_roles(&roles);
    release.sync("staging", true);
    release.next("5s").ok();
}

/// `canary run` with Argo CD: an Argo CD that syncs whatever the remote holds, as it comes,
/// and reports the Application Synced at that revision and Healthy. Each deploy of the run is
/// seen on both clusters and their Applications, and the run gets to its --until.
#[test]
fn a_run_waits_for_argo_cd_to_sync_each_push_and_goes_on() {
    let release = Release::with_both();
    let args = common::cluster::run_until("deploy-v2", "90s");
    let mut child = release
        .command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lease = "/apis/coordination.k8s.io/v1/namespaces/relational-data/leases/canary-my-service";
    let remote = |rev: &str| {
        release
            .sandbox
            .remote_git(&["rev-parse", rev])
            .trim()
            .to_string()
    };
    while child.try_wait().unwrap().is_none() {
        for env in ["staging", "production"] {
            // Argo CD follows the remote, not the clone: the files as the remote has them.
            let revision = remote("main");
            let server = release.server(env);
            let kept = server.object(lease);
            release.sync_objects(env);
            server.add_objects(&kept.into_iter().collect::<Vec<_>>());
            release.set_app(env, application(env, "Synced", &revision, "Healthy", true));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let out = Output::new(&args, child.wait_with_output().unwrap());
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(release.sandbox.phase(), "deploy-v2");
    let confirmed = release.events("deploy-confirmed");
    assert!(confirmed.len() >= 6, "{confirmed:?}");
    for deploy in &confirmed {
        assert_eq!(deploy["verified"], true, "{deploy}");
        assert!(deploy["argocd"]["revision"].is_string(), "{deploy}");
    }
}

/// A run killed while it waits for Argo CD to sync its push (the cluster shows the objects,
/// the Application is still at the commit before) has confirmed nothing; run again once Argo
/// CD has synced, it confirms each deploy once and gets to its --until.
#[test]
fn a_run_killed_while_it_waits_for_argo_cd_goes_on_when_run_again() {
    let release = Release::with_both();
    let args = common::cluster::run_until("add-routing", "60s");
    let mut child = release.spawn_quiet(&args);
    let watching_app = |r: &String| {
        r.starts_with("GET ") && r.contains("/applications") && r.contains("watch=true")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !release
        .server("staging")
        .requests()
        .iter()
        .any(watching_app)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never waited for Argo CD"
        );
        release.sync_objects("staging");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(release.events("deploy-confirmed").is_empty());
    release.sync("staging", true);
    release.sync("production", true);
    let out = release.canary(&args);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(release.sandbox.phase(), "add-routing");
    assert_eq!(release.confirmed_envs(), ["staging", "production"]);
}
