//! End-to-end walks of a whole release with the real binary, against golden files.
//!
//! Golden files: `tests/fixtures/expected/<phase>/` holds every file of the repository (`.git`
//! excluded) at the moment phase `<phase>` has ENDED: all of its steps, deploys included, are
//! done and `canary status` first shows the following phase. `expected/done/` is the repository
//! once the release is done, which is the same tree as the end of cleanup-3 (asserted below).
//! Each golden file was reviewed by hand against the seed process
//! (canary-release-with-istio.txt); regenerate with
//! `CANARY_BLESS=1 cargo test --test testsuite walk::` only to review the diff again.

use crate::common;

use crate::common::{
    COEXISTENCE_SWITCH, EDIT_STEPS, PHASES, SERVICE, Sandbox, assert_golden, assert_golden_in,
    golden, golden_in,
};
use serde_json::Value;

type Weights = Vec<(String, Option<u64>)>;

fn weights(staging: Option<u64>, production: Option<u64>) -> Weights {
    vec![
        ("staging".to_string(), staging),
        ("production".to_string(), production),
    ]
}

/// Each environment's v2 weight, as `status --json` reports it, when the phase has ended.
fn weights_at_end_of(phase: &str) -> Weights {
    match phase {
        "deploy-v1" => weights(None, None),
        // The VirtualService patches start at v1 0 / v2 100: v2 keeps all the traffic.
        "add-routing" => weights(Some(100), Some(100)),
        "route-to-v1" => weights(Some(0), Some(0)),
        // Staging leads: v2 is tested there with all of its traffic before production's ramp.
        "deploy-v2" => weights(Some(100), Some(0)),
        "ramp" => weights(Some(100), Some(100)),
        // The route keeps only its v2 destination, at 100.
        "cleanup-1" => weights(Some(100), Some(100)),
        "cleanup-2" | "cleanup-3" | "done" => weights(None, None),
        other => panic!("unknown phase {other}"),
    }
}

fn canary_commits(sandbox: &Sandbox) -> Vec<String> {
    let prefix = format!("canary({SERVICE}): ");
    let mut subjects: Vec<String> = sandbox
        .commit_subjects()
        .into_iter()
        .filter_map(|s| s.strip_prefix(&prefix).map(str::to_string))
        .collect();
    subjects.reverse();
    subjects
}

#[track_caller]
fn assert_clean_work_tree(sandbox: &Sandbox, when: &str) {
    let dirty = sandbox.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(dirty.is_empty(), "{when}: files left uncommitted:\n{dirty}");
}

fn file(files: &common::Files, path: &str) -> String {
    String::from_utf8(
        files
            .get(path)
            .unwrap_or_else(|| panic!("{path} is missing"))
            .clone(),
    )
    .unwrap()
}

