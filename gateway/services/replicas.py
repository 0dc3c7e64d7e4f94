"""Writing one body to the synchronous targets of a write plan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from gateway.backends.base import BackendError
from gateway.backends.registry import BackendRegistry
from gateway.errors import ServiceUnavailable
from gateway.services.fanout import QuorumLost, Writer, fan_out

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    stored: tuple[str, ...]
    # Synchronous targets that failed: the replication queue fills them in later.
    failed: tuple[str, ...]


class ReplicaWriter:
    def __init__(self, backends: BackendRegistry, *, stall_timeout_s: float) -> None:
        self._backends = backends
        self._stall_timeout_s = stall_timeout_s

    def _writer(self, target: str, key: str, size_hint: int | None) -> Writer:
        backend = self._backends.get(target)

        async def write(body: AsyncIterator[bytes]) -> object:
            return await backend.put(key, body, size_hint)

        return write

    async def write(
        self,
        targets: Sequence[str],
        quorum: int,
        key: str,
        body: AsyncIterator[bytes],
        size_hint: int | None,
    ) -> WriteOutcome:
        """Store ``body`` under ``key`` on ``targets``; at least ``quorum`` must succeed.

        On any failure nothing is left behind on the targets (best effort, shielded; the
        caller's pending placements let gc finish the job).
        """
        writers = {t: self._writer(t, key, size_hint) for t in targets}
        try:
            result = await fan_out(
                body, writers, quorum=quorum, stall_timeout_s=self._stall_timeout_s
            )
        except QuorumLost as exc:
            await asyncio.shield(self.discard(targets, key))
            raise ServiceUnavailable(f"Too few backends accepted the write: {exc}") from None
        except BaseException:
            await asyncio.shield(self.discard(targets, key))
            raise
        if len(result.stored) < quorum:
            await asyncio.shield(self.discard(targets, key))
            reasons = "; ".join(f"{name}: {err!r}" for name, err in result.failed.items())
            raise ServiceUnavailable(f"Too few backends accepted the write ({reasons}).")
        failed = tuple(t for t in targets if t not in result.stored)
        if failed:
            log.warning("write of %s missed %s; queued for replication", key, failed)
        return WriteOutcome(tuple(result.stored), failed)

    async def discard(self, targets: Sequence[str], key: str) -> None:
        for target in targets:
            try:
                await self._backends.get(target).delete(key)
            except BackendError as exc:
                log.warning("could not discard %s/%s now (gc will): %s", target, key, exc)
