-- Usage counters and quotas, kept exact in the transactions that change what is stored.
-- Usage counts complete versions that are not delete markers (noncurrent ones included)
-- and the parts of multipart uploads still open. Reservations hold the declared size of
-- writes in flight so that concurrent writers can never overshoot a hard quota.

CREATE TABLE usage_counters (
    scope text NOT NULL CHECK (scope IN ('bucket', 'tenant')),
    scope_id text NOT NULL,
    bytes bigint NOT NULL DEFAULT 0,
    objects bigint NOT NULL DEFAULT 0,
    reserved_bytes bigint NOT NULL DEFAULT 0,
    reserved_objects bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, scope_id)
);

CREATE TABLE quotas (
    scope text NOT NULL CHECK (scope IN ('bucket', 'tenant')),
    scope_id text NOT NULL,
    max_bytes bigint CHECK (max_bytes IS NULL OR max_bytes >= 0),
    max_objects bigint CHECK (max_objects IS NULL OR max_objects >= 0),
    -- A hard quota refuses writes; a soft one is only reported.
    hard boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, scope_id)
);

-- What a write in flight reserved, so that whoever ends it (commit, failure, gc) releases
-- exactly that.
ALTER TABLE object_versions ADD COLUMN reserved_bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE multipart_parts ADD COLUMN counted boolean NOT NULL DEFAULT true;

INSERT INTO usage_counters (scope, scope_id, bytes, objects)
SELECT 'bucket', b.id::text,
       coalesce(sum(v.size_bytes) FILTER (WHERE v.state = 'complete' AND NOT v.is_delete_marker), 0)
         + coalesce((SELECT sum(mp.size_bytes) FROM multipart_parts mp
                     JOIN multipart_uploads u ON u.id = mp.upload_pk
                     WHERE u.bucket_id = b.id AND u.state = 'open'), 0),
       count(v.id) FILTER (WHERE v.state = 'complete' AND NOT v.is_delete_marker)
FROM buckets b LEFT JOIN object_versions v ON v.bucket_id = b.id
GROUP BY b.id;

INSERT INTO usage_counters (scope, scope_id, bytes, objects)
SELECT 'tenant', b.tenant, coalesce(sum(u.bytes), 0), coalesce(sum(u.objects), 0)
FROM buckets b JOIN usage_counters u ON u.scope = 'bucket' AND u.scope_id = b.id::text
GROUP BY b.tenant;

-- A deletion queued before a multipart part's bytes are written (its intent) also carries
-- the part's reservation: whoever removes the row, the writer or gc, releases it.
ALTER TABLE backend_deletions ADD COLUMN reserved_bucket_id bigint;
ALTER TABLE backend_deletions ADD COLUMN reserved_bytes bigint NOT NULL DEFAULT 0;
