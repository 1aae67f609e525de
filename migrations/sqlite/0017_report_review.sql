-- Issue 24 §1: a DSN or abuse report that is not tied to a copy Tidings sent
-- (by a valid VERP tag or our Message-ID) changes nothing; it is kept with
-- outcome 'review' for an admin, who may apply or dismiss it (audited).
-- `dkim` records whether an abuse report's DKIM signature verified:
-- pass | fail | none (unsigned) | unverified (no key could be looked up);
-- NULL for reports that are not checked (DSNs, webhooks).
ALTER TABLE bounce_events ADD COLUMN dkim TEXT;
ALTER TABLE bounce_events ADD COLUMN dkim_domain TEXT;
ALTER TABLE bounce_events ADD COLUMN reviewed_at TEXT;
ALTER TABLE bounce_events ADD COLUMN reviewed_by TEXT;
CREATE INDEX bounce_events_by_outcome ON bounce_events (outcome, received_at);
