"""Whose traffic a link carries: background work (replication) runs inside
``background()``; everything else is a client's. Budgets limit only the former."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_BACKGROUND: ContextVar[bool] = ContextVar("skybridge_background_traffic", default=False)


def is_background() -> bool:
    return _BACKGROUND.get()


@contextlib.contextmanager
def background() -> Iterator[None]:
    token = _BACKGROUND.set(True)
    try:
        yield
    finally:
        _BACKGROUND.reset(token)
