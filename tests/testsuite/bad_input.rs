//! Bad input, table-driven: every case exits 2 with a short message (at most three lines, the
//! first starting with `error:`) that names the problem, never panics, and leaves the repository
//! files and the journal (its bytes, or its absence) exactly as they were.

use crate::common;

use crate::common::{SERVICE, STAGING_HOST, Sandbox, Snapshot, assert_unchanged};

/// Run one case and check everything a bad-input error promises.
#[track_caller]
fn assert_bad_input(sandbox: &Sandbox, case: &str, args: &[&str], names: &str) {
    let before: Snapshot = sandbox.snapshot();
    let out = sandbox.canary(args);
    check(&out, case, names);
    assert_unchanged(&before, &sandbox.snapshot(), case);
}

#[track_caller]
fn check(out: &common::Output, case: &str, names: &str) {
    assert_eq!(out.code, 2, "{case}: `canary {}`:\n{out}", out.args);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        !lines.is_empty() && lines.len() <= 3,
        "{case}: stderr is not one to three lines:\n{out}"
    );
    assert!(
        lines[0].starts_with("error: "),
        "{case}: stderr does not start with `error:`:\n{out}"
    );
    assert!(
        out.stderr.contains(names),
        "{case}: stderr does not name the problem ({names:?}):\n{out}"
    );
}

/// `canary start` with the usual arguments, with `flag`'s value replaced (or the flag added,
/// or for `SERVICE` the service replaced).
/// Move the repository's directory `dir` out of it, and leave a symbolic link to it in its place.
fn moved_out_behind_a_link(sandbox: &Sandbox, dir: &str) {
    let outside = sandbox
        .tmp
        .path()
        .join(format!("outside-{}", dir.replace('/', "-")));
    std::fs::rename(sandbox.repo.join(dir), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, sandbox.repo.join(dir)).unwrap();
}

fn start_with(sandbox: &Sandbox, flag: &str, value: &str) -> Vec<String> {
    let mut args = sandbox.start_args();
    if flag == "SERVICE" {
        args[1] = value.to_string();
        return args;
    }
    match args.iter().position(|a| a == flag) {
        Some(i) if flag != "--host" => args[i + 1] = value.to_string(),
        _ => {
            args.insert(1, value.to_string());
            args.insert(1, flag.to_string());
        }
    }
    args
}

#[test]
fn start_refuses_bad_values_and_writes_nothing() {
    let hex = "be6bebfde2273ad254e8ef2a210e3c132a46255195408f675b4187420717f65f";
    let upper = format!("my-service@sha256:{}", hex.to_uppercase());
    let long = "a".repeat(60);
    let cases: &[(&str, &str, &str, &str)] = &[
        // (case, flag, value, what the message names)
        (
            "upper-case service",
            "SERVICE",
            "My-Service",
            "service name \"My-Service\"",
        ),
        (
            "underscore service",
            "SERVICE",
            "my_service",
            "service name \"my_service\"",
        ),
        ("60-char service", "SERVICE", &long, "service name"),
        ("slash in service", "SERVICE", "a/b", "service name \"a/b\""),
        ("dot-dot service", "SERVICE", "..", "service name \"..\""),
        (
            "image by tag",
            "--v1-image",
            "my-service:latest",
            "has no digest",
        ),
        (
            "short digest",
            "--v1-image",
            "x@sha256:abc",
            "64 lower-case hex digits",
        ),
        (
            "upper-case digest",
            "--v1-image",
            &upper,
            "64 lower-case hex digits",
        ),
        (
            "steps not increasing",
            "--steps",
            "5,1,100",
            "not strictly increasing",
        ),
        (
            "steps from 0",
            "--steps",
            "0,100",
            "not a whole number from 1 to 100",
        ),
        (
            "steps not ending at 100",
            "--steps",
            "1,50",
            "does not end at 100",
        ),
        ("slash in env", "--env", "a/b", "environment name \"a/b\""),
        ("host with a space", "--host", "staging=a b", "host \"a b\""),
        (
            "host with a port",
            "--host",
            "staging=a:80",
            "host \"a:80\"",
        ),
        ("host with a hash", "--host", "staging=#x", "host \"#x\""),
        (
            "host as YAML",
            "--host",
            "staging={a: b}",
            "host \"{a: b}\"",
        ),
        (
            "host with a newline",
            "--host",
            "staging=a\nb",
            "host \"a\\nb\"",
        ),
        (
            "host of no env",
            "--host",
            "qa=qa.example.com",
            "environment \"qa\"",
        ),
        (
            "host not ENV=HOST",
            "--host",
            "qa.example.com",
            "is not ENV=HOST",
        ),
        ("namespace", "--namespace", "Relational_Data", "namespace"),
    ];
    for &(case, flag, value, names) in cases {
        let sandbox = Sandbox::new();
        let args = start_with(&sandbox, flag, value);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_bad_input(&sandbox, case, &args, names);
        assert!(!sandbox.journal.exists(), "{case}: a journal was created");
    }
}

