//! Conflicts found at `start`, not halfway through production (issue 12, class 4): `canary
//! start` walks the whole release in memory and refuses what a later step would refuse; `canary
//! check` lists the same findings, and `canary next` stops on them in a release already begun.
//! Each repository is a fixture under `tests/fixtures/conflicts/`, run with the real binary.

use crate::common;

use crate::common::{SERVICE, Sandbox, Snapshot, assert_unchanged};
use serde_json::Value;

const GAP: &str = "gap/gap.yaml";

/// One conflict: its fixture, the finding it makes (code, file, line), a phrase of the fix
/// the message gives, and how a hand edit brings it into a release in ramp.
struct Case {
    fixture: &'static str,
    code: &'static str,
    file: &'static str,
    line: u64,
    fix: &'static str,
    bring_in: fn(&Sandbox, &str),
}

fn edit(sandbox: &Sandbox, rel: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(sandbox.repo.join(rel)).unwrap();
    assert!(text.contains(from), "{rel} has no {from:?}:\n{text}");
    sandbox.write(rel, &text.replacen(from, to, 1));
}

fn append(sandbox: &Sandbox, rel: &str, more: &str) {
    let text = std::fs::read_to_string(sandbox.repo.join(rel)).unwrap();
    sandbox.write(rel, &format!("{text}{more}"));
}

/// A worker with this pod label, after the other deployments.
fn worker_labelled(sandbox: &Sandbox, label: &str) {
    let worker = format!("  worker:\n    podLabels:\n      {label}\n    command:\n      - work\n");
    append(sandbox, GAP, &worker);
}

/// The fixture's files that are not gap.yaml (its other patches), copied into the repository.
fn copy_patches(sandbox: &Sandbox, fixture: &str) {
    let files = common::read_tree(&common::fixtures().join("conflicts").join(fixture));
    for (rel, bytes) in files {
        if rel != GAP && !rel.ends_with(".gitkeep") {
            sandbox.write(&rel, std::str::from_utf8(&bytes).unwrap());
        }
    }
}

const CASES: [Case; 8] = [
    Case {
        fixture: "no-ingress",
        code: "CANARY-E040",
        file: GAP,
        line: 4,
        fix: "set web's ingress.enabled to true",
        bring_in: |s, _| edit(s, GAP, "    ingress:\n      enabled: true\n", ""),
    },
    Case {
        fixture: "ingress-off",
        code: "CANARY-E040",
        file: GAP,
        line: 6,
        fix: "web's ingress.enabled is false: gap makes no VirtualService for web",
        // web comes first; web-v1's ingress is off already.
        bring_in: |s, _| edit(s, GAP, "enabled: true", "enabled: false"),
    },
    Case {
        fixture: "virtual-service-patch",
        code: "CANARY-E041",
        file: "gap/production/gap_patch_timeouts.yaml",
        line: 8,
        fix: "take spec.http out of gap/production/gap_patch_timeouts.yaml for the release",
        bring_in: copy_patches,
    },
    Case {
        fixture: "service-patch",
        code: "CANARY-E041",
        file: "gap/gap_patch_selector.yaml",
        line: 8,
        fix: "take spec.selector out of gap/gap_patch_selector.yaml for the release",
        bring_in: copy_patches,
    },
    Case {
        fixture: "web-labels",
        code: "CANARY-E042",
        file: GAP,
        line: 6,
        fix: "remove the label from web",
        bring_in: |s, _| edit(s, GAP, "version: v2", "version: v3"),
    },
    Case {
        fixture: "canary-labelled-worker",
        code: "CANARY-E043",
        file: GAP,
        line: 11,
        fix: "remove the label from worker",
        bring_in: |s, _| worker_labelled(s, "canary: enabled"),
    },
    Case {
        fixture: "version-labelled-worker",
        code: "CANARY-E043",
        file: GAP,
        line: 11,
        fix: "remove the label from worker",
        bring_in: |s, _| worker_labelled(s, "version: v1"),
    },
    Case {
        fixture: "anchor-in-web",
        code: "CANARY-E044",
        file: GAP,
        line: 7,
        fix: "move the anchored value out of web",
        bring_in: |s, _| {
            edit(s, GAP, "    command:\n", "    command: &cmd\n");
            append(s, GAP, "  worker:\n    command: *cmd\n");
        },
    },
];

fn fixture(case: &Case) -> Sandbox {
    Sandbox::with_fixture(&format!("conflicts/{}", case.fixture))
}

