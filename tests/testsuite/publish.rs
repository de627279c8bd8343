//! Issue 12, class 2: a deploy is confirmed only for what git can deploy. Every file canary
//! wrote must be committed as it wrote it, on a branch, and on the branch's upstream (the
//! remote Argo CD deploys from) unless the release has no remote; canary pushes itself only
//! with `start --push`.

use crate::common;

use crate::common::{SERVICE, Sandbox, assert_unchanged};
use expectrl::Expect;

/// `canary start` with the usual values but these flags instead of `--push`.
fn start_with(sandbox: &Sandbox, flags: &[&str]) -> common::Output {
    let mut args: Vec<String> = sandbox
        .start_args()
        .into_iter()
        .filter(|a| a != "--push")
        .collect();
    args.extend(flags.iter().map(|f| f.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sandbox.canary(&args)
}

/// A release that pushes nothing itself (`start` without `--push`) at its first deploy, the
/// step before it written and left uncommitted (`next --no-commit`).
fn first_deploy_left_uncommitted() -> Sandbox {
    let sandbox = Sandbox::new();
    start_with(&sandbox, &[]).ok();
    sandbox
        .canary(&["next", SERVICE, "--yes", "--no-commit"])
        .ok();
    sandbox
}

fn step(sandbox: &Sandbox) -> String {
    sandbox.status()["step"].as_str().unwrap().to_string()
}

fn remote_head(sandbox: &Sandbox) -> String {
    sandbox.remote_git(&["rev-parse", "main"])
}

#[test]
fn a_step_left_uncommitted_is_committed_and_pushed_before_its_deploy_is_confirmed() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox
        .canary(&["next", SERVICE, "--yes", "--no-commit"])
        .ok();
    assert_eq!(step(&sandbox), "deploy-v1: deploy to staging");
    let pushed = remote_head(&sandbox);

    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--yes", "--no-commit"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr
            .contains("gap/gap.yaml written by canary but not committed"),
        "{out}"
    );
    assert!(
        out.stderr
            .contains(&format!("run:   {}", sandbox.hint("next my-service"))),
        "{out}"
    );
    assert_unchanged(&before, &sandbox.snapshot(), "a refused deploy");
    assert_eq!(remote_head(&sandbox), pushed);

    // The hint: `next` commits the step's files under the step's own subject, pushes them,
    // and only then confirms the deploy.
    let out = sandbox.next();
    assert!(out.stdout.contains("Committed"), "{out}");
    assert!(out.stdout.contains("Pushed"), "{out}");
    assert_eq!(
        sandbox.git(&["log", "-1", "--format=%s"]).trim(),
        "canary(my-service): deploy-v1: add the pinned web-v1 deployment and the version labels"
    );
    assert_eq!(remote_head(&sandbox), sandbox.git(&["rev-parse", "HEAD"]));
    assert_eq!(step(&sandbox), "deploy-v1: deploy to production");
}

#[test]
fn routing_rounds_are_committed_and_deployed_one_at_a_time() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("add-routing");
    // Round one written but not committed: its deploys cannot be confirmed, so round two
    // cannot be written and the two never reach Argo CD in one sync.
    sandbox
        .canary(&["next", SERVICE, "--yes", "--no-commit"])
        .ok();
    for _ in 0..2 {
        sandbox.next();
    }
    assert_eq!(
        step(&sandbox),
        "add-routing: add the VirtualService patches and the Service patch"
    );
    let subjects = sandbox.commit_subjects();
    let rounds: Vec<&String> = subjects
        .iter()
        .filter(|s| s.starts_with("canary(my-service): add-routing"))
        .collect();
    assert_eq!(
        rounds,
        [
            "canary(my-service): add-routing: add the DestinationRule subsets and web-v1's \
          AuthorizationPolicy"
        ]
    );
}

#[test]
fn where_the_operator_pushes_a_deploy_waits_for_the_push() {
    let sandbox = Sandbox::new();
    start_with(&sandbox, &[]).ok();
    sandbox.next(); // written and committed, not pushed
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr
            .contains("canary's commits are not on origin/main yet"),
        "{out}"
    );
    assert!(out.stderr.contains("run:   git push"), "{out}");
    assert_unchanged(
        &before,
        &sandbox.snapshot(),
        "a deploy refused until pushed",
    );

    sandbox.git(&["push", "-q"]);
    sandbox.next();
    assert_eq!(step(&sandbox), "deploy-v1: deploy to production");
}

