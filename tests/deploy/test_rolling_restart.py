"""Issue #8, acceptance 3: a rolling restart. One node gets SIGTERM while a client streams
a large PUT and a large GET through it: both complete. Meanwhile other clients keep
working by moving to the other nodes; none sees an error other than a refused connection
to the node that stopped listening, which it answers by trying the next endpoint.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import signal
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError, EndpointConnectionError

from tests.conftest import client_for
from tests.deploy.conftest import Cluster
from tests.servers import random_name

MIB = 1024 * 1024
BIG_BYTES = 24 * MIB
# Both streams take about this long, so that SIGTERM lands in the middle of them.
STREAM_S = 3.0
PIECES = 24
GET_RCVBUF_BYTES = 256 * 1024


def _presigned(node_client: Any, method: str, bucket: str, key: str) -> tuple[str, int, str]:
    url = urlsplit(node_client.generate_presigned_url(
        method, Params={"Bucket": bucket, "Key": key}, ExpiresIn=300))  # fmt: skip
    assert url.hostname is not None
    assert url.port is not None
    return url.hostname, url.port, f"{url.path}?{url.query}"


@dataclass
class Streams:
    """The slow PUT and GET through the node that is stopped, and what they saw."""

    put_status: int | None = None
    get_status: int | None = None
    get_md5: str | None = None

    def put(self, target: tuple[str, int, str], body: bytes) -> None:
        host, port, path = target
        connection = http.client.HTTPConnection(host, port, timeout=60)
        connection.putrequest("PUT", path)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        size = len(body) // PIECES
        for i in range(PIECES):
            connection.send(body[i * size : (i + 1) * size if i < PIECES - 1 else len(body)])
            time.sleep(STREAM_S / PIECES)
        self.put_status = connection.getresponse().status
        connection.close()

    def get(self, target: tuple[str, int, str]) -> None:
        host, port, path = target
        connection = http.client.HTTPConnection(host, port, timeout=60)
        connection.connect()
        # A fixed, small receive buffer: with autotuning (tcp_rmem up to 32 MiB here) the
        # kernel took the whole object before SIGTERM and the GET was no longer in flight.
        connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, GET_RCVBUF_BYTES)
        connection.request("GET", path)
        response = connection.getresponse()
        digest = hashlib.md5()
        while chunk := response.read(BIG_BYTES // PIECES):
            digest.update(chunk)
            time.sleep(STREAM_S / PIECES)
        self.get_status, self.get_md5 = response.status, digest.hexdigest()
        connection.close()


@dataclass
class Rotation:
    """A client that knows every node's endpoint and moves on when one refuses."""

    clients: list[Any]
    bucket: str
    served: list[tuple[float, int]] = field(default_factory=list)
    refused: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        index = 0
        while not self.stop.is_set():
            self._one(index)
            index += 1
            time.sleep(0.01)

    def _one(self, index: int) -> None:
        for attempt in range(len(self.clients)):
            node = (index + attempt) % len(self.clients)
            try:
                key = f"small/{index}"
                self.clients[node].put_object(Bucket=self.bucket, Key=key, Body=b"x" * 100)
                self.clients[node].head_object(Bucket=self.bucket, Key=key)
            except EndpointConnectionError:
                self.refused[node] += 1
                continue
            except (ClientError, Exception) as exc:
                self.errors.append(f"node {node}: {exc!r}")
                return
            self.served.append((time.monotonic(), node))
            return
        self.errors.append("no node answered")


def test_rolling_restart_drains_in_flight_streams(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    assert node.process is not None
    bucket = random_name()
    cluster.client(1).create_bucket(Bucket=bucket)
    big = os.urandom(BIG_BYTES)
    cluster.client(1).put_object(Bucket=bucket, Key="big-get", Body=big)
    signer = client_for(node, signature_version="s3v4")
    streams = Streams()
    put_body = os.urandom(BIG_BYTES)
    stream_threads = [
        threading.Thread(target=streams.put, args=(_presigned(signer, "put_object", bucket,
                                                              "big-put"), put_body)),
        threading.Thread(target=streams.get, args=(_presigned(signer, "get_object", bucket,
                                                              "big-get"),)),
    ]  # fmt: skip
    rotation = Rotation([cluster.client(i) for i in range(3)], bucket)
    rotator = threading.Thread(target=rotation.run)
    rotator.start()
    for thread in stream_threads:
        thread.start()
    time.sleep(STREAM_S / 3)
    os.killpg(node.process.pid, signal.SIGTERM)
    stopped_at = time.monotonic()
    time.sleep(0.3)
    ready_status, ready = cluster.admin_get(node, "/readyz")
    for thread in stream_threads:
        thread.join(60)
    exit_code = node.process.wait(60)
    drained_s = time.monotonic() - stopped_at
    time.sleep(1)
    rotation.stop.set()
    rotator.join(30)
    after = Counter(n for at, n in rotation.served if at > stopped_at)
    print(f"drain took {drained_s:.2f} s; after SIGTERM the rotation was served {dict(after)}"
          f" and refused {dict(rotation.refused)}")  # fmt: skip

    assert (streams.put_status, streams.get_status) == (200, 200), node.log_tail()
    assert streams.get_md5 == hashlib.md5(big).hexdigest()
    stored = cluster.client(2).get_object(Bucket=bucket, Key="big-put")["Body"].read()
    assert hashlib.md5(stored).digest() == hashlib.md5(put_body).digest()
    assert ready_status == 503, ready
    assert "draining" in ready["error"]["message"]
    assert exit_code == 0
    # The two streams, and perhaps one request of the rotation that was in flight too.
    drained = re.search(r"draining (\d+) in-flight", node.log_path.read_text())
    assert drained is not None
    assert int(drained.group(1)) >= 2
    assert rotation.errors == []
    assert set(rotation.refused) == {0}
    # At most the one request already on its keep-alive connection (answered with
    # Connection: close); every later one went to the other nodes.
    assert after[0] <= 1
    assert after[1] > 0
    assert after[2] > 0

    node.process = None
    node.start()
    assert cluster.client(0).head_object(Bucket=bucket, Key="big-put")["ContentLength"] == len(
        put_body
    )
