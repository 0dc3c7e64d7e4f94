"""What the admin API decides: every change is checked against the stored state before it
is written, and this node's view (topology, policies) is refreshed right after, so the
next request, here or on any node after its refresh, acts on it."""

from __future__ import annotations

import dataclasses
import secrets
from collections import defaultdict
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

import asyncpg

from gateway import topology_setup
from gateway.config import GatewayConfig
from gateway.crypto import secretbox
from gateway.crypto.keyring import KeyRing
from gateway.links.link import Link
from gateway.links.routing import LinkedBackend
from gateway.placement.engine import validate_policy
from gateway.placement.model import PlacementPolicy, PolicyError
from gateway.placement.policy_io import policy_from_dict, policy_to_dict
from gateway.services.admin_errors import Conflict, NotFound, Unprocessable
from gateway.services.buckets import BucketService
from gateway.services.keys import KeyRotation
from gateway.services.topology import REFRESH_S, TopologyService
from gateway.services.warmup import WarmupService
from gateway.workers.control import WorkerControl
from gateway.workers.replacement import ReplacementWorker
from metadata.access_keys import AccessKeyRepo, UserRepo
from metadata.buckets import BucketRepo
from metadata.egress import EgressRepo, LinkEgress
from metadata.ledger import LedgerRepo, VersionPlacements
from metadata.lifecycle import LifecycleRepo
from metadata.models import AccessKeyRow, BucketRow
from metadata.replication import QueueFailure, QueueStats, ReplicationQueueRepo
from metadata.topology import BackendRow, LinkRow, TopologyRepo
from metadata.usage import Quota, Usage, UsageRepo
from metadata.warmup import WarmupRepo

Json = dict[str, Any]


def _usage_json(used: Usage | None) -> Json:
    if used is None:
        return {"bytes": 0, "objects": 0, "reserved_bytes": 0, "reserved_objects": 0}
    return {
        "bytes": used.bytes,
        "objects": used.objects,
        "reserved_bytes": used.reserved_bytes,
        "reserved_objects": used.reserved_objects,
    }


def _quota_json(quota: Quota | None, used: Usage | None) -> Json | None:
    if quota is None:
        return None
    have = used or Usage(quota.scope, quota.scope_id, 0, 0, 0, 0)
    return {
        "max_bytes": quota.max_bytes,
        "max_objects": quota.max_objects,
        "hard": quota.hard,
        "headroom_bytes": None if quota.max_bytes is None else quota.max_bytes - have.bytes,
        "headroom_objects": None if quota.max_objects is None else quota.max_objects - have.objects,
        "exceeded": (quota.max_bytes is not None and have.bytes > quota.max_bytes)
        or (quota.max_objects is not None and have.objects > quota.max_objects),
    }


def _key_json(row: AccessKeyRow) -> Json:
    """An access key as listed: never its secret."""
    return {
        "access_key": row.access_key_id,
        "tenant": row.tenant,
        "user": row.user_name,
        "status": row.status,
    }


def _link_json(row: LinkRow, live: Link | None, egress: LinkEgress | None) -> Json:
    breaker = live.breaker if live else None
    ewma = breaker.latency_ewma_s if breaker else None
    return {
        "egress_budget_bytes_per_day": row.egress_budget_bytes_per_day,
        # Today (UTC): what replication charged against the budget, and what clients read.
        "egress_today": {
            "background_bytes": egress.background_bytes if egress else 0,
            "client_bytes": egress.client_bytes if egress else 0,
        },
        "name": row.name,
        "site": row.site,
        "backend": row.backend,
        "position": row.position,
        "bandwidth_bytes_per_s": row.bandwidth_bytes_per_s,
        "max_concurrency": row.max_concurrency,
        "rtt_ms": row.rtt_ms,
        "cost_per_gib": row.cost_per_gib,
        "endpoint": row.endpoint,
        # A link this node does not use (another site's) has no live state here.
        "live": live is not None,
        "healthy": breaker.healthy if breaker else None,
        "circuit": str(breaker.state) if breaker else None,
        "consecutive_failures": breaker.failures if breaker else None,
        "latency_ewma_ms": None if ewma is None else round(ewma * 1000, 3),
        "first_byte_timeout_s": row.first_byte_timeout_s,
        "breaker_failures": row.breaker_failures,
        "breaker_cooldown_s": row.breaker_cooldown_s,
        # This node's part of the link's caps, shared with the other nodes of its site.
        "share": round(live.share, 4) if live and live.capped else None,
        "bandwidth_here_bytes_per_s": live.bandwidth_here if live else None,
        "max_concurrency_here": live.concurrency_here if live else None,
    }


