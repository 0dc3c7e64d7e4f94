"""Re-placement: what a version needs so that its replicas match its rule again. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.placement.model import BackendState, Topology, WritePlan

# States whose replicas still count: read-only keeps its data, it only takes no writes.
_KEEPS = (BackendState.ACTIVE, BackendState.READ_ONLY)


@dataclass(frozen=True, slots=True)
class Move:
    copy_to: tuple[str, ...]
    # Replicas to drop: on draining, disabled or vanished backends, once enough others exist.
    retire: tuple[str, ...]
    wanted: int


def counted(backend: str, topology: Topology) -> bool:
    info = topology.backends.get(backend)
    return info is not None and info.state in _KEEPS


def reconcile(
    current: Sequence[str],
    queued: Sequence[str],
    plan: WritePlan,
    wanted: int,
    topology: Topology,
) -> Move:
    """Copies to queue and replicas to retire for one version.

    ``current`` holds the backends with an ok replica, ``queued`` the targets already in
    the replication queue, ``plan`` where the rule would put a new version now and
    ``wanted`` how many replicas the rule asks for. Copies go first; a leaving replica is
    retired only once ``wanted`` counted replicas exist, so reads always have the old copy
    until the new one is verified.
    """
    good = [b for b in current if counted(b, topology)]
    leaving = tuple(b for b in current if not counted(b, topology))
    pending = [q for q in queued if q not in current]
    targets = [t for t in plan.sync_targets + plan.async_targets if t not in current]
    missing = [t for t in targets if t not in pending]
    need = max(0, wanted - len(good) - len(pending))
    retire = leaving if len(good) >= wanted else ()
    return Move(tuple(missing[:need]), retire, wanted)
