-- Audit devices enabled through sys/audit; every replica writes to its own copy of each.
CREATE TABLE audit_devices (
    path        TEXT PRIMARY KEY,
    device_type TEXT NOT NULL,
    description TEXT NOT NULL,
    options     TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
