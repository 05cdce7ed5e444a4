-- Auth methods (AppRole, JWT/OIDC, Kubernetes). Their mounts are rows of `mounts` whose path
-- starts with `auth/` (`auth/approle/`), so one table holds every path that is served.

-- A method's configuration (kind 'config', name '') and its roles (kind 'role'), as JSON
-- written by the method; `secret` holds the sealed secret part (a reviewer JWT, a client
-- secret), never readable through the API. AppRole keeps its role-id index here too
-- (kind 'role_id', name the role id, body the role name): the primary key makes a role id
-- name one role only.
CREATE TABLE auth_entries (
    mount_id   TEXT NOT NULL REFERENCES mounts (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    secret     BYTEA,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (mount_id, kind, name)
);

-- AppRole secret ids, by their keyed hash only: the database never holds a usable secret id.
-- `uses_left`: 0 for unlimited, else the logins left; the last one deletes the row in the
-- same statement that spends it, so two replicas cannot both spend it.
CREATE TABLE approle_secret_ids (
    mount_id   TEXT NOT NULL REFERENCES mounts (id) ON DELETE CASCADE,
    role_name  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    accessor   TEXT NOT NULL,
    uses_left  BIGINT NOT NULL,
    expire_at  BIGINT,
    body       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (mount_id, hash),
    UNIQUE (mount_id, accessor)
);
CREATE INDEX approle_secret_ids_role ON approle_secret_ids (mount_id, role_name);
CREATE INDEX approle_secret_ids_expiry ON approle_secret_ids (expire_at);

-- Tokens issued by a login: the auth mount (disabling it revokes them) and the method's role
-- (renewals follow its TTLs, and fail once it is gone); `max_ttl` is the cap the login
-- computed (0: the token store's).
ALTER TABLE tokens ADD COLUMN auth_mount TEXT;
ALTER TABLE tokens ADD COLUMN auth_role TEXT;
ALTER TABLE tokens ADD COLUMN max_ttl BIGINT NOT NULL DEFAULT 0;
CREATE INDEX tokens_auth_mount ON tokens (auth_mount);
