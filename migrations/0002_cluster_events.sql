-- Events of the cluster issue: a weight changed on the live VirtualService (`canary weight
-- --live`) and an environment's kubeconfig context set on a release in flight (`canary context`).
-- SQLite cannot alter a CHECK constraint, so the events table is rebuilt with the wider list;
-- ids, and with them the order of every release's events, are kept. written_files refers to
-- events, and with foreign keys on (they cannot be turned off inside the migration's
-- transaction) a referenced table cannot be dropped: it is set aside and rebuilt too.

CREATE TEMP TABLE written_files_kept AS SELECT * FROM written_files;
DROP TABLE written_files;

CREATE TABLE events_new (
    id          INTEGER PRIMARY KEY,
    release_id  INTEGER NOT NULL REFERENCES releases (id),
    at          TEXT NOT NULL,
    operator    TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN (
                    'opened', 'step-started', 'files-written', 'step-done',
                    'deploy-confirmed', 'weight-changed', 'aborted', 'repinned',
                    'committed', 'finished', 'live-weight-changed', 'context-set')),
    phase       TEXT NOT NULL,
    -- JSON: what the event is about (the step, the files with their hashes, the weight ...).
    detail      TEXT NOT NULL
);
INSERT INTO events_new (id, release_id, at, operator, kind, phase, detail)
    SELECT id, release_id, at, operator, kind, phase, detail FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_by_release ON events (release_id, id);

-- As in 0001.
CREATE TABLE written_files (
    release_id  INTEGER NOT NULL REFERENCES releases (id),
    path        TEXT NOT NULL,
    -- sha256 of the content written; NULL when canary deleted the file.
    sha256      TEXT,
    event_id    INTEGER NOT NULL REFERENCES events (id),
    PRIMARY KEY (release_id, path)
);
INSERT INTO written_files (release_id, path, sha256, event_id)
    SELECT release_id, path, sha256, event_id FROM written_files_kept;
DROP TABLE written_files_kept;