# Inline secrets are refused: a stored connection names where each node finds them.
_INLINE_SECRETS = ("access_key", "secret_key")


# A backend's state change reaches every node within one topology refresh; deleting it
# waits for two, so that no node still writes to it.
SETTLE_S = 2 * REFRESH_S
_UNDELETABLE = {
    "writable": "set it to draining, and let re-placement move its data off, first",
    "settling": f"its state changed less than {SETTLE_S:.0f} s ago; nodes may still write",
    "in-use": "it still holds placements, parts, queued copies or deletions, or is a"
    " bucket's default backend or an active warm-up job's target",
}


_NEW_LINK_DEFAULTS: Json = {
    "position": 0, "bandwidth_bytes_per_s": None, "max_concurrency": None, "rtt_ms": 0.0,
    "cost_per_gib": 0.0, "endpoint": None,
}  # fmt: skip


def _require_connection(driver: str, connection: Json) -> None:
    needed = ("path",) if driver == "localfs" else ("endpoint", "bucket")
    missing = [field for field in needed if not connection.get(field)]
    if missing:
        raise Unprocessable(f"a {driver} backend's connection needs {', '.join(missing)}")
    if driver == "localfs" and not _is_plain_relative(str(connection["path"])):
        # The admin API must not point the gateway at any directory of the host.
        raise Unprocessable(
            "a localfs backend created at runtime lives under each node's"
            " data_dir/backends: give path as a relative name there, without '..'"
        )


