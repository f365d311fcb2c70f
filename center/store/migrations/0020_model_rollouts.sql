-- Model rollouts (docs/model-rollout.md): a candidate detector model assigned to canary edges,
-- then promoted to every edge or rolled back to what each edge ran before.

CREATE TABLE model_rollouts (
    id             bigserial   PRIMARY KEY,
    model          text        NOT NULL,
    path           text,
    sha256         text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    state          text        NOT NULL DEFAULT 'canary'
                               CHECK (state IN ('canary', 'promoted', 'rolled_back')),
    started_at     timestamptz NOT NULL,
    promoted_at    timestamptz,
    -- Promoted although the canary check said hold (`promote --force`), and what it said.
    promote_forced boolean     NOT NULL DEFAULT false,
    promote_check  text,
    rolled_back_at timestamptz
);

-- Every edge a rollout assigned its model to (the canary edges at start, the others at
-- promotion), the model it ran before (for rollback) and what the edge reported back: when it
-- ran the model (confirmed_at, the edge's own switch time), why it refused it, and when it
-- ran its previous model again after a rollback.
CREATE TABLE model_rollout_edges (
    rollout_id   bigint      NOT NULL REFERENCES model_rollouts (id),
    edge_id      text        NOT NULL,
    canary       boolean     NOT NULL,
    previous     jsonb       NOT NULL,
    assigned_at  timestamptz NOT NULL,
    confirmed_at timestamptz,
    refused_at   timestamptz,
    refusal      text,
    restored_at  timestamptz,
    PRIMARY KEY (rollout_id, edge_id)
);

-- What each edge must run: the retained gridwatch/v1/model/{edge_id} message
-- (center.protocol.ModelAssignment). The center publishes a row when it changes and all of
-- them again on every connection to the broker.
CREATE TABLE model_assignments (
    edge_id      text        PRIMARY KEY,
    payload      jsonb       NOT NULL,
    updated_at   timestamptz NOT NULL,
    published_at timestamptz
);

-- The model an edge reports running (center.protocol.ModelState), beside its config.
ALTER TABLE edge_configs ADD COLUMN model jsonb;
