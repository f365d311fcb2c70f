-- The full closed loop: manual intake, deadlines and escalation timers, attachments,
-- satisfaction, emergency mode, and the district stored in the database (imported from files,
-- updated in place; rows are deactivated, never deleted, so history keeps its names).

ALTER TABLE tickets
    ALTER COLUMN camera_id DROP NOT NULL,
    ALTER COLUMN zone_id DROP NOT NULL,
    ALTER COLUMN first_alert_id DROP NOT NULL,
    ALTER COLUMN last_alert_id DROP NOT NULL,
    ALTER COLUMN alert_count SET DEFAULT 0,
    ADD COLUMN source text NOT NULL DEFAULT 'camera'
        CHECK (source IN ('camera', 'patrol', 'resident', 'open311')),
    ADD COLUMN lon double precision,
    ADD COLUMN lat double precision,
    ADD COLUMN grid_id text,
    ADD COLUMN description text NOT NULL DEFAULT '',
    ADD COLUMN reporter text,
    ADD COLUMN priority smallint NOT NULL DEFAULT 0,
    ADD COLUMN emergency boolean NOT NULL DEFAULT false,
    ADD COLUMN due_at timestamptz,
    ADD COLUMN stage_due_at timestamptz,
    ADD COLUMN escalation_level smallint NOT NULL DEFAULT 0,
    ADD COLUMN acknowledged_by text,
    ADD COLUMN rework_count integer NOT NULL DEFAULT 0,
    ADD COLUMN extension_min integer,
    ADD COLUMN dispatched_at timestamptz,
    ADD COLUMN accepted_at timestamptz,
    ADD COLUMN handled_at timestamptz,
    ADD COLUMN verified_at timestamptz,
    ADD COLUMN satisfaction smallint CHECK (satisfaction BETWEEN 1 AND 5),
    ADD COLUMN public_token text UNIQUE;
CREATE INDEX tickets_open_priority ON tickets (priority DESC, stage_due_at) WHERE is_open;
CREATE INDEX tickets_micro_grid ON tickets (micro_grid_id, opened_at);

CREATE TABLE attachments (
    id           bigserial   PRIMARY KEY,
    ticket_id    bigint      NOT NULL REFERENCES tickets (id),
    created_at   timestamptz NOT NULL,
    uploaded_by  text        NOT NULL,
    content_type text        NOT NULL,
    data         bytea       NOT NULL
);
ALTER TABLE ticket_events ADD COLUMN attachments bigint[] NOT NULL DEFAULT '{}';

-- Deadlines and escalation steps. A timer fires once (fired_at) unless cancelled first; the
-- scheduler claims due rows with FOR UPDATE SKIP LOCKED, so a restart or a second center
-- instance never loses or doubles one.
CREATE TABLE ticket_timers (
    id           bigserial   PRIMARY KEY,
    ticket_id    bigint      NOT NULL REFERENCES tickets (id),
    kind         text        NOT NULL
        CHECK (kind IN ('accept', 'handle', 'overall', 'escalate', 'evaluate')),
    level        smallint    NOT NULL DEFAULT 0,
    due_at       timestamptz NOT NULL,
    fired_at     timestamptz,
    cancelled_at timestamptz
);
CREATE INDEX ticket_timers_due ON ticket_timers (due_at)
    WHERE fired_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX ticket_timers_ticket ON ticket_timers (ticket_id);

-- Emergency mode, per scope ('district' or a grid id), and an append-only ledger of operations
-- that are not about one ticket (mode switches, imports, assignment changes, broadcasts).
CREATE TABLE emergency_modes (
    scope      text        PRIMARY KEY,
    active     boolean     NOT NULL,
    since      timestamptz NOT NULL,
    actor_id   text        NOT NULL,
    note       text        NOT NULL DEFAULT ''
);
CREATE TABLE ops_ledger (
    id       bigserial   PRIMARY KEY,
    at       timestamptz NOT NULL,
    actor_id text        NOT NULL,
    action   text        NOT NULL,
    scope    text        NOT NULL DEFAULT '',
    note     text        NOT NULL DEFAULT ''
);

CREATE TABLE district_areas (
    id        text    PRIMARY KEY,
    name      text    NOT NULL,
    level     text    NOT NULL,
    kind      text    NOT NULL DEFAULT 'normal',
    parent    text,
    geometry  jsonb   NOT NULL,
    active    boolean NOT NULL DEFAULT true
);
CREATE TABLE district_cameras (
    id         text    PRIMARY KEY,
    name       text    NOT NULL,
    lon        double precision NOT NULL,
    lat        double precision NOT NULL,
    edge_id    text,
    micro_grid text,
    active     boolean NOT NULL DEFAULT true
);
CREATE TABLE district_people (
    id         text    PRIMARY KEY,
    name       text    NOT NULL,
    role       text    NOT NULL,
    micro_grid text,
    grid       text,
    post       text,
    department text,
    phone      text,
    duty       jsonb   NOT NULL DEFAULT '[]',
    active     boolean NOT NULL DEFAULT true
);
CREATE TABLE district_departments (
    id          text    PRIMARY KEY,
    name        text    NOT NULL,
    event_types text[]  NOT NULL DEFAULT '{}',
    active      boolean NOT NULL DEFAULT true
);
CREATE TABLE district_meta (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id        text NOT NULL,
    name      text NOT NULL,
    timezone  text NOT NULL
);
