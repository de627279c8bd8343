//! Instant queries to an environment's Prometheus over HTTP (`GET /api/v1/query`), with the
//! HTTP client kube already brings: to its URL, or through the environment's API server's
//! service proxy with its kubeconfig context.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, LengthLimitError, Limited};

use kube::config::KubeConfigOptions;
use kube::{Client, Config};
use serde_json::Value;

use super::{Endpoint, Metrics};
use crate::error::Error;
use crate::output::outside;

/// A query that has not answered in this time is taken as an unreachable Prometheus.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Every query of one evaluation answered within this, or the evaluation fails: a server that
/// trickles a byte at a time never trips [`TIMEOUT`], which bounds only each wait for a byte,
/// and would hold the release's lock, and so `canary abort`, for as long as it likes.
const DEADLINE: Duration = Duration::from_secs(60);

/// The most an answer may hold. The gate asks for single numbers, a few hundred bytes; a
/// body that never ends is cut here, not read until memory runs out.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// The most of a server's own words (an error, a body that is not JSON) that is shown.
const MAX_SAID_CHARS: usize = 300;

pub struct Prometheus {
    runtime: tokio::runtime::Runtime,
    client: Client,
    /// The path before `/api/v1/query`: the service proxy's, or none.
    prefix: String,
    describe: String,
    /// What a refused service proxy call lacks, for a Prometheus in the cluster.
    permission: Option<String>,
    /// The command that points the gate at another Prometheus.
    elsewhere: String,
    /// When every query of this evaluation must have answered by.
    deadline: Instant,
}

