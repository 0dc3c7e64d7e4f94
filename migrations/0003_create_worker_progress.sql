-- Where a resumable background pass (re-placement, scrub) stands, shared by every node.
CREATE TABLE worker_progress (
    worker text PRIMARY KEY,
    cursor_pk bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
