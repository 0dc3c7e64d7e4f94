-- Per-link egress budgets: bytes per UTC day that background traffic (replication) may
-- move over a link. Client reads are never blocked; they are counted and reported.

ALTER TABLE links ADD COLUMN egress_budget_bytes_per_day bigint
    CHECK (egress_budget_bytes_per_day IS NULL OR egress_budget_bytes_per_day >= 0);

CREATE TABLE link_egress (
    link text NOT NULL,
    day date NOT NULL,
    background_bytes bigint NOT NULL DEFAULT 0 CHECK (background_bytes >= 0),
    client_bytes bigint NOT NULL DEFAULT 0 CHECK (client_bytes >= 0),
    PRIMARY KEY (link, day)
);
