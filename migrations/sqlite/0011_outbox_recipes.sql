-- A confirmation mail is queued as what it says (address, name, lists,
-- link), not as a composed message: the outbox worker composes (and signs)
-- it when it sends. A subscribe then writes a few hundred bytes instead of
-- a ~6 KB message, and spends no time on templates or DKIM while it holds
-- the write lock. Like `message`, the recipe holds a live token and is
-- dropped once the mail is sent or given up on.
ALTER TABLE outbox ADD COLUMN recipe TEXT;
