-- A projection never skips an event on its own. When one cannot be applied, the projection
-- stops in front of it and says so here (written with the checkpoint, in one statement);
-- it goes on when the cause is fixed, or when an operator records a decision to skip it.
ALTER TABLE projection_checkpoints
    ADD COLUMN IF NOT EXISTS stopped_seq      bigint,
    ADD COLUMN IF NOT EXISTS stopped_subject  text,
    ADD COLUMN IF NOT EXISTS stopped_reason   text,
    ADD COLUMN IF NOT EXISTS stopped_since    timestamptz,
    ADD COLUMN IF NOT EXISTS stopped_attempts integer NOT NULL DEFAULT 0;

-- An operator's decision to leave one event of the log out of one read model: who, when
-- and why. Rebuilds honour the same decisions, and `lapor replay --verify` lists them.
CREATE TABLE IF NOT EXISTS projection_skips (
    projection  text NOT NULL,
    seq         bigint NOT NULL,
    subject     text NOT NULL,
    reason      text NOT NULL,
    decided_by  text NOT NULL,
    decided_at  timestamptz NOT NULL DEFAULT now(),
    error       text NOT NULL,
    PRIMARY KEY (projection, seq)
);
