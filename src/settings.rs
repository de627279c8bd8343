//! What a release is about: the service, its repository, its environments and the pinned v1
//! image, with the checks that keep user input from reaching a generated file unvalidated.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::argocd::AppRef;
use crate::error::{Error, bad_input};
use crate::gate;
use crate::workflow::{Method, PlanVersion, Shape};

/// The default production ramp, from the seed's "progressively increase the weight".
pub const DEFAULT_SCHEDULE: [u8; 6] = [1, 5, 10, 25, 50, 100];
pub const DEFAULT_ENVIRONMENTS: [&str; 2] = ["staging", "production"];
/// The deployment that serves ingress traffic, and its pinned twin.
pub const WEB: &str = "web";
pub const WEB_V1: &str = "web-v1";
/// Who may reach web-v1: the ingress controller, as in the seed.
pub const INGRESS_NAMESPACE: &str = "ingress-nginx";
pub const INGRESS_SERVICE_ACCOUNT: &str = "ingress-nginx";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub name: String,
    /// Public hosts; the in-cluster host is added when files are written.
    pub hosts: Vec<String>,
    /// The kubeconfig context that reaches this environment's cluster; without one, deploys
    /// are confirmed by the operator. Absent from releases journaled before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The Argo CD Application that deploys this environment (it needs a context): a deploy
    /// then also waits until it reports Synced at canary's commit and Healthy. Absent from
    /// releases journaled before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argocd: Option<AppRef>,
    /// Where the metric gate reads this environment's Istio metrics. Absent from releases
    /// journaled before it existed, and where the ramp is judged by the operator alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<gate::Endpoint>,
}

/// An image pinned by digest: `REPOSITORY@sha256:HEX`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub repository: String,
    /// `sha256:` and 64 lower-case hex digits, the form gap.yaml's `tag:` takes.
    pub digest: String,
}

impl std::fmt::Display for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.repository, self.digest)
    }
}

impl std::str::FromStr for Image {
    type Err = Error;

    fn from_str(s: &str) -> Result<Image, Error> {
        let invalid = |why: &str| {
            bad_input(format!(
                "image {s:?} {why}; expected REPOSITORY@sha256:<64 lower-case hex digits>"
            ))
        };
        let (repository, digest) = s.split_once('@').ok_or_else(|| invalid("has no digest"))?;
        let hex = digest
            .strip_prefix("sha256:")
            .ok_or_else(|| invalid("is not pinned by a sha256 digest"))?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(invalid("has a digest that is not 64 lower-case hex digits"));
        }
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b':'))
        };
        if !repository.split('/').all(component_ok) {
            return Err(invalid("has an invalid repository name"));
        }
        Ok(Image {
            repository: repository.to_string(),
            digest: digest.to_string(),
        })
    }
}

/// The flag passed to web's container that selects v1 or v2 (coexistence): an environment
/// variable, or an argument of web's `command`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Switch {
    Env {
        name: String,
        v1: String,
        v2: String,
    },
    Arg {
        v1: String,
        v2: String,
    },
}

/// Which of the two a switch value selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Switch {
    pub fn value(&self, version: Version) -> &str {
        let (Switch::Env { v1, v2, .. } | Switch::Arg { v1, v2 }) = self;
        match version {
            Version::V1 => v1,
            Version::V2 => v2,
        }
    }
}

