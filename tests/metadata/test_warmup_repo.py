"""Warm-up jobs against bucket and backend deletion: an ended job is history and keeps
neither its bucket nor its backend from going; an active job keeps its backend in use."""

from __future__ import annotations

import asyncpg

from metadata.buckets import BucketRepo
from metadata.topology import BackendRow, TopologyRepo
from metadata.warmup import NewWarmup, WarmupRepo


async def _job(pool: asyncpg.Pool, bucket: str, backend: str) -> tuple[int, int]:
    """(bucket id, job id) of a new job warming an empty bucket onto ``backend``."""
    row = await BucketRepo(pool).create(bucket, "AK", "us-east-1", "local")
    assert row is not None
    new = NewWarmup(row.id, "", "gpu", backend, 3600, ())
    return row.id, await WarmupRepo(pool).create(new)


async def test_an_empty_bucket_goes_with_its_warmup_jobs(pool: asyncpg.Pool) -> None:
    bucket_id, job_id = await _job(pool, "warm-bucket", "nvme")
    assert await WarmupRepo(pool).cancel(bucket_id, job_id, 0)
    assert await BucketRepo(pool).delete_if_empty(bucket_id)
    assert await WarmupRepo(pool).job(job_id) is None


async def test_an_active_job_keeps_its_backend_in_use(pool: asyncpg.Pool) -> None:
    topology = TopologyRepo(pool)
    assert await topology.create_backend(BackendRow("gpu-disk", "gpu", "localfs", "hot",
                                                    "disabled", None))  # fmt: skip
    bucket_id, job_id = await _job(pool, "warm-backend", "gpu-disk")
    assert await topology.delete_backend("gpu-disk", 0) == "in-use"
    assert await WarmupRepo(pool).cancel(bucket_id, job_id, 0)
    assert await topology.delete_backend("gpu-disk", 0) == "deleted"
    job = await WarmupRepo(pool).job(job_id)
    assert job is not None
    assert (job.state, job.target_backend) == ("cancelled", "gpu-disk")
