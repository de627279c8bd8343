//! The cluster: what the repository files say each environment's cluster should hold, what it
//! holds, and the difference between the two as findings.
//!
//! Only `session` speaks to Kubernetes (with kube, behind the `cluster` cargo feature, on by
//! default); without the feature a [`Session`] cannot connect and says so. The rest is plain
//! data and pure comparisons, so that the commands and the tests need no cluster to reason
//! about one. Commands that never talk to a cluster never start the async runtime or TLS: a
//! session creates them when it connects.

mod compare;
mod expect;
pub mod lease;
#[cfg(feature = "cluster")]
mod session;
mod wait;
#[cfg(not(feature = "cluster"))]
mod without;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

pub use compare::{compare, compare_v1};
pub use expect::{Expected, release_deploy};
#[cfg(feature = "cluster")]
pub use session::Session;
pub use wait::{Wait, format_duration, parse_duration, wait_until_matching};
#[cfg(not(feature = "cluster"))]
pub use without::Session;

use crate::argocd;
use crate::settings::Settings;

/// Istio's API groups of the kinds canary reads.
pub const ISTIO_NETWORKING: &str = "networking.istio.io";
pub const ISTIO_SECURITY: &str = "security.istio.io";
/// The Istio versions canary reads and patches, newest first: Istio 1.22 and later serve `v1`,
/// older releases only `v1beta1`; the fields canary uses are the same in both.
pub const ISTIO_VERSIONS: [&str; 2] = ["v1", "v1beta1"];

/// The newest of [`ISTIO_VERSIONS`] that a cluster serves for `group`.
pub fn newest_understood(group: &str, served: &[String]) -> Result<String, Problem> {
    ISTIO_VERSIONS
        .iter()
        .find(|v| served.iter().any(|s| s == *v))
        .map(|v| v.to_string())
        .ok_or_else(|| {
            Problem::Other(format!(
                "the cluster serves {group} only in {}; canary reads {}: upgrade Istio",
                served.join(", "),
                ISTIO_VERSIONS.join(" or ")
            ))
        })
}

/// One environment's cluster: where canary looks, and how it names it in messages.
#[derive(Debug, Clone)]
pub struct Target {
    pub env: String,
    pub context: String,
    pub namespace: String,
}

impl Target {
    /// The environment's target, or `None` when it has no context (deploys confirmed by hand).
    pub fn of(config: &Settings, env: usize) -> Option<Target> {
        let environment = &config.environments[env];
        Some(Target {
            env: environment.name.clone(),
            context: environment.context.clone()?,
            namespace: config.namespace.clone(),
        })
    }

    pub fn error(&self, problem: Problem) -> ClusterError {
        ClusterError {
            env: self.env.clone(),
            context: self.context.clone(),
            problem,
        }
    }
}

/// Talking to an environment's cluster failed: nothing was verified.
#[derive(Debug, thiserror::Error)]
#[error("{env} (context {context}): {problem}")]
pub struct ClusterError {
    pub env: String,
    pub context: String,
    pub problem: Problem,
}

#[derive(Debug)]
pub enum Problem {
    /// This canary was built without the `cluster` feature.
    NotCompiled,
    UnknownContext,
    Kubeconfig(String),
    Unreachable(String),
    /// 401, or a credential plugin that failed: most often an expired token.
    Credentials(String),
    /// 403 from RBAC.
    Forbidden(String),
    /// The API server does not serve this Istio API group.
    CrdsMissing(String),
    /// The release's namespace is not in the cluster.
    NoNamespace(String),
    NotFound(String),
    /// A concurrent change: a failed JSON Patch `test` (422) or a conflict (409).
    Conflict(String),
    Other(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::NotCompiled => write!(
                f,
                "cluster support was not compiled into this canary (built without the `cluster` \
                 feature); rebuild with default features, or pass --no-verify to confirm by hand"
            ),
            Problem::UnknownContext => write!(
                f,
                "no such context in the kubeconfig (KUBECONFIG or ~/.kube/config); \
                 `kubectl config get-contexts` lists them, `canary context` changes it"
            ),
            Problem::Kubeconfig(why) => write!(f, "cannot read the kubeconfig: {why}"),
            Problem::Unreachable(why) => write!(f, "the cluster is unreachable: {why}"),
            Problem::Credentials(why) => write!(
                f,
                "the cluster refused the credentials (expired? log in again): {why}"
            ),
            Problem::Forbidden(why) => write!(
                f,
                "forbidden by the cluster's RBAC: {why}; docs/cluster.md lists the Role canary needs"
            ),
            Problem::CrdsMissing(kind) => write!(
                f,
                "the cluster does not serve {kind}: are Istio's CRDs installed?"
            ),
            Problem::NoNamespace(ns) => write!(
                f,
                "namespace {ns} does not exist in this cluster: is this the cluster, and {ns} the \
                 namespace, the release deploys to? (`kubectl get namespaces` lists them)"
            ),
            Problem::NotFound(what) => write!(f, "{what} not found"),
            Problem::Conflict(why) => write!(f, "changed concurrently: {why}"),
            Problem::Other(why) => f.write_str(why),
        }
    }
}

