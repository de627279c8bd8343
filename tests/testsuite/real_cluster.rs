//! The scenario of cluster.rs against a real cluster, when `CANARY_TEST_KUBECONFIG`
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
//! would) and creates its Application in the test's namespace.
#![cfg(feature = "cluster")]

use crate::common;

use std::ffi::OsString;
use std::io::{BufRead, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::common::cluster::{documented_roles, synced_objects};
use crate::common::{Output, SERVICE, Sandbox, V1_IMAGE};
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
    /// The cluster `CANARY_TEST_KUBECONFIG` names, with Istio's CRDs and a namespace of the
    /// test's own; `None` (the test is skipped) without it.
    fn from_env() -> Option<Cluster> {
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
        let crds = [
            "destinationrules.networking.istio.io",
            "virtualservices.networking.istio.io",
            "authorizationpolicies.security.istio.io",
        ];
        if !crds.iter().all(|crd| cluster.has(&["get", "crd", crd])) {
            let fixture = common::fixtures().join("istio-crds.yaml");
            cluster.kubectl(&["apply", "-f", fixture.to_str().unwrap()], None);
            for crd in crds {
                cluster.kubectl(
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
        cluster.kubectl(&["create", "namespace", &cluster.namespace], None);
        Some(cluster)
    }

    /// A release of the sandbox's repository in the test's namespace, staging on this
    /// cluster, run with `kubeconfig`.
    fn release<'a>(
        &'a self,
        sandbox: &'a Sandbox,
        kubeconfig: OsString,
    ) -> impl Fn(&[&str]) -> Output + 'a {
        let canary = move |args: &[&str]| -> Output {
            let mut cmd = sandbox.canary_command(args);
            cmd.env("KUBECONFIG", &kubeconfig).stdin(Stdio::null());
            Output::new(args, cmd.output().unwrap())
        };
        let mut start = sandbox.start_args();
        let ns = start.iter().position(|a| a == "--namespace").unwrap() + 1;
        start[ns] = self.namespace.clone();
        start.extend(["--context".into(), format!("staging={}", self.context)]);
        canary(&start.iter().map(String::as_str).collect::<Vec<_>>()).ok();
        canary
    }

    /// A kubeconfig beside `dir` that reaches this cluster as `user` (a kubeconfig `user:`
    /// entry), under the same context name.
    fn kubeconfig_as(&self, dir: &std::path::Path, user: Value) -> OsString {
        let view: Value = serde_json::from_str(
            &self.kubectl(&["config", "view", "--raw", "--minify", "-o", "json"], None),
        )
        .unwrap();
        let config = json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": view["clusters"],
            "users": [{"name": "canary-test", "user": user}],
            "contexts": [{"name": self.context, "context": {
                "cluster": view["contexts"][0]["context"]["cluster"], "user": "canary-test"}}],
            "current-context": self.context,
        });
        let path = dir.join("kubeconfig-canary-test.json");
        std::fs::write(&path, config.to_string()).unwrap();
        path.into_os_string()
    }
}

#[test]
fn verify_and_live_weights_against_a_real_cluster() {
    let Some(cluster) = Cluster::from_env() else {
        return;
    };
    let sandbox = Sandbox::new();
    let canary = cluster.release(&sandbox, cluster.kubeconfig.clone());

    // The first deploy waits, watching, until the sync comes.
    canary(&["next", SERVICE, "--yes"]).ok(); // deploy-v1's edit
    let waiting = sandbox
        .canary_command(&["next", SERVICE, "--yes", "--timeout", "2m"])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    cluster.sync(&sandbox.repo);
    let out = Output::new(&["next"], waiting.wait_with_output().unwrap()).ok();
    assert!(out.stdout.contains("Waiting for staging"), "{out}");
    assert!(out.stdout.contains("Verified staging"), "{out}");

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

#[test]
fn start_refuses_an_unknown_context_and_a_namespace_the_real_cluster_lacks() {
    let Some(cluster) = Cluster::from_env() else {
        return;
    };
    let sandbox = Sandbox::new();
    let start = |namespace: &str, context: &str| {
        let mut args = sandbox.start_args();
        let ns = args.iter().position(|a| a == "--namespace").unwrap() + 1;
        args[ns] = namespace.to_string();
        args.extend(["--context".into(), format!("staging={context}")]);
        let mut cmd = sandbox.canary_command(&args.iter().map(String::as_str).collect::<Vec<_>>());
        cmd.env("KUBECONFIG", &cluster.kubeconfig)
            .stdin(Stdio::null());
        Output::new(&["start"], cmd.output().unwrap())
    };
    let out = start(&cluster.namespace, "canary-test-no-such-context");
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("(context canary-test-no-such-context): no such context in the kubeconfig"),
        "{out}"
    );
    let missing = format!("{}-missing", cluster.namespace);
    let out = start(&missing, &cluster.context);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "namespace {missing} does not exist in this cluster"
        )),
        "{out}"
    );
    assert!(sandbox.journal_bytes().is_none(), "nothing journaled");
    start(&cluster.namespace, &cluster.context).ok();
}

