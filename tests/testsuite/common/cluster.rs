//! A stand-in for a Kubernetes API server, faithful where canary depends on it:
//! - list with label and field selectors (`metadata.name`), and a `resourceVersion` on every
//!   object and list;
//! - watch streams (chunked, one JSON event per line) from a resource version, with the
//!   synthetic ADDED events of a watch from "0", server-side closes (`timeoutSeconds`, or
//!   sooner when a test says so) and `410 Gone` for a version that was compacted;
//! - discovery (`/apis`), with the Istio versions a test chooses served;
//! - RBAC: a Role's rules enforced verb by verb (and name by name where a rule names them),
//!   answered with the API server's 403 Status; a Role grants nothing in a namespace that does
//!   not exist, where the real one could not be;
//! - namespaces, read by name (`GET /api/v1/namespaces/NAME`, which RBAC authorizes in that
//!   namespace), 404 with a Status for one that does not exist;
//! - JSON Patch (`test` failing with 422), bearer-token auth (401), and a bare 404 for an API
//!   group that is not served, as the real server gives.
//!
//! Plain HTTP/1.1 on a std TcpListener, one thread per connection, `Connection: close` after
//! each answer.
//!
//! Also: the objects a GitOps sync of the repository would create ([`synced_objects`]), shared
//! with the opt-in test against a real cluster, and a kubeconfig writer.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const TOKEN: &str = "canary-test-token";
/// Who the token is, in RBAC's messages.
pub const USER: &str = "system:serviceaccount:ci:canary";
/// The image web runs: the build CI deployed last (in coexistence, web-v1's too).
pub const WEB_IMAGE: &str = "sap-ems-base-infra-package-p/gap-images/my-service@sha256:2222222222222222222222222222222222222222222222222222222222222222";
pub const ISTIO_PROXY_DIGEST: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";
/// The fake keeps Istio objects at one version, as an API server keeps one storage version,
/// and serves them at every version it serves.
const ISTIO_STORED: &str = "v1beta1";

/// One rule of a Role: the verbs it allows on resources of API groups, in a namespace.
#[derive(Debug, Clone)]
pub struct Rule {
    pub namespace: String,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
    /// `resourceNames`: empty allows every name.
    pub names: Vec<String>,
}

#[derive(Default)]
pub struct State {
    /// Objects by item path, e.g. `/apis/apps/v1/namespaces/ns/deployments/web`. Tests change
    /// them through [`FakeApiServer::set_objects`] and [`FakeApiServer::edit`], which watches see.
    pub objects: BTreeMap<String, Value>,
    /// `None`: everything is allowed; else only what these rules allow.
    pub rbac: Option<Vec<Rule>>,
    /// The namespaces the cluster has.
    pub namespaces: std::collections::BTreeSet<String>,
    /// Istio's CRDs are installed (its kinds are served).
    pub istio: bool,
    /// The versions of Istio's groups that are served.
    pub istio_versions: Vec<&'static str>,
    /// Before applying a patch, change the weights as another person would.
    pub race_on_patch: bool,
    /// `METHOD path` of every request, in order.
    pub requests: Vec<String>,
    /// End every watch this long after it began, whatever its `timeoutSeconds`.
    pub close_watches_after: Option<Duration>,
    /// Watches from a version older than this are answered 410 Gone.
    pub compacted: u64,
    /// Services the API server's service proxy reaches, by `NAMESPACE/NAME:PORT`: the
    /// `HOST:PORT` on loopback that answers for them.
    pub proxies: BTreeMap<String, String>,
    /// The last resource version given out.
    version: u64,
    /// Every change: its version, the item path, the event type and the object after it.
    changes: Vec<(u64, String, &'static str, Value)>,
}

impl State {
    fn record(&mut self, path: &str, kind: &'static str, mut object: Value) {
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        if kind == "DELETED" {
            self.objects.remove(path);
        } else {
            self.objects.insert(path.to_string(), object.clone());
        }
        self.changes
            .push((self.version, path.to_string(), kind, object));
    }