/// With no hand edit, `list` (the weights canary recorded) agrees with `status` (the files),
/// in the table and in JSON, while the release is in flight.
fn assert_listed_as_the_files_say(sandbox: &Sandbox) {
    let status = sandbox.status();
    if status["done"] == true {
        return;
    }
    let listed = sandbox.canary(&["list", "--json"]).ok().json();
    assert_eq!(
        listed[0]["environments"], status["environments"],
        "{listed}"
    );
    let cell = sandbox
        .weights()
        .iter()
        .map(|(env, w)| match w {
            Some(w) => format!("{env} {w}%"),
            None => format!("{env} -"),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let table = sandbox.canary(&["list"]).ok().stdout;
    let row = table.lines().nth(1).expect("a row under the header");
    assert!(
        row.contains(&format!("  {cell}  ")),
        "{cell:?} not in {row:?}"
    );
}

/// Walk one step at a time, noting the phase and the weights after every step; at the end of
/// each phase the repository must match golden set `set` and the weights
/// [`weights_at_end_of`] it.
fn walk_every_phase(sandbox: &Sandbox, set: &str) -> Vec<(String, Weights)> {
    let mut trail: Vec<(String, Weights)> = Vec::new();
    for (i, &phase) in PHASES[..PHASES.len() - 1].iter().enumerate() {
        let following = PHASES[i + 1];
        let mut steps = 0;
        loop {
            let status = sandbox.status();
            let now = status["phase"].as_str().unwrap().to_string();
            if now == following {
                break;
            }
            assert_eq!(now, phase, "the release skipped from {phase} to {now}");
            assert!(steps < common::MAX_STEPS, "{phase} never ended");
            sandbox.next();
            steps += 1;
            trail.push((sandbox.phase(), sandbox.weights()));
            assert_listed_as_the_files_say(sandbox);
        }
        assert!(steps > 0, "{phase} had no step");
        assert_golden_in(set, phase, &sandbox.files());
        assert_eq!(
            sandbox.weights(),
            weights_at_end_of(phase),
            "weights at the end of {phase}"
        );
        assert_clean_work_tree(sandbox, &format!("end of {phase}"));
    }
    trail
}

/// The seed's v1 → v2 ramp in production: every scheduled weight, in order, and staging
/// at 100% v2 before production's first weight and throughout the ramp.
fn assert_ramped_as_the_seed_says(trail: &[(String, Weights)]) {
    let mut production: Vec<u64> = trail
        .iter()
        .filter(|(phase, _)| phase == "ramp" || phase == "cleanup-1")
        .filter_map(|(_, w)| w[1].1)
        .collect();
    production.dedup();
    assert_eq!(production, [0, 1, 5, 10, 25, 50, 100]);
    let staging_while_ramping: Vec<Option<u64>> = trail
        .iter()
        .filter(|(phase, w)| phase == "ramp" && w[1].1.is_some_and(|w| w > 0))
        .map(|(_, w)| w[0].1)
        .collect();
    assert!(
        staging_while_ramping.iter().all(|&w| w == Some(100)),
        "production got v2 traffic while staging did not serve 100% v2: {staging_while_ramping:?}"
    );
    let staged = trail
        .iter()
        .position(|(phase, w)| phase == "deploy-v2" && w[0].1 == Some(100))
        .expect("staging went to 100% v2 in deploy-v2");
    assert!(trail[..staged].iter().all(|(_, w)| w[1].1 != Some(1)));
}

#[test]
fn a_whole_release_matches_the_golden_files_after_every_phase() {
    let sandbox = Sandbox::new();
    let seed = sandbox.files();
    sandbox.start();
    assert_eq!(sandbox.files(), seed, "start must not touch the repository");
    assert_eq!(sandbox.phase(), "deploy-v1");
    assert_eq!(sandbox.weights(), weights(None, None));

    let trail = walk_every_phase(&sandbox, "expected");
    assert_golden("done", &sandbox.files());
    assert_eq!(
        golden("done"),
        golden("cleanup-3"),
        "done is the end of cleanup-3"
    );

    assert_ramped_as_the_seed_says(&trail);

    let status = sandbox.status();
    assert_eq!(status["done"], true, "{status}");
    assert_eq!(status["next"], Value::Null, "{status}");
    assert_eq!(status["service"], SERVICE);

    // One commit per edit step, on top of the seed's commit.
    assert_eq!(canary_commits(&sandbox), EDIT_STEPS);
    assert_eq!(sandbox.commit_subjects().len(), EDIT_STEPS.len() + 1);

    // The journal tells the whole story.
    let log = sandbox.canary(&["log", SERVICE, "--json"]).ok().json();
    let events = log.as_array().expect("log --json is an array");
    assert!(!events.is_empty());
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in [
        "opened",
        "step-started",
        "files-written",
        "step-done",
        "deploy-confirmed",
        "committed",
        "finished",
    ] {
        assert!(kinds.contains(&kind), "no {kind} event in {kinds:?}");
    }
    assert_eq!(kinds.first(), Some(&"opened"));
    assert_eq!(kinds.iter().filter(|k| **k == "finished").count(), 1);
    assert_eq!(
        kinds.iter().filter(|k| **k == "committed").count(),
        EDIT_STEPS.len()
    );
    assert!(events.iter().all(|e| e["operator"] == "test"));
    // With none in flight, `log` without SERVICE shows the release that moved last.
    assert_eq!(sandbox.canary(&["log", "--json"]).ok().json(), log);

    // `next` once more: nothing left, not an error, nothing touched.
    let before = sandbox.snapshot();
    let again = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(again.code, 0, "next after done:\n{again}");
    common::assert_unchanged(&before, &sandbox.snapshot(), "next after done");
    assert_eq!(sandbox.commit_subjects().len(), EDIT_STEPS.len() + 1);

    let list = sandbox.canary(&["list", "--json"]).ok().json();
    assert_eq!(
        list,
        serde_json::json!([]),
        "nothing is in flight once done"
    );
    let all = sandbox.canary(&["list", "--all", "--json"]).ok().json();
    let all = all.as_array().expect("list --all --json is an array");
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["service"], SERVICE);
    assert_eq!(all[0]["done"], true);
    assert_eq!(all[0]["phase"], "done");
}

/// Coexistence on the seed example, with the demo's switch: the same phases, files and
/// weights as succession, but web-v1 runs web's image (no pinned tag) with the switch at v1,
/// and deploy-v2 is canary's own edit of web's switch. Golden files in
/// `tests/fixtures/expected-coexistence/<phase>/`, reviewed against the seed.
#[test]
fn a_coexistence_release_matches_its_golden_files_after_every_phase() {
    let sandbox = Sandbox::new();
    let seed = sandbox.files();
    sandbox.start_coexistence();
    assert_eq!(sandbox.files(), seed, "start must not touch the repository");
    let status = sandbox.status();
    assert_eq!(status["method"], "coexistence", "{status}");
    let trail = walk_every_phase(&sandbox, "expected-coexistence");
    assert_golden_in("expected-coexistence", "done", &sandbox.files());
    assert_ramped_as_the_seed_says(&trail);
    assert!(sandbox.status()["done"] == true);

    // Succession's commits, with deploy-v2's edit of web's switch among them, before the one
    // that sends staging to v2.
    let commits = canary_commits(&sandbox);
    assert_eq!(commits.len(), EDIT_STEPS.len() + 1, "{commits:#?}");
    assert_eq!(
        commits
            .iter()
            .filter(|c| c.starts_with("deploy-v2: "))
            .collect::<Vec<_>>(),
        [
            "deploy-v2: set web's switch to v2",
            "deploy-v2: send 100% of staging traffic to v2, to test it"
        ],
        "{commits:#?}"
    );

    let (name, v1, v2) = {
        let (name, values) = COEXISTENCE_SWITCH
            .strip_prefix("env:")
            .unwrap()
            .split_once('=')
            .unwrap();
        let (v1, v2) = values.split_once(',').unwrap();
        (name, v1, v2)
    };
    let gap = |phase: &str| file(&golden_in("expected-coexistence", phase), "gap/gap.yaml");
    let value_of = |text: &str, deployment: &str| -> Option<String> {
        let block = text.split(&format!("\n  {deployment}:\n")).nth(1)?;
        let block = block.split("\n  web").next().unwrap();
        let at = block.find(&format!("name: {name}\n"))?;
        block[at..]
            .lines()
            .nth(1)
            .and_then(|l| l.trim().strip_prefix("value: "))
            .map(str::to_string)
    };
    for phase in ["deploy-v1", "add-routing", "route-to-v1"] {
        let text = gap(phase);
        assert_eq!(
            value_of(&text, "web").as_deref(),
            Some(v1),
            "web in {phase}:\n{text}"
        );
        assert_eq!(
            value_of(&text, "web-v1").as_deref(),
            Some(v1),
            "web-v1 in {phase}:\n{text}"
        );
        assert!(
            !text.contains("tag:"),
            "no pinned image in coexistence ({phase}):\n{text}"
        );
    }
    for phase in ["deploy-v2", "ramp"] {
        let text = gap(phase);
        assert_eq!(
            value_of(&text, "web").as_deref(),
            Some(v2),
            "web in {phase}:\n{text}"
        );
        assert_eq!(
            value_of(&text, "web-v1").as_deref(),
            Some(v1),
            "web-v1 in {phase}:\n{text}"
        );
    }
    // The end: succession's end, and web keeps the v2 value of its switch.
    let done = gap("done");
    assert_eq!(value_of(&done, "web").as_deref(), Some(v2), "{done}");
    assert!(!done.contains("web-v1"), "{done}");
    for phase in PHASES {
        let (ours, theirs) = (golden_in("expected-coexistence", phase), golden(phase));
        let names = |f: &common::Files| f.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&ours), names(&theirs), "files at the end of {phase}");
        for (path, bytes) in &ours {
            if path != "gap/gap.yaml" {
                assert_eq!(
                    Some(bytes),
                    theirs.get(path),
                    "{path} at the end of {phase}"
                );
            }
        }
    }
}

