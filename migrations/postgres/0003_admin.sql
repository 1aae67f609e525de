-- The organiser UI (PostgreSQL). Keep in step with ../sqlite/0003_admin.sql:
-- same tables, columns and indexes; only the column types differ.
-- Timestamps are written by the application (never SQL's own clock).

-- Browser sessions. Only the SHA-256 of the cookie value is stored, so a
-- copy of the database lets nobody act as an organiser.
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL,
    -- The absolute end of the session, however active it is.
    expires_at   TIMESTAMPTZ NOT NULL,
    ip           TEXT,
    user_agent   TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

ALTER TABLE users ADD COLUMN last_login_at TIMESTAMPTZ;

-- Failed (and in-flight) login attempts, per client address and per
-- account, for throttling. The key is a SHA-256, so guessed addresses are
-- not kept in clear.
CREATE TABLE login_failures (
    id        UUID PRIMARY KEY,
    key_hash  TEXT NOT NULL,
    failed_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_failures_by_key ON login_failures (key_hash, failed_at);

-- One-time first-run links (`tidings serve` prints one while no organiser
-- account exists). Stored hashed; dead after 24 hours or once any account
-- exists.
CREATE TABLE setup_tokens (
    token_hash TEXT PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- Keyset pagination of subscribers (newest first, by uuid v7 id) must stay
-- fast at a million rows: these let each filter walk an index in id order
-- instead of sorting.
CREATE INDEX subscriptions_by_list_status_subscriber ON subscriptions (list_id, status, subscriber_id);
CREATE INDEX subscriptions_by_list_subscriber ON subscriptions (list_id, subscriber_id);
CREATE INDEX subscriptions_by_status_subscriber ON subscriptions (status, subscriber_id);
CREATE INDEX subscribers_by_created ON subscribers (created_at, id);
-- An address substring cannot use a b-tree, so searching by one scans;
-- this covering index lets that scan read ids and addresses in id order
-- instead of whole rows (about five times faster on SQLite at a million).
CREATE INDEX subscribers_by_id_email ON subscribers (id, email_norm);
