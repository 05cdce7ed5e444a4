-- One counter that moves whenever configuration a request reads changes: mounts, AWS configs
-- and roles, ACL policies. Replicas cache those in memory, tagged with the counter; a request
-- reads the counter together with its token (one query) and uses a cached entry only if its tag
-- is the counter read. Triggers move it in the writing transaction, so every writer counts:
-- another replica, an operator command, a future code path.
CREATE TABLE config_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO config_generation (id, generation) VALUES (1, 0);

CREATE FUNCTION keymint_next_config_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE config_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER mounts_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON mounts
    FOR EACH STATEMENT EXECUTE FUNCTION keymint_next_config_generation();
CREATE TRIGGER aws_config_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON aws_config
    FOR EACH STATEMENT EXECUTE FUNCTION keymint_next_config_generation();
CREATE TRIGGER aws_roles_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON aws_roles
    FOR EACH STATEMENT EXECUTE FUNCTION keymint_next_config_generation();
CREATE TRIGGER policies_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON policies
    FOR EACH STATEMENT EXECUTE FUNCTION keymint_next_config_generation();
