-- Data keys, wrapped (AES-256-GCM) by the key derived from the master seal key. Secrets are
-- sealed under the newest; `keymint operator rotate` adds one and re-seals every secret.
CREATE TABLE seal_keys (
    version    BIGINT PRIMARY KEY,
    wrapped    BLOB NOT NULL,
    created_at BIGINT NOT NULL
);