#[test]
fn start_refuses_one_host_or_one_context_for_two_environments() {
    let staging_host = STAGING_HOST.split_once('=').unwrap().1;
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "the staging host for production too",
            &["--host", &format!("production={staging_host}")],
            "host my-service-staging.gservice.emarsys.com is given to both staging and production",
        ),
        (
            "one context for both",
            &["--context", "staging=kind", "--context", "production=kind"],
            "kubeconfig context kind is given to both staging and production",
        ),
    ];
    for &(case, extra, names) in cases {
        let sandbox = Sandbox::new();
        let mut args = sandbox.start_args();
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_bad_input(&sandbox, case, &args, names);
        assert!(!sandbox.journal.exists(), "{case}: a journal was created");
    }
    // The refusal names the flag that allows it, and the flag does.
    let sandbox = Sandbox::new();
    let mut args = sandbox.start_args();
    args.extend(["--context", "staging=kind", "--context", "production=kind"].map(String::from));
    let refused = sandbox.canary(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(refused.stderr.contains("--shared-context"), "{refused}");
    args.push("--shared-context".into());
    // With the flag the one-context refusal is gone: the next check, that the context is in
    // the kubeconfig (which this sandbox has none of), is the one that speaks.
    let allowed = sandbox.canary(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!allowed.stderr.contains("--shared-context"), "{allowed}");
    assert!(allowed.stderr.contains("kubeconfig"), "{allowed}");
}

#[test]
fn start_refuses_a_directory_that_is_not_a_seed_repository() {
    // (case, how to spoil the sandbox, --repo relative to the sandbox, what the message names)
    type Spoil = fn(&Sandbox);
    let cases: &[(&str, Spoil, &str, &str)] = &[
        ("missing directory", |_| {}, "nowhere", "does not exist"),
        (
            "a file",
            |s| std::fs::write(s.tmp.path().join("file"), "x").unwrap(),
            "file",
            "is not a directory",
        ),
        (
            "not a git work tree",
            |s| {
                common::copy_tree(
                    &common::fixtures().join("seed-example"),
                    &s.tmp.path().join("plain"),
                )
            },
            "plain",
            "not a git work tree",
        ),
        (
            "git repo without gap/gap.yaml",
            |s| {
                std::fs::remove_file(s.repo.join("gap/gap.yaml")).unwrap();
                s.git(&["commit", "-qam", "no gap.yaml"]);
            },
            "repo",
            "has no gap/gap.yaml",
        ),
        (
            "gap.yaml is not YAML",
            |s| s.write("gap/gap.yaml", "deployments: [\n"),
            "repo",
            "gap/gap.yaml",
        ),
        (
            "empty gap.yaml",
            |s| s.write("gap/gap.yaml", ""),
            "repo",
            "gap/gap.yaml",
        ),
        (
            "gap.yaml of another service",
            |s| {
                s.write(
                    "gap/gap.yaml",
                    "name: other-service\ndeployments:\n  web:\n    ingress:\n      enabled: true\n",
                )
            },
            "repo",
            "is for service \"other-service\"",
        ),
        (
            "binary gap.yaml",
            |s| {
                std::fs::write(s.repo.join("gap/gap.yaml"), [0u8, 159, 146, 150, 255, 0, 1])
                    .unwrap()
            },
            "repo",
            "not UTF-8 text",
        ),
        (
            "50 MB gap.yaml",
            |s| s.write("gap/gap.yaml", &"# padding\n".repeat(5 * 1024 * 1024)),
            "repo",
            "more than the 4194304 canary reads",
        ),
        (
            "alias bomb",
            |s| s.write("gap/gap.yaml", &alias_bomb()),
            "repo",
            "alias bomb",
        ),
        (
            "gap/ a symbolic link out of the repository",
            |s| moved_out_behind_a_link(s, "gap"),
            "repo",
            "gap is a symbolic link",
        ),
        (
            "an environment's directory a symbolic link out of the repository",
            |s| moved_out_behind_a_link(s, "gap/staging"),
            "repo",
            "gap/staging is a symbolic link",
        ),
        (
            "gap.yaml without deployments.web",
            |s| {
                s.write(
                    "gap/gap.yaml",
                    "name: my-service\ndeployments:\n  worker:\n    command:\n      - /bin/work\n",
                )
            },
            "repo",
            "no deployments.web",
        ),
    ];
    for &(case, spoil, repo, names) in cases {
        let sandbox = Sandbox::new();
        spoil(&sandbox);
        let dir = sandbox.tmp.path().join(repo);
        let args = start_with(&sandbox, "--repo", dir.to_str().unwrap());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let before_plain = common::read_tree(&sandbox.tmp.path().join("plain"));
        assert_bad_input(&sandbox, case, &args, names);
        assert!(!sandbox.journal.exists(), "{case}: a journal was created");
        assert_eq!(
            common::read_tree(&sandbox.tmp.path().join("plain")),
            before_plain,
            "{case}: the directory changed"
        );
    }
}

