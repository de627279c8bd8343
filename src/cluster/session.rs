//! A connection to one environment's cluster through the user's kubeconfig, as kubectl makes
//! it: `KUBECONFIG` (several files merged) or `~/.kube/config`, and the named context. Each
//! session owns a single-threaded tokio runtime, created here and nowhere else.
//!
//! Every read names its objects (a name, or web-v1's label selector), so that its cost is the
//! same in a namespace that holds 500 other Deployments; and a wait watches exactly those
//! objects from the resource version it read them at.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment as KubeDeployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Pod as KubePod, Service};
use kube::api::{
    Api, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, KubeconfigError};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde_json::{Value, json};
use tokio::sync::{OnceCell, mpsc};
use tokio::task::JoinSet;

use super::argocd::{self, AppRef, AppStatus};
use super::expect::{Expected, string_map};
use super::{
    ClusterError, Container, Deployment, ISTIO_NETWORKING, ISTIO_SECURITY, Pod, Policy, Problem,
    Snapshot, Target, digest_of, live_weights, newest_understood,
};

/// A request that has not answered in this time is taken as an unreachable cluster.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// The server ends each watch after this long, well inside [`READ_TIMEOUT`]; canary then
/// watches on from the last version it saw.
const WATCH_SECONDS: u32 = 20;

pub struct Session {
    target: Target,
    runtime: tokio::runtime::Runtime,
    client: Client,
    /// The Istio API versions this cluster serves, asked once, when first needed.
    istio: OnceCell<Istio>,
}

/// The kinds canary reads, at the version the cluster serves.
struct Istio {
    destination_rule: ApiResource,
    virtual_service: ApiResource,
    authorization_policy: ApiResource,
}

