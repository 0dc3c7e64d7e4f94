-- Queued deletions looked up by the bytes they name: a copy that lands cancels the deletion
-- queued for its key (replication.forget_deletions, commit_version for multipart), scrub's
-- orphan check asks whether a key is queued, and deleting a backend whether anything is.
-- Without it each was a scan of the whole queue, which grows with every overwrite.
CREATE INDEX backend_deletions_by_key ON backend_deletions (backend, backend_key);
