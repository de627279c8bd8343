//! The local SQLite journal: every release and its append-only events. A release's position is
//! updated in the same transaction as the events that move it, so the two never disagree.

mod event;
mod migrate;

pub use event::{
    AppReport, Change, Committed, ContextSet, DeployConfirmed, Event, InProgress, PlannedFile,
    Recognition, Record, SettingsChanged, StepDone,
};

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::error::{ExportError, JournalError};
use crate::operator::Operator;
use crate::settings::Settings;
use crate::workflow::{Phase, Position};

/// How long a writer waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The columns [`release_from_row`] reads, in its order.
macro_rules! release_columns {
    () => {
        "id, config, position, phase, step_in_progress, opened_at, updated_at, finished_at,
         v2_weights"
    };
}

type Result<T> = std::result::Result<T, JournalError>;

/// A release as the journal holds it.
#[derive(Debug, Clone)]
pub struct Release {
    pub id: i64,
    pub config: Settings,
    pub position: Position,
    pub phase: Phase,
    pub in_progress: Option<InProgress>,
    /// Each environment's v2 weight as canary last wrote the files (`None` inside: no canary
    /// route); `None` for a release whose journal predates the record, until its next write.
    pub v2_weights: Option<Vec<Option<u8>>>,
    pub opened_at: String,
    pub updated_at: String,
    pub finished_at: Option<String>,
}

impl Release {
    /// Ended by `canary cancel`: finished before its phase reached done.
    pub fn is_cancelled(&self) -> bool {
        self.finished_at.is_some() && self.phase != Phase::Done
    }
}

/// A release as a table of releases shows it, borrowed from its row, its JSON undecoded: a
/// table of many releases decodes each distinct text once.
#[derive(Debug)]
pub struct Summary<'a> {
    pub service: &'a str,
    /// JSON of the release's [`crate::workflow::Shape`].
    pub shape: &'a str,
    /// JSON of the release's [`Position`].
    pub position: &'a str,
    /// JSON of [`Release::v2_weights`].
    pub v2_weights: Option<&'a str>,
    /// The configuration's JSON, undecoded, only when `v2_weights` is not recorded: the
    /// weights must then be read from the files.
    pub config: Option<&'a str>,
    /// Ended by `canary cancel`.
    pub cancelled: bool,
}

/// Everything one transaction changes about a release.
#[derive(Debug, Default)]
pub struct Update {
    pub events: Vec<Event>,
    /// The new position and its phase, if it moves.
    pub position: Option<(Position, Phase)>,
    /// `Some(None)` clears the step in progress, `Some(Some(_))` sets it.
    pub in_progress: Option<Option<InProgress>>,
    /// Files written: path and sha256 of the new content (`None`: deleted).
    pub written: Vec<(String, Option<String>)>,
    /// A changed configuration (a re-pinned v1 image).
    pub config: Option<Settings>,
    /// Each environment's v2 weight, after files were written.
    pub v2_weights: Option<Vec<Option<u8>>>,
    /// Commits of canary's (made, or found rewritten), oldest first, each with the files whose
    /// last written content it holds.
    pub committed: Vec<(String, Vec<String>)>,
    /// The release's webhooks, all of them, in place of those it had.
    pub webhooks: Option<Vec<String>>,
}

/// A file canary wrote in a release, as it last wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub path: String,
    /// sha256 of the content; `None`: canary deleted the file.
    pub sha256: Option<String>,
    /// The full id of the commit canary made of it; `None` until it commits it.
    pub commit: Option<String>,
}

pub struct Journal {
    conn: Connection,
    operator: Operator,
}

const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

/// How much of a journal [`Journal::map_into_memory`] maps (SQLite's default limit is 2 GiB).
const READ_MAP_BYTES: i64 = 1 << 30;

impl Journal {
    /// Open (creating if needed) and migrate the journal. A file that is not SQLite, or whose
    /// schema is newer than this binary knows, is refused before anything is written to it.
    pub fn open(path: &Path, operator: impl Into<Operator>) -> Result<Journal> {
        Journal::open_with(path, operator, migrate::MIGRATIONS)
    }