/// One set of objects canary reads and watches: a kind, and a name or label selector.
#[derive(Debug, Clone, PartialEq)]
struct Lookup {
    resource: ApiResource,
    selector: Selector,
    /// Its namespace when not the release's: an Argo CD Application's.
    namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Selector {
    Name(String),
    Labels(String),
}

/// A read of every object an environment's files speak of, with the resource version of each
/// read, from which a wait watches.
struct Reading {
    snapshot: Snapshot,
    lookups: Vec<(Lookup, String)>,
}

/// What a watch tells the wait.
enum Change {
    /// An object changed: read again.
    Changed,
    /// The server no longer has the version the watch started from (410 Gone): read and watch
    /// anew.
    Expired,
}

impl Session {
    pub fn connect(target: &Target) -> Result<Session, ClusterError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| target.error(Problem::Other(format!("cannot start a runtime: {e}"))))?;
        let options = KubeConfigOptions {
            context: Some(target.context.clone()),
            ..KubeConfigOptions::default()
        };
        let client = runtime
            .block_on(async {
                let mut config = Config::from_kubeconfig(&options)
                    .await
                    .map_err(kubeconfig_problem)?;
                config.read_timeout = Some(READ_TIMEOUT);
                // The client spawns its request buffer on the runtime it is built in.
                Client::try_from(config).map_err(|e| problem(e, None))
            })
            .map_err(|p| target.error(p))?;
        Ok(Session {
            target: target.clone(),
            runtime,
            client,
            istio: OnceCell::new(),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Read every object the environment's files speak of.
    pub fn snapshot(&self, expected: &Expected) -> Result<Snapshot, ClusterError> {
        self.runtime
            .block_on(self.read(expected))
            .map(|reading| reading.snapshot)
            .map_err(|p| self.target.error(p))
    }

    /// Read the environment, then again each time one of its objects changes, until `done`
    /// says so (`true`) or `timeout` passes (`false`).
    pub fn wait(
        &self,
        expected: &Expected,
        timeout: Duration,
        mut done: impl FnMut(&Snapshot) -> bool,
    ) -> Result<bool, ClusterError> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.runtime
            .block_on(async {
                let mut reading = self.read(expected).await?;
                loop {
                    if done(&reading.snapshot) {
                        return Ok(true);
                    }
                    // Watch from the versions just read: nothing that changes after the read
                    // goes unseen.
                    let watched = reading.lookups.clone();
                    if watched.is_empty() {
                        // Nothing read, nothing to watch: no change can make `done` say yes.
                        tokio::time::sleep_until(deadline).await;
                        return Ok(false);
                    }
                    let (changes, mut receive) = mpsc::unbounded_channel();
                    let mut watches = JoinSet::new();
                    for (lookup, version) in &watched {
                        watches.spawn(self.watch(lookup.clone(), version.clone(), changes.clone()));
                    }
                    drop(changes);
                    loop {
                        let Ok(change) = tokio::time::timeout_at(deadline, receive.recv()).await
                        else {
                            return Ok(false);
                        };
                        // `None`: every watch has ended, and a watch ends only after sending
                        // why (an error, returned below, or an expiry); read and watch again.
                        let mut expired = matches!(change, Some(Ok(Change::Expired)) | None);
                        if let Some(Err(p)) = change {
                            return Err(p);
                        }
                        // One read answers every change that arrived meanwhile.
                        while let Ok(change) = receive.try_recv() {
                            expired |= matches!(change?, Change::Expired);
                        }
                        reading = self.read(expected).await?;
                        if expired || !same_lookups(&reading.lookups, &watched) {
                            break;
                        }
                        if done(&reading.snapshot) {
                            return Ok(true);
                        }
                    }
                }
            })
            .map_err(|p| self.target.error(p))
    }

    /// The release's namespace is in the cluster (a GET of it by name).
    pub fn check_namespace(&self) -> Result<(), ClusterError> {
        self.runtime
            .block_on(self.namespace_exists())
            .map_err(|p| self.target.error(p))
    }

    async fn namespace_exists(&self) -> Result<(), Problem> {
        let ns = &self.target.namespace;
        match Api::<Namespace>::all(self.client.clone()).get(ns).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                Err(Problem::NoNamespace(ns.clone()))
            }
            // RBAC grants `get` on a namespace only through a Role in it: where the namespace
            // does not exist, neither does the Role, and the answer is 403 too.
            Err(e) => Err(problem(
                e,
                Some(&format!(
                    "canary may not get namespaces in namespace {ns} (if {ns} does not exist, no \
                     Role there can grant it)"
                )),
            )),
        }
    }

    /// The live VirtualService's spec.
    pub fn virtual_service(&self, name: &str) -> Result<Value, ClusterError> {
        self.runtime
            .block_on(self.get_virtual_service(name))
            .map(|o| o.data["spec"].clone())
            .map_err(|p| self.target.error(p))
    }

    /// Set the weights of the live VirtualService's subset destinations with one JSON Patch
    /// that first tests every value it replaces: a concurrent change makes it fail whole.
    /// Returns the weights it replaced.
    pub fn patch_weights(
        &self,
        name: &str,
        weights: &[(&str, u8)],
    ) -> Result<Vec<(String, i64)>, ClusterError> {
        self.runtime
            .block_on(async {
                let current = self.get_virtual_service(name).await?;
                let spec = &current.data["spec"];
                let mut ops = Vec::new();
                for (i, http) in spec["http"].as_array().into_iter().flatten().enumerate() {
                    for (j, dest) in http["route"].as_array().into_iter().flatten().enumerate() {
                        let subset = &dest["destination"]["subset"];
                        let Some(&(_, weight)) = weights.iter().find(|(s, _)| subset == *s) else {
                            continue;
                        };
                        let at = format!("/spec/http/{i}/route/{j}");
                        ops.push(json!({"op": "test", "path": format!("{at}/destination/subset"), "value": subset}));
                        ops.push(match dest.get("weight") {
                            Some(w) => json!({"op": "test", "path": format!("{at}/weight"), "value": w}),
                            None => json!({"op": "test", "path": format!("{at}/destination"), "value": dest["destination"]}),
                        });
                        ops.push(json!({"op": "add", "path": format!("{at}/weight"), "value": weight}));
                    }
                }
                if ops.is_empty() {
                    return Err(Problem::Other(format!(
                        "VirtualService {name} routes to none of the subsets v1, v2"
                    )));
                }
                let patch: json_patch::Patch =
                    serde_json::from_value(Value::Array(ops)).expect("well-formed JSON Patch");
                let resource = &self.istio().await?.virtual_service;
                self.api(resource)
                    .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
                    .await
                    .map_err(|e| match self.problem(e, "patch", resource) {
                        Problem::Conflict(why) => Problem::Conflict(format!(
                            "VirtualService {name} changed since canary read it ({why}); nothing \
                             was changed: look at it and run this again"
                        )),
                        other => other,
                    })?;
                Ok(live_weights(spec))
            })
            .map_err(|p| self.target.error(p))
    }

    async fn get_virtual_service(&self, name: &str) -> Result<DynamicObject, Problem> {
        let lookup = Lookup {
            resource: self.istio().await?.virtual_service.clone(),
            selector: Selector::Name(name.to_string()),
            namespace: None,
        };
        let (mut found, _) = self.list(&lookup).await?;
        found.pop().ok_or_else(|| {
            Problem::NotFound(format!(
                "VirtualService {name} in namespace {}",
                self.target.namespace
            ))
        })
    }

    async fn read(&self, expected: &Expected) -> Result<Reading, Problem> {
        let istio = self.istio().await?;
        let named = |resource: &ApiResource, name: &str| Lookup {
            resource: resource.clone(),
            selector: Selector::Name(name.to_string()),
            namespace: None,
        };
        let deployments = ApiResource::erase::<KubeDeployment>(&());
        let mut lookups = Vec::new();
        let mut one = async |lookup: Lookup| -> Result<Option<DynamicObject>, Problem> {
            let (mut found, version) = self.list(&lookup).await?;
            lookups.push((lookup, version));
            Ok(found.pop())
        };
        let web = one(named(&deployments, &expected.web)).await?;
        let web_v1 = one(named(&deployments, &expected.web_v1)).await?;
        let service = one(named(
            &ApiResource::erase::<Service>(&()),
            &expected.service,
        ))
        .await?;
        let destination_rule = one(named(
            &istio.destination_rule,
            &expected.destination_rule_name,
        ))
        .await?;
        let virtual_service = one(named(
            &istio.virtual_service,
            &expected.virtual_service_name,
        ))
        .await?;
        // gap names web-v1's policy after its Deployment.
        let policy = one(named(&istio.authorization_policy, &expected.web_v1)).await?;
        let application = match &expected.argocd {
            Some(wanted) => one(application_lookup(&wanted.app))
                .await
                .map_err(argocd_not_served)?
                .map(|app| application_value(&app))
                .transpose()?
                .map(|app| AppStatus::read(&app)),
            None => None,
        };

        let web_v1 = web_v1
            .map(typed::<KubeDeployment>)
            .transpose()?
            .map(deployment);
        let web = web
            .map(typed::<KubeDeployment>)
            .transpose()?
            .map(deployment);
        if web.is_none() {
            // No web Deployment: say so when the cause is a namespace that is not there.
            self.namespace_exists().await?;
        }
        let v1_pods = self.pods(web_v1.as_ref(), &mut lookups).await?;
        // Which image web's pods run matters only to v2's code deploy.
        let web_pods = match expected.v2_code {
            Some(_) => self.pods(web.as_ref(), &mut lookups).await?,
            None => Vec::new(),
        };
        let spec = |o: Option<DynamicObject>| o.map(|o| o.data["spec"].clone());
        let snapshot = Snapshot {
            web,
            web_v1,
            v1_pods,
            web_pods,
            service_selector: service
                .map(typed::<Service>)
                .transpose()?
                .map(|s| s.spec.and_then(|s| s.selector).unwrap_or_default()),
            destination_rule: spec(destination_rule),
            virtual_service: spec(virtual_service),
            policies: policy
                .into_iter()
                .map(|o| Policy {
                    name: o.metadata.name.unwrap_or_default(),
                    match_labels: string_map(&o.data["spec"]["selector"]["matchLabels"]),
                    spec: o.data["spec"].clone(),
                })
                .collect(),
            application,
        };
        Ok(Reading { snapshot, lookups })
    }

    /// The pods a Deployment selects (none without a selector), read by label.
    async fn pods(
        &self,
        deployment: Option<&Deployment>,
        lookups: &mut Vec<(Lookup, String)>,
    ) -> Result<Vec<Pod>, Problem> {
        let Some(d) = deployment.filter(|d| !d.selector.is_empty()) else {
            return Ok(Vec::new());
        };
        let selector: Vec<String> = d.selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let lookup = Lookup {
            resource: ApiResource::erase::<KubePod>(&()),
            selector: Selector::Labels(selector.join(",")),
            namespace: None,
        };
        let (pods, version) = self.list(&lookup).await?;
        lookups.push((lookup, version));
        pods.into_iter()
            .map(|p| Ok(pod(typed::<KubePod>(p)?)))
            .collect()
    }

    /// The objects a lookup selects, and the version of the list.
    async fn list(&self, lookup: &Lookup) -> Result<(Vec<DynamicObject>, String), Problem> {
        let params = match &lookup.selector {
            Selector::Name(name) => ListParams::default().fields(&format!("metadata.name={name}")),
            Selector::Labels(labels) => ListParams::default().labels(labels),
        };
        let namespace = lookup.namespace.as_deref();
        let list = self
            .api_in(&lookup.resource, namespace)
            .list(&params)
            .await
            .map_err(|e| {
                problem(
                    e,
                    Some(&self.forbidden_in("list", &lookup.resource, namespace)),
                )
            })?;
        Ok((
            list.items,
            list.metadata.resource_version.unwrap_or_default(),
        ))
    }

    /// Tell `changes` of every change to the objects of `lookup` after `version`, for as long
    /// as the wait listens; the server's ends of a watch are resumed where they stopped.
    fn watch(
        &self,
        lookup: Lookup,
        mut version: String,
        changes: mpsc::UnboundedSender<Result<Change, Problem>>,
    ) -> impl Future<Output = ()> + use<> {
        let namespace = lookup.namespace.as_deref();
        let api = self.api_in(&lookup.resource, namespace);
        let forbidden = self.forbidden_in("watch", &lookup.resource, namespace);
        let mut params = WatchParams::default().timeout(WATCH_SECONDS);
        params = match &lookup.selector {
            Selector::Name(name) => params.fields(&format!("metadata.name={name}")),
            Selector::Labels(labels) => params.labels(labels),
        };
        async move {
            use futures_util::StreamExt;
            let mut pause = Duration::ZERO;
            loop {
                let started = Instant::now();
                let stream = match api.watch(&params, &version).await {
                    Ok(stream) => stream,
                    Err(e) => {
                        let _ = changes.send(Err(problem(e, Some(&forbidden))));
                        return;
                    }
                };
                let mut stream = std::pin::pin!(stream);
                let mut heard = false;
                while let Some(event) = stream.next().await {
                    let change = match event {
                        Ok(
                            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o),
                        ) => {
                            version = o.metadata.resource_version.unwrap_or(version);
                            Change::Changed
                        }
                        Ok(WatchEvent::Bookmark(b)) => {
                            version = b.metadata.resource_version;
                            heard = true;
                            continue;
                        }
                        Ok(WatchEvent::Error(status)) if status.code == 410 => Change::Expired,
                        Ok(WatchEvent::Error(status)) => {
                            let _ = changes
                                .send(Err(problem(kube::Error::Api(status), Some(&forbidden))));
                            return;
                        }
                        // A connection cut mid-stream: watch again from the last version.
                        Err(_) => break,
                    };
                    heard = true;
                    let expired = matches!(change, Change::Expired);
                    if changes.send(Ok(change)).is_err() || expired {
                        return;
                    }
                }
                // A server that ends watches at once, again and again, is given some rest.
                pause = if heard || started.elapsed() > Duration::from_secs(1) {
                    Duration::ZERO
                } else {
                    (pause * 2).clamp(Duration::from_millis(50), Duration::from_secs(2))
                };
                tokio::time::sleep(pause).await;
            }
        }
    }

    /// The Istio kinds at the newest version that both the cluster and canary know, from the
    /// API server's discovery document (one request, which every authenticated user may make).
    async fn istio(&self) -> Result<&Istio, Problem> {
        self.istio
            .get_or_try_init(async || {
                let groups = self
                    .client
                    .list_api_groups()
                    .await
                    .map_err(|e| problem(e, None))?;
                let version = |group: &str| {
                    let served = groups.groups.iter().find(|g| g.name == group);
                    let Some(served) = served else {
                        return Err(Problem::CrdsMissing(group.to_string()));
                    };
                    let versions: Vec<String> =
                        served.versions.iter().map(|v| v.version.clone()).collect();
                    newest_understood(group, &versions)
                };
                let networking = version(ISTIO_NETWORKING)?;
                let security = version(ISTIO_SECURITY)?;
                let kind = |group: &str, version: &str, kind: &str, plural: &str| {
                    ApiResource::from_gvk_with_plural(
                        &GroupVersionKind::gvk(group, version, kind),
                        plural,
                    )
                };
                Ok(Istio {
                    destination_rule: kind(
                        ISTIO_NETWORKING,
                        &networking,
                        "DestinationRule",
                        "destinationrules",
                    ),
                    virtual_service: kind(
                        ISTIO_NETWORKING,
                        &networking,
                        "VirtualService",
                        "virtualservices",
                    ),
                    authorization_policy: kind(
                        ISTIO_SECURITY,
                        &security,
                        "AuthorizationPolicy",
                        "authorizationpolicies",
                    ),
                })
            })
            .await
    }

    fn api(&self, resource: &ApiResource) -> Api<DynamicObject> {
        self.api_in(resource, None)
    }

    /// In `namespace`, or the release's.
    fn api_in(&self, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        let namespace = namespace.unwrap_or(&self.target.namespace);
        Api::namespaced_with(self.client.clone(), namespace, resource)
    }

    fn forbidden_in(&self, verb: &str, resource: &ApiResource, namespace: Option<&str>) -> String {
        let plural = if resource.group.is_empty() {
            resource.plural.clone()
        } else {
            format!("{}.{}", resource.plural, resource.group)
        };
        format!(
            "canary may not {verb} {plural} in namespace {}",
            namespace.unwrap_or(&self.target.namespace)
        )
    }

    fn problem(&self, e: kube::Error, verb: &str, resource: &ApiResource) -> Problem {
        problem(e, Some(&self.forbidden_in(verb, resource, None)))
    }

    /// The Argo CD Application, read by name; `None` when the cluster has no such Application.
    pub fn application(&self, app: &AppRef) -> Result<Option<Value>, ClusterError> {
        self.runtime
            .block_on(async {
                let (mut found, _) = self
                    .list(&application_lookup(app))
                    .await
                    .map_err(argocd_not_served)?;
                found.pop().map(|app| application_value(&app)).transpose()
            })
            .map_err(|p| self.target.error(p))
    }
}

