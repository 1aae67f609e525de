-- Leaner deliveries (see ../postgres/0005_lean_deliveries.sql for why).
-- SQLite cannot drop constraints or columns in use, so the table is rebuilt.
CREATE TABLE deliveries_lean (
    update_id       BLOB NOT NULL,
    subscriber_id   BLOB NOT NULL,
    -- The list whose unsubscribe link this person's copy carries.
    list_id         BLOB NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'bounced', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT,
    message_id      TEXT,
    smtp_reply      TEXT,
    sent_at         TEXT,
    PRIMARY KEY (update_id, subscriber_id)
);
INSERT INTO deliveries_lean (update_id, subscriber_id, list_id, status, attempts, next_attempt_at, lease_until,
                             message_id, smtp_reply, sent_at)
SELECT update_id, subscriber_id, list_id, status, attempts, next_attempt_at, lease_until, message_id, smtp_reply, sent_at
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_lean RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries (update_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON deliveries (update_id, lease_until) WHERE status = 'sending';

-- Messages accepted per minute, kept two days, for the hourly and daily caps.
CREATE TABLE send_counts (
    minute TEXT PRIMARY KEY,
    sent   INTEGER NOT NULL
);
