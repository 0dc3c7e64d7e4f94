"""Access key lookup for request authentication."""

from __future__ import annotations

from dataclasses import replace

from gateway.crypto import secretbox
from gateway.crypto.keyring import KeyRing
from gateway.errors import InvalidAccessKeyId
from gateway.services.cache import TtlCache
from metadata.access_keys import AccessKeyRepo
from metadata.models import AccessKeyRow

KEY_CACHE_TTL_S = 5.0
KEY_CACHE_ENTRIES = 10_000


class AuthService:
    def __init__(self, keys: AccessKeyRepo, ring: KeyRing) -> None:
        self._keys = keys
        self._ring = ring
        # Secrets change rarely; a short per-process cache saves a query on most requests,
        # and bounds how long a deleted key keeps working on a node.
        self._cache: TtlCache[AccessKeyRow] = TtlCache(KEY_CACHE_TTL_S, KEY_CACHE_ENTRIES)

    async def access_key(self, access_key_id: str) -> AccessKeyRow:
        cached = self._cache.get(access_key_id)
        if cached is not None:
            return cached
        row = await self._keys.get(access_key_id)
        # A disabled key is refused as AWS refuses an inactive one: as if it did not exist.
        if row is None or row.status != "active":
            self._cache.forget(access_key_id)
            raise InvalidAccessKeyId(AWSAccessKeyId=access_key_id)
        row = replace(row, secret_key=secretbox.open_(self._ring, row.secret_key))
        self._cache.put(access_key_id, row)
        return row
