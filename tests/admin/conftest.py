"""A gateway over the three-site placement topology, with some data, for the admin tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.admin.client import AdminClient
from tests.conftest import client_for
from tests.gateway_process import GatewayProcess
from tests.placement.conftest import Topology
from tests.servers import MotoServer, SeaweedServer

BUCKET = "admin-data"


@pytest.fixture(scope="module")
def topology(
    seaweedfs_server: SeaweedServer,
    moto_server: MotoServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Topology]:
    made = Topology(tmp_path_factory.mktemp("admin-topology"), seaweedfs_server, moto_server)
    made.open()
    yield made
    made.close()


@pytest.fixture(scope="module")
def admin_gateway(
    topology: Topology, start_module_gateway: Callable[..., GatewayProcess]
) -> GatewayProcess:
    gateway = start_module_gateway(topology.config())
    s3 = client_for(gateway)
    s3.create_bucket(Bucket=BUCKET)
    for n in range(5):
        s3.put_object(Bucket=BUCKET, Key=f"dir/object-{n}", Body=b"x" * (1000 + n))
    wait_replicated(AdminClient.of(gateway))
    return gateway


def wait_replicated(admin: AdminClient, timeout_s: float = 30) -> None:
    """Until the replication queue is empty, so that the state tests compare is settled."""
    deadline = time.monotonic() + timeout_s
    while admin.ok("GET", "/replication")["depth"]:
        assert time.monotonic() < deadline, admin.ok("GET", "/replication")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def s3_admin(admin_gateway: GatewayProcess) -> Any:
    return client_for(admin_gateway)