    /// Drop the change log up to now, as etcd compacts: older watches get 410.
    pub fn compact(&mut self) {
        self.compacted = self.version;
    }
}

pub struct FakeApiServer {
    pub url: String,
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl FakeApiServer {
    pub fn start() -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new((
            Mutex::new(State {
                istio: true,
                istio_versions: vec!["v1", "v1beta1"],
                namespaces: [
                    "default",
                    "kube-system",
                    "istio-system",
                    "argocd",
                    super::NAMESPACE,
                ]
                .map(str::to_string)
                .into(),
                ..State::default()
            }),
            Condvar::new(),
        ));
        let server = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = server.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        FakeApiServer { url, shared }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.0.lock().unwrap()
    }

    /// Replace every object with these (each put at the path its kind, namespace and name
    /// give); a watch sees each object added, changed or deleted.
    pub fn set_objects(&self, objects: &[Value]) {
        let mut state = self.state();
        let wanted: BTreeMap<String, Value> =
            objects.iter().map(|o| (item_path(o), o.clone())).collect();
        let gone: Vec<(String, Value)> = state
            .objects
            .iter()
            .filter(|(p, _)| !wanted.contains_key(*p))
            .map(|(p, o)| (p.clone(), o.clone()))
            .collect();
        for (path, object) in gone {
            state.record(&path, "DELETED", object);
        }
        for (path, object) in wanted {
            match state.objects.get(&path) {
                Some(old) if same_object(old, &object) => {}
                Some(_) => state.record(&path, "MODIFIED", object),
                None => state.record(&path, "ADDED", object),
            }
        }
        self.shared.1.notify_all();
    }

    /// Add these objects beside the others.
    pub fn add_objects(&self, objects: &[Value]) {
        let mut state = self.state();
        for object in objects {
            state.record(&item_path(object), "ADDED", object.clone());
        }
        self.shared.1.notify_all();
    }

    pub fn object(&self, path: &str) -> Option<Value> {
        self.state().objects.get(&stored(path)).cloned()
    }

    /// Change an object in place.
    pub fn edit(&self, path: &str, f: impl FnOnce(&mut Value)) {
        let mut state = self.state();
        let path = stored(path);
        let mut object = state
            .objects
            .get(&path)
            .unwrap_or_else(|| panic!("no object at {path}"))
            .clone();
        f(&mut object);
        state.record(&path, "MODIFIED", object);
        self.shared.1.notify_all();
    }

    pub fn requests(&self) -> Vec<String> {
        self.state().requests.clone()
    }

    /// Wait (for at most 20 s) until a request that `matches` has been made.
    pub fn await_request(&self, matches: impl Fn(&str) -> bool) {
        let until = Instant::now() + Duration::from_secs(20);
        while !self.requests().iter().any(|r| matches(r)) {
            assert!(
                Instant::now() < until,
                "no such request: {:#?}",
                self.requests()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Allow only what these Roles allow (`kind: Role` documents, each with its namespace).
    pub fn enforce_roles(&self, roles: &[Value]) {
        let mut rules = Vec::new();
        for role in roles {
            let namespace = role["metadata"]["namespace"].as_str().unwrap_or_default();
            for rule in role["rules"].as_array().into_iter().flatten() {
                let strings = |key: &str| -> Vec<String> {
                    rule[key]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| v.as_str().unwrap().to_string())
                        .collect()
                };
                rules.push(Rule {
                    namespace: namespace.to_string(),
                    api_groups: strings("apiGroups"),
                    resources: strings("resources"),
                    verbs: strings("verbs"),
                    names: strings("resourceNames"),
                });
            }
        }
        self.state().rbac = Some(rules);
    }
}

/// Equal but for the version the server gave it.
fn same_object(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
        }
        v
    };
    strip(a) == strip(b)
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
    stored(&format!(
        "{prefix}/namespaces/{}/{plural}/{}",
        object["metadata"]["namespace"].as_str().unwrap(),
        object["metadata"]["name"].as_str().unwrap()
    ))
}

fn plural(kind: &str) -> String {
    match kind {
        "AuthorizationPolicy" => "authorizationpolicies".into(),
        other => format!("{}s", other.to_lowercase()),
    }
}

/// A request path split as the API server routes it.
struct Route<'a> {
    /// `""` for the core group.
    group: &'a str,
    version: &'a str,
    namespace: &'a str,
    resource: &'a str,
    name: Option<&'a str>,
}

