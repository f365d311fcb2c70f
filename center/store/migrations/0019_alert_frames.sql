-- The clean full frame an edge kept with a new alert (protocol Alert.frame): training data for
-- the model loop (`gridwatch dataset export`, docs/models.md), apart from the drawn evidence
-- snapshot. `boxes` holds the frame's detections (label, score, normalised bbox, violation).
-- Kept frame_retention_days (center/db/retention.py); `blurred` says whether the edge's
-- privacy switch was on when it was taken.
CREATE TABLE alert_frames (
    alert_id  uuid        NOT NULL,
    seq       integer     NOT NULL,
    camera_id text        NOT NULL,
    jpeg      bytea       NOT NULL,
    width     integer     NOT NULL,
    height    integer     NOT NULL,
    blurred   boolean     NOT NULL,
    boxes     jsonb       NOT NULL DEFAULT '[]',
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (alert_id, seq)
);
CREATE INDEX alert_frames_stored_brin ON alert_frames USING brin (stored_at);
