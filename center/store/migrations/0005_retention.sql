-- Retention: evidence pictures carry the time they were stored, so old ones can be dropped
-- without touching the alerts that reference them; and a function that drops alert partitions
-- older than a cut-off on plain PostgreSQL (TimescaleDB uses its own retention policy instead).

ALTER TABLE alert_snapshots ADD COLUMN stored_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX alert_snapshots_stored_brin ON alert_snapshots USING brin (stored_at);

CREATE FUNCTION gridwatch_drop_alert_partitions(older_than timestamptz)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                             'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper_bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'alerts'::regclass AND c.relname <> 'alerts_default'
    LOOP
        IF part.upper_bound <= older_than THEN
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    -- Rows that landed in the DEFAULT partition age out row by row.
    IF to_regclass('alerts_default') IS NOT NULL THEN
        DELETE FROM alerts_default WHERE observed_at < older_than;
    END IF;
    RETURN dropped;
END
$fn$;
