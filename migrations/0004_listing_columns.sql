-- `canary list` shows every release in flight at once; reading two VirtualService patch files
-- and decoding the whole configuration of each release cost it more than the query. Two
-- columns give it what it shows.

-- Each environment's v2 weight as canary last wrote the files: a JSON array in the order of
-- the configuration's environments, null where the environment has no canary route.
-- NULL: not recorded yet (a release opened before this migration); readers read the files
-- instead, and the release's next write records it.
ALTER TABLE releases ADD COLUMN v2_weights TEXT;

-- JSON of workflow::Shape (environment names, ramp schedule), denormalised from config, which
-- never changes them.
ALTER TABLE releases ADD COLUMN shape TEXT;
UPDATE releases SET shape = json_object(
    'environments',
    -- json(): a subquery's value loses its JSON type and would be embedded as a string.
    json((SELECT json_group_array(env.value ->> 'name' ORDER BY env.key)
        FROM json_each(config, '$.environments') AS env)),
    'schedule',
    json(config -> 'schedule'));