/// A start refused for its values finds the journal as it was and leaves it so: no file where
/// there was none, an empty file empty, a journal in use byte for byte. The values are checked
/// before the journal is opened to record the release.
#[test]
fn a_refused_start_leaves_an_absent_an_empty_or_an_existing_journal_as_it_was() {
    type Prepare = fn(&Sandbox);
    let journals: &[(&str, Prepare)] = &[
        ("absent", |_| {}),
        ("empty", |s| std::fs::write(&s.journal, "").unwrap()),
        ("existing", |s| {
            // Another service's release, so that my-service's values are what is refused.
            s.start_another("other-service");
            s.canary(&["next", "other-service", "--yes"]).ok();
        }),
    ];
    let refusals: &[(&str, &str, &str, &str)] = &[
        (
            "image by tag",
            "--v1-image",
            "my-service:latest",
            "has no digest",
        ),
        ("steps", "--steps", "1,50", "does not end at 100"),
        (
            "host of no env",
            "--host",
            "qa=qa.example.com",
            "environment \"qa\"",
        ),
        (
            "service gap.yaml does not name",
            "SERVICE",
            "another",
            "is for service \"my-service\"",
        ),
        (
            "missing repository",
            "--repo",
            "/nonexistent",
            "does not exist",
        ),
    ];
    for (journal, prepare) in journals {
        for &(case, flag, value, names) in refusals {
            let sandbox = Sandbox::new();
            prepare(&sandbox);
            let args = start_with(&sandbox, flag, value);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            assert_bad_input(
                &sandbox,
                &format!("{journal} journal, {case}"),
                &args,
                names,
            );
        }
    }
    // The same values, well-formed, are accepted in an empty journal: the cases above fail for
    // their value alone.
    let sandbox = Sandbox::new();
    std::fs::write(&sandbox.journal, "").unwrap();
    sandbox.start();
    // And a release already in flight is refused (exit 3), its journal as it was.
    let before = sandbox.snapshot();
    let args = sandbox.start_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sandbox.canary(&args);
    assert_eq!(out.code, 3, "{out}");
    assert!(out.stderr.contains("already in flight"), "{out}");
    assert_unchanged(&before, &sandbox.snapshot(), "start of a release in flight");
}

