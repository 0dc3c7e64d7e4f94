"""How closely the replication worker holds a link's bandwidth cap (issue #3, acceptance 5).

Topology: ``local`` (localfs, the node's site s1) and ``sw`` (SeaweedFS, site s2) reached
over a link whose endpoint is a :class:`LinkProxy`. The policy is ``primary+async`` with
replicas [local, sw (async)], so PUTs land locally at full speed and the replication worker
moves every version to sw over the link. The proxy counts the bytes it forwards upstream;
sampling that counter every 0.5 s while the queue drains gives the rate on the wire.

Two measurements:

- **gateway cap**: the link's ``bandwidth_bytes_per_s`` is the cap and the proxy only counts,
  so the figure is the gateway's own enforcement. Target: mean >= 80 % of the cap, and no
  window of 1 s or more above 110 %.
- **line cap** (reference): no cap in the gateway, the proxy throttled to the same rate (a
  physical line). Target: the worker keeps the line busy, mean >= 80 %.

- **gateway cap shared by N nodes** (``--nodes``, default 2): the same, with N gateway
  processes of site s1 on one database, PUTs spread over them and every node's worker
  replicating over the one link: the cap must hold for all of them together.

    python -m benchmarks.replication_bandwidth [--cap-mib 8] [--objects 60] [--object-mib 8]
        [--nodes 2] [--skip-line]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.client import MIB, Credentials, LeanS3Client, generated_body
from tests.gateway_process import GatewayProcess
from tests.netproxy import LinkProxy
from tests.servers import (
    LOOPBACK,
    PostgresServer,
    SeaweedServer,
    fresh_database,
    make_bucket,
    random_name,
)

SAMPLE_S = 0.5
# The edges of the drain (ramp-up, the last partial object) are left out of the mean.
EDGE_S = 1.0
WINDOWS_S = (1.0, 5.0)
PUT_CONCURRENCY = 8
DRAIN_TIMEOUT_S = 240.0
MEAN_TARGET = 0.80
MAX_TARGET = 1.10


@dataclass(frozen=True, slots=True)
class Servers:
    """What outlives one measurement: PostgreSQL and the SeaweedFS playing the remote cloud."""

    postgres: PostgresServer
    seaweedfs: SeaweedServer
    workdir: Path


@contextlib.contextmanager
def started_servers() -> Iterator[Servers]:
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="sb-bench-"))
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        postgres = stack.enter_context(PostgresServer())
        seaweedfs = stack.enter_context(SeaweedServer())
        yield Servers(postgres, seaweedfs, workdir)


@dataclass(slots=True)
class Drain:
    label: str
    cap_bytes_per_s: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    put_s: float = 0.0
    drain_s: float = 0.0
    versions: int = 0
    fully_placed: int = 0


def replication_config() -> dict[str, Any]:
    return {
        "interval_s": 0.2,
        "stall_timeout_s": 10,
        "retry_base_delay_s": 0.2,
        "retry_max_delay_s": 2,
        "concurrency": 4,
        "first_byte_timeout_s": 10,
    }


def gateway_config(
    servers: Servers, bucket: str, proxy: LinkProxy, root: Path, cap: int | None
) -> dict[str, Any]:
    sw = servers.seaweedfs
    policy = {
        "name": "bench",
        "rules": [
            {
                "name": "async-copy",
                "replicas": [{"backend": "local"}, {"backend": "sw", "async": True}],
                "write_mode": "primary+async",
                "read_preference": "local",
                "distinct_sites": True,
            }
        ],
    }
    return {
        "site": "s1",
        "backends": [
            {"name": "local", "driver": "localfs", "site": "s1", "path": str(root / "local")},
            {
                "name": "sw",
                "driver": "s3",
                "site": "s2",
                "endpoint": sw.endpoint_url,
                "bucket": bucket,
                "access_key": sw.access_key,
                "secret_key": sw.secret_key,
            },
        ],
        "default_backend": "local",
        "links": [
            {
                "name": "s1-sw",
                "site": "s1",
                "backend": "sw",
                "endpoint": proxy.url,
                "first_byte_timeout_s": 10,
                "bandwidth_bytes_per_s": cap,
                "rtt_ms": 10,
                "cost_per_gib": 0.02,
                "position": 0,
            }
        ],
        "placement_policies": [policy],
        "default_policy": "bench",
        "replication": replication_config(),
        "gc": {"interval_s": 1.0, "deletion_delay_s": 0, "pending_timeout_s": 3600},
    }


def run_sync(factory: Callable[[], Awaitable[None]]) -> None:
    async def call() -> None:
        await factory()

    asyncio.run(call())


# A gateway's configuration from (servers, SeaweedFS bucket, link proxy, root, link cap).
ConfigFactory = Callable[[Servers, str, LinkProxy, Path, int | None], dict[str, Any]]


@contextlib.contextmanager
def started_gateways(
    servers: Servers,
    gateway_cap: int | None,
    nodes: int,
    make_config: ConfigFactory | None = None,
) -> Iterator[tuple[list[GatewayProcess], LinkProxy]]:
    """``nodes`` gateways of site s1 on a fresh database and a fresh SeaweedFS bucket behind
    a fresh proxy: one link, which all of them share."""
    with contextlib.ExitStack() as stack:
        dsn, drop = asyncio.run(fresh_database(servers.postgres.dsn))
        stack.callback(run_sync, drop)
        sw = servers.seaweedfs
        bucket = random_name("sb-bench-")
        make_bucket(sw.endpoint_url, sw.access_key, sw.secret_key, bucket)
        proxy = stack.enter_context(LinkProxy(LOOPBACK, sw.port))
        root = Path(tempfile.mkdtemp(prefix="gw-", dir=servers.workdir))
        config = (make_config or gateway_config)(servers, bucket, proxy, root, gateway_cap)
        gateways = []
        for n in range(nodes):
            gateway = GatewayProcess(root / f"node{n}", dsn, config)
            gateway.start()
            stack.callback(gateway.stop)
            gateways.append(gateway)
        try:
            yield gateways, proxy
        except BaseException:
            for gateway in gateways:
                print(f"gateway log tail:\n{gateway.log_tail(60)}", file=sys.stderr)
            raise


async def _queue_empty(con: asyncpg.Connection) -> bool:
    return int(await con.fetchval("SELECT count(*) FROM replication_queue")) == 0


async def _placement_counts(con: asyncpg.Connection) -> tuple[int, int]:
    """(complete versions, versions with 2 verified ok placements)."""
    row = await con.fetchrow(
        "SELECT count(*) AS versions, count(*) FILTER (WHERE verified = 2) AS placed FROM ("
        " SELECT v.id, count(p.id) FILTER (WHERE p.state = 'ok' AND p.verified_at IS NOT NULL)"
        "   AS verified FROM object_versions v LEFT JOIN placements p ON p.version_pk = v.id"
        " WHERE v.state = 'complete' AND NOT v.is_delete_marker GROUP BY v.id) AS per_version"
    )
    assert row is not None
    return int(row["versions"]), int(row["placed"])


async def _put_all(gateways: list[GatewayProcess], objects: int, size: int) -> None:
    """PUTs spread over the nodes, so that every node's replication worker has work."""
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                LeanS3Client(g.endpoint, Credentials(g.access_key, g.secret_key))
            )
            for g in gateways
        ]
        await clients[0].create_bucket("bench")
        slots = asyncio.Semaphore(PUT_CONCURRENCY)

        async def put(n: int) -> None:
            async with slots:
                client = clients[n % len(clients)]
                await client.put("bench", f"obj/{n:04d}", generated_body(size), size)

        await asyncio.gather(*(put(n) for n in range(objects)))


