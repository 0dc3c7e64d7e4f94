"""Re-placement: after a policy or a backend's state changes, bring every version into line.

Copies go through the replication queue (copy, verify, then record the placement), and a
replica on a leaving backend is retired only once enough replicas exist elsewhere, so reads
can use the old and the new placements throughout. One node runs a pass at a time (an
advisory lock); a pass is resumable from the cursor it saves.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import asyncpg

from gateway.placement import engine
from gateway.placement.model import (
    ObjectFacts,
    PlacementError,
    PlacementPolicy,
    ReadPreference,
    Topology,
    WritePlan,
)
from gateway.placement.replacement import Move, counted, reconcile
from gateway.services.topology import TopologyService
from metadata.ledger import LedgerEntry, LedgerRepo

log = logging.getLogger(__name__)

WORKER = "replacement"
PAGE = 500


@dataclass(slots=True)
class ReplacementReport:
    versions: int = 0
    copies: int = 0
    bytes: int = 0
    retirements: int = 0
    # Bytes that cross each link: read from the source replica, written to the target.
    egress_per_link: Counter[str] = field(default_factory=Counter)
    unplaceable: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "versions": self.versions,
            "copies": self.copies,
            "bytes": self.bytes,
            "retirements": self.retirements,
            "egress_per_link": dict(sorted(self.egress_per_link.items())),
            "unplaceable": self.unplaceable,
        }


def _link_name(topology: Topology, backend: str) -> str:
    links = [link for link in topology.links_to(backend) if link.healthy]
    return links[0].name if links else f"direct:{backend}"


class ReplacementWorker:
    def __init__(self, pool: asyncpg.Pool, ledger: LedgerRepo, topology: TopologyService) -> None:
        self._pool = pool
        self._ledger = ledger
        self._topology = topology

    async def run_pass(self, *, dry_run: bool) -> ReplacementReport | None:
        """One full pass; None when another node holds the pass."""
        async with self._pool.acquire() as con:
            if not await self._ledger.try_lock(con, WORKER):
                return None
            try:
                return await self._pass(dry_run)
            finally:
                await con.execute("SELECT pg_advisory_unlock(hashtext('worker:' || $1))", WORKER)

    async def dry_run(self) -> ReplacementReport:
        """What a pass would move now. It changes nothing, so it needs no lock."""
        return await self._pass(dry_run=True)

    async def under_replicated(self, limit: int) -> list[dict[str, object]]:
        """Versions with fewer counted replicas than their rule asks for."""
        snapshot = self._topology.snapshot()
        cursor = 0
        found: list[dict[str, object]] = []
        while len(found) < limit and (page := await self._ledger.page(cursor, PAGE)):
            for entry in page:
                wanted = self.wanted(entry)
                have = [b for b in entry.backends if counted(b, snapshot)]
                if wanted is not None and len(have) < wanted:
                    found.append({"bucket": entry.bucket, "key": entry.key, "replicas": have,
                                  "wanted": wanted, "queued": entry.queued})  # fmt: skip
            cursor = page[-1].version_pk
        return found[:limit]

    async def _pass(self, dry_run: bool) -> ReplacementReport:
        report = ReplacementReport()
        topology = self._topology.snapshot()
        cursor = 0
        while page := await self._ledger.page(cursor, PAGE):
            for entry in page:
                await self._reconcile(entry, topology, report, dry_run)
            cursor = page[-1].version_pk
            if not dry_run:
                await self._ledger.save_cursor(WORKER, cursor)
        if not dry_run:
            await self._ledger.save_cursor(WORKER, 0)
        return report

    @property
    def topology(self) -> TopologyService:
        return self._topology

    def _facts(self, entry: LedgerEntry) -> tuple[PlacementPolicy, ObjectFacts]:
        policy = self._topology.policy_named(entry.placement_policy)
        facts = ObjectFacts(
            entry.bucket, entry.key, entry.size_bytes, entry.storage_class, entry.tags
        )
        return policy, facts

    def wanted(self, entry: LedgerEntry) -> int | None:
        """How many replicas the version's rule asks for (None: no rule matches)."""
        try:
            return len(engine.matching_rule(*self._facts(entry)).replicas)
        except PlacementError:
            return None

    def _move(self, entry: LedgerEntry, topology: Topology) -> Move | None:
        wanted = self.wanted(entry)
        try:
            plan: WritePlan = engine.choose(*self._facts(entry), topology)
        except PlacementError:
            return None
        if wanted is None:
            return None
        return reconcile(entry.backends, entry.queued, plan, wanted, topology)

    async def _reconcile(
        self, entry: LedgerEntry, topology: Topology, report: ReplacementReport, dry_run: bool
    ) -> None:
        move = self._move(entry, topology)
        if move is None:
            report.unplaceable += 1
            return
        if not move.copy_to and not move.retire:
            return
        report.versions += 1
        self._account(entry, move, topology, report)
        if dry_run:
            return
        if move.copy_to:
            await self._ledger.enqueue(entry.bucket_id, entry.version_pk, list(move.copy_to))
        for backend in move.retire:
            await self._ledger.retire_placement(
                entry.bucket_id, entry.version_pk, backend, move.wanted
            )

    def _account(
        self, entry: LedgerEntry, move: Move, topology: Topology, report: ReplacementReport
    ) -> None:
        report.copies += len(move.copy_to)
        report.bytes += entry.size_bytes * len(move.copy_to)
        report.retirements += len(move.retire)
        readable = [b for b in entry.backends if counted(b, topology) or b in topology.backends]
        sources = engine.order_replicas(readable, topology, ReadPreference.LOCAL)
        for target in move.copy_to:
            if sources:
                report.egress_per_link[_link_name(topology, sources[0])] += entry.size_bytes
            report.egress_per_link[_link_name(topology, target)] += entry.size_bytes

    async def scheduled_pass(self) -> None:
        report = await self.run_pass(dry_run=False)
        if report and (report.copies or report.retirements):
            log.info("re-placement pass: %s", report.as_dict())