/// Weights and environments, against a release at deploy-v2 where `weight staging` is allowed:
/// only the bad value stands in the way.
#[test]
fn weight_refuses_bad_values_and_unknown_environments() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("deploy-v2");
    let cases: &[(&str, &str, &str, &str)] = &[
        ("weight above 100", "staging", "101", "101"),
        ("negative weight", "staging", "-1", "-1"),
        ("fractional weight", "staging", "12.5", "12.5"),
        ("weight not a number", "staging", "abc", "abc"),
        ("weight in exponent form", "staging", "1e2", "1e2"),
        (
            "unknown environment",
            "qa",
            "50",
            "unknown environment \"qa\"",
        ),
    ];
    for &(case, env, percent, names) in cases {
        assert_bad_input(
            &sandbox,
            case,
            &["weight", SERVICE, env, percent, "--yes"],
            names,
        );
        assert_eq!(sandbox.phase(), "deploy-v2", "{case}: the release moved");
    }
    // The same value, well-formed, is accepted: the cases above fail for their value alone.
    sandbox
        .canary(&["weight", SERVICE, "staging", "50", "--yes"])
        .ok();
}

#[test]
fn unusable_journals_are_refused_and_left_byte_for_byte() {
    let sandbox = Sandbox::new();
    // A directory where the journal should be.
    let dir = sandbox.tmp.path().join("journal-dir");
    std::fs::create_dir(&dir).unwrap();
    // Random bytes (not an SQLite file).
    let random = sandbox.tmp.path().join("random.db");
    let bytes: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&random, &bytes).unwrap();
    // A journal from a newer canary.
    let newer = sandbox.tmp.path().join("newer.db");
    {
        let conn = rusqlite::Connection::open(&newer).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    let journals: &[(&str, &std::path::Path, &str)] = &[
        ("a directory", &dir, "is a directory"),
        ("random bytes", &random, "not a canary journal"),
        ("user_version 99", &newer, "schema version 99"),
    ];
    let start = sandbox.start_args();
    let start: Vec<&str> = start.iter().map(String::as_str).collect();
    let commands: &[&[&str]] = &[
        &start,
        &["next", SERVICE, "--yes"],
        &["next", SERVICE, "--dry-run"],
        &["status", SERVICE, "--json"],
        &["list", "--json"],
        &["log", SERVICE],
        &["weight", SERVICE, "staging", "50", "--yes"],
        &["abort", SERVICE, "--yes"],
    ];
    for &(what, path, names) in journals {
        for command in commands {
            let case = format!("journal that is {what}, `canary {}`", command[0]);
            let mut args = vec!["--journal", path.to_str().unwrap()];
            args.extend_from_slice(command);
            let before = (sandbox.files(), read_all(path));
            let out = sandbox.canary_raw(&args);
            check(&out, &case, names);
            assert!(
                before.0 == sandbox.files(),
                "{case}: the repository changed"
            );
            assert!(before.1 == read_all(path), "{case}: the journal changed");
        }
    }
    assert_eq!(std::fs::read(&random).unwrap(), bytes);
    let siblings: Vec<_> = std::fs::read_dir(sandbox.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("random.db") || n.starts_with("newer.db-"))
        .collect();
    assert_eq!(siblings, ["random.db"], "files left beside the journals");
}

/// Every file under (or at) `path`, with its bytes.
fn read_all(path: &std::path::Path) -> common::Files {
    if path.is_dir() {
        common::read_tree(path)
    } else {
        let mut files = common::Files::new();
        files.insert(String::new(), std::fs::read(path).unwrap());
        files
    }
}

#[test]
fn next_for_an_unknown_service_changes_nothing() {
    let sandbox = Sandbox::new();
    // No journal at all: none may be created.
    assert_bad_input(
        &sandbox,
        "unknown service, no journal",
        &["next", "other-service", "--yes"],
        "no release of other-service is in flight",
    );
    assert!(!sandbox.journal.exists(), "a journal was created");
    sandbox.start();
    for args in [
        &["next", "other-service", "--yes"][..],
        &["next", "other-service", "--dry-run"],
        &["weight", "other-service", "staging", "50", "--yes"],
        &["abort", "other-service", "--yes"],
        &["status", "other-service"],
        &["log", "other-service"],
    ] {
        assert_bad_input(
            &sandbox,
            &format!("unknown service, `canary {}`", args[0]),
            args,
            "other-service",
        );
    }
    assert_bad_input(
        &sandbox,
        "invalid service name",
        &["next", "../x", "--yes"],
        "service name \"../x\"",
    );
}