#[test]
fn an_upstream_that_moved_on_is_refused_before_the_step_writes_anything() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.colleague_pushes("README.md", |_| "theirs\n".into(), "A colleague's commit");
    let theirs = remote_head(&sandbox);
    let before = sandbox.snapshot();
    let head = sandbox.git(&["rev-parse", "HEAD"]);
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr
            .contains("origin/main has 1 commit(s) that main lacks")
            && out.stderr.contains("nothing was written")
            && out.stderr.contains("run:   git pull --rebase"),
        "{out}"
    );
    assert_unchanged(&before, &sandbox.snapshot(), "a step behind its upstream");
    assert_eq!(
        sandbox.git(&["rev-parse", "HEAD"]),
        head,
        "nothing committed"
    );
    assert_eq!(
        remote_head(&sandbox),
        theirs,
        "the remote keeps its history"
    );

    sandbox.git(&["pull", "-q", "--rebase"]);
    sandbox.next();
    assert_eq!(step(&sandbox), "deploy-v1: deploy to staging");
    assert_eq!(
        sandbox
            .remote_git(&["log", "-1", "--format=%s", "main"])
            .trim(),
        "canary(my-service): deploy-v1: add the pinned web-v1 deployment and the version labels"
    );
}

#[test]
fn a_push_rejected_while_canary_asked_goes_on_after_a_rebase_and_the_journal_learns_the_new_id() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let mut term = sandbox.on_terminal(&["next", SERVICE]);
    term.set_expect_timeout(Some(std::time::Duration::from_secs(30)));
    term.expect("Write add the pinned web-v1 deployment")
        .unwrap();
    // While the question waits, a colleague pushes.
    sandbox.colleague_pushes("README.md", |_| "theirs\n".into(), "A colleague's commit");
    term.send_line("y").unwrap();
    term.expect("Commit these files?").unwrap();
    term.send_line("y").unwrap();
    // What was left, and the one command that goes on.
    for said in [
        format!(
            "canary's step (deploy-v1: add the pinned web-v1 deployment and the version labels) \
             is committed and not pushed; once main has what origin/main has (`git pull \
             --rebase`), `{}` pushes it",
            sandbox.hint("next my-service")
        ),
        "git push to origin/main was rejected".to_string(),
    ] {
        term.expect(said.as_str()).unwrap();
    }
    assert_eq!(common::exit_code(&mut term), 1);
    let made = sandbox.details("committed");
    assert_eq!(made.len(), 1, "{made:?}");
    let old = made[0]["commit"].as_str().unwrap().to_string();

    // The operator brings the colleague's commit in: canary's commit gets a new id, with the
    // same trailers and bytes, and is canary's still.
    sandbox.git(&["pull", "-q", "--rebase"]);
    let new = sandbox.git(&["rev-parse", "HEAD"]).trim().to_string();
    assert_ne!(new, old);
    let out = sandbox.canary(&["next", SERVICE, "--yes"]).ok();
    assert!(out.stdout.contains("Recognised"), "{out}");
    assert_eq!(
        remote_head(&sandbox).trim(),
        new,
        "canary pushed its rebased commit"
    );
    assert_eq!(step(&sandbox), "deploy-v1: deploy to production");
    let committed = sandbox.details("committed");
    assert_eq!(committed.len(), 2, "{committed:?}");
    assert_eq!(committed[1]["commit"], new.as_str());
    assert_eq!(committed[1]["was"], old.as_str());
    assert_eq!(committed[1]["recognised"], true);
    // The journal knows which commit holds canary's file now.
    let held: String = sandbox
        .journal_db()
        .query_row(
            "SELECT commit_id FROM written_files WHERE path = 'gap/gap.yaml'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(held, new);
}

