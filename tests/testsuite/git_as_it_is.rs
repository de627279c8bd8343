//! Issue 17: git and the filesystem as they really are. A git step that fails is a failure
//! and the step waits, written and not committed, for a commit before its deploy; someone
//! else's git operation in progress is refused before anything is written; the team's hooks
//! run on canary's commits; a symbolic link among the files canary reads is refused at start.

use crate::common;

use std::path::Path;

use crate::common::{SERVICE, Sandbox, assert_unchanged, exit_code};
use expectrl::Expect;

const EDITED: &str = "deploy-v1: add the pinned web-v1 deployment and the version labels";
const FIRST_DEPLOY: &str = "deploy-v1: deploy to staging";

fn step(sandbox: &Sandbox) -> String {
    sandbox.status()["step"].as_str().unwrap().to_string()
}

fn head(sandbox: &Sandbox) -> String {
    sandbox.git(&["rev-parse", "HEAD"])
}

fn kinds(sandbox: &Sandbox) -> Vec<String> {
    sandbox
        .log()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

/// A git command in the repository that may fail (a conflict is the point); its success.
fn try_git(sandbox: &Sandbox, args: &[&str]) -> bool {
    let mut cmd = sandbox.command("git");
    cmd.arg("-C").arg(&sandbox.repo).args(args);
    cmd.output().expect("running git").status.success()
}

/// Commit `content` to `notes.txt` on the current branch.
fn commit_note(sandbox: &Sandbox, content: &str, message: &str) {
    sandbox.write("notes.txt", content);
    sandbox.git(&["add", "notes.txt"]);
    sandbox.git(&["commit", "-q", "--no-verify", "-m", message]);
}

fn hook(sandbox: &Sandbox, name: &str, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = sandbox.repo.join(".git/hooks").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Start, give the repository the hook `name`, and take the first step: its commit fails
/// (exit 1), saying each of `says`. Returns HEAD as it was before.
#[track_caller]
fn first_commit_fails(sandbox: &Sandbox, name: &str, script: &str, says: &[&str]) -> String {
    sandbox.start();
    let before = head(sandbox);
    hook(sandbox, name, script);
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 1, "{out}");
    for said in says {
        assert!(out.stderr.contains(said), "{out}");
    }
    before
}

/// The step's files are on disk and in the journal, not in a commit, and its deploy waits:
/// `next` fails as the commit did, and confirms nothing.
#[track_caller]
fn written_not_committed(sandbox: &Sandbox, before: &str, code: i32, says: &str) {
    assert_eq!(head(sandbox), before, "nothing was committed");
    assert_eq!(sandbox.git(&["status", "--porcelain"]), " M gap/gap.yaml\n");
    assert_eq!(step(sandbox), FIRST_DEPLOY, "the edit is recorded as done");
    assert!(!kinds(sandbox).contains(&"committed".to_string()));
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, code, "{out}");
    assert!(out.stderr.contains(says), "{out}");
    assert_eq!(head(sandbox), before, "nothing was committed");
    assert_eq!(step(sandbox), FIRST_DEPLOY, "no deploy was confirmed");
    assert!(!kinds(sandbox).contains(&"deploy-confirmed".to_string()));
}

/// Once the commit can be made, `next` makes it, pushes it, and only then confirms the deploy.
#[track_caller]
fn committed_then_deployed(sandbox: &Sandbox) {
    let out = sandbox.next();
    assert!(out.stdout.contains("Committed"), "{out}");
    assert!(out.stdout.contains("Pushed"), "{out}");
    assert_eq!(
        sandbox.git(&["log", "-1", "--format=%s"]).trim(),
        format!("canary(my-service): {EDITED}")
    );
    assert_eq!(sandbox.git(&["status", "--porcelain"]), "");
    assert_eq!(step(sandbox), "deploy-v1: deploy to production");
}

// Case 1: a git step that fails is a failure.

