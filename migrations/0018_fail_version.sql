-- The end of a failed write, told apart from a commit whose answer was lost.
--
-- A writer whose commit raised cannot know whether it landed: the connection may have
-- dropped (PostgreSQL restarted) or the request been cancelled after the function
-- committed. It may remove the bytes it stored only when nothing refers to them: when
-- this call ends the pending version, or when the version is gone (gc reaped it, and the
-- deletions it queued may have run before the bytes landed). A version in any other
-- state committed: its bytes are the object's. True when the bytes are the writer's.
CREATE FUNCTION fail_version(p_bucket_id bigint, p_pk bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
BEGIN
    SELECT state INTO v_state FROM object_versions
    WHERE bucket_id = p_bucket_id AND id = p_pk FOR UPDATE;
    IF NOT FOUND THEN
        RETURN true;
    END IF;
    IF v_state <> 'pending' THEN
        RETURN false;
    END IF;
    PERFORM release_pending(p_bucket_id, p_pk, 'failed');
    UPDATE placements SET state = 'failed' WHERE bucket_id = p_bucket_id AND version_pk = p_pk;
    RETURN true;
END;
$$;
