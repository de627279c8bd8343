//! `canary check` and `next`'s refusal to build on a broken state: each rule caught in a
//! repository broken by hand, with the real binary.

use crate::common;

use crate::common::{SERVICE, Sandbox, assert_unchanged};
use serde_json::Value;

const DR: &str = "gap/gap_canary_destination_rule.yaml";
const GAP: &str = "gap/gap.yaml";
const SERVICE_PATCH: &str = "gap/gap_patch_canary_service.yaml";
const STAGING_VS: &str = "gap/staging/gap_patch_canary_virtual_service.yaml";
const PRODUCTION_VS: &str = "gap/production/gap_patch_canary_virtual_service.yaml";

fn read(sandbox: &Sandbox, rel: &str) -> String {
    std::fs::read_to_string(sandbox.repo.join(rel)).unwrap()
}

fn edit(sandbox: &Sandbox, rel: &str, from: &str, to: &str) {
    let text = read(sandbox, rel);
    assert!(text.contains(from), "{rel} has no {from:?}:\n{text}");
    sandbox.write(rel, &text.replacen(from, to, 1));
}

/// The codes `canary check --json` reports, after asserting its exit status fits them.
#[track_caller]
fn codes(sandbox: &Sandbox) -> Vec<String> {
    let out = sandbox.canary(&["check", SERVICE, "--json"]);
    let findings = out.json();
    let findings = findings.as_array().unwrap();
    let errors = findings.iter().any(|f| f["severity"] == "error");
    assert_eq!(out.code, if errors { 1 } else { 0 }, "{out}");
    for f in findings {
        assert!(f["file"].is_string() && f["message"].is_string(), "{f}");
    }
    findings
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

/// Put the repository back as the last commit had it.
fn restore(sandbox: &Sandbox) {
    sandbox.git(&["checkout", "--", "."]);
    sandbox.git(&["clean", "-fdq"]);
}

/// A release in ramp, production at 1% v2: every object exists.
fn in_ramp() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.start_into_ramp();
    assert!(codes(&sandbox).is_empty());
    sandbox
}

/// A hand edit that breaks one rule.
type Breaker = Box<dyn Fn(&Sandbox)>;

#[test]
fn each_cross_reference_rule_catches_its_broken_state() {
    let sandbox = in_ramp();
    let worker = "  worker:\n    podLabels:\n      canary: enabled\n    command:\n      - work\n";
    let cases: Vec<(&str, Breaker)> = vec![
        (
            "CANARY-E010",
            Box::new(|s| edit(s, DR, "    - name: v1\n", "    - name: v0\n")),
        ),
        (
            "CANARY-E011",
            Box::new(|s| edit(s, DR, "  host: my-service-web.", "  host: other-web.")),
        ),
        (
            "CANARY-E012",
            Box::new(|s| edit(s, STAGING_VS, "host: my-service-web.", "host: nope.")),
        ),
        (
            "CANARY-E013",
            Box::new(|s| edit(s, DR, "version: v1 #", "canary: enabled #")),
        ),
        (
            "CANARY-E014",
            Box::new(move |s| {
                let text = read(s, GAP);
                s.write(GAP, &format!("{text}{worker}"));
            }),
        ),
        (
            "CANARY-E015",
            Box::new(|s| edit(s, STAGING_VS, "weight: 0", "weight: 10")),
        ),
        (
            "CANARY-E016",
            Box::new(|s| {
                edit(
                    s,
                    GAP,
                    "- namespace: ingress-nginx",
                    "- namespace: elsewhere",
                )
            }),
        ),
        (
            // The staging host in production's patch: production's weights would route it.
            "CANARY-E046",
            Box::new(|s| {
                edit(
                    s,
                    PRODUCTION_VS,
                    "- my-service.gservice.emarsys.net",
                    "- my-service-staging.gservice.emarsys.com",
                )
            }),
        ),
        (
            "CANARY-E017",
            Box::new(|s| edit(s, GAP, "tag: sha256:", "tag: latest-sha256:")),
        ),
        (
            "CANARY-E002",
            Box::new(|s| edit(s, DR, "      labels:", "      lables:")),
        ),
        (
            "CANARY-E003",
            Box::new(|s| edit(s, SERVICE_PATCH, "  selector:", "  selectr:")),
        ),
        (
            "CANARY-E004",
            Box::new(|s| edit(s, SERVICE_PATCH, "name: my-service-web", "name: another")),
        ),
        (
            "CANARY-E001",
            Box::new(|s| edit(s, PRODUCTION_VS, "  http:", "  http: [")),
        ),
        (
            "CANARY-E020",
            Box::new(|s| std::fs::remove_file(s.repo.join(PRODUCTION_VS)).unwrap()),
        ),
        (
            "CANARY-E022",
            Box::new(|s| edit(s, PRODUCTION_VS, "weight: 99", "weight: 98")),
        ),
    ];
    for (code, break_it) in cases {
        break_it(&sandbox);
        let found = codes(&sandbox);
        assert!(
            found.iter().any(|c| c == code),
            "{code} not among {found:?}"
        );
        restore(&sandbox);
        assert!(
            codes(&sandbox).is_empty(),
            "{code}: restoring did not clean up"
        );
    }
}

