//! The gate's checks combined into one verdict: pass (v2 is no worse than v1 beyond the
//! margin, with confidence), fail (v2 is worse, with confidence), not yet (too little evidence
//! either way, or the weight not deployed for the window yet), or cannot judge; with v1's
//! value, v2's value, the limit and the evidence of every check, and whether v1 fails as much
//! as v2 does (an incident, which no rollback of v2 mends, and still no reason to give v2 more
//! traffic).
//!
//! The statistical checks share one error budget for the whole release (`--gate-confidence`,
//! 95%: a 5% chance that a v2 as good as v1 is stopped anywhere in it): each of the four has a
//! quarter, and fails when its e-value over the release (this step's times every earlier
//! step's, [`Evidence`]) reaches 1/α of its share. See `evidence` for the e-values.

use serde::{Deserialize, Serialize};

use super::Thresholds;
use super::evidence::{self, Counts, whole};
use super::exact;
use super::histogram::Histogram;

/// What one version served over the range.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Measured {
    pub requests: f64,
    /// 5xx answers.
    pub errors: f64,
    /// Its request durations; empty without a latency sample.
    pub latency: Histogram,
}

impl Measured {
    fn success_rate(&self) -> Option<f64> {
        (self.requests > 0.0).then(|| 100.0 * (1.0 - self.errors / self.requests))
    }

    fn counts(&self) -> Counts {
        let requests = whole(self.requests);
        Counts {
            requests,
            failures: whole(self.errors).min(requests),
        }
    }

    fn p99_ms(&self) -> Option<f64> {
        self.latency.quantile(0.99)
    }
}

/// The natural logarithms of the e-values of the four statistical checks: one step's, or a
/// whole release's (their sum over its steps).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Evidence {
    pub success_rate: f64,
    pub errors_vs_v1: f64,
    pub p99_latency: f64,
    pub latency_vs_v1: f64,
}

impl Evidence {
    /// Evidence from two stretches of the release: the e-values multiply.
    pub fn and(self, other: Evidence) -> Evidence {
        Evidence {
            success_rate: self.success_rate + other.success_rate,
            errors_vs_v1: self.errors_vs_v1 + other.errors_vs_v1,
            p99_latency: self.p99_latency + other.p99_latency,
            latency_vs_v1: self.latency_vs_v1 + other.latency_vs_v1,
        }
    }
}

/// The statistical checks, which share the release's error budget.
const STATISTICAL_CHECKS: f64 = 4.0;

/// What each statistical check's release-wide e-value must reach to fail it: 1/α of its share
/// of the budget (80 at the default 95%).
pub fn threshold(thresholds: &Thresholds) -> f64 {
    STATISTICAL_CHECKS * 100.0 / (100.0 - thresholds.confidence)
}

/// A team check's condition on its value, from the checks file.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Condition {
    AtMost(f64),
    AtLeast(f64),
}

impl Condition {
    fn holds(self, value: f64) -> bool {
        match self {
            Condition::AtMost(limit) => value <= limit,
            Condition::AtLeast(limit) => value >= limit,
        }
    }

    fn describe(self) -> String {
        match self {
            Condition::AtMost(limit) => format!("<= {}", number(limit)),
            Condition::AtLeast(limit) => format!(">= {}", number(limit)),
        }
    }
}

/// A team check's values for each version.
#[derive(Debug, Clone, PartialEq)]
pub struct Custom {
    pub name: String,
    pub v1: Option<f64>,
    pub v2: Option<f64>,
    pub condition: Condition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Pass,
    Fail,
    NotEnoughTraffic,
    NotEnoughTime,
    /// Prometheus answered something the gate cannot use (not a number, a negative count,
    /// more errors than requests): neither a pass nor evidence against v2.
    CannotJudge,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::NotEnoughTraffic => "not enough traffic yet",
            Outcome::NotEnoughTime => "not enough time yet",
            Outcome::CannotJudge => "cannot judge",
        }
    }

    /// The outcome as the journal records it.
    pub fn key(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::NotEnoughTraffic => "not-enough-traffic",
            Outcome::NotEnoughTime => "not-enough-time",
            Outcome::CannotJudge => "cannot-judge",
        }
    }
}