#[test]
fn the_documented_role_is_enough_on_a_real_cluster_and_a_missing_verb_is_named() {
    let Some(cluster) = Cluster::from_env() else {
        return;
    };
    let ns = cluster.namespace.clone();
    // docs/cluster.md's Role, in the test's namespace, bound to a service account of its own.
    let mut roles = documented_roles();
    for role in &mut roles {
        role["metadata"]["namespace"] = json!(ns);
        // The rule that reads the namespace names it.
        for rule in role["rules"].as_array_mut().unwrap() {
            if rule.get("resourceNames").is_some() {
                rule["resourceNames"] = json!([ns]);
            }
        }
    }
    let apply = |roles: &[Value]| {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": roles});
        cluster.kubectl(&["apply", "-f", "-"], Some(&list.to_string()));
    };
    apply(&roles);
    cluster.kubectl(&["-n", &ns, "create", "serviceaccount", "canary"], None);
    cluster.kubectl(
        &[
            "-n",
            &ns,
            "create",
            "rolebinding",
            "canary-test",
            "--role",
            "canary",
            "--serviceaccount",
            &format!("{ns}:canary"),
        ],
        None,
    );
    let token = cluster.kubectl(&["-n", &ns, "create", "token", "canary"], None);
    let sandbox = Sandbox::new();
    let as_canary = cluster.kubeconfig_as(&sandbox.home, json!({"token": token.trim()}));
    let canary = cluster.release(&sandbox, as_canary);
    while sandbox.phase() != "deploy-v2" {
        cluster.sync(&sandbox.repo);
        canary(&["next", SERVICE, "--yes", "--timeout", "2m"]).ok();
    }
    canary(&["verify", SERVICE]).ok();
    canary(&["weight", SERVICE, "staging", "30", "--live", "--yes"]).ok();
    cluster.sync(&sandbox.repo);

    // Without `watch` on pods, a deploy that has to wait is refused, in one line.
    for rule in roles[0]["rules"].as_array_mut().unwrap() {
        if rule["resources"]
            .as_array()
            .unwrap()
            .contains(&json!("pods"))
        {
            rule["verbs"] = json!(["list"]);
            rule["resources"] = json!(["pods"]);
        }
    }
    roles[0]["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({"apiGroups": [""], "resources": ["services"], "verbs": ["list", "watch"]}));
    apply(&roles);
    // Back to a deploy the cluster does not show: a staging weight test moves its files.
    canary(&["weight", SERVICE, "staging", "10", "--yes"]).ok();
    let wanted =
        format!("forbidden by the cluster's RBAC: canary may not watch pods in namespace {ns}");
    // RBAC's caches take a moment to see the new Role.
    let mut out = canary(&["next", SERVICE, "--yes", "--timeout", "10s"]);
    for _ in 0..10 {
        if out.stderr.contains(&wanted) {
            break;
        }
        out = canary(&["next", SERVICE, "--yes", "--timeout", "10s"]);
    }
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.lines().last().unwrap().contains(&wanted),
        "{out}"
    );
}

