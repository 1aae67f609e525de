-- Issue 24 §4: sign-up proof-of-work challenges already used, kept until
-- they expire, so one solution is accepted once (on any instance).
CREATE TABLE used_challenges (
    challenge  TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX used_challenges_by_expiry ON used_challenges (expires_at);
