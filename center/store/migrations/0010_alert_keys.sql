-- Idempotency for alert messages, whatever their time: (alert_id, seq) once, with a digest of
-- the content first stored. The alerts table is partitioned by observed_at, so its primary key
-- has to include observed_at and cannot stop a second copy of (alert_id, seq) that names
-- another time; this small unpartitioned table can. The ingest refuses last_seen_at older
-- than center.protocol.MAX_ALERT_AGE, so keys older than that are swept (center/db/retention.py).

CREATE TABLE alert_keys (
    alert_id    uuid        NOT NULL,
    seq         integer     NOT NULL,
    -- SHA-256 of the message without its snapshot (center/db/queries.py); NULL for rows
    -- stored before this migration, whose content cannot be compared.
    digest      bytea,
    observed_at timestamptz NOT NULL,
    PRIMARY KEY (alert_id, seq)
);
CREATE INDEX alert_keys_observed_brin ON alert_keys USING brin (observed_at);

INSERT INTO alert_keys (alert_id, seq, observed_at)
SELECT alert_id, seq, min(observed_at) FROM alerts
WHERE observed_at > now() - interval '8 days'
GROUP BY alert_id, seq;
