//! `canary journal check` and `canary journal export` on a real journal.

use crate::common;

use std::collections::HashSet;

use crate::common::{SERVICE, Sandbox};

#[test]
fn export_holds_every_release_and_event_and_check_finds_what_is_broken() {
    let sandbox = Sandbox::new();
    sandbox.start();
    for _ in 0..5 {
        sandbox.next();
    }
    let check = sandbox.canary(&["journal", "check"]).ok();
    assert!(check.stdout.contains("no problem found"), "{check}");

    let export = sandbox.canary(&["journal", "export", "--json"]).ok().json();
    let log = sandbox.canary(&["log", SERVICE, "--json"]).ok().json();
    let releases = export["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0]["service"], SERVICE);
    assert_eq!(releases[0]["phase"], sandbox.phase());
    assert_eq!(releases[0]["events"], log);
    let conn = rusqlite::Connection::open(&sandbox.journal).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(export["schema_version"], version);

    // A row whose JSON canary cannot read is a problem check reports, with exit 1.
    conn.execute("UPDATE releases SET position = 'not json'", [])
        .unwrap();
    drop(conn);
    let check = sandbox.canary(&["journal", "check"]);
    assert_eq!(check.code, 1, "{check}");
    assert!(
        check
            .stdout
            .contains("a release that canary cannot read: position"),
        "{check}"
    );
    let export = sandbox.canary(&["journal", "export", "--json"]);
    assert_eq!(export.code, 1, "{export}");
}

#[test]
fn there_is_nothing_to_check_without_a_journal() {
    let sandbox = Sandbox::new();
    let out = sandbox.canary(&["journal", "check"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("there is no journal at"), "{out}");
    assert!(!sandbox.journal.exists());
}

/// A release in deploy-v2 whose staging canary sent 50% to v2.
fn testing_v2_on_staging_at_50() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.walk_to("deploy-v2");
    sandbox
        .canary(&["weight", SERVICE, "staging", "50", "--yes"])
        .ok();
    sandbox
}

/// `list` reads the weights canary recorded, not the files: a hand edit shows in `status`
/// (and `canary check` names it), while `list` keeps what canary wrote.
#[test]
fn list_shows_the_recorded_weights_and_status_the_files() {
    let sandbox = testing_v2_on_staging_at_50();
    let patch = "gap/staging/gap_patch_canary_virtual_service.yaml";
    let text = String::from_utf8(sandbox.files()[patch].clone()).unwrap();
    sandbox.write(
        patch,
        &text
            .replace("weight: 50\n", "weight: 30\n")
            .replacen("weight: 30\n", "weight: 70\n", 1),
    );

    let status = sandbox.status();
    assert_eq!(status["environments"][0]["v2_weight"], 30, "{status}");
    let listed = sandbox.canary(&["list", "--json"]).ok().json();
    assert_eq!(listed[0]["environments"][0]["v2_weight"], 50, "{listed}");
    let table = sandbox.canary(&["list"]).ok().stdout;
    assert!(table.contains("staging 50%, production 0%"), "{table}");
    let check = sandbox.canary(&["check", SERVICE]);
    assert!(check.stdout.contains("CANARY-E022"), "{check}");
}

/// The table works out a row's words once for each distinct shape, position and weights, and
/// reuses them: with releases of two shapes at mixed positions and weights, some shared, each
/// row still says what `list --json` (which decodes every release in full) says of it.
#[test]
fn every_row_of_the_table_says_what_its_release_says() {
    let sandbox = testing_v2_on_staging_at_50();
    let shorter = "\"schedule\":[1,50,100]";
    rusqlite::Connection::open(&sandbox.journal)
        .unwrap()
        .execute(
            &format!(
                "INSERT INTO releases (service, config, position, phase, opened_at, updated_at,
                                       v2_weights, shape)
                 WITH RECURSIVE n(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM n WHERE n < 40)
                 SELECT 'svc-' || n,
                        CASE WHEN n % 2 THEN replace(config, '{long}', '{shorter}') ELSE config END,
                        json_object('index', n % 13 * 3, 'pending', json('[]')),
                        phase, opened_at, updated_at, json_array(n % 3 * 10, n % 4 * 25),
                        CASE WHEN n % 2 THEN replace(shape, '{long}', '{shorter}') ELSE shape END
                 FROM releases, n",
                long = "\"schedule\":[1,5,10,25,50,100]",
            ),
            [],
        )
        .unwrap();

    let listed = sandbox.canary(&["list", "--json"]).ok().json();
    let listed = listed.as_array().unwrap();
    let table = sandbox.canary(&["list"]).ok().stdout;
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 42, "{table}");
    assert_eq!(listed.len(), rows.len());
    let (mut steps, mut weights_seen) = (HashSet::new(), HashSet::new());
    for (row, json) in rows.iter().zip(listed) {
        let phase = json["phase"].as_str().unwrap();
        let step = json["step"].as_str().unwrap();
        let step = step.strip_prefix(&format!("{phase}: ")).unwrap_or(step);
        let weights = json["environments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|env| format!("{} {}%", env["name"].as_str().unwrap(), env["v2_weight"]))
            .collect::<Vec<_>>()
            .join(", ");
        let cells: Vec<&str> = row
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(cells[1..], [phase, &weights, step], "{row:?}");
        steps.insert(step.to_string());
        weights_seen.insert(weights);
    }
    // Rows differ, and many share words: the table both worked words out and reused them.
    assert!(steps.len() > 10 && steps.len() < rows.len(), "{steps:?}");
    assert!(
        weights_seen.len() > 5 && weights_seen.len() < rows.len(),
        "{weights_seen:?}"
    );
}

