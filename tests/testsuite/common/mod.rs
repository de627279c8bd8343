//! Shared helpers for the end-to-end tests: a throw-away GitOps repository made from
//! `tests/fixtures/seed-example`, a journal beside it, and the real `canary` binary run with a
//! clean, deterministic environment.
//!
//! Layout of one [`Sandbox`] (all inside one temporary directory):
//!
//! ```text
//! TMP/repo/         the git work tree (copy of tests/fixtures/seed-example, one commit)
//! TMP/remote.git/   a bare repository, the upstream of the work tree's `main` (origin)
//! TMP/journal.db    the journal (CANARY_JOURNAL)
//! TMP/home/         HOME and the XDG directories
//! ```

// Without the `cluster` feature only the settings tests start a fake API server (for the
// contexts they name); the default build, which uses all of it, is where its dead code shows.
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
pub mod cluster;
// Without the `cluster` feature only the settings tests start one (to stand behind the
// contexts' Prometheus), and its misbehaviours go unused.
#[cfg_attr(not(feature = "cluster"), allow(dead_code))]
pub mod hostile;
#[cfg(feature = "cluster")] // the gate's Prometheus client is kube's
pub mod prometheus;
#[cfg(feature = "cluster")] // webhooks are posted with kube's HTTP client
pub mod webhook;
pub mod yaml_text;

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

pub const SERVICE: &str = "my-service";
pub const V1_IMAGE: &str = "sap-ems-base-infra-package-p/gap-images/my-service@sha256:be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f";
pub const NAMESPACE: &str = "relational-data";
pub const STAGING_HOST: &str = "staging=my-service-staging.gservice.emarsys.com";
pub const PRODUCTION_HOST: &str = "production=my-service.gservice.emarsys.net";

/// The phases in walking order, as `canary status` names them.
/// The switch `canary demo --method coexistence` uses.
pub const COEXISTENCE_SWITCH: &str = "env:IMPLEMENTATION=v1,v2";

pub const PHASES: [&str; 9] = [
    "deploy-v1",
    "add-routing",
    "route-to-v1",
    "deploy-v2",
    "ramp",
    "cleanup-1",
    "cleanup-2",
    "cleanup-3",
    "done",
];

/// The steps of the default plan (staging, production; ramp 1,5,10,25,50,100) that write files,
/// in walking order: in a plain walk canary commits once for each, with the step as the subject
/// after `canary(SERVICE): `. (The ramp's edit of the other environments finds staging at 100%
/// v2 already, since deploy-v2, and writes nothing.)
pub const EDIT_STEPS: [&str; 14] = [
    "deploy-v1: add the pinned web-v1 deployment and the version labels",
    "add-routing: add the DestinationRule subsets and web-v1's AuthorizationPolicy",
    "add-routing: add the VirtualService patches and the Service patch",
    "route-to-v1: route 100% of traffic to v1",
    "deploy-v2: send 100% of staging traffic to v2, to test it",
    "ramp: send 1% of production traffic to v2",
    "ramp: send 5% of production traffic to v2",
    "ramp: send 10% of production traffic to v2",
    "ramp: send 25% of production traffic to v2",
    "ramp: send 50% of production traffic to v2",
    "ramp: send 100% of production traffic to v2",
    "cleanup-1: remove the v1 route, the Service patch and web-v1",
    "cleanup-2: remove the VirtualService patches",
    "cleanup-3: remove the DestinationRule",
];

/// Enough `next` calls for any walk of the default plan (it has 44 steps), so that a walk that
/// never arrives fails instead of hanging.
pub const MAX_STEPS: usize = 120;

/// How the tests run a release unattended: both environments' deploys on --yes's word, and no
/// bake, so that a run takes seconds.
pub const UNATTENDED: [&str; 6] = [
    "--trust-deploys",
    "staging",
    "--trust-deploys",
    "production",
    "--bake",
    "0s",
];

/// `canary run` of the usual service with --yes, [`UNATTENDED`], then `extra`.
pub fn unattended_run<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", SERVICE, "--yes"];
    args.extend(UNATTENDED);
    args.extend_from_slice(extra);
    args
}

/// Every file of the repository (`.git` excluded): repo-relative path with `/` → bytes.
pub type Files = BTreeMap<String, Vec<u8>>;

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// What one canary process did.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code; -1 when a signal ended the process.
    pub code: i32,
    /// The signal that ended the process, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The command line, for assertion messages.
    pub args: String,
}

