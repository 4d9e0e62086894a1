-- One word for one thing: a complaint is closed (Selesai) by complaint.closed, while
-- complaint.resolved is the unit's answer. The columns take the lifecycle's name.
ALTER TABLE analytics.complaints RENAME COLUMN resolved_at TO closed_at;
ALTER TABLE analytics.facts RENAME COLUMN finished_at TO closed_at;