fn route(path: &str) -> Option<Route<'_>> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => (("", *version), rest),
        ["apis", group, version, rest @ ..] => ((*group, *version), rest),
        _ => return None,
    };
    match rest {
        // A namespace itself: the API server authorizes it as a request in that namespace.
        ["namespaces", namespace] => Some(Route {
            group: group.0,
            version: group.1,
            namespace,
            resource: "namespaces",
            name: Some(namespace),
        }),
        ["namespaces", namespace, resource] => Some(Route {
            group: group.0,
            version: group.1,
            namespace,
            resource,
            name: None,
        }),
        ["namespaces", namespace, resource, name] => Some(Route {
            group: group.0,
            version: group.1,
            namespace,
            resource,
            name: Some(name),
        }),
        _ => None,
    }
}

/// `/api/v1/namespaces/NS/services/NAME:PORT/proxy/REST`: the service proxy's namespace,
/// service and the path it forwards.
fn proxied(path: &str) -> Option<(&str, &str, &str)> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let (namespace, rest) = rest.split_once("/services/")?;
    let (service, rest) = rest.split_once("/proxy")?;
    (!namespace.contains('/') && !service.contains('/')).then_some((namespace, service, rest))
}

/// A GET forwarded to `upstream` as the service proxy forwards it, and its JSON answer.
fn forward(upstream: &str, path: &str, query: &str) -> (u16, Value) {
    let Ok(mut stream) = TcpStream::connect(upstream) else {
        return status(
            503,
            "ServiceUnavailable",
            "no endpoints available for service",
        );
    };
    // HTTP/1.0: the answer comes whole, never chunked.
    let _ = write!(
        stream,
        "GET {path}?{query} HTTP/1.0\r\nHost: {upstream}\r\nAccept: application/json\r\n\r\n"
    );
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(502);
    (
        code,
        serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_string())),
    )
}

/// The path an object is kept at, whatever version of its group a request names.
fn stored(path: &str) -> String {
    match route(path) {
        Some(r) if r.group.ends_with(".istio.io") => path.replacen(
            &format!("/{}/{}/", r.group, r.version),
            &format!("/{}/{ISTIO_STORED}/", r.group),
            1,
        ),
        _ => path.to_string(),
    }
}

/// An object as a request for `version` of its group sees it.
fn served_as(mut object: Value, route: &Route) -> Value {
    if route.group.ends_with(".istio.io") {
        object["apiVersion"] = json!(format!("{}/{}", route.group, route.version));
    }
    object
}

struct Request {
    method: String,
    target: String,
    authorization: String,
    body: Vec<u8>,
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).ok()?;
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
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        target,
        authorization,
        body,
    })
}

fn serve(mut stream: TcpStream, shared: &(Mutex<State>, Condvar)) {
    let Some(request) = read_request(&stream) else {
        return;
    };
    let (status, answer) = match answer(shared, &request) {
        Answer::Once(status, answer) => (status, answer),
        Answer::Watch(watch) => return stream_watch(stream, shared, watch),
    };
    let text = answer.to_string();
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

enum Answer {
    Once(u16, Value),
    Watch(Watch),
}

/// What a watch streams: the objects under `prefix` that `selects`, from `after`.
struct Watch {
    prefix: String,
    selector: Selector,
    /// `None`: from now, after the synthetic ADDED events of what exists.
    after: Option<u64>,
    ends: Instant,
    route_group: String,
    route_version: String,
}

#[derive(Clone)]
struct Selector {
    labels: Vec<(String, String)>,
    name: Option<String>,
}

impl Selector {
    fn selects(&self, object: &Value) -> bool {
        self.labels
            .iter()
            .all(|(k, v)| object["metadata"]["labels"][k].as_str() == Some(v))
            && self
                .name
                .as_ref()
                .is_none_or(|n| object["metadata"]["name"].as_str() == Some(n))
    }
}

fn query<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
}

fn verb(method: &str, name: Option<&str>, watch: bool) -> &'static str {
    match (method, name, watch) {
        ("GET", _, true) => "watch",
        ("GET", Some(_), _) => "get",
        ("GET", None, _) => "list",
        ("PATCH", ..) => "patch",
        ("PUT", ..) => "update",
        ("DELETE", ..) => "delete",
        _ => "create",
    }
}

