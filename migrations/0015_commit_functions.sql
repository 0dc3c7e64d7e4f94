-- The write path's transactions in one round trip each (issue #9): a PUT's commit was
-- some fifteen statements, each a round trip with its own parse, bind and execute on
-- both sides. These functions run the same statements inside PostgreSQL. Every one takes
-- the bucket first and names it in every statement, so that Citus can delegate a call to
-- the bucket's shard (create_distributed_function with distribution_arg_name
-- 'p_bucket_id', docs/scaling.md); reserve_usage's sum over a tenant's buckets (only
-- under a tenant's hard quota) is the one multi-shard read. metadata/objects.py and
-- metadata/usage.py call them, each call a statement of its own where it can be: a
-- statement outside a transaction block commits inside the server, so the bucket's counter
-- row, which every writer of the bucket locks, is never held across a network round trip.

-- A bucket's counters moved by the deltas; its row after the move.
CREATE FUNCTION bump_usage(
    p_bucket_id bigint, d_bytes bigint, d_objects bigint,
    d_reserved_bytes bigint, d_reserved_objects bigint
) RETURNS bucket_usage LANGUAGE sql AS $$
    INSERT INTO bucket_usage AS u (bucket_id, bytes, objects, reserved_bytes, reserved_objects)
    VALUES (p_bucket_id, d_bytes, d_objects, d_reserved_bytes, d_reserved_objects)
    ON CONFLICT (bucket_id) DO UPDATE SET bytes = u.bytes + EXCLUDED.bytes,
        objects = u.objects + EXCLUDED.objects,
        reserved_bytes = u.reserved_bytes + EXCLUDED.reserved_bytes,
        reserved_objects = u.reserved_objects + EXCLUDED.reserved_objects
    RETURNING u.*
$$;

-- Refuse a write that a hard quota does not leave room for (metadata/usage.py turns the
-- error into QuotaExceededError). At or over the limit nothing new is written, even a
-- zero-byte object; below it, a write must fit beside everything else in flight
-- (p_reserved already counts this write's reservation).
CREATE FUNCTION check_quota(
    p_scope text, p_scope_id text, p_what text, p_limit bigint,
    p_used bigint, p_reserved bigint, p_requested bigint
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF p_limit IS NULL THEN
        RETURN;
    END IF;
    IF p_used + p_reserved > p_limit
        OR (p_used >= p_limit AND (p_requested > 0 OR p_what = 'bytes')) THEN
        RAISE EXCEPTION 'skybridge: quota exceeded' USING DETAIL = json_build_object(
            'scope', p_scope, 'scope_id', p_scope_id, 'what', p_what, 'limit', p_limit,
            'used', p_used + p_reserved - p_requested, 'requested', p_requested)::text;
    END IF;
END;
$$;

-- Reserve room for a write against the hard quotas that apply to its bucket: the bucket's,
-- then its tenant's. A tenant's usage is the sum of its buckets' counters, read under the
-- tenant's quota lock: it serialises the reservations against one tenant's hard quota
-- (each commits before the next one sums), which keeps the quota exact although the
-- counters live in different rows (on Citus, different shards). Lock order: the bucket's
-- row, then the tenant's lock. A failed check raises, rolling the reservation back.
CREATE FUNCTION reserve_usage(p_bucket_id bigint, p_bytes bigint, p_objects bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_used record;
    v_quota record;
BEGIN
    v_used := bump_usage(p_bucket_id, 0, 0, p_bytes, p_objects);
    FOR v_quota IN
        SELECT q.scope, q.scope_id, q.max_bytes, q.max_objects FROM buckets b, quotas q
        WHERE b.id = p_bucket_id AND q.hard
            AND (q.scope, q.scope_id) IN (('bucket', b.id::text), ('tenant', b.tenant))
        ORDER BY q.scope
    LOOP
        IF v_quota.scope = 'tenant' THEN
            PERFORM pg_advisory_xact_lock(hashtextextended('quota:' || v_quota.scope_id, 0));
            SELECT coalesce(sum(u.bytes), 0)::bigint AS bytes,
                coalesce(sum(u.objects), 0)::bigint AS objects,
                coalesce(sum(u.reserved_bytes), 0)::bigint AS reserved_bytes,
                coalesce(sum(u.reserved_objects), 0)::bigint AS reserved_objects
            INTO v_used FROM bucket_usage u
            WHERE u.bucket_id IN (SELECT id FROM buckets WHERE tenant = v_quota.scope_id);
        END IF;
        PERFORM check_quota(v_quota.scope, v_quota.scope_id, 'bytes', v_quota.max_bytes,
                            v_used.bytes, v_used.reserved_bytes, p_bytes);
        PERFORM check_quota(v_quota.scope, v_quota.scope_id, 'objects', v_quota.max_objects,
                            v_used.objects, v_used.reserved_objects, p_objects);
    END LOOP;
END;
$$;

-- Record a pending version and its pending placements before any byte moves, reserving
-- its declared size and one object against the quotas; the new version's id. The
-- reservation comes last: the bucket's counter row is the one every writer of the bucket
-- locks, so it is held for as short a time as possible.
CREATE FUNCTION begin_version(
    p_bucket_id bigint, p_key text, p_version_id text, p_is_null_version boolean,
    p_content_type text, p_headers jsonb, p_user_metadata jsonb, p_tags jsonb,
    p_storage_class text, p_reserved_bytes bigint, p_acl text, p_encryption jsonb,
    p_backends text[], p_backend_key text
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_pk bigint;
BEGIN
    INSERT INTO object_versions (bucket_id, key, version_id, is_null_version, state,
        content_type, headers, user_metadata, tags, storage_class, reserved_bytes, acl,
        encryption)
    VALUES (p_bucket_id, p_key, p_version_id, p_is_null_version, 'pending', p_content_type,
        p_headers, p_user_metadata, p_tags, p_storage_class, p_reserved_bytes, p_acl,
        p_encryption)
    RETURNING id INTO v_pk;
    INSERT INTO placements (bucket_id, version_pk, backend, backend_key, state)
    SELECT p_bucket_id, v_pk, backend, p_backend_key, 'pending'
    FROM unnest(p_backends) AS backend;
    PERFORM reserve_usage(p_bucket_id, p_reserved_bytes, 1);
    RETURN v_pk;
END;
$$;

-- Mark a version deleted and queue its bytes for deletion after p_delay_s: those of its
-- placements, and the partial bytes a queued replica may have left on its target.
CREATE FUNCTION retire_version(p_bucket_id bigint, p_pk bigint, p_delay_s double precision)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_before record;
BEGIN
    SELECT size_bytes, is_delete_marker, state INTO v_before FROM object_versions
    WHERE bucket_id = p_bucket_id AND id = p_pk;
    UPDATE object_versions SET state = 'deleted', is_latest = false, updated_at = now()
    WHERE bucket_id = p_bucket_id AND id = p_pk;
    IF FOUND AND v_before.state = 'complete' AND NOT v_before.is_delete_marker THEN
        PERFORM bump_usage(p_bucket_id, -v_before.size_bytes, -1, 0, 0);
    END IF;
    INSERT INTO backend_deletions (bucket_id, backend, backend_key, not_before)
    SELECT bucket_id, backend, unnest(coalesce(segment_keys, ARRAY[backend_key])),
        now() + make_interval(secs => p_delay_s)
    FROM placements WHERE bucket_id = p_bucket_id AND version_pk = p_pk;
    WITH queued AS (DELETE FROM replication_queue WHERE bucket_id = p_bucket_id
                    AND version_pk = p_pk RETURNING target_backend)
    INSERT INTO backend_deletions (bucket_id, backend, backend_key, not_before)
    SELECT DISTINCT p_bucket_id, q.target_backend,
        unnest(coalesce(p.segment_keys, ARRAY[p.backend_key])),
        now() + make_interval(secs => p_delay_s)
    FROM queued q, (SELECT segment_keys, backend_key FROM placements
                    WHERE bucket_id = p_bucket_id AND version_pk = p_pk LIMIT 1) p;
    DELETE FROM placements WHERE bucket_id = p_bucket_id AND version_pk = p_pk;
END;
$$;

-- Make a pending version the latest of its key (the body of a PUT's commit).
-- status: 'committed' with the version's row (the columns of a VersionRow); 'not_pending' when gc reaped it first;
-- 'exists' when p_if_none_match_star and a current object exists; 'missing' or
-- 'mismatch' when p_if_match (the ETags asked for, or '*') does not hold. Anything but
-- 'committed' changed nothing.
CREATE FUNCTION commit_version(
    p_bucket_id bigint, p_pk bigint,
    p_size_bytes bigint, p_etag text,
    p_checksum_algorithm text, p_checksum_type text, p_checksum_value text,
    p_part_sizes bigint[], p_part_checksums text[], p_encryption jsonb,
    p_stored_bytes bigint, p_segment_keys text[], p_stored_on text[], p_replicate_to text[],
    p_if_none_match_star boolean, p_if_match text[], p_delay_s double precision,
    p_count_bytes boolean
) RETURNS TABLE (
    status text, pk bigint, seq bigint, bucket_id bigint, key text, version_id text,
    is_null_version boolean, state text, is_latest boolean, is_delete_marker boolean,
    size_bytes bigint, etag text, content_type text, headers jsonb, user_metadata jsonb,
    tags jsonb, storage_class text, checksum_algorithm text, checksum_type text,
    checksum_value text, part_sizes bigint[], part_checksums text[], created_at timestamptz,
    acl text, encryption jsonb
) LANGUAGE plpgsql AS $$
-- The output columns share the table's names: in statements, a name is the column.
#variable_conflict use_column
DECLARE
    v_pending record;
    v_latest record;
    v_old bigint;
BEGIN
    SELECT key, is_null_version, reserved_bytes INTO v_pending FROM object_versions
    WHERE bucket_id = p_bucket_id AND id = p_pk AND state = 'pending' FOR UPDATE;
    IF NOT FOUND THEN
        status := 'not_pending';
        RETURN NEXT;
        RETURN;
    END IF;
    -- Serialises writers of one key without a row to lock when the key is new.
    PERFORM pg_advisory_xact_lock(p_bucket_id::int, hashtext(v_pending.key));
    SELECT id, is_delete_marker, etag INTO v_latest FROM object_versions
    WHERE bucket_id = p_bucket_id AND key = v_pending.key AND is_latest;
    IF p_if_none_match_star AND FOUND AND NOT v_latest.is_delete_marker THEN
        status := 'exists';
        RETURN NEXT;
        RETURN;
    END IF;
    IF p_if_match IS NOT NULL THEN
        -- Checked under the key's lock, so no other writer can slip in between.
        IF v_latest.id IS NULL OR v_latest.is_delete_marker THEN
            status := 'missing';
            RETURN NEXT;
            RETURN;
        END IF;
        IF NOT ('*' = ANY(p_if_match) OR v_latest.etag = ANY(p_if_match)) THEN
            status := 'mismatch';
            RETURN NEXT;
            RETURN;
        END IF;
    END IF;
    IF v_latest.id IS NOT NULL THEN
        UPDATE object_versions SET is_latest = false
        WHERE bucket_id = p_bucket_id AND id = v_latest.id;
    END IF;
    IF v_pending.is_null_version THEN
        SELECT id INTO v_old FROM object_versions
        WHERE bucket_id = p_bucket_id AND key = v_pending.key AND is_null_version
            AND state = 'complete' AND id <> p_pk;
        IF v_old IS NOT NULL THEN
            PERFORM retire_version(p_bucket_id, v_old, p_delay_s);
        END IF;
    END IF;
    UPDATE object_versions SET state = 'complete', is_latest = true,
        size_bytes = p_size_bytes, etag = p_etag, checksum_algorithm = p_checksum_algorithm,
        checksum_type = p_checksum_type, checksum_value = p_checksum_value,
        part_sizes = p_part_sizes, part_checksums = p_part_checksums,
        seq = nextval('object_versions_seq'), created_at = now(), updated_at = now(),
        reserved_bytes = 0, encryption = coalesce(p_encryption, encryption)
    WHERE bucket_id = p_bucket_id AND id = p_pk
    RETURNING id, seq, bucket_id, key, version_id, is_null_version, state, is_latest,
        is_delete_marker, size_bytes, etag, content_type, headers, user_metadata, tags,
        storage_class, checksum_algorithm, checksum_type, checksum_value, part_sizes,
        part_checksums, created_at, acl, encryption
    INTO pk, seq, bucket_id, key, version_id, is_null_version, state, is_latest,
        is_delete_marker, size_bytes, etag, content_type, headers, user_metadata, tags,
        storage_class, checksum_algorithm, checksum_type, checksum_value, part_sizes,
        part_checksums, created_at, acl, encryption;
    -- Pending placements become ok where the write succeeded (p_stored_on, or all).
    UPDATE placements SET state = 'ok', size_bytes = coalesce(p_stored_bytes, p_size_bytes),
        segment_keys = p_segment_keys, verified_at = now()
    WHERE bucket_id = p_bucket_id AND version_pk = p_pk AND state = 'pending'
        AND (p_stored_on IS NULL OR backend = ANY(p_stored_on));
    -- The others are dropped, their partial bytes queued for deletion, except on a target
    -- the replication queue will fill: the copy overwrites them under the same key, and a
    -- deletion queued now could land after the copy (retire_version queues them if the
    -- version goes first).
    INSERT INTO backend_deletions (bucket_id, backend, backend_key)
    SELECT bucket_id, backend, unnest(coalesce(p_segment_keys, ARRAY[backend_key]))
    FROM placements WHERE bucket_id = p_bucket_id AND version_pk = p_pk AND state = 'pending'
        AND NOT (backend = ANY(p_replicate_to));
    IF cardinality(p_segment_keys) > 0 THEN
        -- Intents of part writes that failed on a target the queue will fill (multipart).
        DELETE FROM backend_deletions WHERE bucket_id = p_bucket_id
            AND backend = ANY(p_replicate_to) AND backend_key = ANY(p_segment_keys);
    END IF;
    DELETE FROM placements
    WHERE bucket_id = p_bucket_id AND version_pk = p_pk AND state = 'pending';
    INSERT INTO replication_queue (bucket_id, version_pk, target_backend)
    SELECT DISTINCT p_bucket_id, p_pk, target FROM unnest(p_replicate_to) AS target
    ON CONFLICT (version_pk, target_backend, bucket_id) DO NOTHING;
    -- Multipart parts were counted as they arrived: completing moves no bytes.
    PERFORM bump_usage(p_bucket_id, CASE WHEN p_count_bytes THEN p_size_bytes ELSE 0 END, 1,
                       -v_pending.reserved_bytes, -1);
    status := 'committed';
    RETURN NEXT;
END;
$$;
