-- Worker presence (docs/presence.md): duty periods and the positions a worker's phone shares
-- while on duty.
--
-- duty_periods: one row per check-in; ended_at is set at check-out. A person is on duty while
-- they have an open period (at most one: the partial unique index), so the duty state and its
-- "since" are the same rows the on-duty time indicator sums.
CREATE TABLE duty_periods (
    id         bigserial   PRIMARY KEY,
    person_id  text        NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE UNIQUE INDEX duty_periods_open ON duty_periods (person_id) WHERE ended_at IS NULL;
CREATE INDEX duty_periods_person_time ON duty_periods (person_id, started_at DESC);

-- worker_positions is a time series like alerts (0001): a TimescaleDB hypertable when the
-- extension is loaded, else range-partitioned by day with a DEFAULT partition so that no row
-- is ever refused. WGS-84 degrees as the phone's geolocation gives them; accuracy in metres.
DO $migration$
DECLARE
    cols text := $cols$
        person_id  text             NOT NULL,
        at         timestamptz      NOT NULL,
        lon        double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
        lat        double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
        accuracy_m real             CHECK (accuracy_m >= 0),
        PRIMARY KEY (person_id, at)
    $cols$;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        EXECUTE format('CREATE TABLE worker_positions (%s)', cols);
        PERFORM create_hypertable('worker_positions', 'at',
                                  chunk_time_interval => interval '1 day');
    ELSE
        EXECUTE format('CREATE TABLE worker_positions (%s) PARTITION BY RANGE (at)', cols);
        CREATE TABLE worker_positions_default PARTITION OF worker_positions DEFAULT;
    END IF;
END
$migration$;

-- The last stored position of each person: the wall's "where is everyone" without scanning the
-- series, and the row the per-person rate limit (thinning) is decided on atomically.
CREATE TABLE worker_last_positions (
    person_id  text             PRIMARY KEY,
    at         timestamptz      NOT NULL,
    lon        double precision NOT NULL,
    lat        double precision NOT NULL,
    accuracy_m real
);

-- Daily partitions around today; a no-op on TimescaleDB, which makes its own chunks.
CREATE FUNCTION gridwatch_ensure_position_partitions(days_back integer, days_ahead integer)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    d date;
    made integer := 0;
    name text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table
                   WHERE partrelid = 'worker_positions'::regclass) THEN
        RETURN 0;
    END IF;
    FOR d IN SELECT generate_series(current_date - days_back, current_date + days_ahead,
                                    '1 day')::date
    LOOP
        name := format('worker_positions_%s', to_char(d, 'YYYYMMDD'));
        IF to_regclass(name) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF worker_positions'
                               ' FOR VALUES FROM (%L) TO (%L)',
                               name, d::timestamptz, (d + 1)::timestamptz);
                made := made + 1;
            EXCEPTION WHEN check_violation THEN
                NULL;  -- rows for that day already sit in the DEFAULT partition; they stay
            END;
        END IF;
    END LOOP;
    RETURN made;
END
$fn$;

-- Retention on plain PostgreSQL: drop whole daily partitions older than the cut-off, and age
-- out the DEFAULT partition's rows one by one (TimescaleDB uses a retention policy instead).
CREATE FUNCTION gridwatch_drop_position_partitions(older_than timestamptz)
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
        WHERE i.inhparent = 'worker_positions'::regclass
          AND c.relname <> 'worker_positions_default'
    LOOP
        IF part.upper_bound <= older_than THEN
            EXECUTE format('DROP TABLE %I', part.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    IF to_regclass('worker_positions_default') IS NOT NULL THEN
        DELETE FROM worker_positions_default WHERE at < older_than;
    END IF;
    RETURN dropped;
END
$fn$;