    fn open_with(
        path: &Path,
        operator: impl Into<Operator>,
        migrations: &migrate::Migrations,
    ) -> Result<Journal> {
        let latest = migrations.len() as u32;
        let io = |cause| JournalError::Io {
            path: path.display().to_string(),
            cause,
        };
        check_header(path).map_err(io)??;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        create_private(path).map_err(io)?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let version = migrate::user_version(&conn).map_err(|e| not_a_journal(path, e))?;
        if version > latest {
            return Err(JournalError::Newer {
                version,
                known: latest,
            });
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        if version > 0 && version < latest {
            back_up(&conn, path, version)?;
        }
        migrate::migrate(&mut conn, migrations)?;
        Ok(Journal {
            conn,
            operator: operator.into(),
        })
    }

    /// Open for reading only; `None` when there is no journal yet (nothing was ever started).
    pub fn open_read_only(path: &Path, operator: impl Into<Operator>) -> Result<Option<Journal>> {
        let Some((journal, version)) = Journal::open_as_it_is(path, operator)? else {
            return Ok(None);
        };
        // No schema at all (an empty file): nothing was ever started, and a read must not
        // write one.
        if version == 0 {
            return Ok(None);
        }
        if version < migrate::latest() {
            // An older journal is migrated by the next command that writes; until then, read
            // through a migrated connection so that queries see the current schema.
            let Journal { conn, operator } = journal;
            drop(conn);
            return Journal::open(path, operator).map(Some);
        }
        Ok(Some(journal))
    }

    /// Open for reading only, and never migrate: `None` when there is no journal yet, or when
    /// its schema is older than this canary's, or it has none (an empty file): reading it
    /// would mean migrating it, a write.
    pub fn open_if_current(path: &Path, operator: impl Into<Operator>) -> Result<Option<Journal>> {
        Ok(Journal::open_as_it_is(path, operator)?
            .and_then(|(journal, version)| (version == migrate::latest()).then_some(journal)))
    }

    /// The journal opened read-only as it is, with its schema version (0: none yet); `None`
    /// when there is no file. A journal newer than this canary is refused.
    fn open_as_it_is(path: &Path, operator: impl Into<Operator>) -> Result<Option<(Journal, u32)>> {
        if !path.exists() {
            return Ok(None);
        }
        let io = |cause| JournalError::Io {
            path: path.display().to_string(),
            cause,
        };
        check_header(path).map_err(io)??;
        let read = |uri: Option<String>| -> Result<(Connection, u32)> {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = match uri {
                Some(uri) => Connection::open_with_flags(uri, flags | OpenFlags::SQLITE_OPEN_URI),
                None => Connection::open_with_flags(path, flags),
            }?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            let version = migrate::user_version(&conn).map_err(|e| not_a_journal(path, e))?;
            Ok((conn, version))
        };
        // Reading a WAL journal takes its shared-memory file beside it, which SQLite cannot
        // create in a directory it may not write (a journal on a read-only mount, or someone
        // else's). With no write-ahead log there, the file alone is the whole journal: read it
        // as immutable, which creates nothing beside it.
        let (conn, version) = match read(None) {
            Err(JournalError::Sqlite(e))
                if matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::ReadOnly | rusqlite::ErrorCode::CannotOpen)
                ) && !has_write_ahead_log(path) =>
            {
                read(Some(immutable_uri(path)))?
            }
            other => other?,
        };
        if version > migrate::latest() {
            return Err(JournalError::Newer {
                version,
                known: migrate::latest(),
            });
        }
        let journal = Journal {
            conn,
            operator: operator.into(),
        };
        Ok(Some((journal, version)))
    }

    /// Read through a memory map from here on. For a command that reads many rows in a row
    /// (`list`): its pages are neither copied into SQLite's cache nor grow the heap, and
    /// `list` over a thousand releases takes 30% fewer page faults. A few scattered pages
    /// (`status`, `log`) cost less read the usual way. Only for reading: the map never holds
    /// a change of ours.
    pub fn map_into_memory(&self) -> Result<()> {
        self.conn.pragma_update(None, "mmap_size", READ_MAP_BYTES)?;
        Ok(())
    }

    /// Record a new release; `v2_weights` are its environments' as the repository has them.
    pub fn open_release(
        &mut self,
        config: &Settings,
        position: &Position,
        v2_weights: &[Option<u8>],
    ) -> Result<Release> {
        self.open_release_with_webhooks(config, position, v2_weights, &[])
    }

    /// [`Journal::open_release`], with the release's webhooks, each `(url, shown)`, recorded in
    /// the same transaction (the URL in the table of webhooks, the shown form in the event).
    pub fn open_release_with_webhooks(
        &mut self,
        config: &Settings,
        position: &Position,
        v2_weights: &[Option<u8>],
        webhooks: &[(String, String)],
    ) -> Result<Release> {
        // Before the transaction: working the name out may run git.
        let operator = self.operator.name(Some(&config.repo));
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // An adopted release opens past the start; its phase follows from its position.
        let phase = position.phase(&crate::workflow::plan(&config.shape()));
        tx.execute(
            "INSERT INTO releases (service, config, position, phase, v2_weights, shape, opened_at,
                 updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, strftime('%Y-%m-%dT%H:%M:%fZ'),
                 strftime('%Y-%m-%dT%H:%M:%fZ'))",
            params![
                config.service,
                json(config),
                json(position),
                phase.name(),
                json(&v2_weights),
                json(&config.shape())
            ],
        )?;
        let id = tx.last_insert_rowid();
        insert_event(
            &tx,
            id,
            operator,
            phase,
            &Event::Opened(Box::new(config.clone())),
        )?;
        if !webhooks.is_empty() {
            for (url, _) in webhooks {
                tx.execute(
                    "INSERT OR IGNORE INTO webhooks (release_id, url) VALUES (?1, ?2)",
                    params![id, url],
                )?;
            }
            let set = event::SettingsChanged {
                webhooks_from: Some(Vec::new()),
                webhooks_to: Some(webhooks.iter().map(|(_, shown)| shown.clone()).collect()),
                ..event::SettingsChanged::default()
            };
            insert_event(&tx, id, operator, phase, &Event::SettingsChanged(set))?;
        }
        tx.commit()?;
        self.release_by_id(id)
    }

    fn release_by_id(&self, id: i64) -> Result<Release> {
        self.conn
            .query_row(
                &format!("{SELECT_RELEASE} WHERE id = ?1"),
                [id],
                release_from_row,
            )?
            .map_err(|detail| JournalError::Corrupt {
                service: format!("release {id}"),
                detail,
            })
    }

    /// The release of this service in flight, if any.
    pub fn in_flight(&self, service: &str) -> Result<Option<Release>> {
        self.release_of(service, IN_FLIGHT_OF)
    }

    /// The most recent release of this service, in flight or finished.
    pub fn latest(&self, service: &str) -> Result<Option<Release>> {
        self.release_of(service, LATEST_OF)
    }

    /// The release of `service` that a query tail (`IN_FLIGHT_OF`, `LATEST_OF`) picks.
    fn release_of(&self, service: &str, tail: &str) -> Result<Option<Release>> {
        self.conn
            .query_row(
                &format!("{SELECT_RELEASE} {tail}"),
                [service],
                release_from_row,
            )
            .optional()?
            .transpose()
            .map_err(|detail| JournalError::Corrupt {
                service: service.into(),
                detail,
            })
    }

    /// The release opened last, of any service, in flight or finished.
    pub fn newest(&self) -> Result<Option<Release>> {
        self.conn
            .query_row(
                &format!("{SELECT_RELEASE} ORDER BY id DESC LIMIT 1"),
                [],
                release_from_row,
            )
            .optional()?
            .transpose()
            .map_err(|detail| JournalError::Corrupt {
                service: "the newest release".into(),
                detail,
            })
    }

    /// Releases in flight (or all of them), oldest first.
    pub fn releases(&self, include_finished: bool) -> Result<Vec<Release>> {
        let mut releases = Vec::new();
        self.each_release(include_finished, |release| -> Result<()> {
            releases.push(release);
            Ok(())
        })?;
        Ok(releases)
    }

    /// Hand each release in flight (or each of them), oldest first, to `f`, one at a time: a
    /// long journal is read without holding every release in memory.
    pub fn each_release<E: From<JournalError>>(
        &self,
        include_finished: bool,
        mut f: impl FnMut(Release) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let filter = if include_finished { ALL } else { IN_FLIGHT };
        self.each_row(&format!("{SELECT_RELEASE} {filter}"), |row| {
            f(release_from_row(row)
                .map_err(JournalError::from)?
                .map_err(corrupt_release)?)
        })
    }

    /// Like [`Journal::each_release`], but each release as a [`Summary`]: what a table of
    /// releases shows, without decoding their configurations.
    pub fn each_summary<E: From<JournalError>>(
        &self,
        include_finished: bool,
        mut f: impl FnMut(Summary<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        // The columns a table shows: whether a release was cancelled only where finished ones
        // are listed, and the configuration only of a release from before schema 4 (whose
        // weights its files say), read on its own.
        let sql = if include_finished {
            format!(
                "SELECT service, shape, position, v2_weights, id,
                     finished_at IS NOT NULL AND phase <> 'done' FROM releases {ALL}"
            )
        } else {
            format!("SELECT service, shape, position, v2_weights, id FROM releases {IN_FLIGHT}")
        };
        self.each_row(&sql, |row| {
            let config_unless_weights = || -> rusqlite::Result<Option<String>> {
                Ok(match row_text(row, 3)? {
                    Some(_) => None,
                    None => Some(self.conn.query_row(
                        "SELECT config FROM releases WHERE id = ?1",
                        [row.get::<_, i64>(4)?],
                        |config| config.get(0),
                    )?),
                })
            };
            let config = config_unless_weights().map_err(JournalError::from)?;
            f(summary_from_row(row, config.as_deref(), include_finished)
                .map_err(JournalError::from)?)
        })
    }

    /// Every service the journal holds a release of, in flight or finished.
    pub fn services(&self) -> Result<Vec<String>> {
        let mut services = Vec::new();
        self.each_row("SELECT DISTINCT service FROM releases", |row| {
            services.push(row.get(0).map_err(JournalError::from)?);
            Ok::<_, JournalError>(())
        })?;
        Ok(services)
    }

    /// Hand each row of a query to `f`, one at a time.
    fn each_row<E: From<JournalError>>(
        &self,
        sql: &str,
        mut f: impl FnMut(&rusqlite::Row<'_>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let mut stmt = self.conn.prepare(sql).map_err(JournalError::from)?;
        let mut rows = stmt.query([]).map_err(JournalError::from)?;
        while let Some(row) = rows.next().map_err(JournalError::from)? {
            f(row)?;
        }
        Ok(())
    }

    pub fn events(&self, release_id: i64) -> Result<Vec<Record>> {
        self.query_events(EVENTS_OF, release_id)
    }

    /// The newest event of a release (read through the index, not by scanning its events).
    pub fn last_event(&self, release_id: i64) -> Result<Option<Record>> {
        Ok(self.query_events(LAST_EVENT_OF, release_id)?.pop())
    }

    /// The release's `files-written` events, oldest first: what canary wrote, without decoding
    /// the rest of its events (a release in its ramp holds many more of those).
    pub fn files_written(&self, release_id: i64) -> Result<Vec<Record>> {
        self.query_events(FILES_WRITTEN_OF, release_id)
    }

    /// The release's last gate evaluation (read through the index of evaluations alone).
    pub fn last_gate_evaluation(&self, release_id: i64) -> Result<Option<Record>> {
        Ok(self
            .query_events(LAST_GATE_EVALUATION_OF, release_id)?
            .pop())
    }

    fn query_events(&self, sql: &str, release_id: i64) -> Result<Vec<Record>> {
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query([release_id])?;
        let mut entries = Vec::new();
        while let Some(row) = rows.next()? {
            let id = row.get(0)?;
            let kind = row_text(row, 3)?.unwrap_or_default();
            let event =
                Event::from_columns(kind, row_text(row, 5)?.unwrap_or_default()).map_err(|e| {
                    JournalError::Corrupt {
                        service: format!("release {release_id}"),
                        detail: format!("event {id} ({kind}): {e}"),
                    }
                })?;
            entries.push(Record {
                id,
                at: row.get(1)?,
                operator: row.get(2)?,
                phase: row.get(4)?,
                event,
            });
        }
        Ok(entries)
    }

    /// What is wrong with the journal: SQLite's own integrity and foreign-key checks, and
    /// releases whose stored JSON canary cannot read. Empty when all is well.
    pub fn problems(&self) -> Result<Vec<String>> {
        let mut problems: Vec<String> = {
            let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
            let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .filter(|line| line != "ok")
                .collect()
        };
        let mut stmt = self.conn.prepare("PRAGMA foreign_key_check")?;
        let rows = stmt.query_map([], |row| {
            Ok(format!(
                "{} row {} refers to a missing {} row",
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?
            ))
        })?;
        problems.extend(rows.collect::<rusqlite::Result<Vec<_>>>()?);
        // The shape comes with the release, in the same row.
        let mut stmt = self.conn.prepare(concat!(
            "SELECT ",
            release_columns!(),
            ", shape FROM releases"
        ))?;
        let rows = stmt.query_map([], |row| {
            Ok((release_from_row(row)?, row.get::<_, Option<String>>(9)?))
        })?;
        for row in rows {
            match row? {
                (Err(detail), _) => {
                    problems.push(format!("a release that canary cannot read: {detail}"))
                }
                (Ok(release), shape) => problems.extend(listing_problem(&release, shape)),
            }
        }
        Ok(problems)
    }

    /// Every release with its events, as one JSON document, written as it is read so that a
    /// journal of a million events never sits in memory whole.
    pub fn export(&self, out: &mut dyn std::io::Write) -> std::result::Result<(), ExportError> {
        write!(
            out,
            "{{\"schema_version\":{},\"releases\":[",
            migrate::user_version(&self.conn)?
        )?;
        let mut stmt = self
            .conn
            .prepare(&format!("{SELECT_RELEASE} ORDER BY id"))?;
        let rows = stmt.query_map([], release_from_row)?;
        for (i, row) in rows.enumerate() {
            let release = row?.map_err(corrupt_release)?;
            let record = serde_json::json!({
                "id": release.id,
                "service": release.config.service,
                "config": release.config,
                "position": release.position,
                "phase": release.phase,
                "step_in_progress": release.in_progress,
                "v2_weights": release.v2_weights,
                "opened_at": release.opened_at,
                "updated_at": release.updated_at,
                "finished_at": release.finished_at,
                "events": self.events(release.id)?,
            });
            if i > 0 {
                out.write_all(b",")?;
            }
            serde_json::to_writer(&mut *out, &record)?;
        }
        out.write_all(b"]}\n")?;
        Ok(())
    }

    /// Every path canary wrote in this release: what it last wrote and the commit holding it.
    pub fn written_files(&self, release_id: i64) -> Result<Vec<WrittenFile>> {
        let mut stmt = self.conn.prepare(
            "SELECT path, sha256, commit_id FROM written_files WHERE release_id = ?1 ORDER BY path",
        )?;
        let rows = stmt.query_map([release_id], |row| {
            Ok(WrittenFile {
                path: row.get(0)?,
                sha256: row.get(1)?,
                commit: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The sha256 of what canary last wrote to this path in this release (`Some(None)`: it
    /// deleted the file), or `None` when canary never wrote it.
    pub fn last_written(&self, release_id: i64, path: &str) -> Result<Option<Option<String>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT sha256 FROM written_files WHERE release_id = ?1 AND path = ?2",
                params![release_id, path],
                |row| row.get(0),
            )
            .optional()?)
    }

    /// The release's webhooks: secrets, for `canary run` to post to and for nothing to print.
    pub fn webhooks(&self, release_id: i64) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT url FROM webhooks WHERE release_id = ?1 ORDER BY rowid")?;
        let urls = stmt.query_map([release_id], |row| row.get(0))?;
        Ok(urls.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    /// Whole seconds since the newest deploy to `env` was confirmed; `None` if none was.
    pub fn seconds_since_deploy(&self, release_id: i64, env: &str) -> Result<Option<u64>> {
        let events = self.events(release_id)?;
        let Some(at) = events.iter().rev().find_map(|entry| match &entry.event {
            Event::DeployConfirmed(deploy) if deploy.env == env => Some(&entry.at),
            _ => None,
        }) else {
            return Ok(None);
        };
        let secs: f64 = self.conn.query_row(
            "SELECT (julianday('now') - julianday(?1)) * 86400.0",
            [at],
            |row| row.get(0),
        )?;
        Ok(Some(secs.max(0.0) as u64))
    }

    /// End a release in flight where it stands (`canary cancel`), provided it is still where
    /// the caller saw it: its 'cancelled' event and its end in one transaction. It stays at its
    /// position and phase, and is no longer in flight.
    pub fn cancel(&mut self, release: &Release, cancelled: Event) -> Result<Release> {
        let operator = self.operator.name(Some(&release.config.repo));
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (position, finished): (String, Option<String>) = tx.query_row(
            "SELECT position, finished_at FROM releases WHERE id = ?1",
            [release.id],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        if position != json(&release.position) || finished.is_some() {
            return Err(JournalError::Corrupt {
                service: release.config.service.clone(),
                detail: "the release moved while this command was working on it".into(),
            });
        }
        insert_event(&tx, release.id, operator, release.phase, &cancelled)?;
        tx.execute(
            "UPDATE releases SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ'),
                 finished_at = strftime('%Y-%m-%dT%H:%M:%fZ')
             WHERE id = ?1",
            [release.id],
        )?;
        tx.commit()?;
        self.release_by_id(release.id)
    }

    /// Whether this journal cancelled `service`'s release `id` (its `Canary-Release:`): the
    /// commits it left in the repository end nowhere, and stand in no one's way.
    pub fn cancelled(&self, service: &str, id: &str) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM releases WHERE service = ?1
                 AND finished_at IS NOT NULL AND phase <> 'done'
                 AND json_extract(config, '$.id') = ?2)",
            params![service, id],
            |row| row.get(0),
        )?)
    }

    /// Apply an update in one transaction, provided the release is still where the caller saw
    /// it. Returns the release as it now stands.
    pub fn record(&mut self, release: &Release, update: Update) -> Result<Release> {
        // Before the transaction: working the name out may run git.
        let operator = self.operator.name(Some(&release.config.repo));
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: String = tx.query_row(
            "SELECT position FROM releases WHERE id = ?1",
            [release.id],
            |row| row.get(0),
        )?;
        if current != json(&release.position) {
            return Err(JournalError::Corrupt {
                service: release.config.service.clone(),
                detail: "the release moved while this command was working on it".into(),
            });
        }
        let (position, phase) = update
            .position
            .clone()
            .unwrap_or_else(|| (release.position.clone(), release.phase));
        // An event belongs to the phase it happened in, not to the one it moved the release to.
        for event in &update.events {
            let event_id = insert_event(&tx, release.id, operator, release.phase, event)?;
            if let Event::FilesWritten { .. } = event {
                for (path, sha) in &update.written {
                    tx.execute(
                        "INSERT INTO written_files (release_id, path, sha256, event_id)
                         VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (release_id, path)
                         DO UPDATE SET sha256 = excluded.sha256, event_id = excluded.event_id,
                                       commit_id = NULL",
                        params![release.id, path, sha, event_id],
                    )?;
                }
            }
        }
        for (commit, paths) in &update.committed {
            for path in paths {
                tx.execute(
                    "UPDATE written_files SET commit_id = ?3 WHERE release_id = ?1 AND path = ?2",
                    params![release.id, path, commit],
                )?;
            }
        }
        let in_progress = match &update.in_progress {
            Some(value) => value.as_ref().map(sorted_json),
            None => release.in_progress.as_ref().map(sorted_json),
        };
        let finished = phase == Phase::Done;
        if finished && release.finished_at.is_none() {
            insert_event(&tx, release.id, operator, phase, &Event::Finished {})?;
        }
        if let Some(config) = &update.config {
            tx.execute(
                "UPDATE releases SET config = ?2 WHERE id = ?1",
                params![release.id, json(config)],
            )?;
        }
        if let Some(webhooks) = &update.webhooks {
            tx.execute("DELETE FROM webhooks WHERE release_id = ?1", [release.id])?;
            for url in webhooks {
                tx.execute(
                    "INSERT OR IGNORE INTO webhooks (release_id, url) VALUES (?1, ?2)",
                    params![release.id, url],
                )?;
            }
        }
        if let Some(weights) = &update.v2_weights {
            tx.execute(
                "UPDATE releases SET v2_weights = ?2 WHERE id = ?1",
                params![release.id, json(weights)],
            )?;
        }
        tx.execute(
            "UPDATE releases SET position = ?2, phase = ?3, step_in_progress = ?4,
                 updated_at = strftime('%Y-%m-%dT%H:%M:%fZ'),
                 finished_at = CASE WHEN ?5 THEN coalesce(finished_at, strftime('%Y-%m-%dT%H:%M:%fZ')) END
             WHERE id = ?1",
            params![release.id, json(&position), phase.name(), in_progress, finished],
        )?;
        tx.commit()?;
        self.release_by_id(release.id)
    }
}

/// Before a migration changes a journal, a consistent copy of it goes beside it as
/// `journal.db.bak-N` (N: the version it had), unless one is there already.
fn back_up(conn: &Connection, path: &Path, version: u32) -> Result<()> {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".bak-{version}"));
    let backup = PathBuf::from(name);
    if backup.exists() {
        return Ok(());
    }
    let target = backup.to_str().ok_or_else(|| JournalError::Io {
        path: backup.display().to_string(),
        cause: std::io::Error::other("the backup path is not UTF-8"),
    })?;
    // VACUUM INTO fills an empty file: made first, as private as the journal.
    create_private(&backup).map_err(|cause| JournalError::Io {
        path: backup.display().to_string(),
        cause,
    })?;
    conn.execute("VACUUM INTO ?1", [target])?;
    Ok(())
}

