-- Dataset warm-up (issue #6): temporary copies of the versions under a prefix, made on a
-- backend at one site for a while, so that reads at that site are served there.

-- Keyed as every bucket-scoped table since migration 0010 (docs/scaling.md): id first,
-- bucket_id last, so that under Citus it is co-located with the bucket's versions and a
-- lookup by id alone (the admin API's) still uses the key. No foreign key points at it:
-- placements and queued copies name their job by warmup_job_id beside their bucket_id.
CREATE TABLE warmup_jobs (
    bucket_id bigint NOT NULL REFERENCES buckets (id),
    id bigserial NOT NULL,
    prefix text COLLATE "C" NOT NULL,
    -- No foreign keys to sites and backends: an ended job is history, and its site and
    -- backend may be deleted at runtime (migration 0012); an active one keeps its backend
    -- from being deleted (metadata/topology.py).
    site text NOT NULL,
    target_backend text NOT NULL,
    -- active: copies are made or kept; expired and cancelled: the copies were retired.
    state text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'expired', 'cancelled')),
    expires_at timestamptz NOT NULL,
    -- The versions the job was given at creation (current, complete, not archived), and
    -- their bytes; those already on the target backend count as done from the start.
    total_objects bigint NOT NULL DEFAULT 0,
    total_bytes bigint NOT NULL DEFAULT 0,
    -- Of those, the ones on the target backend when the job ended (NULL while active: then
    -- read off the replication queue).
    done_objects bigint,
    done_bytes bigint,
    created_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    PRIMARY KEY (id, bucket_id)
);
CREATE INDEX warmup_jobs_active ON warmup_jobs (expires_at) WHERE state = 'active';

-- A warm-up's copy is a temporary placement (expires_at set, as a restored copy's) that
-- also names its job, so cancelling or expiring the job retires exactly its copies and
-- never a policy's. Re-placement and transitions already leave temporary copies be.
ALTER TABLE placements ADD COLUMN warmup_job_id bigint;
CREATE INDEX placements_warmup ON placements (warmup_job_id) WHERE warmup_job_id IS NOT NULL;
-- A queued copy for a warm-up: its placement takes the job's id and expiry.
ALTER TABLE replication_queue ADD COLUMN warmup_job_id bigint;
CREATE INDEX replication_queue_warmup ON replication_queue (warmup_job_id)
    WHERE warmup_job_id IS NOT NULL;

-- Access-based tiering (issue #6): in a bucket that has it, a current version not read for
-- warm_after_days moves from STANDARD to STANDARD_IA (the warm tier), and one not read for
-- cold_after_days from STANDARD_IA to GLACIER_IR (cold); a read brings it back to STANDARD.
-- {"warm_after_days": N, "cold_after_days": M or null}; NULL: no access tiering.
ALTER TABLE buckets ADD COLUMN access_tiering jsonb;
-- When the version was last read (GET), noted at most once an hour, in such buckets only.
ALTER TABLE object_versions ADD COLUMN last_read_at timestamptz;
