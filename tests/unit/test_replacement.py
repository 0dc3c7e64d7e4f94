"""Re-placement decisions, table-driven."""

from __future__ import annotations

import pytest

from gateway.placement.model import (
    BackendInfo,
    BackendState,
    ReadPreference,
    Topology,
    WritePlan,
)
from gateway.placement.replacement import Move, reconcile


def _topology(**states: BackendState) -> Topology:
    return Topology(
        "s1",
        {name: BackendInfo(name, f"site-{name}", state=state) for name, state in states.items()},
    )


ACTIVE, DRAINING, DISABLED, READ_ONLY = (
    BackendState.ACTIVE,
    BackendState.DRAINING,
    BackendState.DISABLED,
    BackendState.READ_ONLY,
)


def _plan(*targets: str) -> WritePlan:
    return WritePlan("r", tuple(targets), len(targets), (), ReadPreference.LOCAL)


@pytest.mark.parametrize(
    ("current", "queued", "states", "plan", "expected"),
    [
        # Healthy and complete: nothing to do.
        (["a", "b"], [], {"a": ACTIVE, "b": ACTIVE}, _plan("a", "b"), Move((), (), 2)),
        # b drains: copy to c first, keep b until the copy exists.
        (["a", "b"], [], {"a": ACTIVE, "b": DRAINING, "c": ACTIVE}, _plan("a", "c"),
         Move(("c",), (), 2)),
        # The copy to c is queued: do not queue it twice, still keep b.
        (["a", "b"], ["c"], {"a": ACTIVE, "b": DRAINING, "c": ACTIVE}, _plan("a", "c"),
         Move((), (), 2)),
        # The copy landed: b is retired.
        (["a", "b", "c"], [], {"a": ACTIVE, "b": DRAINING, "c": ACTIVE}, _plan("a", "c"),
         Move((), ("b",), 2)),
        # A disabled backend's replica no longer counts either.
        (["a", "b"], [], {"a": ACTIVE, "b": DISABLED, "c": ACTIVE}, _plan("a", "c"),
         Move(("c",), (), 2)),
        # A backend taken away for good (unknown to the topology) is replaced and retired.
        (["a", "gone", "c"], [], {"a": ACTIVE, "c": ACTIVE}, _plan("a", "c"),
         Move((), ("gone",), 2)),
        # Read-only replicas still count: no copy.
        (["a", "b"], [], {"a": ACTIVE, "b": READ_ONLY, "c": ACTIVE}, _plan("a", "c"),
         Move((), (), 2)),
        # No backend left to copy to: nothing queued, nothing retired (never lose a copy).
        (["a", "b"], [], {"a": ACTIVE, "b": DRAINING}, _plan("a"), Move((), (), 2)),
        # Under-replicated after a failure: fill the missing target.
        (["a"], [], {"a": ACTIVE, "b": ACTIVE}, _plan("a", "b"), Move(("b",), (), 2)),
        # The policy moved b's replica to c: copy to c first, keep b meanwhile...
        (["a", "b"], [], {"a": ACTIVE, "b": ACTIVE, "c": ACTIVE}, _plan("a", "c"),
         Move(("c",), (), 2)),
        (["a", "b"], ["c"], {"a": ACTIVE, "b": ACTIVE, "c": ACTIVE}, _plan("a", "c"),
         Move((), (), 2)),
        # ...and retire b once c holds its copy.
        (["a", "b", "c"], [], {"a": ACTIVE, "b": ACTIVE, "c": ACTIVE}, _plan("a", "c"),
         Move((), ("b",), 2)),
    ],
)  # fmt: skip
def test_reconcile(
    current: list[str],
    queued: list[str],
    states: dict[str, BackendState],
    plan: WritePlan,
    expected: Move,
) -> None:
    assert reconcile(current, queued, plan, 2, _topology(**states)) == expected
