"""Tables, in SQLAlchemy Core. Timestamps are Unix seconds (float); the API formats them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False, unique=True),
    Column("retention_days", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    # Sessions created without recording.enabled record when this is set (kallrec orgs update).
    Column("record_by_default", Boolean, nullable=False, server_default=false()),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String, primary_key=True),
    Column("org_id", String, ForeignKey("organizations.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("name", String, nullable=True),
    # The first characters of the key, to recognise it in `keys list` without the secret.
    Column("prefix", String, nullable=False),
    Column("hash", String, nullable=False, unique=True),
    Column("scopes", String, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String, primary_key=True),
    Column("org_id", String, ForeignKey("organizations.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("mode", String, nullable=False),
    Column("source_language", String, nullable=True),
    Column("target_language", String, nullable=True),
    Column("provider", String, nullable=True),
    Column("status", String, nullable=False),
    Column("recording_enabled", Boolean, nullable=False),
    Column("recording_channels", String, nullable=False),
    Column("metadata", Text, nullable=True),
    Column("stream_token", String, nullable=True),
    Column("stream_token_expires_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    # Stamped (at most every few seconds) while live audio arrives; drives the idle auto-end.
    Column("last_audio_at", Float, nullable=True),
    # Set in the transaction that turned the live tracks into recordings.
    Column("finalized_at", Float, nullable=True),
    # The replica whose disk holds the live tracks (see Settings.node_id).
    Column("stream_node", String, nullable=True),
    # Telephony routing (kallrec.routing): the carrier is `provider`; `routing` is the object
    # as accepted (JSON), `carrier_ids` the carrier's call (and stream) ids (JSON object).
    Column("phone_number", String, nullable=True),
    Column("direction", String, nullable=True),
    Column("routing", Text, nullable=True),
    Column("carrier_ids", Text, nullable=True),
    Column("ai_agent", Text, nullable=True),  # JSON, stored and echoed, not acted on
    Column("end_reason", String, nullable=True),
    # The session's mixed recording, made in the transaction that ends it.
    Column("recording_id", String, nullable=True),
    Index("ix_sessions_scope", "org_id", "livemode", "id"),
    Index("ix_sessions_token", "stream_token"),
    Index("ix_sessions_open", "status", "last_audio_at"),
)

recordings = Table(
    "recordings",
    metadata,
    Column("id", String, primary_key=True),
    Column("org_id", String, ForeignKey("organizations.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("session_id", String, ForeignKey("sessions.id"), nullable=False),
    Column("channel", String, nullable=False),
    Column("status", String, nullable=False),
    Column("duration", Float, nullable=True),
    Column("size", Integer, nullable=True),
    Column("content_hash", String, nullable=True),
    Column("storage_key", String, nullable=True),
    Column("staging_key", String, nullable=True),
    Column("failure_reason", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("ready_at", Float, nullable=True),
    Column("expires_at", Float, nullable=False),
    Column("expired_at", Float, nullable=True),
    Column("deleted_at", Float, nullable=True),
    # live (made when its session ended, filled from the live tracks) | import; null before 0005.
    Column("source", String, nullable=True),
    Index("ix_recordings_scope", "org_id", "livemode", "id"),
    Index("ix_recordings_session", "session_id", "id"),
    Index("ix_recordings_expiry", "status", "expires_at"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String, primary_key=True),
    Column("kind", String, nullable=False),
    Column("subject_id", String, nullable=False),
    Column("status", String, nullable=False),  # queued | done | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("run_after", Float, nullable=False),
    Column("lease_until", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # When set, only this replica may run the job (it needs files on that replica's disk).
    Column("node", String, nullable=True),
    Index("ix_jobs_due", "status", "run_after"),
)

# Files to remove once no in-flight download can still be reading them (see delete_grace_seconds).
file_reaper = Table(
    "file_reaper",
    metadata,
    Column("storage_key", String, primary_key=True),
    Column("remove_after", Float, nullable=False),
)

# Converted downloads kept in storage under a byte quota, shared by every process and replica
# (kallrec.converted, kallrec.db.conversion_repository).
conversion_cache = Table(
    "conversion_cache",
    metadata,
    Column("storage_key", String, primary_key=True),
    Column("recording_id", String, nullable=False),
    # Bytes: the file's size once ready; while building, the most it may take (reserved).
    Column("size", BigInteger, nullable=False),
    Column("state", String, nullable=False),  # building | ready
    Column("last_used_at", Float, nullable=False),
    Index("ix_conversion_cache_lru", "last_used_at"),
)

# A reader sending a kept conversion, or the process building one, until `until` (renewed while
# it lasts): a pinned conversion is never evicted.
conversion_pins = Table(
    "conversion_pins",
    metadata,
    Column("id", String, primary_key=True),
    Column("storage_key", String, nullable=False),
    Column("until", Float, nullable=False),
    Index("ix_conversion_pins_key", "storage_key", "until"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("org_id", String, nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("key", String, nullable=False),
    Column("request_hash", String, nullable=False),
    Column("status", String, nullable=False),  # running | done
    Column("response_status", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("org_id", "livemode", "key", name="uq_idempotency"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String, primary_key=True),
    Column("org_id", String, ForeignKey("organizations.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # space-separated event types
    Column("description", Text, nullable=True),
    Column("secret", String, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("deleted_at", Float, nullable=True),
    Index("ix_webhook_endpoints_scope", "org_id", "livemode"),
)

# The outbox: an event is written in the same transaction as the change it reports.
events = Table(
    "events",
    metadata,
    Column("id", String, primary_key=True),
    Column("org_id", String, nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("type", String, nullable=False),
    Column("payload", Text, nullable=False),  # the exact JSON body every delivery sends
    Column("created_at", Float, nullable=False),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String, primary_key=True),
    Column("event_id", String, ForeignKey("events.id"), nullable=False),
    Column("endpoint_id", String, ForeignKey("webhook_endpoints.id"), nullable=False),
    # pending | succeeded | failed | canceled (its endpoint was deleted before it went out)
    Column("status", String, nullable=False),
    # Attempts started; a claim counts one before sending (see kallrec.webhooks.delivery).
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_until", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String, ForeignKey("webhook_deliveries.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", Float, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("response_status", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_webhook_attempts_delivery", "delivery_id"),
)

# Playback links (issue 16, kallrec.db.link_repository): a signed URL that needs no key; the row
# makes it revocable, alone or with the key that made it.
playback_links = Table(
    "playback_links",
    metadata,
    Column("id", String, primary_key=True),
    Column("org_id", String, ForeignKey("organizations.id"), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("recording_id", String, nullable=False),
    Column("key_id", String, ForeignKey("api_keys.id"), nullable=False),
    Column("disposition", String, nullable=False),  # inline | attachment
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Index("ix_playback_links_recording", "recording_id"),
    Index("ix_playback_links_expiry", "expires_at"),
)

# A recording's waveform peaks as the compact JSON /peaks sends (kallrec.peaks).
recording_peaks = Table(
    "recording_peaks",
    metadata,
    Column("recording_id", String, primary_key=True),
    Column("peaks", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

# A live call's audio as flushed to storage by the replicas that held its stream (live/flush.py):
# one row per segment (a byte range of a packed object: one object per process per flush round),
# applied in id order when finalizing (the later one wins where two overlap). Positions are in
# samples of the client's clock (8 kHz), whatever replica cut them.
live_segments = Table(
    "live_segments",
    metadata,
    Column("id", String, primary_key=True),
    Column("session_id", String, nullable=False),
    Column("writer", String, nullable=False),
    Column("storage_key", String, nullable=False),
    Column("byte_offset", BigInteger, nullable=False),
    Column("start_sample", BigInteger, nullable=False),
    Column("end_sample", BigInteger, nullable=False),
    Column("size", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_live_segments_session", "session_id", "id"),
    Index("ix_live_segments_object", "storage_key"),
)

# The packed objects live segments are stored in; removed (through the file reaper) with the
# last of their segments.
live_objects = Table(
    "live_objects",
    metadata,
    Column("storage_key", String, primary_key=True),
    Column("created_at", Float, nullable=False),
)

# Processes holding a session's stream (one row per open set of tracks), with a heartbeat each
# flush: finalizing waits until every one has flushed and gone, or its heartbeat is stale.
live_writers = Table(
    "live_writers",
    metadata,
    Column("session_id", String, primary_key=True),
    Column("writer", String, primary_key=True),
    Column("seen_at", Float, nullable=False),
)

# One-time installation tasks (the demo organization): the replica whose insert wins does it.
first_start_claims = Table(
    "first_start_claims",
    metadata,
    Column("name", String, primary_key=True),
    Column("claimed_at", Float, nullable=False),
)

SCHEMA_VERSION = 1


# The shared rate limiter's counters (ratelimit_shared.py). A MetaData of their own, not
# ``metadata``: only that module reads or writes them, and ``metadata.create_all`` (tests, the
# pre-migration baseline) must not make them. On PostgreSQL the table is UNLOGGED (see migration
# 0002): no WAL, and a crash forgets at most a minute of counts.
ratelimit_metadata = MetaData()
rate_limit_counters = Table(
    "rate_limit_counters",
    ratelimit_metadata,
    Column("window_start", BigInteger, primary_key=True),  # Unix seconds, window-aligned
    Column("key_id", String, primary_key=True),
    Column("count", Integer, nullable=False),
)
