//! Issue 12, class 2: a deploy is confirmed only for what git can deploy. Every file canary
//! wrote must be committed as it wrote it, on a branch, and on the branch's upstream (the
//! remote Argo CD deploys from) unless the release has no remote; canary pushes itself only
//! with `start --push`.

mod common;

use common::{SERVICE, Sandbox, assert_unchanged};

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
fn a_rejected_push_is_reported_and_changes_nothing_more() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.colleague_pushes("README.md", |_| "theirs\n".into(), "A colleague's commit");
    let theirs = remote_head(&sandbox);
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("git push to origin/main was rejected"),
        "{out}"
    );
    assert!(out.stderr.contains("git pull --rebase"), "{out}");
    assert_eq!(
        remote_head(&sandbox),
        theirs,
        "the remote keeps its history"
    );
    // The step is written and committed here; its deploy waits for the push.
    assert_eq!(
        sandbox.git(&["log", "-1", "--format=%s"]).trim(),
        "canary(my-service): deploy-v1: add the pinned web-v1 deployment and the version labels"
    );
    assert_eq!(step(&sandbox), "deploy-v1: deploy to staging");

    // Rebased onto the colleague's commit, canary's commit is a new one, which canary does not
    // push as its own: the operator pushes it, then the deploy goes on.
    sandbox.git(&["pull", "-q", "--rebase"]);
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(
        out.stderr.contains("commits that canary did not make"),
        "{out}"
    );
    sandbox.git(&["push", "-q"]);
    sandbox.next();
    assert_eq!(step(&sandbox), "deploy-v1: deploy to production");
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
    let sandbox = Sandbox::new();
    start_with(&sandbox, &[]).ok();
    sandbox
        .canary(&["next", SERVICE, "--yes", "--no-commit"])
        .ok();
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["next", SERVICE, "--dry-run"]);
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stdout.contains("first commit gap/gap.yaml"), "{out}");
    assert!(out.stderr.contains("run:   git push"), "{out}");
    assert_unchanged(&before, &sandbox.snapshot(), "a dry run");
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
