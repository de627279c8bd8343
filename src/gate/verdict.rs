//! The gate's checks combined into one verdict: pass, fail, or not yet (too little v2
//! traffic, or the weight not deployed for the window yet), with v1's value, v2's value and
//! the limit of every check, and whether v1 fails as much as v2 does (an incident, which no
//! rollback of v2 mends, and still no reason to give v2 more traffic).

use serde::{Deserialize, Serialize};

use super::Thresholds;
use super::stats::{self, Proportion, ZTest};

/// What one version served over the range.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Measured {
    pub requests: f64,
    /// 5xx answers.
    pub errors: f64,
    /// `None` without a latency sample.
    pub p99_ms: Option<f64>,
}

impl Measured {
    fn success_rate(&self) -> Option<f64> {
        Proportion {
            failures: self.errors,
            total: self.requests,
        }
        .rate()
        .map(|failed| 100.0 * (1.0 - failed))
    }
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// The range the metrics were read over, in seconds.
    pub range_secs: u64,
    pub checks: Vec<Check>,
    /// The two-proportion test of v2's failure rate against v1's, where both had requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub z_test: Option<ZTestRecord>,
    /// v2 fails an absolute limit, but v1 fails it as much and no comparison with v1 fails:
    /// an incident (a load spike, a dependency down), not v2's fault. Still not a pass.
    pub incident: bool,
    /// One line that says why.
    pub reason: String,
}

/// [`ZTest`] as journaled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ZTestRecord {
    pub z: f64,
    pub p_value: f64,
    pub confidence: f64,
}

impl Verdict {
    /// The weight has not been deployed for the window yet: nothing is read.
    pub fn not_enough_time(deployed_secs: u64, thresholds: &Thresholds) -> Verdict {
        Verdict {
            outcome: Outcome::NotEnoughTime,
            range_secs: deployed_secs,
            checks: Vec::new(),
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
            z_test: None,
            incident: false,
            reason: why,
        }
    }

    /// Production routes v2 nothing yet: there is no traffic to judge, and nothing is read.
    pub fn unrouted() -> Verdict {
        Verdict {
            outcome: Outcome::NotEnoughTraffic,
            range_secs: 0,
            checks: Vec::new(),
            z_test: None,
            incident: false,
            reason: "production routes no traffic to v2 yet; the gate judges the ramp from its \
                     first weight"
                .into(),
        }
    }

    #[cfg(test)]
    pub fn failed(&self) -> Vec<&Check> {
        self.checks.iter().filter(|c| !c.passed).collect()
    }
}

