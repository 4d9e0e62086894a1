CREATE SCHEMA IF NOT EXISTS tracker;

-- One row per complaint: its current status (the status read model).
CREATE TABLE tracker.complaints (
    tracking_id   text PRIMARY KEY,
    status        text NOT NULL,
    opd           text,
    opd_name      text,
    report_type   text NOT NULL,
    channel       text NOT NULL,
    category      text,
    title         text NOT NULL,
    anonymous     boolean NOT NULL,
    confidential  boolean NOT NULL,
    received_at   timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    last_seq      bigint NOT NULL
);
CREATE INDEX complaints_opd_status ON tracker.complaints (opd, status);

-- The complaint's history as the reporter and the agency see it; keyed by log sequence,
-- so applying an event twice cannot add a row twice.
CREATE TABLE tracker.history (
    seq           bigint PRIMARY KEY,
    tracking_id   text NOT NULL,
    event_type    text NOT NULL,
    status        text NOT NULL,
    opd           text,
    note          text,
    occurred_at   timestamptz NOT NULL
);
CREATE INDEX history_tracking_id ON tracker.history (tracking_id, seq);