/// Coexistence's own words: an abort names web's switch as the second way back, and the last
/// step says that the v1 code path and the switch can now go.
#[test]
fn coexistence_names_the_switch_as_the_second_way_back_and_what_goes_at_the_end() {
    let sandbox = Sandbox::new();
    sandbox.start_coexistence();
    sandbox.walk_to("ramp");
    while sandbox.weights()[1].1 != Some(1) {
        sandbox.next();
    }
    let abort = sandbox.canary(&["abort", SERVICE, "--yes"]).ok();
    assert!(
        abort.stdout.contains(
            "the second is web's switch: setting it back to \"v1\" in gap/gap.yaml \
             (env:IMPLEMENTATION=v1,v2) makes web serve v1 too"
        ),
        "{abort}"
    );
    sandbox.walk_to("cleanup-3");
    let mut last = sandbox.next();
    while sandbox.status()["done"] != true {
        last = sandbox.next();
    }
    assert!(
        last.stdout.contains(
            "the v1 code path and the switch (env:IMPLEMENTATION=v1,v2) can now be removed \
             from the codebase"
        ),
        "{last}"
    );
}

#[test]
fn a_staging_weight_and_an_abort_restart_the_ramp_and_the_release_still_ends() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("deploy-v2");
    assert_eq!(sandbox.files(), golden("route-to-v1"));

    // Test v2 on staging at 50%.
    sandbox
        .canary(&["weight", SERVICE, "staging", "50", "--yes"])
        .ok();
    let staging_patch = "gap/staging/gap_patch_canary_virtual_service.yaml";
    let mut expected = golden("route-to-v1");
    let half = file(&expected, staging_patch)
        .replace("weight: 100\n", "weight: 50\n")
        .replace("weight: 0\n", "weight: 50\n");
    assert_eq!(half.matches("weight: 50\n").count(), 2, "{half}");
    expected.insert(staging_patch.to_string(), half.into_bytes());
    assert!(
        expected == sandbox.files(),
        "after `weight staging 50`:\n{}",
        common::describe_difference(&expected, &sandbox.files())
    );
    assert_eq!(sandbox.weights(), weights(Some(50), Some(0)));
    let status = sandbox.status();
    assert_eq!(status["phase"], "deploy-v2");
    assert!(
        status["step"]
            .as_str()
            .unwrap()
            .contains("deploy to staging"),
        "the staging deploy comes next: {status}"
    );
    assert_clean_work_tree(&sandbox, "after weight");
    assert_eq!(
        canary_commits(&sandbox).last().unwrap(),
        "deploy-v2: send 50% of staging's traffic to v2"
    );

    // Into the ramp, up to 5% in production, then abort.
    sandbox.walk_to("ramp");
    for _ in 0..common::MAX_STEPS {
        if sandbox.weights()[1].1 == Some(5) {
            break;
        }
        sandbox.next();
    }
    // deploy-v2 sent staging to 100% v2 after the test at 50%.
    assert_eq!(sandbox.weights(), weights(Some(100), Some(5)));
    sandbox.canary(&["abort", SERVICE, "--yes"]).ok();
    assert!(
        sandbox.files() == golden("route-to-v1"),
        "abort puts every environment back to 100% v1:\n{}",
        common::describe_difference(&golden("route-to-v1"), &sandbox.files())
    );
    assert_eq!(sandbox.weights(), weights(Some(0), Some(0)));
    let status = sandbox.status();
    assert_eq!(
        status["phase"], "deploy-v2",
        "the ramp starts over: {status}"
    );
    assert!(
        status["step"]
            .as_str()
            .unwrap()
            .contains("deploy to staging"),
        "the deploys of the abort come next: {status}"
    );
    assert_eq!(
        canary_commits(&sandbox).last().unwrap(),
        "ramp: send all traffic back to v1"
    );
    assert_clean_work_tree(&sandbox, "after abort");

    // The ramp runs again from its first weight, and the release reaches done.
    let mut phases = vec![sandbox.phase()];
    for _ in 0..common::MAX_STEPS {
        if sandbox.phase() == "done" {
            break;
        }
        sandbox.next();
        let phase = sandbox.phase();
        if phases.last() != Some(&phase) {
            phases.push(phase);
        }
    }
    assert_eq!(
        phases,
        [
            "deploy-v2",
            "ramp",
            "cleanup-1",
            "cleanup-2",
            "cleanup-3",
            "done"
        ]
    );
    assert!(
        sandbox.files() == golden("done"),
        "{}",
        common::describe_difference(&golden("done"), &sandbox.files())
    );
    let commits = canary_commits(&sandbox);
    let count = |subject: &str| commits.iter().filter(|c| *c == subject).count();
    assert_eq!(count("ramp: send 1% of production traffic to v2"), 2);
    assert_eq!(count("ramp: send 5% of production traffic to v2"), 2);
    assert_eq!(count("ramp: send 10% of production traffic to v2"), 1);
    assert_eq!(count("ramp: send 100% of production traffic to v2"), 1);
    let log = sandbox.canary(&["log", SERVICE, "--json"]).ok().json();
    let kinds: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"weight-changed"), "{kinds:?}");
    assert!(kinds.contains(&"aborted"), "{kinds:?}");
    assert_eq!(sandbox.status()["done"], true);
}

