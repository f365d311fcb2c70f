-- Notifications: one row per message to one phone (channel 'ws', with delivery and read
-- receipts) or to one outbound notifier (channel = its type, retried with backoff; every try is
-- a notification_attempts row). Rows still 'pending' are picked up again when the center starts.

CREATE TABLE notifications (
    id              bigserial   PRIMARY KEY,
    ticket_id       bigint      NOT NULL REFERENCES tickets (id),
    channel         text        NOT NULL CHECK (channel IN ('ws', 'webhook', 'wecom', 'dingtalk')),
    person_id       text,       -- ws: whose phone
    notifier        text,       -- outbound: the configured notifier's name
    event           text        NOT NULL,   -- new, escalated, rework, ... or update
    reason          text        NOT NULL,   -- as the ticket change said it, e.g. 'escalated (level 1)'
    payload         jsonb,      -- outbound: what is sent (the ticket view as it was then)
    status          text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz,
    read_at         timestamptz,
    CHECK ((channel = 'ws') = (person_id IS NOT NULL)),
    CHECK ((channel = 'ws') = (notifier IS NULL))
);
CREATE INDEX notifications_ticket ON notifications (ticket_id);
CREATE INDEX notifications_undelivered ON notifications (person_id, id)
    WHERE channel = 'ws' AND delivered_at IS NULL;
CREATE INDEX notifications_unread ON notifications (person_id, ticket_id)
    WHERE channel = 'ws' AND read_at IS NULL;
CREATE INDEX notifications_outbound_pending ON notifications (next_attempt_at)
    WHERE channel <> 'ws' AND status = 'pending';

CREATE TABLE notification_attempts (
    id              bigserial   PRIMARY KEY,
    notification_id bigint      NOT NULL REFERENCES notifications (id),
    notifier        text        NOT NULL,
    attempt         integer     NOT NULL,
    at              timestamptz NOT NULL,
    ok              boolean     NOT NULL,
    status_code     integer,
    error           text        NOT NULL DEFAULT '',
    response        text        NOT NULL DEFAULT '',   -- first 500 characters
    duration_ms     integer     NOT NULL,
    UNIQUE (notification_id, attempt)
);