#[test]
fn next_stops_on_a_hand_broken_destination_rule_and_writes_nothing() {
    let sandbox = in_ramp();
    edit(
        &sandbox,
        DR,
        "    - name: v1\n      labels:\n        version: v1 # this matches the labels we added as podLabels in gap.yaml\n",
        "",
    );
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stderr.contains("CANARY-E010"), "{out}");
    assert!(out.stderr.contains("names subset v1"), "{out}");
    assert_unchanged(&before, &sandbox.snapshot(), "next on a broken repository");
}

#[test]
fn next_refuses_a_step_whose_result_would_be_broken() {
    // A route that a person added by hand names a subset no DestinationRule will define: the
    // step that writes the DestinationRule would produce a broken state, so nothing is written.
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("add-routing");
    sandbox.write(
        STAGING_VS,
        "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata:\n  name: x\n\
         spec:\n  hosts: [a]\n  http:\n    - route:\n        - destination:\n            \
         host: my-service-web.relational-data.svc.cluster.local\n            subset: v3\n",
    );
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr
            .contains(&format!("would not pass `{}`", sandbox.hint("check"))),
        "{out}"
    );
    assert!(out.stderr.contains("CANARY-E010"), "{out}");
    assert_unchanged(&before, &sandbox.snapshot(), "a refused step");
}

#[test]
fn a_file_re_added_after_cleanup_is_reported() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("cleanup-3");
    assert!(codes(&sandbox).is_empty());
    let old = sandbox.git(&["show", &format!("HEAD~1:{STAGING_VS}")]);
    sandbox.write(STAGING_VS, &old);
    let found = codes(&sandbox);
    assert!(found.contains(&"CANARY-E021".to_string()), "{found:?}");
}

#[test]
fn check_without_a_journal_infers_the_scope_and_prints_findings() {
    let sandbox = in_ramp();
    edit(&sandbox, STAGING_VS, "weight: 0", "weight: 7");
    let other = Sandbox::new();
    let repo = sandbox.repo.to_str().unwrap();
    // Another journal: the repository is all there is to go by.
    let out = other.canary(&["check", "--repo", repo]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains(&format!(
            "error[CANARY-E015] {STAGING_VS}:12: the weights of staging's route add up to 107, not 100"
        )),
        "{out}"
    );
    assert!(out.stdout.contains("1 error, 0 warnings"), "{out}");
    let json: Value = other.canary(&["check", "--repo", repo, "--json"]).json();
    assert_eq!(json.as_array().unwrap().len(), 1, "{json}");
}

#[test]
fn adopting_a_release_begun_by_hand_opens_it_where_the_files_stand() {
    let sandbox = in_ramp();
    sandbox.next(); // production 1%: deployed
    sandbox.next(); // observed
    sandbox.next(); // production 5% written
    // The journal is lost: the files are all there is.
    std::fs::remove_file(&sandbox.journal).unwrap();
    let out = sandbox.adopt().ok();
    assert!(out.stdout.contains("Adopted"), "{out}");
    let status = sandbox.status();
    assert_eq!(status["phase"], "ramp");
    assert_eq!(status["step"], "ramp: deploy to production");
    assert_eq!(status["v1_image"], common::V1_IMAGE);
    assert!(codes(&sandbox).is_empty());
    sandbox.walk_to("done");
}

