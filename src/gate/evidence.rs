//! Evidence that v2 is worse, as e-values: nonnegative numbers whose expectation is at most 1
//! while v2 is as good (as v1, or as a limit), however the counts grew. By Ville's inequality
//! the chance that one ever reaches 1/α, looked at as often as anyone likes, is at most α; the
//! e-values of successive ramp steps multiply into one for the whole release. The gate fails a
//! check when its release-wide e-value reaches 1/α of the check's share of the budget.
//!
//! Each e-value is a likelihood ratio mixed over the alternatives (a mixture sequential
//! probability ratio test), conditioned on what is known, so that only the split of the counts
//! between what is compared is tested:
//! - **errors vs v1**: given the errors of both versions, each error is v2's with chance
//!   θ0 = v2's share of the requests while v2 is as good; the alternatives θ > θ0 are mixed
//!   over a Beta prior around θ0.
//! - **above a limit** (5xx answers above the success-rate limit, requests slower than the p99
//!   limit): each request is such with chance q at most the limit's q; the alternatives above it
//!   are mixed likewise.
//! - **latency vs v1**: while both versions' latencies have one distribution, each request
//!   slower than a bucket's bound is v2's with chance θ0 too; the e-values of that, one per
//!   bound, are averaged.
//!
//! Counts from Prometheus' `increase()` are extrapolated to the range and not whole; they are
//! rounded to the nearest whole number, which moves an e-value far less than one more error.

use super::exact::{ln_beta, ln_beta_sf};

/// How concentrated the Beta priors are around the null's chance: Beta(c·p0, c·(1 − p0)),
/// truncated to the alternatives above p0. Small: the mixture spreads over large regressions
/// (a few percent of errors where v1 has 0.1%) as well as small ones. Chosen on the simulation
/// harness (`bench/gate.sh`).
pub const CONCENTRATION: f64 = 10.0;

/// ln of the e-value of `successes` against `failures` (trials that are a success with chance
/// `p0` under the null), mixing the alternatives p > p0 over a Beta(c·p0, c·(1 − p0)) prior
/// truncated to them.
pub fn above(successes: u64, failures: u64, p0: f64) -> f64 {
    if !(p0 > 0.0 && p0 < 1.0) {
        return 0.0;
    }
    let (a, b) = (CONCENTRATION * p0, CONCENTRATION * (1.0 - p0));
    mixture_ln_e(successes as f64, failures as f64, p0, a, b)
}

/// The truncated Beta(a, b) mixture's ln e-value: ∫_{p0}^1 p^s (1 − p)^f dπ(p) over p0^s
/// (1 − p0)^f, in closed form with the incomplete beta function.
pub fn mixture_ln_e(s: f64, f: f64, p0: f64, a: f64, b: f64) -> f64 {
    ln_beta(a + s, b + f) + ln_beta_sf(p0, a + s, b + f)
        - ln_beta(a, b)
        - ln_beta_sf(p0, a, b)
        - s * p0.ln()
        - f * (1.0 - p0).ln()
}

/// ln of the e-value that v2's errors exceed its share of both versions' errors.
pub fn errors_vs_v1(v1: Counts, v2: Counts) -> f64 {
    let total = v1.requests + v2.requests;
    if v1.requests == 0 || v2.requests == 0 {
        return 0.0;
    }
    above(v2.failures, v1.failures, v2.requests as f64 / total as f64)
}

/// ln of the e-value that more than a share `limit` of the requests failed (or were slow).
pub fn above_limit(counts: Counts, limit: f64) -> f64 {
    above(
        counts.failures,
        counts.requests.saturating_sub(counts.failures),
        limit,
    )
}

/// Whole counts: of requests, and of those that failed (or were slower than a limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub requests: u64,
    pub failures: u64,
}

/// A count as Prometheus' `increase()` gives it, made whole.
pub fn whole(count: f64) -> u64 {
    if count.is_finite() && count > 0.0 {
        count.round() as u64
    } else {
        0
    }
}