#[test]
fn an_index_lock_taken_at_the_commit_question_fails_the_commit_and_holds_the_deploy() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let before = head(&sandbox);
    let mut term = sandbox.on_terminal(&["next", SERVICE]);
    term.expect("Write add the pinned web-v1 deployment")
        .unwrap();
    term.send_line("y").unwrap();
    term.expect("Commit these files?").unwrap();
    // Another git process (an editor's, a `git gc`) takes the index meanwhile.
    let lock = sandbox.repo.join(".git/index.lock");
    std::fs::write(&lock, "").unwrap();
    term.send_line("y").unwrap();
    term.expect("index.lock exists").unwrap();
    assert_eq!(exit_code(&mut term), 75);
    written_not_committed(&sandbox, &before, 75, "index.lock exists");

    std::fs::remove_file(&lock).unwrap();
    committed_then_deployed(&sandbox);
}

#[test]
fn commit_gpgsign_without_a_working_key_fails_the_commit_and_holds_the_deploy() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let before = head(&sandbox);
    sandbox.git(&["config", "commit.gpgSign", "true"]);
    sandbox.git(&["config", "gpg.program", "/nonexistent/gpg"]);
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("gpg failed to sign"), "{out}");
    assert!(
        out.stderr
            .contains("the files are written but not committed"),
        "{out}"
    );
    written_not_committed(&sandbox, &before, 1, "gpg failed to sign");

    sandbox.git(&["config", "--unset", "commit.gpgSign"]);
    committed_then_deployed(&sandbox);
}

#[test]
fn a_rejecting_pre_commit_hook_fails_the_commit_and_holds_the_deploy() {
    let sandbox = Sandbox::new();
    let before = first_commit_fails(
        &sandbox,
        "pre-commit",
        "echo 'secret scan: a token in gap/gap.yaml' >&2; exit 1",
        &[
            "pre-commit hook rejected the commit",
            "secret scan: a token in gap/gap.yaml",
        ],
    );
    written_not_committed(&sandbox, &before, 1, "pre-commit hook rejected the commit");

    std::fs::remove_file(sandbox.repo.join(".git/hooks/pre-commit")).unwrap();
    committed_then_deployed(&sandbox);
}

// Case 2: someone else's git operation in progress is refused before anything is written.

/// Leave the repository inside a conflicted `operation`, on the notes of two branches.
fn conflict(sandbox: &Sandbox, operation: &str) {
    commit_note(sandbox, "base\n", "Notes");
    sandbox.git(&["branch", "other"]);
    commit_note(sandbox, "ours\n", "Our notes");
    commit_note(sandbox, "ours, again\n", "Our notes again");
    sandbox.git(&["switch", "-q", "other"]);
    commit_note(sandbox, "theirs\n", "Their notes");
    sandbox.git(&["switch", "-q", "main"]);
    let args: &[&str] = match operation {
        "merge" => &["merge", "other"],
        "rebase" => &["rebase", "other"],
        "cherry-pick" => &["cherry-pick", "other"],
        "revert" => &["revert", "--no-edit", "HEAD~1"],
        "bisect" => &["bisect", "start"],
        other => panic!("no such operation: {other}"),
    };
    // A bisect starts cleanly; the others stop on the conflict.
    assert_eq!(try_git(sandbox, args), operation == "bisect", "{operation}");
}

#[test]
fn next_inside_a_merge_rebase_cherry_pick_revert_or_bisect_is_refused_before_writing() {
    for (operation, finish) in [
        ("merge", "git merge --continue, or git merge --abort"),
        ("rebase", "git rebase --continue, or git rebase --abort"),
        (
            "cherry-pick",
            "git cherry-pick --continue, or git cherry-pick --abort",
        ),
        ("revert", "git revert --continue, or git revert --abort"),
        ("bisect", "git bisect reset"),
    ] {
        let sandbox = Sandbox::new();
        sandbox.start();
        conflict(&sandbox, operation);
        let before = sandbox.snapshot();
        let out = sandbox.canary(&["next", SERVICE, "--yes"]);
        assert_eq!(out.code, 3, "{operation}: {out}");
        assert!(
            out.stderr
                .contains(&format!("a {operation} is in progress in")),
            "{operation}: {out}"
        );
        assert!(
            out.stderr.contains(&format!("run:   {finish}")),
            "{operation}: {out}"
        );
        assert_unchanged(&before, &sandbox.snapshot(), operation);
        assert_eq!(step(&sandbox), EDITED, "{operation}");
    }
}

