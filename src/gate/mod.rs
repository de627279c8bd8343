//! The metric gate: before production's v2 weight goes up, and before the ramp is declared
//! done, v2 is measured against v1 (the live baseline, on the same traffic) and against fixed
//! limits, from Istio's standard metrics in the environment's Prometheus.
//!
//! `exact`, `evidence`, `histogram` and `verdict` are pure: exact distributions, the e-values
//! of each check, the duration histogram and the verdict. `promql` builds
//! the queries; `checks` reads the team's own checks; `prometheus` asks the server (behind the
//! `cluster` feature, whose HTTP client and kubeconfig reading it shares). [`evaluate`] puts
//! them together over anything that answers a query ([`Metrics`]).

pub mod checks;
pub mod evidence;
pub mod exact;
pub mod histogram;
#[cfg(feature = "cluster")]
mod prometheus;
pub mod promql;
pub mod verdict;
#[cfg(not(feature = "cluster"))]
mod without;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, bad_input};
use crate::names::check_label;
#[cfg(feature = "cluster")]
pub use prometheus::Prometheus;
pub use verdict::{Outcome, Verdict};
#[cfg(not(feature = "cluster"))]
pub use without::Prometheus;

/// The gate's limits, set per release at `start`. The defaults follow Flagger's built-in
/// checks (request-success-rate at least 99%, request-duration p99 at most 500 ms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    /// The least time the weight must have been deployed for, and so the least range read.
    pub window_secs: u64,
    /// v2's requests needed to judge.
    pub min_requests: u64,
    /// v2's non-5xx share, in percent.
    pub success_rate: f64,
    /// The confidence, in percent, over the whole release: 100 minus the chance that a v2 as
    /// good as v1 is stopped anywhere in it.
    pub confidence: f64,
    /// How much higher than v1's v2's error rate may be, in percentage points (or half v1's
    /// rate, where that is more), for a pass: v2 passes once it is shown within it.
    pub margin: f64,
    pub p99_max_ms: f64,
    /// v2's p99 may be at most v1's times this.
    pub p99_factor: f64,
    /// A failed gate aborts the release by itself (pipelines).
    pub auto_abort: bool,
    /// The team's checks, a file in the repository (relative to its root).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<String>,
}

// Every value is checked finite at `start` ([`Thresholds::validate`]), so equality is one.
impl Eq for Thresholds {}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            window_secs: 300,
            min_requests: 100,
            success_rate: 99.0,
            confidence: 95.0,
            margin: 0.1,
            p99_max_ms: 500.0,
            p99_factor: 1.5,
            auto_abort: false,
            checks: None,
        }
    }
}

impl Thresholds {
    pub fn is_default(&self) -> bool {
        *self == Thresholds::default()
    }

    /// One line for each value out of range, the first of them as the error.
    pub fn validate(&self) -> Result<(), Error> {
        let percent = |flag: &str, v: f64, low: f64| {
            if v.is_finite() && v > low && v <= 100.0 {
                Ok(())
            } else {
                Err(bad_input(format!(
                    "{flag} {v}% is not a percentage above {low} and at most 100"
                )))
            }
        };
        if self.window_secs == 0 {
            return Err(bad_input(
                "--gate-window 0 reads no metrics: give a duration such as 5m",
            ));
        }
        if self.min_requests == 0 {
            return Err(bad_input(
                "--gate-min-requests 0 judges v2 on no traffic: give at least 1",
            ));
        }
        percent("--gate-success-rate", self.success_rate, 0.0)?;
        percent("--gate-confidence", self.confidence, 50.0)?;
        if self.confidence >= 100.0 {
            return Err(bad_input(
                "--gate-confidence 100% would never find v2 worse: give less, such as 95",
            ));
        }
        if !(self.margin.is_finite() && (0.0..=100.0).contains(&self.margin)) {
            return Err(bad_input(format!(
                "--gate-margin {} is not a number of percentage points from 0 to 100",
                self.margin
            )));
        }
        if !(self.p99_max_ms.is_finite() && self.p99_max_ms > 0.0) {
            return Err(bad_input(format!(
                "--gate-p99-max-ms {} is not a positive number of milliseconds",
                self.p99_max_ms
            )));
        }
        if !(self.p99_factor.is_finite() && self.p99_factor >= 1.0) {
            return Err(bad_input(format!(
                "--gate-p99-factor {} is below 1: v2 would fail for being as fast as v1",
                self.p99_factor
            )));
        }
        Ok(())
    }
}

