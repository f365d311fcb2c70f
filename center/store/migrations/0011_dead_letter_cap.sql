-- Dead letters keep a prefix of the payload (center/db/queries.py: DEAD_LETTER_PAYLOAD_MAX),
-- its full size and SHA-256, so one huge message cannot fill the disk and a sender can still
-- match what it sent. Old rows are swept by center/db/retention.py (received_at).

ALTER TABLE dead_letters
    ADD COLUMN payload_size   integer,
    ADD COLUMN payload_sha256 bytea;
UPDATE dead_letters SET payload_size = length(payload), payload_sha256 = sha256(payload);
ALTER TABLE dead_letters
    ALTER COLUMN payload_size SET NOT NULL,
    ALTER COLUMN payload_sha256 SET NOT NULL;
CREATE INDEX dead_letters_received_brin ON dead_letters USING brin (received_at);