#[test]
fn the_release_goes_on_once_the_rebase_is_aborted() {
    let sandbox = Sandbox::new();
    sandbox.start();
    conflict(&sandbox, "rebase");
    assert_eq!(sandbox.canary(&["next", SERVICE, "--yes"]).code, 3);
    sandbox.git(&["rebase", "--abort"]);
    // Our notes are on main and not on origin: canary pushes only its own commits.
    sandbox.git(&["push", "-q"]);
    sandbox.next();
    assert_eq!(step(&sandbox), FIRST_DEPLOY);
    assert_eq!(
        sandbox.git(&["log", "-1", "--format=%s"]).trim(),
        format!("canary(my-service): {EDITED}")
    );
}

#[test]
fn start_inside_a_merge_or_with_the_index_locked_is_refused() {
    let sandbox = Sandbox::new();
    conflict(&sandbox, "merge");
    let args = sandbox.start_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let before = sandbox.snapshot();
    let out = sandbox.canary(&args);
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stderr.contains("a merge is in progress"), "{out}");
    assert!(out.stderr.contains("git merge --abort"), "{out}");
    assert_unchanged(&before, &sandbox.snapshot(), "start inside a merge");

    sandbox.git(&["merge", "--abort"]);
    std::fs::write(sandbox.repo.join(".git/index.lock"), "").unwrap();
    let before = sandbox.snapshot();
    let out = sandbox.canary(&args);
    assert_eq!(out.code, 75, "{out}");
    assert!(
        out.stderr
            .contains("another git process is using the index"),
        "{out}"
    );
    assert_unchanged(&before, &sandbox.snapshot(), "start with the index locked");
}

// Case 3: the team's hooks run on canary's commits.

#[test]
fn pre_commit_runs_on_canary_s_files_and_the_message_hooks_may_add_to_the_message() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let seen = sandbox.tmp.path().join("pre-commit-saw");
    hook(
        &sandbox,
        "pre-commit",
        &format!("git diff --cached --name-only > '{}'", seen.display()),
    );
    hook(
        &sandbox,
        "prepare-commit-msg",
        "[ \"$2\" = message ] && sed -i '1s/^/[OPS-7] /' \"$1\"",
    );
    hook(
        &sandbox,
        "commit-msg",
        "printf '\\nSigned-off-by: Canary Test <canary-test@example.com>\\n' >> \"$1\"",
    );
    sandbox.next();
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        "gap/gap.yaml\n",
        "pre-commit saw the index canary commits, holding its file"
    );
    let message = sandbox.git(&["log", "-1", "--format=%B"]);
    assert!(
        message.starts_with(&format!(
            "[OPS-7] canary(my-service): {EDITED}\n\nCanary-Service: my-service\n\
             Canary-Release: "
        )),
        "{message}"
    );
    assert!(
        message.ends_with("\nSigned-off-by: Canary Test <canary-test@example.com>\n\n"),
        "{message}"
    );
}

#[test]
fn a_pre_commit_hook_that_adds_to_the_commit_fails_it() {
    let sandbox = Sandbox::new();
    let before = first_commit_fails(
        &sandbox,
        "pre-commit",
        "echo generated > generated.txt && git add generated.txt",
        &["pre-commit hook changed what the commit would hold"],
    );
    assert_eq!(head(&sandbox), before, "nothing was committed");
    assert_eq!(
        sandbox.git(&["status", "--porcelain"]),
        " M gap/gap.yaml\n?? generated.txt\n",
        "the person's index is untouched"
    );
}

