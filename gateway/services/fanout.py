"""One body stream written to several backends at once, in bounded memory.

Each target reads from its own queue of at most ``QUEUE_CHUNKS`` chunks, so memory is
O(targets x chunk) whatever the object size, and the slowest live target sets the pace.
A target that stops taking chunks for ``stall_timeout_s`` is dropped (its write is
cancelled) so that one dead link cannot stall the others; a target that fails is dropped
too. The source's own failure (a bad digest, a short body) aborts every target.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.backends.base import BackendError

QUEUE_CHUNKS = 2

Writer = Callable[[AsyncIterator[bytes]], Coroutine[Any, Any, object]]


class TargetStalled(Exception):
    """The target took no data for longer than the stall timeout."""


class QuorumLost(Exception):
    """Too few targets are still alive to meet the write quorum."""


class _End:
    pass


_END = _End()


@dataclass(slots=True)
class FanOutResult:
    stored: list[str] = field(default_factory=list)
    failed: dict[str, BaseException] = field(default_factory=dict)


async def _drain(queue: asyncio.Queue[bytes | _End | BaseException]) -> AsyncIterator[bytes]:
    while True:
        item = await queue.get()
        if isinstance(item, _End):
            return
        if isinstance(item, BaseException):
            raise item
        yield item


class _FanOut:
    def __init__(self, targets: Mapping[str, Writer], quorum: int, stall_timeout_s: float) -> None:
        self.quorum = quorum
        self.stall_timeout_s = stall_timeout_s
        self.queues: dict[str, asyncio.Queue[bytes | _End | BaseException]] = {
            name: asyncio.Queue(QUEUE_CHUNKS) for name in targets
        }
        self.tasks = {
            name: asyncio.create_task(write(_drain(self.queues[name])))
            for name, write in targets.items()
        }
        self.alive = set(targets)
        self.result = FanOutResult()

    def _drop(self, name: str, error: BaseException) -> None:
        self.alive.discard(name)
        self.result.failed.setdefault(name, error)
        self.tasks[name].cancel()

    async def _offer(self, name: str, item: bytes | _End) -> None:
        task = self.tasks[name]
        put = asyncio.ensure_future(self.queues[name].put(item))
        done, _ = await asyncio.wait(
            {put, task}, timeout=self.stall_timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if put in done:
            return
        put.cancel()
        if task in done:
            self.alive.discard(name)  # its own error is collected when the tasks finish
        else:
            self._drop(name, TargetStalled(name))

    async def send(self, item: bytes | _End) -> None:
        for name in sorted(self.alive):
            await self._offer(name, item)
        if len(self.alive) < self.quorum:
            raise QuorumLost(f"{len(self.alive)} of {len(self.tasks)} targets left")

    def abort(self, error: BaseException) -> None:
        for name, queue in self.queues.items():
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(error)
            if name in self.alive and isinstance(error, QuorumLost):
                self.tasks[name].cancel()

    async def collect(self) -> FanOutResult:
        """Wait for the targets; once the quorum is stored, stragglers get one more stall
        timeout before they are cancelled."""
        pending = set(self.tasks.values())
        while pending:
            timeout = self.stall_timeout_s if len(self.result.stored) >= self.quorum else None
            done, pending = await asyncio.wait(
                pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                for name, task in self.tasks.items():
                    if task in pending:
                        self._drop(name, TargetStalled(name))
                continue
            self._record(done)
        return self.result

    def _record(self, done: set[asyncio.Task[object]]) -> None:
        for name, task in self.tasks.items():
            if task not in done:
                continue
            if task.cancelled():
                self.result.failed.setdefault(name, TargetStalled(name))
            elif task.exception() is not None:
                self.result.failed.setdefault(name, task.exception())  # type: ignore[arg-type]
            else:
                self.result.stored.append(name)


async def fan_out(
    source: AsyncIterator[bytes],
    targets: Mapping[str, Writer],
    *,
    quorum: int,
    stall_timeout_s: float,
) -> FanOutResult:
    """Stream ``source`` to every target. Raises the source's error if it fails; returns
    which targets stored the bytes otherwise (the caller checks the quorum)."""
    if len(targets) == 1:
        return await _single(source, targets)
    fan = _FanOut(targets, quorum, stall_timeout_s)
    try:
        async for chunk in source:
            await fan.send(chunk)
        await fan.send(_END)
    except BaseException as error:
        fan.abort(error)
        with contextlib.suppress(BaseException):
            await fan.collect()
        raise
    return await fan.collect()


async def _single(source: AsyncIterator[bytes], targets: Mapping[str, Writer]) -> FanOutResult:
    # No queue and no task: the common case of one synchronous target costs nothing extra.
    ((name, write),) = targets.items()
    try:
        await write(source)
    except BackendError as error:
        return FanOutResult(failed={name: error})
    return FanOutResult(stored=[name])