#[test]
fn adopting_a_release_whose_staging_was_sent_to_v2_owes_that_deploy_then_asks_the_test() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("deploy-v2");
    // Up to deploy-v2's edit of staging to 100% v2, its deploy not yet confirmed.
    while sandbox.weights()[0].1 != Some(100) {
        sandbox.next();
    }
    std::fs::remove_file(&sandbox.journal).unwrap();
    sandbox.adopt().ok();
    let status = sandbox.status();
    assert_eq!(status["step"], "deploy-v2: deploy to staging", "{status}");
    sandbox.next();
    assert_eq!(
        sandbox.status()["step"],
        "deploy-v2: confirm that v2 was tested on staging"
    );
    // The deploy was staging serving 100% v2: the question is asked.
    sandbox.next();
    assert_eq!(sandbox.phase(), "ramp");
    sandbox.walk_to("done");
}

#[test]
fn adopting_an_untouched_repository_starts_at_the_beginning() {
    let sandbox = Sandbox::new();
    let mut args = sandbox.start_args();
    args.push("--adopt".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sandbox.canary(&args).ok();
    assert_eq!(
        sandbox.status()["step"],
        "deploy-v1: add the pinned web-v1 deployment and the version labels"
    );
}

#[test]
fn files_that_fit_no_position_are_refused_with_what_was_found() {
    let sandbox = in_ramp();
    std::fs::remove_file(sandbox.repo.join(SERVICE_PATCH)).unwrap();
    std::fs::remove_file(&sandbox.journal).unwrap();
    let out = sandbox.adopt();
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("they fit no position of the release"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("gap/gap_patch_canary_service.yaml: absent"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains("gap/production/gap_patch_canary_virtual_service.yaml: v1 99%, v2 1%"),
        "{out}"
    );
    assert!(
        !sandbox.journal.exists()
            || sandbox.canary(&["list", "--json"]).json() == serde_json::json!([])
    );
}

#[test]
fn files_written_in_istios_v1_are_checked_as_those_in_v1beta1() {
    let sandbox = in_ramp();
    for rel in [DR, STAGING_VS, PRODUCTION_VS] {
        edit(
            &sandbox,
            rel,
            "apiVersion: networking.istio.io/v1beta1",
            "apiVersion: networking.istio.io/v1",
        );
    }
    assert!(codes(&sandbox).is_empty());
    // And v1's schema is applied to them: a weight that is not a number is still caught.
    edit(&sandbox, PRODUCTION_VS, "weight: 99", "weight: most");
    assert!(
        codes(&sandbox).iter().any(|c| c == "CANARY-E002"),
        "{:?}",
        codes(&sandbox)
    );
    restore(&sandbox);
}

/// A hand edit that only drops the quotes of a switch value means the same to canary, but a
/// YAML 1.1 reader (Helm's) reads `017` as the octal 15 and `1:20` as 80: E047 at its line, for
/// web and web-v1 alike, and for any env value of theirs.
#[test]
fn a_plain_switch_value_that_yaml_1_1_reads_as_a_number_is_e047() {
    let sandbox = Sandbox::new();
    let args = sandbox.coexistence_args("env:IMPLEMENTATION=017,1:20");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sandbox.canary(&args).ok();
    sandbox.walk_to("ramp");
    assert_eq!(codes(&sandbox), Vec::<String>::new());
    let quoted = read(&sandbox, GAP);
    for (from, to) in [
        ("value: \"1:20\"", "value: 1:20"),
        ("value: \"017\"", "value: 017"),
    ] {
        edit(&sandbox, GAP, from, to);
        let line = read(&sandbox, GAP)
            .lines()
            .position(|l| l.trim() == to)
            .unwrap()
            + 1;
        let out = sandbox.canary(&["check", SERVICE]);
        assert_eq!(out.code, 1, "{out}");
        let value = to.strip_prefix("value: ").unwrap();
        assert!(
            out.stdout
                .contains(&format!("error[CANARY-E047] {GAP}:{line}: ")),
            "{out}"
        );
        assert!(
            out.stdout.contains(&format!("quote it (\"{value}\")")),
            "{out}"
        );
        assert_eq!(codes(&sandbox), ["CANARY-E047"], "{to}");
        sandbox.write(GAP, &quoted);
    }
    // Any env value of web's and web-v1's, not only the switch.
    sandbox.write(
        GAP,
        &quoted.replace(
            "      - name: IMPLEMENTATION\n",
            "      - name: SINCE\n        value: 2001-12-14\n      - name: IMPLEMENTATION\n",
        ),
    );
    assert_eq!(codes(&sandbox), ["CANARY-E047", "CANARY-E047"]);
}