#[test]
fn verify_makes_the_same_requests_in_a_crowded_real_namespace() {
    let Some(cluster) = Cluster::from_env() else {
        return;
    };
    // canary reaches the cluster through `kubectl proxy` and a forwarder that writes down the
    // request line of every request it passes on.
    let mut proxy = Command::new("kubectl")
        .env("KUBECONFIG", &cluster.kubeconfig)
        .args(["--context", &cluster.context, "proxy", "--port=0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("kubectl on PATH");
    let mut banner = String::new();
    std::io::BufReader::new(proxy.stdout.take().unwrap())
        .read_line(&mut banner)
        .unwrap();
    let upstream = banner.trim().rsplit(' ').next().unwrap().to_string();
    let (url, requests) = counting_forwarder(upstream);
    let sandbox = Sandbox::new();
    let through_proxy = cluster.kubeconfig_as(&sandbox.home, json!({}));
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(&through_proxy).unwrap()).unwrap();
    config["clusters"][0]["cluster"] = json!({"server": url});
    std::fs::write(&through_proxy, config.to_string()).unwrap();
    let canary = cluster.release(&sandbox, through_proxy);
    while sandbox.phase() != "deploy-v2" {
        cluster.sync(&sandbox.repo);
        canary(&["next", SERVICE, "--yes", "--timeout", "2m"]).ok();
    }
    let verify = || {
        let before = requests.lock().unwrap().len();
        canary(&["verify", SERVICE, "--env", "staging"]).ok();
        requests.lock().unwrap()[before..].to_vec()
    };
    let alone = verify();
    let mut others = Vec::new();
    for i in 0..500 {
        let name = format!("other-{i}");
        let meta = json!({"name": name, "namespace": cluster.namespace, "labels": {"app": name}});
        others.push(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": 0, "paused": true, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "x", "image": "registry.invalid/none:0"}]}}}}));
        others.push(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": meta,
            "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}}),
        );
        others.push(json!({"apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
            "metadata": meta, "spec": {"hosts": [name], "http": [{"route": [{"destination": {"host": name}}]}]}}));
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "items": others});
    cluster.kubectl(&["apply", "-f", "-"], Some(&list.to_string()));
    let crowded = verify();
    let _ = proxy.kill();
    let _ = proxy.wait();
    assert_eq!(alone, crowded);
    assert_eq!(alone.len(), 8, "{alone:#?}");
}

/// A loopback HTTP/1.1 forwarder to `upstream` that records each request line; returns its URL.
fn counting_forwarder(upstream: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let server = TcpStream::connect(&upstream).unwrap();
            let (mut back_from, mut back_to) =
                (server.try_clone().unwrap(), client.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut back_from, &mut back_to));
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(client);
                let mut server = server;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    seen.lock().unwrap().push(line.trim().to_string());
                    let mut length = 0;
                    let mut head = line;
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:")
                        {
                            length = v.trim().parse().unwrap();
                        }
                        head.push_str(&header);
                        if header.trim().is_empty() {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    if server
                        .write_all(head.as_bytes())
                        .and_then(|()| server.write_all(&body))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, requests)
}

impl Cluster {
    /// Argo CD's Application CRD, unless the cluster has it. Server-side: the CRD is too large
    /// for the annotation that a client-side apply keeps.
    fn install_argocd_crd(&self) {
        let crd = "applications.argoproj.io";
        if self.has(&["get", "crd", crd]) {
            return;
        }
        let fixture = common::fixtures().join("argocd/application-crd.yaml");
        self.kubectl(
            &["apply", "--server-side", "-f", fixture.to_str().unwrap()],
            None,
        );
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
    let Some(cluster) = Cluster::from_env() else {
        return;
    };
    cluster.install_argocd_crd();
    let sandbox = Sandbox::new();
    let head = || sandbox.git(&["rev-parse", "HEAD"]).trim().to_string();
    let seed = head();
    // In the test's namespace, where no Argo CD reconciles it: the test plays Argo CD.
    let name = format!("{SERVICE}-staging");
    let application = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": name, "namespace": cluster.namespace},
        "spec": {"project": "default",
                 "source": {"repoURL": sandbox.remote.to_str().unwrap(), "path": "gap/staging"},
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
    let canary = cluster.release(&sandbox, cluster.kubeconfig.clone());
    let app = format!("{}/{name}", cluster.namespace);
    canary(&[
        "context",
        SERVICE,
        "staging",
        &cluster.context,
        "--argocd",
        &app,
    ])
    .ok();

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

    // Deploying another namespace, it is not this release's Application.
    patch_status(r#"{"spec": {"destination": {"namespace": "elsewhere"}}}"#.to_string());
    let out = canary(&["verify", SERVICE, "--env", "staging"]);
    assert_eq!(out.code, 1, "{out}");
    let wanted = "deploys to namespace elsewhere (spec.destination.namespace)";
    assert!(
        out.stdout.contains("error[argocd-app-differs]") && out.stdout.contains(wanted),
        "{out}"
    );
    let out = canary(&[
        "context",
        SERVICE,
        "staging",
        &cluster.context,
        "--argocd",
        &app,
    ]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains(wanted), "{out}");
}
