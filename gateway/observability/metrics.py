"""Prometheus metrics of a serving process: ``install`` instruments the S3 app,
``add_routes`` serves ``GET /metrics`` for it on the admin listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Protocol

import asyncpg
from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.links.routing import LinkedBackend
from gateway.observability import access
from gateway.observability.meters import Meters
from gateway.observability.state import StoredState
from gateway.workers.control import WorkerControl

log = logging.getLogger(__name__)

# The Prometheus text exposition format, version 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# With several processes, how often each publishes its live state for scrapes that
# another process answers.
PUBLISH_INTERVAL_S = 5.0
# A scrape that cannot read PostgreSQL in time still answers, with the process metrics.
STORED_STATE_TIMEOUT_S = 5.0


class Observed(Protocol):
    """What a scrape reads from its serving process (``gateway.app.Runtime`` is one)."""

    @property
    def pool(self) -> asyncpg.Pool: ...

    @property
    def control(self) -> WorkerControl: ...

    @property
    def linked(self) -> dict[str, LinkedBackend]: ...


METERS = web.AppKey("meters", Meters)
OBSERVED: web.AppKey[Observed] = web.AppKey("observed")


def install(app: web.Application, access_log: bool) -> Meters:
    """Instrument the S3 app ``app``; its startup sets ``app[OBSERVED]``."""
    meters = app[METERS] = Meters()
    access.install(app, meters.s3, access_log)
    app.cleanup_ctx.append(_publishing)
    return meters


def add_routes(admin_app: web.Application, s3_app: web.Application) -> None:
    """``GET /metrics`` on the admin listener, for the S3 app of the same process: the
    Prometheus text format, without a token."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=await scrape(s3_app), headers={"Content-Type": CONTENT_TYPE})

    admin_app.router.add_get("/metrics", metrics)


async def scrape(s3_app: web.Application) -> bytes:
    meters = s3_app[METERS]
    _publish(s3_app)
    stored = await _stored_state(s3_app.get(OBSERVED))
    return generate_latest(_Scrape((meters.collector(), stored)))


def _publish(app: web.Application) -> None:
    observed = app.get(OBSERVED)
    if observed is not None:
        statuses = observed.control.statuses()
        app[METERS].live.publish(observed.linked, statuses, time.time())


async def _publishing(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_publish_forever(app)) if app[METERS].shared else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _publish_forever(app: web.Application) -> None:
    while True:
        _publish(app)
        await asyncio.sleep(PUBLISH_INTERVAL_S)


@dataclass(frozen=True, slots=True)
class _Scrape:
    parts: tuple[Collector, ...]

    def collect(self) -> Iterator[Metric]:
        for part in self.parts:
            yield from part.collect()


@dataclass(frozen=True, slots=True)
class _Unread:
    """PostgreSQL could not be read (or the process has not started): only the flag."""

    def collect(self) -> Iterator[Metric]:
        yield _metadata_up(0)


@dataclass(frozen=True, slots=True)
class _Read:
    state: StoredState

    def collect(self) -> Iterator[Metric]:
        yield _metadata_up(1)
        yield from self.state.collect()


def _metadata_up(value: int) -> GaugeMetricFamily:
    return GaugeMetricFamily(
        "skybridge_metadata_up", "1 if this scrape could read PostgreSQL, else 0.", value=value
    )


async def _stored_state(observed: Observed | None) -> Collector:
    if observed is None:
        return _Unread()
    try:
        state = await asyncio.wait_for(
            StoredState.read(observed.pool, observed.linked), STORED_STATE_TIMEOUT_S
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        log.warning("metrics: cannot read PostgreSQL: %s", exc)
        return _Unread()
    return _Read(state)
