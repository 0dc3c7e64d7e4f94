"""Values of the placement domain: the topology, policies, and the plans derived from them.

Pure data: no aiohttp, no asyncpg. Everything is frozen so a topology snapshot can be shared
by concurrent requests without copying.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Tier(StrEnum):
    HOT = "hot"
    WARM = "warm"
    COLD = "cold"
    ARCHIVE = "archive"


class BackendState(StrEnum):
    ACTIVE = "active"
    READ_ONLY = "read-only"
    DRAINING = "draining"
    DISABLED = "disabled"


class WriteMode(StrEnum):
    # Every synchronous target is written before the PUT is acknowledged.
    ALL = "all"
    # Acknowledge after `quorum` synchronous targets; the rest by hinted hand-off.
    QUORUM = "quorum"
    # The first target is synchronous, every other target asynchronous.
    PRIMARY_ASYNC = "primary+async"


class ReadPreference(StrEnum):
    LOCAL = "local"
    CHEAPEST = "cheapest"
    LATENCY = "latency"


@dataclass(frozen=True, slots=True)
class BackendInfo:
    name: str
    site: str
    tier: Tier = Tier.HOT
    state: BackendState = BackendState.ACTIVE
    capacity_bytes: int | None = None
    used_bytes: int = 0

    @property
    def writable(self) -> bool:
        full = self.capacity_bytes is not None and self.used_bytes >= self.capacity_bytes
        return self.state is BackendState.ACTIVE and not full

    @property
    def readable(self) -> bool:
        return self.state is not BackendState.DISABLED


@dataclass(frozen=True, slots=True)
class LinkInfo:
    """A named path from a site to a backend, with its live health."""

    name: str
    site: str
    backend: str
    bandwidth_bytes_per_s: int | None = None
    max_concurrency: int | None = None
    rtt_ms: float = 0.0
    cost_per_gib: float = 0.0
    endpoint: str | None = None
    healthy: bool = True
    latency_ewma_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Topology:
    """What one gateway node knows: its site, the backends, and the links from its site."""

    local_site: str
    backends: dict[str, BackendInfo]
    links: tuple[LinkInfo, ...] = ()

    def links_to(self, backend: str) -> list[LinkInfo]:
        """Links from the local site to ``backend``, in configured order (dedicated first)."""
        return [
            link for link in self.links if link.backend == backend and link.site == self.local_site
        ]


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One replica: a named backend, or any writable backend at ``site`` of ``tier``."""

    backend: str | None = None
    site: str | None = None
    tier: Tier | None = None
    # Written by the replication worker after the PUT is acknowledged.
    asynchronous: bool = False
    # This replica (a public cloud, say) must hold only ciphertext. Every replica of a
    # version stores the same bytes, so the whole version is then encrypted (SSE-S3 unless
    # the client or the bucket asked for another mode).
    encrypt: bool = False


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """Which objects a rule applies to; every given criterion must hold."""

    buckets: tuple[str, ...] = ()
    key_prefix: str = ""
    min_size_bytes: int | None = None
    max_size_bytes: int | None = None
    storage_classes: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlacementRule:
    name: str
    match: RuleMatch
    replicas: tuple[TargetSpec, ...]
    write_mode: WriteMode = WriteMode.ALL
    # For WriteMode.QUORUM: synchronous targets that must succeed before acknowledging.
    quorum: int | None = None
    read_preference: ReadPreference = ReadPreference.LOCAL
    # Every replica on a different site.
    distinct_sites: bool = False


@dataclass(frozen=True, slots=True)
class PlacementPolicy:
    """Ordered rules; the first that matches an object decides its placement."""

    name: str
    version: int
    rules: tuple[PlacementRule, ...]


@dataclass(frozen=True, slots=True)
class ObjectFacts:
    bucket: str
    key: str
    size_bytes: int | None
    storage_class: str = "STANDARD"
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WritePlan:
    """Backends to write now, how many must succeed, and backends to fill later."""

    rule: str
    sync_targets: tuple[str, ...]
    quorum: int
    async_targets: tuple[str, ...]
    read_preference: ReadPreference


class PlacementError(Exception):
    """No set of backends satisfies the rule right now (the PUT answers 503)."""


class PolicyError(ValueError):
    """A policy is invalid against the topology; it is refused and nothing changes."""
