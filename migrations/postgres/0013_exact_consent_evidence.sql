-- Issue 16 §2: the consent evidence is exactly what the person saw. Keep in
-- step with ../sqlite/0013_exact_consent_evidence.sql.
--
-- * 0010 dropped the ledger's foreign keys to consent_statements and
--   privacy_notices (each was a `SELECT … FOR KEY SHARE` per subscribe), so
--   the wording a ledger entry points at could be deleted. These triggers
--   put the guard on the evidence tables instead: a delete is refused while
--   any ledger entry refers to the row. Updates were already refused (0001).
--   The check scans the ledger, but only when someone deletes a statement or
--   notice, which Tidings itself never does; subscribes pay nothing for it.
--   TRUNCATE skips row triggers, so it is refused outright while the ledger
--   names any statement or notice.
-- * subscriptions.pending_since: when the request that made a subscription
--   pending was made. Repeated requests do not move it, so the retention
--   purge of never-confirmed subscriptions counts from the first request
--   (last_requested_at still moves with every request).
CREATE FUNCTION tidings_keep_referenced_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM consent_events WHERE statement_id = OLD.id) THEN
        RAISE EXCEPTION 'consent_statements: a ledger entry refers to this statement, so it cannot be deleted'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN OLD;
END $$;

CREATE FUNCTION tidings_keep_referenced_notice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM consent_events WHERE notice_version = OLD.version) THEN
        RAISE EXCEPTION 'privacy_notices: a ledger entry refers to this notice, so it cannot be deleted'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER consent_statements_kept_while_referenced BEFORE DELETE ON consent_statements
    FOR EACH ROW EXECUTE FUNCTION tidings_keep_referenced_statement();
CREATE TRIGGER privacy_notices_kept_while_referenced BEFORE DELETE ON privacy_notices
    FOR EACH ROW EXECUTE FUNCTION tidings_keep_referenced_notice();

CREATE FUNCTION tidings_refuse_evidence_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM consent_events WHERE statement_id IS NOT NULL OR notice_version IS NOT NULL) THEN
        RAISE EXCEPTION '%: ledger entries refer to it, so it cannot be truncated', TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER consent_statements_not_truncated BEFORE TRUNCATE ON consent_statements
    FOR EACH STATEMENT EXECUTE FUNCTION tidings_refuse_evidence_truncate();
CREATE TRIGGER privacy_notices_not_truncated BEFORE TRUNCATE ON privacy_notices
    FOR EACH STATEMENT EXECUTE FUNCTION tidings_refuse_evidence_truncate();

ALTER TABLE subscriptions ADD COLUMN pending_since TIMESTAMPTZ;
UPDATE subscriptions SET pending_since = COALESCE(last_requested_at, created_at) WHERE status = 'pending';