async def measure(
    drain: Drain, gateways: list[GatewayProcess], proxy: LinkProxy, objects: int, size: int
) -> None:
    """PUT everything, then sample the proxy until the queue is empty and all are placed."""
    con = await asyncpg.connect(gateways[0].database_url)
    try:
        async with sampling(drain, proxy) as began:
            await _put_all(gateways, objects, size)
            drain.put_s = time.monotonic() - began
            deadline = began + DRAIN_TIMEOUT_S
            while time.monotonic() < deadline:
                drain.versions, drain.fully_placed = await _placement_counts(con)
                if await _queue_empty(con) and drain.fully_placed == drain.versions == objects:
                    break
                await asyncio.sleep(SAMPLE_S / 5)
            drain.drain_s = time.monotonic() - began
    finally:
        await con.close()


@contextlib.asynccontextmanager
async def sampling(drain: Drain, proxy: LinkProxy) -> AsyncIterator[float]:
    """Sample the proxy's forwarded bytes into ``drain`` while the body runs (from the
    moment yielded to its end)."""
    began = time.monotonic()
    drain.samples.append((began, proxy.bytes_up))
    sampler = asyncio.create_task(_sample(drain, proxy))
    try:
        yield began
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        drain.samples.append((time.monotonic(), proxy.bytes_up))


async def _sample(drain: Drain, proxy: LinkProxy) -> None:
    # Ticks on a fixed schedule, so a late wake-up does not shift every later sample.
    start = drain.samples[0][0]
    tick = 1
    while True:
        await asyncio.sleep(max(0.0, start + tick * SAMPLE_S - time.monotonic()))
        drain.samples.append((time.monotonic(), proxy.bytes_up))
        tick += 1


