//! The steps driven through the same prompt trait a person answers, with scripted answers.

use std::path::Path;
use std::process::Command;

use super::*;
use crate::journal::Journal;
use crate::output::Shell;
use crate::prompt::{AssumeYes, Prompt, Scripted};
use crate::settings::{Environment, Settings};
use crate::workflow::Phase;
use crate::workflow::{OutOfBandEdit, Position};

const DIGEST: &str = "sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f";

struct Setup {
    _dir: tempfile::TempDir,
    repo: std::path::PathBuf,
    journal: Journal,
    release: Release,
    shell: Shell,
}

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-example/gap");
    std::fs::create_dir_all(repo.join("gap")).unwrap();
    std::fs::copy(seed.join("gap.yaml"), repo.join("gap/gap.yaml")).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.name", "test"]);
    git(&repo, &["config", "user.email", "test@example.invalid"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "seed"]);
    let config = Settings {
        service: "my-service".into(),
        repo: repo.canonicalize().unwrap(),
        namespace: "relational-data".into(),
        environments: ["staging", "production"]
            .map(|name| Environment {
                name: name.into(),
                hosts: vec![format!("{name}.example.com")],
                context: None,
                argocd: None,
                prometheus: None,
            })
            .to_vec(),
        schedule: vec![50, 100],
        v1_image: Some(format!("registry/my-service@{DIGEST}").parse().unwrap()),
        method: Default::default(),
        switch: None,
        remote: crate::settings::Remote::None,
        id: String::new(),
        adopted: None,
        gate: Default::default(),
        plan: crate::workflow::PlanVersion::CURRENT,
    };
    let mut journal = Journal::open(&dir.path().join("journal.db"), "test").unwrap();
    let release = journal
        .open_release(&config, &Position::default(), &[None, None])
        .unwrap();
    Setup {
        _dir: dir,
        repo,
        journal,
        release,
        shell: Shell::capturing(),
    }
}

impl Setup {
    fn step(&mut self, prompt: &mut dyn Prompt) -> anyhow::Result<Release> {
        let mut runner = Runner {
            journal: &mut self.journal,
            prompt,
            shell: &self.shell,
            commit: Commit::Ask,
            repo: Default::default(),
            locks: None,
        };
        let result = take_step(&mut runner, &self.release, &Checks::default());
        if let Ok(release) = &result {
            self.release = release.clone();
        }
        result
    }

    fn gap_yaml(&self) -> String {
        std::fs::read_to_string(self.repo.join("gap/gap.yaml")).unwrap()
    }
}

#[test]
fn a_declined_write_changes_neither_files_nor_journal() {
    let mut setup = setup();
    let before = setup.gap_yaml();
    let err = setup.step(&mut Scripted::new(&["n"])).unwrap_err();
    assert!(
        err.to_string().contains("declined; nothing was written"),
        "{err}"
    );
    assert_eq!(setup.gap_yaml(), before);
    let stored = setup.journal.in_flight("my-service").unwrap().unwrap();
    assert_eq!(stored.position, Position::default());
    assert_eq!(
        setup.journal.events(stored.id).unwrap().len(),
        1,
        "only 'opened'"
    );
}

#[test]
fn a_write_whose_commit_is_declined_stays_uncommitted() {
    let mut setup = setup();
    setup.step(&mut Scripted::new(&["y", "n"])).unwrap();
    assert!(setup.gap_yaml().contains("  web-v1:\n"));
    assert_eq!(
        git(&setup.repo, &["status", "--porcelain"]),
        " M gap/gap.yaml\n"
    );
    // The diff it asked about, then what it wrote, and only that, through its shell.
    let said = setup.shell.captured();
    let (diff, wrote) = said.split_once("       Wrote ").expect("a Wrote line");
    assert!(
        diff.starts_with("--- a/gap/gap.yaml\n+++ b/gap/gap.yaml\n"),
        "{said}"
    );
    assert!(diff.contains("\n+  web-v1:\n"), "{said}");
    assert_eq!(
        wrote,
        "add the pinned web-v1 deployment and the version labels (gap/gap.yaml)\n"
    );
    assert_eq!(setup.release.position.index, 1);
}

#[test]
fn the_v1_image_check_can_re_pin_web_v1_which_owes_a_deploy_everywhere() {
    let mut setup = setup();
    while setup
        .release
        .position
        .next(&plan(&setup.release.config.shape()))
        != NextStep::Planned(Phase::RouteToV1, Step::CheckV1Image)
    {
        setup.step(&mut AssumeYes).unwrap();
    }
    let other = format!("registry/my-service@sha256:{}", "1".repeat(64));
    setup
        .step(&mut Scripted::new(&["n", &other, "y", "y"]))
        .unwrap();
    assert!(
        setup
            .gap_yaml()
            .contains(&format!("tag: sha256:{}", "1".repeat(64)))
    );
    assert_eq!(setup.release.config.pinned().unwrap().to_string(), other);
    assert_eq!(
        setup.release.position.pending,
        vec![
            (0, OutOfBandEdit::RepinV1.into()),
            (1, OutOfBandEdit::RepinV1.into())
        ]
    );
}

#[test]
#[should_panic(expected = "unexpected prompt")]
fn a_question_the_script_does_not_expect_fails_the_test() {
    let mut setup = setup();
    let _ = setup.step(&mut Scripted::new(&[]));
}

#[test]
#[should_panic(expected = "answers never asked for")]
fn answers_left_over_fail_the_test() {
    let mut setup = setup();
    setup.step(&mut AssumeYes).unwrap();
    // A deploy step asks once; the second answer is never wanted.
    let _ = setup.step(&mut Scripted::new(&["y", "y"]));
}