/// Parse a percentage as the flags take it: `99`, `99.5`, `99%`.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    text.trim()
        .trim_end_matches('%')
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{text:?} is not a percentage such as 99 or 99.5"))
}

/// Where an environment's Prometheus is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Endpoint {
    /// Its URL, `http://` or `https://`, reached directly.
    Url(String),
    /// A Service in the environment's cluster, reached through the API server's service proxy
    /// with the environment's kubeconfig context: no port-forward needed.
    Cluster {
        namespace: String,
        service: String,
        /// A port number or name.
        port: String,
    },
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Url(url) => f.write_str(url),
            Endpoint::Cluster {
                namespace,
                service,
                port,
            } => write!(f, "cluster:{namespace}/{service}:{port}"),
        }
    }
}

impl From<Endpoint> for String {
    fn from(source: Endpoint) -> String {
        source.to_string()
    }
}

impl TryFrom<String> for Endpoint {
    type Error = Error;

    fn try_from(text: String) -> Result<Endpoint, Error> {
        text.parse()
    }
}

impl std::str::FromStr for Endpoint {
    type Err = Error;

    fn from_str(text: &str) -> Result<Endpoint, Error> {
        if let Some(rest) = text.strip_prefix("cluster:") {
            let invalid = || {
                bad_input(format!(
                    "Prometheus {text:?} is not cluster:NAMESPACE/SERVICE:PORT, such as \
                     cluster:istio-system/prometheus:9090"
                ))
            };
            let (namespace, rest) = rest.split_once('/').ok_or_else(invalid)?;
            let (service, port) = rest.split_once(':').ok_or_else(invalid)?;
            check_label("Prometheus namespace", namespace, 63)?;
            check_label("Prometheus service", service, 63)?;
            // A number from 1, or a port's name (which Kubernetes wants with a letter in it).
            let port_ok = if port.bytes().all(|b| b.is_ascii_digit()) {
                port.parse::<u16>().is_ok_and(|p| p > 0)
            } else {
                check_label("Prometheus port", port, 15).is_ok()
            };
            if !port_ok {
                return Err(invalid());
            }
            return Ok(Endpoint::Cluster {
                namespace: namespace.into(),
                service: service.into(),
                port: port.into(),
            });
        }
        let invalid = |why: &str| {
            bad_input(format!(
                "Prometheus URL {text:?} {why}; give http://HOST:PORT (or https://), or \
                 cluster:NAMESPACE/SERVICE:PORT"
            ))
        };
        let rest = text
            .strip_prefix("http://")
            .or_else(|| text.strip_prefix("https://"))
            .ok_or_else(|| invalid("is not an http:// or https:// URL"))?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || host.starts_with(':') {
            return Err(invalid("has no host"));
        }
        if let Some((_, port)) = host.rsplit_once(':').filter(|_| !host.ends_with(']'))
            && port.parse::<u16>().is_err()
        {
            return Err(invalid("has a port that is not a number"));
        }
        if text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '@'))
        {
            return Err(invalid(
                "has spaces, a query, a fragment or credentials in it",
            ));
        }
        Ok(Endpoint::Url(text.trim_end_matches('/').to_string()))
    }
}

