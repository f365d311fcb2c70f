-- TimescaleDB production features (docs/deployment.md, "TimescaleDB"): compression of the two
-- time series, and one retention behaviour on both engines.
--
-- Compression (TimescaleDB only). The segmentby/orderby follow the queries that read old rows:
-- * alerts are read by camera (list_alerts' camera filter, verdicts.case_alert_starts) and by
--   alert id (clips.alert_place, verdicts.alert_subject); alerts_daily groups by camera and event
--   type. A city's camera raises about 40 alert rows a day (docs/scaling.md), too few to fill a
--   compressed batch (up to 1,000 rows) if each camera were its own segment; so the segments
--   are the event types, and the batches are ordered by camera first, whose min/max per batch
--   lets a camera's rows be found without decompressing the others. alert_id and seq close
--   the order so every primary-key column is in it (TimescaleDB warns otherwise).
--   Compressed after 8 days: the ingest refuses a message older than MAX_ALERT_AGE (7 days,
--   wire/protocol.py), so no insert ever lands in a compressed chunk (the same day of margin
--   as alert_keys' retention); alerts_daily refreshes only its last 3 days, never compressed.
-- * worker_positions are read per person and time (presence.track, patrol_per_day's window
--   per person ordered by time): segments by person (thousands of fixes a day each), ordered
--   by time. Compressed after 2 days: a phone's positions arrive live (worker_last_positions
--   refuses one older than the last stored).
--
-- Retention is the center's hourly job on both engines (center/store/retention.py and
-- presence.py call gridwatch_drop_daily_partitions): on plain PostgreSQL it drops daily
-- partitions, on TimescaleDB it now calls drop_chunks with the same cut-off. One behaviour:
-- a changed retention setting applies at the next hourly round (a policy added with
-- if_not_exists kept its first interval), the center's clock decides, and None keeps
-- forever. So the retention policies that earlier centers added are removed here.
--
-- No hourly continuous aggregate: the only hourly count read (the wall's cases-per-hour chart,
-- center/store/indicators.py cases_per_hour) counts tickets, which are updated in place and
-- cannot feed one.
--
-- The TimescaleDB statements are static, not EXECUTE strings, so that PostgreSQL's parser
-- checks them whenever this block is compiled, on plain PostgreSQL too, where the branch is
-- never taken (tests/test_timescale_sql.py). Not run on TimescaleDB here.

DO $migration$
DECLARE
    hypertables text[] := '{}';
BEGIN
    -- The guard of 0001, and the tables must be hypertables (not so if the extension was
    -- installed after 0001 had made them natively partitioned).
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND current_setting('shared_preload_libraries') LIKE '%timescaledb%'
       AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        SELECT coalesce(array_agg(hypertable_name::text), '{}') INTO hypertables
        FROM timescaledb_information.hypertables
        WHERE hypertable_schema = current_schema()
          AND hypertable_name IN ('alerts', 'worker_positions');
    END IF;
    IF 'alerts' = ANY (hypertables) THEN
        PERFORM remove_retention_policy('alerts', if_exists => true);
        ALTER TABLE alerts SET (timescaledb.compress,
                                timescaledb.compress_segmentby = 'event_type',
                                timescaledb.compress_orderby
                                    = 'camera_id, observed_at DESC, alert_id, seq');
        PERFORM add_compression_policy('alerts', compress_after => interval '8 days',
                                       if_not_exists => true);
    END IF;
    IF 'worker_positions' = ANY (hypertables) THEN
        PERFORM remove_retention_policy('worker_positions', if_exists => true);
        ALTER TABLE worker_positions SET (timescaledb.compress,
                                          timescaledb.compress_segmentby = 'person_id',
                                          timescaledb.compress_orderby = 'at');
        PERFORM add_compression_policy('worker_positions', compress_after => interval '2 days',
                                       if_not_exists => true);
    END IF;
END
$migration$;

-- 0027's function, now also for hypertables: drop_chunks drops the chunks that end at or
-- before the cut-off (compressed or not), as the partitions are dropped on plain PostgreSQL.
-- Returns how many partitions or chunks were dropped.
CREATE OR REPLACE FUNCTION gridwatch_drop_daily_partitions(parent text, older_than timestamptz)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    parent_oid regclass := quote_ident(parent)::regclass;
    default_name name;  -- NULL when the table has no DEFAULT partition
    key_column name;    -- the range key (alerts.observed_at, worker_positions.at)
    part record;
    dropped integer := 0;
BEGIN
    SELECT (SELECT relname FROM pg_class WHERE oid = p.partdefid), a.attname
    INTO default_name, key_column
    FROM pg_partitioned_table p
    JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
    WHERE p.partrelid = parent_oid;
    IF NOT FOUND THEN
        -- Not natively partitioned: a hypertable (0001, 0023 make one or the other).
        IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
            SELECT count(*) INTO dropped
            FROM drop_chunks(parent_oid,
                             older_than => gridwatch_drop_daily_partitions.older_than);
        END IF;
        RETURN dropped;
    END IF;
    FOR part IN
        SELECT c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                             'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper_bound
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent_oid AND c.relname IS DISTINCT FROM default_name
    LOOP
        IF part.upper_bound <= older_than THEN
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    IF default_name IS NOT NULL THEN
        EXECUTE format('DELETE FROM %I WHERE %I < $1', default_name, key_column)
            USING older_than;
    END IF;
    RETURN dropped;
END
$fn$;
