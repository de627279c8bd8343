-- A release's webhooks (`canary start --webhook`, `canary settings --webhook`), which `canary run`
-- tells as it goes. A webhook's URL is a secret (it grants posting to a channel): it lives in
-- this table alone, which no command prints and `canary journal export` leaves out; the events
-- that set it name it by its scheme and host only.
CREATE TABLE IF NOT EXISTS webhooks (
    release_id  INTEGER NOT NULL REFERENCES releases (id),
    url         TEXT NOT NULL,
    PRIMARY KEY (release_id, url)
);
