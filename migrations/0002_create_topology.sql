-- Topology and placement: sites, backends, links, placement policies, the replication queue.
-- Connection details and credentials of a backend stay in each node's configuration; the
-- database holds what every node must agree on (site, tier, state, capacity).

CREATE TABLE sites (
    name text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE backends (
    name text PRIMARY KEY,
    site text NOT NULL REFERENCES sites (name),
    driver text NOT NULL CHECK (driver IN ('localfs', 's3')),
    tier text NOT NULL DEFAULT 'hot' CHECK (tier IN ('hot', 'warm', 'cold', 'archive')),
    state text NOT NULL DEFAULT 'active'
        CHECK (state IN ('active', 'read-only', 'draining', 'disabled')),
    capacity_bytes bigint CHECK (capacity_bytes IS NULL OR capacity_bytes >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE links (
    name text PRIMARY KEY,
    site text NOT NULL REFERENCES sites (name),
    backend text NOT NULL REFERENCES backends (name),
    -- Lower first: a dedicated line before the public internet fallback.
    position integer NOT NULL DEFAULT 0,
    bandwidth_bytes_per_s bigint CHECK (bandwidth_bytes_per_s IS NULL OR bandwidth_bytes_per_s > 0),
    max_concurrency integer CHECK (max_concurrency IS NULL OR max_concurrency > 0),
    rtt_ms double precision NOT NULL DEFAULT 0,
    cost_per_gib double precision NOT NULL DEFAULT 0,
    endpoint text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Versioned policies: a change inserts a new version; the newest version is in force.
CREATE TABLE placement_policies (
    name text NOT NULL,
    version integer NOT NULL,
    document jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

ALTER TABLE buckets ADD COLUMN placement_policy text;

-- Which backends hold a stored part (the same backend key on each).
ALTER TABLE multipart_parts ADD COLUMN backends text[] NOT NULL DEFAULT '{}';
UPDATE multipart_parts mp SET backends = ARRAY[u.backend]
    FROM multipart_uploads u WHERE u.id = mp.upload_pk;

-- Replicas still to be written: failed synchronous targets and asynchronous targets.
CREATE TABLE replication_queue (
    id bigserial PRIMARY KEY,
    version_pk bigint NOT NULL REFERENCES object_versions (id) ON DELETE CASCADE,
    target_backend text NOT NULL,
    not_before timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (version_pk, target_backend)
);
CREATE INDEX replication_queue_due ON replication_queue (not_before);

CREATE UNIQUE INDEX placements_one_per_backend ON placements (version_pk, backend)
    WHERE state IN ('pending', 'ok');
