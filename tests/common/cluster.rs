//! A stand-in for a Kubernetes API server, enough of it for the calls canary makes: get, list
//! with a label selector, JSON Patch (`test` failing with 422), bearer-token auth (401), RBAC
//! (403) and missing Istio CRDs (a bare 404 as the real server gives for an unknown kind), with
//! Status objects as the real one answers. Plain HTTP/1.1 on a std TcpListener, one thread per
//! connection, `Connection: close` after each answer.
//!
//! Also: the objects a GitOps sync of the repository would create ([`synced_objects`]), shared
//! with the opt-in test against a real cluster, and a kubeconfig writer.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

pub const TOKEN: &str = "canary-test-token";
pub const ISTIO_PROXY_DIGEST: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Default)]
pub struct State {
    /// Objects by item path, e.g. `/apis/apps/v1/namespaces/ns/deployments/web`.
    pub objects: BTreeMap<String, Value>,
    /// Answer 403 to everything.
    pub forbidden: bool,
    /// Istio's CRDs are installed (its kinds are served).
    pub istio: bool,
    /// Before applying a patch, change the weights as another person would.
    pub race_on_patch: bool,
    /// `METHOD path` of every request, in order.
    pub requests: Vec<String>,
}

pub struct FakeApiServer {
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

impl FakeApiServer {
    pub fn start() -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            istio: true,
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, &state));
            }
        });
        FakeApiServer { url, state }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Replace every object with these (each put at the path its kind, namespace and name give).
    pub fn set_objects(&self, objects: &[Value]) {
        let mut state = self.state();
        state.objects = objects.iter().map(|o| (item_path(o), o.clone())).collect();
    }

    pub fn object(&self, path: &str) -> Option<Value> {
        self.state().objects.get(path).cloned()
    }

    /// Change an object in place.
    pub fn edit(&self, path: &str, f: impl FnOnce(&mut Value)) {
        let mut state = self.state();
        f(state
            .objects
            .get_mut(path)
            .unwrap_or_else(|| panic!("no object at {path}")));
    }

    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }
}

/// Where the API server keeps an object.
pub fn item_path(object: &Value) -> String {
    let api_version = object["apiVersion"].as_str().unwrap();
    let plural = plural(object["kind"].as_str().unwrap());
    let prefix = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    format!(
        "{prefix}/namespaces/{}/{plural}/{}",
        object["metadata"]["namespace"].as_str().unwrap(),
        object["metadata"]["name"].as_str().unwrap()
    )
}

fn plural(kind: &str) -> String {
    match kind {
        "AuthorizationPolicy" => "authorizationpolicies".into(),
        other => format!("{}s", other.to_lowercase()),
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut length = 0;
    let mut authorization = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "authorization" => authorization = value.trim().to_string(),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let (status, answer) = answer(state, &method, &target, &authorization, &body);
    let text = answer.to_string();
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        if answer.is_string() {
            "text/plain"
        } else {
            "application/json"
        },
        text.len()
    );
    let _ = stream.flush();
}

/// A Status object as the API server sends with an error.
fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

fn answer(
    state: &Mutex<State>,
    method: &str,
    target: &str,
    authorization: &str,
    body: &[u8],
) -> (u16, Value) {
    let mut state = state.lock().unwrap();
    state.requests.push(format!("{method} {target}"));
    if authorization != format!("Bearer {TOKEN}") {
        return status(401, "Unauthorized", "Unauthorized");
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if state.forbidden {
        return status(
            403,
            "Forbidden",
            &format!("{path} is forbidden: User \"tester\" cannot get it"),
        );
    }
    if path.contains(".istio.io/") && !state.istio {
        // What a real API server says for a group it does not serve: not even a Status.
        return (404, Value::String("404 page not found".into()));
    }
    let segments = path.trim_start_matches('/').split('/').count();
    let collection = segments == if path.starts_with("/api/") { 5 } else { 6 };
    match (method, collection) {
        ("GET", true) => {
            let selector = labels(&decode(
                query
                    .split('&')
                    .find_map(|p| p.strip_prefix("labelSelector="))
                    .unwrap_or(""),
            ));
            let prefix = format!("{path}/");
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|(p, o)| {
                    p.starts_with(&prefix)
                        && selector
                            .iter()
                            .all(|(k, v)| o["metadata"]["labels"][k].as_str() == Some(v))
                })
                .map(|(_, o)| o.clone())
                .collect();
            (
                200,
                json!({"apiVersion": "v1", "kind": "List",
                       "metadata": {"resourceVersion": "1"}, "items": items}),
            )
        }
        ("GET", false) => match state.objects.get(path) {
            Some(object) => (200, object.clone()),
            None => not_found(path),
        },
        ("PATCH", false) => {
            if state.race_on_patch
                && let Some(object) = state.objects.get_mut(path)
            {
                object["spec"]["http"][0]["route"][0]["weight"] = json!(42);
            }
            let Some(object) = state.objects.get_mut(path) else {
                return not_found(path);
            };
            let ops: Vec<Value> = serde_json::from_slice(body).expect("a JSON Patch");
            let mut patched = object.clone();
            for op in &ops {
                let pointer = op["path"].as_str().unwrap();
                match op["op"].as_str().unwrap() {
                    "test" if patched.pointer(pointer) != Some(&op["value"]) => {
                        return status(
                            422,
                            "Invalid",
                            &format!(
                                "the server rejected our request: testing value {pointer} failed"
                            ),
                        );
                    }
                    "test" => {}
                    "add" | "replace" => {
                        let (parent, key) = pointer.rsplit_once('/').unwrap();
                        patched.pointer_mut(parent).expect("the parent exists")[key] =
                            op["value"].clone();
                    }
                    other => panic!("canary sent a {other} op"),
                }
            }
            *object = patched.clone();
            (200, patched)
        }
        _ => status(405, "MethodNotAllowed", "not served by the fake API server"),
    }
}

