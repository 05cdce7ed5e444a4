-- Token roles (`auth/token/roles/<name>`): templates for `auth/token/create/<name>`. The body
-- is the role as JSON, written by keymint-auth (policy rules, orphan, period, explicit max TTL,
-- use limit, bound CIDRs, ...). Names are case-sensitive, as in Vault.
CREATE TABLE token_roles (
    name       TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The role a token was created against: its renewals follow the role's current period and
-- explicit max TTL, and fail once the role is gone, as in Vault.
ALTER TABLE tokens ADD COLUMN role TEXT;
-- JSON array of the CIDRs a token may be used from (the role's token_bound_cidrs); `[]`:
-- from anywhere.
ALTER TABLE tokens ADD COLUMN bound_cidrs TEXT NOT NULL DEFAULT '[]';
