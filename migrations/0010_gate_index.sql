-- `canary status SERVICE` shows the gate's last evaluation: found through this index of the
-- gate's evaluations alone, instead of by reading every event of the release, whose rows lie
-- on as many pages as the journal's releases interleave them.
CREATE INDEX IF NOT EXISTS events_gate_by_release ON events (release_id, id)
    WHERE kind = 'gate-evaluated';
