-- Center replicas, the last two wall events (docs/scaling.md "Replicas"): an operator's verdict
-- and a stored alert clip, committed by one replica, reach the walls, leaders and workers of
-- the others. Same channel and rules as 0030 (inside the writing transaction, replica
-- connections only, ids only); the listener reads the rows (center/transport/replica_events.py).
--
-- A verdict on a case is one INSERT of a row per alert of the case, and the writing replica
-- pushes it as ONE event naming them all: one trigger call per statement sends the ids of its
-- rows, one NOTIFY per 300 (a bigint is at most 20 characters of JSON with its comma: 6,000
-- bytes, under the 8,000 a payload may carry), and each NOTIFY becomes one event over there.
-- {"r": replica, "k": "verdicts", "v": [id, ...]}; a clip: {"r", "k": "clip", "i": clip_id}.

CREATE OR REPLACE FUNCTION replica_verdicts_recorded() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    payload text;
BEGIN
    FOR payload IN
        SELECT json_build_object('r', current_setting('gridwatch.replica', true),
                                 'k', 'verdicts', 'v', json_agg(id ORDER BY id))::text
        FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM recorded) s
        GROUP BY n / 300 ORDER BY n / 300
    LOOP
        PERFORM pg_notify('gridwatch_wall_events', payload);
    END LOOP;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS replica_verdicts_recorded ON verdicts;
CREATE TRIGGER replica_verdicts_recorded
    AFTER INSERT ON verdicts REFERENCING NEW TABLE AS recorded
    FOR EACH STATEMENT WHEN (coalesce(current_setting('gridwatch.replica', true), '') <> '')
    EXECUTE FUNCTION replica_verdicts_recorded();

DROP TRIGGER IF EXISTS replica_clip_stored ON alert_clips;
CREATE TRIGGER replica_clip_stored
    AFTER INSERT ON alert_clips
    FOR EACH ROW WHEN (coalesce(current_setting('gridwatch.replica', true), '') <> '')
    EXECUTE FUNCTION replica_wall_row_changed('clip', 'i', 'clip_id');