impl Switch {
    /// The switch's value in a deployment of gap.yaml (its parsed value): the env var's
    /// `value`, or whichever of the two values its command holds.
    pub fn read<'v>(&self, deployment: &'v serde_json::Value) -> Option<&'v str> {
        match self {
            Switch::Env { name, .. } => deployment["env"]
                .as_array()?
                .iter()
                .find(|item| item["name"] == name.as_str())?["value"]
                .as_str(),
            Switch::Arg { v1, v2 } => deployment["command"]
                .as_array()?
                .iter()
                .filter_map(serde_json::Value::as_str)
                .find(|a| a == v1 || a == v2),
        }
    }

    /// The deployment without its switch: what web and web-v1 must share in coexistence.
    pub fn strip(&self, deployment: &mut serde_json::Value) {
        match self {
            Switch::Env { name, .. } => {
                if let Some(items) = deployment["env"].as_array_mut() {
                    items.retain(|item| item["name"] != name.as_str());
                    if items.is_empty() {
                        deployment.as_object_mut().map(|m| m.remove("env"));
                    }
                }
            }
            Switch::Arg { v1, v2 } => {
                if let Some(args) = deployment["command"].as_array_mut() {
                    args.retain(|a| a != v1.as_str() && a != v2.as_str());
                }
            }
        }
    }
}

impl std::fmt::Display for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Switch::Env { name, v1, v2 } => write!(f, "env:{name}={v1},{v2}"),
            Switch::Arg { v1, v2 } => write!(f, "arg:{v1},{v2}"),
        }
    }
}

impl std::str::FromStr for Switch {
    type Err = Error;

    fn from_str(s: &str) -> Result<Switch, Error> {
        let invalid = |why: &str| {
            bad_input(format!(
                "switch {s:?} {why}; expected env:NAME=V1VALUE,V2VALUE or arg:V1ARG,V2ARG"
            ))
        };
        let values = |text: &str| -> Result<(String, String), Error> {
            let (v1, v2) = text
                .split_once(',')
                .ok_or_else(|| invalid("does not give two values separated by ','"))?;
            let printable =
                |v: &str| !v.is_empty() && !v.contains(',') && !v.chars().any(char::is_control);
            if !printable(v1) || !printable(v2) {
                return Err(invalid(
                    "has a value that is empty or holds ',' or a control character",
                ));
            }
            if v1 == v2 {
                return Err(invalid(
                    "gives v1 and v2 the same value, which could not tell them apart",
                ));
            }
            Ok((v1.to_string(), v2.to_string()))
        };
        if let Some(rest) = s.strip_prefix("env:") {
            let (name, rest) = rest
                .split_once('=')
                .ok_or_else(|| invalid("names no variable before '='"))?;
            let name_ok = name
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !name_ok {
                return Err(invalid(
                    "names a variable that is not letters, digits and '_'",
                ));
            }
            let (v1, v2) = values(rest)?;
            Ok(Switch::Env {
                name: name.to_string(),
                v1,
                v2,
            })
        } else if let Some(rest) = s.strip_prefix("arg:") {
            let (v1, v2) = values(rest)?;
            Ok(Switch::Arg { v1, v2 })
        } else {
            Err(invalid("is neither env: nor arg:"))
        }
    }
}

/// Everything `canary start` settles; stored in the journal with the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub service: String,
    /// Absolute path of the repository's work tree.
    pub repo: PathBuf,
    pub namespace: String,
    /// In deploy order; the last is production, the one that is ramped.
    pub environments: Vec<Environment>,
    pub schedule: Vec<u8>,
    /// web-v1's pinned image: succession only, since in coexistence web-v1 runs web's image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1_image: Option<Image>,
    /// Absent from releases journaled before coexistence existed: those are successions.
    #[serde(default, skip_serializing_if = "Method::is_default")]
    pub method: Method,
    /// What selects v1 or v2 in the one image (coexistence only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switch: Option<Switch>,
    /// How canary's commits reach the branch that Argo CD deploys. Absent from releases
    /// journaled before it existed, which get the default.
    #[serde(default, skip_serializing_if = "Remote::is_default")]
    pub remote: Remote,
    /// This journal's name for the release, unique across journals: canary's commits carry it
    /// (`Canary-Release:`), so that the repository, which every operator shares, tells whose
    /// release moved a service on. Empty for releases journaled before it existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The release this one took over (`start --adopt`), whose commits count as its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<String>,
    /// The metric gate's limits (used where production has a Prometheus). Absent from
    /// releases journaled before it existed, and when every limit is the default.
    #[serde(default, skip_serializing_if = "gate::Thresholds::is_default")]
    pub gate: gate::Thresholds,
    /// The plan the release walks. Absent from releases journaled before staging led
    /// production, which walk the plan they started with.
    #[serde(default, skip_serializing_if = "PlanVersion::is_default")]
    pub plan: PlanVersion,
}

