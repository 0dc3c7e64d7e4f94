"""Soak (issue #10, acceptance 2): a mixed workload for N minutes while faults come and go.

Topology: ``local`` (localfs, the node's site) and ``mo`` (moto, another site) reached over
a link whose endpoint is a :class:`LinkProxy` (cut, throttle, delay, reset) in front of a
:class:`FaultProxy` (500, 503 SlowDown, hang, partial body) in front of moto. Two buckets:
``soak-rep`` writes local and mo at once with W=1 (a failed mo write is queued for
replication), ``soak-remote`` keeps its objects on mo only, so reads and writes cross the
faulty link.

Workers each own their keys and run PUT, GET, DELETE, multipart, copy and list at random.
For every key the script keeps the set of states it may be in: an acknowledged write makes
it exactly that checksum, a failed one adds its checksum as possible (it may have committed
before the error reached us). Every GET during the run is checked against that set; at the
end, with every fault removed and the queues drained, every key is read back and checked
again, and ``skybridge scrub --full`` must find nothing missing, corrupt or orphaned.
A fault is injected every ``--fault-every`` seconds for a few seconds, and the gateway is
killed with SIGKILL and restarted once, at ``--kill-at`` (20 %) of the run. RSS and open
file descriptors of the gateway are sampled every ``--sample-s`` seconds; their trends are
taken over its last lifetime (see ``_trend``).

    python -m benchmarks.soak [--minutes 10] [--workers 6] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from benchmarks.client import Credentials, object_url, sign
from benchmarks.harness import tree_rss_bytes
from tests.faultproxy import Fault, FaultProxy, Rule
from tests.gateway_process import GatewayProcess
from tests.netproxy import LOOPBACK, LinkProxy
from tests.placement.conftest import Ledger
from tests.servers import MotoServer, PostgresServer, fresh_database, make_bucket, random_name

KIB = 1024
MIB = 1024 * KIB
KEYS_PER_WORKER = 16
PART_BYTES = 5 * MIB
OP_TIMEOUT_S = 60.0
FAULT_LENGTH_S = 6.0
# Early, so that most of the run is one gateway lifetime, the one the trends are taken over.
KILL_AT = 0.2
# RSS and fd trends are taken over the last gateway lifetime, after this warm-up, cut into
# WINDOWS windows: flat when the last window's median is within the slack of the earlier
# ones. Open fds swing by about ten between samples with the connections in use; a leak of
# one per fault (four a minute) would exceed the slack within any window.
WARMUP_S = 60.0
WINDOWS = 3
RSS_SLACK_MIB = 2.0
FD_SLACK = 5
SETTLE_TIMEOUT_S = 180.0
BUCKETS = ("soak-rep", "soak-remote")
OPERATIONS = (("put", 30), ("get", 30), ("delete", 8), ("multipart", 4), ("copy", 10),
              ("list", 18))  # fmt: skip
_UPLOAD_ID = re.compile(rb"<UploadId>([^<]+)</UploadId>")


def _policies() -> list[dict[str, Any]]:
    both = {"backend": "local"}, {"backend": "mo"}
    return [
        {"name": "soak-rep", "rules": [{"name": "both", "replicas": list(both),
                                        "write_mode": "quorum", "quorum": 1}]},
        {"name": "soak-remote", "rules": [{"name": "remote", "replicas": [{"backend": "mo"}]}]},
    ]  # fmt: skip


def _config(root: Path, moto: MotoServer, bucket: str, link: LinkProxy) -> dict[str, Any]:
    return {
        "site": "s1",
        "backends": [
            {"name": "local", "driver": "localfs", "site": "s1", "path": str(root / "local")},
            {"name": "mo", "driver": "s3", "site": "s2", "endpoint": moto.endpoint_url,
             "bucket": bucket, "access_key": moto.access_key, "secret_key": moto.secret_key},
        ],
        "links": [{"name": "s1-mo", "site": "s1", "backend": "mo", "endpoint": link.url,
                   "first_byte_timeout_s": 2, "breaker_cooldown_s": 2}],
        "default_backend": "local",
        "placement_policies": _policies(),
        "default_policy": "soak-rep",
        "replication": {"interval_s": 0.5, "stall_timeout_s": 5, "retry_base_delay_s": 0.5,
                        "retry_max_delay_s": 5, "first_byte_timeout_s": 2, "lease_s": 15},
        "gc": {"interval_s": 2, "deletion_delay_s": 0, "pending_timeout_s": 90,
               "part_grace_s": 90},
        "logging": {"access_log": False},
        "server": {"shutdown_timeout_s": 5},
    }  # fmt: skip


@dataclass
class Faults:
    """The faults the schedule cycles through; each is undone by ``restore``."""

    link: LinkProxy
    backend: FaultProxy
    applied: Counter[str] = field(default_factory=Counter)

    def schedule(self) -> list[tuple[str, Callable[[], object]]]:
        link, backend = self.link, self.backend
        return [
            ("link cut", link.cut),
            ("link throttle 1 MiB/s", lambda: link.throttle(MIB)),
            ("backend 503 SlowDown on PUT", lambda: backend.add(Rule(Fault.SLOW_DOWN, "PUT"))),
            ("backend 500 on GET", lambda: backend.add(Rule(Fault.ERROR_500, "GET"))),
            ("backend partial GET body", lambda: backend.add(Rule(Fault.PARTIAL_BODY, "GET"))),
            ("link delay 300 ms", lambda: link.delay(0.3)),
            ("link reset after 100 KB up", lambda: link.reset_after(100_000)),
            ("backend hangs", lambda: backend.add(Rule(Fault.HANG))),
        ]

    def restore(self) -> None:
        self.link.restore()
        self.backend.restore()


@dataclass
class Model:
    """Per key, the checksums it may hold (None: absent), and what the run saw."""

    possible: dict[tuple[str, str], set[str | None]] = field(default_factory=dict)
    ok: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    wrong_reads: list[str] = field(default_factory=list)
    acked_writes: int = 0

    def states(self, target: tuple[str, str]) -> set[str | None]:
        return self.possible.setdefault(target, {None})

    def settle(self, target: tuple[str, str], state: str | None, acked: bool) -> None:
        if acked:
            self.possible[target] = {state}
        else:
            self.states(target).add(state)


class Client:
    """Signed aiohttp requests; each answers (status, headers, body)."""

    def __init__(self, endpoint: str, credentials: Credentials) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=OP_TIMEOUT_S), auto_decompress=False
        )

    async def call(
        self, method: str, url: str, data: bytes | None = None, headers: Mapping[str, str] = {}
    ) -> tuple[int, Mapping[str, str], bytes]:
        signed = sign(method, url, self.credentials, headers)
        async with self.session.request(method, url, data=data, headers=signed) as response:
            return response.status, response.headers, await response.read()

    def url(self, bucket: str, key: str = "", query: str = "") -> str:
        return object_url(self.endpoint, bucket, key, query)


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class Worker:
    def __init__(self, index: int, client: Client, model: Model, rng: random.Random) -> None:
        self.client = client
        self.model = model
        self.rng = rng
        self.prefix = f"w{index}/"

    def target(self) -> tuple[str, str]:
        return self.rng.choice(BUCKETS), f"{self.prefix}k{self.rng.randrange(KEYS_PER_WORKER)}"

    async def run(self, deadline: float) -> None:
        names = [n for n, _ in OPERATIONS]
        weights = [w for _, w in OPERATIONS]
        while time.monotonic() < deadline:
            name = self.rng.choices(names, weights)[0]
            try:
                async with asyncio.timeout(OP_TIMEOUT_S):
                    await getattr(self, name)()
                self.model.ok[name] += 1
            except (aiohttp.ClientError, TimeoutError, OSError, _Failed) as exc:
                self.model.errors[f"{name}: {_describe(exc)}"] += 1
                await asyncio.sleep(0.2)

    async def _write(self, target: tuple[str, str], digest: str | None, send: Any) -> None:
        try:
            await send()
        except BaseException:
            self.model.settle(target, digest, acked=False)
            raise
        self.model.settle(target, digest, acked=True)
        self.model.acked_writes += 1

    async def put(self) -> None:
        target = self.target()
        body = random.randbytes(self.rng.randrange(1 * KIB, 256 * KIB))

        async def send() -> None:
            _expect(await self.client.call("PUT", self.client.url(*target), body), 200)

        await self._write(target, _md5(body), send)

    async def get(self) -> None:
        target = self.target()
        status, _, body = await self.client.call("GET", self.client.url(*target))
        if status == 404:
            state = None
        else:
            _expect((status, {}, body), 200)
            state = _md5(body)
        if state not in self.model.states(target):
            self.model.wrong_reads.append(
                f"{target}: read {state}, may be {self.model.states(target)}"
            )

    async def delete(self) -> None:
        target = self.target()

        async def send() -> None:
            _expect(await self.client.call("DELETE", self.client.url(*target)), 204)

        await self._write(target, None, send)

    async def copy(self) -> None:
        source, target = self.target(), self.target()
        states = self.model.states(source)
        if len(states) != 1 or None in states or source == target:
            return
        (digest,) = states
        headers = {"x-amz-copy-source": f"/{source[0]}/{source[1]}"}

        async def send() -> None:
            answer = await self.client.call("PUT", self.client.url(*target), headers=headers)
            _expect(answer, 200)
            if b"<Error>" in answer[2]:
                raise _Failed(f"copy answered 200 with {answer[2][:200]!r}")

        await self._write(target, digest, send)

    async def multipart(self) -> None:
        target = self.target()
        parts = [random.randbytes(PART_BYTES), random.randbytes(self.rng.randrange(1, 64 * KIB))]

        async def send() -> None:
            await self._multipart(target, parts)

        await self._write(target, _md5(b"".join(parts)), send)

    async def _multipart(self, target: tuple[str, str], parts: list[bytes]) -> None:
        answer = await self.client.call("POST", self.client.url(*target, "uploads="))
        _expect(answer, 200)
        match = _UPLOAD_ID.search(answer[2])
        if match is None:
            raise _Failed("no UploadId")
        upload = match.group(1).decode()
        listed = []
        for number, data in enumerate(parts, start=1):
            url = self.client.url(*target, f"partNumber={number}&uploadId={upload}")
            status, headers, body = await self.client.call("PUT", url, data)
            _expect((status, headers, body), 200)
            listed.append(f"<Part><PartNumber>{number}</PartNumber>"
                          f"<ETag>{headers['ETag']}</ETag></Part>")  # fmt: skip
        xml = f"<CompleteMultipartUpload>{''.join(listed)}</CompleteMultipartUpload>".encode()
        answer = await self.client.call("POST", self.client.url(*target, f"uploadId={upload}"), xml)
        _expect(answer, 200)
        if b"<Error>" in answer[2]:
            raise _Failed(f"complete answered 200 with {answer[2][:200]!r}")

    async def list(self) -> None:
        bucket = self.rng.choice(BUCKETS)
        query = f"list-type=2&prefix={self.prefix.rstrip('/')}%2F"
        _expect(await self.client.call("GET", self.client.url(bucket, query=query)), 200)


class _Failed(Exception):
    pass


def _expect(answer: tuple[int, Mapping[str, str], bytes], status: int) -> None:
    if answer[0] != status:
        code = re.search(rb"<Code>([^<]+)</Code>", answer[2])
        raise _Failed(f"{answer[0]} {code.group(1).decode() if code else ''}".strip())


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, _Failed) else type(exc).__name__


@dataclass
class Sample:
    at_s: float
    pid: int
    rss_bytes: int
    open_fds: int


class Sampler:
    """RSS and open fds of the gateway's process tree, every ``interval_s``, in a thread."""

    def __init__(self, gateway: GatewayProcess, interval_s: float) -> None:
        self.gateway = gateway
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._began = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            process = self.gateway.process
            if process is None or process.poll() is not None:
                continue
            with contextlib.suppress(psutil.Error):
                self.samples.append(self._sample(process.pid))

    def _sample(self, pid: int) -> Sample:
        root = psutil.Process(pid)
        fds = sum(p.num_fds() for p in [root, *root.children(recursive=True)])
        return Sample(time.monotonic() - self._began, pid, tree_rss_bytes(pid), fds)


