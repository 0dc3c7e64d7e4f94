"""Every backend honours the contract in ``gateway/backends/base.py``, against real servers."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.backends.base import Backend, BackendError, BackendKeyNotFound
from gateway.backends.localfs import TMP_DIR_NAME, LocalFsBackend

MiB = 1024 * 1024
MAX_PIECE_BYTES = 300 * 1024


class BodyFailed(Exception):
    """Raised by a test body midway, as a failing client upload would."""


def new_key(prefix: str = "obj") -> str:
    return f"{prefix}/{secrets.token_hex(4)}/{secrets.token_hex(8)}"


async def pieces(data: bytes, *, seed: int = 0, fail: bool = False) -> AsyncIterator[bytes]:
    """``data`` in random-sized pieces (some empty), then optionally an exception."""
    rng = random.Random(seed)
    position = 0
    while position < len(data):
        size = rng.choice([0, 1, rng.randint(1, MAX_PIECE_BYTES)])
        yield data[position : position + size]
        position += size
        await asyncio.sleep(0)
    if fail:
        raise BodyFailed


async def read_all(backend: Backend, key: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in backend.get(key, offset, length)])


@pytest.mark.parametrize("size", [0, 1, 5 * MiB + 1, 20 * MiB], ids=["0B", "1B", "5MiB+1", "20MiB"])
async def test_round_trip(backend: Backend, size: int) -> None:
    data = os.urandom(size)
    key = new_key()
    assert await backend.put(key, pieces(data, seed=size), None) == size
    assert await read_all(backend, key) == data
    assert await backend.size(key) == size


RANGES = [
    pytest.param(1000, None, id="offset-only"),
    pytest.param(MiB - 3, 2 * MiB, id="offset-and-length"),
    pytest.param(3 * MiB + 6, 1, id="last-byte"),
    pytest.param(3 * MiB + 6, None, id="last-byte-open"),
    pytest.param(0, 1, id="first-byte"),
    pytest.param(5, 0, id="empty-length"),
    pytest.param(3 * MiB + 7, None, id="at-end"),
]


@pytest.mark.parametrize(("offset", "length"), RANGES)
async def test_ranged_read(backend: Backend, offset: int, length: int | None) -> None:
    data = os.urandom(3 * MiB + 7)
    key = new_key()
    await backend.put(key, pieces(data), len(data))
    end = None if length is None else offset + length
    assert await read_all(backend, key, offset, length) == data[offset:end]


async def test_get_missing_raises_before_yielding(backend: Backend) -> None:
    with pytest.raises(BackendKeyNotFound):
        await anext(backend.get(new_key()))
    with pytest.raises(BackendKeyNotFound):
        await anext(backend.get(new_key(), 10, 5))


async def test_size_of_missing_is_none(backend: Backend) -> None:
    assert await backend.size(new_key()) is None


async def test_delete_is_idempotent(backend: Backend) -> None:
    key = new_key()
    await backend.put(key, pieces(b"x" * 10), 10)
    await backend.delete(key)
    assert await backend.size(key) is None
    await backend.delete(key)
    await backend.delete(new_key())
    with pytest.raises(BackendKeyNotFound):
        await read_all(backend, key)


async def test_list_keys_with_prefix(backend: Backend) -> None:
    keys = ["lst/a/1", "lst/a/2", "lst/b/1", "lst/ab", "other"]
    for key in keys:
        await backend.put(key, pieces(key.encode()), None)
    assert await _listed(backend, "lst/a/") == {"lst/a/1", "lst/a/2"}
    assert await _listed(backend, "lst/a") == {"lst/a/1", "lst/a/2", "lst/ab"}
    assert await _listed(backend, "") == set(keys)
    assert await _listed(backend, "none/") == set()


async def _listed(backend: Backend, prefix: str) -> set[str]:
    return {key async for key in backend.list_keys(prefix)}


async def test_overwrite_is_atomic(backend: Backend) -> None:
    key = new_key()
    old, new = b"o" * (2 * MiB), b"n" * (2 * MiB)
    await backend.put(key, pieces(old), None)
    writer = asyncio.create_task(backend.put(key, _slow(new), None))
    seen = set()
    while not writer.done():
        content = await read_all(backend, key)
        assert content in (old, new)
        seen.add(content[:1])
    await writer
    assert await read_all(backend, key) == new
    assert b"o" in seen


async def _slow(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 256 * 1024):
        await asyncio.sleep(0.01)
        yield data[start : start + 256 * 1024]


FAIL_AFTER = [
    pytest.param(0, id="at-once"),
    pytest.param(1000, id="small"),
    pytest.param(12 * MiB, id="after-a-part"),
]


@pytest.mark.parametrize("sent", FAIL_AFTER)
async def test_failing_body_leaves_nothing(
    backend: Backend, leftovers: Callable[[], list[str]], sent: int
) -> None:
    key = new_key()
    with pytest.raises(BodyFailed):
        await backend.put(key, pieces(os.urandom(sent), fail=True), None)
    assert await backend.size(key) is None
    assert [key async for key in backend.list_keys()] == []
    assert leftovers() == []


@pytest.mark.parametrize("sent", FAIL_AFTER)
async def test_failing_overwrite_keeps_old_content(backend: Backend, sent: int) -> None:
    key = new_key()
    await backend.put(key, pieces(b"old"), 3)
    with pytest.raises(BodyFailed):
        await backend.put(key, pieces(os.urandom(sent), fail=True), None)
    assert await read_all(backend, key) == b"old"


async def test_cancelled_put_leaves_nothing(
    backend: Backend, leftovers: Callable[[], list[str]]
) -> None:
    key = new_key()
    started = asyncio.Event()
    writer = asyncio.create_task(backend.put(key, _stalls_after(12 * MiB, started), None))
    await asyncio.wait_for(started.wait(), timeout=30)
    # Let the first part finish uploading before cancelling, so an upload is in flight.
    await asyncio.sleep(0.5)
    writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await writer
    assert await backend.size(key) is None
    assert leftovers() == []


async def _stalls_after(size: int, started: asyncio.Event) -> AsyncIterator[bytes]:
    async for piece in pieces(os.urandom(size)):
        yield piece
    started.set()
    await asyncio.Event().wait()
    yield b"never"


# --- localfs only ---------------------------------------------------------------------------

BAD_KEYS = ["../x", "a/../../x", "/abs", "a//b", "a/", "", "a b", "a\\b", "ä", "a/./b", ".tmp/x"]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_localfs_refuses_unsafe_keys(tmp_path: Path, key: str) -> None:
    backend = LocalFsBackend("fs", tmp_path / "store")
    with pytest.raises(BackendError):
        await backend.put(key, pieces(b"x"), 1)
    with pytest.raises(BackendError):
        await read_all(backend, key)
    with pytest.raises(BackendError):
        await backend.size(key)
    with pytest.raises(BackendError):
        await backend.delete(key)
    assert _files_under(tmp_path) == []


async def test_localfs_refuses_symlink_escape(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    backend = LocalFsBackend("fs", tmp_path / "store")
    (tmp_path / "store" / "link").symlink_to(outside)
    with pytest.raises(BackendError):
        await backend.put("link/x", pieces(b"x"), 1)
    assert _files_under(outside) == []


async def test_localfs_tmp_is_clean_after_failed_put(tmp_path: Path) -> None:
    root = tmp_path / "store"
    backend = LocalFsBackend("fs", root, fsync=True)
    with pytest.raises(BodyFailed):
        await backend.put("a/b", pieces(os.urandom(3 * MiB), fail=True), None)
    assert _files_under(root / TMP_DIR_NAME) == []
    assert not (root / "a" / "b").exists()
    await backend.put("a/b", pieces(b"ok"), 2)
    assert _files_under(root / TMP_DIR_NAME) == []
    assert await read_all(backend, "a/b") == b"ok"


async def test_localfs_delete_prunes_empty_dirs(tmp_path: Path) -> None:
    root = tmp_path / "store"
    backend = LocalFsBackend("fs", root)
    await backend.put("a/b/c", pieces(b"1"), 1)
    await backend.put("a/d", pieces(b"2"), 1)
    await backend.delete("a/b/c")
    assert not (root / "a" / "b").exists()
    assert (root / "a" / "d").exists()


def _files_under(directory: Path) -> list[Path]:
    return [path for path in directory.rglob("*") if path.is_file()]


async def test_localfs_refuses_a_symlinked_file_and_a_link_inside_the_root(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"secret")
    backend = LocalFsBackend("fs", tmp_path / "store")
    await backend.put("a/real", pieces(b"ok"), 2)
    (tmp_path / "store" / "a" / "file").symlink_to(outside)
    (tmp_path / "store" / "inner").symlink_to(tmp_path / "store" / "a")
    # No symlink is followed, wherever it leads: the gateway never makes one.
    for key in ("a/file", "inner/real"):
        with pytest.raises(BackendError, match="symlink"):
            await read_all(backend, key)
        assert await _size_or_error(backend, key) is None
    assert await read_all(backend, "a/real") == b"ok"
    assert outside.read_bytes() == b"secret"


async def _size_or_error(backend: LocalFsBackend, key: str) -> int | None:
    try:
        return await backend.size(key)
    except BackendError:
        return None
