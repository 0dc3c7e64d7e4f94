"""Admin bearer tokens: only their SHA-256 digests are stored; the bootstrap token comes
from configuration and can create the others."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from metadata.admin import AdminTokenRepo, AdminTokenRow

BOOTSTRAP = "bootstrap"
TOKEN_PREFIX = "sbt_"


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    scope: str

    def may(self, scope: str) -> bool:
        return self.scope == "admin" or scope == "read"


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class AdminAuth:
    def __init__(self, repo: AdminTokenRepo, bootstrap_token: str | None) -> None:
        self._repo = repo
        self._bootstrap = digest(bootstrap_token) if bootstrap_token else None

    async def principal(self, token: str) -> Principal | None:
        presented = digest(token)
        if self._bootstrap is not None and hmac.compare_digest(presented, self._bootstrap):
            return Principal(BOOTSTRAP, "admin")
        row = await self._repo.by_digest(presented)
        return Principal(row.name, row.scope) if row else None

    async def create(self, name: str, scope: str) -> tuple[AdminTokenRow, str] | None:
        """A new token and its secret (shown once), or None when the name is taken."""
        if name == BOOTSTRAP:
            return None
        token = new_token()
        row = await self._repo.create(name, digest(token), scope)
        return (row, token) if row else None

    async def list_all(self) -> list[AdminTokenRow]:
        return await self._repo.list_all()

    async def delete(self, name: str) -> bool:
        return await self._repo.delete(name)
