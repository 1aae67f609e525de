-- Issue 16 §5 (SQLite; keep in step with ../postgres/0014_keyed_fingerprints.sql):
-- address fingerprints become keyed (HMAC-SHA256 under a key
-- derived from the server's secret key; src/domain/email.rs, AddressKey).
--
-- Every fingerprint stored until now is a bare SHA-256 of the normalised
-- address. Those of addresses still held (a subscriber row exists) are
-- re-keyed once, by the application at its next start (it has the key and
-- the address; SQL has neither the key nor the new normalisation): see
-- src/services/fingerprints.rs. A suppression whose address was erased
-- cannot be re-keyed without the address; it stays, marked `legacy`, and
-- is checked with the old bare hash of the typed address (and re-keyed the
-- first time that address is seen again).
ALTER TABLE suppressions ADD COLUMN legacy BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE suppressions SET legacy = TRUE;
