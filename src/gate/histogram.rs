//! Istio's request duration histogram of one version, as Prometheus answers
//! `sum by (le) (increase(istio_request_duration_milliseconds_bucket{...}[R]))`: for each
//! bucket's upper bound `le` (milliseconds, the last `+Inf`), the requests that took at most
//! that long. The gate reads its p99 from it as `histogram_quantile` does, and compares whole
//! distributions bucket by bucket.

use super::evidence::{Counts, whole};
use super::verdict::as_prometheus;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Histogram {
    /// (upper bound, requests at most that long), by bound; the last bound is +Inf. Empty: no
    /// requests were measured.
    buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// The histogram from Prometheus' series, each a bucket's `le` label and its count, in any
    /// order; why not, when it is not one (a bound that is not a number, a count that is not a
    /// finite number at least 0, no `+Inf` bucket). Counts that `increase()` left a little out
    /// of order between buckets are put in order as `histogram_quantile` does.
    pub fn from_series(series: &[(String, f64)]) -> Result<Histogram, String> {
        let mut buckets = Vec::with_capacity(series.len());
        for (le, count) in series {
            let bound = le
                .parse::<f64>()
                .ok()
                .filter(|b| !b.is_nan())
                .ok_or_else(|| format!("a bucket's le is {le:?}, not a number"))?;
            if !(count.is_finite() && *count >= 0.0) {
                return Err(format!("bucket le={le} counted {}", as_prometheus(*count)));
            }
            buckets.push((bound, *count));
        }
        if buckets.is_empty() {
            return Ok(Histogram::default());
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        if buckets
            .last()
            .is_none_or(|(bound, _)| *bound != f64::INFINITY)
        {
            return Err("the histogram has no le=\"+Inf\" bucket".into());
        }
        let mut most: f64 = 0.0;
        for bucket in &mut buckets {
            most = most.max(bucket.1);
            bucket.1 = most;
        }
        Ok(Histogram { buckets })
    }

    /// A histogram from per-bucket counts (`counts[i]` up to `bounds[i]`; the last bound +Inf).
    pub fn from_counts(bounds: &[f64], counts: &[f64]) -> Histogram {
        let mut total = 0.0;
        let buckets = bounds
            .iter()
            .zip(counts)
            .map(|(bound, count)| {
                total += count;
                (*bound, total)
            })
            .collect();
        Histogram { buckets }
    }

    /// The requests it counts.
    pub fn total(&self) -> f64 {
        self.buckets.last().map_or(0.0, |(_, count)| *count)
    }

    /// The `q` quantile as `histogram_quantile` computes it: linear within the bucket where it
    /// falls, the last finite bound when that is the `+Inf` bucket. `None` without requests.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut below = (0.0, 0.0);
        for &(bound, count) in &self.buckets {
            if count >= rank {
                if bound == f64::INFINITY {
                    return Some(below.0);
                }
                let (lower, before) = below;
                if count == before {
                    return Some(bound);
                }
                return Some(lower + (bound - lower) * (rank - before) / (count - before));
            }
            below = (bound, count);
        }
        None
    }

    /// The upper bounds and each bucket's whole count of requests.
    pub fn per_bucket(&self) -> (Vec<f64>, Vec<u64>) {
        let mut before = 0.0;
        self.buckets
            .iter()
            .map(|&(bound, count)| {
                let n = whole(count) - whole(before).min(whole(count));
                before = count;
                (bound, n)
            })
            .unzip()
    }

    /// The requests slower than the first bound at or above `limit`, and that bound; `None`
    /// when only `+Inf` is (the histogram cannot tell what is slower than the limit). At most
    /// as many as are slower than the limit: what a failure may be counted by.
    pub fn slower_than(&self, limit: f64) -> Option<(f64, Counts)> {
        let &(bound, at_most) = self
            .buckets
            .iter()
            .find(|(bound, _)| *bound >= limit && bound.is_finite())?;
        Some(self.slower_than_bound(bound, at_most))
    }

    /// The requests slower than the last bound at or below `limit`, and that bound; `None`
    /// when no bound is. At least as many as are slower than the limit: what a pass may be
    /// counted by.
    pub fn slower_than_at_most(&self, limit: f64) -> Option<(f64, Counts)> {
        let &(bound, at_most) = self.buckets.iter().rfind(|(bound, _)| *bound <= limit)?;
        Some(self.slower_than_bound(bound, at_most))
    }

    fn slower_than_bound(&self, bound: f64, at_most: f64) -> (f64, Counts) {
        let requests = whole(self.total());
        (
            bound,
            Counts {
                requests,
                failures: requests - whole(at_most).min(requests),
            },
        )
    }
}