def _is_plain_relative(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and not path.startswith("/") and ".." not in parts


class Management:
    def __init__(
        self,
        pool: asyncpg.Pool,
        config: GatewayConfig,
        topology: TopologyService,
        replacement: ReplacementWorker,
        linked: dict[str, LinkedBackend],
        control: WorkerControl,
        ring: KeyRing,
        keys: KeyRotation,
        bucket_service: BucketService,
    ) -> None:
        self._ring = ring
        self._bucket_service = bucket_service
        self.keys = keys
        self.warmup = WarmupService(
            WarmupRepo(pool),
            BucketRepo(pool),
            topology,
            deletion_delay_s=config.gc.deletion_delay_s,
        )
        self._config = config
        self._topology_repo = TopologyRepo(pool)
        self._buckets = BucketRepo(pool)
        self._keys = AccessKeyRepo(pool)
        self._users = UserRepo(pool)
        self._usage = UsageRepo(pool)
        self._queue = ReplicationQueueRepo(pool)
        self._egress = EgressRepo(pool)
        self._ledger = LedgerRepo(pool)
        self._lifecycle = LifecycleRepo(pool)
        self._pool = pool
        self._topology = topology
        self._replacement = replacement
        self._linked = linked
        self._control = control

    # -- sites, backends, links -------------------------------------------------------

    async def sites(self) -> list[Json]:
        backends = await self._topology_repo.backends()
        links = await self._topology_repo.links()
        return [
            {
                "name": site,
                "local": site == self._config.site,
                "backends": [b.name for b in backends if b.site == site],
                "links": [link.name for link in links if link.site == site],
            }
            for site in await self._topology_repo.sites()
        ]

    async def site(self, name: str) -> Json:
        for site in await self.sites():
            if site["name"] == name:
                return site
        raise NotFound(f"no site named {name}")

    async def create_site(self, name: str) -> Json:
        if not await self._topology_repo.create_site(name):
            raise Conflict(f"site {name} exists")
        return await self.site(name)

    async def delete_site(self, name: str) -> None:
        try:
            deleted = await self._topology_repo.delete_site(name)
        except asyncpg.ForeignKeyViolationError:
            raise Conflict(f"site {name} still has backends or links") from None
        if not deleted:
            raise NotFound(f"no site named {name}")

    def _live_links(self, backend: str) -> dict[str, Link]:
        linked = self._linked.get(backend)
        return {link.link_name: link for link in linked.links} if linked else {}

    async def _backend_json(self, row: BackendRow, used: dict[str, int]) -> Json:
        linked = self._linked.get(row.name)
        return {
            **dataclasses.asdict(row),
            "used_bytes": used.get(row.name, 0),
            "reachable_here": linked is not None,
            "healthy": linked.healthy if linked else None,
            "links": [link.link_name for link in linked.links] if linked else [],
        }

    async def backends(self) -> list[Json]:
        used = await self._topology_repo.used_bytes()
        return [await self._backend_json(r, used) for r in await self._topology_repo.backends()]

    async def backend(self, name: str) -> Json:
        for backend in await self.backends():
            if backend["name"] == name:
                return backend
        raise NotFound(f"no backend named {name}")

    async def create_backend(self, body: Json) -> Json:
        connection = dict(body["connection"])
        inline = [field for field in _INLINE_SECRETS if field in connection]
        if inline:
            raise Unprocessable(
                f"backend {body['name']}: give {', '.join(inline)} by reference"
                " (NAME_env or NAME_file), never inline: the database stores no secrets"
            )
        _require_connection(body["driver"], connection)
        row = BackendRow(
            body["name"], body["site"], body["driver"], body.get("tier", "hot"),
            body.get("state", "active"), body.get("capacity_bytes"), connection,
        )  # fmt: skip
        if not await self._topology_repo.create_backend(row):
            raise Conflict(f"backend {row.name} exists")
        await self._topology.refresh()
        return await self.backend(row.name)

    async def delete_backend(self, name: str) -> None:
        outcome = await self._topology_repo.delete_backend(name, SETTLE_S)
        if outcome == "missing":
            raise NotFound(f"no backend named {name}")
        if outcome != "deleted":
            raise Conflict(f"backend {name} cannot be deleted yet: {_UNDELETABLE[outcome]}")
        await self._topology.refresh()

    async def update_backend(self, name: str, change: Json) -> Json:
        capacity = (change["capacity_bytes"],) if "capacity_bytes" in change else None
        row = await self._topology_repo.update_backend(
            name, change.get("state"), change.get("tier"), capacity
        )
        if row is None:
            raise NotFound(f"no backend named {name}")
        await self._topology.refresh()
        return await self.backend(name)

    async def links(self) -> list[Json]:
        egress = await self._egress.today()
        return [
            _link_json(row, self._live_links(row.backend).get(row.name), egress.get(row.name))
            for row in await self._topology_repo.links()
        ]

    async def create_link(self, body: Json) -> Json:
        row = LinkRow(**{**_NEW_LINK_DEFAULTS, **body})
        try:
            created = await self._topology_repo.create_link(row)
        except asyncpg.ForeignKeyViolationError:
            raise Unprocessable(
                f"link {row.name}: no site {row.site} or no backend {row.backend}"
            ) from None
        if not created:
            raise Conflict(f"link {row.name} exists")
        await self._topology.refresh()
        return await self.link(row.name)

    async def update_link(self, name: str, change: Json) -> Json:
        if not await self._topology_repo.update_link(name, change):
            raise NotFound(f"no link named {name}")
        await self._topology.refresh()
        return await self.link(name)

    async def delete_link(self, name: str) -> None:
        if not await self._topology_repo.delete_link(name):
            raise NotFound(f"no link named {name}")
        await self._topology.refresh()

    async def link(self, name: str) -> Json:
        for link in await self.links():
            if link["name"] == name:
                return link
        raise NotFound(f"no link named {name}")

    async def probe_link(self, name: str) -> Json:
        link = await self.link(name)
        live = self._live_links(str(link["backend"])).get(name)
        if live is None:
            raise Conflict(f"link {name} is not used by this node (site {self._config.site})")
        ok = await live.probe()
        return {**await self.link(name), "probe_ok": ok}

    # -- placement policies -------------------------------------------------------------

    async def _parse_policy(self, name: str, document: Json) -> PlacementPolicy:
        try:
            policy = policy_from_dict({**document, "name": name})
            validate_policy(
                policy, await topology_setup.validation_topology(self._topology_repo, self._config)
            )
        except PolicyError as exc:
            raise Unprocessable(f"placement policy refused: {exc}") from None
        return policy

    async def policies(self) -> list[Json]:
        rows = await self._topology_repo.current_policies()
        return [await self._policy_json(row.name, row.version, row.document) for row in rows]

    async def _policy_json(self, name: str, version: int, document: Json) -> Json:
        return {
            "name": name,
            "version": version,
            "default": name == self._config.default_policy,
            "buckets": await self._buckets.with_policy(name),
            "document": document,
        }

    async def policy(self, name: str) -> Json:
        versions = await self._topology_repo.policy_versions(name)
        if not versions:
            raise NotFound(f"no placement policy named {name}")
        current = versions[-1]
        return {
            **await self._policy_json(name, current.version, current.document),
            "versions": [{"version": v.version} for v in versions],
        }

    async def policy_version(self, name: str, version: int) -> Json:
        for row in await self._topology_repo.policy_versions(name):
            if row.version == version:
                return await self._policy_json(name, row.version, row.document)
        raise NotFound(f"placement policy {name} has no version {version}")

    async def put_policy(self, name: str, document: Json) -> Json:
        policy = await self._parse_policy(name, document)
        version = await self._topology_repo.put_policy(name, policy_to_dict(policy))
        await self._topology.refresh()
        return await self.policy_version(name, version)

    async def dry_run_policy(self, name: str, document: Json) -> Json:
        """What re-placement would move if this document became policy ``name``."""
        policy = await self._parse_policy(name, document)
        worker = ReplacementWorker(self._pool, self._ledger, self._topology.with_policy(policy))
        report = await worker.dry_run()
        return {
            "name": name,
            "valid": True,
            "document": policy_to_dict(policy),
            "buckets": await self._buckets.with_policy(name),
            "replacement": report.as_dict(),
        }

    async def delete_policy(self, name: str) -> None:
        if name == self._config.default_policy:
            raise Conflict(f"{name} is the default placement policy")
        users = await self._buckets.with_policy(name)
        if users:
            raise Conflict(f"placement policy {name} is attached to {', '.join(users[:10])}")
        if not await self._topology_repo.delete_policy(name):
            raise NotFound(f"no placement policy named {name}")
        await self._topology.refresh()

    async def replacement_dry_run(self) -> Json:
        return (await self._replacement.dry_run()).as_dict()

    # -- buckets, tenants, access keys, quotas ------------------------------------------

    async def _usage_index(
        self,
    ) -> tuple[dict[tuple[str, str], Usage], dict[tuple[str, str], Quota]]:
        used = {(u.scope, u.scope_id): u for u in await self._usage.usage()}
        quotas = {(q.scope, q.scope_id): q for q in await self._usage.quotas()}
        return used, quotas

    def _bucket_json(
        self,
        bucket: BucketRow,
        used: dict[tuple[str, str], Usage],
        quotas: dict[tuple[str, str], Quota],
    ) -> Json:
        key = ("bucket", str(bucket.id))
        return {
            "name": bucket.name,
            "tenant": bucket.tenant,
            "created_at": bucket.created_at.isoformat(),
            "versioning": bucket.versioning,
            "placement_policy": bucket.placement_policy,
            "prefix_policies": bucket.prefix_policies,
            "effective_policy": bucket.placement_policy or self._config.default_policy,
            "usage": _usage_json(used.get(key)),
            "quota": _quota_json(quotas.get(key), used.get(key)),
            "access_tiering": bucket.access_tiering,
        }

    async def buckets(self, tenant: str | None) -> list[Json]:
        used, quotas = await self._usage_index()
        rows = await self._buckets.list_all()
        return [self._bucket_json(b, used, quotas) for b in rows if tenant in (None, b.tenant)]

    async def _bucket_row(self, name: str) -> BucketRow:
        bucket = await self._buckets.get(name)
        if bucket is None:
            raise NotFound(f"no bucket named {name}")
        return bucket

    async def bucket(self, name: str) -> Json:
        bucket = await self._bucket_row(name)
        used, quotas = await self._usage_index()
        return self._bucket_json(bucket, used, quotas)

    async def attach_policy(
        self, bucket_name: str, policy: str | None, prefix: str | None = None
    ) -> Json:
        bucket = await self._bucket_row(bucket_name)
        known = {r.name for r in await self._topology_repo.current_policies()}
        if policy is not None and policy not in known:
            raise NotFound(f"no placement policy named {policy}")
        if prefix is not None and policy is None and prefix not in bucket.prefix_policies:
            raise NotFound(f"no placement policy is attached to prefix {prefix!r}")
        # Through the S3 side's bucket service, so this node's bucket cache forgets it at
        # once (other nodes within their cache's TTL of a second).
        await self._bucket_service.set_placement_policy(bucket, policy, prefix)
        return await self.bucket(bucket_name)

    async def set_access_tiering(self, bucket_name: str, setting: Json | None) -> Json:
        """Turn access-based tiering on (``setting``) or off (None) for a bucket."""
        bucket = await self._bucket_row(bucket_name)
        if setting is not None:
            warm, cold = setting["warm_after_days"], setting.get("cold_after_days")
            if cold is not None and cold <= warm:
                raise Unprocessable("cold_after_days must be more than warm_after_days")
            setting = {"warm_after_days": warm, "cold_after_days": cold}
        await self._bucket_service.set_access_tiering(bucket, setting)
        return {"bucket": bucket.name, "access_tiering": setting}

    async def _scope_id(self, scope: str, name: str) -> str:
        if scope == "bucket":
            return str((await self._bucket_row(name)).id)
        return name

    async def set_quota(self, scope: str, name: str, body: Json) -> None:
        scope_id = await self._scope_id(scope, name)
        quota = Quota(
            scope, scope_id, body.get("max_bytes"), body.get("max_objects"), body.get("hard", True)
        )
        # A quota below current usage is accepted: it blocks writes until usage falls.
        await self._usage.set_quota(quota)

    async def clear_quota(self, scope: str, name: str) -> None:
        await self._usage.clear_quota(scope, await self._scope_id(scope, name))

    async def tenants(self) -> list[Json]:
        used, quotas = await self._usage_index()
        buckets: dict[str, int] = defaultdict(int)
        for bucket in await self._buckets.list_all():
            buckets[bucket.tenant] += 1
        keys: dict[str, int] = defaultdict(int)
        for row in await self._keys.list_rows():
            keys[row.tenant] += 1
        names = set(buckets) | set(keys) | {k[1] for k in used if k[0] == "tenant"}
        names |= {k[1] for k in quotas if k[0] == "tenant"}
        return [
            {
                "name": name,
                "buckets": buckets[name],
                "access_keys": keys[name],
                "usage": _usage_json(used.get(("tenant", name))),
                "quota": _quota_json(quotas.get(("tenant", name)), used.get(("tenant", name))),
            }
            for name in sorted(names)
        ]

    async def tenant(self, name: str) -> Json:
        for tenant in await self.tenants():
            if tenant["name"] == name:
                return tenant
        raise NotFound(f"no tenant named {name}")

    async def access_keys(self, tenant: str | None) -> list[Json]:
        return [
            _key_json(row) for row in await self._keys.list_rows() if tenant in (None, row.tenant)
        ]

    async def create_access_key(
        self, tenant: str, user: str | None, access_key: str | None
    ) -> Json:
        access_key = access_key or "SB" + secrets.token_hex(9).upper()
        secret_key = secrets.token_urlsafe(30)
        try:
            await self._keys.create(
                access_key, secretbox.seal(self._ring, secret_key), tenant, user
            )
        except asyncpg.UniqueViolationError:
            raise Conflict(f"access key {access_key} exists") from None
        except asyncpg.ForeignKeyViolationError:
            raise NotFound(f"tenant {tenant} has no user named {user}") from None
        # The only time the secret is shown.
        return {"access_key": access_key, "secret_key": secret_key, "tenant": tenant,
                "user": user, "status": "active"}  # fmt: skip

    async def set_access_key_status(self, access_key: str, status: str) -> Json:
        row = await self._keys.set_status(access_key, status)
        if row is None:
            raise NotFound(f"no access key {access_key}")
        return _key_json(row)

    async def rotate_access_key(self, access_key: str) -> Json:
        """A new secret for the key; the old one stops working within the key cache's TTL."""
        secret_key = secrets.token_urlsafe(30)
        row = await self._keys.rotate(access_key, secretbox.seal(self._ring, secret_key))
        if row is None:
            raise NotFound(f"no access key {access_key}")
        return {**_key_json(row), "secret_key": secret_key}

    async def users(self, tenant: str) -> list[Json]:
        keys = await self._keys.list_rows()
        return [
            {"tenant": t, "name": name,
             "access_keys": [k.access_key_id for k in keys if (k.tenant, k.user_name) == (t, name)]}
            for t, name in await self._users.list_all()
            if t == tenant
        ]  # fmt: skip

    async def create_user(self, tenant: str, name: str) -> Json:
        if not await self._users.create(tenant, name):
            raise Conflict(f"tenant {tenant} already has a user named {name}")
        return {"tenant": tenant, "name": name, "access_keys": []}

    async def delete_user(self, tenant: str, name: str) -> None:
        try:
            deleted = await self._users.delete(tenant, name)
        except asyncpg.ForeignKeyViolationError:
            raise Conflict(f"user {name} still holds access keys; delete them first") from None
        if not deleted:
            raise NotFound(f"tenant {tenant} has no user named {name}")

    async def delete_access_key(self, access_key: str) -> None:
        if access_key == self._config.root_access_key:
            raise Conflict("the configured root access key cannot be deleted here")
        if not await self._keys.delete(access_key):
            raise NotFound(f"no access key {access_key}")

    async def usage_summary(self) -> Json:
        per_backend = await self._ledger.bytes_per_backend()
        tiers: dict[str, dict[str, int]] = defaultdict(lambda: {"bytes": 0, "replicas": 0})
        for _backend, tier, replicas, size in per_backend:
            tiers[tier or "unknown"]["bytes"] += size
            tiers[tier or "unknown"]["replicas"] += replicas
        return {
            "tenants": await self.tenants(),
            "tiers": [{"tier": t, **v} for t, v in sorted(tiers.items())],
            "backends": [
                {"backend": b, "tier": t, "replicas": n, "bytes": size}
                for b, t, n, size in per_backend
            ],
        }

    async def transitions(self) -> Json:
        """Lifecycle transitions under way (tiering progress), per destination class."""
        classes = await self._lifecycle.under_way()
        return {
            "objects": sum(c.objects for c in classes),
            "bytes": sum(c.bytes for c in classes),
            "classes": [dataclasses.asdict(c) for c in classes],
        }

    # -- replication, workers, ledger ----------------------------------------------------

    async def replication(self) -> Json:
        stats: Sequence[QueueStats] = await self._queue.stats()
        return {
            "depth": sum(s.depth for s in stats),
            "lag_bytes": sum(s.bytes for s in stats),
            "failing": sum(s.failing for s in stats),
            "oldest_age_s": max((s.oldest_age_s for s in stats), default=0.0),
            "targets": [dataclasses.asdict(s) for s in stats],
        }

    async def replication_failures(self, limit: int) -> list[Json]:
        failures: Sequence[QueueFailure] = await self._queue.failures(limit)
        return [dataclasses.asdict(f) for f in failures]

    async def _known_backend(self, name: str | None) -> None:
        if name is not None and name not in {b.name for b in await self._topology_repo.backends()}:
            raise NotFound(f"no backend named {name}")

    async def retry_replication(self, backend: str | None) -> Json:
        await self._known_backend(backend)
        return {"retried": await self._queue.retry_now(backend)}

    async def purge_replication(self, backend: str) -> Json:
        await self._known_backend(backend)
        return {"purged": await self._queue.purge(backend)}

    def workers(self) -> list[Json]:
        return [dataclasses.asdict(s) for s in self._control.statuses()]

    async def set_worker_paused(self, name: str, paused: bool) -> Json:
        if name not in self._control.names:
            raise NotFound(f"no worker named {name}")
        await self._control.set_paused(name, paused)
        return next(w for w in self.workers() if w["name"] == name)

    async def placements(self, bucket: str, key: str, version_id: str | None) -> list[Json]:
        await self._bucket_row(bucket)
        rows: Sequence[VersionPlacements] = await self._ledger.placements_of(
            bucket, key, version_id
        )
        if not rows:
            raise NotFound(f"no version of {bucket}/{key}")
        return [dataclasses.asdict(r) for r in rows]

    async def under_replicated(self, limit: int) -> list[Json]:
        return await self._replacement.under_replicated(limit)

    async def only_on(self, backend: str, limit: int) -> list[Json]:
        await self._known_backend(backend)
        return [
            {"bucket": b, "key": k, "version_id": v, "bytes": size}
            for b, k, v, size in await self._ledger.only_on(backend, limit)
        ]
