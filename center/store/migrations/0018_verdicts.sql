-- Verdicts: an operator, leader or the case's worker says whether an alert (or a whole case)
-- was a real violation or a false alarm, and why. They feed the false-alarm counts per camera
-- and zone (indicators, the wall) and the training-set export (hard negatives).
--
-- One row per judged alert: judging a camera case writes a row for each of its alerts; a case
-- without alerts (patrol, resident) gets one row with alert_id NULL. A later verdict on the same
-- alert replaces the current one: the old row stays (history) with replaced_at/replaced_by set,
-- so "the current verdict" is the row with replaced_at IS NULL, at most one per alert (and per
-- alert-less case), which the partial unique indexes enforce under concurrent judges.
-- Camera, zone, event type and the alert's start are copied in: alerts are a time series that
-- retention drops, and a verdict must outlive them.
CREATE TABLE verdicts (
    id            bigserial   PRIMARY KEY,
    alert_id      uuid,
    ticket_id     bigint      REFERENCES tickets (id),
    camera_id     text,
    zone_id       text,
    event_type    text        NOT NULL,
    micro_grid_id text,
    alert_started_at timestamptz,
    verdict       text        NOT NULL CHECK (verdict IN ('confirmed', 'false_alarm')),
    reason        text        CHECK (reason IN ('wrong_class', 'not_parked', 'rider',
                                                'person_not_goods', 'outside_zone', 'other')),
    note          text        NOT NULL DEFAULT '',
    actor_id      text        NOT NULL,
    role          text        NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    replaced_at   timestamptz,
    replaced_by   bigint      REFERENCES verdicts (id),
    CHECK (alert_id IS NOT NULL OR ticket_id IS NOT NULL),
    CHECK ((verdict = 'false_alarm') = (reason IS NOT NULL))
);
CREATE UNIQUE INDEX verdicts_current_per_alert ON verdicts (alert_id)
    WHERE replaced_at IS NULL AND alert_id IS NOT NULL;
CREATE UNIQUE INDEX verdicts_current_per_case ON verdicts (ticket_id)
    WHERE replaced_at IS NULL AND alert_id IS NULL;
CREATE INDEX verdicts_ticket ON verdicts (ticket_id);
-- The counts: current verdicts per camera and day of the alert.
CREATE INDEX verdicts_camera_day ON verdicts (camera_id, alert_started_at) WHERE replaced_at IS NULL;
