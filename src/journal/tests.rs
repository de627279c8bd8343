use super::*;

fn config(service: &str) -> Settings {
    Settings::example(service, "production")
}

/// A new journal in a directory of its own (kept while the guard lives) holding one release of
/// `service`, in flight at the plan's start.
fn one_release(service: &str) -> (tempfile::TempDir, Journal, Release) {
    let dir = tempfile::tempdir().unwrap();
    let mut journal = Journal::open(&dir.path().join("journal.db"), "a").unwrap();
    let release = journal
        .open_release(&config(service), &Position::default(), &[None])
        .unwrap();
    (dir, journal, release)
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
        (events[0].event.kind(), events[0].operator.as_str()),
        ("opened", "alice")
    );
    let mode: String = journal
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // Readable by its owner only, and so are the files SQLite keeps beside it.
    for file in ["sub/journal.db", "sub/journal.db-wal", "sub/journal.db-shm"] {
        assert_eq!(permissions(&dir.path().join(file)), 0o600, "{file}");
    }
}

fn permissions(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_journal_someone_made_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    std::fs::write(&path, "").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    Journal::open(&path, "a").unwrap();
    assert_eq!(permissions(&path), 0o640);
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
    let (_dir, mut journal, release) = one_release("svc");
    let moved = Position {
        index: 1,
        ..Position::default()
    };
    let update = || Update {
        events: vec![Event::FilesWritten { files: Vec::new() }],
        position: Some((moved.clone(), Phase::DeployV1)),
        in_progress: Some(None),
        written: vec![("gap/gap.yaml".into(), Some("ab".into()))],
        config: None,
        v2_weights: Some(vec![Some(30)]),
        committed: Vec::new(),
        webhooks: None,
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
    let (_dir, mut journal, release) = one_release("svc");
    let write = |sha: &str| Update {
        events: vec![Event::FilesWritten { files: Vec::new() }],
        written: vec![
            ("gap/gap.yaml".into(), Some(sha.into())),
            ("gap/old.yaml".into(), None),
        ],
        ..Update::default()
    };
    let commit = |id: &str| Update {
        events: vec![Event::Committed(Committed {
            commit: id.into(),
            message: String::new(),
            paths: Vec::new(),
            recognised: None,
        })],
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
    assert_eq!(
        permissions(&backup),
        0o600,
        "the backup is as private as the journal"
    );
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
        (
            LAST_GATE_EVALUATION_OF.to_string(),
            "events_gate_by_release",
        ),
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

/// The index of gate evaluations names the kind the journal writes for them: the newest
/// evaluation is found among later events of other kinds, and a release without one has none.
#[test]
fn the_last_gate_evaluation_is_found_among_later_events() {
    let (_dir, mut journal, release) = one_release("web");
    assert!(journal.last_gate_evaluation(release.id).unwrap().is_none());
    let evaluated = |weight| Event::GateEvaluated {
        env: "production".into(),
        v2_weight: Some(weight),
        verdict: crate::gate::Verdict::unrouted("production"),
        checks_sha256: None,
    };
    let release = journal
        .record(
            &release,
            Update {
                events: vec![
                    evaluated(5),
                    evaluated(10),
                    Event::WeightChanged {
                        env: "production".into(),
                        v2_weight: 25,
                    },
                ],
                ..Update::default()
            },
        )
        .unwrap();
    let last = journal.last_gate_evaluation(release.id).unwrap().unwrap();
    assert_eq!(last.event, evaluated(10));
}

#[test]
fn files_written_reads_those_events_alone_oldest_first() {
    let (_dir, mut journal, release) = one_release("web");
    let written = |path: &str| Event::FilesWritten {
        files: vec![crate::journal::PlannedFile {
            path: path.into(),
            before: None,
            after: Some("8775".into()),
            weights: None,
        }],
    };
    let release = journal
        .record(
            &release,
            Update {
                events: vec![
                    written("gap/gap.yaml"),
                    Event::WeightChanged {
                        env: "production".into(),
                        v2_weight: 25,
                    },
                    written("gap/production/gap_patch_canary_virtual_service.yaml"),
                ],
                ..Update::default()
            },
        )
        .unwrap();
    let events =
        |records: Vec<Record>| -> Vec<Event> { records.into_iter().map(|r| r.event).collect() };
    let alone = events(journal.files_written(release.id).unwrap());
    let mut filtered = events(journal.events(release.id).unwrap());
    filtered.retain(|e| matches!(e, Event::FilesWritten { .. }));
    assert_eq!(alone.len(), 2);
    assert_eq!(alone, filtered);
    assert_eq!(alone[0], written("gap/gap.yaml"));
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

/// Every kind of event in the words of the canary that wrote it, from the schema version that
/// took it on: the optional fields of later canaries left out where they came later.
const EVENTS_OF_EVERY_VERSION: &[(u32, &str, &str)] = &[
    (
        1,
        "step-started",
        r#"{"files":[{"after":"8775","before":"e38d","path":"gap/gap.yaml"}],"step":"add the pinned web-v1 deployment and the version labels"}"#,
    ),
    (
        1,
        "step-started",
        r#"{"files":[{"after":"469c","before":null,"path":"gap/production/gap_patch_canary_virtual_service.yaml","weights":[["v1",0],["v2",100]]}],"step":"add the VirtualService patches and the Service patch"}"#,
    ),
    (
        1,
        "files-written",
        r#"{"files":[{"after":null,"before":"8775","path":"gap/gap_canary_destination_rule.yaml"}]}"#,
    ),
    (
        1,
        "step-done",
        r#"{"changed":true,"step":"add the pinned web-v1 deployment and the version labels"}"#,
    ),
    (
        1,
        "step-done",
        r#"{"changed":false,"step":"route 100% of traffic to v1"}"#,
    ),
    (1, "step-done", r#"{"env":"staging","step":"v2 tested"}"#),
    (
        1,
        "step-done",
        r#"{"answered":"--yes","step":"observed","weight":5}"#,
    ),
    (
        1,
        "step-done",
        r#"{"image":"registry/web@sha256:be6b","step":"v1 image checked"}"#,
    ),
    (
        1,
        "step-done",
        r#"{"image":"registry/web@sha256:be6b","step":"v1 image checked","verified":["staging","production"]}"#,
    ),
    (
        1,
        "deploy-confirmed",
        r#"{"after":{"edit":"deploy-v1"},"env":"staging"}"#,
    ),
    (
        1,
        "deploy-confirmed",
        r#"{"after":{"edit":"routing-subsets"},"answered":"--yes","env":"production"}"#,
    ),
    (
        1,
        "deploy-confirmed",
        r#"{"answered":"terminal","env":"staging","what":"v2 code"}"#,
    ),
    (
        1,
        "deploy-confirmed",
        r#"{"after":{"edit":"route-to-v1"},"context":"kind-staging","env":"staging","note":"confirmed without verification (--no-verify)","verified":false}"#,
    ),
    (
        1,
        "deploy-confirmed",
        r#"{"after":{"edit":"deploy-v1"},"context":"kind-production","env":"production","verified":true}"#,
    ),
    (
        1,
        "deploy-confirmed",
        r#"{"after":{"edit":"deploy-v1"},"argocd":{"application":"argocd/web","health":"Healthy","prunes":false,"revision":"1a2b3c","sync":"Synced"},"context":"kind-production","env":"production","verified":true}"#,
    ),
    (
        1,
        "weight-changed",
        r#"{"env":"production","v2_weight":10}"#,
    ),
    (1, "aborted", r#"{"to":"v1"}"#),
    (1, "aborted", r#"{"by":"gate","to":"v1"}"#),
    (
        1,
        "repinned",
        r#"{"from":"registry/web@sha256:be6b","to":"registry/web@sha256:c0ff"}"#,
    ),
    (
        1,
        "committed",
        r#"{"commit":"0cd292bc","message":"canary(my-service): deploy-v1: add the pinned web-v1 deployment","paths":["gap/gap.yaml"]}"#,
    ),
    (
        1,
        "committed",
        r#"{"commit":"4e54ad5b","message":"canary(my-service): add-routing: add the DestinationRule","paths":["gap/gap.yaml"],"recognised":true,"was":null}"#,
    ),
    (
        1,
        "committed",
        r#"{"commit":"4e54ad5b","message":"canary(my-service): add-routing: add the DestinationRule","paths":[],"recognised":true,"was":"0cd292bc"}"#,
    ),
    (1, "finished", "{}"),
    (
        2,
        "live-weight-changed",
        r#"{"before":[["v1",90],["v2",10]],"context":"kind-production","env":"production","v2_weight":25,"virtual_service":"my-service"}"#,
    ),
    (
        2,
        "context-set",
        r#"{"env":"staging","from":null,"to":"kind-staging"}"#,
    ),
    (
        2,
        "context-set",
        r#"{"argocd_from":"argocd/x","argocd_to":null,"env":"production","from":"a","hosts_from":["a.example.com"],"hosts_to":["b.example.com"],"prometheus_from":null,"prometheus_to":"http://p:9090","to":"a"}"#,
    ),
    (
        5,
        "pushed",
        r#"{"branch":"main","commit":"0cd292bc","to":"origin/main"}"#,
    ),
    (
        6,
        "gate-evaluated",
        r#"{"env":"production","v2_weight":5,"verdict":{"checks":[{"limit":">= 99%","name":"success rate","passed":true,"unit":"%","v1":99.9,"v1_passed":true,"v2":99.8999999},{"limit":"<= v1 + 50 ms","name":"p99 latency vs v1","passed":false,"unit":"ms","v1":74.99999999999983,"v2":null}],"incident":false,"outcome":"fail","range_secs":300,"reason":"p99 latency vs v1 fails","z_test":{"confidence":0.95,"p_value":0.5,"z":0.1}}}"#,
    ),
    (
        6,
        "gate-evaluated",
        r#"{"env":"production","v2_weight":1,"verdict":{"checks":[],"incident":false,"outcome":"not-enough-traffic","range_secs":60,"reason":"too few requests"}}"#,
    ),
    (
        7,
        "cancelled",
        r#"{"answered":null,"left":[],"step":"add the pinned web-v1 deployment and the version labels"}"#,
    ),
    (
        7,
        "cancelled",
        r#"{"answered":"--yes","left":["gap/gap.yaml"],"step":"deploy to staging"}"#,
    ),
    (
        7,
        "settings-changed",
        r#"{"namespace_from":"a","namespace_to":"b"}"#,
    ),
    (
        7,
        "settings-changed",
        r#"{"gate":{"min_requests":{"from":100,"to":50},"window_secs":{"from":300,"to":600}}}"#,
    ),
    (
        9,
        "settings-changed",
        r#"{"webhooks_from":[],"webhooks_to":["https://hooks.example/…"]}"#,
    ),
    (
        8,
        "notify-failed",
        r#"{"about":"step-done","attempts":3,"error":"HTTP 500","to":"https://hooks.example/…"}"#,
    ),
];

/// A step in progress as the canary of schema 6 left it (the fixture's binary).
const IN_PROGRESS: &str = r#"{"action":{"action":"complete","changed":true},"files":[{"after":"9d9c","before":"469c","path":"gap/production/gap_patch_canary_virtual_service.yaml","weights":[["v1",100],["v2",0]]}],"job":{"edit":{"edit":"route-to-v1"},"job":"step"},"phase":"route-to-v1","what":"route 100% of traffic to v1"}"#;

/// Every event of every release in the journal at `path`, each decoded into an [`Event`]
/// whose detail is the stored one, and the stored steps in progress, read back as they are.
fn every_event_reads_back_as_stored(path: &Path) -> usize {
    let journal = Journal::open(path, "reader").unwrap();
    let mut read = 0;
    for release in journal.releases(true).unwrap() {
        let stored: Vec<(String, String)> = journal
            .conn
            .prepare("SELECT kind, detail FROM events WHERE release_id = ?1 ORDER BY id")
            .unwrap()
            .query_map([release.id], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let entries = journal.events(release.id).unwrap();
        assert_eq!(entries.len(), stored.len());
        for (entry, (kind, detail)) in entries.iter().zip(&stored) {
            assert_eq!(entry.event.kind(), kind);
            assert_eq!(
                entry.event.detail(),
                serde_json::from_str::<serde_json::Value>(detail).unwrap(),
                "{kind} {detail}"
            );
            // As this canary writes it: the same text, byte for byte.
            let normal = serde_json::from_str::<serde_json::Value>(detail).unwrap();
            assert_eq!(json(&entry.event.detail()), json(&normal));
            read += 1;
        }
        let in_progress: Option<String> = journal
            .conn
            .query_row(
                "SELECT step_in_progress FROM releases WHERE id = ?1",
                [release.id],
                |r| r.get(0),
            )
            .unwrap();
        if let Some(text) = in_progress {
            let normal = serde_json::from_str::<serde_json::Value>(&text).unwrap();
            assert_eq!(
                sorted_json(release.in_progress.as_ref().unwrap()),
                json(&normal)
            );
        }
    }
    read
}

#[test]
fn a_journal_of_every_schema_version_reads_every_event_and_step_in_progress_it_holds() {
    for version in 1..=migrate::latest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate::migrate(&mut conn, &migrate::MIGRATIONS[..version as usize]).unwrap();
        conn.execute(
            "INSERT INTO releases (id, service, config, position, phase, step_in_progress,
                 opened_at, updated_at)
             VALUES (1, 'svc', ?1, ?2, 'route-to-v1', ?3, 't', 't')",
            params![
                json(&config("svc")),
                json(&Position::default()),
                IN_PROGRESS
            ],
        )
        .unwrap();
        let mut events = vec![("opened", json(&config("svc")))];
        events.extend(
            EVENTS_OF_EVERY_VERSION
                .iter()
                .filter(|(since, ..)| *since <= version)
                .map(|(_, kind, detail)| (*kind, detail.to_string())),
        );
        for (kind, detail) in &events {
            conn.execute(
                "INSERT INTO events (release_id, at, operator, kind, phase, detail)
                 VALUES (1, 't', 'a', ?1, 'route-to-v1', ?2)",
                params![kind, detail],
            )
            .unwrap();
        }
        drop(conn);
        assert_eq!(
            every_event_reads_back_as_stored(&path),
            events.len(),
            "schema {version}"
        );
    }
    // Every kind the latest schema takes has a sample.
    let kinds: std::collections::BTreeSet<&str> = EVENTS_OF_EVERY_VERSION
        .iter()
        .map(|(_, kind, _)| *kind)
        .chain(["opened"])
        .collect();
    assert_eq!(kinds.len(), 17);
}

/// The journal a real canary of schema 6 wrote (tests/fixtures/old-plan-deploy-v2).
#[test]
fn the_journal_an_older_canary_wrote_reads_every_event_as_it_stored_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/old-plan-deploy-v2/journal.db");
    std::fs::copy(fixture, &path).unwrap();
    assert!(every_event_reads_back_as_stored(&path) > 20);
}

#[test]
fn each_event_s_kind_is_its_serde_tag() {
    for (_, kind, detail) in EVENTS_OF_EVERY_VERSION {
        let event = Event::from_columns(kind, detail).unwrap();
        let tagged = serde_json::to_value(&event).unwrap();
        assert_eq!(tagged["kind"], *kind);
        assert_eq!(event.kind(), *kind);
    }
    for outcome in [
        crate::gate::verdict::Outcome::Pass,
        crate::gate::verdict::Outcome::Fail,
        crate::gate::verdict::Outcome::NotEnoughTraffic,
        crate::gate::verdict::Outcome::NotEnoughTime,
        crate::gate::verdict::Outcome::CannotJudge,
    ] {
        assert_eq!(serde_json::to_value(outcome).unwrap(), outcome.key());
    }
}

#[test]
fn an_event_whose_detail_does_not_fit_its_kind_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.db");
    let mut journal = Journal::open(&path, "a").unwrap();
    let release = journal
        .open_release(&config("svc"), &Position::default(), &[None])
        .unwrap();
    journal
        .conn
        .execute(
            "INSERT INTO events (release_id, at, operator, kind, phase, detail)
             VALUES (?1, 't', 'a', 'pushed', 'deploy-v1', '{}')",
            [release.id],
        )
        .unwrap();
    assert!(matches!(
        journal.events(release.id),
        Err(JournalError::Corrupt { .. })
    ));
}

/// A row reads only as exactly one event: a kind no canary wrote, text after the detail's
/// value, or a field of another type is an error, never an event.
#[test]
fn a_row_reads_as_one_event_or_not_at_all() {
    let good = r#"{"env":"staging","what":"v1"}"#;
    assert!(Event::from_columns("deploy-confirmed", good).is_ok());
    assert!(Event::from_columns("deploy-confirmed", &format!("{good} ")).is_ok());
    for (kind, detail) in [
        ("deploy-confirmed", format!("{good} {{}}")),
        (
            "deploy-confirmed",
            format!("{good}, \"kind\": \"finished\""),
        ),
        ("deploy-confirmed", r#"{"env":5}"#.to_string()),
        ("deploy-confirmed", String::new()),
        ("deployed", good.to_string()),
        ("", good.to_string()),
    ] {
        assert!(
            Event::from_columns(kind, &detail).is_err(),
            "{kind} {detail} read as an event"
        );
    }
}

/// The time since a deploy is read off the newest deploy to that environment, through the
/// typed event: an older deploy there, or a newer one elsewhere, does not count.
#[test]
fn the_time_since_a_deploy_is_that_of_the_newest_deploy_to_that_environment() {
    let (_dir, mut journal, mut release) = one_release("svc");
    let mut deploy = |journal: &mut Journal, env: &str| {
        let event = Event::DeployConfirmed(event::DeployConfirmed {
            env: env.into(),
            ..Default::default()
        });
        release = journal
            .record(
                &release,
                Update {
                    events: vec![event],
                    ..Update::default()
                },
            )
            .unwrap();
        release.id
    };
    let id = deploy(&mut journal, "production");
    journal
        .conn
        .execute(
            "UPDATE events SET at = '2000-01-01T00:00:00.000Z' WHERE kind = 'deploy-confirmed'",
            [],
        )
        .unwrap();
    let since = |journal: &Journal, env: &str| journal.seconds_since_deploy(id, env).unwrap();
    assert!(since(&journal, "production").unwrap() > 20 * 365 * 86_400);
    deploy(&mut journal, "staging");
    assert!(since(&journal, "production").unwrap() > 20 * 365 * 86_400);
    assert!(since(&journal, "staging").unwrap() < 3_600);
    deploy(&mut journal, "production");
    assert!(since(&journal, "production").unwrap() < 3_600);
    assert_eq!(since(&journal, "qa"), None);
}
