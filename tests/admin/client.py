"""A minimal admin API client for tests: every call returns (status, decoded JSON)."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from tests.gateway_process import GatewayProcess


@dataclass(frozen=True)
class AdminClient:
    base: str
    token: str | None
    # "" for the token-less paths at the root (/healthz, /readyz, /metrics).
    prefix: str = "/admin/v1"
    # For an admin listener with TLS: the context that trusts its CA.
    context: ssl.SSLContext | None = None

    @classmethod
    def of(cls, gateway: GatewayProcess, token: str | None = "bootstrap") -> AdminClient:
        return cls(gateway.admin_endpoint, gateway.admin_token if token == "bootstrap" else token)

    def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + self.prefix + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", content_type)
        if self.token is not None:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            with error:
                # Every admin error is JSON: anything else fails to decode here.
                return error.code, json.loads(error.read())

    def ok(self, method: str, path: str, body: object = None) -> Any:
        status, answer = self.call(method, path, body)
        assert 200 <= status < 300, (method, path, status, answer)
        return answer