/// One check, as shown and journaled: each version's value (`None`: no data) and the limit
/// v2's must meet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub v1: Option<f64>,
    pub v2: Option<f64>,
    pub unit: String,
    pub limit: String,
    pub passed: bool,
    /// For a limit that v1 must meet too: whether it does (an absolute threshold), else
    /// `None` (a comparison with v1, or a count of v2's requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v1_passed: Option<bool>,
    /// For a statistical check: its e-value over the release so far, failing at the
    /// verdict's `threshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_value: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// The range the metrics were read over, in seconds.
    pub range_secs: u64,
    pub checks: Vec<Check>,
    /// The natural logarithms of this step's e-values, which later steps multiply theirs by;
    /// absent from evaluations that read nothing and from journals before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// What a statistical check's e-value over the release must reach to fail it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// The z-test of the success rates that the gate ran before it had e-values, as those
    /// evaluations journaled it (read back as written, never written now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z_test: Option<serde_json::Value>,
    /// v2 fails an absolute limit, but v1 fails it as much and no comparison with v1 fails:
    /// an incident (a load spike, a dependency down), not v2's fault. Still not a pass.
    pub incident: bool,
    /// One line that says why.
    pub reason: String,
}

impl Verdict {
    /// The weight has not been deployed for the window yet: nothing is read.
    pub fn not_enough_time(deployed_secs: u64, thresholds: &Thresholds) -> Verdict {
        Verdict {
            outcome: Outcome::NotEnoughTime,
            range_secs: deployed_secs,
            checks: Vec::new(),
            evidence: None,
            threshold: None,
            z_test: None,
            incident: false,
            reason: format!(
                "the weight has been deployed for {}, the gate needs {} of metrics; run again in {}",
                duration(deployed_secs),
                duration(thresholds.window_secs),
                duration(thresholds.window_secs.saturating_sub(deployed_secs))
            ),
        }
    }

    /// What Prometheus answered cannot be judged on (`why` names the query and the value).
    pub fn cannot_judge(range_secs: u64, why: String) -> Verdict {
        Verdict {
            outcome: Outcome::CannotJudge,
            range_secs,
            checks: Vec::new(),
            evidence: None,
            threshold: None,
            z_test: None,
            incident: false,
            reason: why,
        }
    }

    /// The environment (`env`) routes v2 nothing yet: there is no traffic to judge, and
    /// nothing is read.
    pub fn unrouted(env: &str) -> Verdict {
        Verdict {
            outcome: Outcome::NotEnoughTraffic,
            range_secs: 0,
            checks: Vec::new(),
            evidence: None,
            threshold: None,
            z_test: None,
            incident: false,
            reason: format!("{env} routes no traffic to v2 yet: there is none of v2's to judge"),
        }
    }

    #[cfg(test)]
    pub fn failed(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }
}

