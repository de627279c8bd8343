//! The whole release walked over every member of `tests/fixtures/corpus/`: gap.yaml files
//! written the ways people write them. After every step `canary check` is clean; after every
//! phase the edits are pure insertions into the input (nothing of it changed or lost) in the
//! file's own style; and once the release is done gap.yaml is the input plus the two labels.

use crate::common;

use crate::common::{PHASES, SERVICE, Sandbox};
use serde_json::{Value, json};
use similar::{ChangeTag, TextDiff};

const GAP: &str = "gap/gap.yaml";

/// The corpus, each member with the indentation step its gap.yaml uses.
const MEMBERS: [(&str, usize); 3] = [("four-space", 4), ("crlf-flow", 2), ("flow-web", 2)];

fn text(files: &common::Files, path: &str) -> String {
    String::from_utf8(files[path].clone()).unwrap()
}

fn parse(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap()
}

/// The text `after` adds to `before`; panics if anything of `before` was changed or removed.
#[track_caller]
fn insertions(before: &str, after: &str, when: &str) -> String {
    let diff = TextDiff::from_chars(before, after);
    let mut added = String::new();
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Equal => {}
            ChangeTag::Insert => added.push_str(change.value()),
            ChangeTag::Delete => panic!(
                "{when}: a byte of the input was changed or removed:\n{}",
                TextDiff::from_lines(before, after).unified_diff()
            ),
        }
    }
    added
}

/// Inserted lines follow the file's style: its line endings, and its indentation.
#[track_caller]
fn assert_style(input: &str, output: &str, step: usize, when: &str) {
    let crlf = input.contains("\r\n");
    let bare_lf = output.replace("\r\n", "").contains('\n');
    assert!(
        !(crlf && bare_lf),
        "{when}: a bare LF in a CRLF file:\n{output}"
    );
    assert_eq!(
        output.contains("\r\n"),
        crlf,
        "{when}: line endings changed"
    );
    let old: Vec<&str> = input.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let used: Vec<usize> = old.iter().map(|l| indent(l)).collect();
    for line in output.lines().filter(|l| !old.contains(l)) {
        // A column of the file's step, or one the file already uses (the mapping inside a
        // sequence item sits two past its dash, whatever the step).
        let at = indent(line);
        assert!(
            at % step == 0 || used.contains(&at),
            "{when}: {line:?} is indented unlike the rest of the file"
        );
    }
}

