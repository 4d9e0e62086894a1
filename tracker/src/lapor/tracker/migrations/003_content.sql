-- What the complaint says, for the coordinating admin and the unit it is disposed to
-- (GET /admin/complaints/{id}, GET /agencies/{opd}/complaints/{id}); the public API never
-- shows it. Set once from complaint.received; never the reporter's identity, which is not
-- in the events this read model follows. And the router's latest proposal
-- (complaint.routed) for the coordinator.
-- Rows projected before this migration have no content until the read model is rebuilt
-- from the log: `lapor replay tracker.status --swap`.
ALTER TABLE tracker.complaints
    ADD COLUMN body               text,
    ADD COLUMN location_address   text,
    ADD COLUMN location_kecamatan text,
    ADD COLUMN location_kelurahan text,
    ADD COLUMN location_lat       double precision,
    ADD COLUMN location_lon       double precision,
    ADD COLUMN incident_date      date,
    ADD COLUMN suggested_opd      text,
    -- {opd, opd_name, rule, reason, confidence, candidates: [{opd, probability}], level,
    --  excluded, rules_version, model_version, at}
    ADD COLUMN routing            jsonb;
