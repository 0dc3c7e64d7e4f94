"""What an admin handler receives: the validated inputs and the node's runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.app import Runtime
from gateway.services.admin_auth import AdminAuth, Principal
from gateway.services.management import Management


@dataclass(frozen=True, slots=True)
class AdminCall:
    request: web.Request
    runtime: Runtime
    management: Management
    auth: AdminAuth
    principal: Principal
    path: dict[str, Any]
    query: dict[str, Any]
    body: Any

    def param(self, name: str) -> Any:
        return self.path[name]
