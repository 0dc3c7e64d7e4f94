"""The replication worker: brings every version to the replicas its write plan asked for.

Safe on many nodes: tasks are claimed with FOR UPDATE SKIP LOCKED under a lease, copies
go to the key the version already uses (so a repeated copy overwrites itself), and the new
placement is recorded only if the version still exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway import checksums
from gateway.backends.base import BackendError
from gateway.backends.registry import BackendRegistry, UnknownBackend
from gateway.crypto.envelope import StoredSegment, stored_segments
from gateway.links.egress import background
from gateway.placement import engine
from gateway.placement.model import ReadPreference
from gateway.services.topology import TopologyService
from metadata import db
from metadata.egress import EgressRepo
from metadata.models import PlacementRow, VersionRow
from metadata.objects import ObjectRepo
from metadata.replication import ReplicationRepo, ReplicationTask

log = logging.getLogger(__name__)

LEASE_S = 60.0
STALL_TIMEOUT_S = 10.0


class CopyMismatch(Exception):
    """The copy's size or checksum differs from the version's: the copy is not kept."""


async def _verified(
    stream: AsyncIterator[bytes], algorithm: str, expected: str | None, size: int
) -> AsyncGenerator[bytes, None]:
    hasher = checksums.new_hasher(algorithm)
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        hasher.update(chunk)
        yield chunk
    if seen != size or (expected and checksums.encode(hasher.digest()) != expected):
        # Raising inside the body makes the target abandon its atomic write.
        raise CopyMismatch(f"copy of {size} bytes read {seen} or failed its {algorithm} check")


def segments_of(version: VersionRow, placement: PlacementRow) -> list[StoredSegment]:
    """The backend objects of ``placement`` and what each must be (size, checksum)."""
    keys = placement.segment_keys or [placement.backend_key]
    sizes = version.part_sizes or [version.size_bytes]
    plain = version.part_checksums if version.part_sizes else [version.checksum_value]
    sums = [c or None for c in plain or [None] * len(keys)]
    return stored_segments(keys, sizes, sums, version.checksum_algorithm, version.encryption)


def _until_tomorrow_s() -> float:
    """Seconds until the next UTC midnight, when every budget starts afresh."""
    now = datetime.now(UTC)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (tomorrow - now).total_seconds()


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """Capped exponential backoff with full jitter."""
    return random.uniform(0, min(max_s, base_s * 2 ** max(attempts - 1, 0)))


class ReplicationWorker:
    def __init__(
        self,
        queue: ReplicationRepo,
        objects: ObjectRepo,
        backends: BackendRegistry,
        topology: TopologyService,
        *,
        concurrency: int,
        base_delay_s: float,
        max_delay_s: float,
        egress: EgressRepo | None = None,
        lease_s: float = LEASE_S,
        stall_timeout_s: float = STALL_TIMEOUT_S,
    ) -> None:
        self._lease_s = lease_s
        self._stall_timeout_s = stall_timeout_s
        self._egress = egress
        self._queue = queue
        self._objects = objects
        self._backends = backends
        self._topology = topology
        self._concurrency = concurrency
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s

    async def run_once(self) -> int:
        """Claim and process one batch; returns how many tasks were claimed."""
        tasks = await self._queue.claim(self._concurrency, self._lease_s)
        await asyncio.gather(*(self._leased(task) for task in tasks))
        return len(tasks)

    async def _leased(self, task: ReplicationTask) -> None:
        renewing = asyncio.create_task(self._renew(task))
        try:
            await self._process(task)
        except Exception as exc:
            if not db.is_unreachable(exc):
                raise
            # Lost PostgreSQL mid-task: the lease would hide the task from every node for
            # LEASE_S. Hand it back once the database answers (a repeated copy is harmless).
            log.warning("replica of version %s: metadata unreachable; released", task.version_pk)
            error = repr(exc)
            await db.retry_unreachable(lambda: self._queue.retry_later(task, 0, error))
        finally:
            renewing.cancel()

    async def _renew(self, task: ReplicationTask) -> None:
        """Keep the lease while the copy runs, so a short lease serves long copies and a
        node killed mid-copy hides it from the others only briefly."""
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                await self._queue.renew(task, self._lease_s)
            except Exception:  # a missed renewal risks only a repeated, harmless copy
                log.warning("lease of replication task %s not renewed", task.id, exc_info=True)

    async def drain(self) -> None:
        """Work through every task that is due."""
        while await self.run_once():
            pass

    async def _process(self, task: ReplicationTask) -> None:
        version = await self._objects.get_by_pk(task.bucket_id, task.version_pk)
        if version is None or version.state != "complete" or version.is_delete_marker:
            await self._queue.drop(task)
            return
        if any(p.backend == task.target_backend for p in version.placements):
            await self._queue.drop(task)
            return
        # Every replica of a version uses the same keys. No queued deletion of them may
        # outlive the copy (gc would remove the new replica). A failed copy's leftovers are
        # overwritten by the retry, or queued for deletion with the version.
        keys = [k for p in version.placements[:1] for k in p.segment_keys or [p.backend_key]]
        await self._queue.claim_keys(task.bucket_id, task.target_backend, keys)
        charges = self._charges(version, task.target_backend)
        exhausted = await self._egress.reserve(charges) if self._egress else None
        if exhausted is not None:
            await self._queue.retry_later(
                task, _until_tomorrow_s(), f"egress budget of link {exhausted} spent for today"
            )
            return
        try:
            with background():
                await self._copy(version, task.target_backend)
        except (BackendError, UnknownBackend, CopyMismatch) as exc:
            if self._egress:
                await self._egress.release(charges)
            delay = backoff_s(task.attempts, self._base_delay_s, self._max_delay_s)
            log.info(
                "replica of %s to %s failed (%s); retry in %.1f s",
                version.key,
                task.target_backend,
                exc,
                delay,
            )
            await self._queue.retry_later(task, delay, repr(exc))
            return
        source = version.placements[0]
        stored = sum(s.size for s in segments_of(version, source))
        await self._queue.complete(task, source.backend_key, source.segment_keys, stored)

    def _charges(self, version: VersionRow, target: str) -> dict[str, int]:
        """The links a copy crosses from this node: reading the first source, writing the
        target. Each carries the version's size."""
        snapshot = self._topology.snapshot()
        sources = self._sources(version)
        charges: dict[str, int] = {}
        size = sum(s.size for s in segments_of(version, sources[0])) if sources else 0
        for backend in ([sources[0].backend] if sources else []) + [target]:
            links = [link for link in snapshot.links_to(backend) if link.healthy]
            if links:
                charges[links[0].name] = charges.get(links[0].name, 0) + size
        return charges

    def _sources(self, version: VersionRow) -> list[PlacementRow]:
        names = engine.order_replicas(
            [p.backend for p in version.placements], self._topology.snapshot(), ReadPreference.LOCAL
        )
        by_name = {p.backend: p for p in version.placements}
        return [by_name[n] for n in names if n in by_name]

    async def _copy(self, version: VersionRow, target_name: str) -> None:
        last: Exception | None = None
        for source in self._sources(version):
            try:
                await self._copy_from(version, source, target_name)
                return
            except CopyMismatch as exc:
                log.error("replica %s of %s is damaged: %s", source.backend, version.key, exc)
                last = exc
            except BackendError as exc:
                last = exc
        raise last or BackendError(f"no readable replica of {version.key}")

    async def _copy_from(self, version: VersionRow, source: PlacementRow, target_name: str) -> None:
        reader = self._backends.get(source.backend)
        writer = self._backends.get(target_name)
        for segment in segments_of(version, source):
            body = _Watched(_verified(reader.get(segment.key), segment.algorithm,
                                      segment.checksum, segment.size))  # fmt: skip
            try:
                await _unless_stalled(writer.put(segment.key, body, segment.size), body,
                                      self._stall_timeout_s, target_name)  # fmt: skip
            finally:
                await body.aclose()


