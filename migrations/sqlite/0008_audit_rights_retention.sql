-- The audit log, the rights-request log and the daily retention job.
-- Keep in step with ../postgres/0008_audit_rights_retention.sql.

-- Every organiser action: who, what, when, from where. Ids are UUID v7, so
-- their order is the order of events.
CREATE TABLE audit_log (
    id          BLOB PRIMARY KEY,
    occurred_at TEXT NOT NULL,
    -- `organiser:ID`, `api-token:ID`, `cli`, `system`, or `anonymous`.
    actor       TEXT NOT NULL,
    -- The organiser's address or the token's name at the time.
    actor_label TEXT NOT NULL,
    -- e.g. `POST /api/v1/updates/{id}/send`, `retention.purge`, `cli.erase`.
    action      TEXT NOT NULL,
    -- The concrete path or object the action was on.
    target      TEXT NOT NULL,
    -- The HTTP status of the answer (0 when not an HTTP request).
    status      INTEGER NOT NULL,
    ip          TEXT,
    detail      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_by_time ON audit_log (occurred_at);

-- Data-protection rights requests (UK GDPR arts. 15-22): due one month
-- after receipt, extendable by two further months with a reason.
CREATE TABLE rights_requests (
    id               BLOB PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('access', 'erasure', 'rectification', 'portability', 'objection', 'restriction')),
    -- Who asked, as the organiser recorded it (an erasure replaces it by
    -- the address's hash).
    subject          TEXT NOT NULL,
    subscriber_id    BLOB,
    received_at      TEXT NOT NULL,
    due_at           TEXT NOT NULL,
    extended_due_at  TEXT,
    extension_reason TEXT,
    status           TEXT NOT NULL CHECK (status IN ('open', 'completed', 'refused')),
    outcome          TEXT NOT NULL DEFAULT '',
    notes            TEXT NOT NULL DEFAULT '',
    closed_at        TEXT,
    created_by       TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX rights_requests_by_status ON rights_requests (status, due_at);

-- Periodic jobs that must run once per period however many workers run.
CREATE TABLE maintenance_jobs (
    job         TEXT PRIMARY KEY,
    next_run_at TEXT NOT NULL,
    lease_until TEXT
);
