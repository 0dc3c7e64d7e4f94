"""Lifecycle transition throughput over a capped link (issue #6, acceptance 6).

Topology: ``local`` (localfs, hot, the node's site s1) and ``sw`` (SeaweedFS, the cold tier,
site s2) reached over a link whose endpoint is a :class:`LinkProxy`. 1,000 objects are PUT
into a bucket whose lifecycle rule moves them to GLACIER_IR (cold) after one day; then one
lifecycle pass runs as of two days later (the injectable clock) and starts every transition.
The replication worker copies each version to ``sw`` over the link, and the lifecycle
worker (a pass every 0.5 s) switches each version once its copy is verified. Measured from
that pass until every version is GLACIER_IR with its only placement on ``sw``: objects/s,
payload bytes/s, and the proxy's forwarded bytes sampled every 0.5 s (the rate on the
wire), each against the link's cap.

Two runs, as in ``replication_bandwidth``: the cap enforced by the gateway
(``bandwidth_bytes_per_s`` on the link, the proxy only counts), and a reference run with the
gateway uncapped and the proxy throttled to the same rate (a physical line). Target: the
payload rate is at least 80 % of the cap. With objects of 1 MiB the link is the limit; with
small ones (``--object-kib 256``) the per-object work of a transition is (start, copy,
verify, switch: a few metadata transactions each), and the figure shows how far below the
cap that keeps it.

    python -m benchmarks.transitions [--cap-mib 8] [--objects 1000] [--object-kib 1024]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from benchmarks.client import MIB, Credentials, LeanS3Client, generated_body, object_url
from benchmarks.replication_bandwidth import (
    SAMPLE_S,
    Drain,
    Servers,
    figures,
    replication_config,
    sampling,
    started_gateways,
    started_servers,
    verdict,
)
from tests.gateway_process import GatewayProcess
from tests.netproxy import LinkProxy

KIB = 1024
PUT_CONCURRENCY = 16
TRANSITION_TIMEOUT_S = 900.0
TARGET = 0.80
BUCKET = "bench"
LIFECYCLE = (
    b"<LifecycleConfiguration><Rule><ID>cold</ID><Filter><Prefix>obj/</Prefix></Filter>"
    b"<Status>Enabled</Status><Transition><Days>1</Days><StorageClass>GLACIER_IR</StorageClass>"
    b"</Transition></Rule></LifecycleConfiguration>"
)


@dataclass(slots=True)
class Run:
    drain: Drain
    objects: int
    size: int
    # Seconds the pass that started every transition took, and until all were switched.
    pass_s: float = 0.0
    total_s: float = 0.0
    switched: int = 0


def gateway_config(
    servers: Servers, bucket: str, proxy: LinkProxy, root: Path, cap: int | None
) -> dict[str, Any]:
    sw = servers.seaweedfs
    policy = {"name": "bench", "rules": [{"name": "hot", "replicas": [{"backend": "local"}]}]}
    return {
        "site": "s1",
        "backends": [
            {"name": "local", "driver": "localfs", "site": "s1", "path": str(root / "local")},
            {
                "name": "sw", "driver": "s3", "site": "s2", "tier": "cold",
                "endpoint": sw.endpoint_url, "bucket": bucket,
                "access_key": sw.access_key, "secret_key": sw.secret_key,
            },
        ],
        "default_backend": "local",
        "links": [
            {
                "name": "s1-sw", "site": "s1", "backend": "sw", "endpoint": proxy.url,
                "first_byte_timeout_s": 10, "bandwidth_bytes_per_s": cap, "rtt_ms": 10,
                "cost_per_gib": 0.02, "position": 0,
            }
        ],
        "placement_policies": [policy],
        "default_policy": "bench",
        "replication": {**replication_config(), "probe_interval_s": 0},
        # Scheduled passes only check the transitions under way: the scan is run on demand.
        "lifecycle": {"interval_s": 0.5, "scan_interval_s": 86400},
        "gc": {"interval_s": 1.0, "deletion_delay_s": 0, "pending_timeout_s": 3600},
    }  # fmt: skip


async def _fill(gateway: GatewayProcess, objects: int, size: int) -> None:
    credentials = Credentials(gateway.access_key, gateway.secret_key)
    async with LeanS3Client(gateway.endpoint, credentials) as client:
        await client.create_bucket(BUCKET)
        md5 = base64.b64encode(hashlib.md5(LIFECYCLE).digest()).decode()
        url = object_url(gateway.endpoint, BUCKET, query="lifecycle")
        await client.request("PUT", url, data=LIFECYCLE, headers={"content-md5": md5})
        slots = asyncio.Semaphore(PUT_CONCURRENCY)

        async def put(n: int) -> None:
            async with slots:
                await client.put(BUCKET, f"obj/{n:05d}", generated_body(size), size)

        await asyncio.gather(*(put(n) for n in range(objects)))


def _run_lifecycle(gateway: GatewayProcess, days_ahead: float) -> dict[str, Any]:
    now = datetime.now(UTC) + timedelta(days=days_ahead)
    request = urllib.request.Request(
        f"{gateway.admin_endpoint}/admin/v1/lifecycle/run",
        data=json.dumps({"now": now.isoformat()}).encode(),
        headers={"Authorization": f"Bearer {gateway.admin_token}",
                 "Content-Type": "application/json"},
        method="POST",
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=TRANSITION_TIMEOUT_S) as answer:
        report: dict[str, Any] = json.loads(answer.read())
    return report


async def _switched(con: asyncpg.Connection) -> int:
    """Versions moved for good: cold class, and their only ok placement on sw."""
    count: int = await con.fetchval(
        "SELECT count(*) FROM object_versions v WHERE v.storage_class = 'GLACIER_IR'"
        " AND NOT EXISTS (SELECT 1 FROM placements p WHERE p.bucket_id = v.bucket_id"
        "  AND p.version_pk = v.id"
        "  AND p.backend <> 'sw')"
    )
    return count


async def measure(run: Run, gateway: GatewayProcess, proxy: LinkProxy) -> None:
    con = await asyncpg.connect(gateway.database_url)
    try:
        async with sampling(run.drain, proxy) as began:
            report = await asyncio.to_thread(_run_lifecycle, gateway, 2)
            run.pass_s = time.monotonic() - began
            assert report["transitions_started"] == run.objects, report
            deadline = began + TRANSITION_TIMEOUT_S
            while time.monotonic() < deadline:
                run.switched = await _switched(con)
                if run.switched == run.objects:
                    break
                await asyncio.sleep(SAMPLE_S / 5)
            run.total_s = time.monotonic() - began
    finally:
        await con.close()


def execute(servers: Servers, label: str, cap: int, objects: int, size: int, line: bool) -> Run:
    run = Run(Drain(label, cap), objects, size)
    with started_gateways(servers, None if line else cap, 1, gateway_config) as (nodes, proxy):
        gateway = nodes[0]
        asyncio.run(_fill(gateway, objects, size))
        if line:
            proxy.throttle(cap)
        asyncio.run(measure(run, gateway, proxy))
    return run


def report(run: Run) -> bool:
    cap = run.drain.cap_bytes_per_s
    wire = figures(run.drain)
    payload = run.switched * run.size
    payload_rate = payload / run.total_s
    ok = run.switched == run.objects and payload_rate / cap >= TARGET
    print(f"  {run.drain.label}: cap {cap / MIB:g} MiB/s, {run.objects} x {run.size // KIB} KiB")
    print(
        f"    pass starting {run.objects} transitions: {run.pass_s:.1f} s;"
        f" all switched after {run.total_s:.1f} s ({run.switched}/{run.objects})"
    )
    print(
        f"    transitions: {run.switched / run.total_s:.1f} objects/s,"
        f" {payload_rate / MIB:.2f} MiB/s payload = {payload_rate / cap:.1%} of cap"
        f"  [{verdict(ok)} >= {TARGET:.0%}]"
    )
    print(
        f"    on the wire: {wire.moved_bytes / MIB:.1f} MiB moved, mean {wire.mean * cap / MIB:.2f}"
        f" MiB/s = {wire.mean:.1%} of cap, max 1 s window {wire.window_max[1.0]:.1%}"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cap-mib", type=float, default=8.0, help="link cap, MiB/s")
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--object-kib", type=int, default=1024)
    parser.add_argument("--skip-line", action="store_true", help="gateway cap only")
    args = parser.parse_args()
    cap, size = int(args.cap_mib * MIB), args.object_kib * KIB
    print("transitions: local (hot) -> sw (cold) over one link, GLACIER_IR after 1 day")
    with started_servers() as servers:
        ok = report(execute(servers, "gateway cap", cap, args.objects, size, False))
        if not args.skip_line:
            line = execute(servers, "line cap (reference)", cap, args.objects, size, True)
            ok = report(line) and ok
    print(f"  overall: {verdict(ok)}")


if __name__ == "__main__":
    main()
