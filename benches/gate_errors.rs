//! The gate's error rates, measured: simulated releases judged by the gate's own code
//! (`canary::gate::verdict::judge`, which the binary runs on Prometheus' answers), with the
//! counts Prometheus would answer sampled from a model of the traffic.
//!
//!     cargo bench --bench gate_errors               # the tables of docs/gate.md (minutes)
//!     cargo bench --bench gate_errors -- --quick    # a tenth of the releases
//!
//! The model. A service answers `traffic` requests per 5-minute window, split by production's
//! weight; each request fails (5xx) with the version's error rate, and takes a lognormal time
//! (median 40 ms, σ 0.6: p99 about 160 ms) counted into Istio's default buckets. A ramp runs
//! the default schedule (1, 5, 10, 25, 50, 100); at each weight the gate is looked at when the
//! window has passed and then every 30 s while it says "not yet" (as `next` waits on a
//! terminal, and is run again after its 10 minutes), each look reading everything since the
//! weight was deployed, until it passes or fails, or two hours have gone by (then the release
//! is counted as held: production never went past that weight).
//! Evidence carries from step to step as the journal carries it. A healthy v2 behaves exactly
//! as v1.
//!
//! Besides the gate, the harness judges the same samples by the gate it replaced (a z-test of
//! the success rates at 95% per look, the p99 against 500 ms and against 1.5 times v1's), so
//! that the tables can stand side by side.

use canary::gate::Thresholds;
use canary::gate::histogram::{Histogram, ISTIO_BOUNDS};
use canary::gate::verdict::{Evidence, Measured, Outcome, judge};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Binomial, Distribution};

const SCHEDULE: [u8; 6] = [1, 5, 10, 25, 50, 100];
const WINDOW_SECS: u64 = 300;
const LOOK_EVERY_SECS: u64 = 30;
/// How long a step is looked at before the harness gives up on it: `next` waits 10 minutes,
/// and is run again while the gate says "not yet" (production stays where it is meanwhile).
const STEP_LIMIT_SECS: u64 = 2 * 3600;
const MEDIAN_MS: f64 = 40.0;
const SIGMA: f64 = 0.6;

#[derive(Clone, Copy)]
struct Version {
    error_rate: f64,
    /// How much slower than the model's latencies.
    slower: f64,
}

const fn healthy(error_rate: f64) -> Version {
    Version {
        error_rate,
        slower: 1.0,
    }
}

/// One version's counts since the weight was deployed, grown look by look.
#[derive(Clone, Default)]
struct Tally {
    requests: f64,
    errors: f64,
    buckets: Vec<f64>,
}

impl Tally {
    fn grow(&mut self, rng: &mut StdRng, requests: u64, v: Version) {
        if self.buckets.is_empty() {
            self.buckets = vec![0.0; ISTIO_BOUNDS.len()];
        }
        self.requests += requests as f64;
        self.errors += binomial(rng, requests, v.error_rate) as f64;
        // Multinomial over the buckets, as a chain of binomials.
        let mut left = requests;
        let mut below = 0.0;
        for (i, bound) in ISTIO_BOUNDS.iter().enumerate() {
            let cdf = lognormal_cdf(*bound, MEDIAN_MS * v.slower);
            let p = if below >= 1.0 {
                1.0
            } else {
                ((cdf - below) / (1.0 - below)).clamp(0.0, 1.0)
            };
            let n = binomial(rng, left, p);
            self.buckets[i] += n as f64;
            left -= n;
            below = cdf;
        }
    }

    fn measured(&self) -> Measured {
        Measured {
            requests: self.requests,
            errors: self.errors,
            latency: if self.requests > 0.0 {
                Histogram::from_counts(&ISTIO_BOUNDS, &self.buckets)
            } else {
                Histogram::default()
            },
        }
    }
}

fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        0
    } else if p >= 1.0 {
        n
    } else {
        Binomial::new(n, p).unwrap().sample(rng)
    }
}

