"""Sites, backends and links, with each link's live circuit state on this node."""

from __future__ import annotations

from gateway.admin.call import AdminCall
from gateway.admin.spec import (
    NAME,
    Operations,
    array,
    boolean,
    integer,
    nullable,
    number,
    obj,
    string,
)
from gateway.services.admin_errors import NotImplementedYet

ops = Operations("topology")
TIERS = ["hot", "warm", "cold", "archive"]
STATES = ["active", "read-only", "draining", "disabled"]
NAMED = {"name": NAME}

SITE = obj(
    ["name", "local", "backends", "links"],
    extra=True,
    name=string(),
    local=boolean(),
    backends=array(string()),
    links=array(string()),
)
BACKEND = obj(
    ["name", "site", "driver", "tier", "state", "capacity_bytes", "used_bytes", "healthy"],
    extra=True,
    name=string(),
    site=string(),
    driver=string(enum=["localfs", "s3"]),
    tier=string(enum=TIERS),
    state=string(enum=STATES),
    capacity_bytes=nullable(integer()),
    used_bytes=integer(),
    reachable_here=boolean(),
    healthy=nullable(boolean()),
    links=array(string()),
)
LINK = obj(
    ["name", "site", "backend", "live", "healthy", "circuit"],
    extra=True,
    name=string(),
    site=string(),
    backend=string(),
    position=integer(minimum=None),
    bandwidth_bytes_per_s=nullable(integer()),
    max_concurrency=nullable(integer()),
    rtt_ms=number(),
    cost_per_gib=number(),
    endpoint=nullable(string()),
    live=boolean(),
    healthy=nullable(boolean()),
    circuit=nullable(string(enum=["closed", "open", "half-open"])),
    consecutive_failures=nullable(integer()),
    latency_ewma_ms=nullable(number()),
    egress_budget_bytes_per_day=nullable(integer()),
    egress_today=obj(["background_bytes", "client_bytes"], background_bytes=integer(),
                     client_bytes=integer()),
)  # fmt: skip
BACKEND_CHANGE = {
    **obj(
        state=string(enum=STATES),
        tier=string(enum=TIERS),
        capacity_bytes=nullable(integer()),
    ),
    "minProperties": 1,
}


@ops.add("GET", "/sites", "List sites with their backends and links", response=array(SITE))
async def list_sites(call: AdminCall) -> object:
    return await call.management.sites()


@ops.add("GET", "/sites/{name}", "One site", response=SITE, path_params=NAMED, errors=(404,))
async def get_site(call: AdminCall) -> object:
    return await call.management.site(call.param("name"))


@ops.add(
    "POST",
    "/sites",
    "Create a site",
    response=SITE,
    status=201,
    body=obj(["name"], name=NAME),
    errors=(409,),
)
async def create_site(call: AdminCall) -> object:
    return await call.management.create_site(call.body["name"])


@ops.add(
    "DELETE",
    "/sites/{name}",
    "Delete a site that no backend or link names",
    response=obj(["deleted"], deleted=string()),
    path_params=NAMED,
    errors=(404, 409),
)
async def delete_site(call: AdminCall) -> object:
    await call.management.delete_site(call.param("name"))
    return {"deleted": call.param("name")}


@ops.add("GET", "/backends", "List backends with usage and health", response=array(BACKEND))
async def list_backends(call: AdminCall) -> object:
    return await call.management.backends()


@ops.add(
    "GET", "/backends/{name}", "One backend", response=BACKEND, path_params=NAMED, errors=(404,)
)
async def get_backend(call: AdminCall) -> object:
    return await call.management.backend(call.param("name"))


@ops.add(
    "PATCH",
    "/backends/{name}",
    "Change a backend's state, tier or capacity; re-placement follows state changes",
    response=BACKEND,
    path_params=NAMED,
    body=BACKEND_CHANGE,
    errors=(404,),
)
async def update_backend(call: AdminCall) -> object:
    return await call.management.update_backend(call.param("name"), call.body)


@ops.add(
    "POST",
    "/backends",
    "Add a backend at runtime (not built: declare backends in each node's configuration)",
    response=BACKEND,
    status=201,
    body=obj(["name"], extra=True, name=NAME),
    errors=(501,),
)
async def create_backend(call: AdminCall) -> object:
    raise NotImplementedYet(
        "backends are declared in each node's configuration, where their endpoints and"
        " credentials live; runtime creation is not built yet"
    )


@ops.add("GET", "/links", "List links with live circuit state", response=array(LINK))
async def list_links(call: AdminCall) -> object:
    return await call.management.links()


@ops.add("GET", "/links/{name}", "One link", response=LINK, path_params=NAMED, errors=(404,))
async def get_link(call: AdminCall) -> object:
    return await call.management.link(call.param("name"))


@ops.add(
    "PATCH",
    "/links/{name}",
    "Set a link's egress budget: bytes per UTC day that replication may move over it"
    " (null: no limit); client reads are never limited, only reported",
    response=LINK,
    path_params=NAMED,
    body=obj(["egress_budget_bytes_per_day"], egress_budget_bytes_per_day=nullable(integer())),
    errors=(404,),
)
async def update_link(call: AdminCall) -> object:
    return await call.management.update_link(call.param("name"), call.body)


@ops.add(
    "POST",
    "/links/{name}/probe",
    "Probe a link now and return its state",
    response=LINK,
    path_params=NAMED,
    errors=(404, 409),
)
async def probe_link(call: AdminCall) -> object:
    return await call.management.probe_link(call.param("name"))
