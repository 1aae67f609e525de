-- Issue 16 §7: a send stops itself when recipients complain (PostgreSQL).
-- Keep in step with ../sqlite/0016_send_guard.sql.

-- Per update: copies handed to the relay (claimed and not given back or
-- retried later), and the complaints and hard bounces tied to its copies
-- (by VERP or Message-ID, from webhooks, ARF, DSNs and the relay's own
-- refusals). Counted as they happen, so the check is one row by primary key.
ALTER TABLE updates ADD COLUMN attempted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE updates ADD COLUMN complaints BIGINT NOT NULL DEFAULT 0;
ALTER TABLE updates ADD COLUMN hard_bounces BIGINT NOT NULL DEFAULT 0;
-- The counts when an organiser last resumed a send that had paused itself:
-- the thresholds apply to what came after.
ALTER TABLE updates ADD COLUMN guard_attempted BIGINT NOT NULL DEFAULT 0;
ALTER TABLE updates ADD COLUMN guard_complaints BIGINT NOT NULL DEFAULT 0;
ALTER TABLE updates ADD COLUMN guard_hard_bounces BIGINT NOT NULL DEFAULT 0;
-- Why the send paused itself, while it stays paused (cleared on resume;
-- the operator alert keeps the history).
ALTER TABLE updates ADD COLUMN auto_paused_reason TEXT;

-- Updates sent before this migration: their figures from what is recorded.
UPDATE updates SET
    attempted = (SELECT COUNT(*) FROM deliveries d
                 WHERE d.update_id = updates.id AND d.status IN ('sent', 'failed', 'bounced')),
    complaints = (SELECT COUNT(*) FROM bounce_events b
                  WHERE b.update_id = updates.id AND b.class = 'complaint' AND b.outcome <> 'unmatched'),
    hard_bounces = (SELECT COUNT(*) FROM bounce_events b
                    WHERE b.update_id = updates.id AND b.class = 'hard' AND b.outcome <> 'unmatched')
WHERE status IN ('sending', 'paused', 'sent', 'cancelled');
