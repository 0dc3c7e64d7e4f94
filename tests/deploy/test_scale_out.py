"""Issue #8, acceptance 1 and 2: three stateless nodes on one PostgreSQL.

1. A mixed workload runs concurrently through all three nodes, every worker running on
   every node: every object reads back through every node, no version gets a replica twice,
   and the usage counters equal a recount of the rows.
2. PostgreSQL crashes in the middle of load and comes back: meanwhile every request is
   answered 503 (never a broken connection, never a 500), readiness fails, and service
   comes back without restarting a node; every acknowledged write is there afterwards.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tests.deploy.conftest import Cluster
from tests.placement.conftest import md5, multipart_across, poll, read_md5
from tests.servers import random_name

MIB = 1024 * 1024
THREADS = 3
OPERATIONS_PER_THREAD = 60
OUTAGE_S = 5.0
# From PostgreSQL accepting connections again to every node serving writes again.
RECOVERY_LIMIT_S = 15.0


@dataclass
class Worker:
    """One client thread; it owns its keys, so what each key should read is known."""

    cluster: Cluster
    number: int
    buckets: list[str]
    expected: dict[tuple[str, str], bytes | None] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.number)
        self.clients = [self.cluster.client(i) for i in range(len(self.cluster.nodes))]

    def run(self) -> None:
        for index in range(OPERATIONS_PER_THREAD):
            self.step(index, self.clients[(index + self.number) % len(self.clients)])

    def step(self, index: int, s3: Any) -> None:
        live = sorted(k for k, body in self.expected.items() if body is not None)
        roll = self.rng.random()
        if index % 20 == 10:
            self._multipart(index)
        elif roll < 0.15 and live:
            self._delete(s3, self.rng.choice(live))
        elif roll < 0.30 and live:
            self._copy(s3, self.rng.choice(live))
        elif roll < 0.55 and self.expected:
            self._put(s3, self.rng.choice(sorted(self.expected)), "overwrite")
        else:
            self._put(s3, (self.rng.choice(self.buckets), self._key(f"k{index:03d}")), "put")

    def _key(self, name: str) -> str:
        return f"t{self.number}/{name}"

    def _put(self, s3: Any, target: tuple[str, str], kind: str) -> None:
        body = self.rng.randbytes(self.rng.randint(1, 64 * 1024))
        s3.put_object(Bucket=target[0], Key=target[1], Body=body)
        self.expected[target] = body
        self.counts[kind] += 1

    def _delete(self, s3: Any, target: tuple[str, str]) -> None:
        s3.delete_object(Bucket=target[0], Key=target[1])
        self.expected[target] = None
        self.counts["delete"] += 1

    def _copy(self, s3: Any, source: tuple[str, str]) -> None:
        target = (self.rng.choice(self.buckets), self._key(f"copy{self.rng.randrange(10)}"))
        if target == source:
            return
        s3.copy_object(
            Bucket=target[0], Key=target[1], CopySource={"Bucket": source[0], "Key": source[1]}
        )
        self.expected[target] = self.expected[source]
        self.counts["copy"] += 1

    def _multipart(self, index: int) -> None:
        """Created on one node, one part through each other node, completed on the third."""
        bucket, key = self.rng.choice(self.buckets), self._key(f"mpu{index:03d}")
        parts = [self.rng.randbytes(5 * MIB), self.rng.randbytes(100 * 1024)]
        multipart_across([self.clients[(index + i) % 3] for i in range(3)], bucket, key, parts)
        self.expected[(bucket, key)] = b"".join(parts)
        self.counts["multipart"] += 1


def _check_workers_ran_everywhere(cluster: Cluster) -> None:
    wanted = {"gc", "replication", "replacement", "topology", "egress", "probes"}
    for node in cluster.nodes:
        status, workers = cluster.admin_get(node, "/admin/v1/workers")
        assert status == 200, workers
        ran = {w["name"] for w in workers if w["passes"] > 0 and w["last_success_at"]}
        assert wanted <= ran, (node.endpoint, workers)


def test_three_nodes_mixed_workload(cluster: Cluster) -> None:
    versioned, plain = random_name(), random_name()
    cluster.client(0).create_bucket(Bucket=versioned)
    cluster.client(1).create_bucket(Bucket=plain)
    cluster.client(2).put_bucket_versioning(
        Bucket=versioned, VersioningConfiguration={"Status": "Enabled"}
    )
    workers = [Worker(cluster, n, [versioned, plain]) for n in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda w: w.run(), workers))
    counts = sum((w.counts for w in workers), Counter[str]())
    assert set(counts) == {"put", "overwrite", "delete", "copy", "multipart"}, counts

    ledger = cluster.ledger
    for bucket in (versioned, plain):
        ledger.wait_replicated(bucket, replicas=2)
    clients = [cluster.client(i) for i in range(3)]
    for worker in workers:
        for (bucket, key), body in sorted(worker.expected.items()):
            want = None if body is None else md5(body)
            assert [read_md5(s3, bucket, key) for s3 in clients] == [want] * 3, (bucket, key)
    for s3 in clients:
        listed = {o["Key"] for o in s3.list_objects_v2(Bucket=plain).get("Contents", [])}
        assert listed == {k for w in workers for (b, k), v in w.expected.items()
                          if b == plain and v is not None}  # fmt: skip
    # Every node's replication worker claimed from the one queue: no replica twice.
    assert (
        ledger.fetch(
            "SELECT version_pk, backend, count(*) AS n FROM placements"
            " WHERE state IN ('pending', 'ok') GROUP BY version_pk, backend HAVING count(*) > 1"
        )
        == []
    )
    _check_workers_ran_everywhere(cluster)
    code, report = cluster.nodes[2].cli("usage", "--recompute")
    assert (code, report["drift"]) == (0, []), report


# --- acceptance 2: PostgreSQL restarted under load -------------------------------------------


@dataclass
class Outcome:
    at: float
    duration_s: float
    node: int
    op: str
    result: str


@dataclass
class Load:
    """Client threads that PUT then GET fresh keys, round robin over the nodes, until
    stopped; they record every outcome and every acknowledged write."""

    cluster: Cluster
    bucket: str
    outcomes: list[Outcome] = field(default_factory=list)
    acknowledged: dict[str, str] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, thread: int) -> None:
        clients = [self.cluster.client(i) for i in range(3)]
        rng = random.Random(thread)
        index = 0
        while not self.stop.is_set():
            node = (thread + index) % 3
            body = rng.randbytes(rng.randint(1, 32 * 1024))
            self._round(clients, node, f"load/{thread}/{index}", body)
            index += 1
            time.sleep(0.02)

    def _round(self, clients: list[Any], node: int, key: str, body: bytes) -> None:
        """PUT through one node; once acknowledged, HEAD through the next."""
        put = partial(clients[node].put_object, Bucket=self.bucket, Key=key, Body=body)
        if self._call(node, "put", put) == "200":
            with self.lock:
                self.acknowledged[key] = md5(body)
            head = partial(clients[(node + 1) % 3].head_object, Bucket=self.bucket, Key=key)
            self._call((node + 1) % 3, "get", head)

    def _call(self, node: int, op: str, call: Callable[[], Any]) -> str:
        began = time.monotonic()
        try:
            call()
            result = "200"
        except ClientError as exc:
            result = str(exc.response["ResponseMetadata"]["HTTPStatusCode"])
        except BotoCoreError as exc:  # the connection itself failed
            result = type(exc).__name__
        with self.lock:
            self.outcomes.append(Outcome(began, time.monotonic() - began, node, op, result))
        return result


def _ready(cluster: Cluster) -> list[int]:
    return [cluster.admin_get(node, "/readyz")[0] for node in cluster.nodes]


def test_postgres_restart_under_load(cluster: Cluster) -> None:
    bucket = random_name()
    cluster.client(0).create_bucket(Bucket=bucket)
    load = Load(cluster, bucket)
    threads = [threading.Thread(target=load.run, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)
        cluster.postgres.crash()
        down_at = time.monotonic()
        time.sleep(OUTAGE_S / 2)
        assert _ready(cluster) == [503, 503, 503]
        status, body = cluster.admin_get(cluster.nodes[0], "/admin/v1/buckets")
        assert status == 503
        assert body["error"]["code"] == "ServiceUnavailable", body
        time.sleep(OUTAGE_S / 2)
        up_at = time.monotonic()
        cluster.postgres.resume()
        poll(lambda: _recovered(load, up_at), "every node to serve writes again", 30)
        recovered_at = time.monotonic()
        time.sleep(1)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(60)

    results = Counter(o.result for o in load.outcomes)
    slowest = max(o.duration_s for o in load.outcomes if down_at < o.at < up_at)
    # Requests wholly inside the outage; one that spans its end may well succeed.
    during = Counter(
        o.result for o in load.outcomes if down_at < o.at and o.at + o.duration_s < up_at
    )
    print(f"outcomes {dict(results)}; while down {dict(during)}, slowest {slowest:.2f} s;"
          f" recovered {recovered_at - up_at:.2f} s after PostgreSQL was back")  # fmt: skip
    assert set(results) <= {"200", "503"}, results
    assert set(during) == {"503"}, during
    assert recovered_at - up_at < RECOVERY_LIMIT_S
    assert _ready(cluster) == [200, 200, 200]

    s3 = cluster.client(1)
    missing = [k for k, digest in load.acknowledged.items() if read_md5(s3, bucket, k) != digest]
    assert missing == [], f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
    # The workers kept running through the outage: the new writes get their async replica.
    cluster.ledger.wait_replicated(bucket, replicas=2)


def _recovered(load: Load, since: float) -> bool:
    with load.lock:
        served = {o.node for o in load.outcomes if o.at > since and o.op == "put"
                  and o.result == "200"}  # fmt: skip
    return served == {0, 1, 2}
