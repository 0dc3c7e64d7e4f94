"""Acceptance 6 of issue #3, scaled for CI: two gateway nodes share one PostgreSQL.

Both run every worker. Mixed operations alternate between the nodes while the sw link is
cut and restored; afterwards every acknowledged object reads back from both nodes, every
version has its replicas exactly once, and the ledger matches what the backends hold.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.gateway_process import GatewayProcess
from tests.placement.conftest import (
    Ledger,
    Topology,
    md5,
    multipart_across,
    no_retry_client,
    poll,
    read_md5,
)
from tests.servers import random_name

MIB = 1024 * 1024
N_OPERATIONS = 500
# Operation index -> link change, on the link to sw (synchronous) or mo (asynchronous).
LINK_EVENTS = {40: ("sw", "cut"), 70: ("sw", "restore"), 100: ("mo", "cut"),
               120: ("mo", "restore"), 140: ("sw", "cut"), 160: ("sw", "restore")}  # fmt: skip


@dataclass
class Pair:
    topology: Topology
    nodes: list[GatewayProcess]
    clients: list[Any]
    ledger: Ledger


@pytest.fixture(scope="module")
def pair(
    topology_factory: Callable[[], Topology], start_module_gateway: Callable[..., GatewayProcess]
) -> Iterator[Pair]:
    topology = topology_factory()
    first = start_module_gateway(topology.config())
    second = start_module_gateway(topology.config(), database_url=first.database_url)
    nodes = [first, second]
    yield Pair(topology, nodes, [no_retry_client(n) for n in nodes], Ledger(first.database_url))
    topology.restore()


@dataclass
class Workload:
    """Random operations against the pair, remembering what every key should read."""

    pair: Pair
    rng: random.Random
    buckets: list[str]
    expected: dict[tuple[str, str], bytes | None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def run(self, index: int) -> None:
        s3 = self.pair.clients[index % 2]
        roll = self.rng.random()
        live = [bk for bk, body in self.expected.items() if body is not None]
        if index % 50 == 25:
            self._multipart(index)
        elif roll < 0.15 and live:
            self._delete(s3, self.rng.choice(live))
        elif roll < 0.30 and live:
            self._copy(s3, self.rng.choice(live))
        elif roll < 0.55 and self.expected:
            self._put(s3, self.rng.choice(sorted(self.expected)), "overwrite")  # or revive
        else:
            self._put(s3, (self.rng.choice(self.buckets), f"k/{index:03d}"), "put")

    def _count(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def _put(self, s3: Any, target: tuple[str, str], kind: str) -> None:
        body = self.rng.randbytes(self.rng.randint(1024, 48 * 1024))
        s3.put_object(Bucket=target[0], Key=target[1], Body=body)
        self.expected[target] = body
        self._count(kind)

    def _delete(self, s3: Any, target: tuple[str, str]) -> None:
        s3.delete_object(Bucket=target[0], Key=target[1])
        self.expected[target] = None
        self._count("delete")

    def _copy(self, s3: Any, source: tuple[str, str]) -> None:
        target = (self.rng.choice(self.buckets), f"copy/{self.rng.randrange(40):02d}")
        s3.copy_object(
            Bucket=target[0], Key=target[1], CopySource={"Bucket": source[0], "Key": source[1]}
        )
        self.expected[target] = self.expected[source]
        self._count("copy")

    def _multipart(self, index: int) -> None:
        """Created on one node, parts through both, completed on the other."""
        bucket, key = self.rng.choice(self.buckets), f"mpu/{index:03d}"
        a, b = self.pair.clients[index % 2], self.pair.clients[(index + 1) % 2]
        parts = [self.rng.randbytes(5 * MIB), self.rng.randbytes(300 * 1024)]
        multipart_across([a, b], bucket, key, parts)
        self.expected[(bucket, key)] = b"".join(parts)
        self._count("multipart")


def _unaccounted_keys(pair: Pair) -> dict[str, set[str]]:
    """Backend keys that no placement, part or queued deletion accounts for (orphans)."""
    ledger, found = pair.ledger, {}
    for backend in ("local", "sw", "mo"):
        known = {
            r["k"]
            for r in ledger.fetch(
                "SELECT unnest(coalesce(segment_keys, ARRAY[backend_key])) AS k"
                " FROM placements WHERE backend = $1"
                " UNION SELECT backend_key FROM backend_deletions WHERE backend = $1"
                " UNION SELECT backend_key FROM multipart_parts WHERE $1 = ANY(backends)",
                backend,
            )
        }
        orphans = pair.topology.keys(backend) - known
        if orphans:
            found[backend] = orphans
    return found


def _due_deletions(ledger: Ledger) -> int:
    return int(ledger.value("SELECT count(*) FROM backend_deletions WHERE not_before <= now()"))


def test_two_nodes_share_one_database(pair: Pair) -> None:
    ledger = pair.ledger
    versioned, plain = random_name(), random_name()
    pair.clients[0].create_bucket(Bucket=versioned)
    pair.clients[1].create_bucket(Bucket=plain)
    pair.clients[1].put_bucket_versioning(
        Bucket=versioned, VersioningConfiguration={"Status": "Enabled"}
    )
    workload = Workload(pair, random.Random(6), [versioned, plain])

    for index in range(N_OPERATIONS):
        if index in LINK_EVENTS:
            backend, action = LINK_EVENTS[index]
            getattr(pair.topology.proxies[backend], action)()
        workload.run(index)
    pair.topology.restore()
    assert set(workload.counts) == {"put", "overwrite", "delete", "copy", "multipart"}
    assert min(workload.counts.values()) >= 4, workload.counts

    for bucket in (versioned, plain):
        ledger.wait_replicated(bucket, replicas=3)
    poll(lambda: _due_deletions(ledger) == 0, "gc to drain the due deletions")

    for (bucket, key), body in sorted(workload.expected.items()):
        want = None if body is None else md5(body)
        for s3 in pair.clients:
            assert read_md5(s3, bucket, key) == want, (bucket, key)
    duplicates = ledger.fetch(
        "SELECT version_pk, backend, count(*) AS n FROM placements"
        " WHERE state IN ('pending', 'ok') GROUP BY version_pk, backend HAVING count(*) > 1"
    )
    assert duplicates == []
    assert ledger.value("SELECT count(*) FROM placements WHERE state <> 'ok'") == 0
    pair.topology.check_ledger_matches_backends(ledger)
    assert ledger.doomed_live_keys() == []
    assert _unaccounted_keys(pair) == {}