impl Output {
    /// What a finished canary process run with `args` did; panics if it panicked.
    #[track_caller]
    pub fn new(args: &[&str], out: std::process::Output) -> Output {
        let output = Output {
            code: out.status.code().unwrap_or(-1),
            signal: out.status.signal(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            args: args.join(" "),
        };
        assert!(
            !output.stderr.contains("panicked") && output.code != 101,
            "`canary {}` panicked:\n{output}",
            output.args
        );
        output
    }

    /// Panic with everything the process printed unless it exited 0.
    #[track_caller]
    pub fn ok(self) -> Output {
        assert_eq!(self.code, 0, "`canary {}` failed:\n{self}", self.args);
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("`canary {}` printed no JSON ({e}):\n{self}", self.args))
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.signal {
            Some(signal) => write!(f, "killed by signal {signal}")?,
            None => write!(f, "exit {}", self.code)?,
        }
        write!(
            f,
            "\n--- stdout\n{}--- stderr\n{}",
            self.stdout, self.stderr
        )
    }
}

pub struct Sandbox {
    pub tmp: tempfile::TempDir,
    pub repo: PathBuf,
    /// The bare repository that stands for the remote Argo CD deploys from.
    pub remote: PathBuf,
    pub journal: PathBuf,
    pub home: PathBuf,
}

impl Sandbox {
    /// A fresh repository holding the seed example, committed on `main`; no journal yet.
    pub fn new() -> Sandbox {
        Sandbox::with_fixture("seed-example")
    }

    /// A fresh repository holding `tests/fixtures/NAME`, committed on `main` and pushed to
    /// the bare `origin`, which `main` tracks.
    pub fn with_fixture(name: &str) -> Sandbox {
        let tmp = tempfile::Builder::new()
            .prefix("canary-test-")
            .tempdir()
            .expect("temporary directory");
        let repo = tmp.path().join("repo");
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        // Copied file by file rather than with permissions: the fixtures are read-only.
        copy_tree(&fixtures().join(name), &repo);
        let sandbox = Sandbox {
            journal: tmp.path().join("journal.db"),
            remote: tmp.path().join("remote.git"),
            repo,
            home,
            tmp,
        };
        sandbox.git(&["init", "-q", "-b", "main"]);
        sandbox.git(&["add", "-A"]);
        sandbox.git(&[
            "commit",
            "-q",
            "--no-verify",
            "-m",
            "The seed's example service",
        ]);
        let remote = sandbox.remote.to_str().unwrap().to_string();
        sandbox.git(&["init", "-q", "--bare", "-b", "main", &remote]);
        sandbox.git(&["remote", "add", "origin", &remote]);
        sandbox.git(&["push", "-q", "--set-upstream", "origin", "main"]);
        sandbox
    }

