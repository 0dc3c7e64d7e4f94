"""Every background worker runs through one loop here, so that operators can see each
worker's health and pause or resume it on every node at once.

Pause flags live in PostgreSQL (``worker_controls``); each node rereads them at the start
of every pass, so a pause takes effect on all nodes before their next pass.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from metadata import db
from metadata.admin import WorkerControlRepo

log = logging.getLogger(__name__)

Pass = Callable[[], Awaitable[object]]


@dataclass(slots=True)
class WorkerStatus:
    name: str
    interval_s: float
    paused: bool = False
    running: bool = False
    passes: int = 0
    failures: int = 0
    last_pass_at: float | None = None
    last_success_at: float | None = None
    last_error: str | None = None


class WorkerControl:
    def __init__(self, repo: WorkerControlRepo) -> None:
        self._repo = repo
        self._status: dict[str, WorkerStatus] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self._status)

    def statuses(self) -> list[WorkerStatus]:
        return [self._status[name] for name in self.names]

    def register(self, name: str, interval_s: float) -> WorkerStatus:
        status = self._status.setdefault(name, WorkerStatus(name, interval_s))
        return status

    async def set_paused(self, name: str, paused: bool) -> None:
        await self._repo.set_paused(name, paused)
        if name in self._status:
            self._status[name].paused = paused

    async def _is_paused(self, status: WorkerStatus) -> bool:
        try:
            status.paused = status.name in await self._repo.paused()
        except Exception:
            # Without the database no pass can do anything useful either; keep the last flag.
            log.warning("cannot read worker pause flags; keeping the last known ones")
        return status.paused

    async def run(
        self, name: str, interval_s: float, one_pass: Pass, *, sleep_first: bool = False
    ) -> None:
        """Run ``one_pass`` every ``interval_s`` seconds until cancelled, unless paused."""
        status = self.register(name, interval_s)
        if sleep_first:
            await asyncio.sleep(interval_s)
        while True:
            if not await self._is_paused(status):
                await self._one(status, one_pass)
            await asyncio.sleep(interval_s)

    async def _one(self, status: WorkerStatus, one_pass: Pass) -> None:
        status.running = True
        status.last_pass_at = time.time()
        try:
            await one_pass()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            status.failures += 1
            status.last_error = f"{type(exc).__name__}: {exc}"
            if db.is_unreachable(exc):
                # Expected while PostgreSQL restarts or fails over: the next pass retries.
                log.warning("%s pass: metadata unreachable (%r); next in %.0f s",
                            status.name, exc, status.interval_s)  # fmt: skip
            else:
                log.exception("%s pass failed; next in %.0f s", status.name, status.interval_s)
        else:
            status.last_success_at = time.time()
        finally:
            status.passes += 1
            status.running = False