#[test]
fn an_amended_commit_that_keeps_canary_s_bytes_is_canary_s_and_one_that_adds_a_file_is_not() {
    // The operator pushes: canary commits, and the operator amends (a sign-off) and pushes.
    let sandbox = Sandbox::new();
    start_with(&sandbox, &[]).ok();
    sandbox.canary(&["next", SERVICE, "--yes", "--commit"]).ok();
    let old = sandbox.details("committed")[0]["commit"]
        .as_str()
        .unwrap()
        .to_string();
    sandbox.git(&["commit", "-q", "--amend", "--no-edit", "-s"]);
    sandbox.git(&["push", "-q"]);
    let amended = sandbox.git(&["rev-parse", "HEAD"]).trim().to_string();
    let out = sandbox.next();
    assert!(out.stdout.contains("Recognised"), "{out}");
    assert_eq!(step(&sandbox), "deploy-v1: deploy to production");
    let committed = sandbox.details("committed");
    assert_eq!(committed.last().unwrap()["commit"], amended.as_str());
    assert_eq!(committed.last().unwrap()["was"], old.as_str());

    // With --push, someone else's unpushed commit refuses the step before it writes.
    let sandbox = Sandbox::new();
    sandbox.start();
    let pushed = remote_head(&sandbox);
    std::fs::write(sandbox.repo.join("NOTES"), "mine\n").unwrap();
    sandbox.git(&["add", "NOTES"]);
    sandbox.git(&["commit", "-q", "-m", "notes"]);
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr.contains("commits that canary did not make")
            && out.stderr.contains("nothing was written"),
        "{out}"
    );
    assert_unchanged(
        &before,
        &sandbox.snapshot(),
        "a foreign commit before the step",
    );
    assert_eq!(remote_head(&sandbox), pushed);

    // A commit with canary's trailers that also holds a file canary did not write is not
    // canary's. (Killed between its commit and the journal's record of it, canary leaves its
    // commit unpushed; a person amends a file into it.)
    sandbox.git(&["push", "-q"]);
    let killed = sandbox
        .canary_command(&["next", SERVICE, "--yes"])
        .env("CANARY_FAILPOINT", "after-commit")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    std::fs::write(sandbox.repo.join("NOTES"), "mine, amended in\n").unwrap();
    sandbox.git(&["commit", "-q", "--amend", "--no-edit", "-a"]);
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr.contains("commits that canary did not make"),
        "{out}"
    );
    assert!(sandbox.details("committed").is_empty());
}

#[test]
fn a_branch_without_an_upstream_is_refused_at_start_unless_there_is_no_remote() {
    let sandbox = Sandbox::new();
    sandbox.git(&["branch", "--unset-upstream"]);
    let before = sandbox.snapshot();
    let out = start_with(&sandbox, &[]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("branch main of"), "{out}");
    assert!(out.stderr.contains("has no upstream"), "{out}");
    assert!(out.stderr.contains("--no-remote"), "{out}");
    assert_unchanged(&before, &sandbox.snapshot(), "a refused start");
    let out = start_with(&sandbox, &["--push"]);
    assert_eq!(out.code, 2, "{out}");

    start_with(&sandbox, &["--no-remote"]).ok();
    let pushed = remote_head(&sandbox);
    sandbox.next();
    sandbox.next(); // the deploy: committed is enough
    assert_eq!(step(&sandbox), "deploy-v1: deploy to production");
    assert_eq!(remote_head(&sandbox), pushed, "nothing was pushed");
}

#[test]
fn a_detached_head_is_refused_at_start_and_before_any_write() {
    let sandbox = Sandbox::new();
    sandbox.git(&["checkout", "-q", "--detach"]);
    let before = sandbox.snapshot();
    let out = start_with(&sandbox, &["--push"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("HEAD is detached"), "{out}");
    assert_unchanged(&before, &sandbox.snapshot(), "a refused start");

    sandbox.git(&["checkout", "-q", "main"]);
    sandbox.start();
    sandbox.git(&["checkout", "-q", "--detach"]);
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("HEAD is detached"), "{out}");
    assert_unchanged(
        &before,
        &sandbox.snapshot(),
        "a write refused on a detached HEAD",
    );
}

#[test]
fn a_colleague_s_later_change_to_a_file_canary_committed_does_not_block_the_deploy() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.next();
    sandbox.colleague_pushes(
        "gap/gap.yaml",
        |text| format!("{text}# theirs, on top of canary's commit\n"),
        "A colleague's change",
    );
    sandbox.git(&["pull", "-q", "--ff-only"]);
    sandbox.next();
    assert_eq!(step(&sandbox), "deploy-v1: deploy to production");
}

#[test]
fn next_dry_run_says_what_next_would_commit_push_or_refuse_before_a_deploy() {
    let sandbox = first_deploy_left_uncommitted();
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--dry-run"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stdout.contains("first commit gap/gap.yaml"), "{out}");
    assert!(out.stderr.contains("run:   git push"), "{out}");
    assert_unchanged(&before, &sandbox.snapshot(), "a dry run");
}

