//! The statistics of the gate: is v2's failure rate higher than v1's by more than chance
//! explains? A one-sided two-proportion z-test with the pooled standard error, the textbook
//! test for two large samples of yes/no outcomes (the same as statsmodels'
//! `proportions_ztest(alternative="larger")`).

use serde::Serialize;

/// Failures out of a number of trials: 5xx answers out of requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proportion {
    pub failures: f64,
    pub total: f64,
}

impl Proportion {
    /// The share of failures; `None` without a trial.
    pub fn rate(self) -> Option<f64> {
        (self.total > 0.0).then(|| self.failures / self.total)
    }
}

/// The outcome of the test: the z statistic and its one-sided p-value, the chance of seeing
/// v2 fail this much more than v1 if both failed equally often.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ZTest {
    pub z: f64,
    pub p_value: f64,
}

impl ZTest {
    /// Whether v2 is worse than v1 at this confidence (0.95: the p-value is below 5%).
    pub fn worse_at(self, confidence: f64) -> bool {
        self.p_value < 1.0 - confidence
    }
}

/// Test whether `v2` fails more often than `v1`. `None` when a side has no trial, or when
/// neither side failed at all (or both always did): there is no variance to test against, and
/// nothing that tells the two apart.
pub fn v2_worse(v1: Proportion, v2: Proportion) -> Option<ZTest> {
    let (p1, p2) = (v1.rate()?, v2.rate()?);
    let pooled = (v1.failures + v2.failures) / (v1.total + v2.total);
    let variance = pooled * (1.0 - pooled) * (1.0 / v1.total + 1.0 / v2.total);
    if variance <= 0.0 {
        return None;
    }
    let z = (p2 - p1) / variance.sqrt();
    Some(ZTest {
        z,
        p_value: upper_tail(z),
    })
}

/// P(Z > z) for a standard normal Z, computed as erfc(z/√2)/2 so that far tails keep their
/// precision instead of being 1 minus something close to 1.
pub fn upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The complementary error function, by the Chebyshev fit of Numerical Recipes (2nd ed.,
/// §6.2, `erfcc`): fractional error below 1.2e-7 everywhere, which a gate's p-value needs
/// nowhere near.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

#[cfg(test)]
mod tests {
    //! Expected values computed independently, with Python's standard library:
    //! `0.5 * math.erfc(z / math.sqrt(2))` for the upper tail, and the z statistic from its
    //! textbook formula, `(p2 - p1) / sqrt(p * (1 - p) * (1/n1 + 1/n2))` with the pooled
    //! `p = (e1 + e2) / (n1 + n2)`.

    use super::*;

    fn close(actual: f64, expected: f64, relative: f64) -> bool {
        (actual - expected).abs() <= relative * expected.abs().max(1e-300)
    }

    #[test]
    fn the_normal_upper_tail_matches_python_erfc() {
        for (z, expected) in [
            (0.0, 0.5),
            (1.0, 0.15865525393145707),
            (-1.0, 0.8413447460685429),
            (1.6448536269514722, 0.05),
            (2.326347874040841, 0.01),
            (3.0, 0.0013498980316300957),
            (5.0, 2.866515718791939e-07),
        ] {
            let got = upper_tail(z);
            assert!(close(got, expected, 2e-7), "z={z}: {got} != {expected}");
        }
    }

    #[test]
    fn a_hand_computed_example() {
        // v1: 10 errors in 1000; v2: 20 in 1000. Pooled p = 30/2000 = 0.015;
        // se = sqrt(0.015 * 0.985 * (2/1000)) = 0.0054360; z = 0.01 / 0.0054360 = 1.8396;
        // Python: z = 1.83959092046, p = 0.0329141591876.
        let test = v2_worse(
            Proportion {
                failures: 10.0,
                total: 1000.0,
            },
            Proportion {
                failures: 20.0,
                total: 1000.0,
            },
        )
        .unwrap();
        assert!(close(test.z, 1.83959092046, 1e-9), "{test:?}");
        assert!(close(test.p_value, 0.0329141591876, 1e-6), "{test:?}");
        // Worse at 95% confidence, not at 99%.
        assert!(test.worse_at(0.95));
        assert!(!test.worse_at(0.99));
    }

    #[test]
    fn worked_examples_against_python() {
        // (v1 errors, v1 requests, v2 errors, v2 requests) -> (z, p) from Python.
        for ((e1, n1, e2, n2), (z, p)) in [
            (
                (100.0, 10000.0, 15.0, 1000.0),
                (1.48218771746, 0.0691451769022),
            ),
            ((50.0, 5000.0, 8.0, 500.0), (1.25230274911, 0.105229783767)),
            (
                (1200.0, 12000.0, 130.0, 1200.0),
                (0.914399090968, 0.180253589658),
            ),
            (
                (10.0, 10000.0, 12.0, 1000.0),
                (7.42362582845, 5.69784017015e-14),
            ),
            ((300.0, 10000.0, 30.0, 1000.0), (0.0, 0.5)),
        ] {
            let test = v2_worse(
                Proportion {
                    failures: e1,
                    total: n1,
                },
                Proportion {
                    failures: e2,
                    total: n2,
                },
            )
            .unwrap();
            assert!(
                (test.z - z).abs() < 1e-9,
                "{e1}/{n1} vs {e2}/{n2}: {test:?}"
            );
            assert!(
                close(test.p_value, p, 2e-6),
                "{e1}/{n1} vs {e2}/{n2}: {test:?}"
            );
        }
    }

    #[test]
    fn v2_better_than_v1_is_never_worse() {
        let test = v2_worse(
            Proportion {
                failures: 30.0,
                total: 1000.0,
            },
            Proportion {
                failures: 1.0,
                total: 1000.0,
            },
        )
        .unwrap();
        assert!(test.z < 0.0 && test.p_value > 0.99, "{test:?}");
        assert!(!test.worse_at(0.95));
    }

    #[test]
    fn no_variance_or_no_trial_is_no_test() {
        let none = Proportion {
            failures: 0.0,
            total: 0.0,
        };
        let clean = Proportion {
            failures: 0.0,
            total: 500.0,
        };
        assert_eq!(v2_worse(none, clean), None);
        assert_eq!(v2_worse(clean, none), None);
        assert_eq!(v2_worse(clean, clean), None);
        assert_eq!(clean.rate(), Some(0.0));
        assert_eq!(none.rate(), None);
    }
}