#[cfg(test)]
impl Settings {
    /// A release for unit tests: `service` in namespace `ns` of `/repo`, one environment,
    /// `env`, the whole weight at once, and a pinned v1 image.
    pub fn example(service: &str, env: &str) -> Settings {
        Settings {
            service: service.into(),
            repo: "/repo".into(),
            namespace: "ns".into(),
            environments: vec![Environment {
                name: env.into(),
                hosts: vec!["a.example.com".into()],
                context: None,
                argocd: None,
                prometheus: None,
            }],
            schedule: vec![100],
            v1_image: Some(Image {
                repository: "r/s".into(),
                digest: format!("sha256:{}", "a".repeat(64)),
            }),
            method: Default::default(),
            switch: None,
            remote: Default::default(),
            id: String::new(),
            adopted: None,
            gate: Default::default(),
            plan: PlanVersion::CURRENT,
        }
    }
}

/// A new release id: 16 hex digits that no other journal will pick (the service, the
/// repository, the time and the process go into it).
pub fn new_release_id(service: &str, repo: &std::path::Path) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let seed = format!(
        "{service}\0{}\0{now}\0{}",
        repo.display(),
        std::process::id()
    );
    crate::repo::sha256(&seed)[..16].to_string()
}

/// How a release's commits reach the remote branch that Argo CD deploys from. Whichever, a
/// deploy is confirmed only once the branch holds canary's commits, and the remote too unless
/// there is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Remote {
    /// The operator pushes; a deploy waits until the upstream has canary's commits.
    #[default]
    Operator,
    /// canary pushes each of its commits to the upstream itself (`start --push`).
    Push,
    /// The repository has no remote (`start --no-remote`): only the commit is checked.
    None,
}

impl Remote {
    fn is_default(&self) -> bool {
        *self == Remote::default()
    }
}

impl Settings {
    pub fn shape(&self) -> Shape {
        Shape {
            environments: self.environments.iter().map(|e| e.name.clone()).collect(),
            schedule: self.schedule.clone(),
            method: self.method,
            plan: self.plan,
        }
    }

    /// The service as the metric gate measures it: web-v1 is v1, web is v2.
    pub fn gate_subject(&self) -> gate::Subject {
        let version = |deployment: &str, version: &str| gate::promql::Selector {
            namespace: self.namespace.clone(),
            workload: format!("{}-{deployment}", self.service),
            version: version.into(),
        };
        gate::Subject {
            service: self.service.clone(),
            v1: version(WEB_V1, "v1"),
            v2: version(WEB, "v2"),
        }
    }

    /// The Kubernetes Service of the web deployment, as gap names it.
    pub fn service_name(&self) -> String {
        format!("{}-web", self.service)
    }

    pub fn cluster_host(&self) -> String {
        format!(
            "{}.{}.svc.cluster.local",
            self.service_name(),
            self.namespace
        )
    }

    pub fn destination_rule_name(&self) -> String {
        format!("{}--web", self.service)
    }

    /// The VirtualService gap creates for an ingress-enabled deployment.
    pub fn virtual_service_name(&self) -> String {
        format!("{}--web", self.service)
    }

    /// web-v1's pinned image, which every succession has; only succession's steps ask.
    pub fn pinned(&self) -> Result<&Image, Error> {
        self.v1_image.as_ref().ok_or_else(|| {
            Error::Failed(format!(
                "the release of {} follows the {} method, whose web-v1 has no pinned image",
                self.service, self.method
            ))
        })
    }