#[test]
fn next_without_a_terminal_or_yes_asks_for_yes_and_changes_nothing() {
    let sandbox = Sandbox::new();
    sandbox.start();
    // An edit step (deploy-v1's), then a deploy step, then the v1 image check.
    for (position, steps) in [
        ("an edit step", 0),
        ("a deploy step", 1),
        ("the v1 image check", 8),
    ] {
        for _ in 0..steps {
            sandbox.next();
        }
        let step = sandbox.status()["step"].as_str().unwrap().to_string();
        let case = format!("next at {position} ({step}) with stdin null and no --yes");
        assert_bad_input(&sandbox, &case, &["next", SERVICE], "--yes");
        let out = sandbox.canary(&["next", SERVICE]);
        assert!(out.stderr.contains("no terminal"), "{case}:\n{out}");
        assert_eq!(sandbox.status()["step"], step.as_str(), "{case}: moved");
    }
    assert_eq!(
        sandbox.status()["step"],
        "route-to-v1: check that web-v1 runs the pinned image"
    );
}

/// "Billion laughs": ten lines that expand to 10^9 nodes if nothing stops them.
fn alias_bomb() -> String {
    let mut text = String::from(
        "name: my-service\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text.push_str("deployments:\n  web:\n    command: *a9\n");
    text
}

#[test]
fn a_target_file_that_is_a_symbolic_link_out_of_the_repository_is_not_written() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("add-routing");
    let outside = sandbox.tmp.path().join("outside.yaml");
    std::fs::write(&outside, "precious: true\n").unwrap();
    let link = sandbox
        .repo
        .join("gap/staging/gap_patch_canary_virtual_service.yaml");
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    sandbox.git(&["add", "-A"]);
    sandbox.git(&["commit", "-qm", "a link"]);
    // Round two would write through the link; canary refuses as soon as it reads the repository.
    assert_bad_input(
        &sandbox,
        "VirtualService patch a symbolic link",
        &["next", SERVICE, "--yes"],
        "gap/staging/gap_patch_canary_virtual_service.yaml is a symbolic link",
    );
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "precious: true\n"
    );
}

#[test]
fn a_journal_path_that_cannot_be_a_file_is_refused() {
    let sandbox = Sandbox::new();
    let file = sandbox.tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let journal = file.join("journal.db");
    let before = sandbox.snapshot();
    let out = sandbox.canary_raw(&["--journal", journal.to_str().unwrap(), "list"]);
    assert_eq!(
        out.code, 0,
        "nothing to list in a journal that cannot exist:\n{out}"
    );
    // ...but it says where it looked, and why nothing can be there.
    assert_eq!(
        out.stderr,
        format!(
            "canary: no journal can be at {}: {} is not a directory\n",
            journal.display(),
            file.display()
        )
    );
    let out = sandbox.canary(&["list"]);
    assert_eq!(out.stderr, "", "a journal not made yet is no news:\n{out}");
    let args = sandbox.start_args();
    let mut full = vec!["--journal", journal.to_str().unwrap()];
    full.extend(args.iter().map(String::as_str));
    let out = sandbox.canary_raw(&full);
    check(&out, "journal under a regular file", "journal");
    // The path and the cause, once.
    assert_eq!(
        out.stderr,
        format!(
            "error: journal {}: Not a directory (os error 20)\n",
            journal.display()
        )
    );
    assert_unchanged(&before, &sandbox.snapshot(), "journal under a regular file");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn a_journal_locked_past_the_busy_timeout_is_reported_as_busy_and_nothing_changes() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let lock = rusqlite::Connection::open(&sandbox.journal).unwrap();
    lock.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let before = sandbox.files();
    let out = sandbox.canary(&["next", SERVICE, "--yes"]);
    assert_eq!(out.code, 75, "{out}");
    assert!(
        out.stderr
            .contains("locked by another process past the busy timeout"),
        "{out}"
    );
    assert_eq!(sandbox.files(), before);
    lock.execute_batch("ROLLBACK").unwrap();
    sandbox.next();
}

