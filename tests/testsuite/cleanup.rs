//! The cleanup: patches of web-v1 that a person made during the release go with web-v1 at
//! cleanup-1 ("don't forget about potential patches for the canary deployment"), a file it cannot
//! take away whole is refused, `canary check` flags any patch whose target is gone, and each
//! cleanup's production deploy names what that phase deleted.

use crate::common;

use crate::common::{SERVICE, Sandbox, assert_unchanged, golden};

/// A strategic-merge patch of one Deployment, as a person writes it.
fn deployment_patch(name: &str) -> String {
    format!(
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  \
         template:\n    spec:\n      containers:\n        - name: app\n          resources:\n            \
         limits:\n              memory: 1Gi\n"
    )
}

const CONFIG_MAP: &str = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n";

/// Hand-made patches of web-v1, committed as a colleague would.
const BY_HAND: [&str; 2] = [
    "gap/production/gap_patch_memory_v1.yaml",
    "gap/production/limits/web_v1.yml",
];

fn commit_by_hand(sandbox: &Sandbox, files: &[(&str, String)]) {
    for (path, text) in files {
        sandbox.write(path, text);
    }
    sandbox.git(&["add", "-A"]);
    sandbox.git(&["commit", "-q", "--no-verify", "-m", "by hand"]);
    sandbox.git(&["push", "-q"]);
}

fn codes(out: &common::Output) -> Vec<(String, String)> {
    common::findings(out)
        .into_iter()
        .map(|(code, file, _)| (code, file))
        .collect()
}

#[test]
fn cleanup_1_removes_every_patch_of_web_v1_made_by_hand() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("deploy-v2");
    let patch = deployment_patch("my-service-web-v1");
    commit_by_hand(&sandbox, &BY_HAND.map(|path| (path, patch.clone())));
    // While web-v1 exists, its patches have a target.
    sandbox.canary(&["check", SERVICE]).ok();
    sandbox.walk_to("cleanup-1");
    let out = sandbox.next();
    for path in BY_HAND {
        assert!(
            out.stdout
                .contains(&format!("--- a/{path}\n+++ /dev/null\n")),
            "cleanup-1 does not show {path} going:\n{out}"
        );
        assert!(
            !sandbox.repo.join(path).exists(),
            "{path} survived cleanup-1"
        );
    }
    sandbox.walk_to("done");
    assert!(
        sandbox.files() == golden("done"),
        "{}",
        common::describe_difference(&golden("done"), &sandbox.files())
    );
    sandbox.canary(&["check", SERVICE]).ok();
}

#[test]
fn cleanup_1_refuses_a_file_that_patches_web_v1_among_other_documents() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("deploy-v2");
    let path = "gap/gap_patch_memory.yaml";
    commit_by_hand(
        &sandbox,
        &[(
            path,
            format!("{}{CONFIG_MAP}", deployment_patch("my-service-web-v1")),
        )],
    );
    sandbox.walk_to("cleanup-1");
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 2, "{out}");
    assert_eq!(
        out.stderr,
        format!(
            "error: {path} patches my-service-web-v1 among other documents; cleanup-1 removes \
             my-service-web-v1 and every patch of it, so move that patch to a file of its own \
             (or take it out), then run this again\n"
        )
    );
    assert_unchanged(&before, &sandbox.snapshot(), "a refused cleanup-1");

    // Moved to a file of its own, it goes with web-v1.
    commit_by_hand(
        &sandbox,
        &[
            (path, CONFIG_MAP.to_string()),
            (BY_HAND[0], deployment_patch("my-service-web-v1")),
        ],
    );
    sandbox.next();
    assert!(!sandbox.repo.join(BY_HAND[0]).exists());
    assert!(sandbox.repo.join(path).exists(), "the ConfigMap stays");
}

