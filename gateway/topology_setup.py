"""Opening drivers and links from configuration, and seeding the topology tables."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Sequence

from gateway.backends.base import Backend
from gateway.backends.factory import open_backend
from gateway.backends.registry import BackendRegistry
from gateway.config import BackendConfig, ConfigError, GatewayConfig, LinkConfig, backend_config
from gateway.links.health import CircuitBreaker
from gateway.links.link import Link
from gateway.links.metering import LinkMeter, Unmetered
from gateway.links.routing import LinkedBackend
from gateway.placement.engine import validate_policy
from gateway.placement.model import (
    BackendInfo,
    BackendState,
    LinkInfo,
    PlacementPolicy,
    PolicyError,
    Tier,
    Topology,
)
from gateway.placement.policy_io import policy_from_dict, policy_to_dict
from metadata.topology import BackendRow, LinkRow, TopologyRepo

log = logging.getLogger(__name__)

# The meter of a link, given the link's and the backend's names.
MeterFactory = Callable[[str, str], LinkMeter]


def default_policy_document(config: GatewayConfig) -> dict[str, object]:
    """Without configured policies: one replica on ``default_backend``, as before."""
    return {
        "name": config.default_policy,
        "version": 1,
        "rules": [{"name": "default", "replicas": [{"backend": config.default_backend}]}],
    }


async def validation_topology(repo: TopologyRepo, config: GatewayConfig) -> Topology:
    """The topology a policy is checked against: the database's backends plus the ones this
    node's configuration adds."""
    known = {r.name: (r.site, r.tier, r.state) for r in await repo.backends()}
    for b in config.backends:
        known.setdefault(b.name, (b.site, b.tier, b.state))
    return Topology(
        config.site,
        {
            name: BackendInfo(name, site, Tier(tier), BackendState(state))
            for name, (site, tier, state) in known.items()
        },
        tuple(link_infos(config)),
    )


async def _validated_policies(repo: TopologyRepo, config: GatewayConfig) -> list[PlacementPolicy]:
    """Every configured policy, checked against the topology it will run on (the database's
    backends plus the configured ones): a bad policy refuses to start the node before
    anything is written."""
    topology = await validation_topology(repo, config)
    documents = list(config.placement_policies) or [default_policy_document(config)]
    policies = [policy_from_dict(document) for document in documents]
    for policy in policies:
        try:
            validate_policy(policy, topology)
        except PolicyError as exc:
            raise PolicyError(f"placement policy {policy.name!r} is refused: {exc}") from None
    return policies


async def seed(repo: TopologyRepo, config: GatewayConfig) -> None:
    policies = await _validated_policies(repo, config)
    backends = [
        BackendRow(b.name, b.site, b.driver, b.tier, b.state, b.capacity_bytes)
        for b in config.backends
    ]
    await repo.seed(backends, [_link_row(link) for link in config.links])
    for policy in policies:
        await repo.seed_policy(policy.name, policy_to_dict(policy))


def _link_row(link: LinkConfig) -> LinkRow:
    return LinkRow(
        link.name, link.site, link.backend, link.position, link.bandwidth_bytes_per_s,
        link.max_concurrency, link.rtt_ms, link.cost_per_gib, link.endpoint,
        link.egress_budget_bytes_per_day, link.first_byte_timeout_s, link.breaker_failures,
        link.breaker_cooldown_s,
    )  # fmt: skip


def _unmetered(link: str, backend: str) -> LinkMeter:
    return Unmetered()


