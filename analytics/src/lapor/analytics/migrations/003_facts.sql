-- One row per complaint: the facts every metric is computed from (lapor.analytics.metrics).
-- Fed by the projection analytics.facts (durable consumer analytics_facts) from the start of
-- the log, so it fills itself on the first start after this migration.
CREATE TABLE analytics.facts (
    complaint_id        text PRIMARY KEY,
    received_at         timestamptz NOT NULL,
    channel             text NOT NULL,
    report_type         text NOT NULL,
    category            text,
    opd                 text,
    opd_name            text,
    disposed_at         timestamptz,
    follow_up_clock_at  timestamptz,
    first_follow_up_at  timestamptz,
    finished_at         timestamptz,
    archived_at         timestamptz,
    hops                integer NOT NULL DEFAULT 0,
    breaches            integer NOT NULL DEFAULT 0,
    rating              smallint CHECK (rating BETWEEN 1 AND 5),
    last_seq            bigint NOT NULL
);
CREATE INDEX analytics_facts_opd ON analytics.facts (opd);
CREATE INDEX analytics_facts_received_at ON analytics.facts (received_at);
