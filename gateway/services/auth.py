"""Access key lookup for request authentication."""

from __future__ import annotations

import time

from gateway.errors import InvalidAccessKeyId
from metadata.access_keys import AccessKeyRepo
from metadata.models import AccessKeyRow

KEY_CACHE_TTL_S = 5.0
KEY_CACHE_ENTRIES = 10_000


class AuthService:
    def __init__(self, keys: AccessKeyRepo) -> None:
        self._keys = keys
        # Secrets change rarely; a short per-process cache saves a query on most requests,
        # and bounds how long a deleted key keeps working on a node.
        self._cache: dict[str, tuple[float, AccessKeyRow]] = {}

    async def access_key(self, access_key_id: str) -> AccessKeyRow:
        now = time.monotonic()
        cached = self._cache.get(access_key_id)
        if cached is not None and now - cached[0] < KEY_CACHE_TTL_S:
            return cached[1]
        row = await self._keys.get(access_key_id)
        if row is None:
            self._cache.pop(access_key_id, None)
            raise InvalidAccessKeyId(AWSAccessKeyId=access_key_id)
        if len(self._cache) >= KEY_CACHE_ENTRIES:
            self._cache.clear()
        self._cache[access_key_id] = (now, row)
        return row
