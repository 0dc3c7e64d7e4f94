"""Key rotation: after a new key-encryption key becomes the active one, re-wrap every
SSE-S3 data key and re-seal every access key secret under it, without touching object
data. Old keys keep serving reads until then; retiring a key still in use is refused.

The pass works from what still needs it (a query, not a cursor), so it is resumable and
safe on every node: each row is swapped only if it is still the one that was read.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

from gateway.crypto import secretbox
from gateway.crypto.envelope import from_json
from gateway.crypto.keyring import KeyRing, KeyRingError
from gateway.services.admin_errors import Conflict
from metadata.keys import KeyUsageRepo

log = logging.getLogger(__name__)

BATCH = 500
CLEAR = "(clear)"


class KeyRotation:
    """``reread`` reads the key ring again from where the node got it at start (raising
    ``KeyRingError`` when it cannot)."""

    def __init__(self, repo: KeyUsageRepo, ring: KeyRing, reread: Callable[[], KeyRing]) -> None:
        self._repo = repo
        self._ring = ring
        self._reread = reread

    async def reload(self) -> dict[str, object]:
        """Adopt the key ring as it now is, without a restart; a ring that drops a key
        still in use or changes a key's material is refused and the node keeps its own."""
        before = self._ring.active
        try:
            newer = self._reread()
            usage = await self._repo.usage()
            in_use = {name for name, used in usage.items() if name != CLEAR and used.total()}
            change = self._ring.adopt(newer, in_use)
        except KeyRingError as exc:
            raise Conflict(f"key ring not reloaded: {exc}") from None
        if change.added or change.removed or change.active != before:
            log.info("key ring reloaded: added %s, removed %s, active %s",
                     change.added, change.removed, change.active)  # fmt: skip
        return {"active": change.active, "keys": sorted(self._ring.keys),
                "added": list(change.added), "removed": list(change.removed)}  # fmt: skip

    async def scheduled_pass(self) -> None:
        """The periodic pass of every node: pick up a changed key ring, then re-wrap."""
        newer = self._reread()
        if (newer.active, dict(newer.keys)) != (self._ring.active, dict(self._ring.keys)):
            await self.reload()
        await self.rewrap_all()

    async def keys(self) -> list[dict[str, object]]:
        usage = await self._repo.usage()
        retired = await self._repo.retired()
        names = sorted(set(self._ring.keys) | {n for n in usage if n != CLEAR} | retired)
        none: Counter[str] = Counter()
        return [
            {
                "name": name,
                "active": name == self._ring.active,
                "in_key_ring": name in self._ring.keys,
                "retired": name in retired,
                "versions": usage.get(name, none).get("object_versions", 0),
                "uploads": usage.get(name, none).get("multipart_uploads", 0),
                "access_keys": usage.get(name, none).get("access_keys", 0),
            }
            for name in names
        ]

    async def rewrap_pass(self) -> dict[str, int]:
        """Re-wrap one batch; call until ``remaining`` is 0."""
        active = self._ring.active
        envelopes = secrets = 0
        for stale in await self._repo.stale_envelopes(active, BATCH):
            envelope = from_json(stale.encryption)
            data_key = self._ring.unwrap(envelope.kek, envelope.wrapped_key)
            kek, wrapped = self._ring.wrap(data_key)
            fresh = {**stale.encryption, "kek": kek, "wrapped_key": wrapped}
            envelopes += await self._repo.replace_envelope(stale, fresh)
        for access_key, stored in await self._repo.stale_secrets(active, BATCH):
            sealed = secretbox.seal(self._ring, secretbox.open_(self._ring, stored))
            secrets += await self._repo.replace_secret(access_key, stored, sealed)
        remaining = len(await self._repo.stale_envelopes(active, 1)) + len(
            await self._repo.stale_secrets(active, 1)
        )
        return {"envelopes": envelopes, "access_keys": secrets, "remaining": remaining}

    async def rewrap_all(self) -> dict[str, int]:
        total = {"envelopes": 0, "access_keys": 0, "remaining": 0}
        while True:
            done = await self.rewrap_pass()
            total["envelopes"] += done["envelopes"]
            total["access_keys"] += done["access_keys"]
            total["remaining"] = done["remaining"]
            if not done["remaining"] or not (done["envelopes"] or done["access_keys"]):
                return total

    async def retire(self, name: str) -> dict[str, object]:
        if name == self._ring.active:
            raise Conflict(f"{name} is the active key; make another key active first")
        entry = next((k for k in await self.keys() if k["name"] == name), None)
        if entry is None:
            raise Conflict(f"no key named {name} is known")
        in_use = {k: entry[k] for k in ("versions", "uploads", "access_keys") if entry[k]}
        if in_use:
            raise Conflict(f"key {name} is still in use ({in_use}); re-wrap first")
        await self._repo.retire(name)
        return {**entry, "retired": True}
