"""Access key lookup for request authentication."""

from __future__ import annotations

from gateway.errors import InvalidAccessKeyId
from metadata.access_keys import AccessKeyRepo
from metadata.models import AccessKeyRow


class AuthService:
    def __init__(self, keys: AccessKeyRepo) -> None:
        self._keys = keys
        # Secrets change rarely; a per-process cache saves a query on every request.
        self._cache: dict[str, AccessKeyRow] = {}

    async def access_key(self, access_key_id: str) -> AccessKeyRow:
        cached = self._cache.get(access_key_id)
        if cached is not None:
            return cached
        row = await self._keys.get(access_key_id)
        if row is None:
            raise InvalidAccessKeyId(AWSAccessKeyId=access_key_id)
        self._cache[access_key_id] = row
        return row
