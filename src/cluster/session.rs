//! A connection to one environment's cluster through the user's kubeconfig, as kubectl makes
//! it: `KUBECONFIG` (several files merged) or `~/.kube/config`, and the named context. Each
//! session owns a single-threaded tokio runtime, created here and nowhere else.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment as KubeDeployment;
use k8s_openapi::api::core::v1::{Pod as KubePod, Service};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, KubeconfigError};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, Config};
use serde_json::{Value, json};

use super::argocd::{self, AppRef, AppStatus};
use super::expect::{Expected, string_map};
use super::{
    ClusterError, Deployment, NETWORKING, Pod, Policy, Problem, SECURITY, Snapshot, Target,
    digest_of, live_weights,
};

/// A request that has not answered in this time is taken as an unreachable cluster.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Session {
    target: Target,
    runtime: tokio::runtime::Runtime,
    client: Client,
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
                Client::try_from(config).map_err(problem)
            })
            .map_err(|p| target.error(p))?;
        Ok(Session {
            target: target.clone(),
            runtime,
            client,
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Read every object the environment's files speak of.
    pub fn snapshot(&self, expected: &Expected) -> Result<Snapshot, ClusterError> {
        let ns = &self.target.namespace;
        let client = &self.client;
        self.runtime
            .block_on(async {
                let deployments: Api<KubeDeployment> = Api::namespaced(client.clone(), ns);
                let web = deployments.get_opt(&expected.web).await.map_err(problem)?;
                let web_v1 = deployments
                    .get_opt(&expected.web_v1)
                    .await
                    .map_err(problem)?
                    .map(deployment);
                let v1_pods = match &web_v1 {
                    Some(d) if !d.selector.is_empty() => {
                        let selector: Vec<String> =
                            d.selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        let pods: Api<KubePod> = Api::namespaced(client.clone(), ns);
                        pods.list(&ListParams::default().labels(&selector.join(",")))
                            .await
                            .map_err(problem)?
                            .items
                            .into_iter()
                            .map(pod)
                            .collect()
                    }
                    _ => Vec::new(),
                };
                let services: Api<Service> = Api::namespaced(client.clone(), ns);
                let service_selector = services
                    .get_opt(&expected.service)
                    .await
                    .map_err(problem)?
                    .map(|s| s.spec.and_then(|s| s.selector).unwrap_or_default());
                let spec_of = |objects: Vec<DynamicObject>, name: &str| {
                    objects
                        .into_iter()
                        .find(|o| o.metadata.name.as_deref() == Some(name))
                        .map(|o| o.data["spec"].clone())
                };
                let destination_rule = spec_of(
                    self.list(NETWORKING, "DestinationRule", "destinationrules")
                        .await?,
                    &expected.destination_rule_name,
                );
                let virtual_service = spec_of(
                    self.list(NETWORKING, "VirtualService", "virtualservices")
                        .await?,
                    &expected.virtual_service_name,
                );
                let policies = self
                    .list(SECURITY, "AuthorizationPolicy", "authorizationpolicies")
                    .await?
                    .into_iter()
                    .map(|o| Policy {
                        name: o.metadata.name.unwrap_or_default(),
                        match_labels: string_map(&o.data["spec"]["selector"]["matchLabels"]),
                        spec: o.data["spec"].clone(),
                    })
                    .collect();
                let application = match &expected.argocd {
                    Some(wanted) => self
                        .get_application(&wanted.app)
                        .await?
                        .map(|app| AppStatus::read(&app)),
                    None => None,
                };
                Ok(Snapshot {
                    web: web.map(deployment),
                    web_v1,
                    v1_pods,
                    service_selector,
                    destination_rule,
                    virtual_service,
                    policies,
                    application,
                })
            })
            .map_err(|p| self.target.error(p))
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
                self.istio(NETWORKING, "VirtualService", "virtualservices")
                    .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
                    .await
                    .map_err(|e| match problem(e) {
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
        // Listing first tells a missing CRD (404 on the kind) from a missing object.
        self.list(NETWORKING, "VirtualService", "virtualservices")
            .await?
            .into_iter()
            .find(|o| o.metadata.name.as_deref() == Some(name))
            .ok_or_else(|| {
                Problem::NotFound(format!(
                    "VirtualService {name} in namespace {}",
                    self.target.namespace
                ))
            })
    }

    fn istio(&self, api_version: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
        let (group, version) = api_version.split_once('/').expect("group/version");
        let resource =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        Api::namespaced_with(self.client.clone(), &self.target.namespace, &resource)
    }

    async fn list(
        &self,
        api_version: &str,
        kind: &str,
        plural: &str,
    ) -> Result<Vec<DynamicObject>, Problem> {
        match self
            .istio(api_version, kind, plural)
            .list(&ListParams::default())
            .await
        {
            Ok(list) => Ok(list.items),
            Err(kube::Error::Api(status)) if status.code == 404 => {
                Err(Problem::CrdsMissing(format!("{kind} ({api_version})")))
            }
            Err(e) => Err(problem(e)),
        }
    }

    /// The Argo CD Application, read by name; `None` when the cluster has no such Application.
    pub fn application(&self, app: &AppRef) -> Result<Option<Value>, ClusterError> {
        self.runtime
            .block_on(self.get_application(app))
            .map_err(|p| self.target.error(p))
    }

    async fn get_application(&self, app: &AppRef) -> Result<Option<Value>, Problem> {
        let (group, version) = argocd::API_VERSION.split_once('/').expect("group/version");
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(group, version, argocd::KIND),
            argocd::PLURAL,
        );
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &app.namespace, &resource);
        match api.get(&app.name).await {
            Ok(object) => Ok(Some(serde_json::to_value(object).map_err(|e| {
                Problem::Other(format!("cannot read Argo CD Application {app}: {e}"))
            })?)),
            // A Status that says NotFound: no such Application. A bare 404: no such kind.
            Err(kube::Error::Api(status)) if status.code == 404 && status.reason == "NotFound" => {
                Ok(None)
            }
            Err(kube::Error::Api(status)) if status.code == 404 => Err(Problem::Other(format!(
                "the cluster does not serve Argo CD's {} ({}): is Argo CD installed there? \
                 `canary context` can remove the environment's Application (--no-argocd)",
                argocd::KIND,
                argocd::API_VERSION
            ))),
            Err(e) => Err(problem(e)),
        }
    }
}

fn deployment(d: KubeDeployment) -> Deployment {
    let spec = d.spec.unwrap_or_default();
    let status = d.status.unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1);
    Deployment {
        name: d.metadata.name.unwrap_or_default(),
        desired,
        ready: status.ready_replicas.unwrap_or(0),
        rolled_out: status.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0)
            && status.updated_replicas.unwrap_or(0) == desired
            && status.replicas.unwrap_or(0) == desired,
        selector: spec.selector.match_labels.unwrap_or_default(),
        pod_labels: spec
            .template
            .metadata
            .and_then(|m| m.labels)
            .unwrap_or_default(),
    }
}

fn pod(p: KubePod) -> Pod {
    let status = p.status.unwrap_or_default();
    Pod {
        name: p.metadata.name.unwrap_or_default(),
        ready: status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True"),
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

/// What went wrong, in the terms the person can act on.
fn problem(e: kube::Error) -> Problem {
    match e {
        kube::Error::Api(status) => {
            let message = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            match status.code {
                401 => Problem::Credentials(message),
                403 => Problem::Forbidden(message),
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
