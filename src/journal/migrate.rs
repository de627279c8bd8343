//! Schema migrations: `migrations/NNNN_name.sql`, embedded at build time, applied in order in one
//! exclusive transaction and tracked by `PRAGMA user_version`. A migration is never removed or
//! reordered, only appended.

use rusqlite::{Connection, TransactionBehavior};

use super::JournalError;

pub const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_journal.sql",
        include_str!("../../migrations/0001_journal.sql"),
    ),
    (
        "0002_cluster_events.sql",
        include_str!("../../migrations/0002_cluster_events.sql"),
    ),
    (
        "0003_read_indexes.sql",
        include_str!("../../migrations/0003_read_indexes.sql"),
    ),
    (
        "0004_listing_columns.sql",
        include_str!("../../migrations/0004_listing_columns.sql"),
    ),
    (
        "0005_pushes.sql",
        include_str!("../../migrations/0005_pushes.sql"),
    ),
    (
        "0006_gate.sql",
        include_str!("../../migrations/0006_gate.sql"),
    ),
    (
        "0007_cancel.sql",
        include_str!("../../migrations/0007_cancel.sql"),
    ),
    (
        "0008_notify.sql",
        include_str!("../../migrations/0008_notify.sql"),
    ),
    (
        "0009_webhooks.sql",
        include_str!("../../migrations/0009_webhooks.sql"),
    ),
    (
        "0010_gate_index.sql",
        include_str!("../../migrations/0010_gate_index.sql"),
    ),
];

/// The schema version this binary writes.
pub fn latest() -> u32 {
    MIGRATIONS.len() as u32
}

pub type Migrations = [(&'static str, &'static str)];

pub fn user_version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Bring the schema up to date. The caller has already refused a journal newer than it knows;
/// the check is repeated inside the transaction because another process may have migrated it.
pub fn migrate(conn: &mut Connection, migrations: &Migrations) -> Result<(), JournalError> {
    let latest = migrations.len() as u32;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    let version = user_version(&tx)?;
    if version > latest {
        return Err(JournalError::Newer {
            version,
            known: latest,
        });
    }
    if version < latest {
        for (_, sql) in &migrations[version as usize..] {
            tx.execute_batch(sql)?;
        }
        // Only when something changed: setting it rewrites the header even to the same value,
        // and a command that changes nothing must leave the journal byte for byte as it was.
        tx.pragma_update(None, "user_version", latest)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_registered_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let registered: Vec<&str> = MIGRATIONS.iter().map(|(name, _)| *name).collect();
        assert_eq!(files, registered);
        for (i, name) in registered.iter().enumerate() {
            assert!(
                name.starts_with(&format!("{:04}_", i + 1)),
                "{name} out of order"
            );
        }
    }

    #[test]
    fn migrating_twice_is_a_no_op_and_sets_the_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, MIGRATIONS).unwrap();
        migrate(&mut conn, MIGRATIONS).unwrap();
        assert_eq!(user_version(&conn).unwrap(), latest());
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        // releases, events, written_files and (schema 9) webhooks.
        assert_eq!(tables, 4);
    }

    #[test]
    fn version_2_widens_the_event_kinds_and_keeps_every_row() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn.execute_batch(MIGRATIONS[0].1).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "INSERT INTO releases VALUES (1, 's', '{}', '{}', 'ramp', NULL, 't', 't', NULL);
             INSERT INTO events VALUES (7, 1, 't', 'a', 'opened', 'deploy-v1', '{}');
             INSERT INTO events VALUES (9, 1, 't', 'a', 'files-written', 'deploy-v1', '{}');
             INSERT INTO written_files VALUES (1, 'gap/gap.yaml', 'abc', 9);",
        )
        .unwrap();
        let live =
            "INSERT INTO events VALUES (10, 1, 't', 'a', 'live-weight-changed', 'ramp', '{}')";
        assert!(
            conn.execute_batch(live).is_err(),
            "version 1 accepts any kind"
        );
        migrate(&mut conn, MIGRATIONS).unwrap();
        assert_eq!(user_version(&conn).unwrap(), latest());
        conn.execute_batch(live).unwrap();
        let ids: Vec<i64> = conn
            .prepare("SELECT id FROM events ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(ids, [7, 9, 10]);
        let written: (String, i64) = conn
            .query_row("SELECT path, event_id FROM written_files", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(written, ("gap/gap.yaml".to_string(), 9));
        let broken: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(broken, 0);
        assert!(
            conn.execute_batch(
                "INSERT INTO events VALUES (11, 1, 't', 'a', 'bogus', 'ramp', '{}')"
            )
            .is_err()
        );
    }

    #[test]
    fn version_7_takes_cancelled_events_and_keeps_a_version_6_journal_whole() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        migrate(&mut conn, &MIGRATIONS[..6]).unwrap();
        conn.execute_batch(
            "INSERT INTO releases (id, service, config, position, phase, opened_at, updated_at)
                 VALUES (1, 's', '{}', '{}', 'ramp', 't', 't');
             INSERT INTO events VALUES (7, 1, 't', 'a', 'gate-evaluated', 'ramp', '{}');
             INSERT INTO written_files VALUES (1, 'gap/gap.yaml', 'abc', 7, 'c0ffee');",
        )
        .unwrap();
        let cancelled = "INSERT INTO events VALUES (8, 1, 't', 'a', 'cancelled', 'ramp', '{}')";
        assert!(conn.execute_batch(cancelled).is_err(), "version 6 took it");
        migrate(&mut conn, MIGRATIONS).unwrap();
        conn.execute_batch(cancelled).unwrap();
        let written: (String, i64, String) = conn
            .query_row(
                "SELECT path, event_id, commit_id FROM written_files",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(
            written,
            ("gap/gap.yaml".to_string(), 7, "c0ffee".to_string())
        );
        let kinds: Vec<String> = conn
            .prepare("SELECT kind FROM events ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(kinds, ["gate-evaluated", "cancelled"]);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", latest() + 1)
            .unwrap();
        assert!(matches!(
            migrate(&mut conn, MIGRATIONS),
            Err(JournalError::Newer { version, .. }) if version == latest() + 1
        ));
    }
}
