-- Reads that must cost the same however long the journal's history grows.

-- `canary status SERVICE`, `canary log SERVICE`: a service's latest release, found through the
-- index instead of by scanning every release ever opened.
CREATE INDEX releases_by_service ON releases (service, id);

-- `canary list`: the releases in flight in id order, without visiting the finished ones.
CREATE INDEX releases_in_flight_by_id ON releases (id) WHERE finished_at IS NULL;
