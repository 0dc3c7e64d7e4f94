"""Three gateway nodes on a PostgreSQL of their own that the tests can stop and start.

The cluster runs at two sites: nodes n1 and n2 at s1, node n3 at s2. ``sw`` (SeaweedFS,
site s2) takes every write synchronously; ``mo`` (moto, site s3) gets an asynchronous
replica through the replication queue, so every node's replication worker has work.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.admin.client import AdminClient
from tests.conftest import run_sync
from tests.gateway_process import GatewayProcess
from tests.placement.conftest import Ledger, no_retry_client
from tests.servers import (
    _AS_POSTGRES,
    LOOPBACK,
    MotoServer,
    PostgresServer,
    SeaweedServer,
    fresh_database,
    make_bucket,
    random_name,
)

NODE_SITES = (("n1", "s1"), ("n2", "s1"), ("n3", "s2"))


class RestartablePostgres(PostgresServer):
    """A throwaway cluster (Debian's initdb and pg_ctl) on a free port, never the shared
    one: ``crash`` kills it as a power loss would, ``resume`` starts it again."""

    def __init__(self) -> None:
        super().__init__(reuse_default=False)

    def start(self) -> None:
        super().start()
        if self.kind != "debian":
            pytest.skip("restarting PostgreSQL needs Debian's pg_ctl (postgresql-15)")

    @property
    def port(self) -> int:
        port = urlsplit(self.dsn).port
        assert port is not None
        return port

    def _ctl(self, *args: str) -> None:
        assert self._pg_ctl is not None
        assert self.tmpdir is not None
        command = [*_AS_POSTGRES, self._pg_ctl, "-D", str(self.tmpdir / "data"), *args]
        subprocess.run(command, capture_output=True, check=True, timeout=60)

    def crash(self) -> None:
        """Immediate shutdown: no checkpoint, every connection cut (crash recovery follows)."""
        self._ctl("-m", "immediate", "-w", "stop")

    def resume(self) -> None:
        assert self.tmpdir is not None
        options = f"-p {self.port} -k {self.tmpdir} -c listen_addresses={LOOPBACK} -c fsync=off"
        self._ctl("-l", str(self.tmpdir / "postgres.log"), "-w", "-o", options, "start")


@dataclass
class Cluster:
    postgres: RestartablePostgres
    nodes: list[GatewayProcess]
    ledger: Ledger
    seaweedfs: SeaweedServer
    moto: MotoServer
    buckets: dict[str, str]

    def client(self, index: int) -> Any:
        return no_retry_client(self.nodes[index % len(self.nodes)])

    @property
    def endpoints(self) -> list[str]:
        return [node.endpoint for node in self.nodes]

    def admin_get(self, node: GatewayProcess, path: str) -> tuple[int, Any]:
        """(status, JSON body) of a GET on the node's admin listener, with its token."""
        return AdminClient(node.admin_endpoint, node.admin_token, prefix="").call("GET", path)


def cluster_config(
    site: str, seaweedfs: SeaweedServer, moto: MotoServer, buckets: dict[str, str]
) -> dict[str, Any]:
    backends = [
        {"name": name, "driver": "s3", "site": where, "endpoint": server.endpoint_url,
         "bucket": buckets[name], "access_key": server.access_key,
         "secret_key": server.secret_key}
        for name, where, server in (("sw", "s2", seaweedfs), ("mo", "s3", moto))
    ]  # fmt: skip
    links = [
        {"name": f"{src}-{name}", "site": src, "backend": name, "rtt_ms": 5, "cost_per_gib": 0.01}
        for src, name in (("s1", "sw"), ("s1", "mo"), ("s2", "mo"))
    ]
    policy = {
        "name": "default",
        "rules": [
            {
                "name": "sw-then-mo",
                "replicas": [{"backend": "sw"}, {"backend": "mo", "async": True}],
                "write_mode": "all",
                "distinct_sites": True,
            }
        ],
    }
    return {
        "site": site,
        "backends": backends,
        "default_backend": "sw",
        "links": links,
        "placement_policies": [policy],
        "replication": {
            "interval_s": 0.2,
            "retry_base_delay_s": 0.2,
            "retry_max_delay_s": 1,
            "replacement_interval_s": 1,
            "probe_interval_s": 1,
        },  # fmt: skip
        "gc": {"interval_s": 0.5, "deletion_delay_s": 0, "pending_timeout_s": 3600},
        "server": {"shutdown_timeout_s": 30},
    }


@pytest.fixture(scope="module")
def restartable_postgres() -> Iterator[RestartablePostgres]:
    with RestartablePostgres() as server:
        yield server


@pytest.fixture(scope="module")
def cluster(
    restartable_postgres: RestartablePostgres,
    seaweedfs_server: SeaweedServer,
    moto_server: MotoServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    dsn, _drop = run_sync(lambda: fresh_database(restartable_postgres.dsn))
    buckets = {"sw": random_name("sb-scale-"), "mo": random_name("sb-scale-")}
    for name, server in (("sw", seaweedfs_server), ("mo", moto_server)):
        make_bucket(server.endpoint_url, server.access_key, server.secret_key, buckets[name])
    nodes: list[GatewayProcess] = []
    try:
        for name, site in NODE_SITES:
            config = cluster_config(site, seaweedfs_server, moto_server, buckets)
            node = GatewayProcess(Path(tmp_path_factory.mktemp(name)), dsn, config)
            nodes.append(node)
            node.start()
        yield Cluster(
            restartable_postgres, nodes, Ledger(dsn), seaweedfs_server, moto_server, buckets
        )
    finally:
        for node in nodes:
            node.stop()
