-- Core metadata: access keys, buckets, object versions, placements, multipart uploads.
-- Forward-only: never edit this file once landed; add a new migration instead.

CREATE TABLE access_keys (
    access_key_id text PRIMARY KEY,
    secret_key text NOT NULL,
    tenant text NOT NULL DEFAULT 'root',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE buckets (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    owner_access_key text NOT NULL,
    tenant text NOT NULL DEFAULT 'root',
    location text NOT NULL,
    backend text NOT NULL,
    versioning text NOT NULL DEFAULT 'Unversioned'
        CHECK (versioning IN ('Unversioned', 'Enabled', 'Suspended')),
    tags jsonb,
    cors jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per object version, including delete markers and versions still being written.
-- Keys use the "C" collation so that ordering is by UTF-8 bytes, as S3 lists.
-- Commit order decides which version is newest: a writer that started first may commit last.
CREATE SEQUENCE object_versions_seq;

CREATE TABLE object_versions (
    id bigserial PRIMARY KEY,
    bucket_id bigint NOT NULL REFERENCES buckets (id),
    key text COLLATE "C" NOT NULL,
    version_id text NOT NULL UNIQUE,
    -- The version written while versioning is not Enabled answers to versionId "null".
    is_null_version boolean NOT NULL,
    state text NOT NULL CHECK (state IN ('pending', 'complete', 'failed', 'deleted')),
    is_latest boolean NOT NULL DEFAULT false,
    is_delete_marker boolean NOT NULL DEFAULT false,
    size_bytes bigint NOT NULL DEFAULT 0,
    etag text NOT NULL DEFAULT '',
    content_type text,
    -- Standard headers stored verbatim (content-encoding, cache-control, ...).
    headers jsonb NOT NULL DEFAULT '{}',
    user_metadata jsonb NOT NULL DEFAULT '{}',
    tags jsonb NOT NULL DEFAULT '{}',
    storage_class text NOT NULL DEFAULT 'STANDARD',
    checksum_algorithm text,
    checksum_type text,
    checksum_value text,
    -- Multipart versions: the size of each part, in order (for partNumber reads).
    part_sizes bigint[],
    part_checksums text[],
    seq bigint NOT NULL DEFAULT nextval('object_versions_seq'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX object_versions_latest ON object_versions (bucket_id, key) WHERE is_latest;
CREATE INDEX object_versions_listing ON object_versions (bucket_id, key)
    WHERE is_latest AND NOT is_delete_marker;
CREATE INDEX object_versions_by_key ON object_versions (bucket_id, key, seq DESC)
    WHERE state = 'complete';
CREATE INDEX object_versions_pending ON object_versions (created_at)
    WHERE state IN ('pending', 'failed', 'deleted');

-- A placement is one replica of one object version on one backend.
CREATE TABLE placements (
    id bigserial PRIMARY KEY,
    version_pk bigint NOT NULL REFERENCES object_versions (id),
    backend text NOT NULL,
    -- A single-part version lives under backend_key; a multipart version under segment_keys.
    backend_key text NOT NULL,
    segment_keys text[],
    state text NOT NULL CHECK (state IN ('pending', 'ok', 'failed', 'deleting')),
    size_bytes bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    verified_at timestamptz
);
CREATE INDEX placements_version ON placements (version_pk);

-- Backend objects that no version references any more. The gc worker deletes them.
CREATE TABLE backend_deletions (
    id bigserial PRIMARY KEY,
    backend text NOT NULL,
    backend_key text NOT NULL,
    not_before timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backend_deletions_due ON backend_deletions (not_before);

CREATE TABLE multipart_uploads (
    id bigserial PRIMARY KEY,
    upload_id text NOT NULL UNIQUE,
    bucket_id bigint NOT NULL REFERENCES buckets (id),
    key text COLLATE "C" NOT NULL,
    backend text NOT NULL,
    state text NOT NULL CHECK (state IN ('open', 'completed', 'aborted')),
    content_type text,
    headers jsonb NOT NULL DEFAULT '{}',
    user_metadata jsonb NOT NULL DEFAULT '{}',
    tags jsonb NOT NULL DEFAULT '{}',
    storage_class text NOT NULL DEFAULT 'STANDARD',
    checksum_algorithm text,
    checksum_type text,
    owner_access_key text NOT NULL,
    initiated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX multipart_uploads_open ON multipart_uploads (bucket_id, key, initiated_at)
    WHERE state = 'open';

CREATE TABLE multipart_parts (
    upload_pk bigint NOT NULL REFERENCES multipart_uploads (id),
    part_number integer NOT NULL CHECK (part_number BETWEEN 1 AND 10000),
    size_bytes bigint NOT NULL,
    etag text NOT NULL,
    checksum_value text,
    backend_key text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upload_pk, part_number)
);
