-- Fewer index entries per subscribe and import row (see
-- ../postgres/0010_lean_writes.sql for why). SQLite's foreign-key checks are
-- primary-key probes that write nothing, so its tables keep them rather
-- than be rebuilt.
DROP INDEX subscribers_by_hash;
DROP INDEX subscriptions_by_list;