/// `canary start` with the usual arguments, with `journal`'s journal; may fail.
fn start(sandbox: &Sandbox, journal: &Sandbox) -> common::Output {
    let args = sandbox.start_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    journal.canary(&args)
}

/// Exit 3: what `canary check` finds is refused, by `start` as by `next`.
const FOUND: i32 = 3;
/// Exit 2: an edit that could not be made.
const NOT_MADE: i32 = 2;

/// What a refused `start` promises: exit `code`, one to three lines, the first `error: `,
/// naming `names`.
#[track_caller]
fn assert_refused(out: &common::Output, what: &str, code: i32, names: &[&str]) {
    assert_eq!(out.code, code, "{what}:\n{out}");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        !lines.is_empty() && lines.len() <= 3 && lines[0].starts_with("error: "),
        "{what}: not a one-to-three-line error:\n{out}"
    );
    for name in names {
        assert!(
            out.stderr.contains(name),
            "{what}: {name:?} not named:\n{out}"
        );
    }
}

#[test]
fn each_conflict_is_refused_at_start_naming_file_line_and_fix() {
    // A journal that holds a release of another service, to show that a refused start leaves
    // it be.
    let other = Sandbox::new();
    edit(&other, GAP, "name: my-service", "name: other-service");
    other.git(&["commit", "-qam", "another service"]);
    let mut args = other.start_args();
    args[1] = "other-service".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    other.canary(&args).ok();
    for case in &CASES {
        let sandbox = fixture(case);
        let before: Snapshot = sandbox.snapshot();
        let out = start(&sandbox, &sandbox);
        let place = format!("{}:{}", case.file, case.line);
        assert_refused(
            &out,
            case.fixture,
            FOUND,
            &["refusing to start", case.code, &place, case.fix],
        );
        assert_unchanged(&before, &sandbox.snapshot(), case.fixture);
        assert!(
            !sandbox.journal.exists(),
            "{}: a journal was made",
            case.fixture
        );

        let journal = other.journal_bytes();
        let out = start(&sandbox, &other);
        assert_refused(&out, case.fixture, FOUND, &[case.code, &place]);
        assert_eq!(
            other.journal_bytes(),
            journal,
            "{}: the journal changed",
            case.fixture
        );
    }
}

/// The findings `canary check --json` (with `args` after `check`) lists, as `(code, file, line)`.
fn listed(sandbox: &Sandbox, args: &[&str]) -> Vec<(String, String, u64)> {
    let mut full = vec!["check", "--json"];
    full.extend_from_slice(args);
    let out = sandbox.canary(&full);
    assert_eq!(out.code, 1, "check finds an error:\n{out}");
    common::findings(&out)
}

/// A release in ramp, production at 1% v2 and its deploy next: every object exists.
fn in_ramp() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.start_into_ramp();
    sandbox
}

#[test]
fn check_lists_what_start_refuses_and_next_refuses_it_in_a_release_begun() {
    let release = in_ramp();
    for case in &CASES {
        // The fixture: `check` without a journal lists the finding `start` refuses with.
        let sandbox = fixture(case);
        let repo = sandbox.repo.to_str().unwrap();
        let finding = (case.code.to_string(), case.file.to_string(), case.line);
        let found = listed(&sandbox, &["--repo", repo]);
        assert!(
            found.contains(&finding),
            "{}: {finding:?} not in {found:?}",
            case.fixture
        );
        let out = start(&sandbox, &sandbox);
        assert!(out.stderr.contains(case.code), "{}:\n{out}", case.fixture);
        let started = out.code;

        // The same conflict brought into a release begun: `check` lists its code and `next`
        // refuses with it, changing nothing.
        (case.bring_in)(&release, case.fixture);
        let found = listed(&release, &[SERVICE]);
        assert!(
            found.iter().any(|(code, _, _)| code == case.code),
            "{}: {} not in {found:?}",
            case.fixture,
            case.code
        );
        let before = release.snapshot();
        let out = release.canary(&["next", SERVICE, "--yes"]);
        // One finding, one exit code, whichever command refuses it.
        assert_eq!(
            (started, out.code),
            (FOUND, FOUND),
            "{}: start, then next:\n{out}",
            case.fixture
        );
        assert!(
            out.stderr.contains("refusing to deploy to production")
                && out.stderr.contains(case.code),
            "{}:\n{out}",
            case.fixture
        );
        assert_unchanged(&before, &release.snapshot(), case.fixture);
        release.git(&["checkout", "--", "."]);
        release.git(&["clean", "-fdq"]);
        assert_eq!(
            release.canary(&["check", SERVICE, "--json"]).json(),
            Value::Array(Vec::new()),
            "{}: restoring did not clean up",
            case.fixture
        );
    }
}