    /// A colleague's clone of the remote (made on first use, pulled after) commits
    /// `edit(current content)` to `rel` and pushes it; the sandbox's own repository does not
    /// see it until it pulls.
    pub fn colleague_pushes(&self, rel: &str, edit: impl FnOnce(&str) -> String, message: &str) {
        let clone = self.tmp.path().join("colleague");
        let dir = clone.to_str().unwrap();
        if clone.exists() {
            self.git_in(&["-C", dir], &["pull", "-q", "--ff-only"]);
        } else {
            self.git_in(&[], &["clone", "-q", self.remote.to_str().unwrap(), dir]);
        }
        let path = clone.join(rel);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, edit(&current)).unwrap();
        for args in [
            &["add", "-A"][..],
            &["commit", "-q", "-m", message],
            &["push", "-q", "origin", "HEAD:main"],
        ] {
            self.git_in(&["-C", dir], args);
        }
    }

    /// `canary --journal JOURNAL ARGS` on a pseudo-terminal of its own, as a person runs it.
    pub fn on_terminal(&self, args: &[&str]) -> expectrl::session::OsSession {
        let mut cmd = self.canary_command(args);
        cmd.env("TERM", "dumb");
        let mut session = expectrl::session::OsSession::spawn(cmd).expect("a pseudo-terminal");
        session.set_expect_timeout(Some(std::time::Duration::from_secs(20)));
        wide(&mut session);
        session
    }

    /// Run git in the bare remote; panics if it fails. Returns its stdout.
    pub fn remote_git(&self, args: &[&str]) -> String {
        self.git_in(&["--git-dir", self.remote.to_str().unwrap()], args)
    }

    /// The environment every spawned process gets: no colour, a fixed operator, a git identity
    /// (a fresh CI machine has none) and HOME inside the sandbox.
    fn env(&self, cmd: &mut Command) {
        for var in [
            "CANARY_FAILPOINT",
            "CANARY_JOURNAL",
            "CANARY_OPERATOR",
            // Never the developer's clusters: a test that wants one writes its own kubeconfig.
            "KUBECONFIG",
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            // The marks canary draws follow the terminal and the locale: one of each, always.
            "TERM",
            "LC_ALL",
            "LC_CTYPE",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("NO_COLOR", "1")
            .env("LANG", "C.UTF-8")
            .env("CANARY_OPERATOR", "test")
            .env("GIT_AUTHOR_NAME", "Canary Test")
            .env("GIT_AUTHOR_EMAIL", "canary-test@example.com")
            .env("GIT_COMMITTER_NAME", "Canary Test")
            .env("GIT_COMMITTER_EMAIL", "canary-test@example.com")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &self.home)
            .env("XDG_DATA_HOME", self.home.join(".local/share"))
            .env("XDG_CONFIG_HOME", self.home.join(".config"));
    }

    /// A command for any program, with the sandbox's environment (see [`Sandbox::env`]); the
    /// caller sets its arguments and working directory.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        self.env(&mut cmd);
        cmd
    }

    /// Run git in the repository; panics if it fails. Returns its stdout.
    pub fn git(&self, args: &[&str]) -> String {
        self.git_in(&["-C", self.repo.to_str().unwrap()], args)
    }

    /// Run git with `place` (`-C DIR`, `--git-dir DIR`) before `args`; panics if it fails.
    /// Returns its stdout.
    fn git_in(&self, place: &[&str], args: &[&str]) -> String {
        let out = self
            .command("git")
            .args(place)
            .args(args)
            .output()
            .expect("running git");
        assert!(
            out.status.success(),
            "git {place:?} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("git prints UTF-8")
    }

    /// The canary command `rest` as canary names it in a hint to this sandbox (`run:`, `next`,
    /// a message): with the sandbox's journal, which is not the default one.
    pub fn hint(&self, rest: &str) -> String {
        format!("canary --journal {} {rest}", self.journal.display())
    }

    /// Run canary with `--journal` set to the sandbox's journal, stdin closed.
    pub fn canary(&self, args: &[&str]) -> Output {
        let mut full = vec!["--journal", self.journal.to_str().unwrap()];
        full.extend_from_slice(args);
        self.canary_raw(&full)
    }

    /// Run canary with exactly these arguments (no `--journal` added), stdin closed.
    pub fn canary_raw(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_canary"));
        cmd.args(args)
            .current_dir(self.tmp.path())
            .stdin(Stdio::null());
        Output::new(args, cmd.output().expect("running canary"))
    }

    /// `canary --journal JOURNAL ARGS` with the sandbox's environment and working directory,
    /// not yet run, for a test that runs it itself (several at once, under a failpoint, on a
    /// terminal); its stdin is left as [`Command`] has it. [`Output::new`] reads what it did.
    pub fn canary_command(&self, args: &[&str]) -> Command {
        let mut cmd = self.command(env!("CARGO_BIN_EXE_canary"));
        cmd.arg("--journal")
            .arg(&self.journal)
            .args(args)
            .current_dir(self.tmp.path());
        cmd
    }

    /// The arguments of the usual `canary start`, with the repository of this sandbox; canary
    /// pushes its commits to the sandbox's remote (`--push`).
    pub fn start_args(&self) -> Vec<String> {
        [
            "start",
            SERVICE,
            "--repo",
            self.repo.to_str().unwrap(),
            "--v1-image",
            V1_IMAGE,
            "--namespace",
            NAMESPACE,
            "--host",
            STAGING_HOST,
            "--host",
            PRODUCTION_HOST,
            "--push",
            "--yes",
        ]
        .map(String::from)
        .to_vec()
    }

    /// The usual `canary start`, in coexistence with `switch` instead of a pinned v1 image.
    pub fn coexistence_args(&self, switch: &str) -> Vec<String> {
        let mut args = self.start_args();
        let at = args.iter().position(|a| a == "--v1-image").unwrap();
        args.splice(
            at..at + 2,
            ["--method", "coexistence", "--switch", switch].map(String::from),
        );
        args
    }

    /// `canary start` in coexistence with the demo's switch; must succeed.
    pub fn start_coexistence(&self) -> Output {
        let args = self.coexistence_args(COEXISTENCE_SWITCH);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.canary(&args).ok()
    }

    /// `canary start` with the usual arguments; must succeed.
    pub fn start(&self) -> Output {
        let args = self.start_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.canary(&args).ok()
    }

    /// `canary next my-service --yes`: one step, its files committed; must succeed.
    pub fn next(&self) -> Output {
        self.canary(&["next", SERVICE, "--yes"]).ok()
    }

    /// `canary status my-service --json`.
    pub fn status(&self) -> Value {
        self.canary(&["status", SERVICE, "--json"]).ok().json()
    }

    pub fn phase(&self) -> String {
        self.status()["phase"]
            .as_str()
            .expect("status has a phase")
            .to_string()
    }

    /// `canary log my-service --json`: the release's events, oldest first.
    /// The `detail` of every event of the release of this `kind`, oldest first.
    pub fn details(&self, kind: &str) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|e| e["kind"] == kind)
            .map(|e| e["detail"].clone())
            .collect()
    }

    /// The details of the journal's `step-done` events of `step` (such as "v2 tested").
    pub fn steps_done(&self, step: &str) -> Vec<Value> {
        let mut done = self.details("step-done");
        done.retain(|d| d["step"] == step);
        done
    }

    pub fn log(&self) -> Vec<Value> {
        match self.canary(&["log", SERVICE, "--json"]).ok().json() {
            Value::Array(events) => events,
            other => panic!("`canary log --json` printed no list: {other}"),
        }
    }

    /// Each environment's v2 weight as `status --json` reports it (`None`: no route yet).
    pub fn weights(&self) -> Vec<(String, Option<u64>)> {
        self.status()["environments"]
            .as_array()
            .expect("status lists environments")
            .iter()
            .map(|e| {
                (
                    e["name"].as_str().unwrap().to_string(),
                    e["v2_weight"].as_u64(),
                )
            })
            .collect()
    }

    /// Take `next --yes` steps until `status --json` shows `phase` (at once if it already does).
    /// Returns how many steps it took.
    #[track_caller]
    pub fn walk_to(&self, phase: &str) -> usize {
        for steps in 0..MAX_STEPS {
            if self.phase() == phase {
                return steps;
            }
            self.next();
        }
        panic!("the release never reached {phase} in {MAX_STEPS} steps");
    }

    /// Start a release and walk it into ramp, up to production's first weight written (its
    /// deploy comes next): every object of the release exists.
    pub fn start_into_ramp(&self) {
        self.start();
        self.walk_to("ramp");
        while self.weights().last().and_then(|(_, w)| *w) != Some(1) {
            self.next();
        }
    }

    /// `canary start --adopt` with the usual arguments, the v1 image left for canary to read
    /// off web-v1; may fail.
    pub fn adopt(&self) -> Output {
        let mut args = self.start_args();
        args.retain(|a| a != "--v1-image" && a != V1_IMAGE);
        args.push("--adopt".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.canary(&args)
    }

    /// Every file of the repository except what is under `.git`.
    pub fn files(&self) -> Files {
        read_tree(&self.repo)
    }

    /// The journal's bytes (with its write-ahead log, if SQLite left one), `None` when there
    /// is no journal file.
    pub fn journal_bytes(&self) -> Option<Vec<u8>> {
        journal_bytes(&self.journal)
    }

    /// The journal, opened read-only; panics if there is none.
    pub fn journal_db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            &self.journal,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap_or_else(|e| panic!("opening the journal {}: {e}", self.journal.display()))
    }

    /// SQLite's own checks of the journal: what `PRAGMA integrity_check` says (`ok` when the
    /// file is intact) and how many rows `foreign_key_check` finds broken.
    pub fn journal_integrity(&self) -> (String, i64) {
        let db = self.journal_db();
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        let broken: i64 = db
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
                row.get(0)
            })
            .unwrap();
        (check, broken)
    }

    /// Assert that [`Sandbox::journal_integrity`] finds nothing wrong.
    #[track_caller]
    pub fn assert_journal_intact(&self) {
        let (check, broken) = self.journal_integrity();
        assert_eq!(check, "ok", "journal integrity_check");
        assert_eq!(broken, 0, "journal foreign_key_check");
    }

    /// Assert that no `.canary-*.tmp` file (what canary writes before it renames) is left in
    /// the repository.
    #[track_caller]
    pub fn assert_no_temporary_files(&self, context: &str) {
        let strays = temporary_files(&self.files());
        assert!(
            strays.is_empty(),
            "{context}: temporary files left: {strays:?}"
        );
    }

    /// Both snapshots at once: what a command that changes nothing must leave as it found.
    pub fn snapshot(&self) -> Snapshot {
        (self.files(), self.journal_bytes())
    }

    /// Write a file of the repository (repo-relative path), creating its directory.
    pub fn write(&self, rel: &str, content: &str) {
        let path = self.repo.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// `canary start` of a second service in this sandbox's journal, with the usual values; its
    /// repository is `TMP/NAME`, the seed example for service `name`, committed and pushed to
    /// its own bare remote `TMP/NAME.git`.
    pub fn start_another(&self, name: &str) -> Output {
        let repo = self.tmp.path().join(name);
        copy_tree(&fixtures().join("seed-example"), &repo);
        let gap = repo.join("gap/gap.yaml");
        let text = std::fs::read_to_string(&gap).unwrap();
        std::fs::write(
            &gap,
            text.replace("name: my-service", &format!("name: {name}")),
        )
        .unwrap();
        let remote = self.tmp.path().join(format!("{name}.git"));
        let remote = remote.to_str().unwrap();
        for args in [
            &["init", "-q", "-b", "main"][..],
            &["add", "-A"],
            &["commit", "-q", "--no-verify", "-m", "Another service"],
            &["init", "-q", "--bare", "-b", "main", remote],
            &["remote", "add", "origin", remote],
            &["push", "-q", "--set-upstream", "origin", "main"],
        ] {
            self.git_in(&["-C", repo.to_str().unwrap()], args);
        }
        let mut args = self.start_args();
        args[1] = name.to_string();
        args[3] = repo.to_str().unwrap().to_string();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.canary(&args).ok()
    }

    /// Subjects of the commits on HEAD, newest first.
    pub fn commit_subjects(&self) -> Vec<String> {
        self.git(&["log", "--format=%s"])
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Default for Sandbox {
    fn default() -> Sandbox {
        Sandbox::new()
    }
}

/// The bytes of a journal file and, if present, its `-wal` file.
pub fn journal_bytes(path: &Path) -> Option<Vec<u8>> {
    let mut bytes = std::fs::read(path).ok()?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    // An empty write-ahead log (left by a reader) holds nothing; a non-empty one is journal.
    let log = std::fs::read(PathBuf::from(wal)).unwrap_or_default();
    if !log.is_empty() {
        bytes.extend_from_slice(b"\n--- wal ---\n");
        bytes.extend_from_slice(&log);
    }
    Some(bytes)
}

/// The paths of canary's temporary files (`.canary-*.tmp`, in any directory) among `files`.
pub fn temporary_files(files: &Files) -> Vec<String> {
    files
        .keys()
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap();
            name.starts_with(".canary-") && name.ends_with(".tmp")
        })
        .cloned()
        .collect()
}