/// RBAC's answer, worded as the API server words it.
fn forbidden(verb: &str, route: &Route) -> (u16, Value) {
    let qualified = if route.group.is_empty() {
        route.resource.to_string()
    } else {
        format!("{}.{}", route.resource, route.group)
    };
    let named = route
        .name
        .map_or(String::new(), |name| format!(" \"{name}\""));
    let (code, mut value) = status(
        403,
        "Forbidden",
        &format!(
            "{qualified}{named} is forbidden: User \"{USER}\" cannot {verb} resource \"{}\" in API \
             group \"{}\" in the namespace \"{}\"",
            route.resource, route.group, route.namespace
        ),
    );
    value["details"] = json!({"group": route.group, "kind": route.resource});
    if let Some(name) = route.name {
        value["details"]["name"] = json!(name);
    }
    (code, value)
}

fn allowed(state: &State, rules: &[Rule], verb: &str, route: &Route) -> bool {
    // A Role, and its binding, live in a namespace: none where there is no namespace.
    state.namespaces.contains(route.namespace)
        && rules.iter().any(|r| {
            r.namespace == route.namespace
                && (r.names.is_empty()
                    || route.name.is_some_and(|n| r.names.iter().any(|x| x == n)))
                && r.api_groups.iter().any(|g| g == route.group || g == "*")
                && r.resources.iter().any(|x| x == route.resource || x == "*")
                && r.verbs.iter().any(|v| v == verb || v == "*")
        })
}

