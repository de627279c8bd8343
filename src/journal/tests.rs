use super::*;

fn config(service: &str) -> Settings {
    Settings::example(service, "production")
}

#[test]
fn a_fresh_journal_is_created_migrated_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/journal.db");
    let mut journal = Journal::open(&path, "alice").unwrap();
    let release = journal
        .open_release(&config("svc"), &Position::default(), &[None])
        .unwrap();
    drop(journal);
    let journal = Journal::open(&path, "bob").unwrap();
    let again = journal.in_flight("svc").unwrap().unwrap();
    assert_eq!(again.id, release.id);
    assert_eq!(again.config, config("svc"));
    let events = journal.events(release.id).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].kind.as_str(), events[0].operator.as_str()),
        ("opened", "alice")
    );
    let mode: String = journal
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_newer_journal_is_refused_and_left_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let err = Journal::open(&path, "a").err().unwrap();
    assert!(
        matches!(err, JournalError::Newer { version: 99, .. }),
        "{err}"
    );
    assert!(Journal::open_read_only(&path, "a").is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_and_left_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, &bytes).unwrap();
    let err = Journal::open(&path, "a").err().unwrap();
    assert!(matches!(err, JournalError::NotAJournal { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert!(!dir.path().join("journal.db-wal").exists());
}

#[test]
fn one_release_per_service_is_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("j.db"), "a").unwrap();
    journal
        .open_release(&config("svc"), &Position::default(), &[None])
        .unwrap();
    assert!(
        journal
            .open_release(&config("svc"), &Position::default(), &[None])
            .is_err()
    );
    journal
        .open_release(&config("other"), &Position::default(), &[None])
        .unwrap();
    assert_eq!(journal.releases(false).unwrap().len(), 2);
}

#[test]
fn an_update_applies_only_to_the_position_it_was_computed_from() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("j.db"), "a").unwrap();
    let release = journal
        .open_release(&config("svc"), &Position::default(), &[None])
        .unwrap();
    let moved = Position {
        index: 1,
        ..Position::default()
    };
    let update = || Update {
        events: vec![NewEvent::new("files-written", serde_json::json!({}))],
        position: Some((moved.clone(), Phase::DeployV1)),
        in_progress: Some(None),
        written: vec![("gap/gap.yaml".into(), Some("ab".into()))],
        config: None,
        v2_weights: Some(vec![Some(30)]),
        committed: Vec::new(),
    };
    assert_eq!(release.v2_weights, Some(vec![None]));
    let after = journal.record(&release, update()).unwrap();
    assert_eq!(after.position, moved);
    assert_eq!(after.v2_weights, Some(vec![Some(30)]));
    assert_eq!(
        journal.last_written(release.id, "gap/gap.yaml").unwrap(),
        Some(Some("ab".into()))
    );
    // A second writer that read the old position loses, and nothing of its update lands.
    assert!(matches!(
        journal.record(&release, update()),
        Err(JournalError::Corrupt { .. })
    ));
    assert_eq!(journal.events(release.id).unwrap().len(), 2);
}

#[test]
fn a_commit_is_recorded_for_the_content_it_holds_and_forgotten_when_the_file_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("j.db"), "a").unwrap();
    let release = journal
        .open_release(&config("svc"), &Position::default(), &[None])
        .unwrap();
    let write = |sha: &str| Update {
        events: vec![NewEvent::new("files-written", serde_json::json!({}))],
        written: vec![
            ("gap/gap.yaml".into(), Some(sha.into())),
            ("gap/old.yaml".into(), None),
        ],
        ..Update::default()
    };
    let commit = |id: &str| Update {
        events: vec![NewEvent::new(
            "committed",
            serde_json::json!({ "commit": id }),
        )],
        committed: vec![(
            id.into(),
            vec!["gap/gap.yaml".into(), "gap/old.yaml".into()],
        )],
        ..Update::default()
    };
    let files = |journal: &Journal| -> Vec<(Option<String>, Option<String>)> {
        journal
            .written_files(release.id)
            .unwrap()
            .into_iter()
            .map(|f| (f.sha256, f.commit))
            .collect()
    };
    let release = journal.record(&release, write("ab")).unwrap();
    assert_eq!(files(&journal), [(Some("ab".into()), None), (None, None)]);
    let release = journal.record(&release, commit("c1")).unwrap();
    assert_eq!(
        files(&journal),
        [
            (Some("ab".into()), Some("c1".into())),
            (None, Some("c1".into()))
        ]
    );
    journal.record(&release, write("cd")).unwrap();
    assert_eq!(files(&journal), [(Some("cd".into()), None), (None, None)]);
}

