"""Garbage collection: reap abandoned writes and delete unreferenced backend objects.

Safe on many nodes at once: deletions are claimed with FOR UPDATE SKIP LOCKED and a lease,
and reaping a version locks its row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.backends.base import BackendError
from gateway.backends.registry import BackendRegistry, UnknownBackend
from metadata.deletions import DeletionRepo
from metadata.models import DeletionRow
from metadata.objects import ObjectRepo

log = logging.getLogger(__name__)

BATCH = 100
LEASE_S = 300.0
# A deletion that failed (a link down) is tried again this soon, not after the lease.
RETRY_S = 10.0


@dataclass(frozen=True, slots=True)
class GcReport:
    reaped_versions: int
    deleted_objects: int
    failed_deletions: int


class GcWorker:
    def __init__(
        self,
        objects: ObjectRepo,
        deletions: DeletionRepo,
        backends: BackendRegistry,
        *,
        pending_timeout_s: float,
        abandoned_after_s: float | None = None,
    ) -> None:
        self._objects = objects
        self._deletions = deletions
        self._backends = backends
        self._pending_timeout_s = pending_timeout_s
        # Backend leftovers of writes that died (temp files, backend multipart uploads)
        # untouched this long are swept; None disables the sweep.
        self._abandoned_after_s = abandoned_after_s

    async def run_once(self) -> GcReport:
        """One bounded pass; call until it reports no work."""
        reaped = 0
        pending = await self._objects.placements_of_pending(self._pending_timeout_s, BATCH)
        for bucket_id, pk in pending + await self._objects.dead_versions(0, BATCH):
            await self._objects.reap_version(bucket_id, pk)
            reaped += 1
        deleted, failed = await self._drain_deletions()
        return GcReport(reaped, deleted, failed)

    async def _drain_deletions(self) -> tuple[int, int]:
        rows = await self._deletions.claim(BATCH, LEASE_S)
        done: list[DeletionRow] = []
        failed = 0
        for row in rows:
            try:
                await self._backends.get(row.backend).delete(row.backend_key)
            except (BackendError, UnknownBackend) as exc:
                log.warning("gc could not delete %s/%s: %s", row.backend, row.backend_key, exc)
                await self._deletions.retry_later(row, RETRY_S)
                failed += 1
                continue
            done.append(row)
        if done:
            await self._deletions.done(done)
        return len(done), failed

    async def sweep_backends(self) -> int:
        """Remove backend leftovers of dead writes; a failing backend is retried next pass."""
        if self._abandoned_after_s is None:
            return 0
        swept = 0
        for backend in self._backends.all():
            try:
                swept += await backend.sweep_abandoned(self._abandoned_after_s)
            except BackendError as exc:
                log.warning("gc could not sweep backend %s: %s", backend.name, exc)
        return swept

    async def run_until_idle(self) -> GcReport:
        total = GcReport(0, 0, 0)
        while True:
            report = await self.run_once()
            total = GcReport(
                total.reaped_versions + report.reaped_versions,
                total.deleted_objects + report.deleted_objects,
                total.failed_deletions + report.failed_deletions,
            )
            if report.reaped_versions == 0 and report.deleted_objects == 0:
                return total

    async def run_pass(self) -> None:
        await self.sweep_backends()
        await self.run_until_idle()
