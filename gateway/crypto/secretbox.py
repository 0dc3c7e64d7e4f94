"""Secrets at rest (the secrets of access keys): sealed under a key of the key ring, so
that a database dump holds no usable secret. Format: ``sbs1:<key name>:<base64 of nonce,
ciphertext and tag>``. A value without the prefix is a secret written before sealing
existed; the re-wrap pass seals it."""

from __future__ import annotations

import base64
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.crypto.keyring import KeyRing, KeyRingError

PREFIX = "sbs1:"
_AAD = b"skybridge secret v1"


def seal(ring: KeyRing, secret: str, name: str | None = None) -> str:
    kek = name or ring.active
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(ring.key(kek)).encrypt(nonce, secret.encode(), _AAD)
    return f"{PREFIX}{kek}:{base64.b64encode(nonce + sealed).decode()}"


def key_of(stored: str) -> str | None:
    """The key a stored secret is sealed under (None: stored in clear)."""
    if not stored.startswith(PREFIX):
        return None
    return stored[len(PREFIX) :].split(":", 1)[0]


def open_(ring: KeyRing, stored: str) -> str:
    kek = key_of(stored)
    if kek is None:
        return stored
    raw = base64.b64decode(stored[len(PREFIX) + len(kek) + 1 :])
    try:
        return AESGCM(ring.key(kek)).decrypt(raw[:12], raw[12:], _AAD).decode()
    except InvalidTag:
        raise KeyRingError(f"a secret does not open under key {kek}") from None
