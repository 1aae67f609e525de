-- Issue 24 §5: the record stands on its own. Keep in step with
-- ../sqlite/0021_record_stands_alone.sql.

-- Each ledger entry names the controller (the group's name and contact
-- address as they were when it was written) and, for an import or an
-- organiser's add, the kind of basis beside its free text.
ALTER TABLE consent_events
    ADD COLUMN controller_name TEXT,
    ADD COLUMN controller_contact TEXT,
    ADD COLUMN basis_kind TEXT;

-- How often a list mails ("About twice a month"); empty when not stated.
ALTER TABLE lists ADD COLUMN frequency TEXT NOT NULL DEFAULT '';

-- Rights requests: a `complaint` kind (acknowledged within 30 days), and a
-- stop-the-clock pause (Data (Use and Access) Act 2025) that moves the due
-- date by the time paused.
ALTER TABLE rights_requests DROP CONSTRAINT IF EXISTS rights_requests_kind_check;
ALTER TABLE rights_requests ADD CONSTRAINT rights_requests_kind_check
    CHECK (kind IN ('access', 'erasure', 'rectification', 'portability', 'objection', 'restriction', 'complaint'));
ALTER TABLE rights_requests
    ADD COLUMN paused_at TIMESTAMPTZ,
    ADD COLUMN pause_reason TEXT,
    ADD COLUMN paused_seconds BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN acknowledge_due_at TIMESTAMPTZ,
    ADD COLUMN acknowledged_at TIMESTAMPTZ;

-- An import remembers the kind of basis it was given, for its ledger entries.
ALTER TABLE imports ADD COLUMN basis_kind TEXT NOT NULL DEFAULT 'unspecified';
