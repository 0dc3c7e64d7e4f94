"""Passive link health: a circuit breaker and an EWMA of first-byte latency."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(slots=True)
class CircuitBreaker:
    """Opens after ``failure_threshold`` consecutive failures; after ``cooldown_s`` it lets
    one probe through (half-open) and closes again if the probe succeeds."""

    failure_threshold: int = 3
    cooldown_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    latency_ewma_s: float | None = None
    # Weight of the newest sample in the latency average.
    alpha: float = field(default=0.2)

    def allow(self) -> bool:
        if self.state is BreakerState.CLOSED:
            return True
        if self._cooled_down():
            # One probe per cooldown: a probe that never reports back (cancelled) must not
            # wedge the breaker half-open for good.
            self.state = BreakerState.HALF_OPEN
            self.opened_at = self.clock()
            return True
        return False

    def _cooled_down(self) -> bool:
        return self.clock() - self.opened_at >= self.cooldown_s

    def record_success(self, latency_s: float | None = None) -> None:
        self.failures = 0
        self.state = BreakerState.CLOSED
        if latency_s is not None:
            previous = self.latency_ewma_s
            self.latency_ewma_s = (
                latency_s
                if previous is None
                else self.alpha * latency_s + (1 - self.alpha) * previous
            )

    def record_failure(self) -> None:
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.failure_threshold:
            self.state = BreakerState.OPEN
            self.opened_at = self.clock()

    @property
    def healthy(self) -> bool:
        # Past the cooldown the link is worth trying again: callers that skip unhealthy
        # links would otherwise never send the probe that closes the breaker.
        return self.state is BreakerState.CLOSED or self._cooled_down()


class LatencyWindow:
    """The latest first-byte latencies of a link, for its quantiles (hedged reads)."""

    SIZE = 128
    # Fewer samples than this say too little about the tail to act on.
    MIN_SAMPLES = 20

    def __init__(self) -> None:
        self._samples: deque[float] = deque(maxlen=self.SIZE)

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)

    def quantile(self, q: float) -> float | None:
        if len(self._samples) < self.MIN_SAMPLES:
            return None
        ordered = sorted(self._samples)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]