fn discovery(state: &State) -> Value {
    let group = |name: &str, versions: &[&str]| {
        json!({"name": name,
               "versions": versions.iter()
                   .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
                   .collect::<Vec<_>>(),
               "preferredVersion": {"groupVersion": format!("{name}/{}", versions[0]),
                                    "version": versions[0]}})
    };
    let mut groups = vec![group("apps", &["v1"]), group("argoproj.io", &["v1alpha1"])];
    if state.istio {
        groups.push(group("networking.istio.io", &state.istio_versions));
        groups.push(group("security.istio.io", &state.istio_versions));
    }
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn answer(shared: &(Mutex<State>, Condvar), request: &Request) -> Answer {
    let once = |(code, value): (u16, Value)| Answer::Once(code, value);
    let mut state = shared.0.lock().unwrap();
    let (method, target) = (request.method.as_str(), request.target.as_str());
    state.requests.push(format!("{method} {target}"));
    if request.authorization != format!("Bearer {TOKEN}") {
        return once(status(401, "Unauthorized", "Unauthorized"));
    }
    let (path, query_text) = target.split_once('?').unwrap_or((target, ""));
    // Discovery is open to every authenticated user (the system:discovery ClusterRole).
    if method == "GET" && path == "/apis" {
        return once((200, discovery(&state)));
    }
    if let Some((namespace, service, rest)) = proxied(path) {
        let route = Route {
            group: "",
            version: "v1",
            namespace,
            resource: "services/proxy",
            // As the real API server's RBAC sees it: the port (and scheme) is part of the name.
            name: Some(service),
        };
        if let Some(rules) = &state.rbac
            && !allowed(&state, rules, "get", &route)
        {
            return once(forbidden("get", &route));
        }
        let Some(upstream) = state
            .proxies
            .get(&format!("{namespace}/{service}"))
            .cloned()
        else {
            return once(status(
                404,
                "NotFound",
                &format!("services \"{}\" not found", route.name.unwrap_or_default()),
            ));
        };
        drop(state);
        return once(forward(&upstream, rest, query_text));
    }
    let Some(route) = route(path) else {
        return once((404, Value::String("404 page not found".into())));
    };
    if route.group.ends_with(".istio.io")
        && (!state.istio || !state.istio_versions.contains(&route.version))
    {
        // What a real API server says for a group or version it does not serve: not even a
        // Status.
        return once((404, Value::String("404 page not found".into())));
    }
    let watching = matches!(query(query_text, "watch"), Some("true" | "1"));
    let verb = verb(method, route.name, watching);
    if let Some(rules) = &state.rbac
        && !allowed(&state, rules, verb, &route)
    {
        return once(forbidden(verb, &route));
    }
    if route.resource == "namespaces" {
        let name = route.namespace;
        return once(match (method, state.namespaces.contains(name)) {
            ("GET", true) => (
                200,
                json!({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": name}, "status": {"phase": "Active"}}),
            ),
            ("GET", false) => {
                let (code, mut value) =
                    status(404, "NotFound", &format!("namespaces \"{name}\" not found"));
                value["details"] = json!({"name": name, "kind": "namespaces"});
                (code, value)
            }
            _ => status(405, "MethodNotAllowed", "not served by the fake API server"),
        });
    }
    let selector = Selector {
        labels: labels(&decode(query(query_text, "labelSelector").unwrap_or(""))),
        name: match decode(query(query_text, "fieldSelector").unwrap_or("")).as_str() {
            "" => None,
            fields => match fields.strip_prefix("metadata.name=") {
                Some(name) if !name.contains(',') => Some(name.to_string()),
                _ => {
                    return once(status(
                        400,
                        "BadRequest",
                        &format!("field label not supported by the fake: {fields}"),
                    ));
                }
            },
        },
    };
    let key = stored(path);
    match (method, route.name) {
        ("GET", None) if watching => {
            let after = match query(query_text, "resourceVersion").unwrap_or("") {
                "" | "0" => None,
                v => Some(v.parse().expect("a resource version the fake gave")),
            };
            let seconds: u64 =
                query(query_text, "timeoutSeconds").map_or(1800, |s| s.parse().unwrap());
            let mut lasts = Duration::from_secs(seconds);
            if let Some(sooner) = state.close_watches_after {
                lasts = lasts.min(sooner);
            }
            Answer::Watch(Watch {
                prefix: format!("{key}/"),
                selector,
                after,
                ends: Instant::now() + lasts,
                route_group: route.group.to_string(),
                route_version: route.version.to_string(),
            })
        }
        ("GET", None) => {
            let prefix = format!("{key}/");
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|(p, o)| p.starts_with(&prefix) && selector.selects(o))
                .map(|(_, o)| served_as(o.clone(), &route))
                .collect();
            once((
                200,
                json!({"apiVersion": "v1", "kind": "List",
                       "metadata": {"resourceVersion": state.version.to_string()},
                       "items": items}),
            ))
        }
        ("GET", Some(_)) => once(match state.objects.get(&key) {
            Some(object) => (200, served_as(object.clone(), &route)),
            None => not_found(path),
        }),
        ("PATCH", Some(_)) => {
            let answer = patch(&mut state, &key, &request.body);
            if answer.0 == 200 {
                shared.1.notify_all();
            }
            once((answer.0, served_as(answer.1, &route)))
        }
        // Create and replace, as the API server does them for a Lease: a name taken is 409,
        // and a replace of another resource version than the stored one is 409.
        ("POST", None) => {
            let mut object: Value = serde_json::from_slice(&request.body).expect("a JSON object");
            // As the API server does: the object is in the namespace it was created in.
            object["metadata"]["namespace"] = json!(route.namespace);
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let key = format!("{key}/{name}");
            if state.objects.contains_key(&key) {
                return once(status(
                    409,
                    "AlreadyExists",
                    &format!("{} \"{name}\" already exists", route.resource),
                ));
            }
            state.record(&key, "ADDED", object);
            shared.1.notify_all();
            once((201, state.objects[&key].clone()))
        }
        ("PUT", Some(name)) => {
            let object: Value = serde_json::from_slice(&request.body).expect("a JSON object");
            let Some(stored) = state.objects.get(&key) else {
                return once(not_found(path));
            };
            if object["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"] {
                return once(status(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on {} \"{name}\": the object has been \
                         modified; please apply your changes to the latest version and try again",
                        route.resource
                    ),
                ));
            }
            state.record(&key, "MODIFIED", object);
            shared.1.notify_all();
            once((200, state.objects[&key].clone()))
        }
        _ => once(status(
            405,
            "MethodNotAllowed",
            "not served by the fake API server",
        )),
    }
}

fn patch(state: &mut State, key: &str, body: &[u8]) -> (u16, Value) {
    if state.race_on_patch
        && let Some(object) = state.objects.get(key).cloned()
    {
        let mut raced = object;
        raced["spec"]["http"][0]["route"][0]["weight"] = json!(42);
        state.record(key, "MODIFIED", raced);
    }
    let Some(object) = state.objects.get(key) else {
        return not_found(key);
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
                    &format!("the server rejected our request: testing value {pointer} failed"),
                );
            }
            "test" => {}
            "add" | "replace" => {
                let (parent, key) = pointer.rsplit_once('/').unwrap();
                patched.pointer_mut(parent).expect("the parent exists")[key] = op["value"].clone();
            }
            other => panic!("canary sent a {other} op"),
        }
    }
    state.record(key, "MODIFIED", patched);
    (200, state.objects[key].clone())
}

