"""The lifecycle worker: applies each bucket's lifecycle rules as of a given time.

Time is injected: a pass evaluates the rules at ``now``, which is the worker's clock unless
the caller gives one (``POST /admin/v1/lifecycle/run``), so tests never sleep for days.
Each pass first checks the transitions under way and retires the copies of warm-up jobs
whose time ran out and restored copies that lapsed, then moves down a tier the versions of
buckets with access tiering that were not read for long enough, then walks every bucket that
has a configuration, key by key, and applies what is due through the same paths client
requests take (DeleteObject, DeleteObject with a versionId, AbortMultipartUpload), so usage and gc
stay exact. One node runs a pass at a time (a session advisory lock); every step is
idempotent and re-checked under the key's lock, so a pass cut short is simply run again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from itertools import groupby

import asyncpg

from gateway.errors import NoSuchUpload, S3Error
from gateway.lifecycle.actions import Due, Kind, actions_for_key, upload_due
from gateway.lifecycle.rules import Rule, parse
from gateway.services.multipart import MultipartService
from gateway.services.objects import ObjectService
from gateway.services.read_notes import ReadNotes
from gateway.workers.transitions import Transitions
from metadata.access_tiering import AccessTieringRepo
from metadata.buckets import BucketRepo
from metadata.lifecycle import LifecycleRepo, LifecycleVersion
from metadata.models import BucketRow
from metadata.restores import RestoreRepo
from metadata.warmup import WarmupRepo

log = logging.getLogger(__name__)

KEYS_PER_PAGE = 500
UPLOADS_PER_PASS = 1000
# Versions access tiering moves down per pass; the rest wait for the next one.
ACCESS_MOVES_PER_PASS = 1000
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class LifecycleReport:
    now: datetime
    # Current versions expired: replaced by a delete marker, or deleted when unversioned.
    expired: int = 0
    # Versions deleted for good: noncurrent ones and expired delete markers.
    removed: int = 0
    uploads_aborted: int = 0
    transitions_started: int = 0
    transitions_finished: int = 0
    transitions_waiting: int = 0
    # Restored copies of archived versions that lapsed and were retired.
    restores_expired: int = 0
    # Warm-up jobs whose time ran out: their copies were retired.
    warmups_expired: int = 0
    # Versions not read for their bucket's days, started one tier down (access tiering).
    access_tiered: int = 0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "now": self.now.isoformat()}

    @property
    def changed(self) -> bool:
        return any(v for k, v in asdict(self).items() if k not in ("now", "transitions_waiting"))


class LifecycleWorker:
    def __init__(
        self,
        pool: asyncpg.Pool,
        repo: LifecycleRepo,
        buckets: BucketRepo,
        objects: ObjectService,
        multipart: MultipartService,
        transitions: Transitions,
        restores: RestoreRepo,
        warmups: WarmupRepo,
        access: AccessTieringRepo,
        read_notes: ReadNotes,
        *,
        deletion_delay_s: float,
        scan_interval_s: float,
        clock: Clock = system_clock,
    ) -> None:
        self._scan_interval_s = scan_interval_s
        self._last_scan = -math.inf
        self._restores = restores
        self._warmups = warmups
        self._access = access
        self._read_notes = read_notes
        self._delay_s = deletion_delay_s
        self._pool = pool
        self._repo = repo
        self._buckets = buckets
        self._objects = objects
        self._multipart = multipart
        self._transitions = transitions
        self._clock = clock

    async def run_pass(
        self, now: datetime | None = None, *, wait: bool = False, scan: bool = True
    ) -> LifecycleReport | None:
        """One pass at ``now`` (the clock's time by default); None when another node holds
        the pass and ``wait`` is not set. Without ``scan`` it only checks the transitions
        under way and the restored copies, not every version."""
        # Reads noted on this node count in this pass (they reach the database in batches).
        await self._read_notes.flush()
        async with self._pool.acquire() as con:
            if not await self._repo.lock(con, wait):
                return None
            try:
                return await self._pass(now or self._clock(), scan)
            finally:
                await self._repo.unlock(con)

    async def scheduled_pass(self) -> None:
        # Rules are days apart: walking every version of every bucket that often suffices,
        # while a finished copy switches its transition within a pass interval.
        scan = time.monotonic() - self._last_scan >= self._scan_interval_s
        report = await self.run_pass(scan=scan)
        if report is not None and scan:
            self._last_scan = time.monotonic()
        if report is not None and report.changed:
            log.info("lifecycle pass: %s", report.as_dict())

    async def _pass(self, now: datetime, scan: bool) -> LifecycleReport:
        report = LifecycleReport(now)
        finished, report.transitions_waiting = await self._transitions.check_all()
        report.transitions_finished += finished
        # Before the restored copies: a lapsed warm-up copy is the job's to retire.
        report.warmups_expired = await self._warmups.expire(now, self._delay_s)
        report.restores_expired = await self._restores.expire(now, self._delay_s)
        if scan:
            await self._scan(now, report)
        return report

    async def _scan(self, now: datetime, report: LifecycleReport) -> None:
        for bucket_id, version_pk, storage_class in await self._access.due(
            now, ACCESS_MOVES_PER_PASS
        ):
            report.access_tiered += 1
            report.transitions_finished += await self._transitions.start(
                bucket_id, version_pk, storage_class
            )
        for bucket in await self._buckets.with_lifecycle():
            rules = _rules(bucket)
            if any(_acts_on_versions(rule) for rule in rules):
                await self._versions(bucket, rules, now, report)
            if any(rule.abort_incomplete_days is not None for rule in rules):
                await self._uploads(bucket, rules, now, report)

    async def _versions(
        self, bucket: BucketRow, rules: list[Rule], now: datetime, report: LifecycleReport
    ) -> None:
        after = ""
        while page := await self._repo.versions_page(bucket.id, after, KEYS_PER_PAGE):
            for _, versions in groupby(page, key=lambda v: v.key):
                for due in actions_for_key(rules, list(versions), now):
                    await self._apply(bucket, due, report)
            after = page[-1].key

    async def _apply(
        self, bucket: BucketRow, due: Due[LifecycleVersion], report: LifecycleReport
    ) -> None:
        version = due.version
        if due.kind is Kind.EXPIRE:
            report.expired += await self._objects.expire_current(
                bucket, version.key, version.version_id
            )
        elif due.kind is Kind.REMOVE and version.is_delete_marker:
            await self._objects.delete(bucket, version.key, version.version_id)
            report.removed += 1
        elif due.kind is Kind.REMOVE:
            report.removed += await self._objects.remove_noncurrent(
                bucket, version.key, version.version_id
            )
        elif due.storage_class is not None:
            report.transitions_started += 1
            report.transitions_finished += await self._transitions.start(
                bucket.id, version.pk, due.storage_class
            )

    async def _uploads(
        self, bucket: BucketRow, rules: list[Rule], now: datetime, report: LifecycleReport
    ) -> None:
        for upload in await self._repo.open_uploads(bucket.id, now, UPLOADS_PER_PASS):
            if not upload_due(rules, upload.key, upload.initiated_at, now):
                continue
            try:
                await self._multipart.abort(bucket, upload.key, upload.upload_id)
            except NoSuchUpload:
                continue  # completed or aborted meanwhile
            report.uploads_aborted += 1


def _rules(bucket: BucketRow) -> list[Rule]:
    if bucket.lifecycle is None:
        return []
    try:
        return list(parse(bucket.lifecycle).enabled_rules)
    except S3Error:
        log.exception("stored lifecycle configuration of bucket %s is invalid", bucket.name)
        return []


def _acts_on_versions(rule: Rule) -> bool:
    return bool(
        rule.expiration or rule.transitions or rule.noncurrent_transitions
        or rule.noncurrent_expiration
    )  # fmt: skip
