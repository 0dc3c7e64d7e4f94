"""Gauges of state, read when scraped rather than counted as things happen.

``LiveState``: what a serving process holds in memory (its links' circuits and latency,
its worker loops). ``StoredState``: what PostgreSQL holds (the replication backlog, usage
and quotas), the same whichever process answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from gateway.links.health import BreakerState
from gateway.links.routing import LinkedBackend
from gateway.workers.control import WorkerStatus
from metadata.ledger import LedgerRepo
from metadata.lifecycle import LifecycleRepo, UnderWay
from metadata.replication import QueueStats, ReplicationQueueRepo
from metadata.usage import Quota, Usage, UsageRepo
from metadata.warmup import WarmupJob, WarmupRepo

SCOPE_LABELS = ["scope", "scope_id"]


class LiveState:
    """Links and workers of this process, published into its gauges and counters on each
    scrape. Several processes each publish their own: the gauges keep the worst of the
    live ones, the worker counters add up."""

    def __init__(self, registry: CollectorRegistry, started_at: float) -> None:
        link = ["link", "backend"]
        self._circuit = Gauge(
            "skybridge_link_circuit_state",
            "0 while the link's circuit is closed, 1 while it is open or half-open.",
            link, registry=registry, multiprocess_mode="livemax",
        )  # fmt: skip
        self._latency = Gauge(
            "skybridge_link_latency_ewma_seconds",
            "Moving average of the first-byte latency of reads over the link.",
            link, registry=registry, multiprocess_mode="livemax",
        )  # fmt: skip
        self._share = Gauge(
            "skybridge_link_share",
            "This node's part (0-1) of a capped link's bandwidth and concurrency caps, which"
            " hold for all nodes of its site together.",
            link, registry=registry, multiprocess_mode="livesum",
        )  # fmt: skip
        self._reachable = Gauge(
            "skybridge_backend_reachable",
            "1 while at least one link to the backend is healthy, else 0.",
            ["backend"], registry=registry, multiprocess_mode="livemin",
        )  # fmt: skip
        self._passes = Counter(
            "skybridge_worker_passes", "Passes a worker loop ran.", ["worker"], registry=registry
        )
        self._failures = Counter(
            "skybridge_worker_failures", "Passes that failed.", ["worker"], registry=registry
        )
        self._paused = Gauge(
            "skybridge_worker_paused", "1 while the worker is paused.",
            ["worker"], registry=registry, multiprocess_mode="livemax",
        )  # fmt: skip
        self._since_success = Gauge(
            "skybridge_worker_seconds_since_success",
            "Seconds since the worker's last successful pass (since the process started if"
            " it has had none).",
            ["worker"], registry=registry, multiprocess_mode="livemax",
        )  # fmt: skip
        self._started_at = started_at
        # What the worker counters already hold, per worker: (passes, failures).
        self._published: dict[str, tuple[int, int]] = {}

    def publish(
        self, linked: Mapping[str, LinkedBackend], workers: Iterable[WorkerStatus], now: float
    ) -> None:
        for backend in linked.values():
            self._reachable.labels(backend.name).set(1 if backend.healthy else 0)
            for link in backend.links:
                labels = (link.link_name, backend.name)
                breaker = link.breaker
                closed = breaker.state is BreakerState.CLOSED
                self._circuit.labels(*labels).set(0 if closed else 1)
                if breaker.latency_ewma_s is not None:
                    self._latency.labels(*labels).set(breaker.latency_ewma_s)
                if link.capped:
                    self._share.labels(*labels).set(link.share)
        for status in workers:
            self._publish_worker(status, now)

    def _publish_worker(self, status: WorkerStatus, now: float) -> None:
        passes, failures = self._published.get(status.name, (0, 0))
        self._passes.labels(status.name).inc(status.passes - passes)
        self._failures.labels(status.name).inc(status.failures - failures)
        self._published[status.name] = (status.passes, status.failures)
        self._paused.labels(status.name).set(1 if status.paused else 0)
        succeeded_at = status.last_success_at or self._started_at
        self._since_success.labels(status.name).set(max(now - succeeded_at, 0.0))


def _gauge(name: str, documentation: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=labels)


@dataclass(frozen=True, slots=True)
class StoredState:
    """One scrape's reading of PostgreSQL (a prometheus_client collector)."""

    backends: list[str]
    backlog: list[QueueStats] = field(default_factory=list)
    usage: list[Usage] = field(default_factory=list)
    quotas: list[Quota] = field(default_factory=list)
    # (tier, replicas, bytes) of the ok placements of complete versions.
    tiers: list[tuple[str, int, int]] = field(default_factory=list)
    transitions: list[UnderWay] = field(default_factory=list)
    warmups: list[WarmupJob] = field(default_factory=list)

    @classmethod
    async def read(cls, pool: asyncpg.Pool, backends: Iterable[str]) -> StoredState:
        usage = UsageRepo(pool)
        return cls(
            sorted(backends),
            await ReplicationQueueRepo(pool).stats(),
            await usage.usage(),
            await usage.quotas(),
            await LedgerRepo(pool).bytes_per_tier(),
            await LifecycleRepo(pool).under_way(),
            await WarmupRepo(pool).active(),
        )

    def collect(self) -> Iterator[Metric]:
        yield from self._replication()
        yield from self._usage()
        yield from self._quotas()
        yield from self._tiers()
        yield from self._warmups()

    def _tiers(self) -> Iterator[Metric]:
        replicas = _gauge(
            "skybridge_tier_replicas", "Stored replicas (placements) on the tier's backends.",
            ["tier"],
        )  # fmt: skip
        stored = _gauge("skybridge_tier_bytes", "Bytes stored on the tier's backends.", ["tier"])
        for tier, count, size in self.tiers:
            replicas.add_metric([tier], count)
            stored.add_metric([tier], size)
        moving = _gauge(
            "skybridge_transitions_objects",
            "Versions whose lifecycle transition to the storage class is under way.",
            ["storage_class"],
        )
        moving_bytes = _gauge(
            "skybridge_transitions_bytes",
            "Bytes of the versions whose transition to the storage class is under way.",
            ["storage_class"],
        )
        for row in self.transitions:
            moving.add_metric([row.storage_class], row.objects)
            moving_bytes.add_metric([row.storage_class], row.bytes)
        yield from (replicas, stored, moving, moving_bytes)

    def _warmups(self) -> Iterator[Metric]:
        labels = ["job", "bucket", "site", "backend"]
        families = {
            "total_objects": _gauge(
                "skybridge_warmup_objects", "Objects an active warm-up job was given.", labels
            ),
            "done_objects": _gauge(
                "skybridge_warmup_done_objects", "Objects of the job warm at its site.", labels
            ),
            "total_bytes": _gauge(
                "skybridge_warmup_bytes", "Bytes an active warm-up job was given.", labels
            ),
            "done_bytes": _gauge(
                "skybridge_warmup_done_bytes", "Bytes of the job warm at its site.", labels
            ),
        }
        for job in self.warmups:
            values = [str(job.id), job.bucket, job.site, job.target_backend]
            for attribute, family in families.items():
                family.add_metric(values, getattr(job, attribute))
        yield from families.values()

    def _replication(self) -> Iterator[Metric]:
        families = {
            "depth": _gauge("skybridge_replication_queue_depth", "Replicas queued.", ["backend"]),
            "oldest_age_s": _gauge(
                "skybridge_replication_oldest_task_age_seconds",
                "Age of the oldest queued replica (0 when none is queued).",
                ["backend"],
            ),
            "bytes": _gauge(
                "skybridge_replication_lag_bytes", "Bytes of the queued replicas.", ["backend"]
            ),
            "failing": _gauge(
                "skybridge_replication_failing_tasks",
                "Queued replicas already attempted at least once.",
                ["backend"],
            ),
        }
        # Every backend has a value, zero when nothing waits for it.
        by_backend = {b: QueueStats(b, 0, 0, 0, 0.0) for b in self.backends}
        by_backend.update({row.target_backend: row for row in self.backlog})
        for backend, row in sorted(by_backend.items()):
            for attribute, family in families.items():
                family.add_metric([backend], float(getattr(row, attribute)))
        yield from families.values()

    def _usage(self) -> Iterator[Metric]:
        stored = _gauge("skybridge_usage_bytes", "Bytes stored.", SCOPE_LABELS)
        objects = _gauge("skybridge_usage_objects", "Objects stored.", SCOPE_LABELS)
        reserved = _gauge(
            "skybridge_usage_reserved_bytes", "Bytes reserved by writes in flight.", SCOPE_LABELS
        )
        for row in self.usage:
            labels = [row.scope, row.scope_id]
            stored.add_metric(labels, row.bytes)
            objects.add_metric(labels, row.objects)
            reserved.add_metric(labels, row.reserved_bytes)
        yield from (stored, objects, reserved)

    def _quotas(self) -> Iterator[Metric]:
        limits = {
            "bytes": _gauge("skybridge_quota_max_bytes", "Bytes allowed.", SCOPE_LABELS),
            "objects": _gauge("skybridge_quota_max_objects", "Objects allowed.", SCOPE_LABELS),
        }
        headroom = {
            "bytes": _gauge(
                "skybridge_quota_headroom_bytes",
                "Bytes still allowed beside the stored and reserved ones (negative: over).",
                SCOPE_LABELS,
            ),
            "objects": _gauge(
                "skybridge_quota_headroom_objects",
                "Objects still allowed beside the stored and reserved ones (negative: over).",
                SCOPE_LABELS,
            ),
        }
        hard = _gauge("skybridge_quota_hard", "1 if the quota refuses writes.", SCOPE_LABELS)
        used = {(u.scope, u.scope_id): u for u in self.usage}
        for quota in self.quotas:
            labels = [quota.scope, quota.scope_id]
            usage = used.get((quota.scope, quota.scope_id)) or Usage(
                quota.scope, quota.scope_id, 0, 0, 0, 0
            )
            hard.add_metric(labels, 1 if quota.hard else 0)
            for what, limit, taken in (
                ("bytes", quota.max_bytes, usage.bytes + usage.reserved_bytes),
                ("objects", quota.max_objects, usage.objects + usage.reserved_objects),
            ):
                if limit is not None:
                    limits[what].add_metric(labels, limit)
                    headroom[what].add_metric(labels, limit - taken)
        yield from (*limits.values(), *headroom.values(), hard)
