-- `canary run` tells the team through webhooks; a message that none of its attempts delivered
-- is journaled as 'notify-failed' (which webhook, shown without its secret path, what it was
-- about, how many attempts, the last error), so that an audit sees what the team did not hear.
-- As in 0006 and 0007: SQLite cannot alter a CHECK constraint, so events is rebuilt with the
-- wider list, ids kept, and written_files, which refers to it, set aside and rebuilt as it was.

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
                    'committed', 'finished', 'live-weight-changed', 'context-set',
                    'pushed', 'gate-evaluated', 'cancelled', 'settings-changed',
                    'notify-failed')),
    phase       TEXT NOT NULL,
    -- JSON: what the event is about (the step, the files with their hashes, the weight ...).
    detail      TEXT NOT NULL
);
INSERT INTO events_new (id, release_id, at, operator, kind, phase, detail)
    SELECT id, release_id, at, operator, kind, phase, detail FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_by_release ON events (release_id, id);

CREATE TABLE written_files (
    release_id  INTEGER NOT NULL REFERENCES releases (id),
    path        TEXT NOT NULL,
    -- sha256 of the content written; NULL when canary deleted the file.
    sha256      TEXT,
    event_id    INTEGER NOT NULL REFERENCES events (id),
    -- The full id of the commit canary made of that content; NULL until canary commits it.
    commit_id   TEXT,
    PRIMARY KEY (release_id, path)
);
INSERT INTO written_files (release_id, path, sha256, event_id, commit_id)
    SELECT release_id, path, sha256, event_id, commit_id FROM written_files_kept;
DROP TABLE written_files_kept;
