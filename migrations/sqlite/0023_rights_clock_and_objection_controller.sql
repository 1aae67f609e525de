-- Issue 24 §5, finished: the history of each rights request, and the
-- controller in each objection (SQLite). Keep in step with
-- ../postgres/0023_rights_clock_and_objection_controller.sql.

-- Every change to a rights request, with who made it, when and why: the
-- stop-the-clock pauses and resumes (Data (Use and Access) Act 2025), the
-- extension, a complaint's acknowledgement, notes and the closing. Rows are
-- only appended; erasure of the person scrubs their name and address out of
-- `reason`, as it does out of the request's own notes.
CREATE TABLE rights_request_events (
    id          BLOB PRIMARY KEY,
    request_id  BLOB NOT NULL REFERENCES rights_requests (id) ON DELETE CASCADE,
    occurred_at TEXT NOT NULL,
    action      TEXT NOT NULL CHECK (action IN ('logged', 'paused', 'resumed', 'extended', 'acknowledged', 'noted', 'completed', 'refused')),
    reason      TEXT NOT NULL DEFAULT '',
    actor       TEXT NOT NULL,
    actor_label TEXT NOT NULL DEFAULT ''
);
CREATE INDEX rights_request_events_by_request ON rights_request_events (request_id, occurred_at);

-- An objection to all of the group's mail names the controller (the
-- group's name and contact address as they were then), as ledger entries do.
ALTER TABLE objections ADD COLUMN controller_name TEXT;
ALTER TABLE objections ADD COLUMN controller_contact TEXT;