#[test]
fn a_rejecting_commit_msg_hook_fails_the_commit() {
    let sandbox = Sandbox::new();
    let before = first_commit_fails(
        &sandbox,
        "commit-msg",
        "grep -q 'TICKET-[0-9]' \"$1\" || { echo 'no ticket id in the message'; exit 1; }",
        &[
            "commit-msg hook rejected the commit, and nothing was committed: no ticket id",
            "commit them yourself",
        ],
    );
    written_not_committed(&sandbox, &before, 1, "commit-msg hook rejected the commit");

    // The operator commits by hand, as the team's rules want; the deploy goes on from there.
    sandbox.git(&[
        "commit",
        "-q",
        "-m",
        "TICKET-1 canary's first edit",
        "gap/gap.yaml",
    ]);
    sandbox.git(&["push", "-q"]);
    sandbox.next();
    assert_eq!(step(&sandbox), "deploy-v1: deploy to production");
}

// Case 4: a symbolic link among the files canary reads is refused at start.

const WEB_PATCH: &str = "gap/production/gap_patch_web_replicas.yaml";
const PATCH: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: my-service-web\n\
                     spec:\n  replicas: 3\n";

fn link(sandbox: &Sandbox, target: &str, at: &str) {
    std::os::unix::fs::symlink(Path::new(target), sandbox.repo.join(at)).unwrap();
}

#[test]
fn a_patch_that_is_a_symbolic_link_is_refused_at_start() {
    let sandbox = Sandbox::new();
    sandbox.write("gap/patches/replicas.yaml", PATCH);
    link(&sandbox, "../patches/replicas.yaml", WEB_PATCH);
    sandbox.git(&["add", "-A"]);
    sandbox.git(&["commit", "-qm", "A linked patch"]);
    sandbox.git(&["push", "-q"]);
    let args = sandbox.start_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let before = sandbox.snapshot();
    let out = sandbox.canary(&args);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains(&format!("{WEB_PATCH} is a symbolic link")),
        "{out}"
    );
    assert_unchanged(&before, &sandbox.snapshot(), "start with a linked patch");
}

#[test]
fn a_twin_replaced_by_a_symbolic_link_is_refused_not_left_behind() {
    let sandbox = Sandbox::new();
    sandbox.write(WEB_PATCH, PATCH);
    sandbox.git(&["add", "-A"]);
    sandbox.git(&["commit", "-qm", "A patch of web"]);
    sandbox.git(&["push", "-q"]);
    sandbox.start();
    sandbox.walk_to("cleanup-1");
    let twin = "gap/production/gap_patch_web_replicas_canary_v1.yaml";
    std::fs::rename(
        sandbox.repo.join(twin),
        sandbox.tmp.path().join("twin.yaml"),
    )
    .unwrap();
    link(
        &sandbox,
        sandbox.tmp.path().join("twin.yaml").to_str().unwrap(),
        twin,
    );
    sandbox.git(&["add", "-A"]);
    sandbox.git(&["commit", "-qm", "The twin, linked"]);
    sandbox.git(&["push", "-q"]);
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains(&format!("{twin} is a symbolic link")),
        "{out}"
    );
    assert_unchanged(&before, &sandbox.snapshot(), "cleanup-1 with a linked twin");
}

// Case 6: a write that fails says which file, what is left, and how it goes on.

/// `canary next SERVICE --yes` with `CANARY_FAILPOINT` set to `failpoint`.
fn next_with(sandbox: &Sandbox, failpoint: &str) -> common::Output {
    let args = ["next", SERVICE, "--yes"];
    let out = sandbox
        .canary_command(&args)
        .env("CANARY_FAILPOINT", failpoint)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running canary");
    common::Output::new(&args, out)
}

#[test]
fn a_file_write_on_a_full_disk_names_the_file_and_leaves_the_step_to_resume() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let files = sandbox.files();
    let out = next_with(&sandbox, "disk-full-writing-files");
    assert_eq!(out.code, 1, "{out}");
    assert!(!out.stderr.contains(".canary-"), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "error: the step is marked interrupted, and once the cause is fixed `{}` resumes \
                 it: writing gap/gap.yaml: No space left on device",
            sandbox.hint("next my-service")
        )),
        "{out}"
    );
    assert!(sandbox.files() == files, "no file was written");
    assert_eq!(sandbox.status()["interrupted"], true);

    let out = sandbox.next();
    assert!(out.stdout.contains("Resuming"), "{out}");
    assert_eq!(step(&sandbox), FIRST_DEPLOY);
}

