-- Center replicas, the wall's other live events (docs/scaling.md "Replicas"): the alert feed,
-- camera status (an edge going offline included), worker presence (check-in/out, positions)
-- and the emergency switch with its broadcast, committed by one replica, reach the walls and
-- phones of the others.
--
-- As in 0028: triggers inside the writing transaction (told if and only if it commits, in
-- commit order), only on a replica's connections (`gridwatch.replica` set; a single center
-- pays nothing), payloads naming the replica so it skips its own, ids only (8000 bytes at
-- most); the listener reads the rows (center/transport/replica_events.py).
--
-- The alert feed is the high-volume one (a storm is 1,000 alerts/s and more): ONE trigger
-- call per INSERT statement, whose transition table holds the batch's new rows (a whole
-- intake batch, up to 500), sends one NOTIFY per 80 of them, not one per alert. Each is named
-- by its whole primary key, [alert_id, seq, observed_at in µs since the epoch], so the reader
-- finds it by index in the one daily partition holding it, however old (an edge's backlog
-- after an outage) it is: at most 72 bytes of JSON a key, ~5,800 for 80; the replica name is
-- limited to 200 characters (center/store/replicas.py `replica_dsn`), so a payload stays
-- under 8000 bytes.
--
-- One channel for these events, `gridwatch_wall_events`, payload {"r": replica, "k": kind,
-- ...}: "alerts" (+ "a": [[alert_id, seq, observed_at µs], ...]), "camera" (+ "c": camera id),
-- "position" and "duty" (+ "p": person id), "emergency" (+ "s": scope), "broadcast" (+ "l":
-- ops_ledger id).

CREATE OR REPLACE FUNCTION replica_alerts_stored() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    payload text;
BEGIN
    FOR payload IN
        SELECT json_build_object('r', current_setting('gridwatch.replica', true), 'k', 'alerts',
                                 'a', json_agg(json_build_array(alert_id, seq, us) ORDER BY n))::text
        FROM (SELECT alert_id, seq, row_number() OVER () - 1 AS n,
                     (extract(epoch FROM observed_at) * 1000000)::bigint AS us
              FROM stored) s
        GROUP BY n / 80 ORDER BY n / 80
    LOOP
        PERFORM pg_notify('gridwatch_wall_events', payload);
    END LOOP;
    RETURN NULL;
END $$;

-- The same payload for one row: TimescaleDB refuses transition tables on a hypertable, so
-- there `alerts` notifies per row (one NOTIFY per alert: dearer, never run here).
CREATE OR REPLACE FUNCTION replica_alert_stored() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gridwatch_wall_events',
                      json_build_object('r', current_setting('gridwatch.replica', true),
                                        'k', 'alerts',
                                        'a', json_build_array(json_build_array(
                                            NEW.alert_id, NEW.seq,
                                            (extract(epoch FROM NEW.observed_at) * 1000000)::bigint
                                        )))::text);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS replica_alerts_stored ON alerts;
DO $migration$
BEGIN
    -- As gridwatch_ensure_partitions (0001): not natively partitioned is a hypertable.
    IF NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = 'alerts'::regclass) THEN
        CREATE TRIGGER replica_alerts_stored
            AFTER INSERT ON alerts
            FOR EACH ROW WHEN (coalesce(current_setting('gridwatch.replica', true), '') <> '')
            EXECUTE FUNCTION replica_alert_stored();
    ELSE
        CREATE TRIGGER replica_alerts_stored
            AFTER INSERT ON alerts REFERENCING NEW TABLE AS stored
            FOR EACH STATEMENT
            WHEN (coalesce(current_setting('gridwatch.replica', true), '') <> '')
            EXECUTE FUNCTION replica_alerts_stored();
    END IF;
END
$migration$;

-- The low-volume ones, a row each (an edge going offline updates its few cameras at once).
-- Arguments: the kind, the payload's key and the row's column that goes there.
CREATE OR REPLACE FUNCTION replica_wall_row_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gridwatch_wall_events',
                      json_build_object('r', current_setting('gridwatch.replica', true),
                                        'k', TG_ARGV[0],
                                        TG_ARGV[1], to_jsonb(NEW) ->> TG_ARGV[2])::text);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS replica_camera_changed ON camera_status;
CREATE TRIGGER replica_camera_changed
    AFTER INSERT OR UPDATE ON camera_status
    FOR EACH ROW WHEN (coalesce(current_setting('gridwatch.replica', true), '') <> '')
    EXECUTE FUNCTION replica_wall_row_changed('camera', 'c', 'camera_id');

DROP TRIGGER IF EXISTS replica_position_changed ON worker_last_positions;
CREATE TRIGGER replica_position_changed
    AFTER INSERT OR UPDATE ON worker_last_positions
    FOR EACH ROW WHEN (coalesce(current_setting('gridwatch.replica', true), '') <> '')
    EXECUTE FUNCTION replica_wall_row_changed('position', 'p', 'person_id');

DROP TRIGGER IF EXISTS replica_duty_changed ON duty_periods;
CREATE TRIGGER replica_duty_changed
    AFTER INSERT OR UPDATE ON duty_periods
    FOR EACH ROW WHEN (coalesce(current_setting('gridwatch.replica', true), '') <> '')
    EXECUTE FUNCTION replica_wall_row_changed('duty', 'p', 'person_id');

-- The emergency switch (a replica holds the switched scopes in memory, Context.emergency_scopes:
-- the others must learn of it, not only their walls) and the broadcast sent with it.
DROP TRIGGER IF EXISTS replica_emergency_switched ON emergency_modes;
CREATE TRIGGER replica_emergency_switched
    AFTER INSERT OR UPDATE ON emergency_modes
    FOR EACH ROW WHEN (coalesce(current_setting('gridwatch.replica', true), '') <> '')
    EXECUTE FUNCTION replica_wall_row_changed('emergency', 's', 'scope');

DROP TRIGGER IF EXISTS replica_broadcast_sent ON ops_ledger;
CREATE TRIGGER replica_broadcast_sent
    AFTER INSERT ON ops_ledger
    FOR EACH ROW WHEN (NEW.action = 'broadcast'
                       AND coalesce(current_setting('gridwatch.replica', true), '') <> '')
    EXECUTE FUNCTION replica_wall_row_changed('broadcast', 'l', 'id');
