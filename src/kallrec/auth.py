"""Who is calling: key → organization, mode and scopes, cached on the hot path.

A key lookup is trusted for ``cache_ttl_seconds``; a revocation made by another process (the CLI,
another worker) is therefore seen within that time, and at once in the process that made it.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping

import anyio

from kallrec import keys
from kallrec.db.models import ApiKey
from kallrec.db.repository import Repository
from kallrec.errors import AuthenticationError
from kallrec.principal import Principal
from kallrec.singleflight import SingleFlight

ALL_SCOPES = (
    "sessions:read",
    "sessions:write",
    "recordings:read",
    "recordings:delete",
    "webhooks:manage",
)
_CACHE_LIMIT = 10_000


def extract_key(headers: Mapping[str, str]) -> str | None:
    get = headers.get
    authorization = get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return ""
    api_key = get("x-api-key")
    return api_key.strip() if api_key is not None else None


class Authenticator:
    def __init__(
        self, repo: Repository, ttl: float, generation: Callable[[], int] = lambda: 0
    ) -> None:
        self.repo = repo
        self.ttl = ttl
        # The host's change counter (invalidation.py): a key read before a revocation that
        # lands meanwhile is used for its request but not cached.
        self.generation = generation
        # Keyed by the presented secret, so a cached request skips checksum and hashing too.
        # The process holds each secret while serving its request anyway.
        self._cache: dict[str, tuple[float, str, ApiKey | None]] = {}
        self._last_used: dict[str, float] = {}
        self._lookups: SingleFlight[str, tuple[int, ApiKey | None]] = SingleFlight()

    async def authenticate(self, secret: str | None) -> Principal:
        if secret is None:
            raise AuthenticationError(
                "No API key provided. Send it as 'Authorization: Bearer sk_…'."
            )
        cached = self._cache.get(secret)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            key_hash, record = cached[1], cached[2]
        else:
            parsed = keys.parse(secret)
            if parsed is None:
                raise AuthenticationError("Invalid API key provided: the key is malformed.")
            key_hash = parsed.hash
            seen, record = await self._lookups.do(key_hash, lambda: self._lookup(key_hash))
            if self.generation() == seen:
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                self._cache[secret] = (time.monotonic(), key_hash, record)
        if record is None or not hmac.compare_digest(record.hash, key_hash):
            raise AuthenticationError("Invalid API key provided.")
        if record.revoked_at is not None:
            raise AuthenticationError("This API key has been revoked.", code="revoked_api_key")
        self._last_used[record.id] = time.time()
        return record.principal

    async def _lookup(self, key_hash: str) -> tuple[int, ApiKey | None]:
        seen = self.generation()
        return seen, await anyio.to_thread.run_sync(self.repo.find_key_by_hash, key_hash)

    def clear(self) -> None:
        self._cache.clear()

    def forget(self, key_hash: str) -> None:
        """Drops a cached key at once (after this process revoked it)."""
        for secret, entry in list(self._cache.items()):
            if entry[1] == key_hash:
                del self._cache[secret]

    async def flush_last_used(self) -> None:
        pending, self._last_used = self._last_used, {}
        await anyio.to_thread.run_sync(self.repo.touch_keys, pending)
