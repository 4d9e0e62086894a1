-- Consumer checkpoints: the last stream sequence a projection has applied, written in the
-- same transaction as the projection's rows (exactly-once effect on at-least-once delivery).
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    projection  text PRIMARY KEY,
    last_seq    bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
