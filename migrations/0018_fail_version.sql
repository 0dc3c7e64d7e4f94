-- The end of a failed write, told apart from a commit whose answer was lost.
--
-- A writer whose commit raised cannot know whether it landed: the connection may have
-- dropped (PostgreSQL restarted) or the request been cancelled after the function
-- committed. It may remove the bytes it stored only when this call is the one that ends
-- the pending version; otherwise the bytes belong to a committed version (or gc's reap
-- already queued them). True when this call ended the version.
CREATE FUNCTION fail_version(p_bucket_id bigint, p_pk bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM object_versions
    WHERE bucket_id = p_bucket_id AND id = p_pk AND state = 'pending' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM release_pending(p_bucket_id, p_pk, 'failed');
    UPDATE placements SET state = 'failed' WHERE bucket_id = p_bucket_id AND version_pk = p_pk;
    RETURN true;
END;
$$;