/// Create `path` empty and readable by its owner only, unless it exists (its mode is then
/// the owner's to keep): a journal holds every release's settings and history, which no one
/// else on the machine needs to read. SQLite gives its write-ahead log and shared memory the
/// journal's mode.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether a write-ahead log with content lies beside the journal: transactions that the file
/// itself does not hold yet.
fn has_write_ahead_log(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).is_ok_and(|m| m.len() > 0)
}

/// `file:PATH?immutable=1`, the path percent-encoded as SQLite's URIs want it.
fn immutable_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

/// Refuses a non-empty file that does not start with SQLite's header, before SQLite touches it,
/// and a path that is no regular file (or a link to one): opening a FIFO waits for a writer
/// forever, and a device is nobody's journal.
fn check_header(path: &Path) -> std::io::Result<Result<()>> {
    use std::io::Read;
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Ok(meta) => {
            let t = meta.file_type();
            let special = if t.is_fifo() {
                Some("a FIFO (named pipe)")
            } else if t.is_char_device() || t.is_block_device() {
                Some("a device")
            } else if t.is_socket() {
                Some("a socket")
            } else {
                None
            };
            if let Some(what) = special {
                let link = if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_symlink()) {
                    "a symbolic link to "
                } else {
                    ""
                };
                return Err(std::io::Error::other(format!(
                    "is {link}{what}, not a journal file; point --journal or CANARY_JOURNAL at \
                     a file"
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(())),
        Err(e) => return Err(e),
    }
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(())),
        Err(e) => return Err(e),
    };
    if file.metadata()?.is_dir() {
        return Err(std::io::Error::other("is a directory, not a journal file"));
    }
    let mut header = Vec::with_capacity(SQLITE_HEADER.len());
    file.by_ref()
        .take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut header)?;
    if header.is_empty() || header == SQLITE_HEADER {
        Ok(Ok(()))
    } else {
        Ok(Err(JournalError::NotAJournal {
            path: path.display().to_string(),
        }))
    }
}