/// Judge v2 against v1 and the limits, over `range_secs` of metrics, with the evidence of
/// the release's earlier steps (`before`).
pub fn judge(
    thresholds: &Thresholds,
    range_secs: u64,
    v1: &Measured,
    v2: &Measured,
    custom: &[Custom],
    before: Evidence,
) -> Verdict {
    let needed = threshold(thresholds);
    let (c1, c2) = (v1.counts(), v2.counts());
    let error_limit = 1.0 - thresholds.success_rate / 100.0;
    let p99_limit = v2.latency.slower_than(thresholds.p99_max_ms);
    let p99_limit_v1 = v1.latency.slower_than(thresholds.p99_max_ms);
    let (bounds, per_bucket2) = v2.latency.per_bucket();
    let (bounds1, per_bucket1) = v1.latency.per_bucket();
    // Compared bucket by bucket, where both have requests in the same buckets.
    let same_buckets = v1.latency.total() > 0.0 && v2.latency.total() > 0.0 && bounds == bounds1;
    let step = Evidence {
        success_rate: evidence::above_limit(c2, error_limit),
        errors_vs_v1: evidence::errors_vs_v1(c1, c2),
        p99_latency: p99_limit.map_or(0.0, |(_, slow)| evidence::above_limit(slow, 0.01)),
        latency_vs_v1: if same_buckets {
            evidence::latency_vs_v1(&bounds, &per_bucket1, &per_bucket2)
        } else {
            0.0
        },
    };
    let release = before.and(step);
    let e = |ln_e: f64| ln_e.exp();
    let worse = |ln_e: f64| e(ln_e) >= needed;
    // v1 against the same absolute limits, on this step alone: an incident is both failing.
    let v1_worse = |ln_e: f64| c1.requests > 0 && e(ln_e) >= needed;

    let mut checks = Vec::new();
    let enough = v2.requests >= thresholds.min_requests as f64;
    checks.push(Check {
        name: "requests".into(),
        v1: Some(v1.requests.round()),
        v2: Some(v2.requests.round()),
        unit: String::new(),
        limit: format!(">= {} (v2)", thresholds.min_requests),
        passed: enough,
        v1_passed: None,
        e_value: None,
    });
    let (rate1, rate2) = (v1.success_rate(), v2.success_rate());
    checks.push(Check {
        name: "success rate".into(),
        v1: rate1,
        v2: rate2,
        unit: "%".into(),
        limit: format!(">= {}%", number(thresholds.success_rate)),
        passed: !worse(release.success_rate),
        v1_passed: rate1.map(|_| !v1_worse(evidence::above_limit(c1, error_limit))),
        e_value: Some(e(release.success_rate)),
    });
    checks.push(Check {
        name: "success rate vs v1".into(),
        v1: rate1,
        v2: rate2,
        unit: "%".into(),
        limit: if c1.requests == 0 {
            "v1 had no requests: not compared".into()
        } else {
            "not below v1's".into()
        },
        passed: !worse(release.errors_vs_v1),
        v1_passed: None,
        e_value: Some(e(release.errors_vs_v1)),
    });
    let (p991, p992) = (v1.p99_ms(), v2.p99_ms());
    checks.push(Check {
        name: "p99 latency".into(),
        v1: p991,
        v2: p992,
        unit: "ms".into(),
        limit: match p99_limit {
            Some((bound, _)) if bound == thresholds.p99_max_ms => {
                format!("<= {} ms", number(thresholds.p99_max_ms))
            }
            Some((bound, _)) => format!(
                "<= {} ms (counted at the bucket bound {} ms)",
                number(thresholds.p99_max_ms),
                number(bound)
            ),
            None => format!(
                "<= {} ms: no bucket bound at or above it to count by",
                number(thresholds.p99_max_ms)
            ),
        },
        passed: !worse(release.p99_latency),
        v1_passed: p99_limit_v1.map(|(_, slow)| !v1_worse(evidence::above_limit(slow, 0.01))),
        e_value: Some(e(release.p99_latency)),
    });
    // A slowdown v2 fails for is one its p99 shows beyond the factor as well: with a great
    // deal of traffic, a distribution test finds differences too small to matter.
    let beyond_factor = match (p991, p992) {
        (Some(base), Some(ms)) => ms > base * thresholds.p99_factor,
        _ => false,
    };
    checks.push(Check {
        name: "latency vs v1".into(),
        v1: p991,
        v2: p992,
        unit: "ms".into(),
        limit: if same_buckets {
            format!(
                "not slower than v1's, p99 <= v1's x {}",
                number(thresholds.p99_factor)
            )
        } else {
            "v1 had no requests: not compared".into()
        },
        passed: !(worse(release.latency_vs_v1) && beyond_factor),
        v1_passed: None,
        e_value: Some(e(release.latency_vs_v1)),
    });
    for check in custom {
        checks.push(Check {
            name: check.name.clone(),
            v1: check.v1,
            v2: check.v2,
            unit: String::new(),
            limit: check.condition.describe(),
            // A team check without a value for v2 cannot vouch for it; judged, as a fixed
            // number, once v2 has the requests to judge.
            passed: !enough || check.v2.is_some_and(|v| check.condition.holds(v)),
            v1_passed: check.v1.map(|v| check.condition.holds(v)),
            e_value: None,
        });
    }
    let verdict = |outcome, incident, reason| Verdict {
        outcome,
        range_secs,
        checks: checks.clone(),
        evidence: Some(step),
        threshold: Some(needed),
        z_test: None,
        incident,
        reason,
    };
    let failed: Vec<&Check> = checks
        .iter()
        .filter(|c| !c.passed && c.name != "requests")
        .collect();
    if !failed.is_empty() {
        let incident = failed.iter().all(|c| c.v1_passed == Some(false));
        let names: Vec<String> = failed
            .iter()
            .map(|c| {
                let evidence = c
                    .e_value
                    .map(|e| format!("; e {} of {}", e_text(e), number(needed)))
                    .unwrap_or_default();
                // v2 alone (staging) has no v1 to show.
                let v1 =
                    c.v1.map(|v1| format!("v1 {}; ", value(Some(v1), &c.unit)))
                        .unwrap_or_default();
                format!(
                    "{} {} ({v1}limit {}{evidence})",
                    c.name,
                    value(c.v2, &c.unit),
                    c.limit
                )
            })
            .collect();
        let reason = if incident {
            format!(
                "v2 fails {}, but v1 fails as much: an incident, not v2's fault; the weight stays \
                 until it is over",
                names.join(", ")
            )
        } else {
            format!("v2 fails {}", names.join(", "))
        };
        return verdict(Outcome::Fail, incident, reason);
    }
    if !enough {
        let reason = format!(
            "v2 served {} in {}, the gate needs {} to judge",
            crate::output::count(v2.requests.round() as u64, "request"),
            duration(range_secs),
            thresholds.min_requests
        );
        return verdict(Outcome::NotEnoughTraffic, false, reason);
    }
    // A pass needs evidence that v2 is not worse than v1 beyond the margin: its error rate, at
    // the gate's confidence, at most v1's plus the margin. With no v1 to compare (at 100%),
    // the fixed limits, which no check failed, are the measure.
    let upper = exact::upper_bound(c2.failures, c2.requests, thresholds.confidence / 100.0);
    let allowed = (c1.requests > 0).then(|| {
        let p1 = c1.failures as f64 / c1.requests as f64;
        p1 + (thresholds.margin / 100.0).max(0.5 * p1)
    });
    if let Some(allowed) = allowed.filter(|allowed| upper > *allowed) {
        let reason = format!(
            "v2's error rate is at most {} with {}% confidence, and the margin allows {}: \
             not yet shown to be within it; more traffic will tell",
            percent(upper),
            number(thresholds.confidence),
            percent(allowed)
        );
        return verdict(Outcome::NotEnoughTraffic, false, reason);
    }
    let compared = if allowed.is_some() {
        "and is no worse than v1 beyond the margin"
    } else {
        "(v1 has no traffic to compare with)"
    };
    verdict(
        Outcome::Pass,
        false,
        format!(
            "v2 meets every limit {compared}: its error rate is at most {} with {}% confidence",
            percent(upper),
            number(thresholds.confidence)
        ),
    )
}

