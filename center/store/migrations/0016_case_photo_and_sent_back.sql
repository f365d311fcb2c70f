-- What a worker and a leader need to see on a case without reading its whole ledger:
--   photo_id:  the photo it was filed with (a resident's report, a worker's patrol photo), shown
--              where a camera case shows its alert's snapshot. Intake writes it with the ticket.
--   sent_back: the last time the case came back, {"action": "return" | "rework", "note",
--              "actor_id", "at"}: a returned or reworked case is flagged on the phone with why,
--              instead of looking like a fresh dispatch.
ALTER TABLE tickets
    ADD COLUMN photo_id  bigint REFERENCES attachments (id),
    ADD COLUMN sent_back jsonb;

-- Existing cases: the photo uploaded by whoever registered a hand-reported case, and the latest
-- return or rework from the ledger.
UPDATE tickets t SET photo_id = (
    SELECT min(a.id) FROM attachments a
    JOIN ticket_events e ON e.ticket_id = t.id AND e.action = 'register'
    WHERE a.ticket_id = t.id AND a.uploaded_by = e.actor_id)
WHERE t.source <> 'camera';

UPDATE tickets t SET sent_back = (
    SELECT jsonb_build_object('action', e.action, 'note', e.note, 'actor_id', e.actor_id,
                              'at', e.at)
    FROM ticket_events e WHERE e.ticket_id = t.id AND e.action IN ('return', 'rework')
    ORDER BY e.id DESC LIMIT 1);