/// The value of the demo's switch, `IMPLEMENTATION`, in a deployment's `env`.
fn switch_value(deployment: &Value) -> Option<&str> {
    deployment["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == "IMPLEMENTATION")?["value"]
        .as_str()
}

/// A deployment's `env` without the switch: what canary must keep as it was.
fn others_env(deployment: &Value) -> Vec<Value> {
    let items = deployment["env"].as_array().cloned().unwrap_or_default();
    items
        .into_iter()
        .filter(|e| e["name"] != "IMPLEMENTATION")
        .collect()
}

#[test]
fn every_corpus_member_walks_clean() {
    for (member, step) in MEMBERS {
        walk(member, step, false);
    }
}

/// In coexistence canary also writes web's switch (added where web sets no such variable),
/// in the file's own style, and web-v1 is web's twin without a pinned image.
#[test]
fn every_corpus_member_walks_clean_in_coexistence() {
    for (member, step) in MEMBERS {
        walk(member, step, true);
    }
}

fn walk(member: &str, step: usize, coexistence: bool) {
    let sandbox = Sandbox::with_fixture(&format!("corpus/{member}"));
    let input_files = sandbox.files();
    let input = text(&input_files, GAP);
    let meaning = parse(&input);
    if coexistence {
        sandbox.start_coexistence();
    } else {
        sandbox.start();
    }
    let check = |when: &str| {
        let out = sandbox.canary(&["check", SERVICE, "--json"]);
        assert_eq!(out.code, 0, "{member}, {when}: canary check failed:\n{out}");
        assert_eq!(out.json(), json!([]), "{member}, {when}");
    };
    check("at the start");
    for (i, &phase) in PHASES[..PHASES.len() - 1].iter().enumerate() {
        let following = PHASES[i + 1];
        let mut steps = 0;
        while sandbox.phase() != following {
            let out = sandbox.canary(&["next", SERVICE, "--yes"]);
            assert_eq!(out.code, 0, "{member}: {phase}: next failed:\n{out}");
            steps += 1;
            assert!(steps < common::MAX_STEPS, "{member}: {phase} never ended");
            check(&format!("in {phase}, after step {steps}"));
        }
        let when = format!("{member}, end of {phase}");
        let files = sandbox.files();
        let gap = text(&files, GAP);
        let added = insertions(&input, &gap, &when);
        assert_style(&input, &gap, step, &when);
        // No other file of the input changed.
        for (path, bytes) in &input_files {
            if path != GAP {
                assert_eq!(files.get(path), Some(bytes), "{when}: {path} changed");
            }
        }
        let now = parse(&gap);
        let web = &now["deployments"]["web"];
        assert_eq!(web["podLabels"]["team"], "x", "{when}");
        assert_eq!(web["podLabels"]["version"], "v2", "{when}");
        assert_eq!(web["podLabels"]["canary"], "enabled", "{when}");
        let twin = &now["deployments"]["web-v1"];
        let twin_patch = "gap/production/gap_patch_web_replicas_canary_v1.yaml";
        let has_web_patch = input_files.contains_key("gap/production/gap_patch_web_replicas.yaml");
        if matches!(
            phase,
            "deploy-v1" | "add-routing" | "route-to-v1" | "deploy-v2" | "ramp"
        ) {
            // web-v1 takes all of web's labels, with its own version.
            let mut labels = web["podLabels"].clone();
            labels["version"] = json!("v1");
            assert_eq!(twin["podLabels"], labels, "{when}");
            assert_eq!(twin["command"], web["command"], "{when}");
            if coexistence {
                assert!(twin["image"].is_null(), "{when}: web-v1 pins an image");
                assert_eq!(switch_value(twin), Some("v1"), "{when}");
                let web_value = if matches!(phase, "deploy-v2" | "ramp") {
                    "v2"
                } else {
                    "v1"
                };
                assert_eq!(switch_value(web), Some(web_value), "{when}");
                assert_eq!(
                    others_env(web),
                    others_env(&meaning["deployments"]["web"]),
                    "{when}: web's other variables changed"
                );
            }
            if has_web_patch {
                let patch = text(&files, twin_patch);
                assert!(patch.contains("name: my-service-web-v1"), "{when}: {patch}");
            }
        } else {
            assert!(twin.is_null(), "{when}: web-v1 is still there");
            assert!(
                !files.contains_key(twin_patch),
                "{when}: the patch twin is still there"
            );
            // Input plus the two labels on web, and nothing else.
            let mut want = meaning.clone();
            want["deployments"]["web"]["podLabels"]["version"] = json!("v2");
            want["deployments"]["web"]["podLabels"]["canary"] = json!("enabled");
            if coexistence {
                // web keeps the v2 value of its switch: the v1 code path goes next.
                assert_eq!(switch_value(web), Some("v2"), "{when}");
                want["deployments"]["web"]["env"] = web["env"].clone();
                assert_eq!(now, want, "{when}");
                continue;
            }
            assert_eq!(now, want, "{when}");
            let compact: String = added.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                [
                    "version: v2 canary: enabled",
                    ", version: v2, canary: enabled"
                ]
                .contains(&compact.as_str()),
                "{when}: gap.yaml gained more than the two labels: {added:?}"
            );
        }
    }
    assert_eq!(sandbox.phase(), "done");
}

/// A repository canary cannot take over says what it found, and where: at `start`, which
/// walks the release in memory, before anything is written or journaled.
#[test]
fn an_existing_twin_or_another_version_label_is_refused_with_its_place() {
    let cases = [
        (
            "    podLabels:\n      version: v3\n",
            "error[CANARY-E042] gap/gap.yaml:6: web is labelled version: v3, where canary labels it version: v2",
        ),
        (
            "  web-v1:\n    replicas: 1\n",
            "error[CANARY-E017] gap/gap.yaml:9: web-v1's image tag is \"\", not a sha256 digest",
        ),
    ];
    for (extra, message) in cases {
        let sandbox = Sandbox::new();
        let gap = std::fs::read_to_string(sandbox.repo.join(GAP)).unwrap();
        let gap = if extra.starts_with("  web-v1") {
            format!("{gap}{extra}")
        } else {
            gap.replace("  web:\n", &format!("  web:\n{extra}"))
        };
        sandbox.write(GAP, &gap);
        sandbox.git(&["commit", "-qam", "by hand"]);
        let before = sandbox.snapshot();
        let args = sandbox.start_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sandbox.canary(&args);
        // What `canary check` finds is refused with exit 3, as `next` refuses it.
        assert_eq!(out.code, 3, "{out}");
        assert!(out.stderr.contains(message), "{out}");
        common::assert_unchanged(&before, &sandbox.snapshot(), "a refused start");
    }
}
