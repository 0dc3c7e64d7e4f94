"""Key-encryption keys (the key ring) and the wrapping of data keys.

Master keys come from a file or the environment and never reach the database: PostgreSQL
holds only data keys wrapped (AES-256-GCM) under a named key-encryption key. SSE-C data
keys are wrapped under the customer's key, which is never stored; only a salted HMAC of it
is kept, to check the key a later request presents.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_WRAP_AAD = b"skybridge data key v1"


class KeyRingError(ValueError):
    pass


class UnknownKey(KeyRingError):
    pass


def wrap(kek: bytes, data_key: bytes) -> str:
    nonce = secrets.token_bytes(12)
    return base64.b64encode(nonce + AESGCM(kek).encrypt(nonce, data_key, _WRAP_AAD)).decode()


def unwrap(kek: bytes, wrapped: str) -> bytes:
    raw = base64.b64decode(wrapped)
    try:
        return AESGCM(kek).decrypt(raw[:12], raw[12:], _WRAP_AAD)
    except InvalidTag:
        raise KeyRingError("the data key does not unwrap under this key") from None


def customer_key_hmac(salt: bytes, key: bytes) -> str:
    return hmac.new(salt, key, hashlib.sha256).hexdigest()


class KeyRing:
    """A node's key-encryption keys and the active one (which wraps new data keys).

    Every service of a node holds the one ``KeyRing`` object, so a reload (``adopt``)
    reaches them all at once: the next wrap or unwrap uses the new keys.
    """

    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        if active not in keys:
            raise KeyRingError(f"the active key {active!r} is not in the key ring")
        for name, key in keys.items():
            if len(key) != KEY_BYTES:
                raise KeyRingError(f"key {name!r} must be {KEY_BYTES} bytes")
        # One tuple, swapped whole: a reader never sees new keys with an old active key.
        self._state = (dict(keys), active)

    @property
    def keys(self) -> Mapping[str, bytes]:
        return self._state[0]

    @property
    def active(self) -> str:
        return self._state[1]

    def key(self, name: str) -> bytes:
        try:
            return self.keys[name]
        except KeyError:
            raise UnknownKey(name) from None

    def wrap(self, data_key: bytes, name: str | None = None) -> tuple[str, str]:
        """(key name, wrapped data key) under ``name`` or the active key."""
        keys, active = self._state
        chosen = name or active
        if chosen not in keys:
            raise UnknownKey(chosen)
        return chosen, wrap(keys[chosen], data_key)

    def unwrap(self, name: str, wrapped: str) -> bytes:
        return unwrap(self.key(name), wrapped)

    def adopt(self, newer: KeyRing, in_use: Collection[str]) -> RingChange:
        """Take ``newer``'s keys and active key, unless that would strand data: a key in
        ``in_use`` (something is still wrapped or sealed under it) must stay, and a key
        the ring already has must keep its material (else what it wrapped is lost)."""
        keys = self.keys
        dropped = sorted(set(in_use) & (set(keys) - set(newer.keys)))
        if dropped:
            raise KeyRingError(f"the new key ring drops keys still in use: {', '.join(dropped)}")
        changed = sorted(n for n in set(keys) & set(newer.keys) if keys[n] != newer.keys[n])
        if changed:
            raise KeyRingError(f"the new key ring changes the material of {', '.join(changed)}")
        change = RingChange(
            added=tuple(sorted(set(newer.keys) - set(keys))),
            removed=tuple(sorted(set(keys) - set(newer.keys))),
            active=newer.active,
        )
        self._state = newer._state
        return change


@dataclass(frozen=True, slots=True)
class RingChange:
    """What a reload changed."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    active: str


def parse(document: Mapping[str, object]) -> KeyRing:
    """``{"active": "k2", "keys": {"k1": "<base64 of 32 bytes>", ...}}``."""
    raw = document.get("keys")
    if not isinstance(raw, Mapping) or not raw:
        raise KeyRingError("a key ring needs a non-empty 'keys' mapping")
    try:
        keys = {str(k): base64.b64decode(str(v), validate=True) for k, v in raw.items()}
    except ValueError:
        raise KeyRingError("every key must be base64") from None
    return KeyRing(keys, str(document.get("active") or sorted(keys)[-1]))


def load(path: Path | None, env_value: str | None) -> KeyRing | None:
    if env_value:
        return parse(json.loads(env_value))
    if path is not None and path.exists():
        return parse(json.loads(path.read_text()))
    return None


def create_file(path: Path) -> KeyRing:
    """A new key ring with one random key, written readable by the owner only."""
    name = "k1"
    document = {"active": name, "keys": {name: base64.b64encode(os.urandom(KEY_BYTES)).decode()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(document, out)
    return parse(document)
