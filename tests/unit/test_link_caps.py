"""A link's caps on one node: the split among nodes, resizable slots, the demand gauge."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from gateway.links.ratelimit import DemandGauge, Slots
from gateway.links.shares import IDLE_DEMAND, concurrency_share, held_share, share_of


@pytest.mark.parametrize(
    "demands",
    [[0.0], [0.0, 0.0], [1.0, 0.0], [3.0, 1.0, 0.0], [0.2, 7.5, 2.0, 2.0], [1.0] * 9],
)
def test_shares_add_up_to_the_whole_link(demands: list[float]) -> None:
    shares = [share_of(d, demands[:i] + demands[i + 1 :]) for i, d in enumerate(demands)]
    assert sum(shares) == pytest.approx(1.0)
    # More demand, more share; equal demand, equal share.
    for (a, sa), (b, sb) in itertools.combinations(zip(demands, shares, strict=True), 2):
        assert (a > b) == (sa > sb) or a == b
        assert a != b or sa == pytest.approx(sb)


def test_an_idle_node_keeps_a_trickle() -> None:
    assert share_of(0.0, [1.0]) == pytest.approx(IDLE_DEMAND / (1 + 2 * IDLE_DEMAND))
    assert share_of(0.0, []) == 1.0


@pytest.mark.parametrize("cap", [1, 2, 3, 4, 7, 16, 100])
@pytest.mark.parametrize("split", [0.5, 0.49, 0.51, 0.25, 0.9545, 0.7375, 0.001])
def test_two_nodes_slots_stay_within_the_cap(cap: int, split: float) -> None:
    mine, theirs = concurrency_share(cap, split), concurrency_share(cap, 1 - split)
    assert min(mine, theirs) >= 1
    # A node whose part is under one slot still gets one, or it could never start: only
    # then, and by that one slot, may the two exceed the cap (until the next reading).
    floored = int(cap * min(split, 1 - split) + 0.05) == 0
    assert mine + theirs <= cap + floored


def test_an_even_split_read_a_little_off_keeps_its_slots() -> None:
    assert concurrency_share(4, 0.49) == 2
    assert concurrency_share(4, 1.05 / 1.1) == 3


async def test_slots_grow_and_shrink_under_load() -> None:
    slots = Slots(1)
    await slots.acquire()
    waiting = [asyncio.ensure_future(slots.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiting)
    slots.resize(3)  # two more may enter at once
    await asyncio.sleep(0)
    assert [w.done() for w in waiting] == [True, True, False]
    slots.resize(1)  # holders keep theirs; nobody enters until only one is left
    slots.release()
    slots.release()
    await asyncio.sleep(0)
    assert not waiting[2].done()
    slots.release()
    await asyncio.sleep(0)
    assert waiting[2].done()


async def test_a_cancelled_waiter_hands_its_slot_on() -> None:
    slots = Slots(1)
    await slots.acquire()
    cancelled = asyncio.ensure_future(slots.acquire())
    after = asyncio.ensure_future(slots.acquire())
    await asyncio.sleep(0)
    cancelled.cancel()
    slots.release()
    await asyncio.sleep(0)
    assert cancelled.cancelled()
    assert after.done()


async def test_demand_counts_a_request_that_just_arrived_in_full() -> None:
    gauge = DemandGauge()
    assert gauge.take() == 0.0
    gauge.enter()
    assert gauge.take() == 1.0
    gauge.enter()
    await asyncio.sleep(0.05)
    gauge.leave()
    gauge.leave()
    assert 0.0 < gauge.take() <= 2.0
    assert gauge.take() == 0.0


def test_shares_stay_within_the_link_while_demand_moves() -> None:
    """A is busy (demand 4) and holds nearly all; B, idle so far, gets busy. B reports first
    and A a moment later. At every step what both hold adds up to at most one."""
    a_held = held_share(4.0, 4.0, [0.0])
    b_held = held_share(0.0, 0.0, [4.0])
    assert a_held + b_held == pytest.approx(1.0)
    b_held = held_share(4.0, 0.0, [4.0])  # B's reading: A has not seen B's demand yet
    assert a_held + b_held <= 1.0 + 1e-9
    a_held = held_share(4.0, 4.0, [4.0])  # A's reading sees it: A gives share up at once
    assert a_held + b_held <= 1.0 + 1e-9
    b_held = held_share(4.0, 4.0, [4.0])  # B's next reading takes its half
    assert [a_held, b_held] == pytest.approx([0.5, 0.5])


def test_a_node_alone_takes_the_whole_link_at_once() -> None:
    assert held_share(3.0, 0.0, []) == 1.0
