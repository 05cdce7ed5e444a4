-- Response wrapping: a response kept for the holder of a single-use wrapping token, sealed
-- with the token's accessor as its identity (a sealed value copied to another row does not
-- open). A row goes with its token: revoking or expiring the token deletes it, and an unwrap
-- deletes it in the statement that reads it, so two replicas cannot both hand it out.
CREATE TABLE wrapped_responses (
    accessor      TEXT PRIMARY KEY REFERENCES tokens (accessor) ON DELETE CASCADE,
    response      BLOB NOT NULL,
    creation_path TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    ttl           BIGINT NOT NULL,
    expire_at     BIGINT NOT NULL
);
CREATE INDEX wrapped_responses_expiry ON wrapped_responses (expire_at);
