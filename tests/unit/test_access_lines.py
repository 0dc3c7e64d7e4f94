"""The access log: its lines as json.dumps writes them, and the batched writer of them
(gateway/observability/lines.py) on real files and pipes, with its real writer thread."""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.observability.access import AccessRecord
from gateway.observability.lines import BatchedLineHandler


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord("skybridge.access", logging.INFO, __file__, 0, message, (), None)


def _lines_once(path: Path, count: int, timeout_s: float = 10.0) -> list[str]:
    """The file's lines once it holds ``count`` of them (or the deadline passed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = path.read_text().splitlines()
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.01)


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[tuple[Path, TextIO]]:
    path = tmp_path / "access.log"
    with path.open("a") as stream:
        yield path, stream


def test_lines_reach_the_stream_in_order_without_a_flush(log_file: tuple[Path, TextIO]) -> None:
    path, stream = log_file
    handler = BatchedLineHandler(stream, max_delay_s=0.02)
    sent = [f'{{"n":{n},"key":"100%s"}}' for n in range(2_000)]
    for line in sent:
        handler.handle(_record(line))
    assert _lines_once(path, len(sent)) == sent


def test_lines_are_written_in_batches(tmp_path: Path) -> None:
    class Counting:
        def __init__(self) -> None:
            self.writes: list[str] = []

        def write(self, text: str) -> int:
            self.writes.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    stream = Counting()
    handler = BatchedLineHandler(stream, max_delay_s=0.2)  # type: ignore[arg-type]
    for n in range(500):
        handler.handle(_record(str(n)))
    handler.flush()
    assert "".join(stream.writes).splitlines() == [str(n) for n in range(500)]
    assert len(stream.writes) <= 2, "the writer took the lines a batch at a time"


def test_flush_writes_what_waits_at_once(log_file: tuple[Path, TextIO]) -> None:
    path, stream = log_file
    handler = BatchedLineHandler(stream, max_delay_s=3_600)
    for line in ("a", "b", "c"):
        handler.handle(_record(line))
    handler.flush()
    assert path.read_text() == "a\nb\nc\n"


def test_a_blocked_stream_never_blocks_emit_and_keeps_memory_bounded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(write_fd, "w")
    handler = BatchedLineHandler(stream, max_delay_s=0.01, max_pending=100)
    line = "x" * 1_000
    emitted = threading.Event()

    def emit_many() -> None:
        # Far more than the pipe holds (64 KiB): its writer thread blocks in write().
        for _ in range(5_000):
            handler.handle(_record(line))
        emitted.set()

    received = bytearray()
    reader = threading.Thread(target=_read_all, args=(read_fd, received), daemon=True)
    with caplog.at_level(logging.WARNING, logger="gateway.observability.lines"):
        threading.Thread(target=emit_many, daemon=True).start()
        # Nothing reads the pipe until every line was emitted.
        assert emitted.wait(30), "emit waited for the blocked stream"
        reader.start()
        # Waits for the writer thread's blocked write, then writes what still waits; a
        # drop is reported by whichever write took its count, under the same lock.
        handler.flush()
        stream.close()
        reader.join(30)
    assert not reader.is_alive()
    lines = received.decode().splitlines()
    assert set(lines) == {line}
    dropped = sum(int(n) for n in re.findall(r"(\d+) access log lines were dropped", caplog.text))
    assert dropped > 0
    assert len(lines) + dropped == 5_000, "every line written or counted as dropped"


def _read_all(fd: int, into: bytearray) -> None:
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        while chunk := pipe.read(65_536):
            into += chunk


def test_a_forked_child_writes_its_own_lines_only(log_file: tuple[Path, TextIO]) -> None:
    path, stream = log_file
    handler = BatchedLineHandler(stream, max_delay_s=3_600)
    handler.handle(_record("parent, before the fork"))
    pid = os.fork()
    if pid == 0:  # the child: the parent's waiting line is not its to write
        try:
            handler.handle(_record("child"))
            handler.flush()
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    handler.handle(_record("parent, after the fork"))
    handler.flush()
    assert sorted(path.read_text().splitlines()) == [
        "child",
        "parent, after the fork",
        "parent, before the fork",
    ]


_texts = st.none() | st.text(max_size=40)


@settings(max_examples=300, deadline=None)
@given(
    started_at=st.floats(min_value=0, max_value=4e9),
    strings=st.tuples(st.text(max_size=20), _texts, _texts, st.text(max_size=20), _texts, _texts),
    numbers=st.tuples(st.integers(100, 599), st.integers(0, 2**62), st.integers(0, 2**62)),
    duration_s=st.floats(min_value=0, max_value=1e5),
    first_byte_s=st.none() | st.floats(min_value=0, max_value=1e5),
    remote=_texts,
)
def test_an_access_line_is_what_json_dumps_writes(
    started_at: float,
    strings: tuple[str, str | None, str | None, str, str | None, str | None],
    numbers: tuple[int, int, int],
    duration_s: float,
    first_byte_s: float | None,
    remote: str | None,
) -> None:
    request_id, tenant, access_key, operation, bucket, key = strings
    status, bytes_in, bytes_out = numbers
    record = AccessRecord(
        started_at, request_id, tenant, access_key, operation, "GET", bucket, key, status,
        bytes_in, bytes_out, duration_s, first_byte_s, remote,
    )  # fmt: skip
    reference = {
        "time": datetime.fromtimestamp(started_at, UTC).isoformat(timespec="milliseconds"),
        "request_id": request_id, "tenant": tenant, "access_key": access_key,
        "operation": operation, "method": "GET", "bucket": bucket, "key": key,
        "status": status, "bytes_in": bytes_in, "bytes_out": bytes_out,
        "duration_ms": round(duration_s * 1000, 3),
        "ttfb_ms": None if first_byte_s is None else round(first_byte_s * 1000, 3),
        "remote": remote,
    }  # fmt: skip
    assert record.json() == json.dumps(reference, separators=(",", ":"))
