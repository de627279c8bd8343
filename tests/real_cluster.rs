//! The scenario of tests/cluster.rs against a real cluster, when `CANARY_TEST_KUBECONFIG`
//! names a kubeconfig (its current context is used, or `CANARY_TEST_CONTEXT`). Without it the
//! test passes at once, saying it was skipped. See docs/cluster.md.
//!
//! It installs the Istio CRDs from tests/fixtures/istio-crds.yaml if the cluster has none,
//! works in a namespace of its own that it removes at the end, and creates what a GitOps sync
//! of the repository would: the Deployments (paused at 0 replicas: the images are not real),
//! the web-v1 pod with the status a running pod has (held back from scheduling, so that no
//! kubelet touches it), the Service and the repository's Istio objects. Only staging has a
//! context (one namespace cannot hold both environments' VirtualServices); production's
//! deploys are confirmed as without a cluster.
//!
//! The Argo CD test also installs Argo CD's Application CRD from tests/fixtures/argocd if the
//! cluster has none (no Argo CD need run: the test writes the Application's status as Argo CD
//! would) and creates its Application in the same namespace.
#![cfg(feature = "cluster")]

mod common;

use std::ffi::OsString;
use std::io::Write;
use std::process::{Command, Stdio};

use common::cluster::synced_objects;
use common::{Output, SERVICE, Sandbox, V1_IMAGE};
use serde_json::{Value, json};

struct Cluster {
    kubeconfig: OsString,
    context: String,
    namespace: String,
}