/// Paths whose content (or existence) differs between two trees, sorted.
pub fn changed_paths(a: &Files, b: &Files) -> Vec<String> {
    let mut paths: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|p| a.get(*p) != b.get(*p))
        .cloned()
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

/// Copy a directory tree, creating fresh (writable) files and directories.
pub fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in read_tree(from) {
        let path = to.join(&rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// Every file and link under `root` (skipping `.git`), by `/`-separated relative path.
pub fn read_tree(root: &Path) -> Files {
    fn walk(root: &Path, dir: &Path, files: &mut Files) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.unwrap())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                if entry.file_name() != ".git" {
                    walk(root, &path, files);
                }
            } else {
                let rel = path.strip_prefix(root).unwrap();
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                // A link is recorded as where it points, so that a test sees it change.
                let content = if kind.is_symlink() {
                    let target = std::fs::read_link(&path).unwrap();
                    format!("-> {}", target.display()).into_bytes()
                } else {
                    std::fs::read(&path).unwrap()
                };
                files.insert(rel, content);
            }
        }
    }
    let mut files = Files::new();
    if root.is_dir() {
        walk(root, root, &mut files);
    }
    files
}

/// A readable account of how two trees differ, for assertion messages.
pub fn describe_difference(expected: &Files, actual: &Files) -> String {
    let mut out = String::new();
    for (path, bytes) in expected {
        match actual.get(path) {
            None => out.push_str(&format!("missing: {path}\n")),
            Some(got) if got != bytes => out.push_str(&format!(
                "differs: {path}\n--- expected\n{}--- actual\n{}",
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(got)
            )),
            Some(_) => {}
        }
    }
    for path in actual.keys().filter(|p| !expected.contains_key(*p)) {
        out.push_str(&format!("unexpected: {path}\n"));
    }
    out
}

