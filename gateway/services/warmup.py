"""Dataset warm-up: temporary copies of a prefix on a backend at one site, for a while.

The copies are made by the replication queue (verified, over links, within their bandwidth
and concurrency caps and egress budgets, retried with backoff) to one backend at the site:
the one the caller names, else the site's active backend of the hottest tier. Reads at that
site then find a replica at their own site, which reads try first. When the time runs out
(the lifecycle pass, whose time can be injected) or the job is cancelled, its copies are
retired through the gc's deletions; the policy's copies are never touched.
"""

from __future__ import annotations

from datetime import datetime

from gateway.placement.model import BackendInfo, BackendState, Tier
from gateway.placement.tiers import TIER_OF_CLASS
from gateway.services.admin_errors import NotFound, Unprocessable
from gateway.services.topology import TopologyService
from metadata.buckets import BucketRepo
from metadata.warmup import NewWarmup, WarmupJob, WarmupRepo

_HOTTEST_FIRST = (Tier.HOT, Tier.WARM, Tier.COLD)
# Archived versions are read only after a restore: a warm-up leaves them out.
ARCHIVED_CLASSES = tuple(c for c, tier in TIER_OF_CLASS.items() if tier is Tier.ARCHIVE)


class WarmupService:
    def __init__(
        self,
        repo: WarmupRepo,
        buckets: BucketRepo,
        topology: TopologyService,
        *,
        deletion_delay_s: float,
    ) -> None:
        self._repo = repo
        self._buckets = buckets
        self._topology = topology
        self._delay_s = deletion_delay_s

    async def create(
        self, bucket: str, prefix: str, site: str, backend: str | None, duration_s: int
    ) -> WarmupJob:
        """Warm ``prefix`` of ``bucket`` onto ``site`` for ``duration_s`` seconds."""
        row = await self._buckets.get(bucket)
        if row is None:
            raise NotFound(f"no bucket named {bucket}")
        target = self._target(site, backend)
        new = NewWarmup(row.id, prefix, site, target.name, duration_s, ARCHIVED_CLASSES)
        return await self.job(await self._repo.create(new))

    def _target(self, site: str, backend: str | None) -> BackendInfo:
        backends = self._topology.snapshot().backends
        if backend is not None:
            return _named_target(backends.get(backend), backend, site)
        usable = [info for info in backends.values() if info.site == site and _usable(info)]
        if not usable:
            raise Unprocessable(f"site {site} has no active backend off the archive tier")
        return min(usable, key=lambda info: (_HOTTEST_FIRST.index(info.tier), info.name))

    async def jobs(self, limit: int) -> list[WarmupJob]:
        return await self._repo.jobs(limit)

    async def job(self, job_id: int) -> WarmupJob:
        job = await self._repo.job(job_id)
        if job is None:
            raise NotFound(f"no warm-up job {job_id}")
        return job

    async def cancel(self, job_id: int) -> WarmupJob:
        """End the job now and retire its copies (an ended job is returned as it is)."""
        job = await self.job(job_id)
        await self._repo.cancel(job.bucket_id, job_id, self._delay_s)
        return await self.job(job_id)

    async def expire(self, now: datetime) -> int:
        """End the jobs whose time ran out by ``now``; the count ended."""
        return await self._repo.expire(now, self._delay_s)


def _usable(info: BackendInfo) -> bool:
    return info.state is BackendState.ACTIVE and info.tier is not Tier.ARCHIVE


def _named_target(info: BackendInfo | None, name: str, site: str) -> BackendInfo:
    if info is None:
        raise NotFound(f"no backend named {name}")
    if info.site != site:
        raise Unprocessable(f"backend {name} is at site {info.site}, not {site}")
    if not _usable(info):
        raise Unprocessable(f"backend {name} is {info.state}, tier {info.tier}: not writable")
    return info
