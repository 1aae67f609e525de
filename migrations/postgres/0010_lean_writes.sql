-- Fewer index entries and foreign-key checks per subscribe, import row and
-- ledger entry (BENCHMARKS.md, "Imports"). Keep in step with
-- ../sqlite/0010_lean_writes.sql.
--
-- * subscribers_by_hash: nothing looks a subscriber up by address hash (the
--   suppression checks go from the subscriber to `suppressions` by its
--   primary key), and an index keyed by a random hash dirties a different
--   page for every new subscriber.
-- * subscriptions_by_list: a prefix of subscriptions_by_list_status_subscriber.
-- * The ledger's and subscriptions' references to lists, consent statements
--   and privacy notices: those rows are never deleted (lists are only
--   hidden, statements and notices are versioned), so the checks guard
--   nothing, yet each was a `SELECT … FOR KEY SHARE` per inserted row.
--   The references to subscribers stay: erasure and retention rely on them.
DROP INDEX subscribers_by_hash;
DROP INDEX subscriptions_by_list;
ALTER TABLE consent_events
    DROP CONSTRAINT consent_events_list_id_fkey,
    DROP CONSTRAINT consent_events_statement_id_fkey,
    DROP CONSTRAINT consent_events_notice_version_fkey;
ALTER TABLE subscriptions DROP CONSTRAINT subscriptions_list_id_fkey;
