-- Issue 24 §5: the record stands on its own. Keep in step with
-- ../postgres/0021_record_stands_alone.sql.

-- Each ledger entry names the controller (the group's name and contact
-- address as they were when it was written) and, for an import or an
-- organiser's add, the kind of basis beside its free text.
ALTER TABLE consent_events ADD COLUMN controller_name TEXT;
ALTER TABLE consent_events ADD COLUMN controller_contact TEXT;
ALTER TABLE consent_events ADD COLUMN basis_kind TEXT;

-- How often a list mails ("About twice a month"), shown on the form and in
-- the confirmation mail; empty when not stated.
ALTER TABLE lists ADD COLUMN frequency TEXT NOT NULL DEFAULT '';

-- Rights requests: a `complaint` kind (acknowledged within 30 days), and a
-- stop-the-clock pause (Data (Use and Access) Act 2025) that moves the due
-- date by the time paused. SQLite cannot alter a CHECK, so the table is
-- rebuilt with the same columns plus the new ones.
CREATE TABLE rights_requests_new (
    id                 BLOB PRIMARY KEY,
    kind               TEXT NOT NULL CHECK (kind IN ('access', 'erasure', 'rectification', 'portability', 'objection', 'restriction', 'complaint')),
    subject            TEXT NOT NULL,
    subscriber_id      BLOB,
    received_at        TEXT NOT NULL,
    due_at             TEXT NOT NULL,
    extended_due_at    TEXT,
    extension_reason   TEXT,
    status             TEXT NOT NULL CHECK (status IN ('open', 'completed', 'refused')),
    outcome            TEXT NOT NULL DEFAULT '',
    notes              TEXT NOT NULL DEFAULT '',
    closed_at          TEXT,
    created_by         TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    -- Set while the clock is stopped, with the reason.
    paused_at          TEXT,
    pause_reason       TEXT,
    -- Seconds the clock has been stopped in earlier, resumed pauses.
    paused_seconds     INTEGER NOT NULL DEFAULT 0,
    -- A complaint must be acknowledged within 30 days.
    acknowledge_due_at TEXT,
    acknowledged_at    TEXT
);
INSERT INTO rights_requests_new (id, kind, subject, subscriber_id, received_at, due_at, extended_due_at,
    extension_reason, status, outcome, notes, closed_at, created_by, created_at, updated_at)
SELECT id, kind, subject, subscriber_id, received_at, due_at, extended_due_at,
    extension_reason, status, outcome, notes, closed_at, created_by, created_at, updated_at
FROM rights_requests;
DROP TABLE rights_requests;
ALTER TABLE rights_requests_new RENAME TO rights_requests;
CREATE INDEX rights_requests_by_status ON rights_requests (status, due_at);

-- An import remembers the kind of basis it was given, for its ledger entries.
ALTER TABLE imports ADD COLUMN basis_kind TEXT NOT NULL DEFAULT 'unspecified';
