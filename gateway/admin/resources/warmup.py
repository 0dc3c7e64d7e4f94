"""Dataset warm-up jobs (issue #6): temporary copies of a prefix at a site, for a while."""

from __future__ import annotations

from datetime import datetime

from gateway.admin.call import AdminCall
from gateway.admin.resources.tenancy import BUCKET_NAME
from gateway.admin.spec import NAME, Operations, array, integer, nullable, number, obj, string
from metadata.warmup import WarmupJob

ops = Operations("warmup")

# S3 keys are at most 1024 bytes; a prefix longer than that matches nothing.
MAX_PREFIX_CHARS = 1024
MAX_DURATION_S = 366 * 86400
JOB_ID = {"id": integer(minimum=1)}
JOB = obj(
    ["id", "bucket", "prefix", "site", "backend", "state", "created_at", "expires_at",
     "ended_at", "objects_total", "objects_done", "bytes_total", "bytes_done",
     "objects_failing", "copies", "progress"],
    id=integer(), bucket=string(), prefix=string(), site=string(), backend=string(),
    state=string(enum=["warming", "ready", "expired", "cancelled"]),
    created_at=string(), expires_at=string(), ended_at=nullable(string()),
    objects_total=integer(), objects_done=integer(), bytes_total=integer(),
    bytes_done=integer(), objects_failing=integer(), copies=integer(),
    progress=number(minimum=0, maximum=1),
)  # fmt: skip


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _state(job: WarmupJob) -> str:
    if job.state != "active":
        return job.state
    return "warming" if job.done_objects < job.total_objects else "ready"


def _progress(job: WarmupJob) -> float:
    """The share of the bytes done (of the objects, when they hold no bytes)."""
    if job.total_bytes:
        return job.done_bytes / job.total_bytes
    return job.done_objects / job.total_objects if job.total_objects else 1.0


def job_json(job: WarmupJob) -> dict[str, object]:
    """A job as the API shows it: ``warming`` while copies are queued, then ``ready``."""
    return {
        "id": job.id, "bucket": job.bucket, "prefix": job.prefix, "site": job.site,
        "backend": job.target_backend, "state": _state(job),
        "created_at": _iso(job.created_at), "expires_at": _iso(job.expires_at),
        "ended_at": _iso(job.ended_at),
        "objects_total": job.total_objects, "objects_done": job.done_objects,
        "bytes_total": job.total_bytes, "bytes_done": job.done_bytes,
        "objects_failing": job.failing_objects, "copies": job.copies,
        "progress": _progress(job),
    }  # fmt: skip


@ops.add(
    "POST",
    "/warmup-jobs",
    "Warm a prefix onto a site for a while: temporary copies on a backend there (the one"
    " named, else the site's active backend of the hottest tier), made through the"
    " replication queue; reads at the site are served from them until `duration_s` runs out",
    response=JOB,
    status=201,
    body=obj(
        ["bucket", "site", "duration_s"],
        bucket=BUCKET_NAME,
        prefix=string(maxLength=MAX_PREFIX_CHARS),
        site=NAME,
        backend=NAME,
        duration_s=integer(minimum=1, maximum=MAX_DURATION_S),
    ),  # fmt: skip
    errors=(404, 422),
)
async def create_warmup_job(call: AdminCall) -> object:
    body = call.body
    job = await call.management.warmup.create(
        body["bucket"], body.get("prefix", ""), body["site"], body.get("backend"),
        body["duration_s"],
    )  # fmt: skip
    return job_json(job)


@ops.add(
    "GET",
    "/warmup-jobs",
    "Warm-up jobs, newest first, with their progress",
    response=array(JOB),
    query={"limit": integer(minimum=1, maximum=10000)},
)
async def list_warmup_jobs(call: AdminCall) -> object:
    return [
        job_json(job) for job in await call.management.warmup.jobs(call.query.get("limit", 100))
    ]


@ops.add(
    "GET",
    "/warmup-jobs/{id}",
    "One warm-up job with its progress (objects and bytes done of the total)",
    response=JOB,
    path_params=JOB_ID,
    errors=(404,),
)
async def get_warmup_job(call: AdminCall) -> object:
    return job_json(await call.management.warmup.job(call.param("id")))


@ops.add(
    "DELETE",
    "/warmup-jobs/{id}",
    "Cancel a warm-up job: queued copies are dropped and its copies removed (the policy's"
    " copies stay); an ended job is answered as it is",
    response=JOB,
    path_params=JOB_ID,
    errors=(404,),
)
async def cancel_warmup_job(call: AdminCall) -> object:
    return job_json(await call.management.warmup.cancel(call.param("id")))
