"""A server run on an event loop of its own, in a daemon thread: what the test proxies
share (tests/netproxy.py, tests/faultproxy.py). A subclass's ``_run(ready)`` sets
``_loop`` and ``_port`` (or ``_start_error``), sets ``ready`` and runs the loop until
``stop`` stops it."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Self


class LoopThread:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._start_error: BaseException | None = None

    def _run(self, ready: threading.Event) -> None:
        raise NotImplementedError

    def _thread_name(self) -> str:
        return type(self).__name__

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__}.start() called twice")
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=self._thread_name(), daemon=True
        )
        self._thread.start()
        ready.wait()
        if self._start_error is not None:
            self._thread.join()
            raise self._start_error

    def stop(self) -> None:
        """Stop the loop (the subclass's ``_run`` closes what it opened) and join the thread.
        Idempotent."""
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port
