"""The node's view of the topology: backends, live link health and placement policies."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from gateway.errors import ServiceUnavailable
from gateway.links.routing import LinkedBackend
from gateway.placement import engine
from gateway.placement.model import (
    BackendInfo,
    BackendState,
    LinkInfo,
    ObjectFacts,
    PlacementError,
    PlacementPolicy,
    ReadPreference,
    Tier,
    Topology,
    WritePlan,
)
from gateway.placement.policy_io import policy_from_dict
from gateway.placement.tiers import with_tier_rules
from metadata.models import BucketRow, PlacementRow
from metadata.topology import BackendRow, LinkRow, TopologyRepo

log = logging.getLogger(__name__)

# Every node re-reads the topology this often (the "topology" worker).
REFRESH_S = 5.0


def _backend_info(row: BackendRow, used: Mapping[str, int]) -> BackendInfo:
    return BackendInfo(
        name=row.name,
        site=row.site,
        tier=Tier(row.tier),
        state=BackendState(row.state),
        capacity_bytes=row.capacity_bytes,
        used_bytes=used.get(row.name, 0),
    )


class LinkWiring(Protocol):
    """Opens, reconfigures and drops this node's drivers and links (topology_setup)."""

    async def apply(self, backends: Sequence[BackendRow], links: Sequence[LinkRow]) -> None: ...


def _link_info(row: LinkRow) -> LinkInfo:
    return LinkInfo(
        row.name, row.site, row.backend, row.bandwidth_bytes_per_s, row.max_concurrency,
        row.rtt_ms, row.cost_per_gib, row.endpoint,
    )  # fmt: skip


class TopologyService:
    def __init__(
        self,
        repo: TopologyRepo,
        linked: Mapping[str, LinkedBackend],
        *,
        local_site: str,
        default_policy: str,
        wiring: LinkWiring | None = None,
    ) -> None:
        self._repo = repo
        self._linked = linked
        self._wiring = wiring
        # Link attributes as stored; health is read live from the breakers.
        self._link_costs: list[LinkInfo] = []
        self._local_site = local_site
        self._default_policy = default_policy
        self._backends: dict[str, BackendInfo] = {}
        self._policies: dict[str, PlacementPolicy] = {}

    async def refresh(self) -> None:
        rows = await self._repo.backends()
        links = await self._repo.links()
        used = await self._repo.used_bytes()
        if self._wiring is not None:
            await self._wiring.apply(rows, links)
        self._backends = {r.name: _backend_info(r, used) for r in rows}
        self._link_costs = [_link_info(row) for row in links]
        policies = {}
        for row in await self._repo.current_policies():
            try:
                policies[row.name] = policy_from_dict(row.document)
            except ValueError:
                log.exception("stored placement policy %s v%s is invalid", row.name, row.version)
        self._policies = policies

    def with_policy(self, policy: PlacementPolicy) -> TopologyService:
        """This view with ``policy`` in force: what a dry run of a new version plans with."""
        candidate = copy.copy(self)
        candidate._policies = {**self._policies, policy.name: policy}
        return candidate

    def online(self, placements: Sequence[PlacementRow]) -> list[PlacementRow]:
        """The replicas off the archive tier: those a read may use without a restore."""
        return [
            p
            for p in placements
            if (info := self._backends.get(p.backend)) is None or info.tier is not Tier.ARCHIVE
        ]

    def snapshot(self) -> Topology:
        return Topology(self._local_site, dict(self._backends), tuple(self._live_links()))

    def _live_links(self) -> list[LinkInfo]:
        live = []
        for info in self._link_costs:
            linked = self._linked.get(info.backend)
            link = (
                next((x for x in linked.links if x.link_name == info.name), None)
                if linked
                else None
            )
            if link is None:
                live.append(info)
                continue
            ewma = link.breaker.latency_ewma_s
            live.append(
                LinkInfo(
                    info.name, info.site, info.backend, info.bandwidth_bytes_per_s,
                    info.max_concurrency, info.rtt_ms, info.cost_per_gib, info.endpoint,
                    healthy=link.breaker.healthy,
                    latency_ewma_ms=None if ewma is None else ewma * 1000,
                )
            )  # fmt: skip
        for name, linked in self._linked.items():
            # Backends reached without a configured link use an implicit one.
            if not any(i.backend == name for i in self._link_costs) and not linked.healthy:
                live.append(LinkInfo(f"implicit:{name}", self._local_site, name, healthy=False))
        return live

    def policy_for(self, bucket: BucketRow, key: str) -> PlacementPolicy:
        return self.policy_named(bucket.policy_for_key(key))

    def policy_named(self, name: str | None) -> PlacementPolicy:
        """The policy in force, with the storage classes' tiers (gateway/placement/tiers.py)."""
        name = name or self._default_policy
        policy = self._policies.get(name) or self._policies.get(self._default_policy)
        if policy is None:
            raise ServiceUnavailable(f"Placement policy {name} is not loaded.")
        return with_tier_rules(policy, self._backends)

    def policy_for_location(self, location: str | None) -> str | None:
        """A LocationConstraint naming a policy selects it; any other value is a region."""
        if location is None or location in self._policies:
            return location
        return None

    def requires_encryption(self, bucket: BucketRow, facts: ObjectFacts) -> bool:
        """Whether the rule placing this object names a replica that must be ciphertext."""
        try:
            rule = engine.matching_rule(self.policy_for(bucket, facts.key), facts)
        except PlacementError:
            return False
        return any(spec.encrypt for spec in rule.replicas)

    def plan(self, bucket: BucketRow, facts: ObjectFacts) -> WritePlan:
        try:
            return engine.choose(self.policy_for(bucket, facts.key), facts, self.snapshot())
        except PlacementError as exc:
            raise ServiceUnavailable(f"No placement is possible now: {exc}") from None

    def order(
        self, bucket: BucketRow, key: str, placements: Sequence[PlacementRow]
    ) -> list[PlacementRow]:
        """Replicas in the order reads should try them."""
        preference = ReadPreference.LOCAL
        policy = self._policies.get(bucket.policy_for_key(key) or self._default_policy)
        if policy is not None and policy.rules:
            preference = policy.rules[0].read_preference
        names = engine.order_replicas([p.backend for p in placements], self.snapshot(), preference)
        rank = {name: i for i, name in enumerate(names)}
        return sorted((p for p in placements if p.backend in rank), key=lambda p: rank[p.backend])
