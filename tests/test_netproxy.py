"""LinkProxy against a real HTTP upstream on loopback: every control, mid-stream."""

from __future__ import annotations

import hashlib
import http.client
import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from tests.netproxy import BURST_S, LOOPBACK, LinkProxy

MIB = 1024 * 1024
_SLICE_BYTES = 64 * 1024
_POLL_TIMEOUT_S = 5.0


def _pattern(n: int) -> bytes:
    """Deterministic bytes whose period (251) matches no buffer size, so a shift shows."""
    return (bytes(range(251)) * (n // 251 + 1))[:n]


@dataclass(frozen=True)
class _Upload:
    declared_bytes: int
    received_bytes: int


class _Upstream(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.uploads: list[_Upload] = []

    def handle_error(self, request: object, client_address: object) -> None:
        """A client the proxy reset is expected here, not a failure."""


class _Handler(http.server.BaseHTTPRequestHandler):
    """``GET /blob/N`` sends N pattern bytes; ``PUT /sha256`` answers the body's digest."""

    server: _Upstream

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        size = int(self.path.removeprefix("/blob/"))
        body = _pattern(size)
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        for start in range(0, size, _SLICE_BYTES):
            self.wfile.write(body[start : start + _SLICE_BYTES])

    def do_PUT(self) -> None:
        declared = int(self.headers["Content-Length"])
        digest, received = hashlib.sha256(), 0
        try:
            while received < declared:
                chunk = self.rfile.read(min(_SLICE_BYTES, declared - received))
                if not chunk:
                    break
                digest.update(chunk)
                received += len(chunk)
        finally:
            self.server.uploads.append(_Upload(declared, received))
        answer = digest.hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture(scope="module")
def upstream() -> Iterator[_Upstream]:
    server = _Upstream()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def proxy(upstream: _Upstream) -> Iterator[LinkProxy]:
    upstream.uploads.clear()
    with LinkProxy(LOOPBACK, upstream.server_address[1]) as link:
        yield link


def _request(
    proxy: LinkProxy, method: str, path: str, body: bytes | None = None, timeout_s: float = 10.0
) -> bytes:
    conn = http.client.HTTPConnection(LOOPBACK, proxy.port, timeout=timeout_s)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        conn.close()


def _exchange(proxy: LinkProxy, request: bytes) -> bytes:
    """Send raw bytes, then read everything until the proxy closes."""
    with socket.create_connection((LOOPBACK, proxy.port), timeout=10.0) as sock:
        sock.sendall(request)
        received = bytearray()
        while chunk := sock.recv(_SLICE_BYTES):
            received += chunk
        return bytes(received)


def _get_request(size: int) -> bytes:
    return f"GET /blob/{size} HTTP/1.0\r\nHost: upstream\r\n\r\n".encode()


def _body(response: bytes) -> bytes:
    return response.split(b"\r\n\r\n", 1)[1]


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + _POLL_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_forwards_5_mib_intact_both_ways(proxy: LinkProxy) -> None:
    payload = _pattern(5 * MIB)

    assert _request(proxy, "GET", f"/blob/{len(payload)}") == payload
    digest = _request(proxy, "PUT", "/sha256", body=payload)

    assert digest == hashlib.sha256(payload).hexdigest().encode()
    assert proxy.connections == 2
    assert proxy.bytes_up > len(payload)
    assert proxy.bytes_down > len(payload)
    assert proxy.url == f"http://{LOOPBACK}:{proxy.port}"


def test_cut_resets_open_transfer_and_new_connections_until_restore(proxy: LinkProxy) -> None:
    proxy.throttle(256 * 1024)  # keeps the 5 MiB transfer in flight when the cut comes
    conn = http.client.HTTPConnection(LOOPBACK, proxy.port, timeout=10.0)
    try:
        conn.request("GET", f"/blob/{5 * MIB}")
        response = conn.getresponse()
        assert len(response.read(16 * 1024)) == 16 * 1024

        proxy.cut()

        with pytest.raises(ConnectionResetError):
            response.read()
    finally:
        conn.close()
    with pytest.raises(ConnectionError):
        _request(proxy, "GET", "/blob/10")

    proxy.restore()

    assert _request(proxy, "GET", "/blob/10") == _pattern(10)


def test_hang_forwards_nothing_until_restore(proxy: LinkProxy) -> None:
    proxy.hang()

    with pytest.raises(TimeoutError):
        _request(proxy, "GET", "/blob/10", timeout_s=0.5)
    assert (proxy.bytes_up, proxy.bytes_down) == (0, 0)

    proxy.restore()

    assert _request(proxy, "GET", "/blob/10") == _pattern(10)


def test_delay_holds_each_direction(proxy: LinkProxy) -> None:
    proxy.delay(0.2)
    started = time.monotonic()

    assert _request(proxy, "GET", "/blob/10") == _pattern(10)

    # The request is held 0.2 s before the upstream sees it, and the response 0.2 s more.
    assert time.monotonic() - started >= 0.4


def test_throttle_caps_rate_and_counters_add_up(proxy: LinkProxy) -> None:
    rate = MIB
    request = _get_request(2 * MIB)
    proxy.throttle(rate)
    started = time.monotonic()

    response = _exchange(proxy, request)

    elapsed = time.monotonic() - started
    assert _body(response) == _pattern(2 * MIB)
    assert elapsed >= len(response) / rate - BURST_S
    assert (proxy.bytes_up, proxy.bytes_down, proxy.connections) == (
        len(request),
        len(response),
        1,
    )


def test_throttle_is_shared_by_all_connections(proxy: LinkProxy) -> None:
    rate = MIB
    proxy.throttle(rate)
    started = time.monotonic()

    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda _: _exchange(proxy, _get_request(MIB)), range(2)))

    elapsed = time.monotonic() - started
    assert [_body(r) for r in responses] == [_pattern(MIB)] * 2
    assert elapsed >= sum(len(r) for r in responses) / rate - BURST_S


def test_reset_after_breaks_upload_mid_stream(proxy: LinkProxy, upstream: _Upstream) -> None:
    payload = _pattern(MIB)
    proxy.reset_after(100_000)

    with pytest.raises(ConnectionError):
        _request(proxy, "PUT", "/sha256", body=payload)

    assert proxy.bytes_up == 100_000
    _wait_for(lambda: len(upstream.uploads) == 1)
    assert upstream.uploads[0].declared_bytes == len(payload)
    assert upstream.uploads[0].received_bytes < 100_000

    proxy.restore()

    assert (
        _request(proxy, "PUT", "/sha256", body=payload)
        == hashlib.sha256(payload).hexdigest().encode()
    )


def test_stop_resets_open_connections_and_closes_the_port(upstream: _Upstream) -> None:
    proxy = LinkProxy(LOOPBACK, upstream.server_address[1])
    proxy.start()
    proxy.hang()
    with socket.create_connection((LOOPBACK, proxy.port), timeout=5.0) as sock:
        sock.sendall(_get_request(10))
        _wait_for(lambda: proxy.connections == 1)

        proxy.stop()

        with pytest.raises(ConnectionResetError):
            sock.recv(1024)
    proxy.stop()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOPBACK, proxy.port), timeout=5.0).close()