#[test]
fn a_journal_is_backed_up_before_a_migration_changes_it() {
    const FIRST: &migrate::Migrations = &[("0001_a.sql", "CREATE TABLE a (x);")];
    const BOTH: &migrate::Migrations = &[
        ("0001_a.sql", "CREATE TABLE a (x);"),
        ("0002_b.sql", "CREATE TABLE b (y);"),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let journal = Journal::open_with(&path, "a", FIRST).unwrap();
    journal
        .conn
        .execute("INSERT INTO a VALUES (42)", [])
        .unwrap();
    drop(journal);
    let backup = dir.path().join("journal.db.bak-1");
    assert!(!backup.exists(), "a fresh journal needs no backup");

    let journal = Journal::open_with(&path, "a", BOTH).unwrap();
    assert_eq!(migrate::user_version(&journal.conn).unwrap(), 2);
    let copy = Connection::open(&backup).unwrap();
    assert_eq!(migrate::user_version(&copy).unwrap(), 1);
    let kept: i64 = copy.query_row("SELECT x FROM a", [], |r| r.get(0)).unwrap();
    assert_eq!(kept, 42);
    let tables: i64 = copy
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'b'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        tables, 0,
        "the backup is of the journal before the migration"
    );
}

#[test]
fn read_queries_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("journal.db"), "alice").unwrap();
    let plan = |sql: &str| -> String {
        let mut stmt = journal
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let rows = stmt.query_map([], |row| row.get::<_, String>(3)).unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("; ")
    };
    for (sql, index) in [
        (
            format!("{SELECT_RELEASE} {IN_FLIGHT_OF}"),
            "releases_in_flight",
        ),
        (
            format!("{SELECT_RELEASE} {LATEST_OF}"),
            "releases_by_service",
        ),
        (
            format!("{SELECT_RELEASE} {IN_FLIGHT}"),
            "releases_in_flight_by_id",
        ),
        (EVENTS_OF.to_string(), "events_by_release"),
        (LAST_EVENT_OF.to_string(), "events_by_release"),
    ] {
        let sql = sql
            .replace("service = ?1", "service = 'svc'")
            .replace("release_id = ?1", "release_id = 1");
        let plan = plan(&sql);
        assert!(
            format!("{plan} ").contains(&format!("INDEX {index} "))
                && !plan.contains("TEMP B-TREE"),
            "{sql}\n  is planned as: {plan}"
        );
    }
}

#[test]
fn the_immutable_uri_names_the_journal_whatever_its_path_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a b?#%é.db");
    let journal = Journal::open(&path, "alice").unwrap();
    journal
        .conn
        .pragma_update(None, "journal_mode", "DELETE")
        .unwrap();
    drop(journal);
    let uri = immutable_uri(&path);
    assert!(
        uri.ends_with("/a%20b%3F%23%25%C3%A9.db?immutable=1"),
        "{uri}"
    );
    let conn = Connection::open_with_flags(
        &uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )
    .unwrap();
    assert_eq!(migrate::user_version(&conn).unwrap(), migrate::latest());
    let beside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(beside.len(), 1, "{beside:?}");
}