/// What answers the gate's queries: an instant query whose answer is one sample at most.
pub trait Metrics {
    /// The sample's value as Prometheus wrote it, `NaN` and infinities included; `None` when
    /// the answer is empty (no such series).
    fn scalar(&self, promql: &str) -> Result<Option<f64>, Error>;
    /// Every series of the answer as its `label`'s value and its sample's value (as
    /// [`Metrics::scalar`] gives it); none for an empty answer.
    fn series(&self, promql: &str, label: &str) -> Result<Vec<(String, f64)>, Error>;
    /// Where it asks, for messages: `production's Prometheus at http://...`.
    fn describe(&self) -> String;
}

/// What the gate measures: the release's service, and its two versions as Istio's metrics
/// label them. The release's settings make it (`Settings::gate_subject`): the gate needs these
/// few names, not the whole release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub service: String,
    pub v1: promql::Selector,
    pub v2: promql::Selector,
}

/// Ask `metrics` whether the gate will have something to judge: it answers, and Istio's
/// request series of the service's deployment (v2's, which serves before the release) are
/// there over the last hour. Asked when a Prometheus is set, so that a wrong URL, a missing
/// permission or a Prometheus that does not scrape the sidecars is found then, not at the
/// first raise of the ramp.
pub fn probe(metrics: &dyn Metrics, subject: &Subject) -> Result<(), Error> {
    const HOUR: u64 = 3600;
    let v2 = &subject.v2;
    match metrics.scalar(&v2.seen(HOUR))? {
        Some(series) if series > 0.0 => Ok(()),
        _ => Err(bad_input(format!(
            "{} answers, and has no istio_requests_total with reporter=\"destination\" for {} \
             in namespace {} over the last hour: are its pods in Istio's mesh, and does this \
             Prometheus scrape their sidecars? The gate would have nothing to judge",
            metrics.describe(),
            v2.workload,
            v2.namespace
        ))),
    }
}

/// Whom the gate judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judged {
    /// v2 against v1 on the same traffic, and the fixed limits (production's ramp).
    AgainstV1,
    /// v2 alone against the fixed limits (staging, which serves v2 all of its traffic when
    /// the release asks whether v2 was tested there).
    Alone,
}

/// Read the judged versions over the last `range_secs` and judge v2. No Istio metrics at all
/// for them is an error, not a verdict: the gate cannot tell anything from silence. A value
/// the gate cannot use (not a finite number, a negative count, more 5xx answers than requests)
/// is a verdict that it cannot judge, naming the query that answered it: never a pass.
pub fn evaluate(
    metrics: &dyn Metrics,
    subject: &Subject,
    judged: Judged,
    thresholds: &Thresholds,
    team: &[checks::TeamCheck],
    range_secs: u64,
    before: verdict::Evidence,
) -> Result<Verdict, Error> {
    let read = |v: &promql::Selector| -> Result<Read, Error> {
        let queries = [
            v.requests(range_secs),
            v.errors(range_secs),
            v.latency(range_secs),
        ];
        Ok(Read {
            version: v.version.clone(),
            requests: metrics.scalar(&queries[0])?,
            errors: metrics.scalar(&queries[1])?,
            latency: metrics.series(&queries[2], "le")?,
            queries,
        })
    };
    let versions = match judged {
        Judged::AgainstV1 => vec![&subject.v1, &subject.v2],
        Judged::Alone => vec![&subject.v2],
    };
    let reads = versions
        .iter()
        .map(|v| read(v))
        .collect::<Result<Vec<_>, _>>()?;
    if reads.iter().all(|r| r.requests.is_none()) {
        let workloads: Vec<&str> = versions.iter().map(|v| v.workload.as_str()).collect();
        return Err(Error::Failed(format!(
            "{} has no istio_requests_total with reporter=\"destination\" for {} in \
             namespace {} over the last {}: are the pods in Istio's mesh, and does Prometheus \
             scrape their sidecars? Nothing was changed",
            metrics.describe(),
            workloads.join(" or "),
            subject.v2.namespace,
            verdict::duration(range_secs)
        )));
    }
    let mut measured = Vec::new();
    for read in &reads {
        match read.measured() {
            Ok(m) => measured.push(m),
            Err(why) => return Ok(Verdict::cannot_judge(range_secs, why)),
        }
    }
    let mut custom = Vec::new();
    for check in team {
        let mut values = Vec::new();
        for v in &versions {
            let query = check.query_for(&subject.service, v, range_secs);
            let value = metrics.scalar(&query)?;
            if let Some(bad) = value.filter(|x| !x.is_finite()) {
                return Ok(Verdict::cannot_judge(
                    range_secs,
                    format!(
                        "check {:?} answered {} for {} ({query})",
                        check.name,
                        verdict::as_prometheus(bad),
                        v.version
                    ),
                ));
            }
            values.push(value);
        }
        let v2 = values.pop().flatten();
        custom.push(verdict::Custom {
            name: check.name.clone(),
            v1: values.pop().flatten(),
            v2,
            condition: check.condition,
        });
    }
    Ok(match judged {
        Judged::AgainstV1 => verdict::judge(
            thresholds,
            range_secs,
            &measured[0],
            &measured[1],
            &custom,
            before,
        ),
        Judged::Alone => {
            verdict::judge_alone(thresholds, range_secs, &measured[0], &custom, before)
        }
    })
}

