"""TLS on both listeners (issue #8): clients that trust the test CA work; a plain-HTTP
request to a TLS port fails at once, without an HTTP answer, and the node keeps serving."""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Callable

import pytest

from tests.admin.client import AdminClient
from tests.certs import TestCertificates
from tests.clients.test_tls import tls_client
from tests.conftest import gateway_config
from tests.gateway_process import GatewayProcess
from tests.servers import LOOPBACK, random_name

# A request to a TLS port must fail this fast, not hang until some timeout.
CLEAN_FAILURE_S = 5.0


@pytest.fixture(scope="module")
def tls_both(
    start_gateway: Callable[..., GatewayProcess],
    tmp_path_factory: pytest.TempPathFactory,
    certificates: TestCertificates,
) -> GatewayProcess:
    """TLS on the S3 listener and on the admin listener."""
    tls = {"cert_file": str(certificates.cert_file), "key_file": str(certificates.key_file)}
    backend = {"name": "local", "driver": "localfs",
               "path": str(tmp_path_factory.mktemp("tls-both") / "store")}  # fmt: skip
    return start_gateway(gateway_config(backend, server={"tls": tls}, admin={"tls": tls}))


def _plain_http_fails(port: int) -> None:
    """An HTTP request on a TLS port: the connection ends with no HTTP response at all."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=CLEAN_FAILURE_S)
    try:
        connection.request("GET", "/")
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            connection.getresponse()
    finally:
        connection.close()


def test_boto3_verifies_the_s3_listener_against_the_test_ca(
    tls_both: GatewayProcess, certificates: TestCertificates
) -> None:
    s3 = tls_client(tls_both, certificates)
    bucket = random_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"over tls")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"over tls"


def test_an_untrusted_client_is_refused(tls_both: GatewayProcess) -> None:
    context = ssl.create_default_context()  # the system CAs only
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection((LOOPBACK, tls_both.port), timeout=CLEAN_FAILURE_S) as sock,
    ):
        context.wrap_socket(sock, server_hostname=LOOPBACK)


@pytest.mark.parametrize("listener", ["s3", "admin"])
def test_plain_http_to_a_tls_port_fails_cleanly(
    tls_both: GatewayProcess, certificates: TestCertificates, listener: str
) -> None:
    _plain_http_fails(tls_both.port if listener == "s3" else tls_both.admin_port)
    # The node is unharmed and logged no traceback for it.
    assert _admin(tls_both, certificates, "").call("GET", "/healthz")[0] == 200
    assert "Traceback" not in tls_both.log_tail(200)


def _admin(gateway: GatewayProcess, certificates: TestCertificates, prefix: str) -> AdminClient:
    context = ssl.create_default_context(cafile=str(certificates.ca_file))
    return AdminClient(gateway.admin_endpoint, gateway.admin_token, prefix, context)


def test_admin_listener_over_tls(tls_both: GatewayProcess, certificates: TestCertificates) -> None:
    assert tls_both.admin_endpoint.startswith("https://")
    probes = _admin(tls_both, certificates, "")
    assert probes.call("GET", "/readyz") == (200, {"status": "ready"})
    status, health = _admin(tls_both, certificates, "/admin/v1").call("GET", "/health")
    assert (status, health["status"]) == (200, "ok")
