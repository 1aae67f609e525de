-- Foundation schema (SQLite). Keep in step with ../postgres/0001_foundation.sql:
-- same tables, columns and constraints; only the column types differ.
-- Timestamps are RFC 3339 UTC text written by the application (never SQL's
-- own clock), so they compare correctly as text and tests can control time.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE lists (
    id          BLOB PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    public      BOOLEAN NOT NULL DEFAULT TRUE,
    archive     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT
);

CREATE TABLE privacy_notices (
    version        INTEGER PRIMARY KEY,
    url            TEXT,
    body           TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    effective_from TEXT NOT NULL,
    created_at     TEXT NOT NULL
);

CREATE TABLE consent_statements (
    id             BLOB PRIMARY KEY,
    list_id        BLOB NOT NULL REFERENCES lists (id),
    version        INTEGER NOT NULL,
    body           TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    notice_version INTEGER NOT NULL REFERENCES privacy_notices (version),
    created_at     TEXT NOT NULL,
    UNIQUE (list_id, version)
);

CREATE TABLE subscribers (
    id         BLOB PRIMARY KEY,
    email      TEXT NOT NULL,
    email_norm TEXT NOT NULL UNIQUE,
    -- SHA-256 of email_norm: joins against suppressions in SQL.
    email_hash TEXT NOT NULL,
    name       TEXT NOT NULL DEFAULT '',
    attributes TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX subscribers_by_hash ON subscribers (email_hash);

CREATE TABLE subscriptions (
    subscriber_id             BLOB NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    list_id                   BLOB NOT NULL REFERENCES lists (id),
    status                    TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed', 'bounced', 'complained')),
    created_at                TEXT NOT NULL,
    updated_at                TEXT NOT NULL,
    confirmed_at              TEXT,
    last_confirmation_sent_at TEXT,
    -- When someone last asked to subscribe this address to this list.
    last_requested_at         TEXT,
    PRIMARY KEY (subscriber_id, list_id)
);
CREATE INDEX subscriptions_by_list ON subscriptions (list_id, status);

CREATE TABLE confirmation_tokens (
    token_hash    TEXT PRIMARY KEY,
    subscriber_id BLOB NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    used_at       TEXT
);
CREATE TABLE confirmation_token_lists (
    token_hash TEXT NOT NULL REFERENCES confirmation_tokens (token_hash) ON DELETE CASCADE,
    list_id    BLOB NOT NULL REFERENCES lists (id),
    PRIMARY KEY (token_hash, list_id)
);

CREATE TABLE consent_events (
    id             BLOB PRIMARY KEY,
    subscriber_id  BLOB NOT NULL REFERENCES subscribers (id),
    list_id        BLOB NOT NULL REFERENCES lists (id),
    kind           TEXT NOT NULL CHECK (kind IN ('requested', 'confirmed', 'withdrawn', 'imported', 'erased', 'resubscribed', 'bounced', 'complained')),
    statement_id   BLOB REFERENCES consent_statements (id),
    notice_version INTEGER REFERENCES privacy_notices (version),
    occurred_at    TEXT NOT NULL,
    ip             TEXT,
    user_agent     TEXT,
    source         TEXT,
    actor          TEXT NOT NULL,
    detail         TEXT
);
CREATE INDEX consent_events_by_subscriber ON consent_events (subscriber_id, occurred_at);

-- The ledger is evidence: it may be erased (a data subject's right) but
-- never rewritten. Published texts are likewise immutable.
CREATE TRIGGER consent_events_append_only BEFORE UPDATE ON consent_events
BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END;
CREATE TRIGGER privacy_notices_immutable BEFORE UPDATE ON privacy_notices
BEGIN SELECT RAISE(ABORT, 'privacy_notices are immutable once published'); END;
CREATE TRIGGER consent_statements_immutable BEFORE UPDATE ON consent_statements
BEGIN SELECT RAISE(ABORT, 'consent_statements are immutable once published'); END;

CREATE TABLE suppressions (
    email_hash      TEXT PRIMARY KEY,
    reason          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    last_attempt_at TEXT
);

CREATE TABLE outbox (
    id              BLOB PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    message         BLOB,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_until     TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE users (
    id            BLOB PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'editor')),
    created_at    TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id           BLOB PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