/// The Lease that holds a release for one runner (`cluster::lease`), in the release's
/// namespace. A conflict (someone else wrote it first) is `Ok(false)`, not an error.
impl Session {
    pub fn lease(&self, name: &str) -> Result<Option<Lease>, ClusterError> {
        self.runtime
            .block_on(self.leases().get_opt(name))
            .map_err(|e| self.target.error(self.lease_problem(e, "get")))
    }

    pub fn create_lease(&self, lease: &Lease) -> Result<bool, ClusterError> {
        let created = self
            .runtime
            .block_on(self.leases().create(&PostParams::default(), lease));
        self.written(created, "create")
    }

    /// Replace the Lease as it was read (its resourceVersion is the precondition).
    pub fn replace_lease(&self, lease: &Lease) -> Result<bool, ClusterError> {
        let name = lease.metadata.name.clone().unwrap_or_default();
        let replaced =
            self.runtime
                .block_on(self.leases().replace(&name, &PostParams::default(), lease));
        self.written(replaced, "update")
    }

    fn leases(&self) -> Api<Lease> {
        Api::namespaced(self.client.clone(), &self.target.namespace)
    }

    fn written(
        &self,
        result: Result<Lease, kube::Error>,
        verb: &str,
    ) -> Result<bool, ClusterError> {
        match result {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(self.target.error(self.lease_problem(e, verb))),
        }
    }