#[test]
fn a_journal_write_on_a_full_disk_after_the_files_says_they_are_written() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let out = next_with(&sandbox, "disk-full-before-step-done");
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "error: the files are written, but the journal could not record the step as done; \
             the step is marked interrupted, and once the cause is fixed `{}` resumes it: \
             journal: database or disk is full",
            sandbox.hint("next my-service")
        )),
        "{out}"
    );
    let gap = std::fs::read_to_string(sandbox.repo.join("gap/gap.yaml")).unwrap();
    assert!(gap.contains("  web-v1:\n"), "{gap}");
    assert_eq!(sandbox.status()["interrupted"], true);

    let out = sandbox.next();
    assert!(out.stdout.contains("Resuming"), "{out}");
    assert_eq!(step(&sandbox), FIRST_DEPLOY);
    assert_eq!(
        sandbox.git(&["log", "-1", "--format=%s"]).trim(),
        format!("canary(my-service): {EDITED}")
    );
}

// Case 5, in part: the lock of a service lives in the repository, whatever the journal.

#[test]
fn two_journals_never_work_on_a_service_in_one_repository_at_once() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let with = |journal: &str, args: &[String]| {
        let journal = sandbox.tmp.path().join(journal);
        let mut full = vec!["--journal".to_string(), journal.display().to_string()];
        full.extend(args.iter().cloned());
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        sandbox.canary_raw(&full)
    };
    // A second operator starts the same service in the same repository with a journal of
    // their own, before the first goes on.
    let mut start = sandbox.start_args();
    start.retain(|a| a != "--push");
    start.push("--no-remote".into());
    with("other.db", &start).ok();

    // While the first waits at its question, the second can neither take a step nor start.
    let mut term = sandbox.on_terminal(&["next", SERVICE]);
    term.expect("Write add the pinned web-v1 deployment")
        .unwrap();
    let before = sandbox.files();
    let out = with("other.db", &["next".into(), SERVICE.into(), "--yes".into()]);
    assert_eq!(out.code, 75, "{out}");
    assert!(
        out.stderr.contains("is working on my-service right now"),
        "{out}"
    );
    let out = with("third.db", &start);
    assert_eq!(out.code, 75, "{out}");
    assert!(
        sandbox.files() == before,
        "the second operator wrote nothing"
    );

    // The first one goes on; once it is done, the lock is free again, and the repository
    // says whose release it is: a third journal is refused for that, not for the lock.
    term.send_line("y").unwrap();
    term.expect("Commit these files?").unwrap();
    term.send_line("y").unwrap();
    assert_eq!(exit_code(&mut term), 0);
    assert_eq!(step(&sandbox), FIRST_DEPLOY);
    let out = with("third.db", &start);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("that this journal does not own"),
        "{out}"
    );
}

#[test]
fn a_dumb_terminal_or_a_locale_that_is_not_utf_8_gets_ascii_marks() {
    let sandbox = Sandbox::new();
    sandbox.start_into_ramp();
    let status = |env: &[(&str, &str)]| {
        let mut cmd = sandbox.canary_command(&["status", SERVICE]);
        for (var, value) in env {
            cmd.env(var, value);
        }
        let out = common::Output::new(&["status"], cmd.output().unwrap()).ok();
        out.stdout
    };
    let unicode = status(&[]);
    assert!(unicode.contains("  ✓ deploy-v1\n"), "{unicode}");
    assert!(unicode.contains("  ▶ ramp"), "{unicode}");
    assert!(unicode.contains("  · cleanup-1\n"), "{unicode}");
    assert!(unicode.contains("v1 ████"), "{unicode}");
    for env in [
        &[("TERM", "dumb")][..],
        &[("LANG", "C")],
        &[("LANG", "en_US.UTF-8"), ("LC_ALL", "POSIX")],
        &[("LC_CTYPE", "de_DE.ISO-8859-1")],
    ] {
        let ascii = status(env);
        assert!(ascii.is_ascii(), "{env:?}:\n{ascii}");
        assert!(ascii.contains("  + deploy-v1\n"), "{env:?}:\n{ascii}");
        assert!(ascii.contains("  > ramp"), "{env:?}:\n{ascii}");
        assert!(ascii.contains("  . cleanup-1\n"), "{env:?}:\n{ascii}");
        assert!(ascii.contains("v1 #"), "{env:?}:\n{ascii}");
        assert_eq!(ascii.lines().count(), unicode.lines().count(), "{env:?}");
    }
    let utf8 = status(&[("LC_ALL", "en_GB.utf8"), ("LANG", "C")]);
    assert_eq!(utf8, unicode);
}

