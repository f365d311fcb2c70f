-- Video patrol (docs/video.md "Video patrol"): an operator files a case from a frame of a
-- camera's live view. Its source is 'video_patrol', so the ledger, the API and the indicators
-- tell it from a worker's patrol photo ('patrol') and from the camera's own alerts ('camera').
-- The constraint is the one 0002 declared inline on the column (PostgreSQL named it).
ALTER TABLE tickets DROP CONSTRAINT tickets_source_check;
ALTER TABLE tickets ADD CONSTRAINT tickets_source_check
    CHECK (source IN ('camera', 'patrol', 'resident', 'open311', 'video_patrol'));