    fn lease_problem(&self, e: kube::Error, verb: &str) -> Problem {
        problem(
            e,
            Some(&format!(
                "canary may not {verb} leases.coordination.k8s.io in namespace {}: the Role in \
                 canary's docs/cluster.md grants it",
                self.target.namespace
            )),
        )
    }
}

/// An Argo CD Application, by name, in its own namespace.
fn application_lookup(app: &AppRef) -> Lookup {
    let (group, version) = argocd::API_VERSION.split_once('/').expect("group/version");
    Lookup {
        resource: ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, argocd::KIND),
            argocd::PLURAL,
        ),
        selector: Selector::Name(app.name.clone()),
        namespace: Some(app.namespace.clone()),
    }
}

/// A list by name answers 404 only for a kind the cluster does not serve.
fn argocd_not_served(p: Problem) -> Problem {
    match p {
        Problem::NotFound(_) => Problem::Other(format!(
            "the cluster does not serve Argo CD's {} ({}): is Argo CD installed there? \
             `canary context` can remove the environment's Application (--no-argocd)",
            argocd::KIND,
            argocd::API_VERSION
        )),
        other => other,
    }
}

fn application_value(app: &DynamicObject) -> Result<Value, Problem> {
    serde_json::to_value(app).map_err(|e| {
        Problem::Other(format!(
            "the API server sent an unreadable Application: {e}"
        ))
    })
}

