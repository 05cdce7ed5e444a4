-- Tokens get what Vault's token store keeps: the parent (children die with it unless
-- orphaned), TTL settings for renewal, a use limit, and the path they were created at.
ALTER TABLE tokens ADD COLUMN parent TEXT;
ALTER TABLE tokens ADD COLUMN orphan BIGINT NOT NULL DEFAULT 0;
-- Seconds; 0: no expiry (root tokens).
ALTER TABLE tokens ADD COLUMN ttl BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN explicit_max_ttl BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN period BIGINT NOT NULL DEFAULT 0;
-- 0: unlimited; n > 0: uses left; -1: used up.
ALTER TABLE tokens ADD COLUMN num_uses BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN renewable BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN path TEXT NOT NULL DEFAULT 'auth/token/root';
ALTER TABLE tokens ADD COLUMN last_renewal BIGINT;
CREATE INDEX tokens_parent ON tokens (parent);
CREATE INDEX tokens_expiry ON tokens (expire_at) WHERE expire_at IS NOT NULL;

-- ACL policies by name, as written (HCL or JSON). `root` and `default` are built in; a
-- written `default` replaces the built-in one, as in Vault.
CREATE TABLE policies (
    name       TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
