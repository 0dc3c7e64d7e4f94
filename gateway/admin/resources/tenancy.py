"""Buckets, tenants, access keys, quotas and usage."""

from __future__ import annotations

from gateway.admin.call import AdminCall
from gateway.admin.spec import (
    NAME,
    Operations,
    array,
    boolean,
    integer,
    nullable,
    obj,
    string,
)

ops = Operations("tenancy")

BUCKET_NAME = string(pattern="^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
USAGE = obj(
    ["bytes", "objects", "reserved_bytes", "reserved_objects"],
    bytes=integer(),
    objects=integer(),
    reserved_bytes=integer(),
    reserved_objects=integer(),
)
QUOTA_STATE = nullable(
    obj(
        ["max_bytes", "max_objects", "hard", "headroom_bytes", "headroom_objects", "exceeded"],
        max_bytes=nullable(integer()),
        max_objects=nullable(integer()),
        hard=boolean(),
        headroom_bytes=nullable(integer(minimum=None)),
        headroom_objects=nullable(integer(minimum=None)),
        exceeded=boolean(),
    )
)
QUOTA = {
    **obj(max_bytes=nullable(integer()), max_objects=nullable(integer()), hard=boolean()),
    # A quota limits bytes, objects or both.
    "anyOf": [
        {"required": ["max_bytes"], "properties": {"max_bytes": integer()}},
        {"required": ["max_objects"], "properties": {"max_objects": integer()}},
    ],
}
BUCKET = obj(
    ["name", "tenant", "versioning", "placement_policy", "effective_policy", "usage", "quota"],
    extra=True,
    name=string(),
    tenant=string(),
    created_at=string(),
    versioning=string(enum=["Unversioned", "Enabled", "Suspended"]),
    placement_policy=nullable(string()),
    prefix_policies={"type": "object", "additionalProperties": string()},
    effective_policy=string(),
    usage=USAGE,
    quota=QUOTA_STATE,
)
TENANT = obj(
    ["name", "buckets", "access_keys", "usage", "quota"],
    extra=True,
    name=string(),
    buckets=integer(),
    access_keys=integer(),
    usage=USAGE,
    quota=QUOTA_STATE,
)
ACCESS_KEY = obj(
    ["access_key", "tenant", "user", "status"],
    extra=True,
    access_key=string(),
    tenant=string(),
    user=nullable(string()),
    status=string(enum=["active", "disabled"]),
)
NEW_KEY = obj(
    ["access_key", "secret_key", "tenant", "user", "status"],
    access_key=string(),
    secret_key=string(),
    tenant=string(),
    user=nullable(string()),
    status=string(enum=["active", "disabled"]),
)
USER = obj(["tenant", "name", "access_keys"], tenant=string(), name=string(),
           access_keys=array(string()))  # fmt: skip
KEY_PATH = {"access_key": string(pattern="^[A-Za-z0-9]{1,128}$")}
ACCESS_KEY_ID = string(pattern="^[A-Z0-9]{8,64}$")
TENANT_QUERY = {"tenant": NAME}


@ops.add(
    "GET", "/buckets", "List buckets with usage and quota", response=array(BUCKET),
    query=TENANT_QUERY,
)  # fmt: skip
async def list_buckets(call: AdminCall) -> object:
    return await call.management.buckets(call.query.get("tenant"))


@ops.add(
    "GET",
    "/buckets/{bucket}",
    "One bucket",
    response=BUCKET,
    path_params={"bucket": BUCKET_NAME},
    errors=(404,),
)
async def get_bucket(call: AdminCall) -> object:
    return await call.management.bucket(call.param("bucket"))


@ops.add(
    "PUT",
    "/buckets/{bucket}/placement",
    "Attach a placement policy to a bucket (null: the default policy), or with prefix to the"
    " keys under that prefix (null: detach it; the longest attached prefix of a key wins);"
    " new writes follow it, and re-placement moves what is stored",
    response=BUCKET,
    path_params={"bucket": BUCKET_NAME},
    body=obj(["policy"], policy=nullable(NAME), prefix=string(minLength=1, maxLength=1024)),
    errors=(404,),
)
async def attach_policy(call: AdminCall) -> object:
    return await call.management.attach_policy(
        call.param("bucket"), call.body["policy"], call.body.get("prefix")
    )


@ops.add(
    "PUT",
    "/buckets/{bucket}/quota",
    "Set a bucket's quota (a quota below usage is accepted and blocks writes)",
    response=BUCKET,
    path_params={"bucket": BUCKET_NAME},
    body=QUOTA,
    errors=(404,),
)
async def set_bucket_quota(call: AdminCall) -> object:
    await call.management.set_quota("bucket", call.param("bucket"), call.body)
    return await call.management.bucket(call.param("bucket"))


@ops.add(
    "DELETE",
    "/buckets/{bucket}/quota",
    "Remove a bucket's quota",
    response=BUCKET,
    path_params={"bucket": BUCKET_NAME},
    errors=(404,),
)
async def clear_bucket_quota(call: AdminCall) -> object:
    await call.management.clear_quota("bucket", call.param("bucket"))
    return await call.management.bucket(call.param("bucket"))


@ops.add("GET", "/tenants", "List tenants with usage and quota", response=array(TENANT))
async def list_tenants(call: AdminCall) -> object:
    return await call.management.tenants()


@ops.add(
    "GET", "/tenants/{tenant}", "One tenant", response=TENANT, path_params={"tenant": NAME},
    errors=(404,),
)  # fmt: skip
async def get_tenant(call: AdminCall) -> object:
    return await call.management.tenant(call.param("tenant"))


@ops.add(
    "PUT",
    "/tenants/{tenant}/quota",
    "Set a tenant's quota (a quota below usage is accepted and blocks writes)",
    response=TENANT,
    path_params={"tenant": NAME},
    body=QUOTA,
)
async def set_tenant_quota(call: AdminCall) -> object:
    await call.management.set_quota("tenant", call.param("tenant"), call.body)
    return await call.management.tenant(call.param("tenant"))


@ops.add(
    "DELETE",
    "/tenants/{tenant}/quota",
    "Remove a tenant's quota",
    response=obj(["tenant"], tenant=string()),
    path_params={"tenant": NAME},
)
async def clear_tenant_quota(call: AdminCall) -> object:
    await call.management.clear_quota("tenant", call.param("tenant"))
    return {"tenant": call.param("tenant")}


@ops.add(
    "GET", "/access-keys", "List access keys (never their secrets)", response=array(ACCESS_KEY),
    query=TENANT_QUERY,
)  # fmt: skip
async def list_access_keys(call: AdminCall) -> object:
    return await call.management.access_keys(call.query.get("tenant"))


@ops.add(
    "POST",
    "/access-keys",
    "Create an access key for a tenant; the secret is shown only in this answer",
    response=NEW_KEY,
    status=201,
    body=obj(["tenant"], tenant=NAME, user=NAME, access_key=ACCESS_KEY_ID),
    errors=(404, 409),
)
async def create_access_key(call: AdminCall) -> object:
    body = call.body
    return await call.management.create_access_key(
        body["tenant"], body.get("user"), body.get("access_key")
    )


@ops.add(
    "PATCH",
    "/access-keys/{access_key}",
    "Disable or enable an access key (a disabled key is refused like an unknown one)",
    response=ACCESS_KEY,
    path_params=KEY_PATH,
    body=obj(["status"], status=string(enum=["active", "disabled"])),
    errors=(404,),
)
async def update_access_key(call: AdminCall) -> object:
    return await call.management.set_access_key_status(
        call.param("access_key"), call.body["status"]
    )


@ops.add(
    "POST",
    "/access-keys/{access_key}/rotate",
    "Give an access key a new secret, shown only in this answer; the old one stops working",
    response=NEW_KEY,
    path_params=KEY_PATH,
    errors=(404,),
)
async def rotate_access_key(call: AdminCall) -> object:
    return await call.management.rotate_access_key(call.param("access_key"))


@ops.add(
    "GET",
    "/tenants/{tenant}/users",
    "The users of a tenant and their access keys",
    response=array(USER),
    path_params={"tenant": NAME},
)
async def list_users(call: AdminCall) -> object:
    return await call.management.users(call.param("tenant"))


@ops.add(
    "POST",
    "/tenants/{tenant}/users",
    "Create a user in a tenant",
    response=USER,
    status=201,
    path_params={"tenant": NAME},
    body=obj(["name"], name=NAME),
    errors=(409,),
)
async def create_user(call: AdminCall) -> object:
    return await call.management.create_user(call.param("tenant"), call.body["name"])


@ops.add(
    "DELETE",
    "/tenants/{tenant}/users/{user}",
    "Delete a user that holds no access keys",
    response=obj(["deleted"], deleted=string()),
    path_params={"tenant": NAME, "user": NAME},
    errors=(404, 409),
)
async def delete_user(call: AdminCall) -> object:
    await call.management.delete_user(call.param("tenant"), call.param("user"))
    return {"deleted": call.param("user")}


@ops.add(
    "DELETE",
    "/access-keys/{access_key}",
    "Delete an access key; it stops working on every node within seconds",
    response=obj(["deleted"], deleted=string()),
    path_params=KEY_PATH,
    errors=(404, 409),
)
async def delete_access_key(call: AdminCall) -> object:
    await call.management.delete_access_key(call.param("access_key"))
    return {"deleted": call.param("access_key")}


@ops.add(
    "GET",
    "/usage",
    "Usage per tenant, per tier and per backend",
    response=obj(
        ["tenants", "tiers", "backends"],
        tenants=array(TENANT),
        tiers=array(
            obj(["tier", "bytes", "replicas"], tier=string(), bytes=integer(), replicas=integer())
        ),
        backends=array(
            obj(
                ["backend", "tier", "replicas", "bytes"],
                backend=string(),
                tier=nullable(string()),
                replicas=integer(),
                bytes=integer(),
            )
        ),
    ),  # fmt: skip
)
async def get_usage(call: AdminCall) -> object:
    return await call.management.usage_summary()
