-- Login and public-form rate limits shared by every center replica (center/store/rate_limits.py).
-- One row per (rule, key): the moving window's accepted hits, oldest first, never more than
-- the rule's amount. A hit is one INSERT ... ON CONFLICT DO UPDATE, which locks the row, so
-- two replicas counting the same key at once are serialized by PostgreSQL: the limit holds
-- across replicas exactly as it did in one process. A rejected hit is not recorded (the
-- ``limits`` library's moving window does the same). ``expires_at`` (newest hit + window)
-- lets the prune drop the rows of keys that have gone quiet.

CREATE TABLE IF NOT EXISTS rate_limit_windows (
    rule       text        NOT NULL,
    key        text        NOT NULL,
    hits       timestamptz[] NOT NULL,
    allowed    boolean     NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (rule, key)
);

CREATE INDEX IF NOT EXISTS rate_limit_windows_expires ON rate_limit_windows (expires_at);
