-- Bounces, complaints and operator alerts (PostgreSQL). Keep in step with
-- ../sqlite/0007_bounces.sql: same tables, columns and indexes; only the
-- column types differ.

-- Every bounce or complaint report Tidings received (webhook, DSN/ARF on
-- stdin, the bounce mailbox, or a synchronous SMTP refusal), with what was
-- done about it. The address itself is not kept: only its SHA-256 (the
-- same fingerprint suppressions use) and its domain, and the diagnostic
-- has the address blanked out, so erasing a subscriber (which nulls
-- subscriber_id) leaves nothing that names them.
CREATE TABLE bounce_events (
    id               UUID PRIMARY KEY,
    received_at      TIMESTAMPTZ NOT NULL,
    -- ses | postmark | sendgrid | mailgun | generic | dsn | arf | smtp
    source           TEXT NOT NULL,
    -- SHA-256 of the provider's event id (or of the report's own identity
    -- when it has none): the same event delivered twice is applied once.
    dedupe_key       TEXT NOT NULL UNIQUE,
    class            TEXT NOT NULL CHECK (class IN ('hard', 'soft', 'policy', 'complaint', 'delayed')),
    -- applied | suspended | unmatched | ignored
    outcome          TEXT NOT NULL,
    email_hash       TEXT,
    recipient_domain TEXT,
    subscriber_id    UUID REFERENCES subscribers (id) ON DELETE SET NULL,
    -- The delivery it was tied to (by VERP or Message-ID), if any.
    update_id        UUID REFERENCES updates (id) ON DELETE SET NULL,
    status_code      TEXT,
    diagnostic       TEXT,
    -- Where the event sits in the subscriber's sequence of deliveries: the
    -- tied delivery's send time, else when the report says it happened.
    -- Consecutive soft bounces are counted in this order.
    ref_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX bounce_events_by_time ON bounce_events (received_at);
CREATE INDEX bounce_events_by_class ON bounce_events (class, received_at);
CREATE INDEX bounce_events_by_subscriber ON bounce_events (subscriber_id, class, ref_at);

-- Things an admin should look at (a mailbox provider blocking us by
-- policy, an SNS subscription waiting for confirmation), shown on the
-- dashboard until dismissed. A repeat of an open alert counts up instead of
-- adding a row.
CREATE TABLE operator_alerts (
    id            UUID PRIMARY KEY,
    kind          TEXT NOT NULL,
    -- What makes two alerts the same (e.g. the recipient domain).
    subject       TEXT NOT NULL,
    title         TEXT NOT NULL,
    detail        TEXT NOT NULL,
    link          TEXT,
    occurrences   BIGINT NOT NULL DEFAULT 1,
    first_seen_at TIMESTAMPTZ NOT NULL,
    last_seen_at  TIMESTAMPTZ NOT NULL,
    dismissed_at  TIMESTAMPTZ,
    dismissed_by  TEXT
);
CREATE INDEX operator_alerts_open ON operator_alerts (dismissed_at, kind, subject);
