-- gc's reaping of a dead version, and the end of a failed write, in one round trip each
-- (issue #9: every overwritten key costs a reap; see 0015 for the conventions).

-- End a pending version in p_state, giving back what it reserved; nothing if it is not
-- pending (any more).
CREATE FUNCTION release_pending(p_bucket_id bigint, p_pk bigint, p_state text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_reserved bigint;
BEGIN
    SELECT reserved_bytes INTO v_reserved FROM object_versions
    WHERE bucket_id = p_bucket_id AND id = p_pk AND state = 'pending' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE object_versions SET state = p_state, reserved_bytes = 0, updated_at = now()
    WHERE bucket_id = p_bucket_id AND id = p_pk;
    PERFORM bump_usage(p_bucket_id, 0, 0, -v_reserved, -1);
END;
$$;

-- Queue the bytes of a dead version (pending past its timeout, failed or deleted) for
-- deletion and drop its rows; a writer that died still holds its reservation, which goes
-- back. A version that is neither (it committed meanwhile) is left alone.
CREATE FUNCTION reap_version(p_bucket_id bigint, p_pk bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_state text;
BEGIN
    SELECT state INTO v_state FROM object_versions
    WHERE bucket_id = p_bucket_id AND id = p_pk FOR UPDATE;
    IF v_state IS NULL OR v_state NOT IN ('pending', 'failed', 'deleted') THEN
        RETURN;
    END IF;
    PERFORM release_pending(p_bucket_id, p_pk, 'failed');
    INSERT INTO backend_deletions (bucket_id, backend, backend_key)
    SELECT bucket_id, backend, unnest(coalesce(segment_keys, ARRAY[backend_key]))
    FROM placements WHERE bucket_id = p_bucket_id AND version_pk = p_pk;
    DELETE FROM placements WHERE bucket_id = p_bucket_id AND version_pk = p_pk;
    DELETE FROM object_versions WHERE bucket_id = p_bucket_id AND id = p_pk;
END;
$$;
