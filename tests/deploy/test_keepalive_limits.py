"""Keep-alive limits of the S3 listener (issue #8): header size, idle timeout, and the
number of connections one process serves at once."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import gateway_config
from tests.gateway_process import GatewayProcess
from tests.servers import LOOPBACK

MAX_HEADER_BYTES = 4096
IDLE_TIMEOUT_S = 2.0
MAX_CONNECTIONS = 2


@pytest.fixture(scope="module")
def limited(
    start_gateway: Callable[..., GatewayProcess], tmp_path_factory: pytest.TempPathFactory
) -> GatewayProcess:
    backend = {"name": "local", "driver": "localfs",
               "path": str(tmp_path_factory.mktemp("limits") / "store")}  # fmt: skip
    server = {"max_header_bytes": MAX_HEADER_BYTES, "idle_timeout_s": IDLE_TIMEOUT_S,
              "max_connections": MAX_CONNECTIONS}  # fmt: skip
    return start_gateway(gateway_config(backend, server=server))


@pytest.fixture
def connections(limited: GatewayProcess) -> Iterator[list[http.client.HTTPConnection]]:
    opened: list[http.client.HTTPConnection] = []
    yield opened
    for connection in opened:
        connection.close()
    # Let the gateway see them closed before the next test counts connections.
    time.sleep(0.2)


def _get(connection: http.client.HTTPConnection, headers: dict[str, str]) -> tuple[int, bytes]:
    connection.request("GET", "/", headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


def test_a_header_over_the_limit_is_refused(
    limited: GatewayProcess, connections: list[http.client.HTTPConnection]
) -> None:
    connections.append(http.client.HTTPConnection(LOOPBACK, limited.port, timeout=10))
    # Anonymous ListBuckets: 403 means the request was parsed and routed.
    assert _get(connections[0], {"x-long": "a" * (MAX_HEADER_BYTES - 100)})[0] == 403
    connections.append(http.client.HTTPConnection(LOOPBACK, limited.port, timeout=10))
    status, _ = _get(connections[1], {"x-long": "a" * (MAX_HEADER_BYTES + 100)})
    assert status in (400, 431)


def _closed_by_peer(sock: socket.socket, within_s: float) -> float:
    """Seconds until the peer closed ``sock``; fails if it stays open ``within_s``."""
    began = time.monotonic()
    sock.settimeout(within_s)
    assert sock.recv(1024) == b""
    return time.monotonic() - began


@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: x\r\n"], ids=["silent", "slow"])
def test_an_idle_connection_is_closed(limited: GatewayProcess, sent: bytes) -> None:
    """Silent after connecting, or stalled in the middle of a request head (slowloris)."""
    with socket.create_connection((LOOPBACK, limited.port), timeout=5) as sock:
        sock.sendall(sent)
        waited = _closed_by_peer(sock, IDLE_TIMEOUT_S + 5)
    assert IDLE_TIMEOUT_S - 0.5 < waited < IDLE_TIMEOUT_S + 2


def test_connections_beyond_the_limit_get_slow_down(
    limited: GatewayProcess, connections: list[http.client.HTTPConnection]
) -> None:
    for _ in range(MAX_CONNECTIONS):
        connections.append(http.client.HTTPConnection(LOOPBACK, limited.port, timeout=10))
        assert _get(connections[-1], {})[0] == 403  # kept alive: still counted
    extra = http.client.HTTPConnection(LOOPBACK, limited.port, timeout=10)
    connections.append(extra)
    extra.request("GET", "/")
    response = extra.getresponse()
    assert response.status == 503
    assert b"<Code>SlowDown</Code>" in response.read()
    assert response.getheader("Connection") == "close"
    # A slot is freed: the next connection is served.
    connections[0].close()
    time.sleep(0.2)
    again = http.client.HTTPConnection(LOOPBACK, limited.port, timeout=10)
    connections.append(again)
    assert _get(again, {})[0] == 403
