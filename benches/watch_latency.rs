//! How soon a checked deploy is reported once the cluster shows it: the delay from the moment
//! the (fake) API server holds the objects the files describe to the moment `canary next`
//! prints `Verified`, over every staging deploy of whole releases. canary watches the objects
//! it read, so this is a watch event, one read of the environment and a line of output; with
//! the 2 s poll it replaced it was about a second at the median.
//!
//!   cargo bench --bench watch_latency [-- RELEASES]     (default 3 releases, ~8 deploys each)
//!
//! No assertion: a number to read, target under 100 ms at the median.
#![cfg(feature = "cluster")]

// The test suite's sandbox and fake API server, of which a benchmark needs a few; unused
// helpers are caught where all of them are used, in tests/testsuite.
#[allow(dead_code)]
#[path = "../tests/testsuite/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::cluster::{FakeApiServer, TOKEN, kubeconfig, synced_objects};
use common::{NAMESPACE, SERVICE, Sandbox, V1_IMAGE};

const CONTEXT: &str = "kind-staging";

fn main() {
    let releases: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map_or(3, |a| a.parse().expect("RELEASES is a number"));
    let mut samples = Vec::new();
    for _ in 0..releases {
        samples.extend(one_release());
    }
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    assert!(!samples.is_empty(), "no deploy waited on the cluster");
    println!(
        "watch latency over {} deploys: median {:.1} ms, p90 {:.1} ms, max {:.1} ms (target: median under 100 ms)",
        samples.len(),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(at(1.0))
    );
}

/// Walk a release whose staging has a cluster; returns the delay of each deploy that waited.
fn one_release() -> Vec<Duration> {
    let sandbox = Sandbox::new();
    let server = FakeApiServer::start();
    let kube = sandbox.home.join(".kube");
    std::fs::create_dir_all(&kube).unwrap();
    std::fs::write(
        kube.join("config"),
        kubeconfig(&[(CONTEXT, &server.url)], TOKEN),
    )
    .unwrap();
    let mut start = sandbox.start_args();
    start.extend(["--context".into(), format!("staging={CONTEXT}")]);
    sandbox
        .canary(&start.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    let sync = || {
        server.set_objects(&synced_objects(
            &sandbox.repo,
            "staging",
            NAMESPACE,
            SERVICE,
            V1_IMAGE.split_once('@').unwrap().1,
        ))
    };
    let mut samples = Vec::new();
    for _ in 0..common::MAX_STEPS {
        if sandbox.phase() == "done" {
            return samples;
        }
        let mut child = sandbox
            .canary_command(&["next", SERVICE, "--yes", "--timeout", "60s"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let (lines, read) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if lines.send((Instant::now(), line)).is_err() {
                    return;
                }
            }
        });
        let mut matched_at = None;
        for (when, line) in read.iter() {
            let line = line.trim_start();
            if line.starts_with("Waiting for staging") {
                // Let the watches start, then make the cluster show the deploy.
                let watches = || {
                    server
                        .requests()
                        .iter()
                        .filter(|r| r.contains("watch=true"))
                        .count()
                };
                let before = watches();
                while watches() == before {
                    std::thread::sleep(Duration::from_millis(5));
                }
                std::thread::sleep(Duration::from_millis(50));
                matched_at = Some(Instant::now());
                sync();
            } else if line.starts_with("Verified staging")
                && let Some(matched) = matched_at
            {
                samples.push(when - matched);
            }
        }
        assert!(child.wait().unwrap().success(), "canary next failed");
    }
    panic!("the release never finished");
}
