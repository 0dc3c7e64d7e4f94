"""The seam through which a link reports its traffic; gateway/observability implements it."""

from __future__ import annotations

from typing import Protocol


class LinkMeter(Protocol):
    """One link's traffic. Called on the data path: implementations must not block."""

    def exchange(self, operation: str, seconds: float, failed: bool) -> None:
        """One call to the backend over the link ended; ``failed`` as its breaker saw it."""
        ...

    def sent(self, size: int) -> None:
        """``size`` body bytes went out to the backend (egress from this site)."""
        ...

    def received(self, size: int) -> None:
        """``size`` body bytes came in from the backend."""
        ...


class Unmetered:
    """The meter of a link nobody watches (offline commands)."""

    def exchange(self, operation: str, seconds: float, failed: bool) -> None:
        pass

    def sent(self, size: int) -> None:
        pass

    def received(self, size: int) -> None:
        pass
