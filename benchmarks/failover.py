"""GET latency with both replicas healthy and while the first one's link fails (issue #3,
acceptance 3).

Topology: the node's site s1 reaches two remote replicas, ``sw`` (SeaweedFS, site s2, the
cheaper link) and ``mo`` (moto, site s3), each over a link whose endpoint is a
:class:`LinkProxy` (first-byte timeout 1 s). The policy writes both synchronously and reads
the cheapest first, so every GET goes to sw until its link fails. Phases, each a fixed time
of GETs of 64 KiB objects from a lean client at concurrency 8:

- normal;
- sw cut: the proxy resets every connection; reads fall over to mo (a read of sw that
  was cut pays botocore's retry back-off, at most the first-byte timeout);
- restored: the breaker half-opens after its cooldown and reads return to sw;
- sw hung: the proxy accepts and forwards nothing, so reads of sw wait for the first-byte
  timeout until the circuit breaker opens (3 failures; after a 5 s cooldown one probe);
- restored.

Each failure phase starts from a healthy link (a GET has just been served over sw).
Each proxy runs in its own process, so forwarding does not share the client's interpreter
(and its GIL) and inflate the figures. Every GET must succeed: the error count must be 0.

    python -m benchmarks.failover [--seconds 10] [--objects 200] [--object-kib 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import random
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from benchmarks.client import Credentials, LeanS3Client, LoadResult, S3Error, percentile, run_load
from benchmarks.harness import scratch
from tests.gateway_process import GatewayProcess
from tests.netproxy import LinkProxy
from tests.servers import (
    LOOPBACK,
    MotoServer,
    SeaweedServer,
    make_bucket,
    random_name,
)

CONCURRENCY = 8
PUT_CONCURRENCY = 8
FIRST_BYTE_TIMEOUT_S = 1
# A GET this slow paid a timeout or a retry on the failing link before it fell over.
SLOW_S = 0.5
BUCKET = "bench"


def _serve_proxy(upstream_port: int, control: Connection) -> None:
    """The child process: one LinkProxy, driven by commands from the pipe."""
    with LinkProxy(LOOPBACK, upstream_port) as proxy:
        control.send(proxy.port)
        while True:
            command = control.recv()
            if command == "stop":
                return
            if command == "counters":
                control.send((proxy.bytes_up, proxy.bytes_down, proxy.connections))
                continue
            getattr(proxy, command)()
            control.send("ok")


class ProxyProcess:
    """A LinkProxy in a child process; :meth:`command` runs cut/hang/restore there."""

    def __init__(self, upstream_port: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._control, child = context.Pipe()
        self._process = context.Process(
            target=_serve_proxy, args=(upstream_port, child), daemon=True
        )
        self._process.start()
        self.port: int = self._control.recv()
        self.url = f"http://{LOOPBACK}:{self.port}"

    def command(self, name: str) -> None:
        self._control.send(name)
        self._control.recv()

    def bytes_down(self) -> int:
        self._control.send("counters")
        counters: tuple[int, int, int] = self._control.recv()
        return counters[1]

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._control.send("stop")
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()


def policy() -> dict[str, Any]:
    return {
        "name": "pair",
        "rules": [
            {
                "name": "pair",
                "replicas": [{"backend": "sw"}, {"backend": "mo"}],
                "write_mode": "all",
                "read_preference": "cheapest",
                "distinct_sites": True,
            }
        ],
    }


def gateway_config(
    servers: dict[str, SeaweedServer | MotoServer],
    buckets: dict[str, str],
    proxies: dict[str, ProxyProcess],
) -> dict[str, Any]:
    backends: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for name, site, cost in (("sw", "s2", 0.01), ("mo", "s3", 0.05)):
        server = servers[name]
        backends.append(
            {
                "name": name,
                "driver": "s3",
                "site": site,
                "endpoint": server.endpoint_url,
                "bucket": buckets[name],
                "access_key": server.access_key,
                "secret_key": server.secret_key,
            }
        )
        links.append(
            {
                "name": f"s1-{name}",
                "site": "s1",
                "backend": name,
                "endpoint": proxies[name].url,
                "first_byte_timeout_s": FIRST_BYTE_TIMEOUT_S,
                "rtt_ms": 10,
                "cost_per_gib": cost,
                "position": 0,
            }
        )
    return {
        "site": "s1",
        "backends": backends,
        "default_backend": "sw",
        "links": links,
        "placement_policies": [policy()],
        "default_policy": "pair",
        "gc": {"interval_s": 1.0, "deletion_delay_s": 0, "pending_timeout_s": 3600},
    }


def run_sync(factory: Callable[[], Awaitable[None]]) -> None:
    async def call() -> None:
        await factory()

    asyncio.run(call())


@dataclass(frozen=True, slots=True)
class Cluster:
    gateway: GatewayProcess
    proxies: dict[str, ProxyProcess]


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    """PostgreSQL, SeaweedFS, moto, a proxy per remote link and a gateway over them."""
    with contextlib.ExitStack() as stack:
        workdir, dsn = scratch(stack)
        servers: dict[str, SeaweedServer | MotoServer] = {
            "sw": stack.enter_context(SeaweedServer()),
            "mo": stack.enter_context(MotoServer()),
        }
        buckets = {name: random_name("sb-bench-") for name in servers}
        proxies: dict[str, ProxyProcess] = {}
        for name, server in servers.items():
            make_bucket(server.endpoint_url, server.access_key, server.secret_key, buckets[name])
            proxies[name] = ProxyProcess(server.port)
            stack.callback(proxies[name].stop)
        gateway = GatewayProcess(
            workdir / "gateway", dsn, gateway_config(servers, buckets, proxies)
        )
        gateway.start()
        stack.callback(gateway.stop)
        try:
            yield Cluster(gateway, proxies)
        except BaseException:
            print(f"gateway log tail:\n{gateway.log_tail(60)}", file=sys.stderr)
            raise


@dataclass(frozen=True, slots=True)
class Phase:
    label: str
    result: LoadResult
    errors: int
    first_errors: list[str]
    bytes_from: dict[str, int]


async def _load_objects(client: LeanS3Client, objects: int, body: bytes) -> None:
    await client.create_bucket(BUCKET)
    slots = asyncio.Semaphore(PUT_CONCURRENCY)

    async def put(n: int) -> None:
        async with slots:
            await client.put(BUCKET, f"obj/{n:04d}", body, len(body))

    await asyncio.gather(*(put(n) for n in range(objects)))


async def _phase(
    label: str, client: LeanS3Client, c: Cluster, objects: int, size: int, seconds: float
) -> Phase:
    errors: list[str] = []
    before = {name: proxy.bytes_down() for name, proxy in c.proxies.items()}

    async def get(_: int) -> int:
        key = f"obj/{random.randrange(objects):04d}"
        try:
            received = await client.get(BUCKET, key)
        except (S3Error, aiohttp.ClientError) as exc:
            errors.append(f"{key}: {exc}")
            return 0
        if received != size:
            errors.append(f"{key}: read {received} of {size} bytes")
        return received

    result = await run_load(label, get, concurrency=CONCURRENCY, duration_s=seconds)
    after = {name: proxy.bytes_down() for name, proxy in c.proxies.items()}
    moved = {name: after[name] - before[name] for name in after}
    return Phase(label, result, len(errors), errors[:3], moved)


# (label, commands for the sw link's proxy before the phase starts). Each failure starts
# from a healthy link: the restored phase before it outlasts the breaker's cooldown.
PHASES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("normal", ()),
    ("sw cut", ("cut",)),
    ("restored", ("restore",)),
    ("sw hung", ("hang",)),
    ("restored", ("restore",)),
)
RECOVERY_TIMEOUT_S = 30.0


async def _until_sw_serves(client: LeanS3Client, c: Cluster) -> None:
    """GET until a read goes over the sw link: its circuit breaker has closed again."""
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while time.monotonic() < deadline:
        before = c.proxies["sw"].bytes_down()
        await client.get(BUCKET, "obj/0000")
        if c.proxies["sw"].bytes_down() > before:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"reads did not return to the sw link within {RECOVERY_TIMEOUT_S} s")


async def measure(c: Cluster, objects: int, size: int, seconds: float) -> list[Phase]:
    credentials = Credentials(c.gateway.access_key, c.gateway.secret_key)
    body = random.randbytes(size)
    phases = []
    async with LeanS3Client(c.gateway.endpoint, credentials, connections=CONCURRENCY) as client:
        await _load_objects(client, objects, body)
        for label, commands in PHASES:
            if commands and commands[0] != "restore":
                await _until_sw_serves(client, c)
            for command in commands:
                c.proxies["sw"].command(command)
            phases.append(await _phase(label, client, c, objects, size, seconds))
    return phases


def report(phases: list[Phase]) -> bool:
    print(
        f"  {'phase':<10} {'GETs':>6} {'ops/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
        f" {'max ms':>8} {'>' + format(SLOW_S, 'g') + ' s':>6} {'errors':>6}  MiB read via sw / mo"
    )
    for p in phases:
        lat = p.result.latencies_s
        ms = [percentile(lat, q) * 1000 for q in (0.5, 0.95, 0.99)] + [max(lat) * 1000]
        slow = sum(1 for s in lat if s >= SLOW_S)
        via = " / ".join(f"{p.bytes_from[n] / 2**20:.1f}" for n in ("sw", "mo"))
        print(
            f"  {p.label:<10} {p.result.ops:>6} {p.result.ops_per_s:>7.0f}"
            + "".join(f" {v:>8.1f}" for v in ms)
            + f" {slow:>6} {p.errors:>6}  {via}"
        )
        for error in p.first_errors:
            print(f"      error: {error}")
    ok = all(p.errors == 0 for p in phases)
    print(f"  errors: {'PASS (none)' if ok else 'FAIL'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per phase")
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--object-kib", type=int, default=64)
    args = parser.parse_args()
    size = args.object_kib * 1024
    print(
        f"failover: GET {args.object_kib} KiB x{CONCURRENCY}, {args.seconds:g} s per phase;"
        f" replicas sw (cheaper, read first) and mo; first-byte timeout {FIRST_BYTE_TIMEOUT_S} s"
    )
    with cluster() as c:
        phases = asyncio.run(measure(c, args.objects, size, args.seconds))
    report(phases)


if __name__ == "__main__":
    main()