#[test]
fn what_a_later_step_would_refuse_is_refused_at_start_naming_the_step() {
    let sandbox = Sandbox::with_fixture("conflicts/patch-among-others");
    // Nothing in the files as they stand is wrong, so `check` finds nothing ...
    let repo = sandbox.repo.to_str().unwrap();
    assert_eq!(
        sandbox.canary(&["check", "--repo", repo, "--json"]).json(),
        Value::Array(Vec::new())
    );
    // ... but deploy-v1 could not twin the patch of web that shares its file.
    let before = sandbox.snapshot();
    let out = start(&sandbox, &sandbox);
    assert_refused(
        &out,
        "a patch of web among other documents",
        NOT_MADE,
        &[
            "refusing to start: `deploy-v1: add the pinned web-v1 deployment and the version labels` would be refused",
            "gap/production/gap_patch_web.yaml patches my-service-web among other documents",
            "move that patch to its own file",
        ],
    );
    assert_unchanged(&before, &sandbox.snapshot(), "a refused start");
    assert!(!sandbox.journal.exists());

    // A DestinationRule made ahead of its step: the state deploy-v1 leaves has an object that
    // canary writes only in add-routing.
    let sandbox = Sandbox::new();
    let rule = "gap/gap_canary_destination_rule.yaml";
    let golden = common::golden("add-routing");
    sandbox.write(rule, std::str::from_utf8(&golden[rule]).unwrap());
    sandbox.git(&["add", "-A"]);
    sandbox.git(&["commit", "-qm", "the DestinationRule, early"]);
    let before = sandbox.snapshot();
    let out = start(&sandbox, &sandbox);
    let refusing = format!(
        "refusing to start: after `deploy-v1: add the pinned web-v1 deployment and the version \
         labels`, `{}` would find error[CANARY-E021]",
        sandbox.hint("check")
    );
    assert_refused(
        &out,
        "a DestinationRule ahead of its step",
        FOUND,
        &[&refusing, rule, "remove it, or let canary's steps make it"],
    );
    assert_unchanged(&before, &sandbox.snapshot(), "a refused start");
}

#[test]
fn an_adopted_release_is_walked_from_where_the_files_stand() {
    // Begun by hand: web-v1 made with one replica, which canary's deploy-v1 would not write
    // (it refuses a twin that differs from its own); that step is done, so it is not walked.
    let sandbox = in_ramp();
    edit(&sandbox, GAP, "  web-v1:\n", "  web-v1:\n    replicas: 1\n");
    sandbox.git(&["commit", "-qam", "web-v1 by hand"]);
    // canary pushes only its own commits: the person pushes theirs.
    sandbox.git(&["push", "-q"]);
    std::fs::remove_file(&sandbox.journal).unwrap();
    let out = sandbox.adopt().ok();
    assert!(out.stdout.contains("Adopted"), "{out}");
    assert_eq!(sandbox.status()["step"], "ramp: deploy to production");
    sandbox.walk_to("done");

    // Production's routes written by hand in flow style, which the next ramp step cannot
    // edit: refused at adoption, naming that step.
    let sandbox = in_ramp();
    let production = "gap/production/gap_patch_canary_virtual_service.yaml";
    let host = "my-service-web.relational-data.svc.cluster.local";
    sandbox.write(
        production,
        &format!(
            "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata:\n  name: \
             my-service--web\nspec:\n  hosts: [my-service.gservice.emarsys.net, {host}]\n  \
             http:\n    - route:\n        - {{destination: {{host: {host}, subset: v1}}, \
             weight: 99}}\n        - {{destination: {{host: {host}, subset: v2}}, weight: 1}}\n"
        ),
    );
    sandbox.git(&["commit", "-qam", "production's routes by hand"]);
    std::fs::remove_file(&sandbox.journal).unwrap();
    let before = sandbox.snapshot();
    let out = sandbox.adopt();
    assert_refused(
        &out,
        "routes canary cannot edit",
        NOT_MADE,
        &[
            "refusing to adopt the release at ramp: deploy to production: `ramp: send 5% of production traffic to v2` would be refused",
            "gap/production/gap_patch_canary_virtual_service.yaml: line 9",
        ],
    );
    assert!(!out.stdout.contains("Adopted"), "{out}");
    assert_unchanged(&before, &sandbox.snapshot(), "a refused adoption");
}
