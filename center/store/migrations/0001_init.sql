-- Alerts, evidence, dead letters, camera status, tickets and their ledger.
-- Alerts are a time series: a TimescaleDB hypertable when the extension can be loaded,
-- otherwise a natively range-partitioned table (daily partitions made by
-- gridwatch_ensure_partitions, a DEFAULT partition so that no row is ever refused).

DO $migration$
DECLARE
    cols text := $cols$
        alert_id    uuid        NOT NULL,
        seq         integer     NOT NULL,
        kind        text        NOT NULL CHECK (kind IN ('new', 'update', 'end')),
        edge_id     text        NOT NULL,
        camera_id   text        NOT NULL,
        zone_id     text        NOT NULL,
        event_type  text        NOT NULL,
        label       text        NOT NULL,
        score       real        NOT NULL,
        bbox        real[]      NOT NULL,
        started_at  timestamptz NOT NULL,
        observed_at timestamptz NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        ticket_id   bigint,
        has_snapshot boolean    NOT NULL DEFAULT false,
        PRIMARY KEY (alert_id, seq, observed_at)
    $cols$;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND current_setting('shared_preload_libraries') LIKE '%timescaledb%' THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        EXECUTE format('CREATE TABLE alerts (%s)', cols);
        PERFORM create_hypertable('alerts', 'observed_at', chunk_time_interval => interval '1 day');
    ELSE
        EXECUTE format('CREATE TABLE alerts (%s) PARTITION BY RANGE (observed_at)', cols);
        CREATE TABLE alerts_default PARTITION OF alerts DEFAULT;
    END IF;
END
$migration$;

CREATE INDEX alerts_observed_brin ON alerts USING brin (observed_at);
CREATE INDEX alerts_camera_time ON alerts (camera_id, observed_at DESC);

-- Creates the daily partitions around today; a no-op on TimescaleDB, which makes its own chunks.
CREATE FUNCTION gridwatch_ensure_partitions(days_back integer, days_ahead integer)
RETURNS integer LANGUAGE plpgsql AS $fn$
DECLARE
    d date;
    made integer := 0;
    name text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'alerts'::regclass) THEN
        RETURN 0;
    END IF;
    FOR d IN SELECT generate_series(current_date - days_back, current_date + days_ahead, '1 day')::date
    LOOP
        name := format('alerts_%s', to_char(d, 'YYYYMMDD'));
        IF to_regclass(name) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF alerts FOR VALUES FROM (%L) TO (%L)',
                               name, d::timestamptz, (d + 1)::timestamptz);
                made := made + 1;
            EXCEPTION WHEN check_violation THEN
                -- Rows for that day already sit in the DEFAULT partition; they stay there.
                NULL;
            END;
        END IF;
    END LOOP;
    RETURN made;
END
$fn$;

CREATE TABLE alert_snapshots (
    alert_id    uuid    NOT NULL,
    seq         integer NOT NULL,
    jpeg        bytea   NOT NULL,
    PRIMARY KEY (alert_id, seq)
);

CREATE TABLE dead_letters (
    id          bigserial   PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    topic       text        NOT NULL,
    payload     bytea       NOT NULL,
    reason      text        NOT NULL
);

CREATE TABLE edge_status (
    edge_id     text        PRIMARY KEY,
    state       text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE camera_status (
    camera_id   text        PRIMARY KEY,
    edge_id     text        NOT NULL,
    state       text        NOT NULL,
    detail      text        NOT NULL DEFAULT '',
    updated_at  timestamptz NOT NULL
);

-- is_open is written by the state machine (center/tickets/states.py), the one place that
-- knows which states are terminal; the partial unique index makes "one open ticket per
-- camera, zone and event type" hold under concurrent alerts.
CREATE TABLE tickets (
    id             bigserial   PRIMARY KEY,
    camera_id      text        NOT NULL,
    zone_id        text        NOT NULL,
    event_type     text        NOT NULL,
    state          text        NOT NULL,
    is_open        boolean     NOT NULL DEFAULT true,
    micro_grid_id  text,
    assignee_id    text,
    opened_at      timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    closed_at      timestamptz,
    alert_count    integer     NOT NULL DEFAULT 1,
    first_alert_id uuid        NOT NULL,
    last_alert_id  uuid        NOT NULL
);
CREATE UNIQUE INDEX tickets_one_open_per_place
    ON tickets (camera_id, zone_id, event_type) WHERE is_open;
CREATE INDEX tickets_assignee_open ON tickets (assignee_id) WHERE is_open;

-- The ledger: append-only, one row per transition.
CREATE TABLE ticket_events (
    id          bigserial   PRIMARY KEY,
    ticket_id   bigint      NOT NULL REFERENCES tickets (id),
    at          timestamptz NOT NULL DEFAULT now(),
    actor_id    text        NOT NULL,
    action      text        NOT NULL,
    from_state  text,
    to_state    text        NOT NULL,
    note        text        NOT NULL DEFAULT '',
    alert_id    uuid
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, id);