/// Judge v2 against v1 and the limits, over `range_secs` of metrics.
pub fn judge(
    thresholds: &Thresholds,
    range_secs: u64,
    v1: Measured,
    v2: Measured,
    custom: &[Custom],
) -> Verdict {
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
    });
    let (rate1, rate2) = (v1.success_rate(), v2.success_rate());
    let success_limit = |rate: Option<f64>| rate.is_some_and(|r| r >= thresholds.success_rate);
    checks.push(Check {
        name: "success rate".into(),
        v1: rate1,
        v2: rate2,
        unit: "%".into(),
        limit: format!(">= {}%", number(thresholds.success_rate)),
        passed: success_limit(rate2),
        v1_passed: rate1.map(|_| success_limit(rate1)),
    });
    let z_test = stats::v2_worse(
        Proportion {
            failures: v1.errors,
            total: v1.requests,
        },
        Proportion {
            failures: v2.errors,
            total: v2.requests,
        },
    );
    let confidence = thresholds.confidence / 100.0;
    checks.push(Check {
        name: "success rate vs v1".into(),
        v1: rate1,
        v2: rate2,
        unit: "%".into(),
        limit: match (rate1, z_test) {
            (None, _) => "v1 had no requests: not compared".into(),
            (Some(_), Some(ZTest { p_value, .. })) => format!(
                "not below v1 beyond chance at {}%: p = {}",
                number(thresholds.confidence),
                p_value_text(p_value)
            ),
            (Some(_), None) => "not below v1 beyond chance (no errors on either side)".into(),
        },
        passed: !z_test.is_some_and(|t| t.worse_at(confidence)),
        v1_passed: None,
    });
    let latency_limit = |p99: Option<f64>| p99.is_none_or(|ms| ms <= thresholds.p99_max_ms);
    checks.push(Check {
        name: "p99 latency".into(),
        v1: v1.p99_ms,
        v2: v2.p99_ms,
        unit: "ms".into(),
        limit: format!("<= {} ms", number(thresholds.p99_max_ms)),
        passed: latency_limit(v2.p99_ms),
        v1_passed: v1.p99_ms.map(|_| latency_limit(v1.p99_ms)),
    });
    checks.push(Check {
        name: "p99 latency vs v1".into(),
        v1: v1.p99_ms,
        v2: v2.p99_ms,
        unit: "ms".into(),
        limit: match v1.p99_ms {
            Some(ms) => format!(
                "<= v1's x {} = {} ms",
                number(thresholds.p99_factor),
                number(ms * thresholds.p99_factor)
            ),
            None => "v1 had no requests: not compared".into(),
        },
        passed: match (v1.p99_ms, v2.p99_ms) {
            (Some(base), Some(ms)) => ms <= base * thresholds.p99_factor,
            _ => true,
        },
        v1_passed: None,
    });
    for check in custom {
        checks.push(Check {
            name: check.name.clone(),
            v1: check.v1,
            v2: check.v2,
            unit: String::new(),
            limit: check.condition.describe(),
            // A team check without a value for v2 cannot vouch for it.
            passed: check.v2.is_some_and(|v| check.condition.holds(v)),
            v1_passed: check.v1.map(|v| check.condition.holds(v)),
        });
    }
    let z_test = z_test.map(|t| ZTestRecord {
        z: t.z,
        p_value: t.p_value,
        confidence: thresholds.confidence,
    });
    if !enough {
        return Verdict {
            outcome: Outcome::NotEnoughTraffic,
            range_secs,
            reason: format!(
                "v2 served {} in {}, the gate needs {} to judge",
                crate::output::count(v2.requests.round() as u64, "request"),
                duration(range_secs),
                thresholds.min_requests
            ),
            checks,
            z_test,
            incident: false,
        };
    }
    let failed: Vec<&Check> = checks.iter().filter(|c| !c.passed).collect();
    let incident = !failed.is_empty() && failed.iter().all(|c| c.v1_passed == Some(false));
    let reason = if failed.is_empty() {
        "v2 meets every limit and is no worse than v1".to_string()
    } else {
        let names: Vec<String> = failed
            .iter()
            .map(|c| {
                format!(
                    "{} {} (v1 {}; limit {})",
                    c.name,
                    value(c.v2, &c.unit),
                    value(c.v1, &c.unit),
                    c.limit
                )
            })
            .collect();
        if incident {
            format!(
                "v2 fails {}, but v1 fails as much: an incident, not v2's fault; the weight stays \
                 until it is over",
                names.join(", ")
            )
        } else {
            format!("v2 fails {}", names.join(", "))
        }
    };
    Verdict {
        outcome: if failed.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        range_secs,
        checks,
        z_test,
        incident,
        reason,
    }
}

