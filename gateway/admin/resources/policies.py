"""Placement policies: versioned, validated against the stored topology before they are
stored, with a dry run that reports what re-placement would move."""

from __future__ import annotations

from gateway.admin.call import AdminCall
from gateway.admin.spec import (
    NAME,
    Operations,
    Scope,
    array,
    boolean,
    free_object,
    integer,
    nullable,
    obj,
    string,
)

ops = Operations("placement")

REPLICA = obj(backend=NAME, site=NAME, tier=string(enum=["hot", "warm", "cold", "archive"]))
REPLICA["properties"]["async"] = boolean()  # a Python keyword, so not a keyword argument
REPLICA["properties"]["encrypt"] = boolean()
MATCH = obj(
    buckets=array(string()),
    key_prefix=string(),
    min_size_bytes=nullable(integer()),
    max_size_bytes=nullable(integer()),
    storage_classes=array(string()),
    tags={"type": "object", "propertyNames": string(), "additionalProperties": string()},
)
RULE = obj(
    ["name", "replicas"],
    name=NAME,
    match=MATCH,
    replicas={**array(REPLICA), "minItems": 1},
    write_mode=string(enum=["all", "quorum", "primary+async"]),
    quorum=nullable(integer(minimum=1)),
    read_preference=string(enum=["local", "cheapest", "latency"]),
    distinct_sites=boolean(),
)
# ``name`` and ``version`` come from the URL and the store; a body may repeat them.
DOCUMENT = obj(["rules"], name=NAME, version=integer(minimum=1), rules=array(RULE))
POLICY = obj(
    ["name", "version", "default", "buckets", "document"],
    extra=True,
    name=string(),
    version=integer(minimum=1),
    default=boolean(),
    buckets=array(string()),
    document=free_object(),
    versions=array(obj(["version"], version=integer(minimum=1))),
)
DRY_RUN = obj(
    ["name", "valid", "document", "buckets", "replacement"],
    extra=True,
    name=string(),
    valid=boolean(),
    document=free_object(),
    buckets=array(string()),
    replacement=obj(
        ["versions", "copies", "bytes", "retirements", "egress_per_link", "unplaceable"],
        extra=True,
        versions=integer(),
        copies=integer(),
        bytes=integer(),
        retirements=integer(),
        egress_per_link={"type": "object", "additionalProperties": integer()},
        unplaceable=integer(),
    ),
)
NAMED = {"name": NAME}


@ops.add("GET", "/policies", "List placement policies (current versions)", response=array(POLICY))
async def list_policies(call: AdminCall) -> object:
    return await call.management.policies()


@ops.add(
    "GET",
    "/policies/{name}",
    "A policy's current version and its version history",
    response=POLICY,
    path_params=NAMED,
    errors=(404,),
)
async def get_policy(call: AdminCall) -> object:
    return await call.management.policy(call.param("name"))


@ops.add(
    "GET",
    "/policies/{name}/versions/{version}",
    "One version of a policy",
    response=POLICY,
    path_params={**NAMED, "version": integer(minimum=1, maximum=2**31 - 1)},
    errors=(404,),
)
async def get_policy_version(call: AdminCall) -> object:
    return await call.management.policy_version(call.param("name"), call.param("version"))


@ops.add(
    "PUT",
    "/policies/{name}",
    "Store a new version of a policy (refused, changing nothing, if it cannot be met)",
    response=POLICY,
    status=201,
    path_params=NAMED,
    body=DOCUMENT,
    errors=(422,),
)
async def put_policy(call: AdminCall) -> object:
    return await call.management.put_policy(call.param("name"), call.body)


@ops.add(
    "POST",
    "/policies/{name}/dry-run",
    "Validate a policy document and report what re-placement would move under it",
    response=DRY_RUN,
    path_params=NAMED,
    body=DOCUMENT,
    scope=Scope.READ,
    errors=(422,),
)
async def dry_run_policy(call: AdminCall) -> object:
    return await call.management.dry_run_policy(call.param("name"), call.body)


@ops.add(
    "DELETE",
    "/policies/{name}",
    "Delete every version of a policy no bucket uses",
    response=obj(["deleted"], deleted=string()),
    path_params=NAMED,
    errors=(404, 409),
)
async def delete_policy(call: AdminCall) -> object:
    await call.management.delete_policy(call.param("name"))
    return {"deleted": call.param("name")}


@ops.add(
    "GET",
    "/replacement/dry-run",
    "What a re-placement pass would move now",
    response=DRY_RUN["properties"]["replacement"],
)
async def replacement_dry_run(call: AdminCall) -> object:
    return await call.management.replacement_dry_run()
