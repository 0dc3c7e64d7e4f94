"""A link's caps hold for all the nodes of its site together (issues #3 and #8).

Two gateway nodes at site s1 share one PostgreSQL and the capped link s1-sw. Each takes
the share of the link's bandwidth and concurrency that its demand is of both nodes'
demand: even when both are idle, nearly all of it when only one is reading, the whole
link again once the other leaves. The shares are read from each node's admin API (the
rates its limiters use), so this test measures no speed; benchmarks/replication_bandwidth.py
measures the bytes that really pass.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests import observability as o
from tests.admin.client import AdminClient
from tests.conftest import client_for
from tests.gateway_process import GatewayProcess
from tests.placement.conftest import Topology, poll, remote_pair_policy
from tests.servers import random_name

CAP_BYTES_PER_S = 100 * 1024 * 1024
CAP_CONCURRENCY = 4
BODY = os.urandom(24 * 1024 * 1024)  # more than the sockets between reader and node buffer


@dataclass
class Pair:
    nodes: list[GatewayProcess]
    admins: list[AdminClient]
    bucket: str


@pytest.fixture(scope="module")
def pair(
    topology_factory: Callable[[], Topology], start_module_gateway: Callable[..., GatewayProcess]
) -> Iterator[Pair]:
    topology = topology_factory()
    config = topology.config(policies=[remote_pair_policy()], default_policy="remote-pair")
    for link in config["links"]:
        if link["name"] == "s1-sw":
            link.update(bandwidth_bytes_per_s=CAP_BYTES_PER_S, max_concurrency=CAP_CONCURRENCY)
    first = start_module_gateway(config)
    second = start_module_gateway(config, database_url=first.database_url)
    nodes = [first, second]
    bucket = random_name()
    s3 = client_for(first)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="big", Body=BODY)
    yield Pair(nodes, [AdminClient.of(n) for n in nodes], bucket)
    topology.restore()


def _link(admin: AdminClient) -> dict[str, Any]:
    return dict(admin.ok("GET", "/links/s1-sw"))


def _shares(pair: Pair) -> list[float]:
    return [float(_link(admin)["share"]) for admin in pair.admins]


def _slots(pair: Pair) -> list[int]:
    return [int(_link(admin)["max_concurrency_here"]) for admin in pair.admins]


def _close_to(values: list[float], wanted: list[float], tolerance: float = 0.02) -> bool:
    return all(abs(v - w) <= tolerance for v, w in zip(values, wanted, strict=True))


class SlowReader:
    """A client streaming the big object through one node, a little at a time: the node's
    link to sw stays busy (demand 1) until it stops."""

    def __init__(self, node: GatewayProcess, bucket: str) -> None:
        self._body = client_for(node).get_object(Bucket=bucket, Key="big")["Body"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set() and self._body.read(16 * 1024):
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._body.close()


def _within_caps(pair: Pair) -> bool:
    links = [_link(admin) for admin in pair.admins]
    bandwidth = sum(int(link["bandwidth_here_bytes_per_s"]) for link in links)
    slots = sum(int(link["max_concurrency_here"]) for link in links)
    return bandwidth <= CAP_BYTES_PER_S and slots <= CAP_CONCURRENCY


def _sums_within_caps(pair: Pair) -> None:
    """Each node re-splits once a second from the others' last reports, so while demand
    changes the two views can briefly disagree; once both have read the same demands,
    their parts add up to the caps."""
    poll(lambda: _within_caps(pair), "the nodes' parts within the caps", timeout_s=10)


def test_idle_nodes_split_the_link_evenly(pair: Pair) -> None:
    poll(lambda: _close_to(_shares(pair), [0.5, 0.5]), "even shares", timeout_s=20)
    _sums_within_caps(pair)


def test_the_busy_node_takes_nearly_all_of_the_link(pair: Pair) -> None:
    reader = SlowReader(pair.nodes[0], pair.bucket)
    try:
        # Demand 1 against an idle node's floor of 0.05: 1.05 / 1.10 of the link.
        poll(lambda: _close_to(_shares(pair), [1.05 / 1.1, 0.05 / 1.1]), "a busy node's share")
        _sums_within_caps(pair)
        poll(lambda: _slots(pair) == [3, 1], "a busy node's slots")
        other = SlowReader(pair.nodes[1], pair.bucket)
        try:
            poll(lambda: _close_to(_shares(pair), [0.5, 0.5]), "two busy nodes' shares")
            _sums_within_caps(pair)
            poll(lambda: _slots(pair) == [2, 2], "two busy nodes' slots")
        finally:
            other.stop()
    finally:
        reader.stop()
    poll(lambda: _close_to(_shares(pair), [0.5, 0.5]), "even shares again")


def _metric_share(node: GatewayProcess) -> float:
    with urllib.request.urlopen(f"{node.admin_endpoint}/metrics") as answer:
        samples = o.parse(answer.read().decode())
    return o.value(samples, "skybridge_link_share", link="s1-sw", backend="sw")


def test_each_nodes_share_is_a_metric(pair: Pair) -> None:
    poll(lambda: _close_to(_shares(pair), [0.5, 0.5]), "even shares")
    assert [_metric_share(node) for node in pair.nodes] == pytest.approx([0.5, 0.5], abs=0.02)


def test_a_node_that_leaves_hands_its_share_back(pair: Pair) -> None:
    pair.nodes[1].stop()
    first = pair.admins[0]
    poll(lambda: _close_to([_link(first)["share"]], [1.0]), "the whole link for the node left")
    assert _link(first)["bandwidth_here_bytes_per_s"] == CAP_BYTES_PER_S
    assert _link(first)["max_concurrency_here"] == CAP_CONCURRENCY
