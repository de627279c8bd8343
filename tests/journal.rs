//! `canary journal check` and `canary journal export` on a real journal.

mod common;

use common::{SERVICE, Sandbox};

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
