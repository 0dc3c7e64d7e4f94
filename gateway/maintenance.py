"""Operator commands that work on the database and the backends without serving:
re-placement, scrub, quotas and usage. Each prints one JSON document."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import asyncpg
import yaml

from gateway import topology_setup
from gateway.app import load_key_ring
from gateway.config import GatewayConfig, load, with_database
from gateway.crypto import secretbox
from gateway.embedded_pg import embedded_database
from gateway.placement.engine import validate_policy
from gateway.placement.model import PolicyError
from gateway.placement.policy_io import policy_from_dict, policy_to_dict
from gateway.services.topology import TopologyService
from gateway.workers.replacement import ReplacementWorker
from gateway.workers.scrub import ScrubWorker
from metadata import db
from metadata.access_keys import AccessKeyRepo
from metadata.buckets import BucketRepo
from metadata.ledger import LedgerRepo, ScrubRepo
from metadata.topology import TopologyRepo
from metadata.usage import Quota, UsageRepo

T = TypeVar("T")
Work = Callable[[GatewayConfig, asyncpg.Pool], Awaitable[T]]


async def _with_pool(config: GatewayConfig, work: Work[T]) -> T:
    assert config.database_url is not None
    await db.migrate(config.database_url, config.migrations_dir)
    pool = await db.create_pool(config.database_url, min_size=1, max_size=4)
    try:
        return await work(config, pool)
    finally:
        await pool.close()


def run_with_database(config_path: Path | None, work: Work[T]) -> T:
    """Load the configuration, start the embedded database if it is the one, run ``work``."""
    config = load(config_path)
    with contextlib.ExitStack() as stack:
        if config.embedded_database:
            config = with_database(config, stack.enter_context(embedded_database(config.data_dir)))
        return asyncio.run(_with_pool(config, work))


async def _replacement(config: GatewayConfig, pool: asyncpg.Pool) -> ReplacementWorker:
    """The re-placement worker over the stored topology (link health unknown offline)."""
    topology = TopologyService(
        TopologyRepo(pool),
        {},
        local_site=config.site,
        default_policy=config.default_policy,
    )
    await topology.refresh()
    return ReplacementWorker(pool, LedgerRepo(pool), topology)


async def rebalance(config: GatewayConfig, pool: asyncpg.Pool, dry_run: bool) -> dict[str, object]:
    worker = await _replacement(config, pool)
    report = await worker.run_pass(dry_run=dry_run)
    if report is None:
        return {"error": "another node is running a re-placement pass"}
    return {"dry_run": dry_run, **report.as_dict()}


async def scrub(
    config: GatewayConfig, pool: asyncpg.Pool, sample_rate: float, repair: bool
) -> dict[str, object]:
    wiring = await topology_setup.open_wiring(config, TopologyRepo(pool))
    try:
        worker = ScrubWorker(ScrubRepo(pool), wiring.registry)
        report = await worker.run_pass(sample_rate=sample_rate, repair=repair)
        return report.as_dict()
    finally:
        await wiring.close()


async def quota(pool: asyncpg.Pool, args: argparse.Namespace) -> dict[str, object]:
    scope, scope_id = ("tenant", args.tenant) if args.tenant else ("bucket", args.bucket)
    if scope == "bucket":
        bucket = await BucketRepo(pool).get(args.bucket)
        if bucket is None:
            return {"error": f"no bucket named {args.bucket}"}
        scope_id = str(bucket.id)
    repo = UsageRepo(pool)
    if args.action == "clear":
        await repo.clear_quota(scope, scope_id)
        return {"cleared": {"scope": scope, "id": scope_id}}
    new = Quota(scope, scope_id, args.max_bytes, args.max_objects, not args.soft)
    await repo.set_quota(new)
    return {"set": dataclasses.asdict(new)}


async def ledger(
    config: GatewayConfig, pool: asyncpg.Pool, args: argparse.Namespace
) -> dict[str, object]:
    repo = LedgerRepo(pool)
    if args.query == "bytes-per-backend":
        rows = await repo.bytes_per_backend()
        return {"backends": [{"backend": b, "tier": t, "replicas": n, "bytes": size}
                             for b, t, n, size in rows]}  # fmt: skip
    if args.query == "only-on":
        if not args.backend:
            return {"error": "only-on needs --backend"}
        rows2 = await repo.only_on(args.backend, args.limit)
        return {"versions": [{"bucket": b, "key": k, "version_id": v, "bytes": size}
                             for b, k, v, size in rows2]}  # fmt: skip
    worker = await _replacement(config, pool)
    return {"versions": await worker.under_replicated(args.limit)}


async def policy(
    config: GatewayConfig, pool: asyncpg.Pool, args: argparse.Namespace
) -> dict[str, object]:
    repo = TopologyRepo(pool)
    if args.action == "list":
        return {"policies": [r.document for r in await repo.current_policies()]}
    if args.action == "assign":
        return await _assign_policy(pool, repo, args.bucket, args.policy)
    if not args.file:
        return {"error": "policy set needs --file"}
    try:
        document = yaml.safe_load(await asyncio.to_thread(Path(args.file).read_text))
        parsed = policy_from_dict(document)
        validate_policy(parsed, await topology_setup.validation_topology(repo, config))
    except (OSError, yaml.YAMLError, PolicyError) as exc:
        # Refused before anything is written: the stored policies stay as they were.
        return {"error": f"placement policy refused: {exc}"}
    version = await repo.put_policy(parsed.name, policy_to_dict(parsed))
    return {"set": parsed.name, "version": version}


async def _assign_policy(
    pool: asyncpg.Pool, repo: TopologyRepo, bucket_name: str | None, name: str | None
) -> dict[str, object]:
    bucket = await BucketRepo(pool).get(bucket_name or "")
    if bucket is None:
        return {"error": f"no bucket named {bucket_name}"}
    if name is not None and name not in {r.name for r in await repo.current_policies()}:
        return {"error": f"no placement policy named {name}"}
    await BucketRepo(pool).set_policy(bucket.id, name)
    return {"bucket": bucket.name, "policy": name}


async def key(
    config: GatewayConfig, pool: asyncpg.Pool, args: argparse.Namespace
) -> dict[str, object]:
    keys = AccessKeyRepo(pool)
    ring = load_key_ring(config)
    if args.action == "list":
        rows = await keys.list_rows()
        return {"keys": [{"access_key": r.access_key_id, "tenant": r.tenant} for r in rows]}
    if args.action == "delete":
        if not await keys.delete(args.access_key):
            return {"error": f"no access key {args.access_key}"}
        return {"deleted": args.access_key}
    access_key = args.access_key or "SB" + secrets.token_hex(9).upper()
    secret_key = secrets.token_urlsafe(30)
    try:
        await keys.create(access_key, secretbox.seal(ring, secret_key), args.tenant)
    except asyncpg.UniqueViolationError:
        return {"error": f"access key {access_key} exists"}
    # The only time the secret is shown.
    return {"access_key": access_key, "secret_key": secret_key, "tenant": args.tenant}


async def usage(pool: asyncpg.Pool, recompute: bool) -> dict[str, object]:
    repo = UsageRepo(pool)
    quotas = {(q.scope, q.scope_id): q for q in await repo.quotas()}
    rows = []
    for used in await repo.usage():
        limit = quotas.get((used.scope, used.scope_id))
        over = limit is not None and (
            (limit.max_bytes is not None and used.bytes > limit.max_bytes)
            or (limit.max_objects is not None and used.objects > limit.max_objects)
        )
        rows.append({**dataclasses.asdict(used), "quota": limit and dataclasses.asdict(limit),
                     "over_quota": over})  # fmt: skip
    report: dict[str, object] = {"usage": rows}
    if recompute:
        report["drift"] = [
            {"counted": dataclasses.asdict(have), "actual": dataclasses.asdict(want)}
            for have, want in await repo.recompute()
        ]
    return report
