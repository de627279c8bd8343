-- The journal of canary releases: one row per release, and its append-only events.

CREATE TABLE releases (
    id                INTEGER PRIMARY KEY,
    service           TEXT NOT NULL,
    -- JSON of release::ReleaseConfig: repo, namespace, environments, schedule, v1 image.
    config            TEXT NOT NULL,
    -- JSON of workflow::Position, kept consistent with the events in the same transaction.
    position          TEXT NOT NULL,
    -- Denormalised from position so that listing needs no JSON.
    phase             TEXT NOT NULL,
    -- JSON of the step whose files are being written; NULL when no step is half done.
    step_in_progress  TEXT,
    opened_at         TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    finished_at       TEXT
);

-- At most one release of a service in flight.
CREATE UNIQUE INDEX releases_in_flight ON releases (service) WHERE finished_at IS NULL;

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    release_id  INTEGER NOT NULL REFERENCES releases (id),
    at          TEXT NOT NULL,
    operator    TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN (
                    'opened', 'step-started', 'files-written', 'step-done',
                    'deploy-confirmed', 'weight-changed', 'aborted', 'repinned',
                    'committed', 'finished')),
    phase       TEXT NOT NULL,
    -- JSON: what the event is about (the step, the files with their hashes, the weight ...).
    detail      TEXT NOT NULL
);

CREATE INDEX events_by_release ON events (release_id, id);

-- The last content canary wrote to each file of a release, to tell its own uncommitted
-- changes from a person's.
CREATE TABLE written_files (
    release_id  INTEGER NOT NULL REFERENCES releases (id),
    path        TEXT NOT NULL,
    -- sha256 of the content written; NULL when canary deleted the file.
    sha256      TEXT,
    event_id    INTEGER NOT NULL REFERENCES events (id),
    PRIMARY KEY (release_id, path)
);