#[test]
fn a_journal_export_that_finds_the_journal_busy_exits_75() {
    let sandbox = Sandbox::new();
    sandbox.start();
    // In WAL mode readers pass a writer's transaction; a writer in exclusive locking mode
    // keeps them out too, as a migration in another process does.
    let lock = rusqlite::Connection::open(&sandbox.journal).unwrap();
    lock.execute_batch(
        "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; \
         UPDATE releases SET updated_at = updated_at",
    )
    .unwrap();
    let out = sandbox.canary(&["journal", "export", "--json"]);
    assert_eq!(out.code, 75, "{out}");
    assert!(
        out.stderr
            .contains("locked by another process past the busy timeout"),
        "{out}"
    );
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    let out = sandbox.canary(&["journal", "export", "--json"]).ok();
    assert_eq!(out.json()["releases"].as_array().unwrap().len(), 1);
}

#[test]
fn every_command_on_an_empty_journal_file_leaves_it_empty() {
    let sandbox = Sandbox::new();
    std::fs::write(&sandbox.journal, "").unwrap();
    for args in [
        &["next", SERVICE, "--yes"][..],
        &["next", "--dry-run"],
        &["weight", SERVICE, "staging", "50", "--yes"],
        &["abort", SERVICE, "--yes"],
        &["status", SERVICE],
        &["log", SERVICE],
    ] {
        assert_bad_input(&sandbox, &args.join(" "), args, "no release");
    }
    let before = sandbox.snapshot();
    let out = sandbox.canary(&["list"]).ok();
    assert_unchanged(&before, &sandbox.snapshot(), &out.args);
}

#[test]
fn a_person_s_uncommitted_change_to_a_file_the_release_writes_is_refused_at_start() {
    let sandbox = Sandbox::new();
    let gap = std::fs::read_to_string(sandbox.repo.join("gap/gap.yaml")).unwrap();
    sandbox.write("gap/gap.yaml", &format!("{gap}# mine, not committed\n"));
    let args = sandbox.start_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_bad_input(
        &sandbox,
        "uncommitted gap.yaml",
        &args,
        "gap/gap.yaml has uncommitted changes, and the release writes that file",
    );
    // Staged is not committed either.
    sandbox.git(&["add", "gap/gap.yaml"]);
    assert_bad_input(
        &sandbox,
        "staged gap.yaml",
        &args,
        "gap/gap.yaml has uncommitted changes",
    );
}

