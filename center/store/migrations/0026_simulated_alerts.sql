-- Simulated alerts (issue 15): the demo's synthetic alerts draw made-up boxes on real frames,
-- and screens must say so. The wire's Alert.simulated is stored with the alert, and a ticket
-- that such an alert opened is simulated too (set once, when it opens: a ticket is one place's
-- case, and the alert that opened it decides what it is). A real edge never sets it, so every
-- row written before this migration is false. A constant default is a metadata-only change
-- (no table rewrite) on the partitioned alerts table and on tickets.
ALTER TABLE alerts ADD COLUMN simulated boolean NOT NULL DEFAULT false;
ALTER TABLE tickets ADD COLUMN simulated boolean NOT NULL DEFAULT false;
