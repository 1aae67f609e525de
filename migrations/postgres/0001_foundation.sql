-- Foundation schema (PostgreSQL). Keep in step with ../sqlite/0001_foundation.sql:
-- same tables, columns and constraints; only the column types differ.
-- Timestamps are written by the application (never SQL's own clock), so
-- tests can control time.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE lists (
    id          UUID PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    public      BOOLEAN NOT NULL DEFAULT TRUE,
    archive     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    deleted_at  TIMESTAMPTZ
);

CREATE TABLE privacy_notices (
    version        BIGINT PRIMARY KEY,
    url            TEXT,
    body           TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    effective_from TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE consent_statements (
    id             UUID PRIMARY KEY,
    list_id        UUID NOT NULL REFERENCES lists (id),
    version        BIGINT NOT NULL,
    body           TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    notice_version BIGINT NOT NULL REFERENCES privacy_notices (version),
    created_at     TIMESTAMPTZ NOT NULL,
    UNIQUE (list_id, version)
);

CREATE TABLE subscribers (
    id         UUID PRIMARY KEY,
    email      TEXT NOT NULL,
    email_norm TEXT NOT NULL UNIQUE,
    -- SHA-256 of email_norm: joins against suppressions in SQL.
    email_hash TEXT NOT NULL,
    name       TEXT NOT NULL DEFAULT '',
    attributes TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX subscribers_by_hash ON subscribers (email_hash);

CREATE TABLE subscriptions (
    subscriber_id             UUID NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    list_id                   UUID NOT NULL REFERENCES lists (id),
    status                    TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed', 'bounced', 'complained')),
    created_at                TIMESTAMPTZ NOT NULL,
    updated_at                TIMESTAMPTZ NOT NULL,
    confirmed_at              TIMESTAMPTZ,
    last_confirmation_sent_at TIMESTAMPTZ,
    -- When someone last asked to subscribe this address to this list.
    last_requested_at         TIMESTAMPTZ,
    PRIMARY KEY (subscriber_id, list_id)
);
CREATE INDEX subscriptions_by_list ON subscriptions (list_id, status);

CREATE TABLE confirmation_tokens (
    token_hash    TEXT PRIMARY KEY,
    subscriber_id UUID NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    used_at       TIMESTAMPTZ
);
CREATE TABLE confirmation_token_lists (
    token_hash TEXT NOT NULL REFERENCES confirmation_tokens (token_hash) ON DELETE CASCADE,
    list_id    UUID NOT NULL REFERENCES lists (id),
    PRIMARY KEY (token_hash, list_id)
);

CREATE TABLE consent_events (
    id             UUID PRIMARY KEY,
    subscriber_id  UUID NOT NULL REFERENCES subscribers (id),
    list_id        UUID NOT NULL REFERENCES lists (id),
    kind           TEXT NOT NULL CHECK (kind IN ('requested', 'confirmed', 'withdrawn', 'imported', 'erased', 'resubscribed', 'bounced', 'complained')),
    statement_id   UUID REFERENCES consent_statements (id),
    notice_version BIGINT REFERENCES privacy_notices (version),
    occurred_at    TIMESTAMPTZ NOT NULL,
    ip             TEXT,
    user_agent     TEXT,
    source         TEXT,
    actor          TEXT NOT NULL,
    detail         TEXT
);
CREATE INDEX consent_events_by_subscriber ON consent_events (subscriber_id, occurred_at);

-- The ledger is evidence: it may be erased (a data subject's right) but
-- never rewritten. Published texts are likewise immutable.
CREATE FUNCTION tidings_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only / immutable once published', TG_TABLE_NAME;
END $$;
CREATE TRIGGER consent_events_append_only BEFORE UPDATE ON consent_events
    FOR EACH ROW EXECUTE FUNCTION tidings_refuse_update();
CREATE TRIGGER privacy_notices_immutable BEFORE UPDATE ON privacy_notices
    FOR EACH ROW EXECUTE FUNCTION tidings_refuse_update();
CREATE TRIGGER consent_statements_immutable BEFORE UPDATE ON consent_statements
    FOR EACH ROW EXECUTE FUNCTION tidings_refuse_update();

CREATE TABLE suppressions (
    email_hash      TEXT PRIMARY KEY,
    reason          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    last_attempt_at TIMESTAMPTZ
);

CREATE TABLE outbox (
    id              UUID PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    message         BYTEA,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_until     TIMESTAMPTZ,
    last_error      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'editor')),
    created_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_tokens (
    id           UUID PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
