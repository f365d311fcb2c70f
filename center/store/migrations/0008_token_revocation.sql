-- Bearer tokens are revoked when a person's password changes or they log out everywhere.
-- Every token carries the person's token generation (the JWT claim "gen"); the center accepts
-- a token only while its generation is the person's current one (center/auth.py). A person
-- without a row here is at generation 0 (tokens from before this migration carry no "gen"
-- and count as 0, so upgrading logs nobody out).
--
-- Kept out of district_people on purpose: the district is read back with SELECT * into the
-- strict district model, and the district import must never touch these columns.
CREATE TABLE IF NOT EXISTS person_tokens (
    person_id           text        PRIMARY KEY REFERENCES district_people (id) ON DELETE CASCADE,
    generation          integer     NOT NULL DEFAULT 0 CHECK (generation >= 0),
    password_changed_at timestamptz,
    revoked_at          timestamptz
);

-- Any change of a password hash, whoever makes it (the API, `gridwatch center set-password`,
-- `gen-passwords`, plain SQL), bumps the generation in the same transaction. Setting the first
-- password (NULL -> hash) does not: nobody could have logged in, so there is nothing to revoke.
CREATE OR REPLACE FUNCTION person_tokens_password_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO person_tokens (person_id, generation, password_changed_at, revoked_at)
    VALUES (NEW.id, CASE WHEN OLD.password_hash IS NULL THEN 0 ELSE 1 END, now(),
            CASE WHEN OLD.password_hash IS NULL THEN NULL ELSE now() END)
    ON CONFLICT (person_id) DO UPDATE SET
        generation = person_tokens.generation
                     + CASE WHEN OLD.password_hash IS NULL THEN 0 ELSE 1 END,
        password_changed_at = now(),
        revoked_at = CASE WHEN OLD.password_hash IS NULL THEN person_tokens.revoked_at
                          ELSE now() END;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS password_changed ON district_people;
CREATE TRIGGER password_changed
    AFTER UPDATE OF password_hash ON district_people
    FOR EACH ROW WHEN (OLD.password_hash IS DISTINCT FROM NEW.password_hash)
    EXECUTE FUNCTION person_tokens_password_changed();

-- Every center process LISTENs on this channel and updates its in-memory copy of the
-- generations, so a revocation made by another process takes effect there at once (delivered
-- when the revoking transaction commits).
CREATE OR REPLACE FUNCTION person_tokens_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gridwatch_tokens',
                      json_build_object('person_id', NEW.person_id,
                                        'generation', NEW.generation)::text);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS generation_changed ON person_tokens;
CREATE TRIGGER generation_changed
    AFTER INSERT OR UPDATE OF generation ON person_tokens
    FOR EACH ROW EXECUTE FUNCTION person_tokens_notify();
