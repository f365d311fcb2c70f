-- Issue 7, security: people log in with a password (an argon2 hash, never the password), and
-- the center signs its bearer tokens with a secret that, unless GRIDWATCH_SECRET_KEY is set, is
-- generated once per database and kept here (so no default secret exists anywhere).
ALTER TABLE district_people ADD COLUMN IF NOT EXISTS password_hash text;

CREATE TABLE IF NOT EXISTS server_secrets (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