/// What canary read from one environment's cluster: plain data, compared by [`compare`].
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub web: Option<Deployment>,
    pub web_v1: Option<Deployment>,
    /// The pods the web-v1 Deployment selects.
    pub v1_pods: Vec<Pod>,
    /// The pods the web Deployment selects; read only for v2's code deploy.
    pub web_pods: Vec<Pod>,
    /// The Service's selector; `None` when there is no such Service.
    pub service_selector: Option<BTreeMap<String, String>>,
    /// The DestinationRule's spec, if it exists.
    pub destination_rule: Option<Value>,
    /// The VirtualService's spec, if it exists.
    pub virtual_service: Option<Value>,
    /// Every AuthorizationPolicy of the namespace.
    pub policies: Vec<Policy>,
    /// What the environment's Argo CD Application reports, when the files' expectation names
    /// one and the cluster has it.
    pub application: Option<argocd::AppStatus>,
}

#[derive(Debug, Clone, Default)]
pub struct Deployment {
    pub name: String,
    pub desired: i32,
    pub ready: i32,
    pub available: i32,
    /// The controller has seen the latest spec and every replica runs it.
    pub rolled_out: bool,
    pub selector: BTreeMap<String, String>,
    pub pod_labels: BTreeMap<String, String>,
    /// The pod template's containers: what each replica runs, and how it is started.
    pub containers: Vec<Container>,
}

#[derive(Debug, Clone, Default)]
pub struct Container {
    pub name: String,
    pub image: Option<String>,
    /// `(name, value)` of each variable; `None` for one set through `valueFrom`.
    pub env: Vec<(String, Option<String>)>,
    /// `command` then `args`: the words the container starts with.
    pub command: Vec<String>,
}

impl Container {
    /// The container in gap.yaml's words (`env` of name/value items, `command`), which is
    /// what a coexistence switch reads.
    pub fn as_gap(&self) -> Value {
        let env: Vec<Value> = self
            .env
            .iter()
            .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
            .collect();
        serde_json::json!({"env": env, "command": self.command})
    }
}

#[derive(Debug, Clone, Default)]
pub struct Pod {
    pub name: String,
    /// The `sha256:` digest each container runs (from the status' image ID), by container.
    pub digests: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub name: String,
    /// `spec.selector.matchLabels`; empty selects every workload of the namespace.
    pub match_labels: BTreeMap<String, String>,
    pub spec: Value,
}

/// `(subset, weight)` of every route destination of a VirtualService spec, in order; a lone
/// destination without a weight has 100, as Istio reads it.
pub fn live_weights(spec: &Value) -> Vec<(String, i64)> {
    let mut weights = Vec::new();
    for http in spec["http"].as_array().into_iter().flatten() {
        let route = http["route"].as_array().map_or(&[][..], Vec::as_slice);
        for destination in route {
            if let Some(subset) = destination["destination"]["subset"].as_str() {
                let weight = destination["weight"]
                    .as_i64()
                    .unwrap_or(if route.len() == 1 { 100 } else { 0 });
                weights.push((subset.to_string(), weight));
            }
        }
    }
    weights
}

/// v2's weight in a list of weights, as `status` shows it.
pub fn v2_weight(weights: &[(String, i64)]) -> Option<u8> {
    let (_, w) = weights.iter().find(|(subset, _)| subset == "v2")?;
    u8::try_from(*w).ok()
}

/// `v1 0%, v2 100%`.
pub fn describe_weights(weights: &[(String, i64)]) -> String {
    if weights.is_empty() {
        return "no subset routes".into();
    }
    weights
        .iter()
        .map(|(subset, w)| format!("{subset} {w}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `sha256:…` part of an image reference or a container status' image ID
/// (`docker-pullable://repo@sha256:…`, `repo@sha256:…`).
pub fn digest_of(image_id: &str) -> Option<String> {
    let (_, digest) = image_id.rsplit_once('@')?;
    digest.starts_with("sha256:").then(|| digest.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn weights_are_read_from_every_route_of_the_spec() {
        let spec = json!({"http": [{"route": [
            {"destination": {"host": "h", "subset": "v1"}, "weight": 70},
            {"destination": {"host": "h", "subset": "v2"}, "weight": 30},
        ]}, {"route": [{"destination": {"host": "h", "subset": "v2"}}]}]});
        assert_eq!(
            live_weights(&spec),
            [("v1".into(), 70), ("v2".into(), 30), ("v2".into(), 100)]
        );
        assert_eq!(v2_weight(&live_weights(&spec)), Some(30));
        assert!(
            live_weights(&json!({"http": [{"route": [{"destination": {"host": "h"}}]}]}))
                .is_empty()
        );
    }

    #[test]
    fn the_newest_istio_version_both_sides_know_is_used() {
        let served = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (versions, chosen) in [
            (&["v1", "v1beta1", "v1alpha3"][..], "v1"),
            (&["v1alpha3", "v1beta1"][..], "v1beta1"),
            (&["v1"][..], "v1"),
        ] {
            assert_eq!(
                newest_understood("networking.istio.io", &served(versions)).unwrap(),
                chosen,
                "{versions:?}"
            );
        }
        let refused = newest_understood("security.istio.io", &served(&["v1alpha1"]))
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("only in v1alpha1") && refused.contains("v1 or v1beta1"),
            "{refused}"
        );
    }

    #[test]
    fn digests_come_from_any_form_of_image_id() {
        let hex = "a".repeat(64);
        for id in [
            format!("docker-pullable://registry/x@sha256:{hex}"),
            format!("registry:5000/x@sha256:{hex}"),
        ] {
            assert_eq!(digest_of(&id), Some(format!("sha256:{hex}")), "{id}");
        }
        assert_eq!(digest_of("registry/x:latest"), None);
        assert_eq!(digest_of(&format!("sha256:{hex}")), None);
    }
}