def test_reset_after_downstream_breaks_download_mid_stream(proxy: LinkProxy) -> None:
    proxy.reset_after(200_000, direction="down")
    conn = http.client.HTTPConnection(LOOPBACK, proxy.port, timeout=10.0)
    try:
        conn.request("GET", f"/blob/{MIB}")
        response = conn.getresponse()
        with pytest.raises((ConnectionError, http.client.IncompleteRead)):
            response.read()
    finally:
        conn.close()
    assert proxy.bytes_down == 200_000

    proxy.restore()

    assert _request(proxy, "GET", f"/blob/{MIB}") == _pattern(MIB)


def test_corrupt_flips_body_bytes_but_keeps_length_until_restore(proxy: LinkProxy) -> None:
    payload = _pattern(MIB)
    proxy.corrupt("down")

    got = _request(proxy, "GET", f"/blob/{MIB}")

    assert len(got) == len(payload)
    differing = [i for i, (a, b) in enumerate(zip(got, payload, strict=True)) if a != b]
    assert differing
    assert len(differing) == proxy.corrupted
    assert all(got[i] == payload[i] ^ 0xFF for i in differing)

    proxy.corrupt("up")  # uploads now: the upstream hashes what it received
    assert (
        _request(proxy, "PUT", "/sha256", body=payload)
        != hashlib.sha256(payload).hexdigest().encode()
    )

    proxy.restore()

    assert _request(proxy, "GET", f"/blob/{MIB}") == payload
    assert (
        _request(proxy, "PUT", "/sha256", body=payload)
        == hashlib.sha256(payload).hexdigest().encode()
    )


def test_lose_drops_the_answer_that_holds_the_pattern_after_the_request_arrived(
    proxy: LinkProxy, upstream: _Upstream
) -> None:
    payload = _pattern(1000)
    digest = hashlib.sha256(payload).hexdigest().encode()
    proxy.lose(digest)

    with pytest.raises(ConnectionError):
        _request(proxy, "PUT", "/sha256", body=payload)
    # The request itself went through: only its answer was lost.
    _wait_for(lambda: len(upstream.uploads) == 1)
    assert proxy.lost == 1
    other = _pattern(10)
    assert (
        _request(proxy, "PUT", "/sha256", body=other) == hashlib.sha256(other).hexdigest().encode()
    )

    proxy.lose(digest, then_cut=True)
    with pytest.raises(ConnectionError):
        _request(proxy, "PUT", "/sha256", body=payload)
    with pytest.raises(ConnectionError):
        _request(proxy, "PUT", "/sha256", body=other)

    proxy.restore()

    assert _request(proxy, "PUT", "/sha256", body=payload) == digest
