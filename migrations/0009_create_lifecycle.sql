-- Lifecycle (issue #6): each bucket's lifecycle configuration, and the transitions of
-- versions to another storage class that are under way.

-- The configuration as its canonical document (gateway/lifecycle/rules.py), rendered as is
-- by GetBucketLifecycleConfiguration.
ALTER TABLE buckets ADD COLUMN lifecycle jsonb;
CREATE INDEX buckets_with_lifecycle ON buckets (id) WHERE lifecycle IS NOT NULL;

-- A version whose copies to the backends of its new storage class are being made. The
-- version keeps its old storage class and placements until every copy is verified; then
-- one transaction switches the class and retires the old placements. Re-placement leaves
-- such a version alone, and lifecycle expiration waits for it.
CREATE TABLE lifecycle_transitions (
    version_pk bigint PRIMARY KEY REFERENCES object_versions (id) ON DELETE CASCADE,
    storage_class text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    checked_at timestamptz NOT NULL DEFAULT now(),
    -- Why the last check could not finish it (a copy still queued or failing).
    waiting_for text
);

-- A temporary copy (a restored archive version) lapses at expires_at: the lifecycle worker
-- then retires it. Permanent placements have none. Re-placement neither counts nor
-- retires temporary copies.
ALTER TABLE placements ADD COLUMN expires_at timestamptz;
-- A queued copy for a restore: the placement it makes is temporary, lapsing at the first
-- midnight UTC this many days after the copy is made (as S3 dates a restore's expiry).
ALTER TABLE replication_queue ADD COLUMN temporary_days integer
    CHECK (temporary_days IS NULL OR temporary_days > 0);