#[test]
fn check_flags_a_patch_whose_target_is_gone_and_next_refuses_to_build_on_it() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("cleanup-2");
    let left = BY_HAND[1];
    sandbox.write(left, &deployment_patch("my-service-web-v1"));
    sandbox.write(
        "gap/gap_patch_worker.yaml",
        &deployment_patch("my-service-worker"),
    );
    // web's own patches, and objects that are not Deployments of the service, are fine.
    sandbox.write(
        "gap/gap_patch_web.yaml",
        &deployment_patch("my-service-web"),
    );
    sandbox.write("gap/other.yaml", &deployment_patch("other-service-web-v1"));

    let out = sandbox.canary(&["check", SERVICE, "--json"]);
    assert_eq!(out.code, 1, "{out}");
    assert_eq!(
        codes(&out),
        [
            (
                "CANARY-E045".to_string(),
                "gap/gap_patch_worker.yaml".to_string()
            ),
            ("CANARY-E045".to_string(), left.to_string()),
        ]
    );
    let text = sandbox.canary(&["check", SERVICE]);
    assert!(
        text.stdout.contains(&format!(
            "error[CANARY-E045] {left}:5: patches the Deployment my-service-web-v1, but \
             gap/gap.yaml defines no deployment web-v1: the patch has no target; remove it"
        )),
        "{text}"
    );
    // Without the journal (--repo), the same.
    let repo = sandbox.repo.to_str().unwrap().to_string();
    let bare = sandbox.canary(&["check", "--repo", &repo, "--json"]);
    assert_eq!(codes(&bare), codes(&out), "{bare}");

    // `next` sees what `check` sees.
    let before = sandbox.snapshot();
    let refused = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(refused.code, 3, "{refused}");
    assert!(refused.stderr.contains("CANARY-E045"), "{refused}");
    assert_unchanged(&before, &sandbox.snapshot(), "next on a dangling patch");
}

/// The note each cleanup's production deploy prints: what that phase deleted, and what to prune.
#[test]
fn each_cleanup_names_what_it_deleted_at_its_production_deploy() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("deploy-v2");
    commit_by_hand(
        &sandbox,
        &[(BY_HAND[0], deployment_patch("my-service-web-v1"))],
    );
    let notes = [
        (
            "cleanup-1",
            format!(
                "cleanup-1 deleted the Deployment my-service-web-v1 (its patches went with it: \
                 {}) and web-v1's AuthorizationPolicy; production keeps them until it is pruned: \
                 sync with Argo CD's Prune option, or `kubectl -n relational-data delete \
                 deployment my-service-web-v1` and delete web-v1's AuthorizationPolicy by hand. \
                 The Service patch went too: the sync gives the Service my-service-web its own \
                 selector back",
                BY_HAND[0]
            ),
        ),
        (
            "cleanup-2",
            "cleanup-2 deleted the VirtualService patches \
             (gap/staging/gap_patch_canary_virtual_service.yaml, \
             gap/production/gap_patch_canary_virtual_service.yaml); no resource goes with them: \
             the sync gives the VirtualService my-service--web its own routes back, with nothing \
             to prune"
                .to_string(),
        ),
        (
            "cleanup-3",
            "cleanup-3 deleted the DestinationRule my-service--web; production keeps it until it \
             is pruned: sync with Argo CD's Prune option, or `kubectl -n relational-data delete \
             destinationrule my-service--web` by hand"
                .to_string(),
        ),
    ];
    for (phase, note) in notes {
        sandbox.walk_to(phase);
        let mut seen = Vec::new();
        while sandbox.phase() == phase {
            let out = sandbox.next();
            let step = out
                .stdout
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            let noted: Vec<&str> = out
                .stdout
                .lines()
                .filter_map(|l| l.trim_start().strip_prefix("Note "))
                .collect();
            seen.push((step, noted.join("\n")));
        }
        let steps = [
            format!("Step {phase}: "),
            format!("Step {phase}: deploy to staging"),
            format!("Step {phase}: deploy to production"),
        ];
        assert_eq!(seen.len(), 3, "{phase}: {seen:?}");
        assert!(seen[0].0.starts_with(&steps[0]), "{phase}: {seen:?}");
        assert_eq!(seen[1], (steps[1].clone(), String::new()), "{phase}");
        assert_eq!(seen[2], (steps[2].clone(), note), "{phase}");
    }
}