class CopyStalled(BackendError):
    """A copy's body stopped moving (a hung link or store): given up, retried later."""


class _Watched:
    """A copy's body that counts the chunks its writer has taken."""

    def __init__(self, body: AsyncGenerator[bytes, None]) -> None:
        self._body = body
        self._chunks = self._counted()
        self.taken = 0
        self.ended = False

    def __aiter__(self) -> _Watched:
        return self

    async def __anext__(self) -> bytes:
        return await self._chunks.__anext__()

    async def _counted(self) -> AsyncGenerator[bytes, None]:
        async for chunk in self._body:
            self.taken += 1
            yield chunk
        self.ended = True

    async def aclose(self) -> None:
        """Close the source now (its file or connection), whatever the writer did."""
        with contextlib.suppress(Exception):
            await self._chunks.aclose()
        with contextlib.suppress(Exception):
            await self._body.aclose()


async def _unless_stalled(
    put: Coroutine[Any, Any, int], body: _Watched, stall_timeout_s: float, target: str
) -> None:
    """Run ``put``, but give it up once its body has not moved for a stall timeout (found
    within two). A copy over a hung link otherwise waited for as long as the link hung, and
    the whole batch claimed with it waited too. Once the body is all taken, the driver's own
    read timeout bounds the wait for the store's answer."""
    task = asyncio.ensure_future(put)
    try:
        seen = -1
        while not (await asyncio.wait({task}, timeout=stall_timeout_s))[0]:
            if not body.ended and body.taken == seen:
                raise CopyStalled(f"{target}: the copy took no data for {stall_timeout_s} s")
            seen = body.taken
        task.result()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
