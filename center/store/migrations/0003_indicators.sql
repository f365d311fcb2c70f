-- Indicators (docs/indicators.md): indexes for the period scans, and daily camera-alert counts.
--
-- The ticket indicators are plain SQL over tickets + ticket_events on every installation:
-- tickets are updated in place and ticket_events is an ordinary table, so neither can feed a
-- TimescaleDB continuous aggregate. What can is the alerts hypertable (0001): with TimescaleDB
-- loaded, alerts_daily is a continuous aggregate refreshed hourly; on plain PostgreSQL it is an
-- ordinary view with the same columns, so queries read alerts_daily either way.
-- The TimescaleDB branch is untested in CI (Debian's PostgreSQL has no TimescaleDB).

CREATE INDEX tickets_opened_at ON tickets (opened_at);
CREATE INDEX ticket_events_action_at ON ticket_events (action, at);

DO $migration$
DECLARE
    hypertable boolean := false;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND current_setting('shared_preload_libraries') LIKE '%timescaledb%'
       AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        -- Dynamic: the catalog view does not exist (cannot even be planned) without the extension.
        EXECUTE 'SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables'
                ' WHERE hypertable_name = ''alerts'')' INTO hypertable;
    END IF;
    IF hypertable THEN
        -- WITH NO DATA: allowed inside the migration's transaction; the policy fills it, and
        -- materialized_only = false adds the not-yet-materialised rows (real-time aggregate).
        EXECUTE $cagg$
            CREATE MATERIALIZED VIEW alerts_daily WITH (timescaledb.continuous,
                                               timescaledb.materialized_only = false) AS
            SELECT time_bucket(interval '1 day', observed_at) AS day,
                   camera_id, event_type,
                   count(*) FILTER (WHERE kind = 'new') AS alerts,
                   count(*) AS messages
            FROM alerts
            GROUP BY 1, 2, 3
            WITH NO DATA
        $cagg$;
        PERFORM add_continuous_aggregate_policy('alerts_daily',
            start_offset => interval '3 days', end_offset => interval '1 hour',
            schedule_interval => interval '1 hour');
    ELSE
        CREATE VIEW alerts_daily AS
        SELECT date_bin(interval '1 day', observed_at, timestamptz '2000-01-01 00:00+00') AS day,
               camera_id, event_type,
               count(*) FILTER (WHERE kind = 'new') AS alerts,
               count(*) AS messages
        FROM alerts
        GROUP BY 1, 2, 3;
    END IF;
END
$migration$;
