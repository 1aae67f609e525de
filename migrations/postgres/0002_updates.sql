-- Updates (the organiser's campaigns) and their per-recipient deliveries.
-- Keep in step with ../sqlite/0002_updates.sql.

CREATE TABLE updates (
    id            UUID PRIMARY KEY,
    subject       TEXT NOT NULL,
    body_markdown TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'sending', 'paused', 'sent', 'cancelled')),
    send_at       TIMESTAMPTZ,
    created_by    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ
);
CREATE INDEX updates_by_status ON updates (status, send_at);

CREATE TABLE update_lists (
    update_id UUID NOT NULL REFERENCES updates (id) ON DELETE CASCADE,
    list_id   UUID NOT NULL REFERENCES lists (id),
    PRIMARY KEY (update_id, list_id)
);

-- One row per (update, person), created as a snapshot of the confirmed
-- audience when sending starts.
CREATE TABLE deliveries (
    update_id       UUID NOT NULL REFERENCES updates (id) ON DELETE CASCADE,
    subscriber_id   UUID NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    -- The list whose unsubscribe link this person's copy carries.
    list_id         UUID NOT NULL REFERENCES lists (id),
    -- The address and name as they were when the audience was taken, and
    -- the address's SHA-256 (checked against suppressions at send time).
    email           TEXT NOT NULL,
    name            TEXT NOT NULL,
    email_hash      TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'bounced', 'skipped')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_until     TIMESTAMPTZ,
    message_id      TEXT,
    smtp_reply      TEXT,
    sent_at         TIMESTAMPTZ,
    PRIMARY KEY (update_id, subscriber_id)
);
CREATE INDEX deliveries_due ON deliveries (update_id, status, next_attempt_at);
CREATE INDEX deliveries_by_subscriber ON deliveries (subscriber_id);
CREATE INDEX deliveries_by_sent_at ON deliveries (sent_at);

-- The send-rate token bucket, so a restart does not grant a fresh burst.
CREATE TABLE send_rate (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    tokens      DOUBLE PRECISION NOT NULL,
    refilled_at TIMESTAMPTZ NOT NULL
);
