-- Users belong to tenants and hold access keys; keys can be disabled. Canned ACLs on
-- buckets, object versions and the uploads that become them; bucket policies.

CREATE TABLE users (
    tenant text NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, name)
);

ALTER TABLE access_keys ADD COLUMN user_name text;
ALTER TABLE access_keys ADD COLUMN status text NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'disabled'));
-- A user cannot be deleted while it holds keys.
ALTER TABLE access_keys ADD CONSTRAINT access_keys_user
    FOREIGN KEY (tenant, user_name) REFERENCES users (tenant, name);

ALTER TABLE buckets ADD COLUMN acl text NOT NULL DEFAULT 'private'
    CHECK (acl IN ('private', 'public-read', 'public-read-write'));
ALTER TABLE buckets ADD COLUMN policy jsonb;

ALTER TABLE object_versions ADD COLUMN acl text NOT NULL DEFAULT 'private'
    CHECK (acl IN ('private', 'public-read', 'public-read-write'));
ALTER TABLE multipart_uploads ADD COLUMN acl text NOT NULL DEFAULT 'private'
    CHECK (acl IN ('private', 'public-read', 'public-read-write'));
