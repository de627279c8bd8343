//! The real prompts, driven through a pseudo-terminal as a person would answer them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use expectrl::session::OsSession as Session;
use expectrl::{Eof, Expect};

const IMAGE: &str = "sap-ems-base-infra-package-p/gap-images/my-service@sha256:\
                     be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f";
const NEW_DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-example");
        for rel in [
            "gap/gap.yaml",
            "gap/staging/.gitkeep",
            "gap/production/.gitkeep",
        ] {
            let to = repo.join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(source.join(rel), to).unwrap();
        }
        let fixture = Fixture { dir };
        for args in [
            &["init", "-q", "-b", "main"][..],
            &["add", "-A"],
            &["commit", "-q", "-m", "seed"],
        ] {
            let status = fixture.git().args(args).status().unwrap();
            assert!(status.success());
        }
        fixture
    }

    fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("CANARY_JOURNAL", self.dir.path().join("journal.db"))
            .env("CANARY_OPERATOR", "test")
            .env("HOME", self.dir.path())
            .env("NO_COLOR", "1")
            .env("TERM", "dumb")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .current_dir(self.dir.path());
    }

    fn git(&self) -> Command {
        let mut cmd = Command::new("git");
        self.env(&mut cmd);
        cmd.arg("-C").arg(self.repo());
        cmd
    }

    fn canary(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_canary"));
        self.env(&mut cmd);
        let out = cmd.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "canary {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn terminal(&self, args: &[&str]) -> Session {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_canary"));
        self.env(&mut cmd);
        cmd.args(args);
        let mut session = Session::spawn(cmd).unwrap();
        session.set_expect_timeout(Some(Duration::from_secs(20)));
        session
    }

    fn start(&self) {
        let repo = self.repo();
        self.canary(&[
            "start",
            "my-service",
            "--repo",
            repo.to_str().unwrap(),
            "--v1-image",
            IMAGE,
            "--namespace",
            "relational-data",
            "--host",
            "staging=my-service-staging.gservice.emarsys.com",
            "--host",
            "production=my-service.gservice.emarsys.net",
        ]);
    }

    fn status(&self) -> serde_json::Value {
        let out = self.canary(&["status", "my-service", "--json"]);
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn gap_yaml(&self) -> String {
        std::fs::read_to_string(self.repo().join("gap/gap.yaml")).unwrap()
    }
}

fn exited_ok(session: &mut Session) {
    session.expect(Eof).unwrap();
    let status = session.get_process_mut().wait().unwrap();
    assert_eq!(
        format!("{status:?}").split(", ").last(),
        Some("0)"),
        "{status:?}"
    );
}

#[test]
fn start_asks_for_every_missing_value_on_a_terminal() {
    let fixture = Fixture::new();
    let mut term = fixture.terminal(&["start"]);
    term.expect("Service").unwrap();
    term.send_line("my-service").unwrap();
    term.expect("Repository directory").unwrap();
    term.send_line(fixture.repo().to_str().unwrap()).unwrap();
    term.expect("v1 image").unwrap();
    // A tag is not a digest: the prompt says so and asks again.
    term.send_line("my-service:latest").unwrap();
    term.expect("has no digest").unwrap();
    term.send_line(IMAGE).unwrap();
    term.expect("Namespace").unwrap();
    term.send_line("relational-data").unwrap();
    term.expect("Public host of staging").unwrap();
    term.send_line("my-service-staging.gservice.emarsys.com")
        .unwrap();
    term.expect("Public host of production").unwrap();
    term.send_line("my-service.gservice.emarsys.net").unwrap();
    term.expect("Started").unwrap();
    exited_ok(&mut term);
    let status = fixture.status();
    assert_eq!(status["phase"], "deploy-v1");
    assert_eq!(status["v1_image"], IMAGE);
}

#[test]
fn a_declined_write_changes_nothing_and_an_accepted_one_writes_and_commits() {
    let fixture = Fixture::new();
    fixture.start();
    let before = fixture.gap_yaml();

    let mut term = fixture.terminal(&["next", "my-service"]);
    term.expect("Write add the pinned web-v1 deployment")
        .unwrap();
    term.send("n").unwrap();
    term.expect("declined; nothing was written").unwrap();
    term.expect(Eof).unwrap();
    assert_eq!(fixture.gap_yaml(), before);
    assert_eq!(fixture.status()["phase"], "deploy-v1");

    let mut term = fixture.terminal(&["next", "my-service"]);
    term.expect("Write add the pinned web-v1 deployment")
        .unwrap();
    term.send("y").unwrap();
    term.expect("Commit these files?").unwrap();
    term.send("y").unwrap();
    term.expect("Committed").unwrap();
    exited_ok(&mut term);
    assert!(fixture.gap_yaml().contains("  web-v1:\n"));
    let log = fixture.git().args(["log", "--format=%s"]).output().unwrap();
    let subjects = String::from_utf8(log.stdout).unwrap();
    assert_eq!(
        subjects.lines().next(),
        Some(
            "canary(my-service): deploy-v1: add the pinned web-v1 deployment and the version labels"
        )
    );
}

#[test]
fn the_v1_image_check_can_pin_another_image_which_is_deployed_before_the_check_again() {
    let fixture = Fixture::new();
    fixture.start();
    while fixture.status()["step"] != "route-to-v1: check that web-v1 runs the pinned image" {
        fixture.canary(&["next", "my-service", "--yes"]);
    }
    let mut term = fixture.terminal(&["next", "my-service"]);
    term.expect("Does the deployed web-v1 run the pinned image?")
        .unwrap();
    term.send("\x1b[B").unwrap(); // down: "no, pin web-v1 to another image"
    term.send("\r").unwrap();
    term.expect("The image web-v1 should run").unwrap();
    let repository = IMAGE.split('@').next().unwrap();
    term.send_line(format!("{repository}@{NEW_DIGEST}"))
        .unwrap();
    term.expect("Write pin web-v1 to the new image").unwrap();
    term.send("y").unwrap();
    term.expect("Commit these files?").unwrap();
    term.send("y").unwrap();
    exited_ok(&mut term);

    assert!(
        fixture
            .gap_yaml()
            .contains(&format!("      tag: {NEW_DIGEST}\n"))
    );
    let status = fixture.status();
    assert_eq!(status["v1_image"], format!("{repository}@{NEW_DIGEST}"));
    assert_eq!(
        status["step"],
        "route-to-v1: deploy to staging (pin web-v1 to a new image)"
    );
    fixture.canary(&["next", "my-service", "--yes"]);
    fixture.canary(&["next", "my-service", "--yes"]);
    assert_eq!(
        fixture.status()["step"],
        "route-to-v1: check that web-v1 runs the pinned image"
    );
}