@dataclass(frozen=True, slots=True)
class Figures:
    active_s: float
    mean: float
    window_max: dict[float, float]
    moved_bytes: int


def figures(drain: Drain) -> Figures:
    """Rates as fractions of the cap, over the time the link carried bytes."""
    samples = drain.samples
    first = next(i for i, (_, n) in enumerate(samples) if n > samples[0][1])
    last = next(i for i in range(len(samples) - 1, -1, -1) if samples[i][1] < samples[-1][1]) + 1
    active = samples[max(first - 1, 0) : last + 1]
    t0, t1 = active[0][0] + EDGE_S, active[-1][0] - EDGE_S
    inner = [(t, n) for t, n in active if t0 <= t <= t1]
    mean = (inner[-1][1] - inner[0][1]) / (inner[-1][0] - inner[0][0])
    window_max = {}
    for window in WINDOWS_S:
        steps = round(window / SAMPLE_S)
        rates = [
            (active[i + steps][1] - active[i][1]) / (active[i + steps][0] - active[i][0])
            for i in range(len(active) - steps)
        ]
        window_max[window] = max(rates, default=float("nan")) / drain.cap_bytes_per_s
    return Figures(
        active[-1][0] - active[0][0],
        mean / drain.cap_bytes_per_s,
        window_max,
        samples[-1][1] - samples[0][1],
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def report(drain: Drain, objects: int, size: int, check_max: bool) -> bool:
    f = figures(drain)
    cap_mib = drain.cap_bytes_per_s / MIB
    placed_ok = drain.fully_placed == drain.versions == objects
    mean_ok = f.mean >= MEAN_TARGET
    max_ok = all(v <= MAX_TARGET for v in f.window_max.values())
    print(f"  {drain.label}: cap {cap_mib:g} MiB/s, {objects} x {size // MIB} MiB")
    print(f"    PUTs done in {drain.put_s:.1f} s; queue drained in {drain.drain_s:.1f} s")
    print(
        f"    link busy {f.active_s:.1f} s, moved {f.moved_bytes / MIB:.1f} MiB"
        f" ({f.moved_bytes / (objects * size):.3f} x payload)"
    )
    print(
        f"    mean rate (edges of {EDGE_S:g} s excluded): {f.mean * cap_mib:.2f} MiB/s"
        f" = {f.mean:.1%} of cap  [{verdict(mean_ok)} >= {MEAN_TARGET:.0%}]"
    )
    for window, value in f.window_max.items():
        target = f"  [{verdict(value <= MAX_TARGET)} <= {MAX_TARGET:.0%}]" if check_max else ""
        print(
            f"    max over any {window:g} s window: {value * cap_mib:.2f} MiB/s"
            f" = {value:.1%} of cap{target}"
        )
    print(
        f"    versions with 2 verified placements: {drain.fully_placed}/{objects}"
        f"  [{verdict(placed_ok)}]"
    )
    return mean_ok and placed_ok and (max_ok or not check_max)


def run(
    servers: Servers, label: str, cap: int, objects: int, size: int, line: bool, nodes: int = 1
) -> Drain:
    drain = Drain(label, cap)
    with started_gateways(servers, None if line else cap, nodes) as (gateways, proxy):
        if line:
            proxy.throttle(cap)
        asyncio.run(measure(drain, gateways, proxy, objects, size))
    return drain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cap-mib", type=float, default=8.0, help="link cap, MiB/s")
    parser.add_argument("--objects", type=int, default=60)
    parser.add_argument("--object-mib", type=float, default=8.0)
    parser.add_argument("--line-objects", type=int, default=40, help="for the line-cap run")
    parser.add_argument("--skip-line", action="store_true", help="gateway cap only")
    parser.add_argument(
        "--nodes", type=int, default=2, help="also measure the cap shared by this many nodes"
    )
    args = parser.parse_args()
    cap = int(args.cap_mib * MIB)
    size = int(args.object_mib * MIB)
    print(f"replication bandwidth: local -> sw over one link, sampled every {SAMPLE_S} s")
    with started_servers() as servers:
        ok = report(
            run(servers, "gateway cap", cap, args.objects, size, False), args.objects, size, True
        )
        if args.nodes > 1:
            label = f"gateway cap shared by {args.nodes} nodes"
            shared = run(servers, label, cap, args.objects, size, False, args.nodes)
            ok = report(shared, args.objects, size, True) and ok
        if not args.skip_line:
            line = run(servers, "line cap (reference)", cap, args.line_objects, size, True)
            ok = report(line, args.line_objects, size, False) and ok
    print(f"  overall: {verdict(ok)}")


if __name__ == "__main__":
    main()