/// Judge v2 alone against the fixed limits, as on staging, where it serves all of the traffic
/// when the release asks whether it was tested: it fails a limit as in production (with
/// confidence, its evidence joining the release's, so that one error budget covers staging
/// too), and passes only once shown within each limit with the gate's confidence: the upper
/// bounds of its error rate and of its share of requests slower than the p99 limit at most
/// what the limits allow. Nothing short of that is a test passed.
pub fn judge_alone(
    thresholds: &Thresholds,
    range_secs: u64,
    v2: &Measured,
    custom: &[Custom],
    before: Evidence,
) -> Verdict {
    let mut verdict = judge(
        thresholds,
        range_secs,
        &Measured::default(),
        v2,
        custom,
        before,
    );
    verdict.checks.retain(|c| !c.name.ends_with(" vs v1"));
    for check in &mut verdict.checks {
        check.v1 = None;
    }
    if verdict.outcome != Outcome::Pass {
        return verdict;
    }
    let confidence = thresholds.confidence / 100.0;
    let sure = number(thresholds.confidence);
    let c2 = v2.counts();
    let errors = exact::upper_bound(c2.failures, c2.requests, confidence);
    let error_limit = 1.0 - thresholds.success_rate / 100.0;
    let not_yet = |verdict: &mut Verdict, reason: String| {
        verdict.outcome = Outcome::NotEnoughTraffic;
        verdict.reason = format!("{reason}: not yet shown to be within it; more traffic will tell");
    };
    if errors > error_limit {
        not_yet(
            &mut verdict,
            format!(
                "v2's error rate is at most {} with {sure}% confidence, and the success-rate \
                 limit allows {}",
                percent(errors),
                percent(error_limit)
            ),
        );
        return verdict;
    }
    let max = number(thresholds.p99_max_ms);
    let Some((bound, slow)) = v2.latency.slower_than_at_most(thresholds.p99_max_ms) else {
        verdict.outcome = Outcome::CannotJudge;
        verdict.reason = format!(
            "v2's latency histogram has no bucket bound at or below the p99 limit of {max} ms: \
             it cannot show the p99 within it"
        );
        return verdict;
    };
    let slower = exact::upper_bound(slow.failures, slow.requests, confidence);
    if slower > 0.01 {
        not_yet(
            &mut verdict,
            format!(
                "at most {} of v2's requests are slower than {} ms with {sure}% confidence, and a \
                 p99 of at most {max} ms allows 1%",
                percent(slower),
                number(bound)
            ),
        );
        return verdict;
    }
    verdict.reason = format!(
        "v2 meets every limit with {sure}% confidence: its error rate is at most {}, and at most \
         {} of its requests are slower than {} ms",
        percent(errors),
        percent(slower),
        number(bound)
    );
    verdict
}