class Wiring:
    """This node's drivers and links, kept in line with the backends and links in the
    database: a backend or link added, changed or removed through the admin API is opened,
    reconfigured or dropped here at the next topology refresh, without a restart.

    ``linked`` and ``registry`` are changed in place, since every service holds them.
    Dropped drivers stay open until shutdown: a read may still stream from them."""

    def __init__(self, config: GatewayConfig, meters: MeterFactory = _unmetered) -> None:
        self._config = config
        self._meters = meters
        self.linked: dict[str, LinkedBackend] = {}
        self.registry = BackendRegistry([])
        self._drivers: dict[str, tuple[BackendConfig, Backend]] = {}
        self._retired: list[Backend] = []
        self._declared = {b.name: b for b in config.backends}

    async def apply(self, backends: Sequence[BackendRow], links: Sequence[LinkRow]) -> None:
        here = [link for link in links if link.site == self._config.site]
        for row in backends:
            connection = self._connection(row)
            if connection is None:
                self._drop(row.name)
                continue
            mine = sorted(
                (link for link in here if link.backend == row.name),
                key=lambda link: (link.position, link.name),
            )
            try:
                await self._wire(connection, await self._driver(connection), mine)
            except Exception:
                # One backend that cannot be opened must not keep the others from changing.
                log.exception("backend %s cannot be opened on this node", row.name)
                self._drop(row.name)
        for name in set(self.linked) - {row.name for row in backends}:
            self._drop(name)

    def _connection(self, row: BackendRow) -> BackendConfig | None:
        """How this node reaches a backend: its configuration, else the stored connection
        (credentials by reference, resolved here); None if this node cannot reach it."""
        declared = self._declared.get(row.name)
        if declared is not None:
            return declared
        if row.connection is None:
            return None
        document = {**row.connection, "name": row.name, "driver": row.driver}
        if row.driver == "localfs":
            # The admin API names a directory under this node's data_dir/backends only.
            document["path"] = self._config.data_dir / "backends" / str(document.get("path"))
        try:
            return backend_config(document, self._config.data_dir, os.environ)
        except (ConfigError, OSError) as exc:
            log.warning("backend %s cannot be opened on this node: %s", row.name, exc)
            return None

    async def _driver(self, connection: BackendConfig) -> Backend:
        known = self._drivers.get(connection.name)
        if known is not None and known[0] == connection:
            return known[1]
        if known is not None:
            self._retired.append(known[1])
        driver = await open_backend(connection)
        self._drivers[connection.name] = (connection, driver)
        self.linked.pop(connection.name, None)  # its links used the old driver
        return driver

    async def _wire(
        self, connection: BackendConfig, driver: Backend, rows: Sequence[LinkRow]
    ) -> None:
        name = connection.name
        current = self.linked.get(name)
        known = {link.link_name: link for link in current.links} if current else {}
        links = [await self._link(row, connection, driver, known.get(row.name)) for row in rows]
        if not links:
            links = [self._implicit(name, driver, known.get(f"direct:{name}"))]
        for gone in set(known) - {link.link_name for link in links}:
            self._retired.append(known[gone].inner)
        if current is None:
            current = LinkedBackend(name, links)
            self.linked[name] = current
            self.registry.add(current)
        else:
            current.links = links

    async def _link(
        self, row: LinkRow, connection: BackendConfig, driver: Backend, existing: Link | None
    ) -> Link:
        if existing is not None and existing.endpoint == row.endpoint:
            existing.reconfigure(
                row.bandwidth_bytes_per_s, row.max_concurrency, row.first_byte_timeout_s
            )
            existing.breaker.failure_threshold = row.breaker_failures
            existing.breaker.cooldown_s = row.breaker_cooldown_s
            return existing
        inner = driver
        if row.endpoint and connection.driver == "s3":
            # The backend as seen over this path: its own client, to the overriding address.
            inner = await open_backend(dataclasses.replace(connection, endpoint=row.endpoint))
        return Link(
            row.name,
            connection.name,
            inner,
            bandwidth_bytes_per_s=row.bandwidth_bytes_per_s,
            max_concurrency=row.max_concurrency,
            first_byte_timeout_s=row.first_byte_timeout_s,
            breaker=CircuitBreaker(row.breaker_failures, row.breaker_cooldown_s),
            meter=self._meters(row.name, connection.name),
            endpoint=row.endpoint,
        )

    def _implicit(self, backend: str, driver: Backend, existing: Link | None) -> Link:
        """A backend with no link from this site is reached directly."""
        if existing is not None:
            return existing
        name = f"direct:{backend}"
        return Link(
            name,
            backend,
            driver,
            first_byte_timeout_s=self._config.replication.first_byte_timeout_s,
            meter=self._meters(name, backend),
        )

    def _drop(self, name: str) -> None:
        if self.linked.pop(name, None) is not None:
            self.registry.remove(name)
        known = self._drivers.pop(name, None)
        if known is not None:
            self._retired.append(known[1])

    async def close(self) -> None:
        closed: set[int] = set()
        for linked in self.linked.values():
            for link in linked.links:
                await _close_once(link.inner, closed)
        for driver in self._retired:
            await _close_once(driver, closed)
        for _, driver in self._drivers.values():
            await _close_once(driver, closed)


async def _close_once(driver: Backend, closed: set[int]) -> None:
    if id(driver) not in closed:
        closed.add(id(driver))
        await driver.close()


async def open_wiring(
    config: GatewayConfig, repo: TopologyRepo, meters: MeterFactory = _unmetered
) -> Wiring:
    """This node's drivers and links as the database has them now, for an offline command:
    it runs no link-shares worker, so it takes each link's whole caps."""
    wiring = Wiring(config, meters)
    try:
        await wiring.apply(await repo.backends(), await repo.links())
    except BaseException:
        await wiring.close()
        raise
    for linked in wiring.linked.values():
        for link in linked.links:
            link.set_share(1.0)
    return wiring


def link_infos(config: GatewayConfig) -> list[LinkInfo]:
    return [
        LinkInfo(
            link.name, link.site, link.backend, link.bandwidth_bytes_per_s, link.max_concurrency,
            link.rtt_ms, link.cost_per_gib, link.endpoint,
        )
        for link in config.links
    ]  # fmt: skip