/// Stream a watch's events as the API server does: chunked, one JSON object per line, until
/// the watch's time is up.
fn stream_watch(mut stream: TcpStream, shared: &(Mutex<State>, Condvar), watch: Watch) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
                Connection: close\r\n\r\n";
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let route = Route {
        group: &watch.route_group,
        version: &watch.route_version,
        namespace: "",
        resource: "",
        name: None,
    };
    let send = |stream: &mut TcpStream, event: Value| {
        let line = format!("{event}\n");
        write!(stream, "{:x}\r\n{line}\r\n", line.len()).and_then(|()| stream.flush())
    };
    let mut state = shared.0.lock().unwrap();
    let mut seen = match watch.after {
        Some(after) if after < state.compacted => {
            let (_, gone) = status(
                410,
                "Expired",
                &format!("too old resource version: {after} ({})", state.compacted),
            );
            drop(state);
            let _ = send(&mut stream, json!({"type": "ERROR", "object": gone}));
            let _ = stream.write_all(b"0\r\n\r\n");
            return;
        }
        Some(after) => after,
        None => {
            let existing: Vec<Value> = state
                .objects
                .iter()
                .filter(|(p, o)| p.starts_with(&watch.prefix) && watch.selector.selects(o))
                .map(|(_, o)| served_as(o.clone(), &route))
                .collect();
            for object in existing {
                if send(&mut stream, json!({"type": "ADDED", "object": object})).is_err() {
                    return;
                }
            }
            state.version
        }
    };
    loop {
        let events: Vec<Value> = state
            .changes
            .iter()
            .filter(|(v, p, _, o)| {
                *v > seen && p.starts_with(&watch.prefix) && watch.selector.selects(o)
            })
            .map(|(_, _, kind, o)| json!({"type": kind, "object": served_as(o.clone(), &route)}))
            .collect();
        seen = state.version;
        for event in events {
            if send(&mut stream, event).is_err() {
                return;
            }
        }
        let now = Instant::now();
        if now >= watch.ends {
            break;
        }
        state = shared.1.wait_timeout(state, watch.ends - now).unwrap().0;
    }
    drop(state);
    let _ = stream.write_all(b"0\r\n\r\n");
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

/// The Roles documented in docs/cluster.md, which the fake enforces and the real-cluster test
/// `canary run` of the usual service with --yes and no bake, until `until`, within
/// `timeout`: a run the tests of the cluster's waits start and kill.
pub fn run_until<'a>(until: &'a str, timeout: &'a str) -> [&'a str; 9] {
    [
        "run",
        super::SERVICE,
        "--yes",
        "--bake",
        "0s",
        "--until",
        until,
        "--timeout",
        timeout,
    ]
}

/// applies.
pub fn documented_roles() -> Vec<Value> {
    roles_in("docs/cluster.md")
}