/// A share as a percentage, to three decimal places where that matters: `0.134%`.
fn percent(share: f64) -> String {
    format!("{}%", number(100.0 * share))
}

/// An e-value as it is read: `0.02`, `12.3`, `4.1e12`.
pub fn e_text(e: f64) -> String {
    if e < 10.0 {
        number((e * 100.0).round() / 100.0)
    } else if e < 1000.0 {
        number((e * 10.0).round() / 10.0)
    } else {
        format!("{e:.1e}")
    }
}

/// The verdict as a table: v1 and v2 side by side, each check's limit, and what failed.
pub fn table(verdict: &Verdict) -> Vec<String> {
    let mut rows = vec![[
        "check".to_string(),
        "v1".into(),
        "v2".into(),
        "limit".into(),
        "evidence".into(),
        String::new(),
    ]];
    for c in &verdict.checks {
        // The e-value against v2 over the release, and what fails it.
        let evidence = match (c.e_value, verdict.threshold) {
            (Some(e), Some(needed)) => format!("e {} of {}", e_text(e), number(needed)),
            _ => String::new(),
        };
        rows.push([
            c.name.clone(),
            value(c.v1, &c.unit),
            value(c.v2, &c.unit),
            c.limit.clone(),
            evidence,
            if c.passed { "ok" } else { "FAILED" }.into(),
        ]);
    }
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2), width(3), width(4)];
    rows.iter()
        .map(|r| {
            format!(
                "{:<w0$}  {:>w1$}  {:>w2$}  {:<w3$}  {:<w4$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3],
                w4 = widths[4]
            )
            .trim_end()
            .to_string()
        })
        .collect()
}

