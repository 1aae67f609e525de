-- Issue 16 §6: organisers' powers have limits.

-- Login throttling by client address and account together: each failure
-- row also names the account tried (a SHA-256, as key_hash), so
-- `tidings user unlock` can clear every row about one account whatever
-- address it came from.
ALTER TABLE login_failures ADD COLUMN account_hash TEXT;
CREATE INDEX login_failures_by_account ON login_failures (account_hash);

-- Test sends, counted per organiser (a user id or an API token id) for the
-- hourly cap. No addresses are kept: only how many copies went.
CREATE TABLE test_sends (
    id         BLOB PRIMARY KEY,
    organiser  TEXT NOT NULL,
    recipients INTEGER NOT NULL,
    sent_at    TEXT NOT NULL
);
CREATE INDEX test_sends_by_organiser ON test_sends (organiser, sent_at);

-- Mailgun webhook signatures already accepted, kept for their validity
-- window, so a captured request cannot be replayed (on any instance).
CREATE TABLE webhook_signatures (
    token   TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
CREATE INDEX webhook_signatures_by_time ON webhook_signatures (seen_at);