/// The diff a dry run prints: the lines between its `Would` line and its first note.
fn dry_run_diff(stdout: &str) -> String {
    stdout
        .lines()
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with("Note "))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn a_dry_run_changes_neither_the_files_nor_the_journal() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut edits_seen = 0;
    // Every step up to the ramp: edits (with diffs), deploys, confirmations.
    while sandbox.phase() != "ramp" {
        let before = sandbox.snapshot();
        let step = sandbox.status()["step"].as_str().unwrap().to_string();
        let dry = sandbox.canary(&["next", SERVICE, "--dry-run"]).ok();
        common::assert_unchanged(
            &before,
            &sandbox.snapshot(),
            &format!("dry run at {step:?}"),
        );
        assert!(
            dry.stdout.contains("nothing was written"),
            "dry run at {step:?} does not say so:\n{dry}"
        );
        assert!(
            dry.stdout.lines().next().unwrap().contains(&step),
            "dry run at {step:?} names another step:\n{dry}"
        );
        let diff = dry_run_diff(&dry.stdout);
        let real = sandbox.next();
        if diff.is_empty() {
            assert!(sandbox.files() == before.0, "{step:?} wrote files");
        } else {
            edits_seen += 1;
            assert!(
                real.stdout.contains(&diff),
                "at {step:?} the step did not do what its dry run showed:\n--- dry run\n{diff}\n{real}"
            );
            assert_ne!(sandbox.files(), before.0, "{step:?} wrote nothing");
        }
    }
    // deploy-v1, two add-routing rounds, route-to-v1, staging to v2 in deploy-v2.
    assert_eq!(edits_seen, 5);

    // With a deploy owed by an out-of-band edit.
    sandbox
        .canary(&["weight", SERVICE, "production", "10", "--yes"])
        .ok();
    let before = sandbox.snapshot();
    let dry = sandbox.canary(&["next", SERVICE, "--dry-run"]).ok();
    assert!(dry.stdout.contains("deploy to production"), "{dry}");
    common::assert_unchanged(&before, &sandbox.snapshot(), "dry run of a pending deploy");
}

