-- Archived reports (Arsip) are not valid complaints: they leave the completion base.
ALTER TABLE analytics.complaints ADD COLUMN archived_at timestamptz;
