-- Alert clips (protocol ClipChunk, docs/video.md "Alert clips"): one MP4 per alert and kind
-- ('violation': from the first sighting minus the edge's pre-roll to its post-roll after the
-- new; 'end': the seconds before the end), remuxed on the edge from the camera's own packets.
-- The video lives in the clip storage (center/services/clip_storage.py, a folder by default)
-- under `storage_key`; this row says what it is. clip_id is uuid5(alert_id, kind), so a clip
-- delivered twice is one row. No foreign key to alerts (a partitioned table, and a clip may
-- arrive before its alert): the API finds clips by alert_id. Kept clips.retention_days.
CREATE TABLE alert_clips (
    clip_id      uuid        PRIMARY KEY,
    alert_id     uuid        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('violation', 'end')),
    edge_id      text        NOT NULL,
    camera_id    text        NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz NOT NULL CHECK (ended_at >= started_at),
    codec        text        NOT NULL,
    content_type text        NOT NULL,
    size         bigint      NOT NULL CHECK (size > 0),
    sha256       text        NOT NULL,
    storage_key  text        NOT NULL,
    stored_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_clips_alert ON alert_clips (alert_id, kind);
CREATE INDEX alert_clips_stored ON alert_clips (stored_at);