/// Assert that the repository equals the golden tree `tests/fixtures/expected/NAME`. With
/// `CANARY_BLESS=1` in the environment, (re)write the golden tree from the repository instead;
/// blessed files must be reviewed before they are committed.
#[track_caller]
pub fn assert_golden(name: &str, actual: &Files) {
    assert_golden_in("expected", name, actual);
}

/// [`assert_golden`] against the golden set `set` (`expected`: succession;
/// `expected-coexistence`: the coexistence walk with the demo's switch).
pub fn assert_golden_in(set: &str, name: &str, actual: &Files) {
    let dir = fixtures().join(set).join(name);
    if std::env::var_os("CANARY_BLESS").is_some_and(|v| v == "1") {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        for (rel, bytes) in actual {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        return;
    }
    let expected = read_tree(&dir);
    assert!(
        !expected.is_empty(),
        "no golden files in {}; run with CANARY_BLESS=1 to write them, then review them",
        dir.display()
    );
    assert!(
        expected == *actual,
        "the repository does not match tests/fixtures/{set}/{name}:\n{}",
        describe_difference(&expected, actual)
    );
}

/// The repository files and the journal bytes, as [`Sandbox::snapshot`] takes them.
pub type Snapshot = (Files, Option<Vec<u8>>);

/// Assert that nothing changed between two snapshots, saying what did (without dumping bytes).
#[track_caller]
pub fn assert_unchanged(before: &Snapshot, after: &Snapshot, what: &str) {
    assert!(
        before.0 == after.0,
        "{what}: the repository changed:\n{}",
        describe_difference(&before.0, &after.0)
    );
    let journal = |j: &Option<Vec<u8>>| match j {
        None => "absent".to_string(),
        Some(bytes) => format!("{} bytes", bytes.len()),
    };
    assert!(
        before.1 == after.1,
        "{what}: the journal changed (before: {}, after: {})",
        journal(&before.1),
        journal(&after.1)
    );
}

/// The findings a `canary check --json` printed, as `(code, file, line)` (line 0: none).
pub fn findings(out: &Output) -> Vec<(String, String, u64)> {
    out.json()
        .as_array()
        .expect("check --json prints a list")
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["file"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// A pseudo-terminal wide enough for every question on one line: canary breaks a question
/// wider than the terminal into lines, and a test that expects a question's words is not about
/// where they break (terminal.rs shows that at 80 columns).
pub fn wide(session: &mut expectrl::session::OsSession) {
    session
        .get_process_mut()
        .set_window_size(250, 50)
        .expect("setting the terminal's size");
}

/// The exit code of a process run on a pseudo-terminal, once it has printed everything.
pub fn exit_code(session: &mut expectrl::session::OsSession) -> i32 {
    use expectrl::Expect;
    session.expect(expectrl::Eof).expect("the process ends");
    match session
        .get_process_mut()
        .wait()
        .expect("waiting for the process")
    {
        expectrl::process::unix::WaitStatus::Exited(_, code) => code,
        other => panic!("the process did not exit: {other:?}"),
    }
}

/// The golden tree `tests/fixtures/expected/NAME`.
pub fn golden(name: &str) -> Files {
    golden_in("expected", name)
}

pub fn golden_in(set: &str, name: &str) -> Files {
    read_tree(&fixtures().join(set).join(name))
}
