-- A ticket's updated_at is its version: walls and phones keep the view with the newest one
-- (dashboard `newer`), and the replicas' relay drops a view not newer than one it pushed
-- (center/transport/replica_push.py). Writers stamp it with the time their transaction took
-- it, and two replicas' transactions on one ticket can commit in the other order (the later
-- stamp waits on the earlier one's row lock, then commits last with the older stamp). The
-- final state then looked older than the one before it, and a wall on another replica kept
-- the stale view (seen in tests/test_replicas.py under a full test run). So the stamp only
-- moves forward: a change stamped at or before the stored one gets the stored one plus a
-- microsecond. Updates that leave updated_at alone keep it.

CREATE OR REPLACE FUNCTION ticket_version_forward() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.updated_at IS DISTINCT FROM OLD.updated_at AND NEW.updated_at <= OLD.updated_at THEN
        NEW.updated_at := OLD.updated_at + interval '1 microsecond';
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS ticket_version_forward ON tickets;
CREATE TRIGGER ticket_version_forward
    BEFORE UPDATE ON tickets
    FOR EACH ROW EXECUTE FUNCTION ticket_version_forward();
