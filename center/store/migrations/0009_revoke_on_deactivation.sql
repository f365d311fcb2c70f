-- One way to revoke a person's tokens (raise their generation, 0008): `POST /auth/logout-all`
-- (center/auth.py revoke_tokens) calls it, and so does deactivating a person (the district file
-- dropped them, or an admin did): a token refused while they were inactive must stay refused if
-- they are reactivated later, e.g. when a worker rejoins and the district is imported again.
CREATE OR REPLACE FUNCTION person_tokens_revoke(person text) RETURNS integer
LANGUAGE sql AS $$
    INSERT INTO person_tokens (person_id, generation, revoked_at) VALUES (person, 1, now())
    ON CONFLICT (person_id) DO UPDATE SET
        generation = person_tokens.generation + 1,
        revoked_at = now()
    RETURNING generation;
$$;

CREATE OR REPLACE FUNCTION person_tokens_deactivated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM person_tokens_revoke(NEW.id);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS person_deactivated ON district_people;
CREATE TRIGGER person_deactivated
    AFTER UPDATE OF active ON district_people
    FOR EACH ROW WHEN (OLD.active AND NOT NEW.active)
    EXECUTE FUNCTION person_tokens_deactivated();
