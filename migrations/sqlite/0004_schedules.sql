-- Recurring schedules: a cron expression in an IANA time zone, and what to
-- send each time it fires. Keep in step with ../postgres/0004_schedules.sql.

CREATE TABLE schedules (
    id            BLOB PRIMARY KEY,
    name          TEXT NOT NULL,
    -- Exactly as the organiser typed it (five-field cron, or the cron
    -- crate's six/seven-field form); translated each time it is read.
    cron          TEXT NOT NULL,
    -- IANA zone name; the cron expression is evaluated on its wall clock.
    timezone      TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('repeat', 'digest')),
    subject       TEXT NOT NULL,
    body_markdown TEXT NOT NULL,
    enabled       BOOLEAN NOT NULL DEFAULT TRUE,
    -- The next tick, in UTC. NULL while disabled, or when the expression
    -- has no future occurrence. Workers claim a tick by compare-and-set on
    -- this column.
    next_run_at   TEXT,
    last_run_at   TEXT,
    created_by    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX schedules_due ON schedules (next_run_at);

CREATE TABLE schedule_lists (
    schedule_id BLOB NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    list_id     BLOB NOT NULL REFERENCES lists (id),
    PRIMARY KEY (schedule_id, list_id)
);

-- One row per tick that ran, with the update it created (NULL when a digest
-- had nothing to collect). The unique key refuses a second run of the same
-- tick even if the compare-and-set were ever bypassed. Digests leave out
-- updates listed here, so a digest never collects another schedule's output;
-- rows outlive their schedule (schedule_id becomes NULL) for that reason.
CREATE TABLE schedule_runs (
    id          BLOB PRIMARY KEY,
    schedule_id BLOB REFERENCES schedules (id) ON DELETE SET NULL,
    due_at      TEXT NOT NULL,
    ran_at      TEXT NOT NULL,
    update_id   BLOB REFERENCES updates (id) ON DELETE SET NULL,
    UNIQUE (schedule_id, due_at)
);
CREATE INDEX schedule_runs_by_update ON schedule_runs (update_id);

-- What each digest schedule has already collected. A digest takes what was
-- sent and is not in here, rather than a time window, so an update that
-- finishes while a digest is being made goes into the next one instead of
-- falling between the two.
CREATE TABLE digest_entries (
    schedule_id BLOB NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    update_id   BLOB NOT NULL REFERENCES updates (id) ON DELETE CASCADE,
    PRIMARY KEY (schedule_id, update_id)
);
