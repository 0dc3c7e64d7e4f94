"""Scrub: check every placement against its backend, repair damage, report orphans.

A quick pass checks that each replica exists with the right size; a full pass (or a
sampled one) also reads it back and verifies its checksum. A damaged replica is dropped
and re-copied from a healthy one through the replication queue.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from dataclasses import dataclass, field

from gateway import checksums
from gateway.backends.base import Backend, BackendError, BackendKeyNotFound
from gateway.backends.registry import BackendRegistry, UnknownBackend
from gateway.crypto.envelope import StoredSegment, stored_segments
from metadata.ledger import PlacementCheck, ScrubRepo

log = logging.getLogger(__name__)

PAGE = 500
ORPHAN_BATCH = 1000


@dataclass(slots=True)
class ScrubReport:
    checked: int = 0
    read_back: int = 0
    missing: int = 0
    corrupt: int = 0
    repaired: int = 0
    unreachable: int = 0
    orphans: dict[str, list[str]] = field(default_factory=dict)
    by_backend: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "checked": self.checked,
            "read_back": self.read_back,
            "missing": self.missing,
            "corrupt": self.corrupt,
            "repaired": self.repaired,
            "unreachable": self.unreachable,
            "orphans": {k: sorted(v) for k, v in sorted(self.orphans.items())},
            "checked_by_backend": dict(sorted(self.by_backend.items())),
        }


def _segments(check: PlacementCheck) -> list[StoredSegment]:
    keys = check.segment_keys or [check.backend_key]
    sizes = check.part_sizes if check.segment_keys else [check.size_bytes]
    sums: list[str | None] = (
        [c or None for c in check.part_checksums or [""] * len(sizes or [])]
        if check.segment_keys
        else [check.checksum_value]
    )
    return stored_segments(keys, sizes or [], sums, check.checksum_algorithm, check.encryption)


async def _digest_matches(
    backend: Backend, key: str, algorithm: str, expected: str | None, size: int
) -> bool:
    hasher = checksums.new_hasher(algorithm)
    seen = 0
    try:
        async for chunk in backend.get(key):
            hasher.update(chunk)
            seen += len(chunk)
    except BackendKeyNotFound:
        return False
    return seen == size and (expected is None or checksums.encode(hasher.digest()) == expected)


class ScrubWorker:
    def __init__(self, repo: ScrubRepo, backends: BackendRegistry) -> None:
        self._repo = repo
        self._backends = backends

    async def run_pass(
        self, *, sample_rate: float = 0.0, repair: bool = True, orphans: bool = True
    ) -> ScrubReport:
        """``sample_rate`` of the replicas are read back in full (1.0: all of them)."""
        report = ScrubReport()
        cursor = 0
        while page := await self._repo.placements(cursor, PAGE):
            verified = []
            for check in page:
                if await self._check(check, random.random() < sample_rate, report, repair):
                    verified.append(check)
            await self._repo.mark_verified(verified)
            cursor = page[-1].placement_id
        if orphans:
            await self._find_orphans(report)
        return report

    async def _check(
        self, check: PlacementCheck, read_back: bool, report: ScrubReport, repair: bool
    ) -> bool:
        report.checked += 1
        report.by_backend[check.backend] += 1
        try:
            problem = await self._problem(check, read_back)
        except (BackendError, UnknownBackend) as exc:
            # An unreachable backend says nothing about its data: try again next pass.
            log.warning("scrub could not reach %s: %s", check.backend, exc)
            report.unreachable += 1
            return False
        report.read_back += read_back
        if problem is None:
            return True
        log.error("replica %s/%s is %s", check.backend, check.backend_key, problem)
        setattr(report, problem, getattr(report, problem) + 1)
        if repair and await self._repo.repair(check):
            report.repaired += 1
        return False

    async def _problem(self, check: PlacementCheck, read_back: bool) -> str | None:
        backend = self._backends.get(check.backend)
        for segment in _segments(check):
            stored = await backend.size(segment.key)
            if stored is None:
                return "missing"
            if stored != segment.size:
                return "corrupt"
            if read_back and not await _digest_matches(
                backend, segment.key, segment.algorithm, segment.checksum, segment.size
            ):
                return "corrupt"
        return None

    async def _find_orphans(self, report: ScrubReport) -> None:
        for backend in self._backends.all():
            found: list[str] = []
            batch: list[str] = []
            async for key in backend.list_keys(""):
                batch.append(key)
                if len(batch) >= ORPHAN_BATCH:
                    found += await self._repo.unreferenced(backend.name, batch)
                    batch = []
            if batch:
                found += await self._repo.unreferenced(backend.name, batch)
            if found:
                report.orphans[backend.name] = found