/// `next --dry-run`, then `next`, from the same state: the same exit code and, when `next`
/// fails, the same error; the dry run changes nothing either way.
#[track_caller]
fn assert_dry_run_exits_as_next(sandbox: &Sandbox, case: &str) -> common::Output {
    let before = sandbox.snapshot();
    let dry = sandbox.canary(&["next", SERVICE, "--dry-run"]);
    common::assert_unchanged(&before, &sandbox.snapshot(), &format!("dry run {case}"));
    let real = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(
        dry.code, real.code,
        "{case}: the dry run and next exit differently:\n--- dry run\n{dry}\n--- next\n{real}"
    );
    if real.code != 0 {
        assert_eq!(dry.stderr, real.stderr, "{case}: not the same refusal");
        common::assert_unchanged(&before, &sandbox.snapshot(), &format!("next {case}"));
    }
    real
}

#[test]
fn a_dry_run_exits_as_next_would_at_every_step_and_on_every_refusal() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut steps = 0;
    while sandbox.status()["done"] != true {
        let step = sandbox.status()["step"].as_str().unwrap().to_string();
        let dry = sandbox.canary(&["next", SERVICE, "--dry-run"]).ok();
        assert!(
            dry.stdout.starts_with(&format!("       Would {step}\n")),
            "the dry run at {step:?} names another step:\n{dry}"
        );
        assert_eq!(assert_dry_run_exits_as_next(&sandbox, &step).code, 0);
        steps += 1;
    }
    assert_eq!(steps, 46);
    // Done: `next` has nothing left to do, and that is not an error.
    let done = assert_dry_run_exits_as_next(&sandbox, "once done");
    assert_eq!(done.code, 0);
    assert!(
        done.stdout
            .contains("Done the release of my-service is complete"),
        "{done}"
    );
}

