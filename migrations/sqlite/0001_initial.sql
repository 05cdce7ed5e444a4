-- keymint's first schema (SQLite). Times are unix milliseconds; flags are 0/1 integers so the
-- same queries work on both backends through sqlx's Any driver.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE mounts (
    id                TEXT PRIMARY KEY,
    path              TEXT NOT NULL UNIQUE,
    mount_type        TEXT NOT NULL,
    description       TEXT NOT NULL,
    accessor          TEXT NOT NULL,
    default_lease_ttl BIGINT NOT NULL,
    max_lease_ttl     BIGINT NOT NULL,
    options           TEXT NOT NULL,
    created_at        BIGINT NOT NULL
);

-- One row per (mount, entry): entry is 'root' or 'lease'. `secret` holds the AES-GCM sealed
-- secret part (secret key, session token), never readable through the API.
CREATE TABLE aws_config (
    mount_id   TEXT NOT NULL REFERENCES mounts (id) ON DELETE CASCADE,
    entry      TEXT NOT NULL,
    body       TEXT NOT NULL,
    secret     BLOB,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (mount_id, entry)
);

CREATE TABLE aws_roles (
    mount_id   TEXT NOT NULL REFERENCES mounts (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (mount_id, name)
);

CREATE TABLE tokens (
    hash         TEXT PRIMARY KEY,
    accessor     TEXT NOT NULL UNIQUE,
    policies     TEXT NOT NULL,
    display_name TEXT NOT NULL,
    meta         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expire_at    BIGINT
);

-- Leases are not tied to the mount row by a foreign key: disabling a mount must revoke them
-- first, and a lease whose revocation failed must outlive nothing silently.
CREATE TABLE leases (
    id              TEXT PRIMARY KEY,
    mount_id        TEXT NOT NULL,
    role_name       TEXT NOT NULL,
    credential_type TEXT NOT NULL,
    issue_time      BIGINT NOT NULL,
    expire_time     BIGINT NOT NULL,
    last_renewal    BIGINT,
    renewable       BIGINT NOT NULL,
    internal        TEXT NOT NULL,
    secret          BLOB,
    token_accessor  TEXT,
    orphan          BIGINT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT,
    claimed_until   BIGINT,
    last_error      TEXT,
    irrevocable     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX leases_due ON leases (state, expire_time);
CREATE INDEX leases_token ON leases (token_accessor);

-- Write-ahead intents: written before an IAM user is created, deleted in the transaction that
-- records its lease. An intent that outlives its grace period names a user to tear down.
CREATE TABLE wal_intents (
    id         TEXT PRIMARY KEY,
    mount_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX wal_intents_created ON wal_intents (created_at);