fn lognormal_cdf(x: f64, median: f64) -> f64 {
    if x == f64::INFINITY {
        return 1.0;
    }
    let z = (x / median).ln() / SIGMA;
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// erfc by its Chebyshev fit (Numerical Recipes' `erfcc`), plenty for bucket probabilities.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The gate this one replaced, on the same counts: a one-sided pooled z-test of the success
/// rates at 95%, success rate at least 99%, p99 at most 500 ms and at most 1.5 times v1's.
fn old_gate_fails(v1: &Measured, v2: &Measured) -> Option<bool> {
    if v2.requests < 100.0 {
        return None;
    }
    let (p1, p2) = (v1.errors / v1.requests.max(1.0), v2.errors / v2.requests);
    let pooled = (v1.errors + v2.errors) / (v1.requests + v2.requests);
    let variance = pooled * (1.0 - pooled) * (1.0 / v1.requests.max(1.0) + 1.0 / v2.requests);
    let z_fails = v1.requests > 0.0
        && variance > 0.0
        && 0.5 * erfc((p2 - p1) / variance.sqrt() / std::f64::consts::SQRT_2) < 0.05;
    let p99_2 = v2.latency.quantile(0.99).unwrap_or(0.0);
    let p99_1 = v1.latency.quantile(0.99);
    Some(z_fails || p2 > 0.01 || p99_2 > 500.0 || p99_1.is_some_and(|base| p99_2 > base * 1.5))
}

/// How one look at one step went.
#[derive(Clone, Copy, PartialEq)]
enum Seen {
    Pass,
    Fail,
    NotYet,
}

struct Step {
    /// The outcome of each look, first to last.
    looks: Vec<Seen>,
    old_looks: Vec<Option<bool>>,
    /// v2's requests at the last look.
    requests: f64,
    evidence: Evidence,
}

/// The looks at one weight: after the window, then every 30 s while not yet, up to the wait.
fn step(
    rng: &mut StdRng,
    weight: u8,
    traffic: u64,
    v1: Version,
    v2: Version,
    before: Evidence,
    thresholds: &Thresholds,
) -> Step {
    let (mut t1, mut t2) = (Tally::default(), Tally::default());
    let per_sec = traffic as f64 / WINDOW_SECS as f64;
    let share = f64::from(weight) / 100.0;
    let mut grow = |t1: &mut Tally, t2: &mut Tally, secs: u64| {
        let all = (per_sec * secs as f64).round() as u64;
        let n2 = (all as f64 * share).round() as u64;
        t1.grow(rng, all - n2, v1);
        t2.grow(rng, n2, v2);
    };
    grow(&mut t1, &mut t2, WINDOW_SECS);
    let mut looks = Vec::new();
    let mut old_looks = Vec::new();
    let mut elapsed = 0;
    loop {
        let (m1, m2) = (t1.measured(), t2.measured());
        let verdict = judge(thresholds, WINDOW_SECS + elapsed, &m1, &m2, &[], before);
        old_looks.push(old_gate_fails(&m1, &m2));
        let seen = match verdict.outcome {
            Outcome::Pass => Seen::Pass,
            Outcome::Fail => Seen::Fail,
            _ => Seen::NotYet,
        };
        looks.push(seen);
        if seen != Seen::NotYet || elapsed + LOOK_EVERY_SECS > STEP_LIMIT_SECS {
            return Step {
                looks,
                old_looks,
                requests: m2.requests,
                evidence: before.and(verdict.evidence.unwrap_or_default()),
            };
        }
        grow(&mut t1, &mut t2, LOOK_EVERY_SECS);
        elapsed += LOOK_EVERY_SECS;
    }
}

/// A whole default release: the weight and v2's requests where it was stopped, if it was.
struct Release {
    stopped_at: Option<(u8, f64)>,
    /// How long the 1% step took to pass, in seconds.
    first_step_secs: Option<u64>,
    /// The weight where the gate neither passed nor failed within the step's hour.
    held_at: Option<u8>,
    old_stopped_at: Option<u8>,
    looks: Vec<Seen>,
}

fn release(rng: &mut StdRng, traffic: u64, v1: Version, v2: Version) -> Release {
    let thresholds = Thresholds::default();
    let mut evidence = Evidence::default();
    let mut looks = Vec::new();
    let mut old_stopped_at = None;
    let mut first_step_secs = None;
    for weight in SCHEDULE {
        let step = step(rng, weight, traffic, v1, v2, evidence, &thresholds);
        looks.extend(&step.looks);
        if weight == SCHEDULE[0] && step.looks.last() == Some(&Seen::Pass) {
            first_step_secs = Some(WINDOW_SECS + (step.looks.len() as u64 - 1) * LOOK_EVERY_SECS);
        }
        // The old gate went on at its first look with the requests to judge that did not fail.
        if old_stopped_at.is_none() && step.old_looks.iter().flatten().next() == Some(&true) {
            old_stopped_at = Some(weight);
        }
        match step.looks.last() {
            Some(Seen::Fail) => {
                return Release {
                    stopped_at: Some((weight, step.requests)),
                    first_step_secs,
                    held_at: None,
                    old_stopped_at,
                    looks,
                };
            }
            Some(Seen::NotYet) => {
                return Release {
                    stopped_at: None,
                    first_step_secs,
                    held_at: Some(weight),
                    old_stopped_at,
                    looks,
                };
            }
            _ => {}
        }
        evidence = step.evidence;
    }
    Release {
        stopped_at: None,
        first_step_secs,
        held_at: None,
        old_stopped_at,
        looks,
    }
}

fn median_minutes(secs: &mut [u64]) -> String {
    secs.sort_unstable();
    secs.get(secs.len() / 2)
        .map_or("-".into(), |s| format!("{} min", s / 60))
}

fn share(hits: usize, all: usize) -> String {
    format!("{:.1}%", 100.0 * hits as f64 / all.max(1) as f64)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let releases = if quick { 200 } else { 1000 };
    let looks = if quick { 500 } else { 5000 };
    let mut rng = StdRng::seed_from_u64(20261207);
    let thresholds = Thresholds::default();

    println!("## A healthy v2, one look (v2 as v1), {looks} looks each\n");
    println!(
        "| weight | v2 requests | v1 error rate | failed (gate) | passed at once (gate) | failed (old gate) |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    for (weight, v2_requests) in [
        (1u8, 150u64),
        (1, 600),
        (5, 750),
        (5, 3000),
        (25, 3750),
        (25, 15000),
    ] {
        let traffic = v2_requests * 100 / u64::from(weight);
        for base in [0.0005, 0.001, 0.01] {
            let (mut failed, mut passed, mut old_failed) = (0, 0, 0);
            for _ in 0..looks {
                let (mut t1, mut t2) = (Tally::default(), Tally::default());
                t1.grow(&mut rng, traffic - v2_requests, healthy(base));
                t2.grow(&mut rng, v2_requests, healthy(base));
                let (m1, m2) = (t1.measured(), t2.measured());
                let verdict = judge(&thresholds, WINDOW_SECS, &m1, &m2, &[], Evidence::default());
                failed += usize::from(verdict.outcome == Outcome::Fail);
                passed += usize::from(verdict.outcome == Outcome::Pass);
                old_failed += usize::from(old_gate_fails(&m1, &m2) == Some(true));
            }
            println!(
                "| {weight}% | {v2_requests} | {}% | {} | {} | {} |",
                base * 100.0,
                share(failed, looks),
                share(passed, looks),
                share(old_failed, looks)
            );
        }
    }

    println!("\n## A healthy v2, whole default releases with continuous looks, {releases} each\n");
    println!(
        "| traffic per 5 min | v2 requests at 1% | error rate | stopped (gate) | held 2 h at a step (gate) | looks failed (gate) | median time to pass 1% (gate) | stopped (old gate) |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for traffic in [15_000u64, 60_000, 600_000] {
        for base in [0.0005, 0.001, 0.01] {
            let (mut stopped, mut held, mut old_stopped, mut failed_looks, mut all_looks) =
                (0, 0, 0, 0, 0);
            let mut first_steps = Vec::new();
            for _ in 0..releases {
                let r = release(&mut rng, traffic, healthy(base), healthy(base));
                stopped += usize::from(r.stopped_at.is_some());
                held += usize::from(r.held_at.is_some());
                first_steps.extend(r.first_step_secs);
                old_stopped += usize::from(r.old_stopped_at.is_some());
                failed_looks += r.looks.iter().filter(|l| **l == Seen::Fail).count();
                all_looks += r.looks.len();
            }
            println!(
                "| {traffic} | {} | {}% | {} | {} | {} | {} | {} |",
                traffic / 100,
                base * 100.0,
                share(stopped, releases),
                share(held, releases),
                share(failed_looks, all_looks),
                median_minutes(&mut first_steps),
                share(old_stopped, releases)
            );
        }
    }

    println!("\n## Regressions, whole default releases, {releases} each\n");
    println!(
        "| regression | traffic per 5 min | caught (gate) | at 1% | by 5% | median weight, v2 requests when caught | by 5% (old gate) |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let regressions: [(&str, Version, Version, u64); 6] = [
        (
            "errors x3, 0.1% to 0.3%",
            healthy(0.001),
            healthy(0.003),
            60_000,
        ),
        (
            "errors x3, 0.33% to 1%",
            healthy(0.0033),
            healthy(0.01),
            60_000,
        ),
        (
            "errors x10, 0.1% to 1%",
            healthy(0.001),
            healthy(0.01),
            60_000,
        ),
        (
            "5% failing, 150 v2 requests at 1%",
            healthy(0.001),
            healthy(0.05),
            15_000,
        ),
        (
            "latency x1.5, 600 v2 requests at 1%",
            healthy(0.001),
            Version {
                error_rate: 0.001,
                slower: 1.5,
            },
            60_000,
        ),
        (
            "latency x2, 600 v2 requests at 1%",
            healthy(0.001),
            Version {
                error_rate: 0.001,
                slower: 2.0,
            },
            60_000,
        ),
    ];
    for (name, v1, v2, traffic) in regressions {
        let (mut caught, mut first, mut early, mut old_early) = (0, 0, 0, 0);
        let mut when = Vec::new();
        for _ in 0..releases {
            let r = release(&mut rng, traffic, v1, v2);
            if let Some((weight, requests)) = r.stopped_at {
                caught += 1;
                first += usize::from(weight == 1);
                early += usize::from(weight <= 5);
                when.push((weight, requests));
            }
            old_early += usize::from(r.old_stopped_at.is_some_and(|w| w <= 5));
        }
        when.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let median = when
            .get(when.len() / 2)
            .map_or("-".to_string(), |(w, n)| format!("{w}%, {n:.0}"));
        println!(
            "| {name} | {traffic} | {} | {} | {} | {median} | {} |",
            share(caught, releases),
            share(first, releases),
            share(early, releases),
            share(old_early, releases)
        );
    }
}