/// A check's value as shown: `97.00%`, `75 ms`, `16801`, or `no data`.
pub fn value(v: Option<f64>, unit: &str) -> String {
    match (v, unit) {
        (None, _) => "no data".into(),
        (Some(v), "%") => format!("{v:.2}%"),
        (Some(v), "ms") => format!("{} ms", number(v)),
        (Some(v), _) => number(v),
    }
}

/// A number as Prometheus writes it: `NaN`, `+Inf` and `-Inf` for those that are none.
pub fn as_prometheus(value: f64) -> String {
    match value {
        v if v.is_nan() => "NaN".into(),
        f64::INFINITY => "+Inf".into(),
        f64::NEG_INFINITY => "-Inf".into(),
        v => number(v),
    }
}

/// A number as short as it can be said: whole numbers without decimals.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let text = format!("{v:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// Seconds as the operator reads them: `5m`, `7m30s`, `45s`.
pub fn duration(secs: u64) -> String {
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::histogram::ISTIO_BOUNDS;

    /// `requests` with latencies in Istio's buckets: 97% at most 25 ms, 1% up to 50 ms and
    /// 2% up to `slow_le`, where the p99 falls (75 ms for 100, 175 ms for 250).
    fn latency(requests: f64, slow_le: f64) -> Histogram {
        let counts: Vec<f64> = ISTIO_BOUNDS
            .iter()
            .map(|&bound| {
                if bound == 25.0 {
                    0.97 * requests
                } else if bound == 50.0 {
                    0.01 * requests
                } else if bound == slow_le {
                    0.02 * requests
                } else {
                    0.0
                }
            })
            .collect();
        Histogram::from_counts(&ISTIO_BOUNDS, &counts)
    }

    fn healthy(requests: f64) -> Measured {
        Measured {
            requests,
            errors: requests * 0.001,
            latency: latency(requests, 100.0),
        }
    }

    fn judged(v1: &Measured, v2: &Measured) -> Verdict {
        judge(
            &Thresholds::default(),
            600,
            v1,
            v2,
            &[],
            Evidence::default(),
        )
    }

    fn assert_says(verdict: &Verdict, text: &str) {
        assert!(verdict.reason.contains(text), "{}", verdict.reason);
    }

    fn failed(verdict: &Verdict) -> Vec<&str> {
        verdict.failed().iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn a_healthy_v2_with_the_traffic_to_show_it_passes() {
        let verdict = judged(&healthy(45_000.0), &healthy(15_000.0));
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
        assert!(failed(&verdict).is_empty());
        assert!(!verdict.incident);
        assert_says(&verdict, "at most 0.1");
    }

    fn alone(v2: &Measured, before: Evidence) -> Verdict {
        judge_alone(&Thresholds::default(), 600, v2, &[], before)
    }

    #[test]
    fn v2_alone_passes_only_once_shown_within_each_limit() {
        let verdict = alone(&healthy(15_000.0), Evidence::default());
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
        assert_says(&verdict, "with 95% confidence");
        assert_says(&verdict, "slower than 500 ms");
        // Nothing to compare with: no check against v1 is shown.
        let names: Vec<&str> = verdict.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["requests", "success rate", "p99 latency"]);
        assert!(verdict.checks.iter().all(|c| c.v1.is_none()));
        // 150 requests without an error meet the limits, but do not show it: 0 in 150 is at
        // most 2% with 95% confidence, where the limit allows 1%.
        let verdict = alone(&healthy(150.0), Evidence::default());
        assert_eq!(verdict.outcome, Outcome::NotEnoughTraffic, "{verdict:?}");
        assert_says(&verdict, "success-rate limit allows 1%: not yet shown");
        // Errors within the limit, but 2% of the requests slower than the p99 limit: not shown
        // within it, and not enough evidence against it either.
        let slow = Measured {
            latency: latency(1_000.0, 1_000.0),
            ..healthy(1_000.0)
        };
        let verdict = alone(&slow, Evidence::default());
        assert_eq!(verdict.outcome, Outcome::NotEnoughTraffic, "{verdict:?}");
        assert_says(
            &verdict,
            "slower than 500 ms with 95% confidence, and a p99 of at most",
        );
    }

    #[test]
    fn v2_alone_fails_a_limit_with_confidence_and_its_evidence_joins_the_release() {
        let bad = Measured {
            errors: 100.0,
            ..healthy(2_000.0)
        };
        let verdict = alone(&bad, Evidence::default());
        assert_eq!(verdict.outcome, Outcome::Fail, "{verdict:?}");
        assert_eq!(failed(&verdict), ["success rate"]);
        assert!(!verdict.incident);
        // No v1 in the reason: staging's v1 serves nothing to judge.
        assert_says(&verdict, "v2 fails success rate 95.00% (limit >= 99%; e ");
        assert!(!verdict.reason.contains("v1"), "{}", verdict.reason);
        // 2% of errors in 300 requests: evidence, not yet enough on its own...
        let some = Measured {
            errors: 6.0,
            ..healthy(300.0)
        };
        let verdict = alone(&some, Evidence::default());
        assert_ne!(verdict.outcome, Outcome::Fail, "{verdict:?}");
        let step = verdict.evidence.unwrap();
        assert!(
            step.success_rate > 0.0 && step.errors_vs_v1 == 0.0,
            "{step:?}"
        );
        // ...but what the release saw before counts with it.
        let before = Evidence {
            success_rate: 79.0_f64.ln(),
            ..Evidence::default()
        };
        let verdict = alone(&some, before);
        assert_eq!(verdict.outcome, Outcome::Fail, "{verdict:?}");
    }

    #[test]
    fn a_healthy_v2_with_too_little_traffic_to_show_it_is_not_yet() {
        // 3 errors in 2,800: at most 0.28% at 95%, where v1's 0.1% and the margin allow 0.2%.
        let verdict = judged(&healthy(2_800.0), &healthy(2_800.0));
        assert_eq!(verdict.outcome, Outcome::NotEnoughTraffic, "{verdict:?}");
        assert_says(&verdict, "not yet shown");
        // A wider margin: shown.
        let wide = Thresholds {
            margin: 0.5,
            ..Thresholds::default()
        };
        let verdict = judge(
            &wide,
            600,
            &healthy(2_800.0),
            &healthy(2_800.0),
            &[],
            Evidence::default(),
        );
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
    }

    #[test]
    fn v2_at_3_percent_errors_against_v1_at_0_1_fails_both_ways() {
        let v2 = Measured {
            errors: 30.0,
            ..healthy(1000.0)
        };
        let verdict = judged(&healthy(10000.0), &v2);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(failed(&verdict), ["success rate", "success rate vs v1"]);
        assert!(!verdict.incident);
        let rate = &verdict.checks[1];
        assert_eq!((rate.v1, rate.v2), (Some(99.9), Some(97.0)));
        assert!(rate.e_value.unwrap() >= 80.0, "{rate:?}");
        assert_eq!(verdict.threshold, Some(80.0));
    }

    #[test]
    fn a_gross_regression_fails_before_the_requests_to_judge_a_pass() {
        // 40 requests, 20 of them 5xx: far from the 100 a pass needs, and plainly worse.
        let v2 = Measured {
            errors: 20.0,
            ..healthy(40.0)
        };
        let verdict = judged(&healthy(4000.0), &v2);
        assert_eq!(verdict.outcome, Outcome::Fail, "{verdict:?}");
    }

    #[test]
    fn a_few_errors_that_chance_explains_fail_nothing() {
        // 2 of 150 (1.3%) against v1's 0.1%: below the 99% limit, but not with confidence.
        let v2 = Measured {
            errors: 2.0,
            ..healthy(150.0)
        };
        let verdict = judged(&healthy(15_000.0), &v2);
        assert!(failed(&verdict).is_empty(), "{verdict:?}");
        assert_ne!(verdict.outcome, Outcome::Fail);
    }

    #[test]
    fn evidence_from_earlier_steps_adds_up() {
        let v2 = Measured {
            errors: 3.0,
            ..healthy(600.0)
        };
        let alone = judged(&healthy(60_000.0), &v2);
        assert!(failed(&alone).is_empty(), "{alone:?}");
        let step = alone.evidence.unwrap();
        // The same evidence three steps running is enough.
        let before = step.and(step).and(step);
        let verdict = judge(
            &Thresholds::default(),
            600,
            &healthy(60_000.0),
            &v2,
            &[],
            before,
        );
        assert_eq!(failed(&verdict), ["success rate vs v1"], "{verdict:?}");
    }

    #[test]
    fn a_slower_v2_fails_the_comparison_not_the_limit() {
        // v2's slowest 1% in 250 ms buckets, v1's in 100: p99 250 ms against 100.
        let v2 = Measured {
            latency: latency(3000.0, 250.0),
            ..healthy(3000.0)
        };
        let verdict = judged(&healthy(30_000.0), &v2);
        assert_eq!(verdict.outcome, Outcome::Fail, "{verdict:?}");
        assert_eq!(failed(&verdict), ["latency vs v1"]);
        assert_says(&verdict, "175 ms (v1 75 ms");
    }

    #[test]
    fn too_little_v2_traffic_is_not_a_verdict() {
        let verdict = judged(&healthy(10000.0), &healthy(20.0));
        assert_eq!(verdict.outcome, Outcome::NotEnoughTraffic);
        assert_says(&verdict, "v2 served 20 requests");
    }

    #[test]
    fn both_versions_equally_bad_is_an_incident_and_no_pass() {
        // A load spike: both at 5% errors, and 1% over 1 s.
        let bad = |requests: f64| Measured {
            requests,
            errors: requests * 0.05,
            latency: latency(requests, 2500.0),
        };
        let verdict = judged(&bad(10000.0), &bad(1000.0));
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(verdict.incident, "{verdict:?}");
        assert_says(&verdict, "v1 fails as much");
        assert_eq!(failed(&verdict), ["success rate"]);
        // v2 worse still than v1 is v2's fault as well.
        let worse = Measured {
            errors: 200.0,
            ..bad(1000.0)
        };
        let verdict = judged(&bad(10000.0), &worse);
        assert!(!verdict.incident, "{verdict:?}");
    }

    #[test]
    fn at_100_percent_v1_has_no_traffic_and_v2_meets_the_limits_alone() {
        let verdict = judged(&Measured::default(), &healthy(15_000.0));
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
        assert!(verdict.checks[2].limit.contains("v1 had no requests"));
        assert!(verdict.checks[4].limit.contains("v1 had no requests"));
    }

    #[test]
    fn team_checks_hold_for_v2_and_a_missing_value_fails() {
        let custom = [
            Custom {
                name: "queue depth".into(),
                v1: Some(3.0),
                v2: Some(4.0),
                condition: Condition::AtMost(10.0),
            },
            Custom {
                name: "cache hits".into(),
                v1: Some(0.9),
                v2: None,
                condition: Condition::AtLeast(0.5),
            },
        ];
        let verdict = judge(
            &Thresholds::default(),
            600,
            &healthy(10000.0),
            &healthy(1000.0),
            &custom,
            Evidence::default(),
        );
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(failed(&verdict), ["cache hits"]);
    }

    #[test]
    fn the_table_puts_v1_and_v2_side_by_side() {
        let v2 = Measured {
            errors: 30.0,
            ..healthy(1000.0)
        };
        let lines = table(&judged(&healthy(10000.0), &v2));
        assert!(lines[0].starts_with("check"), "{lines:?}");
        let rate = lines
            .iter()
            .find(|l| l.starts_with("success rate "))
            .unwrap();
        assert!(
            rate.contains("99.90%") && rate.contains("97.00%") && rate.contains(">= 99%"),
            "{rate}"
        );
        assert!(rate.ends_with("FAILED"), "{rate}");
    }

    #[test]
    fn durations_read_as_the_flags_take_them() {
        assert_eq!(duration(300), "5m");
        assert_eq!(duration(450), "7m30s");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(5400), "1h30m");
    }
}
