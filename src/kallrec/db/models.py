"""Rows as typed, immutable records. The API layer turns them into JSON objects."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, fields
from typing import Any, Self

from sqlalchemy.engine import RowMapping

from kallrec.principal import Principal


class _FromRow:
    @classmethod
    def from_row(cls, row: RowMapping) -> Self:
        # Every subclass is a dataclass whose fields are its row's columns; _FromRow itself is
        # not one, so to mypy neither fields(cls) nor the keyword arguments fit it.
        return cls(**{f.name: row[f.name] for f in fields(cls)})  # type: ignore[arg-type]


@dataclass(frozen=True)
class Organization(_FromRow):
    id: str
    name: str
    retention_days: int
    created_at: float
    record_by_default: bool = False


@dataclass(frozen=True)
class ApiKey(_FromRow):
    id: str
    org_id: str
    livemode: bool
    name: str | None
    prefix: str
    hash: str
    scopes: str
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(self.scopes.split())

    @functools.cached_property
    def principal(self) -> Principal:
        """The caller this key makes (built once per cached key, not per request)."""
        return Principal(self.id, self.org_id, self.livemode, self.scope_set)


@dataclass(frozen=True)
class Session(_FromRow):
    id: str
    org_id: str
    livemode: bool
    mode: str
    source_language: str | None
    target_language: str | None
    provider: str | None
    status: str
    recording_enabled: bool
    recording_channels: str
    metadata: str | None
    stream_token: str | None
    stream_token_expires_at: float | None
    created_at: float
    started_at: float | None
    ended_at: float | None
    last_audio_at: float | None = None
    finalized_at: float | None = None
    stream_node: str | None = None
    phone_number: str | None = None
    direction: str | None = None
    routing: str | None = None
    carrier_ids: str | None = None
    ai_agent: str | None = None
    end_reason: str | None = None
    recording_id: str | None = None

    @property
    def metadata_dict(self) -> dict[str, Any] | None:
        return None if self.metadata is None else json.loads(self.metadata)

    @property
    def routing_dict(self) -> dict[str, Any] | None:
        return None if self.routing is None else json.loads(self.routing)

    @property
    def carrier_ids_dict(self) -> dict[str, str]:
        return {} if self.carrier_ids is None else json.loads(self.carrier_ids)

    @property
    def ai_agent_dict(self) -> dict[str, Any] | None:
        return None if self.ai_agent is None else json.loads(self.ai_agent)


@dataclass(frozen=True)
class Recording(_FromRow):
    id: str
    org_id: str
    livemode: bool
    session_id: str
    channel: str
    status: str
    duration: float | None
    size: int | None
    content_hash: str | None
    storage_key: str | None
    staging_key: str | None
    failure_reason: str | None
    created_at: float
    ready_at: float | None
    expires_at: float
    expired_at: float | None
    deleted_at: float | None
    source: str | None = None


@dataclass(frozen=True)
class Job(_FromRow):
    id: str
    kind: str
    subject_id: str
    status: str
    attempts: int
    run_after: float
    lease_until: float | None
    last_error: str | None
    created_at: float
    updated_at: float
    node: str | None = None


@dataclass(frozen=True)
class PlaybackLink(_FromRow):
    id: str
    org_id: str
    livemode: bool
    recording_id: str
    key_id: str
    disposition: str
    created_at: float
    expires_at: float
    revoked_at: float | None
