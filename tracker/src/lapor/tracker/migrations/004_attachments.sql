-- The photos and documents a reporter attached (complaint.received's `attachments`): for
-- the coordinating admin, the unit the complaint is disposed to and its reporter only.
-- References, never bytes (those are in the object store <ROOT>_ATTACHMENTS), in the
-- order the reporter attached them: [{id, sha256, media_type, size, filename}].
-- Rows projected before this migration have none; complaints received before
-- attachments existed had none to keep, so nothing needs rebuilding.
ALTER TABLE tracker.complaints
    ADD COLUMN attachment_refs jsonb NOT NULL DEFAULT '[]';
