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
    ``wanted`` how many replicas the rule asks for. Copies go first; a replica on a leaving
    backend is retired only once ``wanted`` counted replicas exist, and one on a backend
    the policy no longer names only once the policy's own targets hold enough, so reads
    always have the old copy until the new one is verified.
    """
    targets = plan.sync_targets + plan.async_targets
    good = [b for b in current if counted(b, topology)]
    leaving = tuple(b for b in current if not counted(b, topology))
    on_target = [b for b in good if b in targets]
    # A read-only backend keeps its replicas: they count, and nothing forces them off.
    kept = [b for b in good if b not in targets and _read_only(b, topology)]
    # Replicas on active backends the policy no longer names (the policy changed).
    extra = tuple(b for b in good if b not in targets and not _read_only(b, topology))
    pending = [q for q in queued if q not in current and q in targets]
    missing = [t for t in targets if t not in current and t not in pending]
    need = max(0, wanted - len(on_target) - len(kept) - len(pending))
    settled = len(on_target) + len(kept) >= wanted
    retire = leaving if len(good) >= wanted else ()
    return Move(tuple(missing[:need]), retire + (extra if settled else ()), wanted)


def _read_only(backend: str, topology: Topology) -> bool:
    info = topology.backends.get(backend)
    return info is not None and info.state is BackendState.READ_ONLY