#[test]
fn a_dry_run_refuses_a_broken_repository_as_next_does() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("ramp");
    let staging = "gap/staging/gap_patch_canary_virtual_service.yaml";
    let text = file(&sandbox.files(), staging);
    let moved = text
        .replace("weight: 100\n", "weight: 90\n")
        .replace("weight: 0\n", "weight: 10\n");
    sandbox.next();
    // A hand edit moves staging's weight: neither a deploy nor a go-ahead builds on it.
    for step in [
        "ramp: deploy to production",
        "ramp: observe v2 at 1% in production",
    ] {
        assert_eq!(sandbox.status()["step"], step);
        sandbox.write(staging, &moved);
        let refused = assert_dry_run_exits_as_next(&sandbox, step);
        assert_eq!(refused.code, 3, "{step}: {refused}");
        assert!(refused.stderr.contains("CANARY-E022"), "{step}: {refused}");
        // Put back, the step goes ahead.
        sandbox.write(staging, &text);
        sandbox.next();
    }
    // Without a work tree, `next` cannot check the repository before a deploy: neither can
    // the dry run, which takes the same path up to the question.
    sandbox.next();
    assert_eq!(sandbox.status()["step"], "ramp: deploy to production");
    std::fs::rename(sandbox.repo.join(".git"), sandbox.tmp.path().join("git")).unwrap();
    let no_git = assert_dry_run_exits_as_next(&sandbox, "without .git");
    assert_eq!(no_git.code, 2, "{no_git}");
}

/// The golden files themselves say what the seed says, so that a careless re-bless cannot
/// slip a wrong tree in: the file set of each phase, the weights in every VirtualService patch,
/// and the end state (the seed's gap.yaml plus web's two labels).
#[test]
fn the_golden_files_follow_the_seed() {
    let vs = |env: &str| format!("gap/{env}/gap_patch_canary_virtual_service.yaml");
    let dr = "gap/gap_canary_destination_rule.yaml";
    let svc = "gap/gap_patch_canary_service.yaml";
    let keep = ["gap/production/.gitkeep", "gap/staging/.gitkeep"];
    let routed: Vec<String> = ["gap/gap.yaml", dr, svc]
        .into_iter()
        .map(String::from)
        .chain([vs("production"), vs("staging")])
        .chain(keep.map(String::from))
        .collect();
    for phase in PHASES {
        let files = golden(phase);
        let mut names: Vec<String> = files.keys().cloned().collect();
        names.sort();
        let mut expected: Vec<String> = match phase {
            "deploy-v1" => vec!["gap/gap.yaml".into()],
            "add-routing" | "route-to-v1" | "deploy-v2" | "ramp" => routed.clone(),
            "cleanup-1" => vec![
                "gap/gap.yaml".into(),
                dr.into(),
                vs("production"),
                vs("staging"),
            ],
            "cleanup-2" => vec!["gap/gap.yaml".into(), dr.into()],
            _ => vec!["gap/gap.yaml".into()],
        };
        expected.extend(keep.map(String::from));
        expected.sort();
        expected.dedup();
        assert_eq!(names, expected, "files at the end of {phase}");

        let gap = file(&files, "gap/gap.yaml");
        assert_eq!(
            gap.contains("  web-v1:\n"),
            !matches!(phase, "cleanup-1" | "cleanup-2" | "cleanup-3" | "done"),
            "web-v1 at the end of {phase}:\n{gap}"
        );
        assert_eq!(
            gap.contains("serviceAccountName:"),
            matches!(phase, "add-routing" | "route-to-v1" | "deploy-v2" | "ramp"),
            "web-v1's authorizationPolicy at the end of {phase}:\n{gap}"
        );

        // Weights in file order: v1 then v2 (or v2 alone once v1's route is gone).
        let (v1, v2) = match phase {
            "add-routing" => (Some(0), 100),
            "route-to-v1" | "deploy-v2" => (Some(100), 0),
            "ramp" => (Some(0), 100),
            "cleanup-1" => (None, 100),
            _ => continue,
        };
        for env in ["staging", "production"] {
            // v2 was tested with all of staging's traffic before production's ramp.
            let (v1, v2) = match (phase, env) {
                ("deploy-v2", "staging") => (Some(0), 100),
                _ => (v1, v2),
            };
            let text = file(&files, &vs(env));
            let weights: Vec<&str> = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("weight: "))
                .collect();
            let subsets: Vec<&str> = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("subset: "))
                .map(|s| s.split(' ').next().unwrap())
                .collect();
            let expected: Vec<String> = v1.into_iter().chain([v2]).map(|w| w.to_string()).collect();
            assert_eq!(weights, expected, "{env} weights at the end of {phase}");
            let expected_subsets: Vec<&str> = if v1.is_some() {
                vec!["v1", "v2"]
            } else {
                vec!["v2"]
            };
            assert_eq!(
                subsets, expected_subsets,
                "{env} subsets at the end of {phase}"
            );
            assert!(text.contains("kind: VirtualService\n"), "{text}");
        }
    }

    // The end: the seed's gap.yaml with web's version and canary labels, nothing else.
    let seed = String::from_utf8(
        std::fs::read(common::fixtures().join("seed-example/gap/gap.yaml")).unwrap(),
    )
    .unwrap();
    let labelled = seed.replacen(
        "  web:\n",
        "  web:\n    podLabels:\n      version: v2\n      canary: enabled\n",
        1,
    );
    assert_ne!(labelled, seed);
    assert_eq!(file(&golden("done"), "gap/gap.yaml"), labelled);
}

