"""The Prometheus instruments a serving process updates as it works: S3 requests and the
traffic of every link.

On the request path nothing is looked up by label: each operation's and each link's
children are made once and kept, so a request costs a few increments and two histogram
observations.

With ``skybridge serve --workers N`` the processes share one directory of memory-mapped
files (prometheus_client's multiprocess mode), set up by :func:`share_between_processes`
before the fork; a scrape answered by any process then sums them all.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    values,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from gateway.links.metering import LinkMeter
from gateway.observability.state import LiveState

# prometheus_client reads this variable wherever it opens or merges the shared files.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# From a HEAD answered from the cache to a large object over a slow link.
LATENCY_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0
)  # fmt: skip
UNKNOWN_OPERATION = "Unknown"


def share_between_processes(directory: Path) -> None:
    """Make every metric created from now on (in this process and in the processes it
    forks) live in ``directory``, emptied first: what a previous run left would count."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS_ENV] = str(directory)
    # prometheus_client picks its value class when it is first imported, from the same
    # variable; this process imported it before knowing the worker count.
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def forget_process(pid: int) -> None:
    """Drop the live gauges of a process that exited; its counters keep counting."""
    directory = os.environ.get(MULTIPROCESS_ENV)
    if directory:
        mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def _latency(
    name: str, documentation: str, labels: list[str], registry: CollectorRegistry
) -> Histogram:
    return Histogram(name, documentation, labels, buckets=LATENCY_BUCKETS_S, registry=registry)


@dataclass(slots=True)
class _Operation:
    """The children of one S3 operation."""

    name: str
    requests: Counter
    duration: Histogram
    first_byte: Histogram
    received: Counter
    sent: Counter
    by_status: dict[int, Counter] = field(default_factory=dict)

    def status(self, status: int) -> Counter:
        child = self.by_status.get(status)
        if child is None:
            child = self.by_status[status] = self.requests.labels(self.name, str(status))
        return child


class S3Meters:
    """S3 requests by operation: count by status, latency, time to first byte, body bytes."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Counter(
            "skybridge_s3_requests", "S3 requests answered, by operation and HTTP status.",
            ["operation", "status"], registry=registry,
        )  # fmt: skip
        self._duration = _latency(
            "skybridge_s3_request_duration_seconds",
            "From the request's headers to the last byte of the response handed to the socket.",
            ["operation"], registry,
        )  # fmt: skip
        self._first_byte = _latency(
            "skybridge_s3_time_to_first_byte_seconds",
            "From the request's headers to the response's status line and headers.",
            ["operation"], registry,
        )  # fmt: skip
        self._received = Counter(
            "skybridge_s3_received_bytes",
            "Request body bytes read from clients, as on the wire: aws-chunked framing and"
            " chunk signatures included, HTTP chunked transfer coding excluded.",
            ["operation"], registry=registry,
        )  # fmt: skip
        self._sent = Counter(
            "skybridge_s3_sent_bytes",
            "Response body bytes written to clients (headers excluded); a body cut off"
            " midway counts what was written.",
            ["operation"], registry=registry,
        )  # fmt: skip
        self._operations: dict[str, _Operation] = {}

    def operation(self, name: str) -> _Operation:
        found = self._operations.get(name)
        if found is None:
            found = self._operations[name] = _Operation(
                name,
                self._requests,
                self._duration.labels(name),
                self._first_byte.labels(name),
                self._received.labels(name),
                self._sent.labels(name),
            )
        return found

    def record(
        self,
        operation: str,
        status: int,
        duration_s: float,
        first_byte_s: float | None,
        bytes_in: int,
        bytes_out: int,
    ) -> None:
        children = self.operation(operation)
        children.status(status).inc()
        children.duration.observe(duration_s)
        if first_byte_s is not None:
            children.first_byte.observe(first_byte_s)
        if bytes_in:
            children.received.inc(bytes_in)
        if bytes_out:
            children.sent.inc(bytes_out)


class _LinkMeter:
    """One link's traffic (implements gateway.links.metering.LinkMeter)."""

    def __init__(self, meters: LinkMeters, link: str, backend: str) -> None:
        self._meters = meters
        self._labels = (link, backend)
        self._sent = meters.bytes.labels(link, backend, "out")
        self._received = meters.bytes.labels(link, backend, "in")
        self._operations: dict[str, tuple[Counter, Counter, Histogram]] = {}

    def _children(self, operation: str) -> tuple[Counter, Counter, Histogram]:
        found = self._operations.get(operation)
        if found is None:
            labels = (*self._labels, operation)
            found = self._operations[operation] = (
                self._meters.requests.labels(*labels),
                self._meters.errors.labels(*labels),
                self._meters.duration.labels(*labels),
            )
        return found

    def exchange(self, operation: str, seconds: float, failed: bool) -> None:
        requests, errors, duration = self._children(operation)
        requests.inc()
        duration.observe(seconds)
        if failed:
            errors.inc()

    def sent(self, size: int) -> None:
        self._sent.inc(size)

    def received(self, size: int) -> None:
        self._received.inc(size)


class LinkMeters:
    """Calls, failures, latency and bytes of every link, by link and backend."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["link", "backend", "operation"]
        self.requests = Counter(
            "skybridge_link_requests",
            "Calls to a backend over a link, by driver operation (put, get, size, delete, probe).",
            labels, registry=registry,
        )  # fmt: skip
        self.errors = Counter(
            "skybridge_link_errors",
            "Calls over a link that failed, as its circuit breaker counts failures"
            " (an absent key is an answer, not a failure).",
            labels, registry=registry,
        )  # fmt: skip
        self.duration = _latency(
            "skybridge_link_request_duration_seconds",
            "Calls over a link, body transfer included, wait for a concurrency slot excluded.",
            labels, registry,
        )  # fmt: skip
        self.bytes = Counter(
            "skybridge_link_bytes",
            "Stored bytes over a link: direction=out is egress to the backend, in is read back.",
            ["link", "backend", "direction"], registry=registry,
        )  # fmt: skip

    def meter(self, link: str, backend: str) -> LinkMeter:
        return _LinkMeter(self, link, backend)


class Meters:
    """Every instrument of one serving process, in a registry of its own."""

    def __init__(self) -> None:
        # A `_created` series beside every counter and histogram doubles what is stored
        # for a value nobody graphs (and the multiprocess mode has none).
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=False)
        self.s3 = S3Meters(self.registry)
        self.links = LinkMeters(self.registry)
        self.live = LiveState(self.registry, time.time())
        self.shared_directory = os.environ.get(MULTIPROCESS_ENV)

    @property
    def shared(self) -> bool:
        return self.shared_directory is not None

    def collector(self) -> Collector:
        """What a scrape reads: this registry, or with several processes all of theirs."""
        if self.shared_directory is None:
            return self.registry
        return MultiProcessCollector(None, self.shared_directory)  # type: ignore[no-untyped-call]
