"""How the nodes of a site split a link's caps: in proportion to their demand.

Every node reports the average number of requests it had on the link (using or waiting
for it) and reads the others'. Its share is its demand over the total, each demand plus a
small floor, so an idle node keeps a trickle to start with and every node computes shares
that add up to one from the same readings. A node gives share up at once and takes more
one reading later, when the others have seen its demand and given theirs up: so the
shares add up to at most one while demand moves, too."""

from __future__ import annotations

from collections.abc import Sequence

# The demand an idle node is counted with: enough to start a transfer at once, small
# enough that the busy nodes keep nearly all of the link until the next reading.
IDLE_DEMAND = 0.05
# A link's share before this node has heard from the others: what an idle node gets.
STARTING_SHARE = IDLE_DEMAND


def share_of(mine: float, others: Sequence[float]) -> float:
    total = mine + IDLE_DEMAND + sum(d + IDLE_DEMAND for d in others)
    return (mine + IDLE_DEMAND) / total


def held_share(demand: float, reported: float, others: Sequence[float]) -> float:
    """The share to hold now: less is taken at once; more only once the others have seen
    the demand that asks for it. ``reported`` is the demand this node reported last time,
    which is what the others have split the link with since; were this node to take its
    new demand's share at once, it and the others would both hold that part until their
    next reading."""
    return min(share_of(demand, others), share_of(reported, others))


def bandwidth_share(cap: int, share: float) -> float:
    return cap * share


# Slots are rounded down, less this slack, so that an even split read a little off (0.49
# of four slots) still gives the whole slots it means; shares that add up to one still
# give slots that add up to at most the cap.
SLOT_SLACK = 0.05


def concurrency_share(cap: int, share: float) -> int:
    """Whole slots within the cap; at least one, or a node could never start. So a node
    whose part is under one slot (an idle one) may take the nodes one slot over the cap:
    only until the next reading, which gives it the share its new demand asks for."""
    return max(1, int(cap * share + SLOT_SLACK))