def _slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per minute."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    cov = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return 60 * cov / var if var else 0.0


def _window(samples: list[Sample], values: Callable[[Sample], float]) -> dict[str, float]:
    figures = [values(s) for s in samples]
    return {
        "from_s": round(samples[0].at_s),
        "to_s": round(samples[-1].at_s),
        "first": round(figures[0], 1),
        "median": round(statistics.median(figures), 1),
        "max": round(max(figures), 1),
        "last": round(figures[-1], 1),
    }


def _trend(
    samples: list[Sample], measured: list[Sample], values: Callable[[Sample], float], slack: float
) -> dict[str, Any]:
    """The measured lifetime in WINDOWS windows; flat when the last window's median is at
    most ``slack`` above the highest median before it. A leak keeps raising the level; a
    filling cache, or an allocator keeping the pages of its busiest moment, stops. Medians,
    not peaks: a moment's spike (many chunks in flight, then given back) is not a level."""
    cuts = [len(measured) * i // WINDOWS for i in range(WINDOWS + 1)]
    windows = [_window(measured[a:b] or measured, values) for a, b in itertools.pairwise(cuts)]
    growth = windows[-1]["median"] - max(w["median"] for w in windows[:-1])
    half = measured[len(measured) // 2 :]
    return {
        "min": round(min(values(s) for s in samples), 1),
        "max": round(max(values(s) for s in samples), 1),
        "windows": windows,
        "slope_per_min": round(_slope_per_min([(s.at_s, values(s)) for s in measured]), 3),
        "last_half_slope_per_min": round(_slope_per_min([(s.at_s, values(s)) for s in half]), 3),
        "growth": round(growth, 1),
        "flat": growth <= slack,
    }


def summarise(samples: list[Sample]) -> dict[str, Any]:
    """Min and max over the run; trends over the last gateway lifetime after its warm-up."""
    if not samples:
        return {}
    last_pid = samples[-1].pid
    life = [s for s in samples if s.pid == last_pid]
    measured = [s for s in life if s.at_s - life[0].at_s >= WARMUP_S] or life
    return {
        "samples": len(samples),
        "measured_lifetime_s": round(measured[-1].at_s - measured[0].at_s),
        "rss_mib": _trend(samples, measured, lambda s: s.rss_bytes / MIB, RSS_SLACK_MIB),
        "open_fds": _trend(samples, measured, lambda s: s.open_fds, FD_SLACK),
    }


async def _verify_all(client: Client, model: Model) -> tuple[int, list[str]]:
    lost = []
    for target, states in sorted(model.possible.items()):
        for _attempt in range(3):
            status, _, body = await client.call("GET", client.url(*target))
            if status in (200, 404):
                break
            await asyncio.sleep(1)
        state = None if status == 404 else _md5(body) if status == 200 else f"HTTP {status}"
        if state not in states:
            lost.append(f"{target}: {state}, acknowledged {states}")
    return len(model.possible), lost


async def _workload(
    gateway: GatewayProcess, faults: Faults, model: Model, args: argparse.Namespace
) -> list[str]:
    client = Client(gateway.endpoint, Credentials(gateway.access_key, gateway.secret_key))
    events: list[str] = []
    began = time.monotonic()
    deadline = began + args.minutes * 60
    rng = random.Random(args.seed)
    try:
        for bucket in BUCKETS:
            constraint = f"<CreateBucketConfiguration><LocationConstraint>{bucket}"
            xml = f"{constraint}</LocationConstraint></CreateBucketConfiguration>".encode()
            _expect(await client.call("PUT", client.url(bucket), xml), 200)
        workers = [
            Worker(i, client, model, random.Random(rng.random())) for i in range(args.workers)
        ]
        tasks = [asyncio.create_task(w.run(deadline)) for w in workers]
        await _inject(gateway, faults, events, began, deadline, args)
        await asyncio.gather(*tasks)
        faults.restore()
        events.append(f"{time.monotonic() - began:.0f}s all faults removed")
        await asyncio.to_thread(_settle, gateway)
        verified, lost = await _verify_all(client, model)
        model.ok["final verify"] = verified
        return lost
    finally:
        await client.session.close()
        print("\n".join(events), file=sys.stderr)


async def _inject(
    gateway: GatewayProcess,
    faults: Faults,
    events: list[str],
    began: float,
    deadline: float,
    args: argparse.Namespace,
) -> None:
    schedule = faults.schedule()
    kill_at = began + args.kill_at * (deadline - began)
    killed = False
    turn = 0
    while time.monotonic() + args.fault_every < deadline:
        await asyncio.sleep(args.fault_every - FAULT_LENGTH_S)
        if not killed and time.monotonic() >= kill_at:
            killed = True
            await asyncio.to_thread(gateway.kill)
            events.append(f"{time.monotonic() - began:.0f}s gateway SIGKILL")
            await asyncio.to_thread(gateway.start)
            events.append(f"{time.monotonic() - began:.0f}s gateway restarted")
            continue
        name, apply = schedule[turn % len(schedule)]
        turn += 1
        await asyncio.to_thread(apply)
        faults.applied[name] += 1
        await asyncio.sleep(FAULT_LENGTH_S)
        await asyncio.to_thread(faults.restore)


def _settle(gateway: GatewayProcess) -> None:
    """Wait until the replication queue is empty and gc reaped every pending write."""
    ledger = Ledger(gateway.database_url)
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        left = {
            "queued copies": ledger.queue_length(),
            "unfinished writes": ledger.value(
                "SELECT count(*) FROM object_versions WHERE state IN ('pending', 'failed')"
            ),
            "queued deletions": ledger.deletions_length(),
        }
        if not any(left.values()):
            return
        if time.monotonic() > deadline:
            print(f"not settled after {SETTLE_TIMEOUT_S} s: {left}", file=sys.stderr)
            return
        time.sleep(1)


def _run_until_done(factory: Callable[[], Awaitable[None]]) -> None:
    async def call() -> None:
        await factory()

    asyncio.run(call())


@contextlib.contextmanager
def _stack(workdir: Path, env: dict[str, str]) -> Iterator[tuple[GatewayProcess, Faults]]:
    with contextlib.ExitStack() as stack:
        postgres = stack.enter_context(PostgresServer())
        dsn, drop = asyncio.run(fresh_database(postgres.dsn))
        stack.callback(_run_until_done, drop)
        moto = stack.enter_context(MotoServer())
        bucket = random_name("sb-soak-")
        make_bucket(moto.endpoint_url, moto.access_key, moto.secret_key, bucket)
        backend = stack.enter_context(FaultProxy(moto.endpoint_url, hang_s=FAULT_LENGTH_S))
        link = stack.enter_context(LinkProxy(LOOPBACK, backend.port))
        config = _config(workdir, moto, bucket, link)
        gateway = GatewayProcess(workdir / "gateway", dsn, config, extra_env=env)
        gateway.start()
        stack.callback(gateway.stop)
        yield gateway, Faults(link, backend)


def _unhandled_errors(log: Path) -> list[str]:
    """The last line of every traceback the gateway logged as an unhandled error (an S3
    InternalError): the error each one ended with."""
    found: list[str] = []
    in_traceback = False
    last = ""
    for line in log.read_text(errors="replace").splitlines():
        if "unhandled error in" in line:
            in_traceback, last = True, ""
        elif in_traceback and (line.startswith("{") or line[:4].isdigit()):
            found.append(last)
            in_traceback = False
        elif in_traceback and line and not line.startswith(" "):
            last = line
    if in_traceback:
        found.append(last)
    return found


def _variable(text: str) -> tuple[str, str]:
    name, _, value = text.partition("=")
    return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--fault-every", type=float, default=15.0, help="seconds")
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--kill-at", type=float, default=KILL_AT, help="fraction of the run")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    parser.add_argument(
        "--gateway-env", type=_variable, action="append", default=[], metavar="NAME=VALUE",
        help="set in the gateway's environment (e.g. MALLOC_MMAP_THRESHOLD_=131072, or"
        " PYTHONPATH=benchmarks/heap_probe:. with SKYBRIDGE_HEAP_PROBE=DIR)",
    )  # fmt: skip
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sb-soak-"))
    model = Model()
    try:
        with (
            _stack(workdir, dict(args.gateway_env)) as (gateway, faults),
            Sampler(gateway, args.sample_s) as sampler,
        ):
            lost = asyncio.run(_workload(gateway, faults, model, args))
            code, scrub = gateway.cli("scrub", "--full")
            unhandled = _unhandled_errors(gateway.log_path)
            report = {
                "minutes": args.minutes,
                "workers": args.workers,
                "acknowledged_writes": model.acked_writes,
                "keys_verified": model.ok.pop("final verify", 0),
                "lost_acknowledged": len(lost),
                "lost": lost[:20],
                "wrong_reads": len(model.wrong_reads),
                "wrong_read_examples": model.wrong_reads[:10],
                "ok_by_operation": dict(sorted(model.ok.items())),
                "errors": dict(sorted(model.errors.items())),
                "faults_injected": dict(sorted(faults.applied.items())),
                "gateway_unhandled_errors": len(unhandled),
                "unhandled_error_examples": unhandled[:5],
                "scrub": {k: scrub.get(k) for k in ("checked", "missing", "corrupt")}
                | {"orphans": sum(len(v) for v in scrub.get("orphans", {}).values())},
                **summarise(sampler.samples),
            }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        # The samples too, for other rules or plots (seconds, pid, RSS bytes, open fds).
        rows = [[round(s.at_s, 1), s.pid, s.rss_bytes, s.open_fds] for s in sampler.samples]
        args.json.write_text(json.dumps({**report, "samples_taken": rows}, indent=2))
    flat = all(report.get(trend, {}).get("flat") for trend in ("rss_mib", "open_fds"))
    failed = report["lost_acknowledged"] or report["wrong_reads"] or code != 0 or not flat
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
