-- Claims on periodic background jobs that must not run on two replicas at once (intent sweep,
-- token expiry, secret-id tidy). A replica takes a row with one conditional upsert that
-- succeeds only when the row is free, its claim lapsed, or it is already the holder; it
-- renews the claim while it works and lets go when done. A replica that dies leaves a claim
-- that lapses at claimed_until (unix milliseconds).
CREATE TABLE job_claims (
    job           TEXT PRIMARY KEY,
    holder        TEXT NOT NULL,
    claimed_until BIGINT NOT NULL
);