impl Cluster {
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut child = Command::new("kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .args(["--context", &self.context])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl on PATH");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn has(&self, args: &[&str]) -> bool {
        Command::new("kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .args(["--context", &self.context])
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// What a GitOps sync of the repository makes of staging, with the statuses a healthy
    /// cluster would show.
    fn sync(&self, repo: &std::path::Path) {
        let digest = V1_IMAGE.split_once('@').unwrap().1;
        let mut objects = synced_objects(repo, "staging", &self.namespace, SERVICE, digest);
        let mut statuses = Vec::new();
        for object in &mut objects {
            match object["kind"].as_str().unwrap() {
                "Deployment" => {
                    object["spec"]["replicas"] = json!(0);
                    object["spec"]["paused"] = json!(true);
                    object["spec"]["template"]["spec"]["containers"] =
                        json!([{"name": "web", "image": "registry.invalid/none:0"}]);
                    object.as_object_mut().unwrap().remove("status");
                }
                "Pod" => {
                    let status = object.as_object_mut().unwrap().remove("status").unwrap();
                    object["spec"]["schedulingGates"] = json!([{"name": "canary.test/hold"}]);
                    object["spec"]["containers"] = json!([
                        {"name": "web", "image": object["spec"]["containers"][0]["image"]},
                        {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0"}
                    ]);
                    statuses.push((
                        object["metadata"]["name"].as_str().unwrap().to_string(),
                        status,
                    ));
                }
                _ => {}
            }
        }
        let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
        self.kubectl(&["apply", "-f", "-"], Some(&list.to_string()));
        for (pod, status) in statuses {
            self.kubectl(
                &[
                    "-n",
                    &self.namespace,
                    "patch",
                    "pod",
                    &pod,
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    &json!({ "status": status }).to_string(),
                ],
                None,
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .args([
                "--context",
                &self.context,
                "delete",
                "namespace",
                &self.namespace,
            ])
            .args(["--wait=false", "--ignore-not-found"])
            .output();
    }
}

impl Cluster {
    /// The cluster `CANARY_TEST_KUBECONFIG` names, with a fresh namespace of this test's own;
    /// `None` (the test is skipped) without it.
    fn connect() -> Option<Cluster> {
        let Some(kubeconfig) = std::env::var_os("CANARY_TEST_KUBECONFIG") else {
            eprintln!("skipped: CANARY_TEST_KUBECONFIG names no kubeconfig (see docs/cluster.md)");
            return None;
        };
        let context = std::env::var("CANARY_TEST_CONTEXT").unwrap_or_else(|_| {
            let out = Command::new("kubectl")
                .env("KUBECONFIG", &kubeconfig)
                .args(["config", "current-context"])
                .output()
                .expect("kubectl on PATH");
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        });
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let cluster = Cluster {
            kubeconfig,
            context,
            namespace: format!("canary-test-{}-{nanos}", std::process::id()),
        };
        cluster.install(
            &[
                "destinationrules.networking.istio.io",
                "virtualservices.networking.istio.io",
                "authorizationpolicies.security.istio.io",
            ],
            "istio-crds.yaml",
        );
        cluster.kubectl(&["create", "namespace", &cluster.namespace], None);
        Some(cluster)
    }

    /// Apply the CRDs of a fixture unless the cluster has them all, and wait until they are
    /// served. Server-side: Argo CD's CRD is too large for the annotation that a client-side
    /// apply keeps.
    fn install(&self, crds: &[&str], fixture: &str) {
        if crds.iter().all(|crd| self.has(&["get", "crd", crd])) {
            return;
        }
        let fixture = common::fixtures().join(fixture);
        self.kubectl(
            &["apply", "--server-side", "-f", fixture.to_str().unwrap()],
            None,
        );
        for crd in crds {
            self.kubectl(
                &[
                    "wait",
                    "--for=condition=established",
                    "--timeout=60s",
                    &format!("crd/{crd}"),
                ],
                None,
            );
        }
    }

    /// `canary ARGS` with this cluster's kubeconfig.
    fn canary(&self, sandbox: &Sandbox, args: &[&str]) -> Output {
        let mut cmd = sandbox.canary_command(args);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .stdin(std::process::Stdio::null());
        Output::new(args, cmd.output().unwrap())
    }

    /// `canary start` of the sandbox's release in this cluster's namespace, staging on it.
    fn start(&self, sandbox: &Sandbox, extra: &[String]) {
        let mut start = sandbox.start_args();
        let ns = start.iter().position(|a| a == "--namespace").unwrap() + 1;
        start[ns] = self.namespace.clone();
        start.extend(["--context".into(), format!("staging={}", self.context)]);
        start.extend(extra.iter().cloned());
        self.canary(
            sandbox,
            &start.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .ok();
    }
}

#[test]
fn verify_and_live_weights_against_a_real_cluster() {
    let Some(cluster) = Cluster::connect() else {
        return;
    };
    let sandbox = Sandbox::new();
    let canary = |args: &[&str]| cluster.canary(&sandbox, args);
    cluster.start(&sandbox, &[]);

    // Through route-to-v1: staging's deploys checked on the cluster, production's confirmed.
    while sandbox.phase() != "deploy-v2" {
        cluster.sync(&sandbox.repo);
        canary(&["next", SERVICE, "--yes", "--timeout", "2m"]).ok();
    }
    let log: Value = canary(&["log", SERVICE, "--json"]).ok().json();
    let verified = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "deploy-confirmed" && e["detail"]["verified"] == true)
        .count();
    assert_eq!(
        verified, 4,
        "staging's four deploys were checked on the cluster"
    );
    canary(&["verify", SERVICE]).ok();

    canary(&["weight", SERVICE, "staging", "30", "--live", "--yes"]).ok();
    let out = canary(&["verify", SERVICE, "--json"]);
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(out.json()[0]["code"], "live-weights-differ", "{out}");
}

/// What Argo CD writes in an Application's status, written here with kubectl: the CRD has no
/// status subresource, so a merge patch of `.status` does it.
fn argocd_status(sync: &str, revision: &str, health: &str) -> String {
    json!({"status": {
        "sync": {"status": sync, "revision": revision},
        "health": {"status": health},
    }})
    .to_string()
}

#[test]
fn an_argocd_application_gates_a_deploy_on_a_real_cluster() {
    let Some(cluster) = Cluster::connect() else {
        return;
    };
    cluster.install(&["applications.argoproj.io"], "argocd/application-crd.yaml");
    let sandbox = Sandbox::new();
    let canary = |args: &[&str]| cluster.canary(&sandbox, args);
    let head = || sandbox.git(&["rev-parse", "HEAD"]).trim().to_string();
    let seed = head();
    // In the test's namespace, where no Argo CD reconciles it: the test plays Argo CD.
    let name = format!("{SERVICE}-staging");
    let application = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": cluster.namespace},
        "spec": {"project": "default",
                 "source": {"repoURL": "https://git.invalid/deploy.git", "path": "gap"},
                 "destination": {"server": "https://kubernetes.default.svc",
                                 "namespace": cluster.namespace},
                 "syncPolicy": {"automated": {"prune": true}}}
    });
    cluster.kubectl(&["create", "-f", "-"], Some(&application.to_string()));
    let patch_status = |status: String| {
        cluster.kubectl(
            &[
                "-n",
                &cluster.namespace,
                "patch",
                "applications.argoproj.io",
                &name,
                "--type=merge",
                "-p",
                &status,
            ],
            None,
        );
    };
    patch_status(argocd_status("OutOfSync", &seed, "Healthy"));
    cluster.start(
        &sandbox,
        &[
            "--argocd".into(),
            format!("staging={}/{name}", cluster.namespace),
        ],
    );

    canary(&["next", SERVICE, "--yes"]).ok(); // deploy-v1's edit
    cluster.sync(&sandbox.repo);
    let out = canary(&["next", SERVICE, "--yes", "--timeout", "5s"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains("it reports OutOfSync at"),
        "the objects match, the Application does not: {out}"
    );
    patch_status(argocd_status("Synced", &head(), "Healthy"));
    canary(&["next", SERVICE, "--yes", "--timeout", "2m"]).ok();
    let log: Value = canary(&["log", SERVICE, "--json"]).ok().json();
    let deploy = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "deploy-confirmed")
        .expect("staging's deploy");
    assert_eq!(deploy["detail"]["argocd"]["revision"], json!(head()));

    let out = canary(&["verify", SERVICE, "--env", "staging"]).ok();
    assert!(out.stdout.contains("info[argocd-application]"), "{out}");
    patch_status(argocd_status("Synced", &head(), "Degraded"));
    let out = canary(&["verify", SERVICE, "--env", "staging"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stdout.contains("Degraded"), "{out}");
}
