-- Hand-off to a line department (docs/tickets.md "Hand-off to a department"): a case the
-- micro-grid cannot solve goes to a department's queue (worker -> micro-grid leader ->
-- departments, GB/T 30428's closed loop). department_id names that department while the case
-- is there; its staff see and take it, its time limits apply, and it comes back to the leader
-- or operator for verification. A dispatch, reassign or return to the micro-grid clears it.
ALTER TABLE tickets ADD COLUMN department_id text;
CREATE INDEX tickets_department_open ON tickets (department_id) WHERE is_open;
