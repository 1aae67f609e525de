-- A supporter's request for a copy of their data, from the preferences
-- page: the copy is mailed only after they click a fresh, single-use link.
-- Only the SHA-256 of the link's token is stored.
CREATE TABLE data_copy_tokens (
    token_hash    TEXT PRIMARY KEY,
    subscriber_id BLOB NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    used_at       TEXT
);
CREATE INDEX data_copy_tokens_by_subscriber ON data_copy_tokens (subscriber_id);
