//! Races: several `canary` processes on the same release at once. The per-release lock lets
//! one work and turns the others away with exit 75; no step is taken twice, the journal stays
//! intact, and the repository ends as a serial walk leaves it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const SERVICE: &str = "my-service";
const V1_IMAGE: &str = "sap-ems-base-infra-package-p/gap-images/my-service@sha256:\
                        be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f";
const MAX_ROUNDS: usize = 300;
const BUSY: i32 = 75;
const REFUSED: i32 = 3;

/// Every file of the work tree but `.git`, by repo-relative path.
type Snapshot = BTreeMap<String, Vec<u8>>;

struct Release {
    dir: tempfile::TempDir,
    repo: PathBuf,
    journal: PathBuf,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn start_args(repo: &str) -> Vec<&str> {
    vec![
        "start",
        SERVICE,
        "--repo",
        repo,
        "--v1-image",
        V1_IMAGE,
        "--namespace",
        "relational-data",
        "--host",
        "staging=my-service-staging.gservice.emarsys.com",
        "--host",
        "production=my-service.gservice.emarsys.net",
        "--yes",
    ]
}

fn text(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Release {
    /// A copy of the seed example, committed to a fresh git repository, and a release started.
    fn start() -> Release {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seed-example");
        copy_dir(&seed, &repo);
        let release = Release {
            journal: dir.path().join("state/journal.db"),
            repo,
            dir,
        };
        for args in [
            &["init", "-q", "-b", "main"][..],
            &["add", "--all"],
            &["commit", "-q", "-m", "seed"],
        ] {
            release.git(args);
        }
        release.ok(&start_args(release.repo.to_str().unwrap()));
        release
    }

    fn env<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        for var in [
            "CANARY_FAILPOINT",
            "CANARY_JOURNAL",
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
        ] {
            cmd.env_remove(var);
        }
        cmd.current_dir(&self.repo)
            .env("HOME", self.dir.path())
            .env("NO_COLOR", "1")
            .env("CANARY_OPERATOR", "test")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Canary Test")
            .env("GIT_AUTHOR_EMAIL", "canary@example.com")
            .env("GIT_COMMITTER_NAME", "Canary Test")
            .env("GIT_COMMITTER_EMAIL", "canary@example.com")
    }

    fn git(&self, args: &[&str]) -> String {
        let out = self
            .env(&mut Command::new("git"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn canary(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_canary"));
        self.env(&mut cmd)
            .arg("--journal")
            .arg(&self.journal)
            .args(args);
        cmd
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.canary(args).output().unwrap();
        assert!(
            out.status.success(),
            "canary {args:?} failed: {}",
            text(&out)
        );
        out
    }

    /// Start every command at once, then wait for all of them.
    fn race(&self, commands: &[Vec<String>]) -> Vec<(Vec<String>, Output)> {
        let children: Vec<_> = commands
            .iter()
            .map(|args| {
                self.canary(&args.iter().map(String::as_str).collect::<Vec<_>>())
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        commands
            .iter()
            .cloned()
            .zip(children)
            .map(|(args, child)| (args, child.wait_with_output().unwrap()))
            .collect()
    }

    fn status(&self) -> Value {
        serde_json::from_slice(&self.ok(&["status", SERVICE, "--json"]).stdout).unwrap()
    }

    fn phase(&self) -> String {
        self.status()["phase"].as_str().unwrap().to_string()
    }

    fn done(&self) -> bool {
        self.status()["done"] == true
    }

    fn log(&self) -> Vec<Value> {
        serde_json::from_slice(&self.ok(&["log", SERVICE, "--json"]).stdout).unwrap()
    }

    fn count(&self, kind: &str) -> usize {
        self.log().iter().filter(|e| e["kind"] == kind).count()
    }

    /// The subjects of canary's commits, oldest first.
    fn commits(&self) -> Vec<String> {
        self.git(&["log", "--reverse", "--format=%s"])
            .lines()
            .filter(|s| s.starts_with("canary("))
            .map(str::to_string)
            .collect()
    }

    fn assert_journal_intact(&self) {
        let db = rusqlite::Connection::open_with_flags(
            &self.journal,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(check, "ok", "journal integrity_check");
        let broken: i64 = db
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(broken, 0, "journal foreign_key_check");
        let releases: i64 = db
            .query_row("SELECT count(*) FROM releases", [], |row| row.get(0))
            .unwrap();
        assert_eq!(releases, 1, "one release in the journal");
    }

    fn snapshot(&self) -> Snapshot {
        fn walk(root: &Path, dir: &Path, into: &mut Snapshot) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let path = entry.path();
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                if rel == ".git" {
                    continue;
                }
                if entry.file_type().unwrap().is_dir() {
                    walk(root, &path, into);
                } else {
                    into.insert(rel, std::fs::read(&path).unwrap());
                }
            }
        }
        let mut snapshot = Snapshot::new();
        walk(&self.repo, &self.repo, &mut snapshot);
        snapshot
    }

    fn assert_like(&self, serial: &Snapshot, context: &str) {
        let actual = self.snapshot();
        let strays: Vec<&String> = actual
            .keys()
            .filter(|p| {
                let name = p.rsplit('/').next().unwrap();
                name.starts_with(".canary-") && name.ends_with(".tmp")
            })
            .collect();
        assert!(
            strays.is_empty(),
            "{context}: temporary files left: {strays:?}"
        );
        let differ: BTreeSet<&String> = actual
            .keys()
            .chain(serial.keys())
            .filter(|p| actual.get(*p) != serial.get(*p))
            .collect();
        assert!(
            differ.is_empty(),
            "{context}: the repository differs from the serial walk in {differ:?}"
        );
    }

    /// `next` one at a time until done; how many it took.
    fn finish(&self) -> usize {
        for taken in 0..MAX_ROUNDS {
            if self.done() {
                return taken;
            }
            self.ok(&["next", SERVICE, "--yes"]);
        }
        panic!("the release never finished");
    }
}

/// The serial walk everything is compared with, and how many `next`s it took.
fn serial_walk() -> (Release, usize) {
    let release = Release::start();
    let steps = release.finish();
    release.assert_journal_intact();
    (release, steps)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn eight_nexts_at_once_take_every_step_exactly_once() {
    let (serial, serial_steps) = serial_walk();
    for race in 1..=3 {
        eight_nexts_at_once(&serial, serial_steps, race);
    }
}

fn eight_nexts_at_once(serial: &Release, serial_steps: usize, race: usize) {
    let release = Release::start();
    let next = args(&["next", SERVICE, "--yes"]);
    let (mut rounds, mut busy, mut ok) = (0, 0, 0);
    while !release.done() {
        rounds += 1;
        assert!(rounds <= MAX_ROUNDS, "the release never finished");
        for (_, out) in release.race(&vec![next.clone(); 8]) {
            match out.status.code() {
                Some(0) => ok += 1,
                Some(BUSY) => {
                    busy += 1;
                    assert!(
                        String::from_utf8_lossy(&out.stderr).contains("another canary process"),
                        "round {rounds}: {}",
                        text(&out)
                    );
                }
                _ => panic!("round {rounds}: a racing next failed: {}", text(&out)),
            }
        }
    }
    eprintln!("race {race}: {rounds} rounds of 8 racing nexts: {ok} exited 0, {busy} were busy");
    // The processes did race: most found the release locked.
    assert!(busy > 0, "no process ever found the release busy");
    // Each step was taken once: a `next` that got the lock after the last step says done.
    assert!(
        ok >= serial_steps,
        "{ok} successful nexts, {serial_steps} steps"
    );
    for kind in [
        "step-done",
        "step-started",
        "files-written",
        "deploy-confirmed",
        "committed",
        "finished",
    ] {
        assert_eq!(release.count(kind), serial.count(kind), "{kind} events");
    }
    assert_eq!(release.commits(), serial.commits(), "canary's commits");
    release.assert_like(&serial.snapshot(), "after the race");
    release.assert_journal_intact();
}

#[test]
fn weight_abort_and_start_race_next_during_deploy_v2_and_ramp() {
    let (serial, _) = serial_walk();
    let release = Release::start();
    while release.phase() != "deploy-v2" {
        release.ok(&["next", SERVICE, "--yes"]);
    }
    let repo = release.repo.to_str().unwrap().to_string();
    let mut exits: BTreeMap<(String, i32), usize> = BTreeMap::new();
    let count = |exits: &BTreeMap<(String, i32), usize>, cmd: &str, code: i32| {
        exits.get(&(cmd.to_string(), code)).copied().unwrap_or(0)
    };
    let mut rounds = 0;
    while matches!(release.phase().as_str(), "deploy-v2" | "ramp") {
        rounds += 1;
        assert!(rounds <= MAX_ROUNDS, "the release never left the ramp");
        let next = args(&["next", SERVICE, "--yes"]);
        let mut commands = vec![next.clone(), next.clone(), next];
        commands.push(args(&["start", SERVICE])); // the flags are added below
        commands
            .last_mut()
            .unwrap()
            .splice(.., start_args(&repo).into_iter().map(String::from));
        // The out-of-band commands only early on, so that the release still gets through.
        if rounds <= 24 {
            let percent = ["25", "50", "75"][rounds % 3];
            commands.push(args(&["weight", SERVICE, "staging", percent, "--yes"]));
            if rounds % 4 == 0 {
                // Refused during deploy-v2; during ramp it moves the ramp to the next weight.
                commands.push(args(&["weight", SERVICE, "production", "30", "--yes"]));
            }
            // Two aborts at most, each sending the release back to deploy-v2.
            if rounds % 3 == 0 && count(&exits, "abort", 0) < 2 {
                commands.push(args(&["abort", SERVICE, "--yes"]));
            }
        }
        for (args, out) in release.race(&commands) {
            let code = out.status.code();
            assert!(
                matches!(code, Some(0 | REFUSED | BUSY)),
                "round {rounds}: {args:?}: {}",
                text(&out)
            );
            *exits.entry((args[0].clone(), code.unwrap())).or_default() += 1;
        }
    }
    eprintln!("{rounds} racing rounds, exits by command: {exits:?}");
    release.finish();
    let exit = |cmd: &str, code: i32| count(&exits, cmd, code);
    assert!(
        exits.keys().any(|(_, code)| *code == BUSY),
        "nothing ever found the release busy"
    );
    assert_eq!(exit("start", 0), 0, "a second release was opened");
    assert!(exit("start", REFUSED) > 0, "start was never refused");
    // What the journal recorded agrees with the exit codes.
    assert_eq!(release.count("weight-changed"), exit("weight", 0));
    assert_eq!(release.count("aborted"), exit("abort", 0));
    assert_eq!(release.count("opened"), 1);
    assert_eq!(release.count("finished"), 1);
    let status = release.status();
    assert_eq!(status["done"], true, "{status}");
    release.assert_like(&serial.snapshot(), "after the race");
    release.assert_journal_intact();
}
