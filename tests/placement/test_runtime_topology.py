"""Backends and links added, changed and removed through the admin API, on a running node.

A second bucket of the moto server becomes backend ``mo2`` at site s4, reached from s1 over
a link through a proxy the test controls. Writes land there once a policy names it; the
link's settings change the open link; removing the link falls back to a direct path;
deleting the backend is refused while anything is stored on it, and done once re-placement
has moved its data off. Bad input changes nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.admin.client import AdminClient
from tests.conftest import client_for
from tests.gateway_process import GatewayProcess
from tests.netproxy import LinkProxy
from tests.placement.conftest import Ledger, Topology, md5, no_retry_client, poll
from tests.servers import LOOPBACK, make_bucket, random_name, s3_client

SETTLE_S = 10.0  # gateway.services.management.SETTLE_S


@dataclass
class Runtime:
    topology: Topology
    gateway: GatewayProcess
    admin: AdminClient
    ledger: Ledger
    s3: Any
    bucket: str
    connection: dict[str, str]
    proxies: list[LinkProxy]


@pytest.fixture(scope="module")
def runtime(
    topology_factory: Callable[[], Topology],
    start_module_gateway: Callable[..., GatewayProcess],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Runtime]:
    topology = topology_factory()
    config = topology.config()
    config["replication"]["replacement_interval_s"] = 3600  # passes only when asked
    gateway = start_module_gateway(config)
    moto = topology.moto
    bucket = random_name("sb-mo2-")
    make_bucket(moto.endpoint_url, moto.access_key, moto.secret_key, bucket)
    secrets_dir = tmp_path_factory.mktemp("mo2-credentials")
    (secrets_dir / "access").write_text(moto.access_key)
    (secrets_dir / "secret").write_text(moto.secret_key)
    connection = {
        "endpoint": moto.endpoint_url,
        "bucket": bucket,
        "access_key_file": str(secrets_dir / "access"),
        "secret_key_file": str(secrets_dir / "secret"),
    }
    proxies = [LinkProxy(LOOPBACK, moto.port), LinkProxy(LOOPBACK, moto.port)]
    for proxy in proxies:
        proxy.start()
    yield Runtime(
        topology, gateway, AdminClient.of(gateway), Ledger(gateway.database_url),
        client_for(gateway), bucket, connection, proxies,
    )  # fmt: skip
    for proxy in proxies:
        proxy.stop()


def _stored_keys(runtime: Runtime) -> set[str]:
    moto = runtime.topology.moto
    listed = s3_client(moto.endpoint_url, moto.access_key, moto.secret_key).list_objects_v2(
        Bucket=runtime.bucket
    )
    return {item["Key"] for item in listed.get("Contents", [])}


def _placed_on(runtime: Runtime, backend: str) -> int:
    return int(
        runtime.ledger.value(
            "SELECT count(*) FROM placements WHERE backend = $1 AND state IN ('pending', 'ok')",
            backend,
        )
    )


def test_inline_credentials_are_refused_and_change_nothing(runtime: Runtime) -> None:
    before = runtime.admin.ok("GET", "/backends")
    body = {
        "name": "leaky", "site": "s4", "driver": "s3",
        "connection": {**runtime.connection, "secret_key": "in-clear"},
    }  # fmt: skip
    status, answer = runtime.admin.call("POST", "/backends", body)
    assert (status, answer["error"]["code"]) == (422, "Unprocessable")
    assert "reference" in answer["error"]["message"]
    status, answer = runtime.admin.call(
        "POST", "/backends", {"name": "nowhere", "site": "s4", "driver": "s3", "connection": {}}
    )
    assert (status, answer["error"]["code"]) == (422, "Unprocessable")
    for path in ("/etc", "../outside", "a/../../b"):
        status, answer = runtime.admin.call(
            "POST", "/backends",
            {"name": "disk", "site": "s1", "driver": "localfs", "connection": {"path": path}},
        )  # fmt: skip
        assert (status, answer["error"]["code"]) == (422, "Unprocessable"), path
    status, _ = runtime.admin.call(
        "POST", "/links", {"name": "s1-ghost", "site": "s1", "backend": "ghost"}
    )
    assert status == 422
    assert runtime.admin.ok("GET", "/backends") == before
    assert runtime.admin.call("GET", "/links/s1-ghost")[0] == 404


def test_backend_and_link_added_at_runtime_take_writes(runtime: Runtime) -> None:
    admin = runtime.admin
    new = {"name": "mo2", "site": "s4", "driver": "s3", "connection": runtime.connection}
    created = admin.ok("POST", "/backends", new)
    assert (created["reachable_here"], created["links"]) == (True, ["direct:mo2"])
    assert admin.call("POST", "/backends", new)[0] == 409
    link = admin.ok(
        "POST",
        "/links",
        {"name": "s1-mo2", "site": "s1", "backend": "mo2", "endpoint": runtime.proxies[0].url,
         "first_byte_timeout_s": 2, "rtt_ms": 30, "cost_per_gib": 0.02},
    )  # fmt: skip
    assert (link["live"], link["circuit"], link["rtt_ms"]) == (True, "closed", 30)
    assert admin.ok("GET", "/backends/mo2")["links"] == ["s1-mo2"]

    admin.ok("PUT", "/policies/to-mo2", {"rules": [
        {"name": "here-and-mo2", "replicas": [{"backend": "local"}, {"backend": "mo2"}]}
    ]})  # fmt: skip
    bucket = random_name()
    runtime.s3.create_bucket(Bucket=bucket)
    admin.ok("PUT", f"/buckets/{bucket}/placement", {"policy": "to-mo2"})
    carried = runtime.proxies[0].bytes_up
    bodies = {f"k{i}": os.urandom(20_000 + i) for i in range(4)}
    for key, body in bodies.items():
        runtime.s3.put_object(Bucket=bucket, Key=key, Body=body)
    poll(lambda: _placed_on(runtime, "mo2") == len(bodies), "copies on mo2")
    assert len(_stored_keys(runtime)) == len(bodies)
    # Every byte went over the new link, whose proxy saw the bodies pass.
    assert runtime.proxies[0].bytes_up - carried >= sum(len(b) for b in bodies.values())
    for key, body in bodies.items():
        assert md5(runtime.s3.get_object(Bucket=bucket, Key=key)["Body"].read()) == md5(body)


def test_link_settings_change_the_open_link(runtime: Runtime) -> None:
    admin = runtime.admin
    changed = admin.ok(
        "PATCH",
        "/links/s1-mo2",
        {"max_concurrency": 3, "bandwidth_bytes_per_s": 50_000_000,
         "endpoint": runtime.proxies[1].url},
    )  # fmt: skip
    assert changed["max_concurrency"] == 3
    # One node alone on the link: its share becomes the whole cap (one reading after the
    # link got capped, since a node takes more share only at its next reading).
    poll(
        lambda: admin.ok("GET", "/links/s1-mo2")["bandwidth_here_bytes_per_s"] == 50_000_000,
        "the whole link for the only node",
    )
    assert admin.ok("GET", "/links/s1-mo2")["max_concurrency_here"] == 3
    assert admin.call("PATCH", "/links/s1-mo2", {"max_concurrency": 0})[0] == 400
    assert admin.call("PATCH", "/links/nope", {"rtt_ms": 1})[0] == 404
    # The new endpoint carries the next writes; the old path carries nothing more.
    old, new = runtime.proxies[0].bytes_up, runtime.proxies[1].bytes_up
    bucket = _bucket_on(runtime, "to-mo2")
    runtime.s3.put_object(Bucket=bucket, Key="via-new", Body=os.urandom(30_000))
    poll(lambda: runtime.proxies[1].bytes_up - new >= 30_000, "the write over the new path")
    assert runtime.proxies[0].bytes_up == old


def _bucket_on(runtime: Runtime, policy: str) -> str:
    bucket = random_name()
    runtime.s3.create_bucket(Bucket=bucket)
    runtime.admin.ok("PUT", f"/buckets/{bucket}/placement", {"policy": policy})
    return bucket


def test_deleted_link_gives_way_to_the_next(runtime: Runtime) -> None:
    admin = runtime.admin
    admin.ok(
        "POST",
        "/links",
        {"name": "s1-mo2-internet", "site": "s1", "backend": "mo2", "position": 1,
         "endpoint": runtime.proxies[0].url, "cost_per_gib": 0.09},
    )  # fmt: skip
    assert admin.ok("GET", "/backends/mo2")["links"] == ["s1-mo2", "s1-mo2-internet"]
    assert admin.ok("DELETE", "/links/s1-mo2") == {"deleted": "s1-mo2"}
    assert admin.call("DELETE", "/links/s1-mo2")[0] == 404
    assert admin.ok("GET", "/backends/mo2")["links"] == ["s1-mo2-internet"]
    carried, idle = runtime.proxies[0].bytes_up, runtime.proxies[1].bytes_up
    bucket = _bucket_on(runtime, "to-mo2")
    body = os.urandom(10_000)
    runtime.s3.put_object(Bucket=bucket, Key="fallback", Body=body)
    assert md5(runtime.s3.get_object(Bucket=bucket, Key="fallback")["Body"].read()) == md5(body)
    assert runtime.proxies[0].bytes_up - carried >= len(body)
    assert runtime.proxies[1].bytes_up == idle

    # With no link left, s1 has no path to mo2 at site s4: writes that need it are refused
    # and leave nothing behind.
    admin.ok("DELETE", "/links/s1-mo2-internet")
    status = _put_status(runtime, bucket, "no-path")
    assert status == 503
    assert runtime.s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 1
    admin.ok(
        "POST",
        "/links",
        {"name": "s1-mo2", "site": "s1", "backend": "mo2", "endpoint": runtime.proxies[1].url},
    )
    runtime.s3.put_object(Bucket=bucket, Key="path-again", Body=body)


def _put_status(runtime: Runtime, bucket: str, key: str) -> int:
    s3 = no_retry_client(runtime.gateway)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    except s3.exceptions.ClientError as exc:
        return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])
    return 200


def test_backend_is_deleted_only_once_nothing_is_stored_on_it(runtime: Runtime) -> None:
    admin = runtime.admin
    status, answer = admin.call("DELETE", "/backends/mo2")
    assert (status, answer["error"]["code"]) == (409, "Conflict")
    assert "draining" in answer["error"]["message"]
    drained_at = time.monotonic()
    admin.ok("PATCH", "/backends/mo2", {"state": "draining"})
    status, answer = admin.call("DELETE", "/backends/mo2")
    assert status == 409  # nodes may still write to it, and it holds data
    # The policy gives mo2 up: re-placement copies its replicas to sw, then retires them.
    admin.ok("PUT", "/policies/to-mo2", {"rules": [
        {"name": "here-and-sw", "replicas": [{"backend": "local"}, {"backend": "sw"}]}
    ]})  # fmt: skip
    on_mo2 = _placed_on(runtime, "mo2")
    code, moved = runtime.gateway.cli("rebalance")
    assert (code, moved["copies"], moved["retirements"]) == (0, on_mo2, 0), moved
    # The copies go through the replication queue; mo2's replicas are retired by the next
    # pass, once the copies exist.
    poll(lambda: _placed_on(runtime, "sw") == on_mo2, "the copies on sw")
    code, moved = runtime.gateway.cli("rebalance")
    assert (code, moved["copies"], moved["retirements"]) == (0, 0, on_mo2), moved
    assert _placed_on(runtime, "mo2") == 0
    poll(lambda: runtime.ledger.deletions_length() == 0, "mo2's bytes deleted")
    time.sleep(max(0.0, SETTLE_S - (time.monotonic() - drained_at)) + 0.5)
    assert admin.ok("DELETE", "/backends/mo2") == {"deleted": "mo2"}
    assert admin.call("GET", "/backends/mo2")[0] == 404
    assert _stored_keys(runtime) == set()
    # Everything written through mo2 still reads back from its other replicas.
    rows = runtime.ledger.fetch(
        "SELECT b.name AS bucket, v.key FROM object_versions v JOIN buckets b"
        " ON b.id = v.bucket_id WHERE b.placement_policy = 'to-mo2' AND v.is_latest"
    )
    assert rows
    for row in rows:
        assert runtime.s3.get_object(Bucket=row["bucket"], Key=row["key"])["Body"].read()


def _latest_on(runtime: Runtime, bucket: str, key: str) -> set[str]:
    rows = runtime.ledger.fetch(
        "SELECT p.backend FROM placements p JOIN object_versions v ON v.id = p.version_pk"
        " JOIN buckets b ON b.id = v.bucket_id WHERE b.name = $1 AND v.key = $2"
        " AND v.is_latest AND p.state IN ('pending', 'ok')",
        bucket,
        key,
    )
    return {r["backend"] for r in rows}


def test_policies_attached_to_prefixes_place_new_writes(runtime: Runtime) -> None:
    admin, s3 = runtime.admin, runtime.s3
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    admin.ok("PUT", f"/buckets/{bucket}/placement", {"policy": "remote-pair", "prefix": "r/"})
    answer = admin.ok(
        "PUT", f"/buckets/{bucket}/placement", {"policy": "all-sync", "prefix": "r/both/"}
    )
    assert answer["prefix_policies"] == {"r/": "remote-pair", "r/both/": "all-sync"}
    assert answer["placement_policy"] is None
    for key in ("r/a", "r/both/a", "other", "r"):
        s3.put_object(Bucket=bucket, Key=key, Body=os.urandom(4000))
    # The longest attached prefix decides; other keys follow the bucket's (default) policy.
    assert _latest_on(runtime, bucket, "r/a") == {"sw", "mo"}
    assert _latest_on(runtime, bucket, "r/both/a") == {"local", "sw"}
    poll(lambda: _latest_on(runtime, bucket, "other") == {"local", "sw", "mo"}, "default's")
    assert "local" in _latest_on(runtime, bucket, "r")

    # A policy in use by a prefix is not deleted; a detached prefix follows the bucket again.
    assert admin.call("DELETE", "/policies/remote-pair")[0] == 409
    assert (
        admin.call("PUT", f"/buckets/{bucket}/placement", {"policy": None, "prefix": "nope/"})[0]
        == 404
    )
    assert (
        admin.call("PUT", f"/buckets/{bucket}/placement", {"policy": "ghost", "prefix": "r/"})[0]
        == 404
    )
    answer = admin.ok("PUT", f"/buckets/{bucket}/placement", {"policy": None, "prefix": "r/"})
    assert answer["prefix_policies"] == {"r/both/": "all-sync"}
    s3.put_object(Bucket=bucket, Key="r/a", Body=b"again")
    assert "local" in _latest_on(runtime, bucket, "r/a")
