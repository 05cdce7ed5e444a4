-- AWS call pacing shared by the replicas of one PostgreSQL installation (see
-- crates/engine/src/pace/fleet.rs). On SQLite, with one process, the tables stay empty.
--
-- aws_pace_fleet: per mount and API family (iam_write, iam_read, sts), the rate AWS's
-- throttling taught the fleet: the rate that was throttled (learned_max, calls per second),
-- when (learned_at, unix milliseconds), the rate in force then (learned_ceiling, NULL when
-- unlimited), and epoch, bumped at every cut. NULL learned_max: nothing learned.
CREATE TABLE aws_pace_fleet (
    mount_id        TEXT NOT NULL REFERENCES mounts(id) ON DELETE CASCADE,
    family          TEXT NOT NULL,
    learned_max     DOUBLE PRECISION,
    learned_at      BIGINT,
    learned_ceiling DOUBLE PRECISION,
    epoch           BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (mount_id, family)
);

-- aws_pace_slices: each replica's claim on a slice of that rate, renewed while it makes calls
-- and ignored once seen_at (unix milliseconds) is a few seconds old. The slices are sized by
-- demand (calls asked for per second, plus calls queued); queued alone tells the others how
-- long the fleet's queue is; accepted is what AWS accepted from the replica in the last
-- second, summed by the fleet when it measures a throttled rate.
CREATE TABLE aws_pace_slices (
    mount_id TEXT NOT NULL REFERENCES mounts(id) ON DELETE CASCADE,
    family   TEXT NOT NULL,
    replica  TEXT NOT NULL,
    demand   DOUBLE PRECISION NOT NULL,
    queued   DOUBLE PRECISION NOT NULL,
    accepted DOUBLE PRECISION NOT NULL,
    seen_at  BIGINT NOT NULL,
    PRIMARY KEY (mount_id, family, replica)
);
