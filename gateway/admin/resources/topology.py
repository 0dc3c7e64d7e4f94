"""Sites, backends and links, with each link's live circuit state on this node."""

from __future__ import annotations

from gateway.admin.call import AdminCall
from gateway.admin.spec import (
    NAME,
    Operations,
    array,
    boolean,
    free_object,
    integer,
    nullable,
    number,
    obj,
    string,
)

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
    connection=nullable(free_object()),
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
    first_byte_timeout_s=number(),
    breaker_failures=integer(),
    breaker_cooldown_s=number(),
    share=nullable(number()),
    bandwidth_here_bytes_per_s=nullable(integer()),
    max_concurrency_here=nullable(integer()),
)  # fmt: skip
CONNECTION = obj(
    path=string(description="localfs: the directory"),
    endpoint=string(description="s3: the store's URL"),
    bucket=string(),
    region=string(),
    key_prefix=string(),
    access_key_env=string(description="the environment variable holding it on each node"),
    secret_key_env=string(),
    access_key_file=string(description="the file holding it on each node"),
    secret_key_file=string(),
    # Listed so that an inline secret is refused with a clear message, not a schema error.
    access_key=string(description="refused: give credentials by reference"),
    secret_key=string(description="refused: give credentials by reference"),
)
NEW_BACKEND = obj(
    ["name", "site", "driver", "connection"],
    name=NAME,
    site=NAME,
    driver=string(enum=["localfs", "s3"]),
    tier=string(enum=TIERS),
    state=string(enum=STATES),
    capacity_bytes=nullable(integer()),
    connection=CONNECTION,
)
POSITIVE = {"exclusiveMinimum": 0, "maximum": 1e9}
LINK_SETTINGS = {
    "position": integer(minimum=-(2**31), maximum=2**31 - 1),
    "bandwidth_bytes_per_s": nullable(integer(minimum=1)),
    "max_concurrency": nullable(integer(minimum=1, maximum=2**31 - 1)),
    "rtt_ms": number(minimum=0, maximum=1e9),
    "cost_per_gib": number(minimum=0, maximum=1e9),
    "endpoint": nullable(string()),
    "egress_budget_bytes_per_day": nullable(integer()),
    "first_byte_timeout_s": number(**POSITIVE),
    "breaker_failures": integer(minimum=1, maximum=2**31 - 1),
    "breaker_cooldown_s": number(**POSITIVE),
}
NEW_LINK = obj(["name", "site", "backend"], name=NAME, site=NAME, backend=NAME)
NEW_LINK["properties"].update(LINK_SETTINGS)
LINK_CHANGE = {**obj(), "properties": dict(LINK_SETTINGS), "minProperties": 1}
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
    "Add a backend at runtime; every node opens it at its next topology refresh (a node"
    " whose configuration declares the name uses its own connection)",
    response=BACKEND,
    status=201,
    body=NEW_BACKEND,
    errors=(409, 422),
)
async def create_backend(call: AdminCall) -> object:
    return await call.management.create_backend(call.body)


@ops.add(
    "DELETE",
    "/backends/{name}",
    "Delete a backend and its links once nothing is stored on it (drain it first)",
    response=obj(["deleted"], deleted=string()),
    path_params=NAMED,
    errors=(404, 409),
)
async def delete_backend(call: AdminCall) -> object:
    await call.management.delete_backend(call.param("name"))
    return {"deleted": call.param("name")}


@ops.add("GET", "/links", "List links with live circuit state", response=array(LINK))
async def list_links(call: AdminCall) -> object:
    return await call.management.links()


@ops.add("GET", "/links/{name}", "One link", response=LINK, path_params=NAMED, errors=(404,))
async def get_link(call: AdminCall) -> object:
    return await call.management.link(call.param("name"))


@ops.add(
    "POST",
    "/links",
    "Add a link from a site to a backend; the site's nodes use it at their next refresh",
    response=LINK,
    status=201,
    body=NEW_LINK,
    errors=(409, 422),
)
async def create_link(call: AdminCall) -> object:
    return await call.management.create_link(call.body)


@ops.add(
    "PATCH",
    "/links/{name}",
    "Change a link's settings: caps (for all nodes of its site together), cost, RTT,"
    " endpoint, breaker, and egress budget (bytes per UTC day that replication may move;"
    " null: no limit; client reads are never limited, only reported)",
    response=LINK,
    path_params=NAMED,
    body=LINK_CHANGE,
    errors=(404,),
)
async def update_link(call: AdminCall) -> object:
    return await call.management.update_link(call.param("name"), call.body)


@ops.add(
    "DELETE",
    "/links/{name}",
    "Delete a link; its site reaches the backend over its other links, or directly",
    response=obj(["deleted"], deleted=string()),
    path_params=NAMED,
    errors=(404,),
)
async def delete_link(call: AdminCall) -> object:
    await call.management.delete_link(call.param("name"))
    return {"deleted": call.param("name")}


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
