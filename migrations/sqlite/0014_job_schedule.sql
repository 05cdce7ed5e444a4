-- A periodic job runs once per interval across the fleet, not once per replica: the replica
-- that ran it sets next_run_at (unix milliseconds), and the other replicas' scheduled runs
-- claim the job only once that time has come. Runs asked for on demand (sys/leases/tidy)
-- ignore it.
ALTER TABLE job_claims ADD COLUMN next_run_at BIGINT NOT NULL DEFAULT 0;
