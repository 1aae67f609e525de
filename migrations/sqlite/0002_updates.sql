-- Updates (the organiser's campaigns) and their per-recipient deliveries.
-- Keep in step with ../postgres/0002_updates.sql.

CREATE TABLE updates (
    id            BLOB PRIMARY KEY,
    subject       TEXT NOT NULL,
    body_markdown TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'sending', 'paused', 'sent', 'cancelled')),
    send_at       TEXT,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    started_at    TEXT,
    finished_at   TEXT
);
CREATE INDEX updates_by_status ON updates (status, send_at);

CREATE TABLE update_lists (
    update_id BLOB NOT NULL REFERENCES updates (id) ON DELETE CASCADE,
    list_id   BLOB NOT NULL REFERENCES lists (id),
    PRIMARY KEY (update_id, list_id)
);

-- One row per (update, person), created as a snapshot of the confirmed
-- audience when sending starts.
CREATE TABLE deliveries (
    update_id       BLOB NOT NULL REFERENCES updates (id) ON DELETE CASCADE,
    subscriber_id   BLOB NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    -- The list whose unsubscribe link this person's copy carries.
    list_id         BLOB NOT NULL REFERENCES lists (id),
    -- The address and name as they were when the audience was taken, and
    -- the address's SHA-256 (checked against suppressions at send time).
    email           TEXT NOT NULL,
    name            TEXT NOT NULL,
    email_hash      TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'bounced', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT,
    message_id      TEXT,
    smtp_reply      TEXT,
    sent_at         TEXT,
    PRIMARY KEY (update_id, subscriber_id)
);
CREATE INDEX deliveries_due ON deliveries (update_id, status, next_attempt_at);
CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id);
CREATE INDEX deliveries_by_sent_at ON deliveries (sent_at);

-- The send-rate token bucket, so a restart does not grant a fresh burst.
CREATE TABLE send_rate (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    tokens      DOUBLE PRECISION NOT NULL,
    refilled_at TEXT NOT NULL
);
