"""Virtual-hosted-style requests (bucket.domain), with the domain from configuration."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.conftest import gateway_config
from tests.gateway_process import GatewayProcess
from tests.servers import random_name

DOMAIN = "s3.skybridge.test"


@pytest.fixture
def loopback_domain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve DOMAIN and its subdomains to loopback in this process only; the requests
    still travel over real TCP to the gateway."""
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and (host == DOMAIN or host.endswith("." + DOMAIN)):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def test_virtual_hosted_style(
    start_test_gateway: Callable[..., GatewayProcess], tmp_path: Path, loopback_domain: None
) -> None:
    backend = {"name": "localfs", "driver": "localfs", "path": str(tmp_path / "store")}
    gateway = start_test_gateway(gateway_config(backend, server={"domain": DOMAIN}))
    sent: list[str] = []
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{DOMAIN}:{gateway.port}",
        aws_access_key_id=gateway.access_key,
        aws_secret_access_key=gateway.secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "virtual"}),
    )
    s3.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.url))
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dir/obj name", Body=b"virtual")
    assert s3.get_object(Bucket=bucket, Key="dir/obj name")["Body"].read() == b"virtual"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="dir/")["Contents"]]
    assert keys == ["dir/obj name"]
    # Every request really named the bucket in the host, not in the path.
    assert sent
    assert all(url.startswith(f"http://{bucket}.{DOMAIN}:") for url in sent)
    # Path style keeps working on the same node.
    path_style = boto3.client(
        "s3", endpoint_url=gateway.endpoint, aws_access_key_id=gateway.access_key,
        aws_secret_access_key=gateway.secret_key, region_name="us-east-1",
    )  # fmt: skip
    assert path_style.get_object(Bucket=bucket, Key="dir/obj name")["Body"].read() == b"virtual"