/// The `- name:`/`value:` lines of `name` in `gap.yaml`, as written.
fn env_value_lines(gap: &str, name: &str) -> Vec<String> {
    let lines: Vec<&str> = gap.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].trim() == format!("- name: {name}"))
        .map(|w| w[1].trim().to_string())
        .collect()
}

/// A switch whose values a YAML 1.1 reader (Helm's) would read as numbers: `017` is the octal
/// 15 and `1:20` the sexagesimal 80 there, though canary reads both as text. canary writes them
/// quoted, in the file's own quotes (double where it quotes nothing), and `canary check` finds
/// nothing to flag in what it wrote.
#[test]
fn switch_values_that_yaml_1_1_reads_as_numbers_are_written_quoted_in_the_files_quotes() {
    let switch = "env:IMPLEMENTATION=017,1:20";
    for (quote, gap_edit) in [
        ('"', None),
        ('\'', Some(("name: my-service", "name: 'my-service'"))),
    ] {
        let sandbox = Sandbox::new();
        if let Some((from, to)) = gap_edit {
            let text = file(&sandbox.files(), "gap/gap.yaml").replacen(from, to, 1);
            sandbox.write("gap/gap.yaml", &text);
            sandbox.git(&["commit", "-qam", "quote the name"]);
            sandbox.git(&["push", "-q"]);
        }
        let args = sandbox.coexistence_args(switch);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        sandbox.canary(&args).ok();
        sandbox.walk_to("add-routing");
        let gap = file(&sandbox.files(), "gap/gap.yaml");
        assert_eq!(
            env_value_lines(&gap, "IMPLEMENTATION"),
            vec![format!("value: {quote}017{quote}"); 2],
            "deploy-v1 sets web and web-v1 to v1:\n{gap}"
        );
        sandbox.walk_to("ramp");
        let gap = file(&sandbox.files(), "gap/gap.yaml");
        assert_eq!(
            env_value_lines(&gap, "IMPLEMENTATION"),
            [
                format!("value: {quote}1:20{quote}"),
                format!("value: {quote}017{quote}")
            ],
            "deploy-v2 sets web to v2:\n{gap}"
        );
        let check = sandbox.canary(&["check", SERVICE]);
        assert_eq!(check.code, 0, "{check}");
    }
}

