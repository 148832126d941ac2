"""API keys and their scopes.

Two scopes: ``read`` (search, recall, faces, thumbnails, reading clusters and
people) and ``admin`` (everything, including clustering runs, naming people,
reindexing and erasure). Keys come from the settings: ``api_keys`` are admin
keys (the contract's ``FACESEARCH_API_KEYS``), ``read_keys`` read-only ones.

A configured key is either the key itself or ``sha256:<64 hex digits>``, its
SHA-256 digest (``facesearch hash-key`` prints it), so that a config file need
not hold the secret. Every key is kept as its digest; a request's key is hashed
once and compared with every configured digest by ``hmac.compare_digest``,
without stopping at the first match, so the time taken says nothing about
which key or how much of it matched.

A key's id (``admin-1a2b3c4d``: scope plus the first 8 hex digits of its
digest) names it in the audit log without revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from typing import Literal

Scope = Literal["read", "admin"]
HASHED = re.compile(r"^sha256:([0-9a-fA-F]{64})$")
# A key must be long enough that guessing it is hopeless even unthrottled:
# 16 characters of a random key are ~95 bits (``new_key`` gives 43).
MIN_KEY_CHARS = 16


class KeyConfigError(ValueError):
    """A configured key is malformed (e.g. ``sha256:`` without 64 hex digits)."""


@dataclass(frozen=True)
class ApiKey:
    digest: bytes  # SHA-256 of the key, 32 bytes
    scope: Scope

    @property
    def key_id(self) -> str:
        return f"{self.scope}-{self.digest.hex()[:8]}"


def digest_of(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def hashed_form(key: str) -> str:
    """What to put in a config file instead of the key itself."""
    return f"sha256:{digest_of(key).hex()}"


def new_key() -> str:
    """A fresh random key (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def parse_keys(admin: list[str], read: list[str]) -> tuple[ApiKey, ...]:
    """The configured keys as digests with their scope. Raises
    ``KeyConfigError`` for an empty key, a key shorter than
    ``MIN_KEY_CHARS`` or a ``sha256:`` entry that is not 64 hex digits (a
    digest's key cannot be measured: ``hash-key`` refuses short ones)."""
    keys = []
    for scope, entries in (("admin", admin), ("read", read)):
        for number, entry in enumerate(entries, start=1):
            where = f"{'api_keys' if scope == 'admin' else 'read_keys'} entry {number} of {len(entries)}"
            keys.append(ApiKey(_digest_of_entry(entry, where), scope))  # type: ignore[arg-type]
    return tuple(keys)


def _digest_of_entry(entry: str, where: str) -> bytes:
    entry = entry.strip()
    if not entry:
        raise KeyConfigError(f"{where} is empty")
    if entry.lower().startswith("sha256:"):
        match = HASHED.match(entry)
        if match is None:
            raise KeyConfigError(f"{where}: a hashed API key must be `sha256:` followed by 64 hex digits")
        return bytes.fromhex(match.group(1))
    check_strength(entry, where)
    return digest_of(entry)


def check_strength(key: str, where: str = "the key") -> None:
    """``KeyConfigError`` for a key too short to withstand guessing."""
    if len(key) < MIN_KEY_CHARS:
        raise KeyConfigError(
            f"{where} has {len(key)} characters; an API key needs at least {MIN_KEY_CHARS}: make a strong one "
            "with `facesearch new-key` and configure it (or its `sha256:` form from `facesearch hash-key`)"
        )


def authenticate(given: str, keys: tuple[ApiKey, ...]) -> ApiKey | None:
    """The configured key matching ``given`` (None: no match), compared in
    constant time over all of them."""
    digest = digest_of(given)
    found = None
    for key in keys:
        if hmac.compare_digest(digest, key.digest) and found is None:
            found = key
    return found


def allows(key_scope: Scope, needed: Scope) -> bool:
    return key_scope == "admin" or needed == "read"


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the service on this machine. Names
    other than ``localhost`` count as not loopback (they may resolve anywhere)."""
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
