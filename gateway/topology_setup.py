"""Opening drivers and links from configuration, and seeding the topology tables."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from gateway.backends.base import Backend
from gateway.backends.factory import open_backend
from gateway.config import BackendConfig, GatewayConfig, LinkConfig
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
    links = [
        LinkRow(
            link.name, link.site, link.backend, link.position, link.bandwidth_bytes_per_s,
            link.max_concurrency, link.rtt_ms, link.cost_per_gib, link.endpoint,
            link.egress_budget_bytes_per_day,
        )
        for link in config.links
    ]  # fmt: skip
    await repo.seed(backends, links)
    for policy in policies:
        await repo.seed_policy(policy.name, policy_to_dict(policy))


def _links_from_here(config: GatewayConfig, backend: str) -> list[LinkConfig]:
    found = [link for link in config.links if link.backend == backend and link.site == config.site]
    return sorted(found, key=lambda link: (link.position, link.name))


async def _open_link(
    link: LinkConfig, backend: BackendConfig, driver: Backend, meters: MeterFactory
) -> Link:
    inner = driver
    if link.endpoint and backend.driver == "s3":
        # The backend as seen over this path: its own client, to the overriding address.
        inner = await open_backend(dataclasses.replace(backend, endpoint=link.endpoint))
    return Link(
        link.name,
        backend.name,
        inner,
        bandwidth_bytes_per_s=link.bandwidth_bytes_per_s,
        max_concurrency=link.max_concurrency,
        first_byte_timeout_s=link.first_byte_timeout_s,
        breaker=CircuitBreaker(link.breaker_failures, link.breaker_cooldown_s),
        meter=meters(link.name, backend.name),
    )


def _unmetered(link: str, backend: str) -> LinkMeter:
    return Unmetered()


async def open_linked_backends(
    config: GatewayConfig, meters: MeterFactory = _unmetered
) -> dict[str, LinkedBackend]:
    linked: dict[str, LinkedBackend] = {}
    for backend in config.backends:
        driver = await open_backend(backend)
        configured = _links_from_here(config, backend.name)
        links = [await _open_link(link, backend, driver, meters) for link in configured]
        if not links:
            # A backend with no configured link from this site is reached directly.
            name = f"direct:{backend.name}"
            links = [
                Link(
                    name,
                    backend.name,
                    driver,
                    first_byte_timeout_s=config.replication.first_byte_timeout_s,
                    meter=meters(name, backend.name),
                )
            ]
        linked[backend.name] = LinkedBackend(backend.name, links)
    return linked


def link_infos(config: GatewayConfig) -> list[LinkInfo]:
    return [
        LinkInfo(
            link.name, link.site, link.backend, link.bandwidth_bytes_per_s, link.max_concurrency,
            link.rtt_ms, link.cost_per_gib, link.endpoint,
        )
        for link in config.links
    ]  # fmt: skip