/// ln of the e-value that v2's latencies lie further up the histogram than v1's, from each
/// version's count of requests per bucket (`v1[i]` and `v2[i]` up to `bounds[i]`, the last
/// bound +Inf): the average, over the finite bounds, of the e-values that v2's share of the
/// requests slower than the bound exceeds its share of all of them. A slowdown of every
/// request and one of the slowest few alike raise some of them; an average of e-values is one.
pub fn latency_vs_v1(bounds: &[f64], v1: &[u64], v2: &[u64]) -> f64 {
    let (n1, n2) = (v1.iter().sum::<u64>(), v2.iter().sum::<u64>());
    if n1 == 0 || n2 == 0 {
        return 0.0;
    }
    let theta0 = n2 as f64 / (n1 + n2) as f64;
    let (mut slower1, mut slower2) = (n1, n2);
    let mut terms = Vec::new();
    for ((bound, c1), c2) in bounds.iter().zip(v1).zip(v2) {
        slower1 -= c1;
        slower2 -= c2;
        if bound.is_finite() {
            terms.push(above(slower2, slower1, theta0));
        }
    }
    log_sum_exp(&terms) - (terms.len().max(1) as f64).ln()
}

fn log_sum_exp(terms: &[f64]) -> f64 {
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if top == f64::NEG_INFINITY {
        return top;
    }
    top + terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn the_mixture_matches_scipy_quadrature() {
        let all: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/gate_reference.json")).unwrap();
        for case in all["truncated_mixture_ln_e"].as_array().unwrap() {
            let v: Vec<f64> = case
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            let got = mixture_ln_e(v[0], v[1], v[2], v[3], v[4]);
            assert!((got - v[5]).abs() < 1e-7, "{case}: {got}");
        }
    }

    #[test]
    fn no_difference_is_no_evidence_and_a_gross_one_is_much() {
        let v1 = Counts {
            requests: 15_000,
            failures: 15,
        };
        // v2 at 1% of the traffic, failing as v1 does: no evidence.
        let same = Counts {
            requests: 150,
            failures: 0,
        };
        assert!(errors_vs_v1(v1, same) < 0.0);
        // Failing 5% of its requests: far past 1/0.0125 = 80.
        let bad = Counts {
            requests: 150,
            failures: 8,
        };
        assert!(
            errors_vs_v1(v1, bad) > 80f64.ln(),
            "{}",
            errors_vs_v1(v1, bad)
        );
        assert!(above_limit(bad, 0.01) > 0.0);
        // More evidence with more of the same.
        let worse = Counts {
            requests: 300,
            failures: 16,
        };
        assert!(errors_vs_v1(v1, worse) > errors_vs_v1(v1, bad));
    }

    #[test]
    fn a_slower_v2_is_evidence_and_the_same_latencies_are_not() {
        let bounds = [10.0, 25.0, 50.0, 100.0, 250.0, f64::INFINITY];
        let v1 = [4000, 3000, 2000, 900, 90, 10];
        // The same shape at a tenth of the traffic.
        let same = [400, 300, 200, 90, 9, 1];
        assert!(latency_vs_v1(&bounds, &v1, &same) < 0.5);
        // Everything one bucket slower.
        let slower = [0, 400, 300, 200, 90, 10];
        assert!(latency_vs_v1(&bounds, &v1, &slower) > 80f64.ln());
        // Only the slowest 2% slower.
        let tail = [400, 300, 200, 70, 20, 10];
        assert!(latency_vs_v1(&bounds, &v1, &tail) > 80f64.ln());
        // Faster is no evidence of worse.
        let faster = [700, 200, 80, 20, 0, 0];
        assert!(latency_vs_v1(&bounds, &v1, &faster) < 0.0);
    }

    #[test]
    fn counts_are_made_whole() {
        assert_eq!(whole(2.4), 2);
        assert_eq!(whole(2.5), 3);
        assert_eq!(whole(-1.0), 0);
        assert_eq!(whole(f64::NAN), 0);
    }
}
