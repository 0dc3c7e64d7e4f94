-- The admin API: bearer tokens (stored only as SHA-256 digests) and worker pause flags
-- that every node obeys.

CREATE TABLE admin_tokens (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    token_sha256 bytea NOT NULL UNIQUE,
    scope text NOT NULL CHECK (scope IN ('read', 'admin')),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);

CREATE TABLE worker_controls (
    name text PRIMARY KEY,
    paused boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);