/// A journal from before the listing columns (schema 3): the migration derives each release's
/// shape from its configuration, `list` reads the weights from the files until the release's
/// next write records them, and the output is the same throughout.
#[test]
fn a_journal_from_before_the_listing_columns_lists_the_same() {
    let sandbox = testing_v2_on_staging_at_50();
    // A release of schema 3's time walks the plan of its time, which its configuration does
    // not name (releases since name the plan they start with).
    rusqlite::Connection::open(&sandbox.journal)
        .unwrap()
        .execute_batch(
            "UPDATE releases SET config = json_remove(config, '$.plan'),
                                 shape = json_remove(shape, '$.plan');",
        )
        .unwrap();
    let table = sandbox.canary(&["list"]).ok().stdout;
    let json = sandbox.canary(&["list", "--json"]).ok().json();
    assert!(table.contains("staging 50%, production 0%"), "{table}");

    let conn = rusqlite::Connection::open(&sandbox.journal).unwrap();
    conn.execute_batch(
        "ALTER TABLE releases DROP COLUMN v2_weights;
         ALTER TABLE releases DROP COLUMN shape;
         PRAGMA user_version = 3;",
    )
    .unwrap();
    drop(conn);

    assert_eq!(sandbox.canary(&["list"]).ok().stdout, table);
    assert_eq!(sandbox.canary(&["list", "--json"]).ok().json(), json);
    let conn = sandbox.journal_db();
    let (shape, weights): (String, Option<String>) = conn
        .query_row("SELECT shape, v2_weights FROM releases", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(
        shape,
        r#"{"environments":["staging","production"],"schedule":[1,5,10,25,50,100]}"#
    );
    assert_eq!(weights, None, "nothing recorded the weights yet");
    drop(conn);
    let check = sandbox.canary(&["journal", "check"]).ok();
    assert!(check.stdout.contains("no problem found"), "{check}");

    // The next write records them.
    sandbox
        .canary(&["weight", SERVICE, "staging", "40", "--yes"])
        .ok();
    let conn = sandbox.journal_db();
    let weights: Option<String> = conn
        .query_row("SELECT v2_weights FROM releases", [], |r| r.get(0))
        .unwrap();
    assert_eq!(weights.as_deref(), Some("[40,0]"));
}

/// `journal check` notices listing columns that disagree with the release they summarise.
#[test]
fn journal_check_finds_listing_columns_that_disagree() {
    let sandbox = Sandbox::new();
    sandbox.start();
    let conn = rusqlite::Connection::open(&sandbox.journal).unwrap();
    conn.execute(
        r#"UPDATE releases SET shape = '{"environments":["production"],"schedule":[100]}'"#,
        [],
    )
    .unwrap();
    drop(conn);
    let check = sandbox.canary(&["journal", "check"]);
    assert_eq!(check.code, 1, "{check}");
    assert!(check.stdout.contains("lists another shape"), "{check}");
}

/// `canary ARGS` with the sandbox's journal but no `CANARY_OPERATOR`, with `env` added.
fn without_operator(sandbox: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> common::Output {
    let mut cmd = sandbox.canary_command(args);
    cmd.env_remove("CANARY_OPERATOR")
        .stdin(std::process::Stdio::null());
    for (key, value) in env {
        cmd.env(key, value);
    }
    common::Output::new(args, cmd.output().unwrap()).ok()
}

/// The operator of every event of the release, oldest first.
fn operators(sandbox: &Sandbox) -> Vec<String> {
    sandbox
        .log()
        .iter()
        .map(|e| e["operator"].as_str().unwrap().to_string())
        .collect()
}

/// `start` and a step, without `CANARY_OPERATOR`; the operator of every event they wrote.
fn operators_of_a_start_and_a_step(sandbox: &Sandbox, env: &[(&str, &str)]) -> Vec<String> {
    let start = sandbox.start_args();
    let start: Vec<&str> = start.iter().map(String::as_str).collect();
    without_operator(sandbox, &start, env);
    without_operator(sandbox, &["next", SERVICE, "--yes"], env);
    operators(sandbox)
}

#[test]
fn the_operator_is_git_s_user_name_of_the_release_s_repository_else_the_global_one() {
    let sandbox = Sandbox::new();
    sandbox.git(&["config", "--global", "user.name", "Grace Hopper"]);
    sandbox.git(&["config", "user.name", "Ada Lovelace"]);
    let names = operators_of_a_start_and_a_step(&sandbox, &[("USER", "login")]);
    assert!(names.len() > 1, "{names:?}");
    assert!(names.iter().all(|n| n == "Ada Lovelace"), "{names:?}");

    let sandbox = Sandbox::new();
    sandbox.git(&["config", "--global", "user.name", "Grace Hopper"]);
    let names = operators_of_a_start_and_a_step(&sandbox, &[("USER", "login")]);
    assert!(names.iter().all(|n| n == "Grace Hopper"), "{names:?}");
}

#[test]
fn the_operator_is_the_login_name_when_git_knows_none_and_canary_operator_comes_first() {
    let sandbox = Sandbox::new();
    let names = operators_of_a_start_and_a_step(&sandbox, &[("USER", "login")]);
    assert!(names.iter().all(|n| n == "login"), "{names:?}");

    let sandbox = Sandbox::new();
    sandbox.git(&["config", "user.name", "Ada Lovelace"]);
    let names = operators_of_a_start_and_a_step(&sandbox, &[("CANARY_OPERATOR", "pipeline")]);
    assert!(names.iter().all(|n| n == "pipeline"), "{names:?}");
}

/// Read commands are measured against the sqlite3 tool: they must not run git to learn a name
/// they never write. A command that writes asks git once.
#[test]
fn only_a_command_that_writes_asks_git_for_the_operator() {
    let sandbox = Sandbox::new();
    sandbox.git(&["config", "user.name", "Ada Lovelace"]);
    sandbox.start();
    sandbox.next();
    // A git that notes its arguments, then runs the real one.
    let real = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|dir| dir.join("git"))
        .find(|git| git.is_file())
        .expect("git on PATH");
    let bin = sandbox.tmp.path().join("bin");
    let calls = sandbox.tmp.path().join("git-calls");
    std::fs::create_dir(&bin).unwrap();
    let script = bin.join("git");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\nexec '{}' \"$@\"\n",
            calls.display(),
            real.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::join_paths(
        std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    let path = path.to_str().unwrap();
    let asked = || {
        std::fs::read_to_string(&calls)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("config user.name"))
            .count()
    };

    for args in [
        &["status", SERVICE][..],
        &["status"],
        &["list"],
        &["log", SERVICE],
        &["next", SERVICE, "--dry-run"],
    ] {
        without_operator(&sandbox, args, &[("PATH", path)]);
        assert_eq!(
            asked(),
            0,
            "`canary {}` asked git for the operator",
            args.join(" ")
        );
    }
    without_operator(&sandbox, &["next", SERVICE, "--yes"], &[("PATH", path)]);
    assert_eq!(asked(), 1, "a step asks git for the operator once");
    assert_eq!(operators(&sandbox).last().unwrap(), "Ada Lovelace");
}

#[test]
fn log_and_status_without_service_show_the_only_release_in_flight_and_name_several() {
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.next();
    for (bare, named) in [
        (&["log", "--json"][..], &["log", SERVICE, "--json"][..]),
        (&["status", "--json"], &["status", SERVICE, "--json"]),
    ] {
        let shown = sandbox.canary(bare).ok().json();
        assert_eq!(
            shown,
            sandbox.canary(named).ok().json(),
            "`canary {bare:?}`"
        );
    }
    assert!(
        sandbox.canary(&["log"]).ok().stdout.contains("opened"),
        "plain `canary log`"
    );

    // A second service in flight in the same journal: which one is meant is not guessed.
    sandbox.start_another("other-service");
    for bare in [
        &["log"][..],
        &["status"],
        &["log", "--json"],
        &["status", "--json"],
    ] {
        let before = sandbox.snapshot();
        let out = sandbox.canary(bare);
        assert_eq!(out.code, 2, "`canary {bare:?}`:\n{out}");
        assert!(
            out.stderr
                .contains("2 releases are in flight (my-service, other-service); name the service"),
            "`canary {bare:?}`:\n{out}"
        );
        common::assert_unchanged(&before, &sandbox.snapshot(), &format!("{bare:?}"));
    }
    // Named, each is shown.
    assert_eq!(
        sandbox
            .canary(&["status", "other-service", "--json"])
            .ok()
            .json()["service"],
        "other-service"
    );
}

/// `canary demo --yes` with `env` and `args` before `demo`, its temporary directory inside
/// the sandbox.
fn demo(sandbox: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> common::Output {
    let tmp = sandbox.tmp.path().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut cmd = sandbox.command(env!("CARGO_BIN_EXE_canary"));
    cmd.args(args)
        .args(["demo", "--yes"])
        .env("TMPDIR", &tmp)
        .current_dir(sandbox.tmp.path())
        .stdin(std::process::Stdio::null());
    for (key, value) in env {
        cmd.env(key, value);
    }
    common::Output::new(args, cmd.output().unwrap()).ok()
}

#[test]
fn the_demo_records_its_release_in_the_journal_named_or_else_in_its_own() {
    let sandbox = Sandbox::new();
    let default = sandbox.home.join(".local/share/canary/journal.db");
    let named = sandbox.tmp.path().join("named.db");
    let from_env = sandbox.tmp.path().join("from-env.db");
    for (journal, args, env) in [
        (&named, vec!["--journal", named.to_str().unwrap()], vec![]),
        (
            &from_env,
            vec![],
            vec![("CANARY_JOURNAL", from_env.to_str().unwrap())],
        ),
    ] {
        let out = demo(&sandbox, &args, &env);
        let hint = format!("canary --journal {} log my-service", journal.display());
        assert!(out.stdout.contains(&hint), "{out}");
        let log = sandbox
            .canary_raw(&[
                "--journal",
                journal.to_str().unwrap(),
                "log",
                SERVICE,
                "--json",
            ])
            .ok()
            .json();
        let events = log.as_array().unwrap();
        assert_eq!(events.first().unwrap()["kind"], "opened");
        assert_eq!(events.last().unwrap()["kind"], "finished");
    }
    // Named by neither: the demo's own journal, beside its repository; never the default one.
    let out = demo(&sandbox, &[], &[]);
    assert!(!default.exists(), "the demo wrote the default journal");
    let own = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Inspect the journal with: canary --journal "))
        .and_then(|l| l.strip_suffix(" log my-service"))
        .unwrap_or_else(|| panic!("no journal named:\n{out}"));
    assert!(
        own.starts_with(sandbox.tmp.path().join("tmp").to_str().unwrap())
            && own.ends_with("journal.db"),
        "{own}"
    );
}

/// The read commands on a journal in a directory canary may not write (a read-only mount,
/// someone else's journal): SQLite would create the journal's shared-memory file beside it, and
/// cannot. They read what the same commands read from the journal where it was written, and
/// create nothing beside it.
///
/// chmod does not stop root, so as root the commands run as `nobody` through `setpriv`; the
/// test first proves that this user really cannot create a file in the directory.
#[test]
fn read_commands_work_on_a_journal_in_a_read_only_directory_and_create_nothing_beside_it() {
    use std::os::unix::fs::PermissionsExt;
    let set_mode = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let sandbox = Sandbox::new();
    sandbox.start();
    sandbox.next();
    let dir = sandbox.tmp.path().join("read-only");
    std::fs::create_dir(&dir).unwrap();
    let journal = dir.join("journal.db");
    std::fs::copy(&sandbox.journal, &journal).unwrap();
    set_mode(&journal, 0o444);
    set_mode(&dir, 0o555);
    // Others may walk to it and read the repository.
    set_mode(sandbox.tmp.path(), 0o755);
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let unprivileged = |program: &str| {
        let mut cmd = if root {
            let mut cmd = sandbox.command("setpriv");
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", program]);
            cmd
        } else {
            sandbox.command(program)
        };
        // git refuses a repository owned by another user unless told it is safe.
        cmd.env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", "safe.directory")
            .env("GIT_CONFIG_VALUE_0", "*")
            .current_dir(sandbox.tmp.path());
        cmd
    };
    let probe = unprivileged("sh")
        .args(["-c", &format!("echo > {}/probe", dir.display())])
        .output()
        .unwrap();
    assert!(
        !probe.status.success(),
        "the user the commands run as can write the directory, so this test would prove nothing"
    );
    let before = std::fs::read(&journal).unwrap();
    for args in [
        &["status", SERVICE, "--json"][..],
        &["list", "--json"],
        &["log", SERVICE, "--json"],
        &["journal", "export"],
        &["check", SERVICE, "--json"],
    ] {
        let mut cmd = unprivileged(env!("CARGO_BIN_EXE_canary"));
        cmd.arg("--journal").arg(&journal).args(args);
        let out = common::Output::new(args, cmd.output().unwrap());
        let theirs = sandbox.canary(args).ok();
        assert_eq!(out.code, 0, "{out}");
        assert_eq!(out.stdout, theirs.stdout, "{}", args.join(" "));
    }
    let beside: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, ["journal.db"]);
    assert_eq!(std::fs::read(&journal).unwrap(), before);
    set_mode(&dir, 0o755);
}

/// The first `canary list` on a machine that never started a release (no journal, not even its
/// directory) is no error: it says there are no releases, exits 0, and creates nothing.
#[test]
fn the_first_list_on_a_new_machine_says_no_releases_and_creates_nothing() {
    let sandbox = Sandbox::new();
    let before = common::read_tree(sandbox.tmp.path());
    let out = sandbox.canary_raw(&["list"]).ok();
    assert!(out.stdout.starts_with("No releases"), "{out}");
    assert_eq!(out.stderr, "", "{out}");
    let out = sandbox.canary_raw(&["list", "--all", "--json"]).ok();
    assert_eq!(out.json(), serde_json::json!([]), "{out}");
    assert_eq!(out.stderr, "", "{out}");
    assert!(
        common::read_tree(sandbox.tmp.path()) == before,
        "listing created files"
    );
    assert!(
        !sandbox.home.join(".local/share/canary").exists(),
        "listing created the journal's directory"
    );
}