/// The Roles in the YAML blocks of a document of the repository.
pub fn roles_in(doc: &str) -> Vec<Value> {
    let doc = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(doc))
        .unwrap();
    let mut roles = Vec::new();
    for block in doc.split("```yaml\n").skip(1) {
        let yaml = block.split("```").next().unwrap();
        for object in serde_saphyr::from_multiple::<Value>(yaml).unwrap() {
            if object["kind"] == "Role" {
                roles.push(object);
            }
        }
    }
    assert!(!roles.is_empty(), "no Role in {doc}");
    roles
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
    let mut deployment = |name: &str, dep: &Value, image: &str| {
        let mut labels = json!({"app": name, "applicationName": service});
        for (k, v) in dep["podLabels"].as_object().into_iter().flatten() {
            labels[k] = v.clone();
        }
        // gap's chart: one container, started with the deployment's command and env.
        let mut container = json!({"name": "web", "image": image});
        for key in ["command", "env"] {
            if let Some(value) = dep.get(key) {
                container[key] = value.clone();
            }
        }
        objects.push(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [container]}}},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                       "readyReplicas": 1, "availableReplicas": 1}
        }));
        labels
    };
    // Each Deployment's one replica, ready, with the istio-proxy sidecar.
    let pod = |name: String, labels: Value, image: &str| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"containers": [{"name": "web", "image": image}]},
            "status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [
                    {"name": "web", "image": image,
                     "imageID": format!("docker-pullable://{image}"),
                     "ready": true, "restartCount": 0},
                    {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0",
                     "imageID": format!("docker.io/istio/proxyv2@{ISTIO_PROXY_DIGEST}"),
                     "ready": true, "restartCount": 0}
                ]
            }
        })
    };
    let labels = deployment(&web, &gap["deployments"]["web"], WEB_IMAGE);
    let web_pod = pod(format!("{web}-7c9d4-fghij"), labels, WEB_IMAGE);
    if let Some(v1) = gap["deployments"].get("web-v1") {
        let name = format!("{web}-v1");
        // Pinned in succession; in coexistence web-v1 runs web's image.
        let image = match v1["image"]["repository"].as_str() {
            Some(repository) => format!("{repository}@{v1_digest}"),
            None => WEB_IMAGE.to_string(),
        };
        let labels = deployment(&name, v1, &image);
        objects.push(pod(format!("{name}-5d8f7-abcde"), labels, &image));
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
    objects.push(web_pod);
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

/// A release whose two environments each have a fake cluster, reached through a kubeconfig
/// context of its own: the harness of the cluster and Argo CD tests.
pub struct TwoClusters {
    pub sandbox: super::Sandbox,
    pub staging: FakeApiServer,
    pub production: FakeApiServer,
    pub kubeconfig: std::ffi::OsString,
}

pub const STAGING_CONTEXT: &str = "kind-staging";
pub const PRODUCTION_CONTEXT: &str = "kind-production";

impl TwoClusters {
    /// Two clusters and a kubeconfig file for each, then `canary start` with the arguments
    /// `start_args` makes, plus a `--context` for each environment when `contexts` holds.
    pub fn start(
        contexts: bool,
        start_args: impl FnOnce(&super::Sandbox) -> Vec<String>,
    ) -> TwoClusters {
        let clusters = TwoClusters::new();
        let args = clusters.start_args(contexts, start_args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        clusters.canary(&args).ok();
        clusters
    }

    /// The arguments of `canary start` that `start_args` makes, plus a `--context` for each
    /// environment when `contexts` holds.
    pub fn start_args(
        &self,
        contexts: bool,
        start_args: impl FnOnce(&super::Sandbox) -> Vec<String>,
    ) -> Vec<String> {
        let mut args = start_args(&self.sandbox);
        if contexts {
            for flag in [
                format!("staging={STAGING_CONTEXT}"),
                format!("production={PRODUCTION_CONTEXT}"),
            ] {
                args.extend(["--context".to_string(), flag]);
            }
        }
        args
    }

    /// Two clusters and a kubeconfig file for each, no release yet.
    pub fn new() -> TwoClusters {
        let sandbox = super::Sandbox::new();
        let (staging, production) = (FakeApiServer::start(), FakeApiServer::start());
        let dir = sandbox.home.join(".kube");
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("staging.yaml"), dir.join("production.yaml"));
        std::fs::write(&a, kubeconfig(&[(STAGING_CONTEXT, &staging.url)], TOKEN)).unwrap();
        std::fs::write(
            &b,
            kubeconfig(&[(PRODUCTION_CONTEXT, &production.url)], TOKEN),
        )
        .unwrap();
        TwoClusters {
            kubeconfig: std::env::join_paths([a, b]).unwrap(),
            sandbox,
            staging,
            production,
        }
    }

    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = self.sandbox.canary_command(args);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .stdin(std::process::Stdio::null());
        cmd
    }

    pub fn canary(&self, args: &[&str]) -> super::Output {
        super::Output::new(args, self.command(args).output().expect("running canary"))
    }

    /// `canary ARGS` started in the background, its output thrown away: to be killed.
    pub fn spawn_quiet(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting canary")
    }

    pub fn server(&self, env: &str) -> &FakeApiServer {
        match env {
            "staging" => &self.staging,
            _ => &self.production,
        }
    }

    /// The details of the journal's events of `kind`, oldest first.
    pub fn events(&self, kind: &str) -> Vec<Value> {
        self.sandbox
            .log()
            .into_iter()
            .filter(|e| e["kind"] == kind)
            .map(|e| e["detail"].clone())
            .collect()
    }

    /// The environments of the journal's confirmed deploys, oldest first.
    pub fn confirmed_envs(&self) -> Vec<String> {
        self.events("deploy-confirmed")
            .into_iter()
            .map(|d| d["env"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}
