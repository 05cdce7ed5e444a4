-- The expiry worker asks "when is the next lease due?" each time it goes to sleep. Leases whose
-- revocation failed wait for their retry time: this partial index keeps that question an index
-- look-up however many leases there are (the few retrying ones are the only rows in it).
CREATE INDEX leases_retry ON leases (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

-- The listing of irrevocable leases, without a scan of all leases.
CREATE INDEX leases_irrevocable ON leases (expire_time) WHERE irrevocable = 1;