fn not_found(path: &str) -> (u16, Value) {
    let name = path.rsplit('/').next().unwrap_or_default();
    let (code, mut value) = status(404, "NotFound", &format!("\"{name}\" not found"));
    value["details"] = json!({"name": name});
    (code, value)
}

fn labels(selector: &str) -> Vec<(String, String)> {
    selector
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (k, v) = s.split_once('=').expect("only k=v selectors");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Percent-decoding of a query value.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).expect("hex"));
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// A kubeconfig with one cluster, user and context per `(context, server URL)`, token auth.
pub fn kubeconfig(contexts: &[(&str, &str)], token: &str) -> String {
    let mut clusters = String::new();
    let mut users = String::new();
    let mut named = String::new();
    for (context, url) in contexts {
        clusters.push_str(&format!(
            "- name: {context}\n  cluster:\n    server: {url}\n"
        ));
        users.push_str(&format!("- name: {context}\n  user:\n    token: {token}\n"));
        named.push_str(&format!(
            "- name: {context}\n  context:\n    cluster: {context}\n    user: {context}\n"
        ));
    }
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n{clusters}users:\n{users}contexts:\n{named}\
         current-context: {}\n",
        contexts[0].0
    )
}

fn read(repo: &Path, rel: &str) -> Option<String> {
    std::fs::read_to_string(repo.join(rel)).ok()
}

fn first_doc(text: &str, kind: &str) -> Value {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap()
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

/// The objects a GitOps sync of the repository creates for one environment, as a gap sync
/// names them, with the status a healthy cluster gives them: every Deployment rolled out, the
/// web-v1 pod ready and running `v1_digest`.
pub fn synced_objects(
    repo: &Path,
    env: &str,
    namespace: &str,
    service: &str,
    v1_digest: &str,
) -> Vec<Value> {
    let gap: Value = serde_saphyr::from_str(&read(repo, "gap/gap.yaml").unwrap()).unwrap();
    let web = format!("{service}-web");
    let meta = |name: &str| json!({"name": name, "namespace": namespace});
    let mut objects = Vec::new();
    let mut deployment = |name: &str, dep: &Value| {
        let mut labels = json!({"app": name, "applicationName": service});
        for (k, v) in dep["podLabels"].as_object().into_iter().flatten() {
            labels[k] = v.clone();
        }
        objects.push(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": []}}},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                       "readyReplicas": 1, "availableReplicas": 1}
        }));
        labels
    };
    deployment(&web, &gap["deployments"]["web"]);
    if let Some(v1) = gap["deployments"].get("web-v1") {
        let name = format!("{web}-v1");
        let labels = deployment(&name, v1);
        let repository = v1["image"]["repository"].as_str().unwrap();
        objects.push(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("{name}-5d8f7-abcde"), "namespace": namespace,
                         "labels": labels},
            "spec": {"containers": [{"name": "web", "image": format!("{repository}@{v1_digest}")}]},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "web", "image": format!("{repository}@{v1_digest}"),
                     "imageID": format!("docker-pullable://{repository}@{v1_digest}"),
                     "ready": true, "restartCount": 0},
                    {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0",
                     "imageID": format!("docker.io/istio/proxyv2@{ISTIO_PROXY_DIGEST}"),
                     "ready": true, "restartCount": 0}
                ]
            }
        }));
        if v1.get("authorizationPolicy").is_some() {
            objects.push(json!({
                "apiVersion": "security.istio.io/v1beta1", "kind": "AuthorizationPolicy",
                "metadata": meta(&name),
                "spec": {"selector": {"matchLabels": {"app": name}}, "action": "ALLOW",
                         "rules": [{"from": [{"source": {"principals":
                             ["cluster.local/ns/ingress-nginx/sa/ingress-nginx"]}}]}]}
            }));
        }
    }
    let selector = if read(repo, "gap/gap_patch_canary_service.yaml").is_some() {
        json!({"canary": "enabled", "applicationName": service})
    } else {
        json!({"app": web})
    };
    objects.push(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": meta(&web),
        "spec": {"selector": selector, "ports": [{"port": 80}]}
    }));
    if let Some(text) = read(repo, "gap/gap_canary_destination_rule.yaml") {
        let dr = first_doc(&text, "DestinationRule");
        objects.push(json!({
            "apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
            "metadata": meta(dr["metadata"]["name"].as_str().unwrap()), "spec": dr["spec"]
        }));
    }
    let host = format!("{web}.{namespace}.svc.cluster.local");
    let vs_path = format!("gap/{env}/gap_patch_canary_virtual_service.yaml");
    let (name, spec) = match read(repo, &vs_path) {
        Some(text) => {
            let vs = first_doc(&text, "VirtualService");
            (
                vs["metadata"]["name"].as_str().unwrap().to_string(),
                vs["spec"].clone(),
            )
        }
        None => (
            format!("{service}--web"),
            json!({"hosts": [host], "http": [{"route": [{"destination": {"host": host}}]}]}),
        ),
    };
    objects.push(json!({
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": meta(&name), "spec": spec
    }));
    objects
}