/// Whether a read watches the same objects as the watches that run.
fn same_lookups(now: &[(Lookup, String)], watched: &[(Lookup, String)]) -> bool {
    now.len() == watched.len() && now.iter().zip(watched).all(|((a, _), (b, _))| a == b)
}

fn typed<K: kube::Resource<DynamicType = ()> + serde::de::DeserializeOwned>(
    object: DynamicObject,
) -> Result<K, Problem> {
    object.try_parse::<K>().map_err(|e| {
        Problem::Other(format!(
            "the API server sent an unreadable {}: {e}",
            K::kind(&())
        ))
    })
}

fn deployment(d: KubeDeployment) -> Deployment {
    let spec = d.spec.unwrap_or_default();
    let status = d.status.unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1);
    Deployment {
        name: d.metadata.name.unwrap_or_default(),
        desired,
        ready: status.ready_replicas.unwrap_or(0),
        available: status.available_replicas.unwrap_or(0),
        rolled_out: status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
            && status.updated_replicas.unwrap_or(0) == desired
            && status.replicas.unwrap_or(0) == desired,
        selector: spec.selector.match_labels.unwrap_or_default(),
        pod_labels: spec
            .template
            .metadata
            .and_then(|m| m.labels)
            .unwrap_or_default(),
        containers: spec
            .template
            .spec
            .map(|pod| pod.containers)
            .unwrap_or_default()
            .into_iter()
            .map(|c| Container {
                name: c.name,
                image: c.image,
                env: c
                    .env
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        (
                            e.name,
                            e.value_from.is_none().then(|| e.value.unwrap_or_default()),
                        )
                    })
                    .collect(),
                command: c
                    .command
                    .into_iter()
                    .flatten()
                    .chain(c.args.into_iter().flatten())
                    .collect(),
            })
            .collect(),
    }
}