#[test]
fn start_refuses_a_switch_web_cannot_carry_and_writes_nothing() {
    let web = |extra: &str| {
        format!(
            "# gap/gap.yaml\nname: my-service\ndeployments:\n  web:\n    ingress:\n      enabled: \
             true\n    command:\n      - /opt/docker/bin/start\n{extra}"
        )
    };
    let value_from = web(
        "    env:\n      - name: IMPLEMENTATION\n        valueFrom:\n          configMapKeyRef: \
         {name: impl, key: impl}\n",
    );
    let set_twice = web(
        "    env:\n      - name: IMPLEMENTATION\n        value: v1\n      - name: \
         IMPLEMENTATION\n        value: v2\n",
    );
    let arg_twice = web("      - --impl=v1\n      - --impl=v1\n");
    let arg_both = web("      - --impl=v1\n      - --impl=v2\n");
    // (case, gap.yaml or None for the seed's, --switch, what the message names)
    let cases: &[(&str, Option<&str>, &str, &str)] = &[
        (
            "equal env values",
            None,
            "env:IMPLEMENTATION=v1,v1",
            "the same value",
        ),
        (
            "equal arg values",
            None,
            "arg:--impl,--impl",
            "the same value",
        ),
        (
            "neither env nor arg",
            None,
            "flag:a,b",
            "neither env: nor arg:",
        ),
        ("one value", None, "env:IMPLEMENTATION=v1", "two values"),
        (
            "bad variable name",
            None,
            "env:A-B=v1,v2",
            "letters, digits and '_'",
        ),
        (
            "an env var set through valueFrom",
            Some(&value_from),
            "env:IMPLEMENTATION=v1,v2",
            "valueFrom",
        ),
        (
            "an env var set twice",
            Some(&set_twice),
            "env:IMPLEMENTATION=v1,v2",
            "more than once",
        ),
        (
            "an argument that appears twice",
            Some(&arg_twice),
            "arg:--impl=v1,--impl=v2",
            "2 times",
        ),
        (
            "both arguments at once",
            Some(&arg_both),
            "arg:--impl=v1,--impl=v2",
            "2 times",
        ),
    ];
    for &(case, gap, switch, names) in cases {
        let sandbox = Sandbox::new();
        if let Some(gap) = gap {
            sandbox.write("gap/gap.yaml", gap);
            sandbox.git(&["commit", "--quiet", "-am", "web as the case has it"]);
        }
        let args = sandbox.coexistence_args(switch);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_bad_input(&sandbox, case, &args, names);
        assert!(!sandbox.journal.exists(), "{case}: a journal was created");
    }
    // A switch is coexistence's; a succession pins an image instead.
    let sandbox = Sandbox::new();
    let mut args = sandbox.start_args();
    args.extend(["--switch", "env:IMPLEMENTATION=v1,v2"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_bad_input(
        &sandbox,
        "switch in succession",
        &args,
        "--method coexistence",
    );
}

/// The switch's variable already set to a third value in web, or set by a patch of web (which
/// web-v1's twin of the patch would inherit), is refused at start with its file and line:
/// canary would overwrite the first, and the second would make the switch mean nothing there.
#[test]
fn start_refuses_a_switch_variable_set_elsewhere_with_its_place() {
    let gap = "# gap/gap.yaml\nname: my-service\ndeployments:\n  web:\n    ingress:\n      \
               enabled: true\n    command:\n      - /opt/docker/bin/start\n    env:\n      - \
               name: IMPLEMENTATION\n        value: v3\n";
    let patch = |name: &str| {
        [
            "apiVersion: apps/v1",
            "kind: Deployment",
            "metadata:",
            "  name: my-service-web",
            "spec:",
            "  template:",
            "    spec:",
            "      containers:",
            "        - name: web",
            "          env:",
            "            - name: LOG_LEVEL",
            "              value: debug",
            &format!("            - name: {name}"),
            "              value: v2",
            "",
        ]
        .join("\n")
    };
    // (case, file, its content, what the message names)
    let cases = [
        (
            "web sets a third value",
            "gap/gap.yaml",
            gap.to_string(),
            "gap/gap.yaml: web cannot carry the switch env:IMPLEMENTATION=v1,v2: \
             deployments.web.env (line 11) sets IMPLEMENTATION to \"v3\", neither v1 nor v2",
        ),
        (
            "a production patch of web sets it",
            "gap/production/gap_patch_impl.yaml",
            patch("IMPLEMENTATION"),
            "gap/production/gap_patch_impl.yaml:13: this patch of my-service-web sets \
             IMPLEMENTATION, the switch's variable",
        ),
        (
            "a patch of web for every environment sets it",
            "gap/gap_patch_impl.yaml",
            patch("IMPLEMENTATION"),
            "gap/gap_patch_impl.yaml:13: this patch of my-service-web sets IMPLEMENTATION",
        ),
    ];
    for (case, path, content, names) in cases {
        let sandbox = Sandbox::new();
        sandbox.write(path, &content);
        sandbox.git(&["add", "-A"]);
        sandbox.git(&["commit", "--quiet", "-m", case]);
        let args = sandbox.coexistence_args("env:IMPLEMENTATION=v1,v2");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_bad_input(&sandbox, case, &args, names);
        assert!(!sandbox.journal.exists(), "{case}: a journal was created");
    }
    // Another variable in a patch of web, and the switch at one of its values, are fine.
    let sandbox = Sandbox::new();
    sandbox.write("gap/production/gap_patch_log.yaml", &patch("OTHER"));
    sandbox.write("gap/gap.yaml", &gap.replace("value: v3", "value: v2"));
    sandbox.git(&["add", "-A"]);
    sandbox.git(&["commit", "--quiet", "-m", "another variable"]);
    sandbox.start_coexistence();
}

/// A journal path that is a FIFO, a device, or a symbolic link to one, is refused at once with
/// one line and exit 2, by a command that reads and one that writes; opening a FIFO would wait
/// for a writer forever. Each run is given a deadline, so that a hang fails the test.
#[test]
fn a_journal_path_that_is_a_fifo_or_a_device_is_refused_at_once() {
    use std::os::unix::fs::FileTypeExt;
    let sandbox = Sandbox::new();
    let fifo = sandbox.tmp.path().join("fifo");
    let made = sandbox.command("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let to_fifo = sandbox.tmp.path().join("to-fifo");
    std::os::unix::fs::symlink(&fifo, &to_fifo).unwrap();
    let to_device = sandbox.tmp.path().join("to-device");
    std::os::unix::fs::symlink("/dev/null", &to_device).unwrap();
    let cases = [
        (fifo.clone(), "is a FIFO (named pipe), not a journal file"),
        (
            to_fifo,
            "is a symbolic link to a FIFO (named pipe), not a journal file",
        ),
        ("/dev/null".into(), "is a device, not a journal file"),
        (
            to_device,
            "is a symbolic link to a device, not a journal file",
        ),
    ];
    let start = sandbox.start_args();
    for (journal, names) in cases {
        let journal = journal.to_str().unwrap();
        for command in [
            vec!["list"],
            vec!["status", SERVICE],
            start.iter().map(String::as_str).collect(),
        ] {
            let mut args = vec!["--journal", journal];
            args.extend(&command);
            let case = format!("{journal} {}", command[0]);
            let before = sandbox.files();
            let mut child = sandbox
                .command(env!("CARGO_BIN_EXE_canary"))
                .args(&args)
                .current_dir(sandbox.tmp.path())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while child.try_wait().unwrap().is_none() {
                if std::time::Instant::now() > deadline {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    panic!("{case}: canary still waits on the journal after 30 seconds");
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let out = common::Output::new(&args, child.wait_with_output().unwrap());
            check(&out, &case, names);
            assert_eq!(
                out.stderr,
                format!(
                    "error: journal {journal}: {names}; point --journal or CANARY_JOURNAL at a file\n"
                )
            );
            assert_eq!(sandbox.files(), before, "{case}");
        }
    }
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(!sandbox.journal.exists());
}

/// A weight written as people write percentages, `50%`, is the weight 50: the same file as
/// `50`; a `%` does not make a bad weight good.
#[test]
fn a_weight_may_be_written_with_a_percent_sign() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("deploy-v2");
    for (case, percent) in [
        ("101%", "101%"),
        ("50%%", "50%%"),
        ("%", "%"),
        ("5 %", "5 %"),
    ] {
        assert_bad_input(
            &sandbox,
            &format!("weight {case}"),
            &["weight", SERVICE, "staging", percent, "--yes"],
            percent,
        );
    }
    sandbox
        .canary(&["weight", SERVICE, "staging", "50%", "--yes"])
        .ok();
    assert_eq!(sandbox.weights()[0], ("staging".to_string(), Some(50)));
}

/// Every command that takes a SERVICE, given one a letter away from a release in the journal,
/// names the service that was probably meant, and changes nothing.
#[test]
fn a_mistyped_service_is_answered_with_the_one_meant() {
    let sandbox = Sandbox::new();
    sandbox.start();
    for args in [
        &["next", "my-servce", "--yes"][..],
        &["next", "my-servce", "--dry-run"],
        &["status", "my-servce"],
        &["log", "my-servce"],
        &["weight", "my-sevrice", "staging", "50", "--yes"],
        &["abort", "my-servic", "--yes"],
        &["verify", "my-servce"],
        &["gate", "my-servce"],
        &["context", "my-servce", "staging", "--unset"],
        &["check", "ny-service"],
    ] {
        assert_bad_input(
            &sandbox,
            &format!("mistyped service, `canary {}`", args[0]),
            args,
            "(did you mean my-service?)",
        );
    }
    // A name that is no slip of the keyboard gets no guess.
    let out = sandbox.canary(&["status", "billing"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(!out.stderr.contains("did you mean"), "{out}");
}