impl Prometheus {
    /// The Prometheus of environment `env` of `service`'s release, at `source` (reached
    /// through kubeconfig `context` for a cluster service); an error when it has none.
    pub fn connect(
        service: &str,
        env: &str,
        source: Option<&Endpoint>,
        context: Option<&str>,
    ) -> Result<Prometheus, Error> {
        let source = source.ok_or_else(|| {
            crate::error::bad_input(format!(
                "{env} has no Prometheus for the gate; set one with `canary context {service} \
                 {env} --prometheus URL` (or cluster:NAMESPACE/SERVICE:PORT)"
            ))
        })?;
        let describe = format!("{env}'s Prometheus ({source})");
        let failed = |why: String| Error::Failed(format!("{describe}: {why}"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| failed(format!("cannot start a runtime: {e}")))?;
        let (kube_config, prefix, permission) = match source {
            Endpoint::Url(url) => {
                let uri = url.parse().map_err(|e| failed(format!("not a URL: {e}")))?;
                (Config::new(uri), String::new(), None)
            }
            Endpoint::Cluster {
                namespace,
                service,
                port,
            } => {
                let context = context.map(str::to_string).ok_or_else(|| {
                    failed(format!(
                        "is reached through the cluster, and {env} has no context; `canary context` \
                         sets one"
                    ))
                })?;
                let options = KubeConfigOptions {
                    context: Some(context.clone()),
                    ..KubeConfigOptions::default()
                };
                let kube_config = runtime
                    .block_on(Config::from_kubeconfig(&options))
                    .map_err(|e| failed(format!("cannot read context {context}: {e}")))?;
                (
                    kube_config,
                    format!("/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy"),
                    Some(format!(
                        "context {context} needs `get` on services/proxy named {service}:{port} \
                         in namespace {namespace}: the Role in canary's docs/gate.md grants it"
                    )),
                )
            }
        };
        let mut kube_config = kube_config;
        kube_config.read_timeout = Some(TIMEOUT);
        kube_config.connect_timeout = Some(TIMEOUT);
        let client = runtime
            .block_on(async { Client::try_from(kube_config) })
            .map_err(|e| failed(format!("cannot make a client: {e}")))?;
        Ok(Prometheus {
            runtime,
            client,
            prefix,
            describe,
            permission,
            elsewhere: format!("canary context {service} {env} --prometheus URL"),
            deadline: Instant::now() + DEADLINE,
        })
    }

    fn get(&self, promql: &str) -> Result<Value, Error> {
        let failed =
            |why: String| Error::Failed(format!("{}: {why}; nothing was changed", self.describe));
        let uri = format!("{}/api/v1/query?query={}", self.prefix, form_encode(promql));
        let request = http::Request::get(uri)
            .header("accept", "application/json")
            .body(Vec::new())
            .map_err(|e| failed(format!("cannot build the request: {e}")))?;
        let send = async {
            let response = self.client.send(request.map(Into::into)).await?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<LengthLimitError>() {
                        Unread::TooLong
                    } else {
                        Unread::Failed(crate::error::deepest_cause(&*e))
                    }
                })?
                .to_bytes();
            Ok::<_, Unread>((status, body))
        };
        let (status, body) = self
            .runtime
            .block_on(async { tokio::time::timeout_at(self.deadline.into(), send).await })
            .map_err(|_| {
                failed(format!(
                    "did not answer the gate's queries within {}s (a slow or stalled server)",
                    DEADLINE.as_secs()
                ))
            })?
            .map_err(|unread| match unread {
                Unread::TooLong => failed(format!(
                    "answered more than {} KiB, which no answer to the gate's queries needs",
                    MAX_ANSWER_BYTES / 1024
                )),
                Unread::Failed(why) => failed(format!(
                    "cannot be reached: {}; check its address and that this machine reaches it \
                     (`{}` sets another)",
                    outside(&why, MAX_SAID_CHARS),
                    self.elsewhere
                )),
            })?;
        let text = String::from_utf8_lossy(&body);
        let json: Option<Value> = serde_json::from_str(&text).ok();
        // Prometheus says what is wrong in `error`; the API server's proxy in a Status' `message`.
        let said = json.as_ref().and_then(|j| {
            j.get("error")
                .or_else(|| j.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        if !status.is_success()
            || json.as_ref().and_then(|j| j["status"].as_str()) != Some("success")
        {
            let what = outside(said.as_deref().unwrap_or(&text).trim(), MAX_SAID_CHARS);
            let status = status.as_u16();
            return Err(match (&self.permission, status) {
                (Some(permission), 403) => {
                    failed(format!("answered HTTP 403: {what}; {permission}"))
                }
                _ => failed(format!("answered HTTP {status}: {what}")),
            });
        }
        Ok(json.expect("checked above"))
    }
}

impl Prometheus {
    /// Prometheus writes values as Go formats floats, `NaN` and `+Inf` among them: those are
    /// handed on as they are, for the gate to refuse to judge on.
    fn number(&self, sample: &Value, promql: &str) -> Result<f64, Error> {
        let text = sample[1].as_str().unwrap_or_default();
        text.parse::<f64>().map_err(|_| {
            Error::Failed(format!(
                "{}: the query answered {:?}, not a number: {promql}",
                self.describe,
                outside(text, MAX_SAID_CHARS)
            ))
        })
    }

    fn answered_a(&self, what: Option<&str>, needs: &str, promql: &str) -> Error {
        Error::Failed(format!(
            "{}: the query answered a {}, the gate needs {needs}: {promql}",
            self.describe,
            what.unwrap_or("nothing")
        ))
    }
}

impl Metrics for Prometheus {
    fn scalar(&self, promql: &str) -> Result<Option<f64>, Error> {
        let answer = self.get(promql)?;
        let data = &answer["data"];
        let value = match data["resultType"].as_str() {
            Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
                Some([]) => return Ok(None),
                Some([one]) => &one["value"],
                _ => {
                    return Err(Error::Failed(format!(
                        "{}: the query answered more than one series, the gate needs one number: {promql}",
                        self.describe
                    )));
                }
            },
            Some("scalar") => &data["result"],
            other => return Err(self.answered_a(other, "one number", promql)),
        };
        self.number(value, promql).map(Some)
    }

    fn series(&self, promql: &str, label: &str) -> Result<Vec<(String, f64)>, Error> {
        let answer = self.get(promql)?;
        let data = &answer["data"];
        let (Some("vector"), Some(result)) =
            (data["resultType"].as_str(), data["result"].as_array())
        else {
            return Err(self.answered_a(data["resultType"].as_str(), "a vector", promql));
        };
        result
            .iter()
            .map(|series| {
                let name = series["metric"][label].as_str().unwrap_or_default();
                Ok((
                    outside(name, MAX_SAID_CHARS),
                    self.number(&series["value"], promql)?,
                ))
            })
            .collect()
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

/// Why an answer was not read whole.
enum Unread {
    TooLong,
    Failed(String),
}

impl From<kube::Error> for Unread {
    /// The innermost cause: "client error (Connect)" says less than the refused connection or
    /// the unknown host beneath it.
    fn from(e: kube::Error) -> Unread {
        Unread::Failed(crate::error::deepest_cause(&e))
    }
}

/// A query parameter's value, percent-encoded: everything but the unreserved characters.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn queries_are_percent_encoded_whole() {
        assert_eq!(
            super::form_encode("sum(x{a=\"b c\"}[5m]) & é"),
            "sum%28x%7Ba%3D%22b%20c%22%7D%5B5m%5D%29%20%26%20%C3%A9"
        );
    }
}