/// Istio's default bucket bounds for request durations, in milliseconds, and +Inf.
pub const ISTIO_BOUNDS: [f64; 20] = [
    0.5,
    1.0,
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1000.0,
    2500.0,
    5000.0,
    10000.0,
    30000.0,
    60000.0,
    300000.0,
    600000.0,
    1800000.0,
    3600000.0,
    f64::INFINITY,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn series(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
        pairs.iter().map(|(le, c)| (le.to_string(), *c)).collect()
    }

    #[test]
    fn the_p99_is_read_as_histogram_quantile_reads_it() {
        // 98 at most 25 ms, 2 between 50 and 100: the 99th of 100 is half-way into it.
        let h = Histogram::from_series(&series(&[
            ("+Inf", 100.0),
            ("25", 98.0),
            ("50", 98.0),
            ("100", 100.0),
        ]))
        .unwrap();
        assert_eq!(h.quantile(0.99), Some(75.0));
        assert_eq!(h.total(), 100.0);
        // In the +Inf bucket: the last finite bound.
        let h = Histogram::from_series(&series(&[("10", 50.0), ("+Inf", 100.0)])).unwrap();
        assert_eq!(h.quantile(0.99), Some(10.0));
        assert_eq!(Histogram::default().quantile(0.99), None);
    }

    #[test]
    fn counts_per_bucket_and_above_a_limit() {
        let h = Histogram::from_series(&series(&[
            ("25", 97.6),
            ("100", 99.2),
            ("500", 99.9),
            ("+Inf", 100.0),
        ]))
        .unwrap();
        assert_eq!(
            h.per_bucket(),
            (vec![25.0, 100.0, 500.0, f64::INFINITY], vec![98, 1, 1, 0])
        );
        let (bound, slow) = h.slower_than(300.0).unwrap();
        assert_eq!((bound, slow.requests, slow.failures), (500.0, 100, 0));
        let (bound, slow) = h.slower_than(50.0).unwrap();
        assert_eq!((bound, slow.failures), (100.0, 1));
        assert!(h.slower_than(1000.0).is_none());
        // For a pass, the bound below the limit: it counts at least what is slower than it.
        let (bound, slow) = h.slower_than_at_most(300.0).unwrap();
        assert_eq!((bound, slow.failures), (100.0, 1));
        let (bound, slow) = h.slower_than_at_most(500.0).unwrap();
        assert_eq!((bound, slow.failures), (500.0, 0));
        assert!(h.slower_than_at_most(10.0).is_none());
    }

    #[test]
    fn what_is_not_a_histogram_is_said() {
        for (bad, says) in [
            (series(&[("x", 1.0), ("+Inf", 1.0)]), "not a number"),
            (series(&[("10", f64::NAN), ("+Inf", 1.0)]), "counted NaN"),
            (series(&[("10", -1.0), ("+Inf", 1.0)]), "counted -1"),
            (series(&[("10", 1.0)]), "no le=\"+Inf\""),
        ] {
            let err = Histogram::from_series(&bad).unwrap_err();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        // Slightly out of order, as increase() may leave it: put in order.
        let h =
            Histogram::from_series(&series(&[("10", 5.2), ("20", 5.1), ("+Inf", 6.0)])).unwrap();
        assert_eq!(h.per_bucket().1, vec![5, 0, 1]);
    }
}
