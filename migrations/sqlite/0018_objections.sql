-- Issue 24 §2: "Unsubscribe from everything" is one objection to all of the
-- group's mail (SQLite). Keep in step with ../postgres/0018_objections.sql.
--
-- One row per objection: who, when, how (the page or link used) and the
-- request's facts. The per-list subscriptions are still set to
-- 'unsubscribed', but this row, not one ledger entry per list, is the
-- evidence. The address also gets a suppression (reason 'objected'), which
-- only the person's own new double opt-in lifts. Retention never deletes
-- these rows; erasure (the person's own right) does, with the subscriber.
CREATE TABLE objections (
    id             BLOB PRIMARY KEY,
    subscriber_id  BLOB NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    occurred_at    TEXT NOT NULL,
    method         TEXT NOT NULL,
    notice_version INTEGER,
    ip             TEXT,
    user_agent     TEXT,
    actor          TEXT NOT NULL
);
CREATE INDEX objections_by_subscriber ON objections (subscriber_id, occurred_at);

CREATE TRIGGER objections_append_only BEFORE UPDATE ON objections
BEGIN SELECT RAISE(ABORT, 'objections is append-only'); END;
