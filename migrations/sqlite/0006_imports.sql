-- Imports (SQLite). Keep in step with ../postgres/0006_imports.sql: same
-- tables, columns and indexes; only the column types differ.

-- One CSV import: what it imports into and on what terms, where it has got
-- to (the checkpoint, committed with each batch), and its counts.
CREATE TABLE imports (
    id          BLOB PRIMARY KEY,
    -- 'upload': the file is stored in import_chunks and any worker runs it;
    -- 'cli': `tidings import` reads the file itself and runs it in-process.
    source      TEXT NOT NULL CHECK (source IN ('upload', 'cli')),
    filename    TEXT NOT NULL,
    -- JSON array of list ids.
    lists       TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('confirmed', 'pending')),
    basis       TEXT,
    -- JSON: the header row and which columns hold the address and name.
    columns     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('uploading', 'queued', 'running', 'done', 'failed')),
    actor       TEXT NOT NULL,
    ip          TEXT,
    user_agent  TEXT,
    total_bytes BIGINT NOT NULL DEFAULT 0,
    -- The checkpoint: byte offset and line number of the next unread row.
    bytes_done  BIGINT NOT NULL DEFAULT 0,
    next_line   BIGINT NOT NULL DEFAULT 2,
    rows_done   BIGINT NOT NULL DEFAULT 0,
    added       BIGINT NOT NULL DEFAULT 0,
    updated     BIGINT NOT NULL DEFAULT 0,
    skipped     BIGINT NOT NULL DEFAULT 0,
    suppressed  BIGINT NOT NULL DEFAULT 0,
    invalid     BIGINT NOT NULL DEFAULT 0,
    error       TEXT,
    attempts    BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT
);
CREATE INDEX imports_by_state ON imports (state, lease_until);
CREATE INDEX imports_by_created ON imports (created_at);

-- The uploaded file, in pieces, so any worker instance can read it and no
-- process holds it whole. Deleted when the import ends.
CREATE TABLE import_chunks (
    import_id    BLOB NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    start_offset BIGINT NOT NULL,
    data         BLOB NOT NULL,
    PRIMARY KEY (import_id, start_offset)
);

-- Rows that were not imported as asked, by line number. No addresses: the
-- line number finds the row in the organiser's own file.
CREATE TABLE import_errors (
    import_id BLOB NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    line      BIGINT NOT NULL,
    outcome   TEXT NOT NULL CHECK (outcome IN ('skipped', 'suppressed', 'invalid')),
    code      TEXT NOT NULL,
    message   TEXT NOT NULL,
    PRIMARY KEY (import_id, line)
);

-- The import that last saw this subscriber: a later row of the same file
-- with the same address is a duplicate, found without keeping every
-- address of the file in memory.
ALTER TABLE subscribers ADD COLUMN last_import_id BLOB;
