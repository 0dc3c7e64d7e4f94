"""Health and admin tokens."""

from __future__ import annotations

from gateway.admin.call import AdminCall
from gateway.admin.spec import NAME, Operations, array, obj, string
from gateway.services.admin_errors import Conflict, NotFound

ops = Operations("system")

SCOPES = ["read", "admin"]
TOKEN = obj(
    ["name", "scope", "created_at", "last_used_at"],
    name=string(),
    scope=string(enum=SCOPES),
    created_at=string(),
    last_used_at={"oneOf": [string(), {"type": "null"}]},
)


@ops.add(
    "GET",
    "/health",
    "This node: its site, and whether its database answers",
    response=obj(["status", "site"], extra=True, status=string(enum=["ok"]), site=string()),
)
async def get_health(call: AdminCall) -> object:
    await call.runtime.pool.fetchval("SELECT 1")
    return {"status": "ok", "site": call.runtime.config.site, "principal": call.principal.name}


@ops.add("GET", "/tokens", "List admin tokens (never the tokens)", response=array(TOKEN))
async def list_tokens(call: AdminCall) -> object:
    return [
        {
            "name": row.name,
            "scope": row.scope,
            "created_at": row.created_at.isoformat(),
            "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
        }
        for row in await call.auth.list_all()
    ]


@ops.add(
    "POST",
    "/tokens",
    "Create an admin token; the token is shown only in this answer",
    response=obj(["name", "scope", "token"], name=string(), scope=string(), token=string()),
    status=201,
    body=obj(["name", "scope"], name=NAME, scope=string(enum=SCOPES)),
    errors=(409,),
)
async def create_token(call: AdminCall) -> object:
    created = await call.auth.create(call.body["name"], call.body["scope"])
    if created is None:
        raise Conflict(f"an admin token named {call.body['name']} exists")
    row, token = created
    return {"name": row.name, "scope": row.scope, "token": token}


@ops.add(
    "DELETE",
    "/tokens/{name}",
    "Revoke an admin token",
    response=obj(["deleted"], deleted=string()),
    path_params={"name": NAME},
    errors=(404,),
)
async def delete_token(call: AdminCall) -> object:
    if not await call.auth.delete(call.param("name")):
        raise NotFound(f"no admin token named {call.param('name')}")
    return {"deleted": call.param("name")}