fn pod(p: KubePod) -> Pod {
    let status = p.status.unwrap_or_default();
    Pod {
        name: p.metadata.name.unwrap_or_default(),
        digests: status
            .container_statuses
            .into_iter()
            .flatten()
            .map(|c| {
                let digest = digest_of(&c.image_id).or_else(|| digest_of(&c.image));
                (c.name, digest)
            })
            .collect(),
    }
}

fn kubeconfig_problem(e: KubeconfigError) -> Problem {
    match e {
        KubeconfigError::LoadContext(_) | KubeconfigError::CurrentContextNotSet => {
            Problem::UnknownContext
        }
        other => Problem::Kubeconfig(chain(&other)),
    }
}

/// What went wrong, in the terms the person can act on; `forbidden` says what RBAC refused,
/// in canary's words, since the server's message differs from version to version.
fn problem(e: kube::Error, forbidden: Option<&str>) -> Problem {
    match e {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            match status.code {
                401 => Problem::Credentials(message),
                403 => Problem::Forbidden(forbidden.map_or(message, str::to_string)),
                404 => Problem::NotFound(message),
                409 | 422 => Problem::Conflict(message),
                code => Problem::Other(format!("the API server answered {code}: {message}")),
            }
        }
        kube::Error::Auth(e) => Problem::Credentials(chain(&e)),
        kube::Error::InferKubeconfig(e) => kubeconfig_problem(e),
        e @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => {
            Problem::Unreachable(chain(&e))
        }
        other => Problem::Other(chain(&other)),
    }
}

/// An error and its causes on one line, each said once.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}