/// The verdict as a table: v1 and v2 side by side, each check's limit, and what failed.
pub fn table(verdict: &Verdict) -> Vec<String> {
    let mut rows = vec![[
        "check".to_string(),
        "v1".into(),
        "v2".into(),
        "limit".into(),
        String::new(),
    ]];
    for c in &verdict.checks {
        rows.push([
            c.name.clone(),
            value(c.v1, &c.unit),
            value(c.v2, &c.unit),
            c.limit.clone(),
            if c.passed { "ok" } else { "FAILED" }.into(),
        ]);
    }
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let widths = [width(0), width(1), width(2), width(3)];
    rows.iter()
        .map(|r| {
            format!(
                "{:<w0$}  {:>w1$}  {:>w2$}  {:<w3$}  {}",
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
                w3 = widths[3]
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

/// A number as short as it can be said: whole numbers without decimals.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let text = format!("{v:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn p_value_text(p: f64) -> String {
    if p < 0.0001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
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

    fn healthy(requests: f64) -> Measured {
        Measured {
            requests,
            errors: requests * 0.001,
            p99_ms: Some(120.0),
        }
    }

    #[test]
    fn a_healthy_v2_passes() {
        let verdict = judge(
            &Thresholds::default(),
            600,
            healthy(10000.0),
            healthy(1000.0),
            &[],
        );
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
        assert!(verdict.failed().is_empty());
        assert!(!verdict.incident);
    }

    #[test]
    fn v2_at_3_percent_errors_against_v1_at_0_1_fails_both_ways() {
        let v2 = Measured {
            errors: 30.0,
            ..healthy(1000.0)
        };
        let verdict = judge(&Thresholds::default(), 600, healthy(10000.0), v2, &[]);
        assert_eq!(verdict.outcome, Outcome::Fail);
        let failed: Vec<&str> = verdict.failed().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(failed, ["success rate", "success rate vs v1"]);
        assert!(!verdict.incident);
        // 10/10000 vs 30/1000: Python gives z = 14.5264357558.
        let z = verdict.z_test.unwrap();
        assert!((z.z - 14.5264357558).abs() < 1e-9, "{z:?}");
        let rate = &verdict.checks[1];
        assert_eq!((rate.v1, rate.v2), (Some(99.9), Some(97.0)));
    }

    #[test]
    fn a_small_difference_that_chance_explains_passes_the_comparison() {
        // 100/10000 vs 15/1000: p = 0.069 (Python), not below 5%; but 98.5% < 99%.
        let v1 = Measured {
            errors: 100.0,
            ..healthy(10000.0)
        };
        let v2 = Measured {
            errors: 15.0,
            ..healthy(1000.0)
        };
        let thresholds = Thresholds {
            success_rate: 98.0,
            ..Thresholds::default()
        };
        let verdict = judge(&thresholds, 600, v1, v2, &[]);
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
        assert!((verdict.z_test.unwrap().p_value - 0.0691451769022).abs() < 1e-6);
        // At 90% confidence the same numbers say v2 is worse.
        let strict = Thresholds {
            confidence: 90.0,
            ..thresholds
        };
        let verdict = judge(&strict, 600, v1, v2, &[]);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert_eq!(verdict.failed()[0].name, "success rate vs v1");
    }

    #[test]
    fn a_p99_twice_v1s_fails_the_factor_not_the_limit() {
        let v2 = Measured {
            p99_ms: Some(240.0),
            ..healthy(1000.0)
        };
        let verdict = judge(&Thresholds::default(), 600, healthy(10000.0), v2, &[]);
        assert_eq!(verdict.outcome, Outcome::Fail);
        let failed: Vec<&str> = verdict.failed().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(failed, ["p99 latency vs v1"]);
        assert!(verdict.reason.contains("240 ms"), "{}", verdict.reason);
    }

    #[test]
    fn too_little_v2_traffic_is_not_a_verdict() {
        let verdict = judge(
            &Thresholds::default(),
            600,
            healthy(10000.0),
            Measured {
                errors: 10.0,
                ..healthy(20.0)
            },
            &[],
        );
        assert_eq!(verdict.outcome, Outcome::NotEnoughTraffic);
        assert!(
            verdict.reason.contains("v2 served 20 requests"),
            "{}",
            verdict.reason
        );
    }

    #[test]
    fn both_versions_equally_bad_is_an_incident_and_no_pass() {
        // A load spike: both at 5% errors and 900 ms.
        let bad = |requests: f64| Measured {
            requests,
            errors: requests * 0.05,
            p99_ms: Some(900.0),
        };
        let verdict = judge(&Thresholds::default(), 600, bad(10000.0), bad(1000.0), &[]);
        assert_eq!(verdict.outcome, Outcome::Fail);
        assert!(verdict.incident, "{verdict:?}");
        assert!(
            verdict.reason.contains("v1 fails as much"),
            "{}",
            verdict.reason
        );
        let failed: Vec<&str> = verdict.failed().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(failed, ["success rate", "p99 latency"]);
        // v2 a little worse still on latency beyond the factor is v2's fault as well.
        let worse = Measured {
            p99_ms: Some(2000.0),
            ..bad(1000.0)
        };
        let verdict = judge(&Thresholds::default(), 600, bad(10000.0), worse, &[]);
        assert!(!verdict.incident, "{verdict:?}");
    }

    #[test]
    fn at_100_percent_v1_has_no_traffic_and_v2_meets_the_limits_alone() {
        let verdict = judge(
            &Thresholds::default(),
            600,
            Measured::default(),
            healthy(1000.0),
            &[],
        );
        assert_eq!(verdict.outcome, Outcome::Pass, "{verdict:?}");
        assert!(verdict.checks[2].limit.contains("v1 had no requests"));
        assert!(verdict.z_test.is_none());
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
            healthy(10000.0),
            healthy(1000.0),
            &custom,
        );
        assert_eq!(verdict.outcome, Outcome::Fail);
        let failed: Vec<&str> = verdict.failed().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(failed, ["cache hits"]);
    }

    #[test]
    fn the_table_puts_v1_and_v2_side_by_side() {
        let v2 = Measured {
            errors: 30.0,
            ..healthy(1000.0)
        };
        let lines = table(&judge(
            &Thresholds::default(),
            600,
            healthy(10000.0),
            v2,
            &[],
        ));
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
