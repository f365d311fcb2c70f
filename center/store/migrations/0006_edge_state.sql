-- What each edge reports for the engineer view: the config it runs now (retained topic
-- gridwatch/v1/config-state/{edge_id}, credentials removed) and a recent frame per camera
-- (gridwatch/v1/frames/{edge_id}/{camera_id}). Only the latest of each is kept.

CREATE TABLE edge_configs (
    edge_id     text        PRIMARY KEY,
    config      jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE camera_frames (
    camera_id   text        PRIMARY KEY,
    edge_id     text        NOT NULL,
    jpeg        bytea       NOT NULL,
    updated_at  timestamptz NOT NULL
);
