-- Issue 16 §2: the consent evidence is exactly what the person saw. Keep in
-- step with ../postgres/0013_exact_consent_evidence.sql.
--
-- * Published wording a ledger entry names can no longer be deleted. Updates
--   were already refused (0001); a delete now is too while any entry refers
--   to the row. The check scans the ledger, but only when someone deletes a
--   statement or notice, which Tidings itself never does: subscribes pay
--   nothing for it (unlike a foreign key, see 0010 on PostgreSQL).
-- * subscriptions.pending_since: when the request that made a subscription
--   pending was made. Repeated requests do not move it, so the retention
--   purge of never-confirmed subscriptions counts from the first request
--   (last_requested_at still moves with every request).
CREATE TRIGGER consent_statements_kept_while_referenced BEFORE DELETE ON consent_statements
WHEN EXISTS (SELECT 1 FROM consent_events WHERE statement_id = OLD.id)
BEGIN SELECT RAISE(ABORT, 'consent_statements: a ledger entry refers to this statement, so it cannot be deleted'); END;

CREATE TRIGGER privacy_notices_kept_while_referenced BEFORE DELETE ON privacy_notices
WHEN EXISTS (SELECT 1 FROM consent_events WHERE notice_version = OLD.version)
BEGIN SELECT RAISE(ABORT, 'privacy_notices: a ledger entry refers to this notice, so it cannot be deleted'); END;

ALTER TABLE subscriptions ADD COLUMN pending_since TEXT;
UPDATE subscriptions SET pending_since = COALESCE(last_requested_at, created_at) WHERE status = 'pending';
