"""Issue #7, acceptance 2: every admin change made through ``skybridge admin`` shows up in
the next read, and in S3 behaviour where it applies."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.admin.client import AdminClient
from tests.admin.conftest import BUCKET, wait_replicated
from tests.conftest import client_for
from tests.gateway_process import REPO, GatewayProcess
from tests.placement.conftest import Topology
from tests.servers import random_name

Cli = Callable[..., Any]


@pytest.fixture(scope="module")
def cli(admin_gateway: GatewayProcess) -> Cli:
    """``skybridge admin --json ARGS`` against the gateway; the decoded answer."""

    def run(*args: str, expect_ok: bool = True, as_json: bool = True) -> Any:
        command = [sys.executable, "-m", "gateway", "admin", "--url",
                   admin_gateway.admin_endpoint, "--token", admin_gateway.admin_token]  # fmt: skip
        done = subprocess.run(
            [*command, *(["--json"] if as_json else []), *args],
            capture_output=True, text=True, timeout=60, check=False,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        assert (done.returncode == 0) == expect_ok, done.stdout + done.stderr
        if not expect_ok:
            return done.stderr
        return json.loads(done.stdout) if as_json else done.stdout

    return run


def _backends_of(cli: Cli, bucket: str, key: str) -> set[str]:
    [version] = cli("get-placements", "--bucket", bucket, "--key", key)
    return {p["backend"] for p in version["placements"] if p["state"] == "ok"}


def test_attaching_a_policy_moves_new_writes(
    cli: Cli, admin_gateway: GatewayProcess, topology: Topology
) -> None:
    policy = {"rules": [{"name": "one", "replicas": [{"backend": "sw"}]}]}
    stored = cli("put-policy", "only-sw", "--body", json.dumps(policy))
    assert (stored["name"], stored["version"]) == ("only-sw", 1)
    assert cli("get-policy", "only-sw")["versions"] == [{"version": 1}]
    s3 = client_for(admin_gateway)
    bucket = random_name("cli-place-")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="before", Body=b"a" * 100)
    wait_replicated(AdminClient.of(admin_gateway))
    assert _backends_of(cli, bucket, "before") == {"local", "sw", "mo"}

    attached = cli("attach-policy", bucket, "--set", "policy=only-sw")
    assert attached["placement_policy"] == "only-sw"
    assert cli("get-bucket", bucket)["effective_policy"] == "only-sw"
    s3.put_object(Bucket=bucket, Key="after", Body=b"b" * 100)
    assert _backends_of(cli, bucket, "after") == {"sw"}
    seaweed = topology.direct_client("sw")
    listed = seaweed.list_objects_v2(Bucket=topology.buckets["sw"]).get("Contents", [])
    assert any(o["Size"] == 100 for o in listed)
    # Detaching restores the default policy for the next write.
    assert cli("attach-policy", bucket, "--set", "policy=null")["placement_policy"] is None
    s3.put_object(Bucket=bucket, Key="again", Body=b"c" * 100)
    assert {"local", "sw"} <= _backends_of(cli, bucket, "again")


def test_quota_set_and_cleared_through_the_cli(cli: Cli, admin_gateway: GatewayProcess) -> None:
    s3 = client_for(admin_gateway, retries={"max_attempts": 1})
    bucket = random_name("cli-quota-")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="first", Body=b"x" * 600)
    # Below current usage: accepted, reported as exceeded, and blocks the next write.
    shown = cli("set-bucket-quota", bucket, "--set", "max_bytes=500")
    assert shown["quota"]["max_bytes"] == 500
    assert shown["quota"]["exceeded"] is True
    assert shown["quota"]["headroom_bytes"] == -100
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="second", Body=b"y" * 10)
    assert refused.value.response["Error"]["Code"] == "QuotaExceeded"
    assert cli("clear-bucket-quota", bucket)["quota"] is None
    s3.put_object(Bucket=bucket, Key="second", Body=b"y" * 10)
    assert cli("get-bucket", bucket)["usage"]["bytes"] == 610


def test_access_keys_made_and_deleted_through_the_cli(
    cli: Cli, admin_gateway: GatewayProcess
) -> None:
    made = cli("create-access-key", "--set", "tenant=team-cli")
    keys = {k["access_key"]: k["tenant"] for k in cli("list-access-keys", "--tenant", "team-cli")}
    assert keys == {made["access_key"]: "team-cli"}
    s3 = boto3.client(
        "s3", endpoint_url=admin_gateway.endpoint, region_name="us-east-1",
        aws_access_key_id=made["access_key"], aws_secret_access_key=made["secret_key"],
        config=Config(retries={"max_attempts": 1}),
    )  # fmt: skip
    bucket = random_name("cli-key-")
    s3.create_bucket(Bucket=bucket)
    assert cli("get-bucket", bucket)["tenant"] == "team-cli"
    assert cli("get-tenant", "team-cli")["buckets"] == 1
    cli("delete-access-key", made["access_key"])
    assert cli("list-access-keys", "--tenant", "team-cli") == []
    deadline = time.monotonic() + 15  # keys are cached per node for a few seconds
    refusal = None
    while refusal is None and time.monotonic() < deadline:
        try:
            s3.list_buckets()
            time.sleep(0.5)
        except ClientError as error:
            refusal = error.response["Error"]["Code"]
    assert refusal == "InvalidAccessKeyId"


def test_paused_replication_holds_the_queue_until_resumed(
    cli: Cli, admin_gateway: GatewayProcess
) -> None:
    paused = cli("pause-worker", "replication")
    assert paused["paused"] is True
    time.sleep(1.5)  # a pass already running finishes; the next one sees the flag
    s3 = client_for(admin_gateway)
    bucket = random_name("cli-pause-")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="held", Body=b"z" * 2048)
    for _ in range(10):
        queue = cli("get-replication")
        assert queue["depth"] == 1, queue
        assert queue["lag_bytes"] == 2048
        time.sleep(0.3)
    assert next(w for w in cli("list-workers") if w["name"] == "replication")["paused"]
    assert cli("resume-worker", "replication")["paused"] is False
    wait_replicated(AdminClient.of(admin_gateway))
    assert _backends_of(cli, bucket, "held") == {"local", "sw", "mo"}


def test_backend_state_and_sites_through_the_cli(cli: Cli) -> None:
    assert cli("update-backend", "mo", "--set", "state=read-only")["state"] == "read-only"
    assert cli("get-backend", "mo")["state"] == "read-only"
    assert cli("update-backend", "mo", "--set", "state=active")["state"] == "active"
    assert cli("create-site", "--set", "name=s9")["backends"] == []
    assert "s9" in {s["name"] for s in cli("list-sites")}
    cli("delete-site", "s9")
    assert "s9" not in {s["name"] for s in cli("list-sites")}
    assert "409" in cli("delete-site", "s1", expect_ok=False)


def test_tables_for_people_and_clear_errors(cli: Cli) -> None:
    table = cli("list-backends", as_json=False)
    header, *rows = table.splitlines()
    assert header.split()[:3] == ["NAME", "SITE", "DRIVER"]
    assert sorted(row.split()[0] for row in rows) == ["local", "mo", "sw"]
    assert "404 NotFound: no backend named nope" in cli("get-backend", "nope", expect_ok=False)
    refused = cli("put-policy", "bad", "--body", '{"rules": [{"name": "r", "replicas":'
                  ' [{"backend": "nowhere"}]}]}', expect_ok=False)  # fmt: skip
    assert "422 Unprocessable: placement policy refused" in refused


def test_warmup_jobs_from_the_cli(cli: Cli, admin_gateway: GatewayProcess) -> None:
    # Every object of the bucket is on sw (site s2) already: done from the start.
    made = cli("create-warmup-job", "--set", f"bucket={BUCKET}", "--set", "prefix=dir/",
               "--set", "site=s2", "--set", "duration_s=600")  # fmt: skip
    assert (made["backend"], made["state"], made["objects_total"]) == ("sw", "ready", 5)
    assert made["objects_done"] == made["objects_total"]
    assert cli("get-warmup-job", str(made["id"])) == made
    assert [job["id"] for job in cli("list-warmup-jobs")] == [made["id"]]
    cancelled = cli("cancel-warmup-job", str(made["id"]))
    assert (cancelled["state"], cancelled["objects_done"]) == ("cancelled", 5)
    refused = cli("create-warmup-job", "--set", f"bucket={BUCKET}", "--set", "site=s2",
                  "--set", "duration_s=600", "--set", "backend=mo", expect_ok=False)  # fmt: skip
    assert "422" in refused or "Unprocessable" in refused, refused
