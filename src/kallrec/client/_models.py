"""The API's objects as frozen, typed dataclasses (spec §3).

Every model is built with ``from_dict``: fields the client does not know are tolerated and kept in
``raw`` (the object exactly as received), fields a server leaves out default to None, and
timestamps become timezone-aware ``datetime`` objects (a value that is not ISO 8601 becomes None
rather than an error, so an unusual server degrades instead of breaking the client).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = [
    "Channel",
    "DeletedObject",
    "MetadataValue",
    "Recording",
    "RecordingSettings",
    "RecordingStatus",
    "Session",
    "SessionStream",
    "WebhookEndpoint",
]

Channel = Literal["mixed", "agent", "customer"]
RecordingStatus = Literal["processing", "ready", "failed", "expired"]
MetadataValue = str | int | float | bool
EMPTY: Mapping[str, Any] = {}


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _mapping(data: Any) -> Mapping[str, Any]:
    return data if isinstance(data, Mapping) else EMPTY


@dataclass(frozen=True)
class Recording:
    """A recording (spec §3.1). ``size`` and ``download_url`` are None until ``ready``."""

    id: str
    object: str = "recording"
    session_id: str | None = None
    channel: str | None = None
    status: str | None = None
    duration: float | None = None
    format: str | None = None
    size: int | None = None
    sample_rate: int | None = None
    bit_depth: int | None = None
    download_url: str | None = None
    failure_reason: str | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    livemode: bool | None = None
    related_recordings: tuple[Recording, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recording:
        related = data.get("related_recordings")
        return cls(
            id=str(data["id"]),
            object=_str(data.get("object")) or "recording",
            session_id=_str(data.get("session_id")),
            channel=_str(data.get("channel")),
            status=_str(data.get("status")),
            duration=_float(data.get("duration")),
            format=_str(data.get("format")),
            size=_int(data.get("size")),
            sample_rate=_int(data.get("sample_rate")),
            bit_depth=_int(data.get("bit_depth")),
            download_url=_str(data.get("download_url")),
            failure_reason=_str(data.get("failure_reason")),
            created_at=parse_time(data.get("created_at")),
            expires_at=parse_time(data.get("expires_at")),
            livemode=_bool(data.get("livemode")),
            related_recordings=tuple(
                cls.from_dict(r) for r in related or () if isinstance(r, Mapping) and "id" in r
            )
            if isinstance(related, list)
            else (),
            raw=data,
        )


@dataclass(frozen=True)
class SessionStream:
    """Where and with which token to connect a live stream (spec §6)."""

    url: str | None = None
    token: str | None = None
    expires_at: datetime | None = None
    # For a session routed through a carrier: ``{type, url, markup_type, markup}``, the markup
    # (TwiML, TeXML, NCCO, Plivo XML) that points the carrier at this stream (docs/carriers.md).
    carrier: Mapping[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionStream:
        carrier = data.get("carrier")
        return cls(
            url=_str(data.get("url")),
            token=_str(data.get("token")),
            expires_at=parse_time(data.get("expires_at")),
            carrier=carrier if isinstance(carrier, Mapping) else None,
        )


@dataclass(frozen=True)
class RecordingSettings:
    """Whether the session records; ``id`` is its ``mixed`` recording once it has ended,
    ``duration`` that recording's once ready."""

    enabled: bool = False
    channels: str = "mixed"
    id: str | None = None
    duration: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordingSettings:
        return cls(
            enabled=_bool(data.get("enabled")) or False,
            channels=_str(data.get("channels")) or "mixed",
            id=_str(data.get("id")),
            duration=_float(data.get("duration")),
        )


def _metadata(value: Any) -> Mapping[str, MetadataValue] | None:
    """Values keep their JSON types (strings, numbers, booleans); anything else is dropped."""
    if not isinstance(value, Mapping):
        return None
    return {str(k): v for k, v in value.items() if isinstance(v, str | int | float | bool)}


@dataclass(frozen=True)
class Session:
    """A session: the call recordings belong to (spec §3.2)."""

    id: str
    object: str = "session"
    status: str | None = None
    mode: str | None = None
    source_language: str | None = None
    target_language: str | None = None
    provider: str | None = None
    phone_number: str | None = None
    stream: SessionStream | None = None
    recording: RecordingSettings = field(default_factory=RecordingSettings)
    metadata: Mapping[str, MetadataValue] | None = None
    routing: Mapping[str, Any] | None = None
    ai_agent: Mapping[str, Any] | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration: float | None = None
    end_reason: str | None = None
    livemode: bool | None = None
    # The carrier's ids of the call and its media streams (call_sid, stream_sid, ...).
    carrier: Mapping[str, str] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Session:
        stream = data.get("stream")
        carrier = data.get("carrier")
        routing, agent = data.get("routing"), data.get("ai_agent")
        duration = data.get("duration")
        return cls(
            id=str(data["id"]),
            object=_str(data.get("object")) or "session",
            status=_str(data.get("status")),
            mode=_str(data.get("mode")),
            source_language=_str(data.get("source_language")),
            target_language=_str(data.get("target_language")),
            provider=_str(data.get("provider")),
            phone_number=_str(data.get("phone_number")),
            stream=SessionStream.from_dict(stream) if isinstance(stream, Mapping) else None,
            recording=RecordingSettings.from_dict(_mapping(data.get("recording"))),
            metadata=_metadata(data.get("metadata")),
            routing=routing if isinstance(routing, Mapping) else None,
            ai_agent=agent if isinstance(agent, Mapping) else None,
            created_at=parse_time(data.get("created_at")),
            started_at=parse_time(data.get("started_at")),
            ended_at=parse_time(data.get("ended_at")),
            # The newer Kallglot docs' end answer has only duration_seconds.
            duration=_float(duration if duration is not None else data.get("duration_seconds")),
            end_reason=_str(data.get("end_reason")),
            livemode=_bool(data.get("livemode")),
            carrier=carrier if isinstance(carrier, Mapping) else None,
            raw=data,
        )


@dataclass(frozen=True)
class WebhookEndpoint:
    """A webhook endpoint (spec §7). ``secret`` (``whsec_…``) is present only on create."""

    id: str
    object: str = "webhook_endpoint"
    url: str | None = None
    enabled_events: tuple[str, ...] = ()
    secret: str | None = None
    created_at: datetime | None = None
    livemode: bool | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WebhookEndpoint:
        events = data.get("enabled_events")
        return cls(
            id=str(data["id"]),
            object=_str(data.get("object")) or "webhook_endpoint",
            url=_str(data.get("url")),
            enabled_events=tuple(str(e) for e in events) if isinstance(events, list) else (),
            secret=_str(data.get("secret")),
            created_at=parse_time(data.get("created_at")),
            livemode=_bool(data.get("livemode")),
            raw=data,
        )


@dataclass(frozen=True)
class DeletedObject:
    """What a DELETE answers: ``{"id", "object", "deleted": true}``."""

    id: str
    object: str
    deleted: bool
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeletedObject:
        return cls(
            id=str(data["id"]),
            object=_str(data.get("object")) or "",
            deleted=bool(data.get("deleted", False)),
            raw=data,
        )
