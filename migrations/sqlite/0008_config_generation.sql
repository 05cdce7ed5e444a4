-- One counter that moves whenever configuration a request reads changes: mounts, AWS configs
-- and roles, ACL policies. Servers cache those in memory, tagged with the counter; a request
-- reads the counter together with its token (one query) and uses a cached entry only if its tag
-- is the counter read. Triggers move it, so every writer counts: another process on the same
-- file, an operator command, a future code path.
CREATE TABLE config_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO config_generation (id, generation) VALUES (1, 0);

CREATE TRIGGER mounts_insert_generation AFTER INSERT ON mounts
BEGIN UPDATE config_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER mounts_update_generation AFTER UPDATE ON mounts
BEGIN UPDATE config_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER mounts_delete_generation AFTER DELETE ON mounts
BEGIN UPDATE config_generation SET generation = generation + 1 WHERE id = 1; END;

CREATE TRIGGER aws_config_insert_generation AFTER INSERT ON aws_config
BEGIN UPDATE config_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER aws_config_update_generation AFTER UPDATE ON aws_config
BEGIN UPDATE config_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER aws_config_delete_generation AFTER DELETE ON aws_config
BEGIN UPDATE config_generation SET generation = generation + 1 WHERE id = 1; END;

CREATE TRIGGER aws_roles_insert_generation AFTER INSERT ON aws_roles
BEGIN UPDATE config_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER aws_roles_update_generation AFTER UPDATE ON aws_roles
BEGIN UPDATE config_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER aws_roles_delete_generation AFTER DELETE ON aws_roles
BEGIN UPDATE config_generation SET generation = generation + 1 WHERE id = 1; END;

CREATE TRIGGER policies_insert_generation AFTER INSERT ON policies
BEGIN UPDATE config_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policies_update_generation AFTER UPDATE ON policies
BEGIN UPDATE config_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER policies_delete_generation AFTER DELETE ON policies
BEGIN UPDATE config_generation SET generation = generation + 1 WHERE id = 1; END;
