//! Exact distributions for counts: the log-gamma and log-beta functions, the regularized
//! incomplete beta function and what it gives (binomial tails, Clopper-Pearson bounds). The
//! gate's tests are built on these instead of normal approximations, which break down where a
//! canary's counts live: a few errors among a few hundred requests.
//!
//! Tested against SciPy (`tests/fixtures/gate_reference.json`, made by
//! `tests/fixtures/gate_reference.py`).

/// ln Γ(x) for x > 0, by Lanczos' approximation (g = 7, nine coefficients, as in Press et al.
/// and Boost): relative error about 1e-15.
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // The reflection formula: Γ(x) Γ(1 − x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (i, c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// ln B(a, b) = ln Γ(a) + ln Γ(b) − ln Γ(a + b).
pub fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// The regularized incomplete beta function I_x(a, b), for a, b > 0 and 0 ≤ x ≤ 1: the chance
/// that a Beta(a, b) variable is at most x. By its continued fraction (modified Lentz), on the
/// side of x where it converges fast.
pub fn beta_cdf(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    if x > (a + 1.0) / (a + b + 2.0) {
        // The fraction converges fast on the other side: I_x(a, b) = 1 − I_{1−x}(b, a),
        // computed there directly (a recursive call could bounce back where rounding puts
        // 1 − x on the boundary).
        return 1.0 - lower_tail(1.0 - x, b, a);
    }
    lower_tail(x, a, b)
}

/// I_x(a, b) by its continued fraction, on the side where it converges fast.
fn lower_tail(x: f64, a: f64, b: f64) -> f64 {
    let front = (a * x.ln() + b * (1.0 - x).ln() - ln_beta(a, b)).exp() / a;
    front * continued_fraction(x, a, b)
}

/// 1 − I_x(a, b), computed without the cancellation of subtracting from 1.
pub fn beta_sf(x: f64, a: f64, b: f64) -> f64 {
    beta_cdf(1.0 - x, b, a)
}

/// ln(1 − I_x(a, b)) where that is far below the smallest f64: the same continued fraction,
/// kept in logarithms.
pub fn ln_beta_sf(x: f64, a: f64, b: f64) -> f64 {
    // 1 − I_x(a, b) = I_{1−x}(b, a).
    let (x, a, b) = (1.0 - x, b, a);
    if x <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if x >= 1.0 {
        return 0.0;
    }
    if x > (a + 1.0) / (a + b + 2.0) {
        return (-lower_tail(1.0 - x, b, a)).ln_1p();
    }
    a * x.ln() + b * (1.0 - x).ln() - ln_beta(a, b) - a.ln() + continued_fraction(x, a, b).ln()
}

/// The continued fraction of I_x(a, b) (Numerical Recipes, `betacf`).
fn continued_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPSILON: f64 = 1e-15;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let away_from_zero = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (mut c, mut d) = (1.0, 1.0 / away_from_zero(1.0 - qab * x / qap));
    let mut h = d;
    // One step of Lentz's method with the next coefficient: the factor it brings.
    let mut step = |aa: f64| {
        d = 1.0 / away_from_zero(1.0 + aa * d);
        c = away_from_zero(1.0 + aa / c);
        d * c
    };
    // Convergence takes about √max(a, b) terms; a gate's counts stay far below this many.
    for m in 1..100_000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        h *= step(m * (b - m) * x / ((qam + m2) * (a + m2)));
        let delta = step(-(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)));
        h *= delta;
        if (delta - 1.0).abs() < EPSILON {
            break;
        }
    }
    h
}

/// P(X ≥ k) for X ~ Binomial(n, p).
pub fn binomial_sf(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        1.0
    } else if k > n {
        0.0
    } else {
        beta_cdf(p, k as f64, (n - k + 1) as f64)
    }
}

/// The one-sided Clopper-Pearson upper bound of a proportion at `confidence` (0.95): the
/// largest p under which seeing at most `k` of `n` is still as likely as 1 − confidence. 1 for
/// no trial.
pub fn upper_bound(k: u64, n: u64, confidence: f64) -> f64 {
    if k >= n {
        return 1.0;
    }
    // P(X ≤ k | p) = 1 − I_p(k + 1, n − k) falls from 1 to 0 as p grows: find where it is
    // 1 − confidence, by bisection (60 halvings leave an interval far below f64's precision
    // of any answer shown).
    let (a, b) = ((k + 1) as f64, (n - k) as f64);
    let (mut low, mut high) = (0.0, 1.0);
    for _ in 0..60 {
        let mid = 0.5 * (low + high);
        if beta_cdf(mid, a, b) < confidence {
            low = mid;
        } else {
            high = mid;
        }
    }
    high
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The values SciPy computes, by `tests/fixtures/gate_reference.py`.
    fn reference(name: &str) -> Vec<Value> {
        let all: Value =
            serde_json::from_str(include_str!("../../tests/fixtures/gate_reference.json")).unwrap();
        all[name].as_array().unwrap().clone()
    }

    fn close(actual: f64, expected: f64, relative: f64) -> bool {
        actual == expected || (actual - expected).abs() <= relative * expected.abs()
    }

    fn f(v: &Value) -> f64 {
        v.as_f64().unwrap()
    }

    #[test]
    fn ln_gamma_matches_scipy() {
        for case in reference("gammaln") {
            let (x, expected) = (f(&case[0]), f(&case[1]));
            let got = ln_gamma(x);
            assert!(
                (got - expected).abs() <= 1e-12 * expected.abs().max(1.0),
                "ln_gamma({x}) = {got}, SciPy {expected}"
            );
        }
    }

    #[test]
    fn the_incomplete_beta_function_matches_scipy() {
        for case in reference("betainc") {
            let (x, a, b, expected) = (f(&case[0]), f(&case[1]), f(&case[2]), f(&case[3]));
            let got = beta_cdf(x, a, b);
            assert!(
                close(got, expected, 1e-9) || (got - expected).abs() < 1e-300,
                "I_{x}({a}, {b}) = {got}, SciPy {expected}"
            );
            let sf = f(&case[4]);
            assert!(
                close(beta_sf(x, a, b), sf, 1e-9),
                "1 - I_{x}({a}, {b}): {sf}"
            );
            if sf > 0.0 {
                assert!(
                    (ln_beta_sf(x, a, b) - sf.ln()).abs() < 1e-9 * sf.ln().abs().max(1.0),
                    "ln(1 - I_{x}({a}, {b})) = {}, SciPy {}",
                    ln_beta_sf(x, a, b),
                    sf.ln()
                );
            }
        }
    }

    /// Each case `[k, n, x, expected]` of `name` against `compute(k, n, x)`.
    fn counts_match_scipy(name: &str, compute: impl Fn(u64, u64, f64) -> f64) {
        for case in reference(name) {
            let (k, n) = (case[0].as_u64().unwrap(), case[1].as_u64().unwrap());
            let (x, expected) = (f(&case[2]), f(&case[3]));
            let got = compute(k, n, x);
            assert!(
                close(got, expected, 1e-9),
                "{name}({k}, {n}, {x}) = {got}, SciPy {expected}"
            );
        }
    }

    #[test]
    fn binomial_tails_match_scipy() {
        counts_match_scipy("binom_sf", binomial_sf);
    }

    #[test]
    fn clopper_pearson_bounds_match_scipy() {
        counts_match_scipy("clopper_pearson_upper", upper_bound);
    }
}