fn not_a_journal(path: &Path, e: rusqlite::Error) -> JournalError {
    match JournalError::from(e) {
        JournalError::NotAJournal { .. } => JournalError::NotAJournal {
            path: path.display().to_string(),
        },
        other => other,
    }
}

/// What is wrong with the columns `list` reads instead of a release's configuration: its
/// `shape`, and its recorded weights.
fn listing_problem(release: &Release, shape: Option<String>) -> Option<String> {
    let service = &release.config.service;
    let recorded = shape.and_then(|s| serde_json::from_str::<crate::workflow::Shape>(&s).ok());
    if recorded.as_ref() != Some(&release.config.shape()) {
        return Some(format!(
            "the release of {service} (id {}) lists another shape than its configuration has",
            release.id
        ));
    }
    let weights = release.v2_weights.as_ref();
    if weights.is_some_and(|w| w.len() != release.config.environments.len()) {
        return Some(format!(
            "the release of {service} (id {}) records weights for another number of environments",
            release.id
        ));
    }
    None
}

const SELECT_RELEASE: &str = concat!("SELECT ", release_columns!(), " FROM releases");

// The read queries' filters, each answered through an index (see `read_queries_use_indexes`):
// what a command reads grows with what it shows, never with the journal's history.
const IN_FLIGHT_OF: &str = "WHERE service = ?1 AND finished_at IS NULL";
const LATEST_OF: &str = "WHERE service = ?1 ORDER BY id DESC LIMIT 1";
const IN_FLIGHT: &str = "WHERE finished_at IS NULL ORDER BY id";
const ALL: &str = "ORDER BY id";
const EVENTS_OF: &str = "SELECT id, at, operator, kind, phase, detail FROM events
    WHERE release_id = ?1 ORDER BY id";