#[test]
fn next_dry_run_refuses_broken_files_before_it_says_what_next_would_commit() {
    // `next` runs the files' analysis before it commits what a step left uncommitted: a broken
    // repository is refused first, and its dry run says so too, not "would first commit".
    let sandbox = first_deploy_left_uncommitted();
    sandbox.write(
        "gap/staging/gap_patch_canary_virtual_service.yaml",
        "apiVersion: networking.istio.io/v1beta1\nkind: VirtualService\nmetadata:\n  name: x\n\
         spec:\n  hosts: [a]\n  http:\n    - route:\n        - destination:\n            \
         host: my-service-web.relational-data.svc.cluster.local\n            subset: v3\n",
    );
    let before = sandbox.snapshot();
    let dry = sandbox.canary(&["next", SERVICE, "--dry-run"]);
    let next = sandbox.canary(&["next", SERVICE, "--yes"]);
    for out in [&dry, &next] {
        assert_eq!(out.code, 3, "{out}");
        assert!(out.stderr.contains("CANARY-E010"), "{out}");
    }
    assert!(!dry.stdout.contains("first commit"), "{dry}");
    assert_unchanged(
        &before,
        &sandbox.snapshot(),
        "a dry run, then next, on broken files",
    );
}

#[test]
fn the_demo_pushes_to_a_bare_remote_as_a_real_release_would() {
    let sandbox = Sandbox::new();
    let out = sandbox.canary_raw(&["demo", "--yes"]).ok();
    let repo = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("The repository is in "))
        .and_then(|l| l.strip_suffix("; its history:"))
        .unwrap_or_else(|| panic!("the demo names no repository:\n{out}"));
    let repo = std::path::Path::new(repo);
    let git = |args: &[&str]| {
        let out = sandbox
            .command("git")
            .arg("-C")
            .arg(repo)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let remote = git(&["ls-remote", "origin", "refs/heads/main"]);
    assert_eq!(
        remote.split('\t').next(),
        Some(git(&["rev-parse", "HEAD"]).trim())
    );
    assert_eq!(out.stdout.matches("Pushed").count(), 14, "{out}");
    std::fs::remove_dir_all(repo.parent().unwrap()).unwrap();
}

#[test]
fn a_repository_below_the_top_of_its_work_tree_commits_and_pushes_its_own_paths() {
    let sandbox = Sandbox::new();
    std::fs::create_dir_all(sandbox.repo.join("services/my-service")).unwrap();
    sandbox.git(&["mv", "gap", "services/my-service/gap"]);
    sandbox.git(&["commit", "-q", "-m", "A monorepo"]);
    sandbox.git(&["push", "-q"]);
    let dir = sandbox.repo.join("services/my-service");
    let mut args = sandbox.start_args();
    let at = args.iter().position(|a| a == "--repo").unwrap() + 1;
    args[at] = dir.to_str().unwrap().to_string();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    sandbox.canary(&args).ok();
    sandbox.next();
    sandbox.next();
    assert_eq!(step(&sandbox), "deploy-v1: deploy to production");
    assert_eq!(
        sandbox.git(&["show", "--name-only", "--format=", "HEAD"]),
        "services/my-service/gap/gap.yaml\n"
    );
    assert_eq!(remote_head(&sandbox), sandbox.git(&["rev-parse", "HEAD"]));
    assert_eq!(sandbox.git(&["status", "--porcelain"]), "");
}

/// The question that confirms a deploy asks to push only where canary does not push: with
/// `--push` canary pushed, and asks whether it is deployed; without, the operator pushes and
/// deploys.
#[test]
fn push_and_deploy_is_asked_only_where_canary_did_not_push() {
    let asked = |out: &common::Output| {
        out.stderr
            .lines()
            .find(|l| l.contains("deployed to staging"))
            .unwrap_or_else(|| panic!("no deploy question:\n{out}"))
            .to_string()
    };
    let pushing = Sandbox::new();
    pushing.start();
    pushing.next().ok();
    let out = pushing.next().ok();
    let question = asked(&out);
    assert!(
        question.starts_with("? Pushed (")
            && question.ends_with(". Is it deployed to staging? yes (--yes)")
            && !question.contains("Push and deploy"),
        "{question}"
    );

    let by_hand = Sandbox::new();
    start_with(&by_hand, &[]).ok();
    by_hand.next().ok();
    by_hand.git(&["push", "-q"]);
    let out = by_hand.next().ok();
    let question = asked(&out);
    assert!(
        question.starts_with("? Push and deploy to staging ("),
        "{question}"
    );
}