/// One version's answers to the gate's three queries, as Prometheus gave them.
struct Read {
    version: String,
    requests: Option<f64>,
    errors: Option<f64>,
    latency: Vec<(String, f64)>,
    /// The queries that asked for them, in that order.
    queries: [String; 3],
}

impl Read {
    /// The answers as the verdict judges them, or why they cannot be. An empty answer is a
    /// count of zero (Istio has no series for a code never answered) or no latency sample.
    fn measured(&self) -> Result<verdict::Measured, String> {
        let version = &self.version;
        let count = |value: Option<f64>, what: &str, query: &str| match value {
            Some(v) if !(v.is_finite() && v >= 0.0) => Err(format!(
                "{version}'s {what} answered {} ({query})",
                verdict::as_prometheus(v)
            )),
            v => Ok(v.unwrap_or(0.0)),
        };
        let requests = count(self.requests, "request count", &self.queries[0])?;
        let errors = count(self.errors, "5xx count", &self.queries[1])?;
        // Each 5xx series is one of the series the request count sums, extrapolated alike:
        // more errors than requests is a broken answer, beyond rounding.
        if errors > requests * (1.0 + 1e-9) + 1e-9 {
            return Err(format!(
                "{version}'s 5xx count {} is more than its {} requests ({})",
                verdict::number(errors),
                verdict::number(requests),
                self.queries[1]
            ));
        }
        let latency = histogram::Histogram::from_series(&self.latency).map_err(|why| {
            format!(
                "{version}'s latency histogram cannot be read: {why} ({})",
                self.queries[2]
            )
        })?;
        Ok(verdict::Measured {
            requests,
            errors,
            latency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers each query by what it asks for: the version, and which of the gate's queries.
    struct Answers {
        v1: (Option<f64>, Option<f64>, Vec<(String, f64)>),
        v2: (Option<f64>, Option<f64>, Vec<(String, f64)>),
        team: Option<f64>,
    }

    impl Answers {
        fn of(&self, promql: &str) -> &(Option<f64>, Option<f64>, Vec<(String, f64)>) {
            if promql.contains("\"v2\"") {
                &self.v2
            } else {
                &self.v1
            }
        }
    }

    impl Metrics for Answers {
        fn scalar(&self, promql: &str) -> Result<Option<f64>, Error> {
            if promql.starts_with("team") {
                return Ok(self.team);
            }
            let answers = self.of(promql);
            Ok(if promql.contains("5..") {
                answers.1
            } else {
                answers.0
            })
        }

        fn series(&self, promql: &str, label: &str) -> Result<Vec<(String, f64)>, Error> {
            assert_eq!(label, "le");
            assert!(promql.contains("_bucket"), "{promql}");
            Ok(self.of(promql).2.clone())
        }

        fn describe(&self) -> String {
            "a table".into()
        }
    }

    fn subject() -> Subject {
        let selector = |version: &str| promql::Selector {
            namespace: "ns".into(),
            workload: format!("web-{version}"),
            version: version.into(),
        };
        Subject {
            service: "svc".into(),
            v1: selector("v1"),
            v2: selector("v2"),
        }
    }

    fn buckets(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs.iter().map(|(le, c)| (le.to_string(), *c)).collect()
    }

    fn verdict_of(
        v2: (Option<f64>, Option<f64>, Vec<(String, f64)>),
        team: Option<f64>,
    ) -> Verdict {
        let answers = Answers {
            v1: (
                Some(45000.0),
                Some(45.0),
                buckets(&[("50", 44500.0), ("100", 45000.0), ("+Inf", 45000.0)]),
            ),
            v2,
            team,
        };
        let checks =
            checks::parse("checks:\n  - name: queue\n    query: team\n    max: 5\n").unwrap();
        evaluate(
            &answers,
            &subject(),
            Judged::AgainstV1,
            &Thresholds::default(),
            &checks,
            300,
            Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn answers_the_gate_cannot_use_are_never_a_pass() {
        let latency = buckets(&[("50", 14830.0), ("100", 15000.0), ("+Inf", 15000.0)]);
        let healthy = || (Some(15000.0), Some(15.0), latency.clone());
        assert_eq!(verdict_of(healthy(), Some(1.0)).outcome, Outcome::Pass);
        // An empty 5xx answer is no errors: Istio has no series for a code never answered.
        assert_eq!(
            verdict_of((Some(15000.0), None, latency.clone()), Some(1.0)).outcome,
            Outcome::Pass
        );
        let nan_bucket = buckets(&[("50", f64::NAN), ("100", 15000.0), ("+Inf", 15000.0)]);
        let no_inf = buckets(&[("50", 14830.0), ("100", 15000.0)]);
        for (v2, team, says) in [
            (
                (Some(15000.0), Some(f64::NAN), latency.clone()),
                Some(1.0),
                "v2's 5xx count answered NaN",
            ),
            (
                (Some(15000.0), Some(f64::INFINITY), latency.clone()),
                Some(1.0),
                "v2's 5xx count answered +Inf",
            ),
            (
                (Some(15000.0), Some(-3.0), latency.clone()),
                Some(1.0),
                "v2's 5xx count answered -3",
            ),
            (
                (Some(f64::NAN), Some(15.0), latency.clone()),
                Some(1.0),
                "v2's request count answered NaN",
            ),
            (
                (Some(-1.0), None, Vec::new()),
                Some(1.0),
                "v2's request count answered -1",
            ),
            (
                (Some(100.0), Some(150.0), latency.clone()),
                Some(1.0),
                "v2's 5xx count 150 is more than its 100 requests",
            ),
            (
                (Some(15000.0), Some(15.0), nan_bucket),
                Some(1.0),
                "v2's latency histogram cannot be read: bucket le=50 counted NaN",
            ),
            (
                (Some(15000.0), Some(15.0), no_inf),
                Some(1.0),
                "no le=\"+Inf\" bucket",
            ),
            (
                healthy(),
                Some(f64::NAN),
                "check \"queue\" answered NaN for v1",
            ),
        ] {
            let verdict = verdict_of(v2.clone(), team);
            assert_eq!(verdict.outcome, Outcome::CannotJudge, "{v2:?}: {verdict:?}");
            assert!(verdict.reason.contains(says), "{says}: {}", verdict.reason);
            // The query that answered it is named.
            assert!(
                verdict.reason.contains("destination_version=\"v2\"")
                    || verdict.reason.contains("(team)"),
                "{}",
                verdict.reason
            );
        }
        // No requests, no latency: an empty histogram is no sample.
        let idle = verdict_of((Some(0.0), None, Vec::new()), Some(1.0));
        assert_eq!(idle.outcome, Outcome::NotEnoughTraffic, "{idle:?}");
    }

    #[test]
    fn v2_alone_is_judged_without_asking_for_v1() {
        let latency = buckets(&[("50", 14830.0), ("100", 15000.0), ("+Inf", 15000.0)]);
        // v1's answers would make any verdict against it "cannot judge": they are not asked.
        let answers = Answers {
            v1: (Some(f64::NAN), Some(f64::NAN), Vec::new()),
            v2: (Some(15000.0), Some(15.0), latency),
            team: Some(1.0),
        };
        let checks =
            checks::parse("checks:\n  - name: queue\n    query: team\n    max: 5\n").unwrap();
        let judge = |judged| {
            evaluate(
                &answers,
                &subject(),
                judged,
                &Thresholds::default(),
                &checks,
                300,
                Default::default(),
            )
            .unwrap()
        };
        assert_eq!(judge(Judged::AgainstV1).outcome, Outcome::CannotJudge);
        let alone = judge(Judged::Alone);
        assert_eq!(alone.outcome, Outcome::Pass, "{alone:?}");
        let queue = alone.checks.iter().find(|c| c.name == "queue").unwrap();
        assert_eq!((queue.v1, queue.v2), (None, Some(1.0)));
    }

    #[test]
    fn sources_are_urls_or_cluster_services() {
        assert_eq!(
            "http://127.0.0.1:9090/".parse::<Endpoint>().unwrap(),
            Endpoint::Url("http://127.0.0.1:9090".into())
        );
        "https://prometheus.example.net/prom"
            .parse::<Endpoint>()
            .unwrap();
        let cluster: Endpoint = "cluster:istio-system/prometheus:9090".parse().unwrap();
        assert_eq!(cluster.to_string(), "cluster:istio-system/prometheus:9090");
        "cluster:monitoring/prom:http-web"
            .parse::<Endpoint>()
            .unwrap();
        for bad in [
            "",
            "prometheus:9090",
            "ftp://x",
            "http://",
            "http://:9090",
            "http://x:port",
            "http://x y",
            "http://x/?q=1",
            "http://user@x",
            "cluster:istio-system",
            "cluster:istio-system/prometheus",
            "cluster:Istio/prometheus:9090",
            "cluster:a/b:0",
            "cluster:a/b:-x",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn thresholds_out_of_range_are_refused() {
        Thresholds::default().validate().unwrap();
        let bad = [
            Thresholds {
                window_secs: 0,
                ..Thresholds::default()
            },
            Thresholds {
                success_rate: 140.0,
                ..Thresholds::default()
            },
            Thresholds {
                success_rate: 0.0,
                ..Thresholds::default()
            },
            Thresholds {
                confidence: 100.0,
                ..Thresholds::default()
            },
            Thresholds {
                confidence: 40.0,
                ..Thresholds::default()
            },
            Thresholds {
                p99_max_ms: -1.0,
                ..Thresholds::default()
            },
            Thresholds {
                p99_factor: 0.5,
                ..Thresholds::default()
            },
            Thresholds {
                min_requests: 0,
                ..Thresholds::default()
            },
            Thresholds {
                margin: -0.1,
                ..Thresholds::default()
            },
            Thresholds {
                margin: f64::NAN,
                ..Thresholds::default()
            },
        ];
        for t in bad {
            assert!(t.validate().is_err(), "{t:?} accepted");
        }
        assert_eq!(parse_percent("99.5%"), Ok(99.5));
        assert!(parse_percent("NaN").is_err());
    }
}
