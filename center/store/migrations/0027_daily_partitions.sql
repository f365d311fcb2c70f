-- One pair of functions for the daily partitions of every time-series table on plain PostgreSQL
-- (alerts since 0001/0005, worker_positions since 0023, which had copied the alerts' pair): the
-- table is a parameter, so a fix to how partitions are made or dropped is made once.
--
-- Behaviour is that of the copies they replace: partitions are named <table>_YYYYMMDD and
-- hold [day 00:00, next day 00:00) in the session's time zone; a day whose rows already sit in
-- the DEFAULT partition gets no partition (its rows stay there); dropping takes whole
-- partitions whose upper bound is at or before the cut-off and ages out the DEFAULT
-- partition's rows one by one on the partition key. On TimescaleDB the tables are hypertables
-- (not natively partitioned): both functions do nothing and return 0, and the center keeps
-- using the hypertables' own chunks and retention policies.
--
-- A table name that does not exist is an error (undefined_table), not a silent 0.

CREATE FUNCTION gridwatch_ensure_daily_partitions(parent text, days_back integer,
                                                  days_ahead integer)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    parent_oid regclass := quote_ident(parent)::regclass;
    d date;
    made integer := 0;
    name text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = parent_oid) THEN
        RETURN 0;
    END IF;
    FOR d IN SELECT generate_series(current_date - days_back, current_date + days_ahead,
                                    '1 day')::date
    LOOP
        name := format('%s_%s', parent, to_char(d, 'YYYYMMDD'));
        IF to_regclass(quote_ident(name)) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               name, parent, d::timestamptz, (d + 1)::timestamptz);
                made := made + 1;
            EXCEPTION WHEN check_violation THEN
                NULL;  -- rows for that day already sit in the DEFAULT partition; they stay
            END;
        END IF;
    END LOOP;
    RETURN made;
END
$fn$;

CREATE FUNCTION gridwatch_drop_daily_partitions(parent text, older_than timestamptz)
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
        RETURN 0;
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

-- The per-table copies go: every caller (center/store/partitions.py) names its table.
DROP FUNCTION gridwatch_ensure_partitions(integer, integer);
DROP FUNCTION gridwatch_drop_alert_partitions(timestamptz);
DROP FUNCTION gridwatch_ensure_position_partitions(integer, integer);
DROP FUNCTION gridwatch_drop_position_partitions(timestamptz);
