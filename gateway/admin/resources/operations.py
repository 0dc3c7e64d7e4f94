"""The replication queue, the workers and the placements ledger."""

from __future__ import annotations

from gateway.admin.call import AdminCall
from gateway.admin.spec import (
    NAME,
    Operations,
    array,
    boolean,
    integer,
    nullable,
    number,
    obj,
    string,
)

ops = Operations("operations")

LIMIT = {"limit": integer(minimum=1, maximum=10000)}
TARGET = obj(
    ["target_backend", "depth", "bytes", "failing", "oldest_age_s"],
    target_backend=string(),
    depth=integer(),
    bytes=integer(),
    failing=integer(),
    oldest_age_s=number(),
)
QUEUE = obj(
    ["depth", "lag_bytes", "failing", "oldest_age_s", "targets"],
    depth=integer(),
    lag_bytes=integer(),
    failing=integer(),
    oldest_age_s=number(),
    targets=array(TARGET),
)
FAILURE = obj(
    ["id", "bucket", "key", "version_id", "target_backend", "attempts", "last_error"],
    extra=True,
    id=integer(),
    bucket=string(),
    key=string(),
    version_id=string(),
    target_backend=string(),
    attempts=integer(),
    last_error=nullable(string()),
    next_attempt_in_s=number(),
)
WORKER = obj(
    ["name", "paused", "running", "passes", "failures"],
    extra=True,
    name=string(),
    interval_s=number(),
    paused=boolean(),
    running=boolean(),
    passes=integer(),
    failures=integer(),
    last_pass_at=nullable(number()),
    last_success_at=nullable(number()),
    last_error=nullable(string()),
)
VERSION = obj(
    ["version_id", "state", "is_latest", "size_bytes", "placements", "queued"],
    extra=True,
    version_id=string(),
    state=string(),
    is_latest=boolean(),
    is_delete_marker=boolean(),
    size_bytes=integer(),
    etag=string(),
    placements=array(
        obj(["backend", "state", "size_bytes"], extra=True, backend=string(), state=string(),
            size_bytes=integer(), verified_at=nullable(string()),
            # A temporary copy (a restore's or a warm-up job's) lapses then; else null.
            expires_at=nullable(string()), warmup_job=nullable(integer()))
    ),
    queued=array(string()),
)  # fmt: skip


@ops.add("GET", "/replication", "Replication queue depth, lag and failures", response=QUEUE)
async def get_replication(call: AdminCall) -> object:
    return await call.management.replication()


@ops.add(
    "GET",
    "/replication/failures",
    "Queued copies that have failed at least once, most attempts first",
    response=array(FAILURE),
    query=LIMIT,
)
async def list_replication_failures(call: AdminCall) -> object:
    return await call.management.replication_failures(call.query.get("limit", 100))


@ops.add(
    "POST",
    "/replication/retry",
    "Make every waiting copy (to one backend, or all) due now",
    response=obj(["retried"], retried=integer()),
    body=obj(backend=NAME),
    errors=(404,),
)
async def retry_replication(call: AdminCall) -> object:
    return await call.management.retry_replication(call.body.get("backend"))


@ops.add(
    "POST",
    "/replication/purge",
    "Drop every queued copy to a backend (re-placement queues again what is still needed)",
    response=obj(["purged"], purged=integer()),
    body=obj(["backend"], backend=NAME),
    errors=(404,),
)
async def purge_replication(call: AdminCall) -> object:
    return await call.management.purge_replication(call.body["backend"])


@ops.add("GET", "/workers", "This node's workers and their health", response=array(WORKER))
async def list_workers(call: AdminCall) -> object:
    return call.management.workers()


@ops.add(
    "POST",
    "/workers/{name}/pause",
    "Pause a worker on every node",
    response=WORKER,
    path_params={"name": NAME},
    errors=(404,),
)
async def pause_worker(call: AdminCall) -> object:
    return await call.management.set_worker_paused(call.param("name"), True)


@ops.add(
    "POST",
    "/workers/{name}/resume",
    "Resume a worker on every node",
    response=WORKER,
    path_params={"name": NAME},
    errors=(404,),
)
async def resume_worker(call: AdminCall) -> object:
    return await call.management.set_worker_paused(call.param("name"), False)


@ops.add(
    "GET",
    "/ledger/placements",
    "The versions of a key (or one version) with every placement",
    response=array(VERSION),
    query={"bucket": string(minLength=1), "key": string(minLength=1),
           "version_id": string(minLength=1)},
    required_query=("bucket", "key"),
    errors=(404,),
)  # fmt: skip
async def get_placements(call: AdminCall) -> object:
    q = call.query
    return await call.management.placements(q["bucket"], q["key"], q.get("version_id"))


@ops.add(
    "GET",
    "/ledger/under-replicated",
    "Versions with fewer replicas than their rule asks for",
    response=array(
        obj(["bucket", "key", "replicas", "wanted", "queued"], bucket=string(), key=string(),
            replicas=array(string()), wanted=integer(), queued=array(string()))
    ),
    query=LIMIT,
)  # fmt: skip
async def list_under_replicated(call: AdminCall) -> object:
    return await call.management.under_replicated(call.query.get("limit", 1000))


@ops.add(
    "GET",
    "/ledger/only-on/{backend}",
    "Versions whose only replica is on this backend",
    response=array(
        obj(["bucket", "key", "version_id", "bytes"], bucket=string(), key=string(),
            version_id=string(), bytes=integer())
    ),
    path_params={"backend": NAME},
    query=LIMIT,
    errors=(404,),
)  # fmt: skip
async def list_only_on(call: AdminCall) -> object:
    return await call.management.only_on(call.param("backend"), call.query.get("limit", 1000))


KEY = obj(
    ["name", "active", "in_key_ring", "retired", "versions", "uploads", "access_keys"],
    name=string(), active=boolean(), in_key_ring=boolean(), retired=boolean(),
    versions=integer(), uploads=integer(), access_keys=integer(),
)  # fmt: skip


@ops.add(
    "GET",
    "/encryption-keys",
    "Key-encryption keys (never their material): which is active, and what still uses each",
    response=array(KEY),
)
async def list_encryption_keys(call: AdminCall) -> object:
    return await call.management.keys.keys()


@ops.add(
    "POST",
    "/encryption-keys/rewrap",
    "Re-wrap every SSE-S3 data key and re-seal every access key secret under the active key",
    response=obj(["envelopes", "access_keys", "remaining"], envelopes=integer(),
                 access_keys=integer(), remaining=integer()),
)  # fmt: skip
async def rewrap_encryption_keys(call: AdminCall) -> object:
    return await call.management.keys.rewrap_all()


@ops.add(
    "POST",
    "/encryption-keys/reload",
    "Reload this node's key ring from its file, without a restart (other nodes and worker"
    " processes pick it up within a minute); refused while the new ring drops a key in use",
    response=obj(["active", "keys", "added", "removed"], active=string(), keys=array(string()),
                 added=array(string()), removed=array(string())),
    errors=(409,),
)  # fmt: skip
async def reload_encryption_keys(call: AdminCall) -> object:
    return await call.management.keys.reload()


@ops.add(
    "POST",
    "/encryption-keys/{name}/retire",
    "Retire a key nothing uses any more (refused while anything still does)",
    response=KEY,
    path_params={"name": NAME},
    errors=(409,),
)
async def retire_encryption_key(call: AdminCall) -> object:
    return await call.management.keys.retire(call.param("name"))
