"""Everything one process needs, built once from the Settings: database, storage, caches."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

import anyio

from kallrec.auth import Authenticator
from kallrec.config import Settings
from kallrec.datadir import ensure_private_dir
from kallrec.db.engine import Database
from kallrec.db.live_repository import LiveRepository
from kallrec.db.models import Recording
from kallrec.db.playback_repository import LinkGrant, PlaybackRepository
from kallrec.db.repository import Repository
from kallrec.db.schema_version import migrate
from kallrec.db.webhook_repository import WebhookRepository
from kallrec.invalidation import ChangeCounter
from kallrec.live.registry import LiveSessions
from kallrec.metrics import Metrics
from kallrec.ratelimit_shared import make_limiter
from kallrec.singleflight import SingleFlight
from kallrec.storage import KeepsFilesOpen, Storage, open_storage
from kallrec.tempfiles import scratch_dir

_CACHE_LIMIT = 50_000


@dataclass
class ReadyRecordings:
    """Ready recordings never change until deleted or purged, so their rows can be reused.

    A delete or purge drops the entry at once in every process on this host (see
    invalidation.py); on other hosts the entry lives at most ``ttl`` seconds, and the file
    itself outlives it (delete_grace_seconds).
    """

    ttl: float
    _entries: dict[tuple[str, bool, str], tuple[float, Recording]] = field(default_factory=dict)

    def get(self, org_id: str, livemode: bool, recording_id: str) -> Recording | None:
        entry = self._entries.get((org_id, livemode, recording_id))
        if entry is None or time.monotonic() - entry[0] >= self.ttl:
            return None
        return entry[1]

    def put(self, recording: Recording) -> None:
        if recording.status != "ready":
            return
        if len(self._entries) >= _CACHE_LIMIT:
            self._entries.clear()
        key = (recording.org_id, recording.livemode, recording.id)
        self._entries[key] = (time.monotonic(), recording)

    def forget(self, recording: Recording) -> None:
        self._entries.pop((recording.org_id, recording.livemode, recording.id), None)

    def clear(self) -> None:
        self._entries.clear()


@dataclass
class LinkGrants:
    """Playback links as their URL's requests see them, so a player's seeks cost no query.

    Revoking a link (or the key that made it) bumps the change counter, which drops this cache in
    every process on this host at once; replicas on other hosts see it within ``ttl``, as they
    see a revoked key."""

    ttl: float
    _entries: dict[str, tuple[float, LinkGrant | None]] = field(default_factory=dict)

    def get(self, link_id: str) -> tuple[bool, LinkGrant | None]:
        """(found in the cache, the grant); a link with no row is cached as None, too."""
        entry = self._entries.get(link_id)
        if entry is None or time.monotonic() - entry[0] >= self.ttl:
            return False, None
        return True, entry[1]

    def put(self, link_id: str, grant: LinkGrant | None) -> None:
        if len(self._entries) >= _CACHE_LIMIT:
            self._entries.clear()
        self._entries[link_id] = (time.monotonic(), grant)

    def clear(self) -> None:
        self._entries.clear()


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        ensure_private_dir(settings.data_dir)
        self.db = Database(settings.resolved_database_url, pool_size=settings.database_pool_size)
        migrate(self.db)
        self.repo = Repository(self.db)
        self.webhooks = WebhookRepository(self.db)
        self.playback = PlaybackRepository(self.db)
        self.storage: Storage = open_storage(settings.resolved_storage_url, settings)
        # Shared by every replica on PostgreSQL; per process on SQLite.
        self.limiter = make_limiter(settings, self.db)
        self.ready = ReadyRecordings(settings.cache_ttl_seconds)
        self.link_grants = LinkGrants(settings.cache_ttl_seconds)
        self._link_lookups: SingleFlight[str, tuple[int, LinkGrant | None]] = SingleFlight()
        self._lookups: SingleFlight[tuple[str, bool, str], tuple[int, Recording | None]] = (
            SingleFlight()
        )
        self.metrics = Metrics(self.repo.count_recordings_by_status, self.repo.count_waiting_jobs)
        self.live_repo = LiveRepository(self.db)
        self.changes = ChangeCounter(settings.data_dir / "run" / "changes")
        self.auth = Authenticator(self.repo, settings.cache_ttl_seconds, self.changes.value)
        # This process's own scratch: what a dead process leaves is recognisable and swept.
        self.scratch = scratch_dir(settings.tmp_dir, os.getpid())
        # Live calls' unflushed audio: in the scratch, so a dead process's is swept, never sent.
        self.live = LiveSessions(self.scratch / "live")
        # Set when this process queues work, so its job runner starts without waiting a poll.
        self.jobs_pending = asyncio.Event()

    def jobs_wakeup(self) -> None:
        self.jobs_pending.set()

    def refresh_caches(self) -> None:
        """Drops cached keys and recordings if any process changed them (once per request)."""
        if self.changes.changed():
            self.ready.clear()
            self.auth.clear()
            self.link_grants.clear()

    def announce_change(self) -> None:
        """Tells every process here (this one included) that cached rows may be stale."""
        self.changes.bump()
        self.refresh_caches()

    async def get_recording(
        self, org_id: str, livemode: bool, recording_id: str
    ) -> Recording | None:
        cached = self.ready.get(org_id, livemode, recording_id)
        if cached is not None:
            return cached

        async def lookup() -> tuple[int, Recording | None]:
            # The change counter as the query starts: a row read before a delete or purge that
            # lands meanwhile must not be cached after that change cleared the cache.
            seen = self.changes.value()
            row = await anyio.to_thread.run_sync(
                self.repo.get_recording, org_id, livemode, recording_id
            )
            return seen, row

        seen, found = await self._lookups.do((org_id, livemode, recording_id), lookup)
        if found is not None and self.changes.value() == seen:
            self.ready.put(found)
        return found

    async def get_link_grant(self, link_id: str) -> LinkGrant | None:
        """A playback link and whether its key is revoked, cached like keys and recordings."""
        cached, grant = self.link_grants.get(link_id)
        if cached:
            return grant

        async def lookup() -> tuple[int, LinkGrant | None]:
            seen = self.changes.value()  # as in get_recording: never cache across a change
            return seen, await anyio.to_thread.run_sync(self.playback.find_link, link_id)

        seen, found = await self._link_lookups.do(link_id, lookup)
        if self.changes.value() == seen:
            self.link_grants.put(link_id, found)
        return found

    def close(self) -> None:
        self.metrics.flush()
        if isinstance(self.storage, KeepsFilesOpen):
            self.storage.close_all_files()
        self.changes.close()
        if close_limiter := getattr(self.limiter, "close", None):
            close_limiter()
        self.db.close()