/// A host that YAML reads as a number (`10.20` is the float 10.2) is written quoted in the
/// VirtualService patch, where canary means a string; written plain, Istio's schema would
/// refuse the patch (and `start`, which plans it, refused the release).
#[test]
fn a_host_that_yaml_reads_as_a_number_is_written_quoted() {
    let sandbox = Sandbox::new();
    let mut args = sandbox.start_args();
    let at = args
        .iter()
        .position(|a| a == common::PRODUCTION_HOST)
        .unwrap();
    args[at] = "production=10.20".into();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sandbox.canary(&args).ok();
    sandbox.walk_to("route-to-v1");
    let patch = file(
        &sandbox.files(),
        "gap/production/gap_patch_canary_virtual_service.yaml",
    );
    assert!(patch.contains("\n    - \"10.20\"\n"), "{patch}");
    let check = sandbox.canary(&["check", SERVICE]);
    assert_eq!(check.code, 0, "{check}");
}

/// A release journaled by the canary of before staging led production (made with that binary:
/// tests/fixtures/old-plan-deploy-v2/README.md), in deploy-v2 with v2's code on staging: it
/// walks on to done under the plan it started with, production ramping while staging stays at
/// 0% v2, and the question "was v2 tested?" asked as it was then.
#[test]
fn a_release_journaled_under_the_old_plan_walks_on_to_done_under_it() {
    let sandbox = Sandbox::new();
    let fixture = common::fixtures().join("old-plan-deploy-v2");
    std::fs::remove_dir_all(&sandbox.repo).unwrap();
    let bundle = fixture.join("repo.bundle");
    let repo = sandbox.repo.to_str().unwrap();
    let cloned = sandbox
        .command("git")
        .args(["clone", "-q", "-b", "main", bundle.to_str().unwrap(), repo])
        .output()
        .unwrap();
    assert!(cloned.status.success(), "{cloned:?}");
    let remote = sandbox.remote.to_str().unwrap();
    sandbox.git(&["remote", "set-url", "origin", remote]);
    sandbox.git(&["push", "-q", "--force", "--set-upstream", "origin", "main"]);
    std::fs::copy(fixture.join("journal.db"), &sandbox.journal).unwrap();
    {
        // The one thing that moved: where the repository is.
        let db = rusqlite::Connection::open(&sandbox.journal).unwrap();
        let here = sandbox.repo.canonicalize().unwrap();
        let here = here.to_str().unwrap();
        for (table, column) in [("releases", "config"), ("events", "detail")] {
            db.execute(
                &format!("UPDATE {table} SET {column} = replace({column}, '/tmp/mkfix/repo', ?1)"),
                [here],
            )
            .unwrap();
        }
    }
    let status = sandbox.status();
    assert_eq!(
        status["step"], "deploy-v2: deploy the v2 code to production",
        "{status}"
    );
    assert_eq!(sandbox.weights(), weights(Some(0), Some(0)));

    let mut trail: Vec<(String, Weights)> = Vec::new();
    for _ in 0..common::MAX_STEPS {
        if sandbox.status()["done"] == true {
            break;
        }
        let out = sandbox.next();
        trail.push((sandbox.phase(), sandbox.weights()));
        assert!(
            !out.stdout.contains("to test it"),
            "the old plan has no staging step:\n{out}"
        );
    }
    assert!(sandbox.status()["done"] == true, "never done: {trail:?}");
    // Production ramps while staging serves 0% v2; staging follows once production is at 100%.
    let ramping: Vec<Option<u64>> = trail
        .iter()
        .filter(|(phase, w)| phase == "ramp" && w[1].1.is_some_and(|w| w > 0 && w < 100))
        .map(|(_, w)| w[0].1)
        .collect();
    assert!(
        !ramping.is_empty() && ramping.iter().all(|&w| w == Some(0)),
        "{trail:?}"
    );
    let commits = canary_commits(&sandbox);
    assert_eq!(
        commits
            .iter()
            .filter(|c| c.starts_with("deploy-v2: "))
            .count(),
        0,
        "{commits:#?}"
    );
    assert!(
        commits.contains(&"ramp: send 100% of the other environments' traffic to v2".to_string()),
        "{commits:#?}"
    );
    assert!(
        sandbox.files() == golden("done"),
        "{}",
        common::describe_difference(&golden("done"), &sandbox.files())
    );
    // The release kept its shape: no plan of its own, which is the old one.
    let config: String = sandbox
        .journal_db()
        .query_row("SELECT config FROM releases", [], |row| row.get(0))
        .unwrap();
    assert!(!config.contains("\"plan\""), "{config}");
    sandbox.canary(&["journal", "check"]).ok();
}
