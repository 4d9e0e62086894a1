CREATE SCHEMA IF NOT EXISTS analytics;

-- One row per complaint with the facts the completion metrics count.
CREATE TABLE analytics.complaints (
    tracking_id   text PRIMARY KEY,
    opd           text,
    received_at   timestamptz NOT NULL,
    resolved_at   timestamptz
);
CREATE INDEX analytics_complaints_opd ON analytics.complaints (opd);

CREATE TABLE analytics.opds (
    opd   text PRIMARY KEY,
    name  text NOT NULL
);