/// `canary ARGS` with another operator's journal, on the sandbox's repository.
fn with_journal(sandbox: &Sandbox, journal: &Path, args: &[&str]) -> common::Output {
    let mut full = vec!["--journal", journal.to_str().unwrap()];
    full.extend_from_slice(args);
    sandbox.canary_raw(&full)
}

#[test]
fn one_release_of_a_service_per_repository_whatever_the_journal() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.next(); // deploy-v1 written, committed and pushed
    let trailers = sandbox.git(&["log", "-1", "--format=%(trailers)"]);
    assert!(
        trailers.contains("Canary-Service: my-service\n"),
        "{trailers}"
    );
    assert!(trailers.contains("Canary-Release: "), "{trailers}");
    assert!(
        trailers.contains(
            "Canary-Step: deploy-v1: add the pinned web-v1 deployment and the version labels\n"
        ),
        "{trailers}"
    );

    // A second operator, with a journal of their own, on the same repository.
    let other = sandbox.tmp.path().join("other.db");
    let start = sandbox.start_args();
    let start: Vec<&str> = start.iter().map(String::as_str).collect();
    let before = sandbox.snapshot();
    let out = with_journal(&sandbox, &other, &start);
    assert_eq!(out.code, 2, "{out}");
    for words in [
        "holds a release of my-service that this journal does not own",
        "last step \"deploy-v1: add the pinned web-v1 deployment and the version labels\"",
        "committed by Canary Test",
        &format!(
            "canary --journal {} start my-service --adopt",
            other.display()
        ),
    ] {
        assert!(out.stderr.contains(words), "{words}:\n{out}");
    }
    assert_unchanged(&before, &sandbox.snapshot(), "a refused start");
    assert!(!other.exists(), "the other journal was created");

    // Taken over from the files, the release goes on in the other journal...
    let adopt: Vec<&str> = start.iter().copied().chain(["--adopt"]).collect();
    assert!(
        with_journal(&sandbox, &other, &adopt)
            .ok()
            .stdout
            .contains("Adopted")
    );
    for _ in 0..3 {
        with_journal(&sandbox, &other, &["next", SERVICE, "--yes"]).ok();
    }
    assert_eq!(
        sandbox.git(&["log", "-1", "--format=%s"]).trim(),
        "canary(my-service): add-routing: add the DestinationRule subsets and web-v1's \
         AuthorizationPolicy"
    );
    // ... and the first journal, whose release someone else moved on, is refused.
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr
            .contains("someone else's release of my-service moved it on"),
        "{out}"
    );
    assert_unchanged(&before, &sandbox.snapshot(), "a release moved on elsewhere");
    for args in [
        &["next", SERVICE, "--dry-run"][..],
        &["abort", SERVICE, "--yes"],
    ] {
        let out = sandbox.canary(args);
        assert_eq!(out.code, 3, "{out}");
        assert!(out.stderr.contains("moved it on"), "{out}");
    }
}

#[test]
fn a_finished_release_in_the_history_leaves_the_service_free_for_any_journal() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("done");
    let other = sandbox.tmp.path().join("other.db");
    let start = sandbox.start_args();
    let start: Vec<&str> = start.iter().map(String::as_str).collect();
    let out = with_journal(&sandbox, &other, &start);
    // Free for another release, which then finds the files of a finished one (no web-v1, no
    // routes) and walks from the start.
    assert_eq!(out.code, 0, "{out}");
}
