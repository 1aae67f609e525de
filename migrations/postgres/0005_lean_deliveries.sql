-- Leaner deliveries, so that taking a large audience and recording outcomes
-- cost less per recipient (BENCHMARKS.md). Keep in step with
-- ../sqlite/0005_lean_deliveries.sql.
--
-- * No foreign keys: each one ran a trigger per inserted row (over half the
--   snapshot's time at 1,000,000). Nothing relies on them: updates with
--   deliveries are never deleted, lists are only hidden, and erasure deletes
--   a person's deliveries itself.
-- * No copies of the address, name and address hash: the claim reads them
--   from `subscribers`, which it joins anyway to re-check eligibility.
-- * Partial queue indexes: a row enters `deliveries_due` while pending and
--   `deliveries_leased` while being sent, and neither once it is done, so
--   recording an outcome touches only the primary key.
-- * No index on subscriber or sent time: a person's deliveries are found by
--   primary key through `updates`, and the hourly/daily caps count in
--   `send_counts`.
ALTER TABLE deliveries
    DROP CONSTRAINT deliveries_update_id_fkey,
    DROP CONSTRAINT deliveries_subscriber_id_fkey,
    DROP CONSTRAINT deliveries_list_id_fkey;
ALTER TABLE deliveries DROP COLUMN email, DROP COLUMN name, DROP COLUMN email_hash;
DROP INDEX deliveries_due;
DROP INDEX deliveries_by_subscriber;
DROP INDEX deliveries_by_sent_at;
CREATE INDEX deliveries_due ON deliveries (update_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_leased ON deliveries (update_id, lease_until) WHERE status = 'sending';

-- Messages accepted per minute, kept two days, for the hourly and daily caps.
CREATE TABLE send_counts (
    minute TIMESTAMPTZ PRIMARY KEY,
    sent   BIGINT NOT NULL
);
