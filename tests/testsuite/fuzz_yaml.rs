//! Fuzzing the YAML edits with proptest, on stable Rust: arbitrary text, and real files mutated
//! with the characters that matter to YAML. Every edit must return an error or a file that
//! parses, never panic, and an edit applied to its own output must change nothing.
//!
//! `.ci/run` runs a short smoke pass; `fuzz/run.sh` runs a long one (`FUZZ_CASES` cases per
//! target) and prints the number of executions.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

use canary::yaml;

use crate::common::yaml_text;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const DIGEST: &str = "sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f";

/// Real files to mutate: the seed's gap.yaml as canary leaves it after each round of edits, a
/// richer one, and a VirtualService patch.
fn corpus() -> Vec<String> {
    let seed = include_str!("../fixtures/seed-example/gap/gap.yaml").to_string();
    let twin = yaml_text::ensure_twin_deployment(
        &yaml_text::ensure_pod_labels(&seed, "web", &[("version", "v2"), ("canary", "enabled")])
            .unwrap(),
        "web",
        "web-v1",
        &[("version", "v1"), ("canary", "enabled")],
        "repo/svc",
        DIGEST,
    )
    .unwrap();
    let authorized = yaml_text::ensure_ingress_authorization(
        &twin,
        "web",
        "web-v1",
        "ingress-nginx",
        "ingress-nginx",
    )
    .unwrap();
    let rich = "---\n# deploy config\nname: my-service\ndeployments:\n    web:\n        podLabels:\n            \
                team: x\n        env:\n        - name: A\n          value: \"1\"\n        command: \
                [\"/start\", \"--fast\"]\n        resources: &res\n            cpu: 1\n    worker:\n        \
                <<: *res\n        command:\n        - /work\n"
        .to_string();
    let virtual_service = "---\napiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata:\n  \
                           name: my-service--web\nspec:\n  hosts:\n    - a.example\n  http:\n    - route:\n        \
                           - destination:\n            host: h\n            subset: v1 # note\n          \
                           weight: 0\n        - destination:\n            host: h\n            subset: v2\n          \
                           weight: 100\n"
        .to_string();
    vec![seed, twin, authorized, rich, virtual_service]
}

/// A corpus file with a few random edits, drawn from the characters YAML cares about.
fn mutated() -> impl Strategy<Value = String> {
    let edit = (
        any::<prop::sample::Index>(),
        0..3usize,
        prop::sample::select(vec![
            ":",
            "-",
            " ",
            "  ",
            "\n",
            "\r\n",
            "#",
            "{",
            "}",
            "[",
            "]",
            "&a",
            "*a",
            "'",
            "\"",
            "|",
            ">",
            "\t",
            "web",
            "web-v1",
            "v1",
            "weight: 7",
            "- ",
            "---\n",
            "<<: ",
            "podLabels:",
            "é",
            "\0",
        ]),
    );
    (
        prop::sample::select(corpus()),
        prop::collection::vec(edit, 1..6),
    )
        .prop_map(|(text, edits)| {
            let mut text = text;
            for (at, delete, insert) in edits {
                let mut at = at.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                let mut end = (at + delete).min(text.len());
                while !text.is_char_boundary(end) {
                    end += 1;
                }
                text.replace_range(at..end, insert);
            }
            text
        })
}

fn inputs() -> impl Strategy<Value = String> {
    prop_oneof![
        mutated(),
        "(?s).{0,300}",
        "([a-z#:\\-\\[\\]{}&*'\" \n]{0,12}\n){0,20}"
    ]
}

type Edit = fn(&str) -> Result<String, yaml::YamlError>;

/// Every edit function, with the arguments canary calls it with.
fn edits() -> Vec<(&'static str, Edit)> {
    vec![
        ("ensure_pod_labels", |t| {
            yaml_text::ensure_pod_labels(t, "web", &[("version", "v2"), ("canary", "enabled")])
        }),
        ("ensure_twin_deployment", |t| {
            yaml_text::ensure_twin_deployment(
                t,
                "web",
                "web-v1",
                &[("version", "v1"), ("canary", "enabled")],
                "repo/svc",
                DIGEST,
            )
        }),
        ("ensure_ingress_authorization", |t| {
            yaml_text::ensure_ingress_authorization(
                t,
                "web",
                "web-v1",
                "ingress-nginx",
                "ingress-nginx",
            )
        }),
        ("set_twin_image", |t| {
            yaml_text::set_twin_image(t, "web-v1", "repo/other", DIGEST)
        }),
        ("remove_deployment", |t| {
            yaml_text::remove_deployment(t, "web-v1")
        }),
        ("set_route_weights", |t| {
            yaml_text::set_route_weights(t, &[("v1", 30), ("v2", 70)])
        }),
        ("remove_subset_destination", |t| {
            yaml_text::remove_subset_destination(t, "v1")
        }),
    ]
}

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(300)
}

#[test]
fn yaml_edits_never_panic_and_return_an_error_or_a_file_that_parses() {
    let executions = AtomicUsize::new(0);
    for (name, edit) in edits() {
        let mut runner = TestRunner::new(Config {
            cases: cases(),
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&inputs(), |text| {
            executions.fetch_add(1, Ordering::Relaxed);
            let outcome = catch_unwind(AssertUnwindSafe(|| edit(&text)));
            let Ok(result) = outcome else {
                return Err(TestCaseError::fail(format!("{name} panicked")));
            };
            if let Ok(out) = result {
                prop_assert!(
                    yaml::parse_all(&out).is_ok(),
                    "{name} wrote a file that does not parse:\n{out}"
                );
                prop_assert_eq!(
                    edit(&out).ok(),
                    Some(out.clone()),
                    "{} is not idempotent",
                    name
                );
            }
            Ok(())
        });
        if let Err(failure) = result {
            panic!("{name}: {failure}");
        }
    }
    // Reading the weights must not panic either.
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&inputs(), |text| {
            executions.fetch_add(1, Ordering::Relaxed);
            prop_assert!(
                catch_unwind(|| yaml_text::route_weights(&text)).is_ok(),
                "route_weights panicked"
            );
            Ok(())
        })
        .unwrap();
    println!("fuzz executions: {}", executions.load(Ordering::Relaxed));
}
