"""Typed values shared by every service call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is asking. Built by the edge after authentication."""

    access_key: str
    tenant: str
    request_id: str
    user: str | None = None
    source_ip: str = ""

    @property
    def anonymous(self) -> bool:
        return not self.access_key


@dataclass(frozen=True, slots=True)
class Conditions:
    """HTTP preconditions (RFC 7232 as S3 applies them)."""

    if_match: str | None = None
    if_none_match: str | None = None
    if_modified_since: datetime | None = None
    if_unmodified_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class ByteRange:
    """A parsed Range header: ``first``-``last`` inclusive, or a suffix of ``suffix`` bytes."""

    first: int | None
    last: int | None
    suffix: int | None = None

    def resolve(self, size: int) -> tuple[int, int] | None:
        """The inclusive (start, end) within ``size``, or None if unsatisfiable."""
        if self.suffix is not None:
            if self.suffix == 0 or size == 0:
                return None
            return max(0, size - self.suffix), size - 1
        assert self.first is not None
        if self.first >= size:
            return None
        last = size - 1 if self.last is None else min(self.last, size - 1)
        return self.first, last
