-- Distribution by bucket_id (issue #8, docs/scaling.md §4). Every table a request writes
-- carries its bucket, in its primary key, its unique keys and the foreign keys between
-- them, so that on Citus (tables distributed by bucket_id and co-located) a request's
-- transaction stays on one shard. Ids stay unique: their sequences are unchanged.
-- Keys put the id first and bucket_id last: lookups name both, and the background passes
-- that walk ids in order (gc, re-placement, scrub, queue claims) keep using the same index.

-- Rows that belong to a version or an upload take its bucket.
ALTER TABLE placements ADD COLUMN bucket_id bigint;
UPDATE placements p SET bucket_id = v.bucket_id FROM object_versions v WHERE v.id = p.version_pk;
ALTER TABLE placements ALTER COLUMN bucket_id SET NOT NULL;

ALTER TABLE replication_queue ADD COLUMN bucket_id bigint;
UPDATE replication_queue q SET bucket_id = v.bucket_id
    FROM object_versions v WHERE v.id = q.version_pk;
ALTER TABLE replication_queue ALTER COLUMN bucket_id SET NOT NULL;

ALTER TABLE lifecycle_transitions ADD COLUMN bucket_id bigint;
UPDATE lifecycle_transitions t SET bucket_id = v.bucket_id
    FROM object_versions v WHERE v.id = t.version_pk;
ALTER TABLE lifecycle_transitions ALTER COLUMN bucket_id SET NOT NULL;

ALTER TABLE multipart_parts ADD COLUMN bucket_id bigint;
UPDATE multipart_parts mp SET bucket_id = u.bucket_id
    FROM multipart_uploads u WHERE u.id = mp.upload_pk;
ALTER TABLE multipart_parts ALTER COLUMN bucket_id SET NOT NULL;

-- A queued deletion outlives the rows it came from, so its bucket is taken from the part
-- intent's reservation, else from the backend key, which every writer prefixes with
-- "b<bucket id>/" (gateway/services/objects.py, multipart.py). A key without the prefix
-- (none is written so) goes to bucket 0, which no bucket has. No foreign key: a bucket
-- may be deleted while the bytes of its last versions still wait for gc.
ALTER TABLE backend_deletions ADD COLUMN bucket_id bigint;
UPDATE backend_deletions SET bucket_id = coalesce(
    reserved_bucket_id, substring(backend_key FROM '^b([0-9]+)/')::bigint, 0);
ALTER TABLE backend_deletions ALTER COLUMN bucket_id SET NOT NULL;
-- The intent's reservation is now held against bucket_id.
ALTER TABLE backend_deletions DROP COLUMN reserved_bucket_id;

-- Foreign keys go before the keys they point at.
ALTER TABLE placements DROP CONSTRAINT placements_version_pk_fkey;
ALTER TABLE replication_queue DROP CONSTRAINT replication_queue_version_pk_fkey;
ALTER TABLE lifecycle_transitions DROP CONSTRAINT lifecycle_transitions_version_pk_fkey;
ALTER TABLE multipart_parts DROP CONSTRAINT multipart_parts_upload_pk_fkey;

ALTER TABLE object_versions DROP CONSTRAINT object_versions_pkey;
ALTER TABLE object_versions ADD PRIMARY KEY (id, bucket_id);
ALTER TABLE object_versions DROP CONSTRAINT object_versions_version_id_key;
ALTER TABLE object_versions ADD UNIQUE (version_id, bucket_id);

ALTER TABLE multipart_uploads DROP CONSTRAINT multipart_uploads_pkey;
ALTER TABLE multipart_uploads ADD PRIMARY KEY (id, bucket_id);
ALTER TABLE multipart_uploads DROP CONSTRAINT multipart_uploads_upload_id_key;
ALTER TABLE multipart_uploads ADD UNIQUE (upload_id, bucket_id);

ALTER TABLE placements DROP CONSTRAINT placements_pkey;
ALTER TABLE placements ADD PRIMARY KEY (id, bucket_id);
ALTER TABLE placements ADD FOREIGN KEY (version_pk, bucket_id)
    REFERENCES object_versions (id, bucket_id);
DROP INDEX placements_one_per_backend;
CREATE UNIQUE INDEX placements_one_per_backend ON placements (version_pk, backend, bucket_id)
    WHERE state IN ('pending', 'ok');

ALTER TABLE multipart_parts DROP CONSTRAINT multipart_parts_pkey;
ALTER TABLE multipart_parts ADD PRIMARY KEY (upload_pk, part_number, bucket_id);
ALTER TABLE multipart_parts ADD FOREIGN KEY (upload_pk, bucket_id)
    REFERENCES multipart_uploads (id, bucket_id);

ALTER TABLE replication_queue DROP CONSTRAINT replication_queue_pkey;
ALTER TABLE replication_queue ADD PRIMARY KEY (id, bucket_id);
ALTER TABLE replication_queue DROP CONSTRAINT replication_queue_version_pk_target_backend_key;
ALTER TABLE replication_queue ADD UNIQUE (version_pk, target_backend, bucket_id);
ALTER TABLE replication_queue ADD FOREIGN KEY (version_pk, bucket_id)
    REFERENCES object_versions (id, bucket_id) ON DELETE CASCADE;

ALTER TABLE lifecycle_transitions DROP CONSTRAINT lifecycle_transitions_pkey;
ALTER TABLE lifecycle_transitions ADD PRIMARY KEY (version_pk, bucket_id);
ALTER TABLE lifecycle_transitions ADD FOREIGN KEY (version_pk, bucket_id)
    REFERENCES object_versions (id, bucket_id) ON DELETE CASCADE;

ALTER TABLE backend_deletions DROP CONSTRAINT backend_deletions_pkey;
ALTER TABLE backend_deletions ADD PRIMARY KEY (id, bucket_id);

-- Usage: one counter row per bucket, written in the commit transaction on the bucket's
-- shard. A tenant's usage is the sum of its buckets' rows (gateway quotas: see
-- metadata/usage.py); tenant rows are no longer kept.
CREATE TABLE bucket_usage (
    bucket_id bigint PRIMARY KEY,
    bytes bigint NOT NULL DEFAULT 0,
    objects bigint NOT NULL DEFAULT 0,
    reserved_bytes bigint NOT NULL DEFAULT 0,
    reserved_objects bigint NOT NULL DEFAULT 0
);
INSERT INTO bucket_usage (bucket_id, bytes, objects, reserved_bytes, reserved_objects)
SELECT scope_id::bigint, bytes, objects, reserved_bytes, reserved_objects
FROM usage_counters WHERE scope = 'bucket';
DROP TABLE usage_counters;
