"""Who is calling: key → organization, mode and scopes, cached on the hot path.

A key lookup is trusted for ``cache_ttl_seconds``; a revocation made by another process (the CLI,
another worker) is therefore seen within that time, and at once in the process that made it.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

import anyio

from kallrec import keys
from kallrec.db.models import ApiKey
from kallrec.db.repository import Repository
from kallrec.errors import AuthenticationError, PermissionDenied

ALL_SCOPES = (
    "sessions:read",
    "sessions:write",
    "recordings:read",
    "recordings:delete",
    "webhooks:manage",
)
_CACHE_LIMIT = 10_000


@dataclass(frozen=True)
class Principal:
    key_id: str
    org_id: str
    livemode: bool
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDenied(
                f"This API key does not have the '{scope}' scope required for this request."
            )


def extract_key(headers: dict[str, str] | object) -> str | None:
    get = headers.get  # type: ignore[attr-defined]
    authorization = get("authorization")
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return ""
    api_key = get("x-api-key")
    return api_key.strip() if api_key is not None else None


class Authenticator:
    def __init__(self, repo: Repository, ttl: float) -> None:
        self.repo = repo
        self.ttl = ttl
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._last_used: dict[str, float] = {}

    async def authenticate(self, secret: str | None) -> Principal:
        if secret is None:
            raise AuthenticationError(
                "No API key provided. Send it as 'Authorization: Bearer sk_…'."
            )
        parsed = keys.parse(secret)
        if parsed is None:
            raise AuthenticationError("Invalid API key provided: the key is malformed.")
        record = await self._lookup(parsed.hash)
        if record is None or not hmac.compare_digest(record.hash, parsed.hash):
            raise AuthenticationError("Invalid API key provided.")
        if record.revoked_at is not None:
            raise AuthenticationError("This API key has been revoked.", code="revoked_api_key")
        self._last_used[record.id] = time.time()
        return Principal(record.id, record.org_id, record.livemode, record.scope_set)

    async def _lookup(self, key_hash: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        record = await anyio.to_thread.run_sync(self.repo.find_key_by_hash, key_hash)
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[key_hash] = (now, record)
        return record

    def forget(self, key_hash: str) -> None:
        """Drops a cached key at once (after this process revoked it)."""
        self._cache.pop(key_hash, None)

    async def flush_last_used(self) -> None:
        pending, self._last_used = self._last_used, {}
        await anyio.to_thread.run_sync(self.repo.touch_keys, pending)