const LAST_EVENT_OF: &str = "SELECT id, at, operator, kind, phase, detail FROM events
    WHERE release_id = ?1 ORDER BY id DESC LIMIT 1";
const FILES_WRITTEN_OF: &str = "SELECT id, at, operator, kind, phase, detail FROM events
    WHERE release_id = ?1 AND kind = 'files-written' ORDER BY id";
// The kind as a literal: SQLite uses a partial index only where the query's terms imply its own.
const LAST_GATE_EVALUATION_OF: &str = "SELECT id, at, operator, kind, phase, detail FROM events
    WHERE release_id = ?1 AND kind = 'gate-evaluated' ORDER BY id DESC LIMIT 1";

fn corrupt_release(detail: String) -> JournalError {
    JournalError::Corrupt {
        service: "a release".into(),
        detail,
    }
}

/// A text column borrowed from its row: JSON is decoded from it, never copied first.
fn row_text<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    row.get_ref(i)?.as_str_or_null().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    })
}

/// A JSON column's value, or what is wrong with it, named `what`.
fn decode<'a, T: Deserialize<'a>>(text: &'a str, what: &str) -> std::result::Result<T, String> {
    serde_json::from_str(text).map_err(|e| format!("{what}: {e}"))
}

/// [`decode`] for a column that may be NULL.
fn decode_optional<'a, T: Deserialize<'a>>(
    text: Option<&'a str>,
    what: &str,
) -> std::result::Result<Option<T>, String> {
    text.map(|text| decode(text, what)).transpose()
}

