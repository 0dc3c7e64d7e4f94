-- Backends and links managed at runtime through the admin API, and link caps shared by
-- every node of a site.

-- How a node reaches a backend created through the admin API: the driver's settings with
-- credentials by reference only (``access_key_env``, ``secret_key_file``, ...), never a
-- secret in clear. NULL for backends declared in the nodes' configuration, which keep
-- their connection details there.
ALTER TABLE backends ADD COLUMN connection jsonb;

-- The rest of a link's settings, so that a link created at runtime has them all.
ALTER TABLE links
    ADD COLUMN first_byte_timeout_s double precision NOT NULL DEFAULT 10
        CHECK (first_byte_timeout_s > 0),
    ADD COLUMN breaker_failures integer NOT NULL DEFAULT 3 CHECK (breaker_failures > 0),
    ADD COLUMN breaker_cooldown_s double precision NOT NULL DEFAULT 5
        CHECK (breaker_cooldown_s > 0),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- Each node's demand on each capped link, refreshed every second. A node takes the share
-- of the link's bandwidth and concurrency that its demand is of the demand of every node
-- seen lately, so that the caps hold for all nodes together.
CREATE TABLE link_shares (
    link text NOT NULL,
    node text NOT NULL,
    demand double precision NOT NULL CHECK (demand >= 0),
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (link, node)
);
