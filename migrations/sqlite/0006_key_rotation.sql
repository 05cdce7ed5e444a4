-- Access key rotation: the mount's root key (config/rotate-root and its schedule) and static
-- roles. Times are unix milliseconds.

-- One row per rotating target of a mount: `root`, or `static-roles/<name>`. A replica claims a
-- row with a conditional UPDATE (claimed_by, claimed_until) before it touches AWS, so each due
-- rotation is carried out by one replica; a replica that dies leaves a claim that lapses.
CREATE TABLE aws_key_rotations (
    mount_id      TEXT NOT NULL REFERENCES mounts (id) ON DELETE CASCADE,
    target        TEXT NOT NULL,
    -- When the next rotation is due; NULL: no schedule.
    next_due      BIGINT,
    -- Set after a failure (backoff) or while old keys wait for deletion; wins over next_due.
    retry_at      BIGINT,
    attempts      BIGINT NOT NULL DEFAULT 0,
    last_error    TEXT,
    last_rotated  BIGINT,
    -- JSON list of {"user", "key"}: access keys keymint created or superseded that must go
    -- (a new key not stored yet, an old key whose deletion failed). Never a key keymint did
    -- not make, except the root key a rotation replaced.
    stale_keys    TEXT NOT NULL DEFAULT '[]',
    claimed_by    TEXT,
    claimed_until BIGINT,
    PRIMARY KEY (mount_id, target)
);
CREATE INDEX aws_key_rotations_due ON aws_key_rotations (next_due);
CREATE INDEX aws_key_rotations_retry ON aws_key_rotations (retry_at) WHERE retry_at IS NOT NULL;

-- Static roles: an IAM user whose access key keymint holds and rotates. `secret` is the
-- AES-GCM sealed secret access key of `access_key`, keymint's current key for the user.
CREATE TABLE aws_static_roles (
    mount_id   TEXT NOT NULL REFERENCES mounts (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    access_key TEXT,
    secret     BLOB,
    expiration BIGINT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (mount_id, name)
);
