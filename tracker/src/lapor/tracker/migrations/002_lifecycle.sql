-- The full lifecycle: the router's proposal awaiting verification, the clock of the
-- current step, and the units that declined (Bukan Wewenang).
ALTER TABLE tracker.complaints
    ADD COLUMN proposed_opd  text,
    ADD COLUMN declined_by   text[] NOT NULL DEFAULT '{}',
    ADD COLUMN held_from     text,
    ADD COLUMN followed_up   boolean NOT NULL DEFAULT false,
    ADD COLUMN rating        smallint,
    -- The deadline clock of the current step (see lapor.tracker.timers).
    ADD COLUMN clock_step         text,
    ADD COLUMN clock_started_at   timestamptz,
    ADD COLUMN clock_paused_at    timestamptz,
    ADD COLUMN clock_paused_days  integer NOT NULL DEFAULT 0,
    ADD COLUMN due_at             timestamptz,
    ADD COLUMN warn_at            timestamptz,
    ADD COLUMN warned             boolean NOT NULL DEFAULT false,
    ADD COLUMN breached           boolean NOT NULL DEFAULT false;

CREATE INDEX complaints_status_id ON tracker.complaints (status, tracking_id);
CREATE INDEX complaints_public ON tracker.complaints (tracking_id) WHERE NOT confidential;

-- What the deadline scheduler looks for.
CREATE INDEX complaints_timers ON tracker.complaints (due_at)
    WHERE clock_step IS NOT NULL AND clock_paused_at IS NULL AND NOT breached;
