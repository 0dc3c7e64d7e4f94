"""A logging handler that writes its lines in batches, from a thread of its own.

The access log writes a line per request. Written one by one from the event loop, each
line was a ``write`` system call on the loop's thread (about 3 % of a small GET's CPU), and
a log stream that blocks (a full pipe, a slow disk) stalled every request. Here ``emit``
only appends to a list; a writer thread takes the whole list at most ``max_delay_s`` after
its first line and writes it in one call. If the stream stays blocked, at most
``max_pending`` lines wait and the rest are dropped and counted, so memory stays bounded;
the count is logged once writing works again. Lines still waiting when the process is
killed are lost; ``flush`` (called at a worker's exit and by ``logging.shutdown``) writes
them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TextIO

log = logging.getLogger(__name__)

MAX_DELAY_S = 0.2
MAX_PENDING = 65_536


class BatchedLineHandler(logging.Handler):
    """Each record's message as one line of ``stream``, written in batches."""

    def __init__(
        self, stream: TextIO, *, max_delay_s: float = MAX_DELAY_S, max_pending: int = MAX_PENDING
    ) -> None:
        super().__init__()
        self._stream = stream
        self._max_delay_s = max_delay_s
        self._max_pending = max_pending
        self._pending: list[str] = []
        self._dropped = 0
        # Guards _pending and _dropped only, never a write: emit never waits for the stream.
        self._guard = threading.Lock()
        # Serialises writes, so that a flush and the writer thread keep the lines in order.
        self._writing = threading.Lock()
        self._wake = threading.Event()
        self._writer_started = False
        os.register_at_fork(after_in_child=self._after_fork)

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        with self._guard:
            if len(self._pending) >= self._max_pending:
                self._dropped += 1
                return
            self._pending.append(line)
            first = len(self._pending) == 1
        if first:
            self._ensure_writer()
            self._wake.set()

    def flush(self) -> None:
        with self._writing:
            self._write_pending()

    def _ensure_writer(self) -> None:
        if not self._writer_started:
            self._writer_started = True
            threading.Thread(target=self._run, name="access-lines", daemon=True).start()

    def _after_fork(self) -> None:
        # A forked worker inherits the handler but not its thread, and the locks may have
        # been held by it: the child starts afresh (its parent writes the inherited lines).
        self._guard = threading.Lock()
        self._writing = threading.Lock()
        self._wake = threading.Event()
        self._pending = []
        self._dropped = 0
        self._writer_started = False

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            # Let a batch gather: one write per max_delay_s at most, however busy.
            time.sleep(self._max_delay_s)
            self.flush()

    def _write_pending(self) -> None:
        with self._guard:
            lines, self._pending = self._pending, []
            dropped, self._dropped = self._dropped, 0
        if lines:
            try:
                self._stream.write("\n".join(lines) + "\n")
                self._stream.flush()
            except Exception:
                dropped += len(lines)
        if dropped:
            log.warning(
                "%d access log lines were dropped: the log stream was not writable", dropped
            )