/// A summary row (service, shape, position, v2_weights, id, and with `finished` whether it
/// was cancelled), with the configuration read for it where its weights are not recorded.
fn summary_from_row<'r>(
    row: &'r rusqlite::Row<'_>,
    config: Option<&'r str>,
    finished: bool,
) -> rusqlite::Result<Summary<'r>> {
    Ok(Summary {
        service: row_text(row, 0)?.unwrap_or_default(),
        shape: row_text(row, 1)?.unwrap_or_default(),
        position: row_text(row, 2)?.unwrap_or_default(),
        v2_weights: row_text(row, 3)?,
        config,
        cancelled: finished && row.get(5)?,
    })
}

/// A row, or what is wrong with its JSON.
fn release_from_row(
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<std::result::Result<Release, String>> {
    let text = |i| row_text(row, i);
    let config = text(1)?.unwrap_or_default();
    let position = text(2)?.unwrap_or_default();
    let phase: String = row.get(3)?;
    let in_progress = text(4)?;
    let v2_weights = text(8)?;
    let parse = || -> std::result::Result<Release, String> {
        Ok(Release {
            id: row.get(0).map_err(|e| e.to_string())?,
            config: decode(config, "config")?,
            position: decode(position, "position")?,
            phase: serde_json::from_value(serde_json::Value::String(phase))
                .map_err(|e| format!("phase: {e}"))?,
            in_progress: decode_optional(in_progress, "step in progress")?,
            v2_weights: decode_optional(v2_weights, "v2 weights")?,
            opened_at: row.get(5).map_err(|e| e.to_string())?,
            updated_at: row.get(6).map_err(|e| e.to_string())?,
            finished_at: row.get(7).map_err(|e| e.to_string())?,
        })
    };
    Ok(parse())
}

fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    release_id: i64,
    operator: &str,
    phase: Phase,
    event: &Event,
) -> Result<i64> {
    tx.execute(
        "INSERT INTO events (release_id, at, operator, kind, phase, detail)
         VALUES (?1, strftime('%Y-%m-%dT%H:%M:%fZ'), ?2, ?3, ?4, ?5)",
        params![
            release_id,
            operator,
            event.kind(),
            phase.name(),
            json(&event.detail())
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("journal values serialise")
}

/// [`json`] with every object's keys sorted, as the step in progress was always written.
fn sorted_json<T: Serialize>(value: &T) -> String {
    json(&serde_json::to_value(value).expect("journal values serialise"))
}

/// Where the journal lives unless `--journal` or `CANARY_JOURNAL` says otherwise.
pub fn default_path() -> Option<PathBuf> {
    use etcetera::BaseStrategy;
    etcetera::choose_base_strategy()
        .ok()
        .map(|dirs| dirs.data_dir().join("canary").join("journal.db"))
}

#[cfg(test)]
mod tests;
