-- Web UI sessions: the browser holds a random session id in an HttpOnly cookie; the database
-- holds its keyed hash and the signed-in token, sealed. A session never outlives its token,
-- and signing out deletes the row (the token itself is not revoked).
CREATE TABLE ui_sessions (
    id_hash    TEXT PRIMARY KEY,
    token      BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    expire_at  BIGINT NOT NULL
);
CREATE INDEX ui_sessions_expiry ON ui_sessions (expire_at);