    /// Whether a commit of release `id` is this release's own.
    pub fn owns(&self, id: &str) -> bool {
        id == self.id || self.adopted.as_deref() == Some(id)
    }

    pub fn env_index(&self, name: &str) -> Result<usize, Error> {
        self.environments
            .iter()
            .position(|e| e.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.environments.iter().map(|e| e.name.as_str()).collect();
                bad_input(format!(
                    "unknown environment {name:?}; this release has: {}",
                    known.join(", ")
                ))
            })
    }
}

/// A ramp schedule as `--steps` takes it: `1,5,10,25,50,100`.
pub fn schedule_text(schedule: &[u8]) -> String {
    let weights: Vec<String> = schedule.iter().map(u8::to_string).collect();
    weights.join(",")
}

/// Parse `1,5,10,25,50,100`: whole numbers from 1 to 100, strictly increasing, ending at 100.
pub fn parse_schedule(text: &str) -> Result<Vec<u8>, Error> {
    let invalid = |why: &str| {
        bad_input(format!(
            "ramp schedule {text:?} {why}; expected whole percentages from 1 to 100, strictly \
             increasing and ending at 100, such as 1,5,10,25,50,100"
        ))
    };
    let steps = text
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<u8>()
                .ok()
                .filter(|w| (1..=100).contains(w))
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(|| invalid("has a value that is not a whole number from 1 to 100"))?;
    if !steps.windows(2).all(|w| w[0] < w[1]) {
        return Err(invalid("is not strictly increasing"));
    }
    if steps.last() != Some(&100) {
        return Err(invalid("does not end at 100"));
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f";

    #[test]
    fn images_must_be_pinned_by_a_full_sha256_digest() {
        let image: Image = format!("registry.example:5000/gap-images/my-service@sha256:{HEX}")
            .parse()
            .unwrap();
        assert_eq!(
            image.repository,
            "registry.example:5000/gap-images/my-service"
        );
        assert_eq!(image.digest, format!("sha256:{HEX}"));
        for bad in [
            "my-service:latest".to_string(),
            format!("my-service@sha512:{HEX}"),
            format!("my-service@sha256:{}", &HEX[1..]),
            format!("my-service@sha256:{}", HEX.to_uppercase()),
            format!("My-Service@sha256:{HEX}"),
            format!("a//b@sha256:{HEX}"),
            format!("@sha256:{HEX}"),
            format!("a b@sha256:{HEX}"),
        ] {
            assert!(bad.parse::<Image>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn switches_are_an_env_var_or_an_argument_with_two_different_values() {
        assert_eq!(
            "env:IMPLEMENTATION=v1,v2".parse::<Switch>().unwrap(),
            Switch::Env {
                name: "IMPLEMENTATION".into(),
                v1: "v1".into(),
                v2: "v2".into()
            }
        );
        let arg: Switch = "arg:--impl=v1,--impl=v2".parse().unwrap();
        assert_eq!(arg.value(Version::V2), "--impl=v2");
        assert_eq!(arg.to_string(), "arg:--impl=v1,--impl=v2");
        for bad in [
            "env:IMPL=v1,v1",
            "arg:a,a",
            "env:IMPL=v1",
            "env:1X=a,b",
            "env:=a,b",
            "env:A-B=a,b",
            "arg:,b",
            "arg:a,b,c",
            "flag:a,b",
            "env:A=a\n,b",
        ] {
            let bad = bad.replace("\\n", "\n");
            assert!(bad.parse::<Switch>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn schedules_increase_strictly_and_end_at_100() {
        assert_eq!(
            parse_schedule("1,5,10,25,50,100").unwrap(),
            DEFAULT_SCHEDULE
        );
        assert_eq!(parse_schedule("100").unwrap(), [100]);
        for bad in [
            "",
            "0,100",
            "5,5,100",
            "50,10,100",
            "1,50",
            "1,101",
            "1,2.5,100",
            "a",
        ] {
            assert!(parse_schedule(bad).is_err(), "{bad:?} accepted");
        }
    }
}
