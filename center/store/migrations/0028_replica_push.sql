-- Center replicas (docs/scaling.md "Replicas"): a ticket change or a phone notification
-- committed by one replica reaches the walls and phones connected to the others.
--
-- Triggers, not a NOTIFY sent by the application after its commit: pg_notify() inside the
-- writing transaction is delivered if and only if that transaction commits, so a replica
-- killed right after a commit still tells the others (the application could die between the
-- two). Only connections of a replica notify: its pool sets the custom setting
-- `gridwatch.replica` to its name (center/store/replicas.py), which the payload carries so
-- the replica can skip what it announced itself. A single center (the setting unset) pays
-- nothing: the WHEN clause is false and the function never runs.
--
-- Payloads carry ids only (NOTIFY allows 8000 bytes): the listener reads the ticket.

CREATE OR REPLACE FUNCTION replica_ticket_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gridwatch_ticket_changes',
                      json_build_object('r', current_setting('gridwatch.replica', true),
                                        't', NEW.id, 'u', NEW.updated_at)::text);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS replica_ticket_changed ON tickets;
CREATE TRIGGER replica_ticket_changed
    AFTER INSERT OR UPDATE ON tickets
    FOR EACH ROW WHEN (coalesce(current_setting('gridwatch.replica', true), '') <> '')
    EXECUTE FUNCTION replica_ticket_changed();

CREATE OR REPLACE FUNCTION replica_phone_notified() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gridwatch_phone_notifications',
                      json_build_object('r', current_setting('gridwatch.replica', true),
                                        'n', NEW.id, 't', NEW.ticket_id, 'p', NEW.person_id,
                                        'reason', NEW.reason)::text);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS replica_phone_notified ON notifications;
CREATE TRIGGER replica_phone_notified
    AFTER INSERT ON notifications
    FOR EACH ROW WHEN (NEW.channel = 'ws'
                       AND coalesce(current_setting('gridwatch.replica', true), '') <> '')
    EXECUTE FUNCTION replica_phone_notified();
