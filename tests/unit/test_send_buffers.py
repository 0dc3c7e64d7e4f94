"""The encrypted read path reuses its plaintext buffers: never one that anything else
still holds (a transport sending it, a consumer keeping it)."""

from __future__ import annotations

from gateway.services.reader import _SendBuffers


def test_a_buffer_nothing_else_holds_is_reused() -> None:
    buffers = _SendBuffers()
    first = id(buffers.take(1024))
    assert id(buffers.take(1024)) == first


def test_a_held_buffer_is_never_handed_out_again() -> None:
    buffers = _SendBuffers()
    held = buffers.take(1024)
    viewed = memoryview(buffers.take(1024))
    taken = [buffers.take(1024) for _ in range(5)]
    assert all(buffer is not held and buffer is not viewed.obj for buffer in taken)


def test_a_buffer_of_another_size_is_not_reused() -> None:
    buffers = _SendBuffers()
    buffers.take(1024)
    assert len(buffers.take(2048)) == 2048
