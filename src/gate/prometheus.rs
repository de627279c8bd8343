//! Instant queries to an environment's Prometheus over HTTP (`GET /api/v1/query`), with the
//! HTTP client kube already brings: to its URL, or through the environment's API server's
//! service proxy with its kubeconfig context.

use std::time::Duration;

use kube::config::KubeConfigOptions;
use kube::{Client, Config};
use serde_json::Value;

use super::{Endpoint, Metrics};
use crate::error::Error;

/// A query that has not answered in this time is taken as an unreachable Prometheus.
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Prometheus {
    runtime: tokio::runtime::Runtime,
    client: Client,
    /// The path before `/api/v1/query`: the service proxy's, or none.
    prefix: String,
    describe: String,
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
        let (kube_config, prefix) = match source {
            Endpoint::Url(url) => {
                let uri = url.parse().map_err(|e| failed(format!("not a URL: {e}")))?;
                (Config::new(uri), String::new())
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
        let (status, body) = self
            .runtime
            .block_on(async {
                let response = self.client.send(request.map(Into::into)).await?;
                let status = response.status();
                let body = response.into_body().collect_bytes().await?;
                Ok::<_, kube::Error>((status, body))
            })
            .map_err(|e| failed(format!("cannot be reached: {e}")))?;
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
            let what = said.unwrap_or_else(|| {
                text.chars()
                    .take(120)
                    .collect::<String>()
                    .trim()
                    .to_string()
            });
            return Err(failed(format!("answered HTTP {}: {what}", status.as_u16())));
        }
        Ok(json.expect("checked above"))
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
            other => {
                return Err(Error::Failed(format!(
                    "{}: the query answered a {}, the gate needs one number: {promql}",
                    self.describe,
                    other.unwrap_or("nothing")
                )));
            }
        };
        Ok(value[1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite()))
    }

    fn describe(&self) -> String {
        self.describe.clone()
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
