"""Lifecycle transitions: moving a version to the backends of its new storage class.

The version keeps its old storage class and placements while the copies are made: the
transition queues them on the replication queue (each copy verified against the version's
checksums, within the links' bandwidth and egress budgets, retried with backoff) and is
checked again on every lifecycle pass. Once every backend the new class asks for holds a
verified copy, one transaction switches the storage class and retires the old placements
(their bytes deleted after the gc delay). A copy that cannot be made (the cold backend is
unreachable) only delays the switch: nothing is deleted before it.
"""

from __future__ import annotations

import logging

from gateway.placement import engine
from gateway.placement.model import ObjectFacts, PlacementError
from gateway.services.topology import TopologyService
from metadata.lifecycle import LifecycleRepo, TransitionRow
from metadata.models import VersionRow
from metadata.objects import ObjectRepo

log = logging.getLogger(__name__)

# Transitions checked per pass; the rest wait for the next one.
CHECKS_PER_PASS = 1000


class Transitions:
    def __init__(
        self,
        repo: LifecycleRepo,
        objects: ObjectRepo,
        topology: TopologyService,
        *,
        deletion_delay_s: float,
    ) -> None:
        self._repo = repo
        self._objects = objects
        self._topology = topology
        self._delay_s = deletion_delay_s

    async def start(self, bucket_id: int, version_pk: int, storage_class: str) -> bool:
        """Begin moving a version; True when it is switched at once (its copies exist)."""
        row = await self._repo.begin_transition(bucket_id, version_pk, storage_class)
        return row is not None and await self.check(row)

    async def check_all(self) -> tuple[int, int]:
        """Check every transition under way: (finished, still waiting)."""
        finished = waiting = 0
        for row in await self._repo.transitions(CHECKS_PER_PASS):
            if await self.check(row):
                finished += 1
            else:
                waiting += 1
        return finished, waiting

    async def check(self, row: TransitionRow) -> bool:
        """Queue what is missing, or switch when nothing is; True once switched."""
        version = await self._objects.get_by_pk(row.bucket_id, row.version_pk)
        if version is None or version.state != "complete" or version.is_delete_marker:
            await self._repo.drop_transition(row.bucket_id, row.version_pk)
            return False
        try:
            targets = self._targets(row, version)
        except PlacementError as exc:
            await self._repo.wait_for(
                row.bucket_id, row.version_pk, [], f"no placement for it: {exc}"
            )
            return False
        held = {p.backend for p in version.placements}
        missing = [b for b in targets if b not in held]
        if missing:
            await self._repo.wait_for(
                row.bucket_id, row.version_pk, missing, f"copies to {', '.join(missing)}"
            )
            return False
        switched = await self._repo.switch(
            row.bucket_id, row.version_pk, row.storage_class, targets, self._delay_s
        )
        if switched:
            log.info("%s/%s moved to %s on %s", row.bucket, version.key, row.storage_class, targets)
        return switched

    def _targets(self, row: TransitionRow, version: VersionRow) -> list[str]:
        """The backends the version belongs on in its new class. Reachability is not asked:
        a copy to a backend behind a cut link waits in the replication queue."""
        policy = self._topology.policy_named(row.placement_policy)
        facts = ObjectFacts(
            row.bucket, version.key, version.size_bytes, row.storage_class, version.tags
        )
        rule = engine.matching_rule(policy, facts)
        resolved = engine.resolve_targets(rule, self._topology.snapshot())
        if resolved.unresolved:
            raise PlacementError(
                f"rule {rule.name!r}: {resolved.unresolved} replicas have no writable backend"
            )
        return list(resolved.sync + resolved.asynchronous)
