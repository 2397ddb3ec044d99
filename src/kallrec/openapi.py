"""The OpenAPI 3.1 description of the API, served on ``GET /openapi.json``.

Built from plain dicts by a few helpers and one table of operations (``_OPERATIONS``). Shared
pieces (schemas, parameters, headers, error responses) live in ``components`` and are referenced
with ``$ref``. Enumerations come from the code that enforces them, so the two cannot disagree;
``tests/test_openapi.py`` checks the rest (routes, object keys, error envelope) against the code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from kallrec import errors, languages, routing, validation
from kallrec.api import playback as playback_api
from kallrec.api import recordings as recordings_api
from kallrec.api import sessions as sessions_api
from kallrec.api.idempotency import MAX_KEY_CHARS
from kallrec.audio.formats import CONTENT_TYPES, FORMATS, SAMPLE_RATES
from kallrec.audio.peak_scale import MAX_PEAKS, SCALE
from kallrec.auth import ALL_SCOPES
from kallrec.db.webhook_repository import DELIVERY_STATUSES
from kallrec.events import EVENT_TYPES, SUBSCRIBABLE_EVENT_TYPES
from kallrec.importing import IMPORT_CHANNELS
from kallrec.lifecycle import END_REASONS
from kallrec.webhooks.endpoints import ALL_EVENTS, MAX_DESCRIPTION_CHARS, MAX_URL_CHARS
from kallrec.webhooks.outcomes import CATEGORIES
from kallrec.webhooks.signing import SECRET_PREFIX

JSON = dict[str, Any]

RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
AUDIO_HEADERS = (
    "Content-Length",
    "Content-Disposition",
    "ETag",
    "Last-Modified",
    "Accept-Ranges",
    "Cache-Control",
)

DESCRIPTION = f"""\
Self-hostable call recording with the Kallglot v1 REST dialect: a client written for Kallglot \
works by changing only the base URL and the key.

**Authentication.** Every `/v1` request carries a secret key, as `Authorization: Bearer sk_…` or \
`X-API-Key: sk_…`. Each operation names the scope it needs (`x-required-scope`); the scopes are \
{", ".join(f"`{s}`" for s in ALL_SCOPES)}. A missing, malformed, unknown or revoked key is a 401, \
a missing scope a 403.

**Modes.** Keys are either live (`sk_live_…`) or test (`sk_test_…`). Each sees only the objects \
of its own organization and mode (objects carry `livemode`); anything else is a plain 404.

**Errors.** Every non-2xx answer has the body `{{"error": {{type, code, message, param, \
request_id, retry_after}}}}` (see the `Error` schema) and every answer, success too, an \
`X-Request-ID` header. A request body field that is missing or holds a value kallrec does not \
accept is a 400 of type `validation_error`, as Kallglot types it (codes `missing_required_field`, \
`invalid_field_value`, `invalid_mode`, `invalid_language_code`, `invalid_provider`, and \
`invalid_request` for an unknown field), `param` naming the field; a body that cannot be read, \
query parameters, headers and cursors are `invalid_request_error`. Unknown routes answer 404 \
`route_not_found`, unsupported methods 405 \
`method_not_allowed` (with `Allow`). Error bodies are sent with `Cache-Control: no-store`; \
answers to `HEAD` have no body.

**Rate limits.** Requests are counted per key in one-minute windows. Authenticated answers carry \
`X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix seconds; absent when \
the server runs without a limit); past the limit the answer is 429 `rate_limit_exceeded` with \
`Retry-After`.

**Idempotency.** The creating `POST`s, and ending a session, accept an `Idempotency-Key` header \
(scoped to the \
organization and mode, kept 24 hours). Replaying a key returns the first successful answer \
(status and body) with `Idempotent-Replayed: true`; failed requests are not kept and may be \
corrected and resent under the same key. The same key with a different request is a 400 \
`idempotency_mismatch`; a replay while the first request is still running is a 409 \
`idempotency_conflict` with `Retry-After`.

**Live audio** is streamed over a WebSocket whose URL and token come in the session's `stream` \
object; OpenAPI does not describe that protocol. The same URL takes the media streams of Twilio, \
SignalWire, Telnyx, Vonage and Plivo directly; a session routed through one of them carries the \
markup that points the carrier at it in `stream.carrier` (docs/carriers.md).
"""


def _version() -> str:
    try:
        return metadata.version("kallrec")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def _ref(kind: str, name: str) -> JSON:
    return {"$ref": f"#/components/{kind}/{name}"}


def _headers(*names: str) -> JSON:
    return {name: _ref("headers", name) for name in names}


def _nullable(schema: JSON) -> JSON:
    """``schema`` or null (JSON Schema 2020-12 style, as OpenAPI 3.1 uses)."""
    if "$ref" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    out = {**schema, "type": [schema["type"], "null"]}
    if "enum" in schema:
        out["enum"] = [*schema["enum"], None]
    return out


def _obj(properties: JSON, *, required: tuple[str, ...] | None = None, **extra: Any) -> JSON:
    """An object schema; every property is required unless ``required`` says otherwise."""
    req = list(properties) if required is None else list(required)
    return {"type": "object", "required": req, "properties": properties, **extra}


def _enum(values: tuple[str, ...], description: str = "", **extra: Any) -> JSON:
    out: JSON = {"type": "string", "enum": list(values), **extra}
    if description:
        out["description"] = description
    return out


def _const(value: str | int | bool, description: str = "") -> JSON:
    kind = {bool: "boolean", int: "integer", str: "string"}[type(value)]
    out: JSON = {"type": kind, "const": value}
    if description:
        out["description"] = description
    return out


def _str(description: str, **extra: Any) -> JSON:
    return {"type": "string", "description": description, **extra}


def _prefixed_id(prefix: str, description: str, alphabet: str = "0-9A-Za-z") -> JSON:
    return _str(description, pattern=f"^{prefix}_[{alphabet}]+$", examples=[f"{prefix}_01J…"])


# A ULID in Crockford base32 (kallrec.ids): 26 digits, 128 bits, so the first is at most 7.
_ULID = "[0-7][0-9A-HJKMNP-TV-Z]{25}"
_EXAMPLE_ULID = "01JQ3X5Z8P9K2M4N6R7T0V1W2Y"


def _id_schema(prefix: str) -> JSON:
    """An id as requests carry it: the type prefix and a ULID (``rec_01JQ…``)."""
    return {
        "type": "string",
        "pattern": f"^{prefix}_{_ULID}$",
        "examples": [f"{prefix}_{_EXAMPLE_ULID}"],
    }


_TIMESTAMP = {"type": "string", "format": "date-time", "examples": ["2026-03-26T11:04:20Z"]}
_BINARY = {"type": "string", "format": "binary"}


# -- schemas -------------------------------------------------------------------------------------


def _error_types() -> list[str]:
    """The ``type`` of every class in the error tree, in tree order."""
    found: list[str] = []
    pending: list[type[errors.ApiError]] = [errors.ApiError]
    while pending:
        cls = pending.pop(0)
        if cls.type not in found:
            found.append(cls.type)
        pending.extend(cls.__subclasses__())
    return found


# A key of 1 to 40 characters (validation.MAX_METADATA_KEY_CHARS) with no `]`, and none of the
# three characters a multipart encoder escapes in a field name (`"`, CR, LF become %22, %0D, %0A,
# WHATWG's form encoding): such a key would not arrive as it was written.
_IMPORT_METADATA = rf'^metadata\[[^\]"\r\n]{{1,{validation.MAX_METADATA_KEY_CHARS}}}\]$'


def _import_metadata_field() -> JSON:
    return {
        "type": "string",
        "maxLength": validation.MAX_METADATA_VALUE_CHARS,
        "description": (
            "`metadata[key]=value` for the new session; the key is 1 to "
            f'{validation.MAX_METADATA_KEY_CHARS} characters, without `]`, `"`, CR or LF.'
        ),
    }


def _language_pattern() -> str:
    """kallrec.languages as a regular expression: two letters only from its ISO 639-1 list
    (spelled out, so that a client or a generator can know which), or any three; any case."""

    def either_case(letters: str) -> str:
        return "".join(f"{c}{c.upper()}" for c in letters)

    seconds: dict[str, str] = {}
    for code in sorted(languages.ISO_639_1):
        seconds[code[0]] = seconds.get(code[0], "") + code[1]
    two = "|".join(f"[{either_case(a)}][{either_case(b)}]" for a, b in seconds.items())
    return rf"^(?:{two}|[A-Za-z]{{3}})(?:-[A-Za-z]{{4}})?(?:-(?:[A-Za-z]{{2}}|[0-9]{{3}}))?$"


def _schemas() -> JSON:
    metadata_schema = {
        "type": "object",
        "description": "Free-form key/values: strings, numbers or booleans, echoed with their "
        "JSON types.",
        "maxProperties": validation.MAX_METADATA_KEYS,
        "propertyNames": {"minLength": 1, "maxLength": validation.MAX_METADATA_KEY_CHARS},
        "additionalProperties": {
            "anyOf": [
                {"type": "string", "maxLength": validation.MAX_METADATA_VALUE_CHARS},
                {
                    "type": "integer",
                    "minimum": -validation.MAX_SAFE_INTEGER,
                    "maximum": validation.MAX_SAFE_INTEGER,
                },
                {"type": "number"},
                {"type": "boolean"},
            ]
        },
    }
    language = {
        "type": "string",
        "pattern": _language_pattern(),
        "maxLength": languages.MAX_CHARS,
        "description": "A language code (BCP 47: an ISO 639 language, optionally a script "
        "and a region); anything else is a 400 `invalid_language_code`. Echoed as sent.",
        "examples": ["de", "en-US", "pt-BR", "zh-Hant"],
    }
    recording = _obj(
        {
            "id": _prefixed_id("rec", "Unique id; ids sort by creation time."),
            "object": _const("recording"),
            "session_id": _prefixed_id("sess", "The session the recording belongs to."),
            "channel": _enum(
                recordings_api.CHANNELS, "`mixed` (both parties), `agent` or `customer`."
            ),
            "status": _enum(
                recordings_api.STATUSES,
                "`expired`: past retention, the audio was purged.",
            ),
            "duration": {
                "type": ["number", "null"],
                "description": "Seconds, from the decoded audio; null until known.",
            },
            "format": _const("mp3"),
            "size": {
                "type": ["integer", "null"],
                "minimum": 0,
                "description": "Bytes of the stored MP3; null unless `status` is `ready`.",
            },
            "sample_rate": _const(8000),
            "bit_depth": _const(16, "Decoded sample depth."),
            "download_url": {
                "type": ["string", "null"],
                "description": "`/v1/recordings/{id}/audio` (relative; call it with your key) "
                "when `status` is `ready`, else null.",
            },
            "failure_reason": {
                "type": ["string", "null"],
                "enum": ["no_audio", "audio_missing", "processing_error", None],
                "description": "Why a `failed` recording failed (null otherwise): `no_audio`, "
                "its session recorded and no audio arrived; `audio_missing`, its audio was lost "
                "before it was encoded; `processing_error`, anything else.",
            },
            "created_at": _TIMESTAMP,
            "expires_at": {**_TIMESTAMP, "description": "When retention purges the audio."},
            "livemode": {"type": "boolean", "description": "True for live-mode objects."},
        },
        description="A recording of one channel of a call, served as MP3 (8 kHz mono).",
    )
    session = _obj(
        {
            "id": _prefixed_id("sess", "Unique id; ids sort by creation time."),
            "object": _const("session"),
            "status": _enum(
                ("created", "active", "ended"),
                "`active` from the first audio or stream connect, `ended` once ended.",
            ),
            "mode": _enum(sessions_api.SESSION_MODES, "Stored and echoed (no translation)."),
            "provider": _nullable(
                _enum(
                    sessions_api.PROVIDERS,
                    "The carrier of the session's `routing` (its `type`), as Kallglot answers "
                    "it; null without one. Response only: send telephony in `routing`.",
                )
            ),
            "phone_number": {
                "type": ["string", "null"],
                "description": "`routing.phone_number` (E.164), or null.",
            },
            "source_language": _nullable(language),
            "target_language": _nullable(language),
            "stream": {
                **_nullable(_ref("schemas", "SessionStream")),
                "description": "How to stream live audio: the URL and a `kst_live_`/`kst_test_` "
                "token, only for keys with `sessions:write` (the token lets its holder write the "
                "session). Null for other keys, and once the session has ended.",
            },
            "sip": {
                "type": ["object", "null"],
                "properties": {
                    "uri": {
                        "type": "string",
                        "description": "`sip:<session id>@<host:port>`; add `;token=<stream "
                        "token>` (or an `X-Kallrec-Token` header) unless the call comes from a "
                        "trunk of the organization (docs/sip.md).",
                    }
                },
                "required": ["uri"],
                "description": "Where a PBX sends this session's call leg (INVITE), while the "
                "session is open and kallrec answers SIP (`KALLREC_SIP_LISTEN`); else null.",
            },
            "recording": _ref("schemas", "SessionRecording"),
            "metadata": _nullable(_ref("schemas", "Metadata")),
            "routing": {
                **_nullable(_ref("schemas", "Routing")),
                "description": "The routing (or older `provider` object) the session was "
                "created with, as accepted, unknown keys included; null without one.",
            },
            "ai_agent": {
                "type": ["object", "null"],
                "description": "As sent at creation; stored and echoed, not acted on (kallrec "
                "records, it runs no agent).",
            },
            "created_at": _TIMESTAMP,
            "started_at": _nullable(_TIMESTAMP),
            "ended_at": _nullable(_TIMESTAMP),
            "duration": {
                "type": ["number", "null"],
                "description": "Seconds between `started_at` and `ended_at`.",
            },
            "duration_seconds": {
                "type": ["number", "null"],
                "description": "The same as `duration` (the newer Kallglot docs' name).",
            },
            "carrier": {
                "type": ["object", "null"],
                "additionalProperties": {"type": "string"},
                "description": "The carrier's own ids of the call and its media streams, as "
                "their frames gave them (`call_sid`, `stream_sid`, `call_control_id`, "
                "`stream_id`, `call_id`, `uuid`, ...) and `carrier`, the dialect heard; "
                "null before any (docs/carriers.md).",
            },
            "end_reason": _nullable(
                _enum(
                    END_REASONS,
                    "Why it ended: the end request's `reason` (default `completed`; a stream's "
                    "`session.end` is `completed`), `timeout` after 30 minutes without audio. "
                    "Null until ended (and for sessions ended before kallrec kept it).",
                )
            ),
            "livemode": {"type": "boolean", "description": "True for live-mode objects."},
        },
        description="A call; its recordings are made when it ends.",
    )
    session_recording = _obj(
        {
            "enabled": {
                "type": "boolean",
                "description": "Whether the session records. When not given at creation: "
                "false, unless the organization records by default (`kallrec orgs update ORG "
                "--record-by-default`).",
            },
            "channels": _enum(
                sessions_api.CHANNELS,
                "`dual` also makes one recording per party.",
                default="mixed",
            ),
            "id": {
                **_nullable(_id_schema("rec")),
                "description": "The `mixed` recording, made (`processing`) when the session "
                "ends; null before, or when the session does not record.",
            },
            "duration": {
                "type": ["number", "null"],
                "description": "Seconds of the `mixed` recording once it is ready, else null.",
            },
        }
    )
    create_recording = _obj(
        {
            "enabled": _nullable(
                {
                    "type": "boolean",
                    "description": "Default: false, unless the organization records by default.",
                }
            ),
            "channels": _nullable(
                _enum(
                    sessions_api.CHANNELS,
                    "`dual` also makes one recording per party.",
                    default="mixed",
                )
            ),
        },
        required=(),
        additionalProperties=False,
    )
    routing_schema = _obj(
        {
            "type": _enum(
                routing.CARRIERS,
                "`sip` as Kallglot documents it; kallrec adds the carriers whose media streams "
                "it takes. Answered as the session's `provider`.",
            ),
            "phone_number": {
                "type": "string",
                "pattern": r"^\+[1-9][0-9]{1,14}$",
                "description": "E.164; answered as the session's `phone_number`.",
                "examples": ["+14155551234"],
            },
            "connection_id": {
                "type": "string",
                "minLength": 1,
                "maxLength": routing.MAX_ID_CHARS,
                "description": "Stored and echoed; kallrec resolves no connections.",
                "examples": ["pcon_01HXYZ"],
            },
            "direction": _enum(
                routing.DIRECTIONS,
                "Which way the call goes: sets which carrier track is which speaker.",
            ),
            "sip": {
                "type": "object",
                "properties": {
                    # kallrec.routing: the scheme in any case, then no space or control
                    # character (ASCII: the server's regular expression is ASCII).
                    "from_uri": {
                        "type": ["string", "null"],
                        "maxLength": routing.MAX_URI_CHARS,
                        "pattern": r"^(?:[Ss][Ii][Pp][Ss]?|[Tt][Ee][Ll]):[^\x00-\x20\x7f]+$",
                        "examples": ["sip:alice@example.com"],
                    }
                },
                "description": "SIP details; keys other than `from_uri` are kept as sent.",
            },
            **{
                key: {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": routing.MAX_ID_CHARS,
                    "description": "The carrier's id of the call (the older guides'), kept.",
                }
                for key in routing.CARRIER_ID_FIELDS
            },
        },
        required=(),
        description="Telephony routing (Kallglot's `routing`; the older `provider` object "
        "takes the same keys). Every key is optional, and null is the same as absent; keys "
        "kallrec does not know are kept and not acted on. Anything invalid here is a 400 "
        "`invalid_provider`.",
    )
    # The server reads a null as an absent key (kallrec.routing).
    routing_schema["properties"] = {
        key: _nullable(value) if "type" in value else value
        for key, value in routing_schema["properties"].items()
    }
    return {
        "Recording": recording,
        "ImportedRecording": {
            "description": "The recording an import made (`mixed`, or the requested channel).",
            "allOf": [
                _ref("schemas", "Recording"),
                {
                    "type": "object",
                    "properties": {
                        "related_recordings": {
                            "type": "array",
                            "description": "Only for `channel=dual`: the `agent` and "
                            "`customer` recordings made alongside.",
                            "items": _ref("schemas", "Recording"),
                        }
                    },
                },
            ],
        },
        "RecordingList": _obj(
            {
                "object": _const("list"),
                "data": {"type": "array", "items": _ref("schemas", "Recording")},
                "has_more": {"type": "boolean"},
                "url": _str("The list's own path.", examples=["/v1/recordings"]),
            },
            description="One page of recordings, newest first.",
        ),
        "DownloadLink": _obj(
            {
                "url": _str(
                    "Where `Location` points, absolute: the signed URL of the converted file "
                    "on KALLREC_PUBLIC_URL, else on the host the request was sent to (relative "
                    "only when its Host header is not a host name); or a presigned storage URL.",
                    examples=[
                        "https://rec.example.com/v1/recordings/rec_01J…/download/file"
                        "?format=wav&sample_rate=16000"
                    ],
                ),
                "expires_at": {**_TIMESTAMP, "description": "When the URL stops working."},
            }
        ),
        "DeletedRecording": _obj(
            {
                "id": _prefixed_id("rec", "The deleted recording."),
                "object": _const("recording"),
                "deleted": _const(True),
            }
        ),
        "Session": session,
        "SessionStream": _obj(
            {
                "url": _str(
                    "WebSocket URL of the live audio stream.",
                    examples=["wss://kallrec.example/v1/sessions/sess_01J…/connect"],
                ),
                "token": _prefixed_id(
                    "kst",
                    "Pass as `?token=`, or as `Authorization: Bearer` when connecting (the "
                    "older Kallglot docs' way; `?token=` is used when both are sent); checked "
                    "only when connecting.",
                    "0-9A-Za-z_-",
                ),
                "expires_at": _TIMESTAMP,
                "carrier": {
                    "type": "object",
                    "description": "For a session whose `routing.type` is a carrier: the URL "
                    "it should open and the markup (TwiML, LaML, TeXML, NCCO, Plivo XML) that "
                    "makes it do so, token filled in (docs/carriers.md).",
                    "properties": {
                        "type": _str("The carrier."),
                        "url": _str("The URL the carrier opens."),
                        "markup_type": _enum(
                            ("twiml", "laml", "texml", "ncco", "plivo_xml"), "The markup's kind."
                        ),
                        "markup": {
                            "type": ["string", "array"],
                            "description": "XML to answer the carrier's webhook with, or the "
                            "NCCO (a JSON array).",
                        },
                    },
                },
            },
            required=("url", "token", "expires_at"),
            description="How to stream live audio; null once the session has ended.",
        ),
        "SessionRecording": session_recording,
        "SessionList": _obj(
            {
                "object": _const("list"),
                "data": {"type": "array", "items": _ref("schemas", "Session")},
                "has_more": {"type": "boolean"},
                "url": _str("The list's own path.", examples=["/v1/sessions"]),
            },
            description="One page of sessions, newest first.",
        ),
        "Metadata": metadata_schema,
        "Routing": routing_schema,
        "SessionCreate": _obj(
            {
                "mode": _enum(sessions_api.SESSION_MODES),
                "source_language": _nullable(language),
                "target_language": _nullable(language),
                "routing": _nullable(_ref("schemas", "Routing")),
                "provider": {
                    **_nullable(_ref("schemas", "Routing")),
                    "description": "The older Kallglot docs' name for `routing` (not with it). "
                    "A string is refused (`invalid_provider`): a session's `provider` is "
                    "response only.",
                },
                "recording": _nullable(create_recording),
                "metadata": _nullable(_ref("schemas", "Metadata")),
                "ai_agent": {
                    "type": ["object", "null"],
                    "description": "Stored and echoed, not acted on; at most "
                    f"{validation.MAX_OBJECT_BYTES // 1024} KiB as JSON and "
                    f"{validation.MAX_OBJECT_DEPTH} levels deep.",
                },
            },
            required=("mode",),
            additionalProperties=False,
            # routing and the older provider object exclude each other (null is absent).
            **{
                "not": {
                    "required": ["routing", "provider"],
                    "properties": {"routing": {"type": "object"}, "provider": {"type": "object"}},
                }
            },
        ),
        "SessionEnd": _obj(
            {"reason": _enum(END_REASONS, "Why the session ends.", default="completed")},
            required=(),
            additionalProperties=False,
            description="Optional (the newer Kallglot docs send no body).",
        ),
        "RecordingImport": _obj(
            {
                "file": {
                    **_BINARY,
                    "description": "The audio: WAV (PCM 16-bit, μ-law, A-law; mono or "
                    "stereo; any common rate), raw μ-law, or MP3.",
                },
                "session_id": {
                    **_id_schema("sess"),
                    "description": "An existing session of the key's organization and mode; "
                    "when absent a new, ended session is made, with the `metadata` fields. Not "
                    "with `metadata` (400): an existing session keeps its own.",
                },
                "channel": _enum(
                    IMPORT_CHANNELS,
                    "`dual` needs a stereo file (left = agent, right = customer) and makes "
                    "`mixed`, `agent` and `customer` recordings.",
                    default="mixed",
                ),
            },
            required=("file",),
            patternProperties={_IMPORT_METADATA: _import_metadata_field()},
            additionalProperties=False,
            # session_id and metadata fields exclude each other.
            dependentSchemas={"session_id": {"patternProperties": {_IMPORT_METADATA: False}}},
        ),
        **_webhook_schemas(),
        **_playback_schemas(),
        "Error": _obj(
            {
                "type": _enum(tuple(_error_types())),
                "code": _str(
                    "Machine-readable reason, e.g. `invalid_api_key`, `revoked_api_key`, "
                    "`insufficient_permissions`, `invalid_request`, `missing_required_field`, "
                    "`invalid_field_value`, `invalid_mode`, `invalid_language_code`, "
                    "`invalid_provider`, `resource_missing`, "
                    "`route_not_found`, `method_not_allowed`, `recording_not_ready`, "
                    "`recording_failed`, `recording_expired`, `precondition_failed`, "
                    "`range_not_satisfiable`, `file_too_large`, `unsupported_media_type`, "
                    "`invalid_audio`, `idempotency_mismatch`, `idempotency_conflict`, "
                    "`rate_limit_exceeded`, `storage_unavailable`, `internal_error`."
                ),
                "message": _str("Human-readable explanation."),
                "param": {
                    "type": ["string", "null"],
                    "description": "The offending parameter or header, if any.",
                },
                "request_id": _prefixed_id("req", "Equals the `X-Request-ID` header."),
                "retry_after": {
                    "type": ["integer", "null"],
                    "minimum": 1,
                    "description": "Seconds to wait; equals the `Retry-After` header.",
                },
            }
        ),
        "ErrorEnvelope": _obj({"error": _ref("schemas", "Error")}),
        "Health": _obj({"status": _const("ok")}),
        "Readiness": _obj(
            {
                "status": _enum(("ok", "unavailable")),
                "checks": _obj(
                    {
                        "database": _str("`ok` or `unavailable: <reason>`."),
                        "storage": _str("`ok` or `unavailable: <reason>`."),
                    }
                ),
            }
        ),
    }


def _webhook_schemas() -> JSON:
    """Webhook endpoints and their deliveries (spec §7)."""
    enabled_event = _enum(
        (*SUBSCRIBABLE_EVENT_TYPES, ALL_EVENTS),
        f"An event type, or `{ALL_EVENTS}` for all. Kallglot's `session.provider.*`, "
        "`transcript.*` and `analysis.*` names are accepted, so its clients' subscriptions "
        "work unchanged, but not sent: `session.provider.*` will be once carrier and SIP "
        "streams exist; kallrec makes no transcripts or analyses.",
    )
    url = _str(
        "Absolute http(s) URL, with a host and without credentials; events are POSTed to it. "
        "A host that is, or resolves to, a loopback, private, link-local, CGNAT, unspecified, "
        "multicast or reserved address (in any spelling) is refused (400, param `url`) unless "
        "the operator allows its network in KALLREC_WEBHOOK_ALLOWED_NETWORKS; the sender checks "
        "again the address it connects to at every attempt.",
        format="uri",
        minLength=1,
        maxLength=MAX_URL_CHARS,
        examples=["https://example.com/kallrec/webhooks"],
    )
    livemode = {"type": "boolean", "description": "True for live-mode objects."}

    def page(item: str, what: str, example: str) -> JSON:
        return _obj(
            {
                "object": _const("list"),
                "data": {"type": "array", "items": _ref("schemas", item)},
                "has_more": {"type": "boolean"},
                "url": _str("The list's own path.", examples=[example]),
            },
            description=f"One page of {what}, newest first.",
        )

    return {
        "WebhookEndpoint": _obj(
            {
                "id": _prefixed_id("wh", "Unique id; ids sort by creation time."),
                "object": _const("webhook_endpoint"),
                "url": url,
                "enabled_events": {
                    "type": "array",
                    "minItems": 1,
                    "uniqueItems": True,
                    "items": enabled_event,
                    "description": f'The event types sent to it; `["{ALL_EVENTS}"]` means all.',
                },
                "description": {
                    "type": ["string", "null"],
                    "minLength": 1,
                    "maxLength": MAX_DESCRIPTION_CHARS,
                    "description": "Free text; null when none.",
                },
                "created_at": _TIMESTAMP,
                "livemode": livemode,
            },
            description="Where events are sent. The signing secret is only in the answer to "
            "the create request (`WebhookEndpointWithSecret`).",
        ),
        "WebhookEndpointWithSecret": {
            "description": "The endpoint as created: the only answer that carries `secret` "
            "(an `Idempotency-Key` replay repeats that answer).",
            "allOf": [
                _ref("schemas", "WebhookEndpoint"),
                _obj(
                    {
                        "secret": _str(
                            "Signing secret: `Kallglot-Signature` is HMAC-SHA256 under it. "
                            "Store it now; it is not shown again.",
                            pattern=f"^{SECRET_PREFIX}[0-9A-Za-z_-]+$",
                            examples=[f"{SECRET_PREFIX}…"],
                        )
                    }
                ),
            ],
        },
        "WebhookEndpointCreate": _obj(
            {
                "url": url,
                "enabled_events": {
                    "type": "array",
                    "minItems": 1,
                    "items": enabled_event,
                    "description": f"Duplicates are dropped; `{ALL_EVENTS}` anywhere means all.",
                },
                "description": {
                    "type": ["string", "null"],
                    "maxLength": MAX_DESCRIPTION_CHARS,
                    "description": "Free text; empty or null means none.",
                },
            },
            required=("url", "enabled_events"),
            additionalProperties=False,
        ),
        "WebhookEndpointList": page(
            "WebhookEndpoint", "webhook endpoints", "/v1/webhook_endpoints"
        ),
        "DeletedWebhookEndpoint": _obj(
            {
                "id": _prefixed_id("wh", "The deleted endpoint."),
                "object": _const("webhook_endpoint"),
                "deleted": _const(True),
            }
        ),
        "WebhookDelivery": _obj(
            {
                "id": _prefixed_id(
                    "wh_del", "Unique id, sent as `Kallglot-Webhook-Id` (stable across retries)."
                ),
                "object": _const("webhook_delivery"),
                "endpoint_id": _prefixed_id("wh", "The endpoint it is sent to."),
                "event_id": _prefixed_id("evt", "The event it carries (the body's `id`)."),
                "event_type": _enum(EVENT_TYPES),
                "status": _enum(
                    DELIVERY_STATUSES,
                    "`pending` until an attempt gets a 2xx (`succeeded`) or the retry schedule "
                    "is spent (`failed`); `canceled` when its endpoint was deleted first.",
                ),
                "attempt_count": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Attempts started, one in progress included.",
                },
                "next_attempt_at": {
                    **_nullable(_TIMESTAMP),
                    "description": "When the next attempt is due; null unless `pending`.",
                },
                "created_at": _TIMESTAMP,
                "attempts": {
                    "type": "array",
                    "description": "The finished attempts, oldest first.",
                    "items": _ref("schemas", "WebhookDeliveryAttempt"),
                },
            },
            description="One event sent to one endpoint, with its attempts.",
        ),
        "WebhookDeliveryAttempt": _obj(
            {
                "attempt": {"type": "integer", "minimum": 1, "description": "1 for the first."},
                "started_at": _TIMESTAMP,
                "latency_ms": {"type": "number", "minimum": 0},
                "response_status": {
                    "type": ["integer", "null"],
                    "description": "The receiver's HTTP status; null when none was received.",
                },
                "category": _enum(
                    CATEGORIES,
                    "What the attempt came to: `http_status` when the receiver answered (the "
                    "code is `response_status`), otherwise why no answer came. Never error "
                    "text or the receiver's headers (spec §9).",
                ),
                "error": {
                    "type": ["string", "null"],
                    "enum": [*CATEGORIES, None],
                    "description": "Null when the attempt succeeded; otherwise its `category` "
                    "(kept for clients written before `category`; it used to hold error text).",
                },
            }
        ),
        "WebhookDeliveryList": page(
            "WebhookDelivery", "deliveries", "/v1/webhook_endpoints/wh_01J…/deliveries"
        ),
    }


# -- parameters and headers ----------------------------------------------------------------------


def _param(name: str, where: str, schema: JSON, description: str, **extra: Any) -> JSON:
    out = {"name": name, "in": where, "description": description, "schema": schema, **extra}
    if where == "path":
        out["required"] = True
    return out


# The lists and the prefix of the ids they page through (cursors are ids of listed objects).
_CURSOR_KINDS = {"Recording": "rec", "Session": "sess", "Endpoint": "wh", "Delivery": "wh_del"}


def _cursors(kind: str, prefix: str) -> JSON:
    """``starting_after`` and ``ending_before`` of one list. That the two exclude each other is
    only said in words: OpenAPI cannot tie one query parameter to another."""
    # Empty is no cursor (kallrec.api.common.page_params): a client may send `?starting_after=`
    # for its first page.
    schema = {**_id_schema(prefix), "pattern": f"^(?:{prefix}_{_ULID})?$"}
    return {
        f"{kind}StartingAfter": _param(
            "starting_after",
            "query",
            schema,
            "Cursor: the page after this id (older), the id of an object on this list; empty "
            "means none. An id that is not on it is a 400. Not with `ending_before` (400).",
        ),
        f"{kind}EndingBefore": _param(
            "ending_before",
            "query",
            schema,
            "Cursor: the page before this id (newer), the id of an object on this list; empty "
            "means none. An id that is not on it is a 400. Not with `starting_after` (400).",
        ),
    }


def _page(kind: str) -> tuple[str, ...]:
    return ("Limit", f"{kind}StartingAfter", f"{kind}EndingBefore")


def _created_schema(*examples: str) -> JSON:
    """``created[gte]`` / ``created[lt]``: what kallrec.api.recordings reads as a time."""
    return {
        "anyOf": [
            {"type": "string", "format": "date-time"},
            {"type": "string", "format": "date"},
            # Unix seconds, maybe with a fraction: ASCII digits and at most one dot.
            {"type": "string", "pattern": r"^(?:[0-9]+\.?[0-9]*|\.[0-9]+)$"},
        ],
        "examples": list(examples),
    }


def _parameters() -> JSON:
    http_date = {"type": "string", "examples": ["Wed, 26 Mar 2026 11:04:20 GMT"]}
    return {
        "SessionId": _param("session_id", "path", _id_schema("sess"), "The session's id."),
        "RecordingId": _param("recording_id", "path", _id_schema("rec"), "The recording's id."),
        "EndpointId": _param("endpoint_id", "path", _id_schema("wh"), "The webhook endpoint's id."),
        "Limit": _param(
            "limit",
            "query",
            {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            "Page size; outside 1-100 is a 400 with `param: limit`.",
        ),
        **{
            name: param
            for kind, prefix in _CURSOR_KINDS.items()
            for name, param in _cursors(kind, prefix).items()
        },
        "ChannelFilter": _param(
            "channel", "query", _enum(recordings_api.CHANNELS), "Only this channel."
        ),
        "StatusFilter": _param(
            "status", "query", _enum(recordings_api.STATUSES), "Only this status."
        ),
        "SessionStatusFilter": _param(
            "status", "query", _enum(sessions_api.STATUSES), "Only sessions with this status."
        ),
        "CarrierIdFilter": _param(
            "carrier_id",
            "query",
            {"type": "string", "minLength": 1, "maxLength": routing.MAX_ID_CHARS},
            "Only sessions that kept this carrier id (a call or stream id: CallSid, "
            "call_control_id, callId, uuid, streamSid, ...).",
        ),
        "DeliveryStatusFilter": _param(
            "status", "query", _enum(DELIVERY_STATUSES), "Only deliveries with this status."
        ),
        "SessionIdFilter": _param(
            "session_id", "query", {"type": "string"}, "Only this session's recordings."
        ),
        "CreatedGte": _param(
            "created[gte]",
            "query",
            _created_schema("2026-03-01T00:00:00Z", "1772323200"),
            "Created at or after: an RFC 3339 timestamp, a date (midnight UTC) or Unix "
            "seconds. Anything else is a 400 with `param: created[gte]`.",
        ),
        "CreatedLt": _param(
            "created[lt]",
            "query",
            _created_schema("2026-04-01T00:00:00Z", "1775001600"),
            "Created before: an RFC 3339 timestamp, a date (midnight UTC) or Unix seconds. "
            "Anything else is a 400 with `param: created[lt]`.",
        ),
        "IdempotencyKey": _param(
            "Idempotency-Key",
            "header",
            {"type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS},
            "Makes retries safe: a replay returns the first successful answer (see the API "
            "description). Scoped to the organization and mode; kept 24 hours.",
        ),
        "DownloadFormat": _param(
            "format", "query", _enum(FORMATS, default="mp3"), "Format of the converted file."
        ),
        "DownloadSampleRate": _param(
            "sample_rate",
            "query",
            {"type": "integer", "enum": list(SAMPLE_RATES), "default": 8000},
            "Sample rate (Hz) of the converted file (the recording itself is 8000 Hz).",
        ),
        "LinkFormat": _param(
            "format",
            "query",
            _enum(FORMATS),
            "Format of the converted file (signed).",
            required=True,
        ),
        "LinkSampleRate": _param(
            "sample_rate",
            "query",
            {"type": "integer", "enum": list(SAMPLE_RATES)},
            "Sample rate (Hz) of the converted file (signed).",
            required=True,
        ),
        "LinkExpires": _param(
            "expires",
            "query",
            # Checked for shape before the signature: at most 12 ASCII digits.
            {"type": "integer", "minimum": 0, "maximum": 10**12 - 1},
            "Unix seconds after which the link answers 403 `expired_signature` (signed).",
            required=True,
        ),
        "LinkSignature": _param(
            "signature",
            "query",
            # URL-safe base64 of an HMAC-SHA256 digest, without padding.
            {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
            "HMAC-SHA256 of the link; any change answers 403 `invalid_signature`.",
            required=True,
        ),
        "Range": _param(
            "Range",
            "header",
            {"type": "string", "examples": ["bytes=0-", "bytes=0-1023", "bytes=-4096"]},
            "Byte ranges (RFC 9110 §14.2): one range → 206, several → 206 "
            "multipart/byteranges (more than 16 after coalescing → 200). Malformed or "
            "non-bytes ranges are ignored (200).",
        ),
        "FileRange": _param(
            "Range",
            "header",
            {"type": "string", "examples": ["bytes=0-", "bytes=0-1023", "bytes=-4096"]},
            "One byte range (RFC 9110 §14.2) → 206 with `Content-Range`; several ranges get "
            "the whole file (200); malformed or non-bytes ranges are ignored (200); none "
            "overlapping the file → 416. Ignored while a conversion is made as it is sent "
            "(`Accept-Ranges: none`).",
        ),
        "IfRange": _param(
            "If-Range",
            "header",
            {"type": "string"},
            "Honour `Range` only if the audio still has this ETag (strong comparison) or "
            "Last-Modified date.",
        ),
        "IfMatch": _param(
            "If-Match", "header", {"type": "string"}, "412 unless the ETag strongly matches."
        ),
        "IfNoneMatch": _param(
            "If-None-Match", "header", {"type": "string"}, "304 if the ETag matches."
        ),
        "IfModifiedSince": _param(
            "If-Modified-Since",
            "header",
            http_date,
            "304 if not modified since (ignored with If-None-Match).",
        ),
        "IfUnmodifiedSince": _param(
            "If-Unmodified-Since",
            "header",
            http_date,
            "412 if modified since (ignored with If-Match).",
        ),
        **_playback_parameters(),
    }


def _header(description: str, schema: JSON, *, required: bool = False) -> JSON:
    return {"description": description, "required": required, "schema": schema}


def _response_headers() -> JSON:
    integer = {"type": "integer", "minimum": 0}
    return {
        "X-Request-ID": _header(
            "Id of this request (`req_…`); quote it when reporting a problem.",
            {"type": "string"},
            required=True,
        ),
        "X-RateLimit-Limit": _header("Requests allowed per key per minute.", integer),
        "X-RateLimit-Remaining": _header("Requests left in the current window.", integer),
        "X-RateLimit-Reset": _header("When the window resets (Unix seconds).", integer),
        "Retry-After": _header("Seconds to wait before retrying.", {"type": "integer"}),
        "WWW-Authenticate": _header(
            "The authentication scheme.",
            {"type": "string", "examples": ['Bearer realm="kallrec"']},
            required=True,
        ),
        "Idempotent-Replayed": _header(
            "`true` when this answer is a replay of an earlier request with the same "
            "Idempotency-Key.",
            _const("true"),
        ),
        "Content-Length": _header("Bytes in the body (HEAD: what GET would send).", integer),
        "Location": _header("Where to fetch the file (see the body's `url`).", {"type": "string"}),
        "Content-Disposition": _header(
            "Download filename, named after the owning session.",
            {"type": "string", "examples": ['attachment; filename="recording-sess_01J….mp3"']},
        ),
        "ETag": _header(
            "Strong validator derived from the audio's content hash.", {"type": "string"}
        ),
        "Last-Modified": _header("When the audio became ready (HTTP-date).", {"type": "string"}),
        "Accept-Ranges": _header("Byte ranges are supported.", _const("bytes")),
        "FileAcceptRanges": _header(
            "`bytes`, or `none` while a conversion that is not kept is sent as it is made.",
            _enum(("bytes", "none")),
        ),
        "Cache-Control": _header(
            "Recordings are personal data: no shared caches.", _const("private")
        ),
        "Content-Range": _header(
            "`bytes first-last/size` on a single-range 206; `bytes */size` on 416.",
            {"type": "string", "examples": ["bytes 0-1023/48000", "bytes */48000"]},
        ),
        **_playback_headers(),
    }


# -- responses -----------------------------------------------------------------------------------

# status → (component name, default description, headers besides X-Request-ID and rate limits).
_ERRORS: dict[int, tuple[str, str, tuple[str, ...]]] = {
    400: (
        "BadRequest",
        "Invalid request: `validation_error` for a body field (Kallglot's codes), "
        "`invalid_request_error` otherwise; `param` names the field.",
        (),
    ),
    401: (
        "Unauthorized",
        "Missing, malformed or unknown key (`invalid_api_key`) or revoked key (`revoked_api_key`).",
        ("WWW-Authenticate",),
    ),
    403: ("Forbidden", "The key lacks the required scope (`insufficient_permissions`).", ()),
    404: (
        "NotFound",
        "No such object in the key's organization and mode (`resource_missing`).",
        (),
    ),
    409: ("Conflict", "Conflict with the object's state.", ("Retry-After",)),
    410: ("Gone", "The recording passed retention; its audio was purged.", ()),
    412: ("PreconditionFailed", "`If-Match` / `If-Unmodified-Since` failed.", ()),
    413: ("PayloadTooLarge", "The file exceeds the import limit (`file_too_large`).", ()),
    415: ("UnsupportedMediaType", "Unsupported upload (`unsupported_media_type`).", ()),
    416: (
        "RangeNotSatisfiable",
        "No requested range overlaps the audio (`range_not_satisfiable`).",
        ("Content-Range",),
    ),
    422: ("UnprocessableContent", "The audio cannot be decoded (`invalid_audio`).", ()),
    429: ("TooManyRequests", "Rate limit exceeded (`rate_limit_exceeded`).", ("Retry-After",)),
    500: ("InternalError", "Unexpected server error (`internal_error`).", ()),
    503: (
        "ServiceUnavailable",
        "Storage cannot be reached (`storage_unavailable`).",
        ("Retry-After",),
    ),
}


def _error_responses() -> JSON:
    out = {}
    for status, (name, description, extra) in _ERRORS.items():
        rate = () if status == 401 else RATE_HEADERS  # no key, no rate limit
        out[name] = {
            "description": description,
            "headers": _headers("X-Request-ID", *rate, *extra),
            "content": {"application/json": {"schema": _ref("schemas", "ErrorEnvelope")}},
        }
    return out


def _ok(
    description: str,
    content: JSON | None = None,
    headers: tuple[str, ...] = ("X-Request-ID",),
    links: JSON | None = None,
) -> JSON:
    out: JSON = {"description": description, "headers": _headers(*headers)}
    if content is not None:
        out["content"] = content
    if links:
        out["links"] = links
    return out


# -- links: where the ids in an answer can be used next (OpenAPI runtime expressions) ----------


def _link(operation_id: str, description: str, **parameters: str) -> JSON:
    return {"operationId": operation_id, "parameters": parameters, "description": description}


def _session_links(session_id: str) -> JSON:
    """What can be done with a session whose id is at ``session_id`` (a runtime expression)."""
    return {
        "GetSession": _link("getSession", "Retrieve the session.", session_id=session_id),
        "EndSession": _link("endSession", "End the session.", session_id=session_id),
        "ListSessionRecordings": _link(
            "listSessionRecordings",
            "The session's recordings (made when it ends).",
            session_id=session_id,
        ),
    }


def _recording_links(recording_id: str) -> JSON:
    """What can be done with a recording whose id is at ``recording_id``."""
    return {
        "GetRecording": _link("getRecording", "Retrieve the recording.", recording_id=recording_id),
        "GetRecordingAudio": _link(
            "getRecordingAudio", "Download its MP3.", recording_id=recording_id
        ),
        "HeadRecordingAudio": _link(
            "headRecordingAudio", "Its audio's headers.", recording_id=recording_id
        ),
        "GetRecordingDownload": _link(
            "getRecordingDownload", "A signed link to a converted copy.", recording_id=recording_id
        ),
        "DeleteRecording": _link(
            "deleteRecording", "Delete the recording.", recording_id=recording_id
        ),
    }


def _endpoint_links(endpoint_id: str) -> JSON:
    return {
        "GetWebhookEndpoint": _link(
            "getWebhookEndpoint", "Retrieve the endpoint.", endpoint_id=endpoint_id
        ),
        "ListWebhookDeliveries": _link(
            "listWebhookDeliveries", "The deliveries made to it.", endpoint_id=endpoint_id
        ),
        "DeleteWebhookEndpoint": _link(
            "deleteWebhookEndpoint", "Delete the endpoint.", endpoint_id=endpoint_id
        ),
    }


def _json(schema: str) -> JSON:
    return {"application/json": {"schema": _ref("schemas", schema)}}


_AUTHED = ("X-Request-ID", *RATE_HEADERS)
_CREATED = (*_AUTHED, "Idempotent-Replayed")
_AUDIO = (*_AUTHED, *AUDIO_HEADERS)
_AUDIO_304 = (*_AUTHED, *AUDIO_HEADERS[1:])  # everything but Content-Length

_AUDIO_200 = _ok("The whole MP3.", {"audio/mpeg": {"schema": _BINARY}}, _AUDIO)
_AUDIO_206 = _ok(
    "The requested range (audio/mpeg, with Content-Range), or several ranges as "
    "multipart/byteranges (RFC 9110 §14.6; each part has its own Content-Range).",
    {"audio/mpeg": {"schema": _BINARY}, "multipart/byteranges": {"schema": _BINARY}},
    (*_AUDIO, "Content-Range"),
)
# The first recording of a page leads on to everything a recording id opens.
_RECORDING_PAGE = _ok(
    "A page of recordings, newest first.",
    _json("RecordingList"),
    _AUTHED,
    _recording_links("$response.body#/data/0/id"),
)
_AUDIO_304_RESPONSE = _ok("Not modified (If-None-Match / If-Modified-Since).", None, _AUDIO_304)


# -- operations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Op:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    responses: Mapping[str, JSON]
    scope: str | None = None
    description: str = ""
    params: tuple[str, ...] = ()
    body: JSON | None = None
    # status → what it means for this operation ("" keeps the shared description)
    errors: Mapping[int, str] = field(default_factory=dict)


_PATH_PARAMS = {
    "session_id": "SessionId",
    "recording_id": "RecordingId",
    "endpoint_id": "EndpointId",
    "link_id": "LinkId",
    "name": "ConsoleAsset",
}
_CONDITIONAL = ("IfMatch", "IfNoneMatch", "IfModifiedSince", "IfUnmodifiedSince")
_LIST_400 = "Invalid `limit`, filter value or cursor (unknown id, or both cursors)."
_AUDIO_ERRORS = {
    404: "No such recording (also: deleted, another organization or mode).",
    409: "`recording_not_ready` while processing (with `Retry-After`), or `recording_failed`.",
    410: "`recording_expired`: past `expires_at`, the audio was purged.",
    412: "",
    503: "`storage_unavailable`: the audio cannot be read from storage (with `Retry-After`).",
}
_AUDIO_DESCRIPTION = (
    "Streams the MP3 (`Content-Type: audio/mpeg`, `Content-Length` equal to the recording's "
    '`size`, `Content-Disposition: attachment; filename="recording-{session_id}.mp3"`). '
    "Supports byte ranges, `If-Range`, and conditional requests against a strong ETag. "
    "Errors are never 2xx, so a client writing the body to a file never saves JSON. "
    "With S3 storage and `KALLREC_S3_REDIRECT=302` (or `307`), a GET that passes the key, "
    "status and conditional checks answers that redirect instead, to a presigned storage URL "
    "valid a few minutes (`KALLREC_S3_REDIRECT_TTL_SECONDS`, default 300) whose answer carries "
    "the same Content-Type and Content-Disposition and honours Range; HEAD is still answered "
    "here."
)

_DOWNLOAD_DESCRIPTION = (
    "The recording converted to `format` at `sample_rate` (extension, the older Kallglot "
    "form). Answers `302` to a URL valid for one hour (`download_url_ttl_seconds`) that serves "
    "the file with its `Content-Type`, `Content-Length` and `Content-Disposition: attachment; "
    'filename="recording-{session_id}.{format}"` and needs no key: give it to a browser or '
    "`curl -L`. The file is converted on the first request and kept in a cache of converted "
    "files (`KALLREC_CONVERSION_CACHE_MAX_BYTES`, least recently used evicted); when the cache "
    "has no room the link converts the file while sending it, without byte ranges "
    "(`Accept-Ranges: none`). `202` with the recording and `Retry-After` while it is "
    "processing."
)
_FILE_TYPES = {content_type: {"schema": _BINARY} for content_type in CONTENT_TYPES.values()}
_FILE_HEADERS = ("X-Request-ID", "Content-Length", "Content-Disposition", "Cache-Control")


def _file_ok(description: str, content: JSON | None, *headers: str) -> JSON:
    """A /download/file answer: its Accept-Ranges may be `none` (a conversion made while sent)."""
    out = _ok(description, content, (*_FILE_HEADERS, *headers))
    out["headers"]["Accept-Ranges"] = _ref("headers", "FileAcceptRanges")
    return out


_FILE_DESCRIPTION = (
    "The URL `/download` redirects to, used as given: its `format`, `sample_rate`, `expires` "
    "and `signature` are signed together. No key: the signature is the authorization, like a "
    "presigned storage URL."
)
_LINK_PARAMS = ("LinkFormat", "LinkSampleRate", "LinkExpires", "LinkSignature")
_LINK_ERRORS = {
    403: "`invalid_signature` (altered, forged or incomplete link) or `expired_signature` "
    "(past `expires`: ask /download for a new link). Checked before any lookup.",
    404: "The recording was deleted.",
    409: "`recording_failed`.",
    410: "`recording_expired`: past `expires_at`, the audio was purged.",
    416: "",
    500: "",
    503: "`storage_unavailable` (with `Retry-After`).",
}

_OPERATIONS: tuple[_Op, ...] = (
    _Op(
        "post",
        "/v1/sessions",
        "createSession",
        "Create a session",
        "Sessions",
        {
            "201": _ok(
                "The new session; `stream` carries a `kst_` token.",
                _json("Session"),
                _CREATED,
                _session_links("$response.body#/id"),
            )
        },
        scope="sessions:write",
        description="The stream token is valid for a few minutes (5 by default) and only "
        "checked when connecting.",
        params=("IdempotencyKey",),
        body={"required": True, "content": _json("SessionCreate")},
        errors={
            400: "A body field missing or invalid (`validation_error`: "
            "`missing_required_field`, `invalid_mode`, `invalid_language_code`, "
            "`invalid_provider`, `invalid_field_value`, or `invalid_request` for an unknown "
            "field; `param` names it), a body that is not a JSON object, or "
            "`idempotency_mismatch`.",
            409: "`idempotency_conflict`: the first request with this key is still running.",
            413: "`request_too_large`: the JSON body is over 1 MiB.",
        },
    ),
    _Op(
        "get",
        "/v1/sessions",
        "listSessions",
        "List sessions",
        "Sessions",
        {
            "200": _ok(
                "A page of sessions, newest first.",
                _json("SessionList"),
                _AUTHED,
                _session_links("$response.body#/data/0/id"),
            )
        },
        scope="sessions:read",
        description="The sessions of the key's organization and mode (Kallglot's older docs "
        "list it). `stream` is null for keys without `sessions:write`, and shows the token as "
        "stored (it may have expired: retrieve the session for a fresh one).",
        params=(
            *_page("Session"),
            "SessionStatusFilter",
            "CreatedGte",
            "CreatedLt",
            "SessionSearch",
            "CarrierIdFilter",
        ),
        errors={400: _LIST_400},
    ),
    _Op(
        "get",
        "/v1/sessions/{session_id}",
        "getSession",
        "Retrieve a session",
        "Sessions",
        {
            "200": _ok(
                "The session.", _json("Session"), _AUTHED, _session_links("$response.body#/id")
            )
        },
        scope="sessions:read",
        errors={404: "No such session."},
    ),
    _Op(
        "post",
        "/v1/sessions/{session_id}/end",
        "endSession",
        "End a session",
        "Sessions",
        {
            "200": _ok(
                "The ended session.",
                _json("Session"),
                _AUTHED,
                {
                    "ListSessionRecordings": _link(
                        "listSessionRecordings",
                        "The recordings the call made.",
                        session_id="$response.body#/id",
                    )
                },
            )
        },
        scope="sessions:write",
        description="Idempotent: ending an ended session returns it unchanged (its first "
        "`end_reason` kept). The session's recordings exist (`processing`) when this answers: "
        "`recording.id` is the mixed one.",
        params=("IdempotencyKey",),
        body={"required": False, "content": _json("SessionEnd")},
        errors={
            400: "An invalid `reason` or unknown field (`validation_error`), a body that is "
            "not a JSON object, or `idempotency_mismatch`.",
            404: "No such session.",
            409: "`idempotency_conflict`: the first request with this key is still running.",
            413: "`request_too_large`: the JSON body is over 1 MiB.",
        },
    ),
    _Op(
        "get",
        "/v1/sessions/{session_id}/recordings",
        "listSessionRecordings",
        "List a session's recordings",
        "Recordings",
        {"200": _RECORDING_PAGE},
        scope="recordings:read",
        params=(*_page("Recording"), "ChannelFilter"),
        errors={400: _LIST_400, 404: "No such session."},
    ),
    _Op(
        "get",
        "/v1/recordings",
        "listRecordings",
        "List recordings",
        "Recordings",
        {"200": _RECORDING_PAGE},
        scope="recordings:read",
        description="All recordings of the key's organization and mode (extension).",
        params=(
            *_page("Recording"),
            "SessionIdFilter",
            "ChannelFilter",
            "StatusFilter",
            "CreatedGte",
            "CreatedLt",
        ),
        errors={400: _LIST_400},
    ),
    _Op(
        "post",
        "/v1/recordings",
        "importRecording",
        "Import a recording",
        "Recordings",
        {
            "202": _ok(
                "Accepted: the recording, `processing` until encoded.",
                _json("ImportedRecording"),
                _CREATED,
                {
                    **_recording_links("$response.body#/id"),
                    "GetSession": _link(
                        "getSession",
                        "The session the import belongs to.",
                        session_id="$response.body#/session_id",
                    ),
                },
            )
        },
        scope="sessions:write",
        description="Imports an existing call recording (extension). The file is validated "
        "and decoded before anything is stored; a rejected file leaves nothing behind. Stereo "
        "files are mixed down unless `channel` is `dual`.",
        params=("IdempotencyKey",),
        body={
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": _ref("schemas", "RecordingImport"),
                    "encoding": {"file": {"contentType": "application/octet-stream, audio/*"}},
                }
            },
        },
        errors={
            400: "Malformed multipart body, missing `file`, unknown field, invalid `channel` "
            "or `metadata`, or `idempotency_mismatch`.",
            404: "`session_id` names no session of this organization and mode.",
            409: "`idempotency_conflict`: the first request with this key is still running.",
            413: "",
            415: "Not multipart/form-data, or an audio format that is not supported.",
            422: "`invalid_audio`: corrupt or empty audio, or `dual` with a non-stereo file.",
        },
    ),
    _Op(
        "get",
        "/v1/recordings/{recording_id}",
        "getRecording",
        "Retrieve a recording",
        "Recordings",
        {
            "200": _ok(
                "The recording.",
                _json("Recording"),
                _AUTHED,
                {
                    **_recording_links("$response.body#/id"),
                    "GetSession": _link(
                        "getSession",
                        "The session the recording belongs to.",
                        session_id="$response.body#/session_id",
                    ),
                },
            )
        },
        scope="recordings:read",
        errors={404: "No such recording (or it was deleted)."},
    ),
    _Op(
        "delete",
        "/v1/recordings/{recording_id}",
        "deleteRecording",
        "Delete a recording",
        "Recordings",
        {
            "200": _ok(
                "Deleted.",
                _json("DeletedRecording"),
                _AUTHED,
                {
                    "GetRecording": _link(
                        "getRecording",
                        "Now a 404, like every other use of the id.",
                        recording_id="$request.path.recording_id",
                    )
                },
            )
        },
        scope="recordings:delete",
        description="Deletes the audio and the metadata (extension).",
        errors={404: "No such recording (or it was already deleted)."},
    ),
    _Op(
        "get",
        "/v1/recordings/{recording_id}/audio",
        "getRecordingAudio",
        "Download a recording's audio",
        "Audio",
        {"200": _AUDIO_200, "206": _AUDIO_206, "304": _AUDIO_304_RESPONSE},
        scope="recordings:read",
        description=_AUDIO_DESCRIPTION,
        params=("Range", "IfRange", *_CONDITIONAL),
        errors={**_AUDIO_ERRORS, 416: ""},
    ),
    _Op(
        "head",
        "/v1/recordings/{recording_id}/audio",
        "headRecordingAudio",
        "Audio headers",
        "Audio",
        {
            "200": _ok("The headers GET would send, no body.", None, _AUDIO),
            "304": _AUDIO_304_RESPONSE,
        },
        scope="recordings:read",
        description="The same headers as GET without a body (`Range` is ignored: ranges are "
        "defined for GET). Error answers have no body either.",
        params=_CONDITIONAL,
        errors=_AUDIO_ERRORS,
    ),
    _Op(
        "get",
        "/v1/recordings/{recording_id}/download",
        "getRecordingDownload",
        "Download a converted copy",
        "Audio",
        {
            "202": _ok(
                "Still processing: the recording; try again after `Retry-After` seconds.",
                _json("Recording"),
                (*_AUTHED, "Retry-After"),
            ),
            "302": _ok(
                "Redirect (`Location`) to the signed URL of the converted file.",
                _json("DownloadLink"),
                (*_AUTHED, "Location"),
            ),
        },
        scope="recordings:read",
        description=_DOWNLOAD_DESCRIPTION,
        params=("DownloadFormat", "DownloadSampleRate"),
        errors={
            400: "Invalid `format` or `sample_rate` (`param` names it).",
            404: "No such recording (also: deleted, another organization or mode).",
            409: "`recording_failed`.",
            410: "`recording_expired`: past `expires_at`, the audio was purged.",
            503: "`storage_unavailable`: the audio cannot be read or converted now "
            "(with `Retry-After`).",
        },
    ),
    _Op(
        "get",
        "/v1/recordings/{recording_id}/download/file",
        "getRecordingDownloadFile",
        "A converted copy (signed URL)",
        "Audio",
        {
            "200": _file_ok(
                "The converted file (`Content-Length` absent only while a conversion that is "
                "not kept is sent chunked).",
                _FILE_TYPES,
            ),
            "206": _file_ok("The one requested byte range.", _FILE_TYPES, "Content-Range"),
        },
        description=f"{_FILE_DESCRIPTION} A single byte range gets a 206.",
        params=(*_LINK_PARAMS, "FileRange"),
        errors=_LINK_ERRORS,
    ),
    _Op(
        "head",
        "/v1/recordings/{recording_id}/download/file",
        "headRecordingDownloadFile",
        "A converted copy's headers (signed URL)",
        "Audio",
        {"200": _file_ok("The headers GET would send, no body.", None)},
        description=f"{_FILE_DESCRIPTION} The same headers as GET without a body (`Range` is "
        "ignored). Error answers have no body either.",
        params=_LINK_PARAMS,
        errors={status: note for status, note in _LINK_ERRORS.items() if status != 416},
    ),
    _Op(
        "post",
        "/v1/webhook_endpoints",
        "createWebhookEndpoint",
        "Create a webhook endpoint",
        "Webhooks",
        {
            "201": _ok(
                "The new endpoint with its signing `secret`, shown only here.",
                _json("WebhookEndpointWithSecret"),
                _CREATED,
                _endpoint_links("$response.body#/id"),
            )
        },
        scope="webhooks:manage",
        description="Registers a URL to receive the `enabled_events` of the key's "
        "organization and mode, each POSTed with a `Kallglot-Signature` made with the secret.",
        params=("IdempotencyKey",),
        body={"required": True, "content": _json("WebhookEndpointCreate")},
        errors={
            400: "Invalid body (not a JSON object, unknown field, missing or invalid `url`, "
            "`enabled_events` or `description`; `param` names it), invalid `Idempotency-Key`, "
            "or `idempotency_mismatch`.",
            409: "`idempotency_conflict`: the first request with this key is still running.",
            413: "`request_too_large`: the JSON body is over 1 MiB.",
        },
    ),
    _Op(
        "get",
        "/v1/webhook_endpoints",
        "listWebhookEndpoints",
        "List webhook endpoints",
        "Webhooks",
        {
            "200": _ok(
                "A page of endpoints, newest first (no secrets).",
                _json("WebhookEndpointList"),
                _AUTHED,
                _endpoint_links("$response.body#/data/0/id"),
            )
        },
        scope="webhooks:manage",
        description="The endpoints of the key's organization and mode (deleted ones excluded).",
        params=_page("Endpoint"),
        errors={400: "Invalid `limit` or cursor (unknown id, or both cursors)."},
    ),
    _Op(
        "get",
        "/v1/webhook_endpoints/{endpoint_id}",
        "getWebhookEndpoint",
        "Retrieve a webhook endpoint",
        "Webhooks",
        {
            "200": _ok(
                "The endpoint (no secret).",
                _json("WebhookEndpoint"),
                _AUTHED,
                _endpoint_links("$response.body#/id"),
            )
        },
        scope="webhooks:manage",
        errors={404: "No such endpoint (or it was deleted)."},
    ),
    _Op(
        "delete",
        "/v1/webhook_endpoints/{endpoint_id}",
        "deleteWebhookEndpoint",
        "Delete a webhook endpoint",
        "Webhooks",
        {
            "200": _ok(
                "Deleted.",
                _json("DeletedWebhookEndpoint"),
                _AUTHED,
                {
                    "GetWebhookEndpoint": _link(
                        "getWebhookEndpoint",
                        "Now a 404.",
                        endpoint_id="$request.path.endpoint_id",
                    )
                },
            )
        },
        scope="webhooks:manage",
        description="No new deliveries are made to it and its pending ones are `canceled`; an "
        "attempt already in flight still finishes and is recorded.",
        errors={404: "No such endpoint (or it was already deleted)."},
    ),
    _Op(
        "get",
        "/v1/webhook_endpoints/{endpoint_id}/deliveries",
        "listWebhookDeliveries",
        "List an endpoint's deliveries",
        "Webhooks",
        {
            "200": _ok(
                "A page of deliveries, newest first, each with its attempts.",
                _json("WebhookDeliveryList"),
                _AUTHED,
            )
        },
        scope="webhooks:manage",
        description="Every event sent (or to be sent) to the endpoint, with the outcome of "
        "each attempt (extension).",
        params=(*_page("Delivery"), "DeliveryStatusFilter"),
        errors={400: _LIST_400, 404: "No such endpoint (or it was deleted)."},
    ),
    _Op(
        "get",
        "/healthz",
        "getHealth",
        "Liveness",
        "System",
        {"200": _ok("The process is up.", _json("Health"))},
    ),
    _Op(
        "get",
        "/readyz",
        "getReadiness",
        "Readiness",
        "System",
        {
            "200": _ok("Database and storage are reachable.", _json("Readiness")),
            "503": _ok("The database or the storage is unreachable.", _json("Readiness")),
        },
    ),
    _Op(
        "get",
        "/metrics",
        "getMetrics",
        "Prometheus metrics",
        "System",
        {
            "200": _ok(
                "Prometheus text exposition format (`text/plain; version=0.0.4`).",
                {"text/plain": {"schema": {"type": "string"}}},
            )
        },
    ),
    _Op(
        "get",
        "/openapi.json",
        "getOpenApiDocument",
        "This document",
        "System",
        {
            "200": _ok(
                "The OpenAPI 3.1 document.", {"application/json": {"schema": {"type": "object"}}}
            )
        },
    ),
    _Op(
        "get",
        "/docs",
        "getDocs",
        "API reference page",
        "System",
        {
            "200": _ok(
                "An HTML page rendering this document.",
                {"text/html": {"schema": {"type": "string"}}},
            )
        },
    ),
    _Op(
        "get",
        "/docs/redoc.standalone.js",
        "getDocsScript",
        "The script of the reference page (Redoc, shipped with kallrec: /docs works offline)",
        "System",
        {
            "200": _ok(
                "Redoc's standalone bundle.",
                {"text/javascript": {"schema": {"type": "string"}}},
            )
        },
    ),
)

# -- playback links and peaks (issue 16) ---------------------------------------------------------


def _playback_schemas() -> JSON:
    return {
        "PlaybackLinkCreate": _obj(
            {
                "expires_in": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": playback_api.MAX_EXPIRES_IN,
                    "default": playback_api.DEFAULT_EXPIRES_IN,
                    "description": "Seconds the link plays for (at most 7 days).",
                },
                "disposition": _enum(
                    playback_api.DISPOSITIONS,
                    "`inline` plays in the browser; `attachment` makes it save the file.",
                    default="inline",
                ),
            },
            required=(),
            additionalProperties=False,
        ),
        "PlaybackLink": _obj(
            {
                "id": _prefixed_id("lnk", "The link's id (to revoke it)."),
                "object": _const("playback_link"),
                "recording_id": _prefixed_id("rec", "The recording it plays."),
                "url": _str(
                    "The audio, with exactly the semantics of /audio (Range, HEAD, ETag, "
                    "If-Range), CORS for any origin, and no key."
                ),
                "peaks_url": _str("The recording's waveform peaks, on the same signature."),
                "disposition": _enum(playback_api.DISPOSITIONS),
                "created_at": _TIMESTAMP,
                "expires_at": _TIMESTAMP,
                "revoked_at": _nullable(_TIMESTAMP),
            }
        ),
        "Peaks": _obj(
            {
                "object": _const("peaks"),
                "recording_id": _prefixed_id("rec", "The recording."),
                "duration": {"type": "number", "minimum": 0, "description": "Seconds."},
                "length": {"type": "integer", "minimum": 0, "maximum": MAX_PEAKS},
                "seconds_per_peak": {"type": "number", "minimum": 0},
                "max": _const(SCALE, "The value of a full-scale sample."),
                "data": {
                    "type": "array",
                    "maxItems": MAX_PEAKS,
                    "items": {"type": "integer", "minimum": 0, "maximum": SCALE},
                    "description": "The loudest sample of each stretch of the call, in order.",
                },
            }
        ),
    }


def _playback_parameters() -> JSON:
    return {
        "LinkId": _param("link_id", "path", _id_schema("lnk"), "The playback link's id."),
        "SessionSearch": _param(
            "q",
            "query",
            {"type": "string", "maxLength": sessions_api.SEARCH_MAX_CHARS},
            "Only sessions whose metadata, carrier call ids or phone number contain this text "
            "(case-insensitive), or whose id it is.",
        ),
        "ConsoleAsset": _param(
            "name", "path", _enum(("console.js", "console.css")), "The console's script or style."
        ),
    }


def _playback_headers() -> JSON:
    return {
        "Access-Control-Allow-Origin": _header(
            "Any origin may play a playback link (and only a playback link).", _const("*")
        ),
        "Access-Control-Expose-Headers": _header(
            "What a page on another origin may read.", {"type": "string"}
        ),
        "LinkCacheControl": _header(
            "Browsers revalidate every use, so a revoked link stops playing from their cache too.",
            _const("private, no-cache"),
        ),
    }


def _playback_ok(description: str, content: JSON | None, headers: tuple[str, ...]) -> JSON:
    out = _ok(description, content, headers)
    out["headers"]["Cache-Control"] = _ref("headers", "LinkCacheControl")
    return out


_CORS = ("Access-Control-Allow-Origin", "Access-Control-Expose-Headers")
_PLAYBACK = ("X-Request-ID", *_CORS, *AUDIO_HEADERS)
_PLAYBACK_PARAMS = ("LinkExpires", "LinkSignature")
_PLAYBACK_DESCRIPTION = (
    "A playback link, used as given: no key, the signature is the authorization. Answers "
    "exactly as /audio does (Range, multipart, HEAD, ETag, 304, If-Range), with the "
    "`Content-Disposition` the link was made with and CORS headers for any origin."
)
_PLAYBACK_ERRORS = {
    403: "`invalid_signature` (altered, forged or incomplete), `expired_signature` (past "
    "`expires`) or `link_revoked` (the link, or the key that made it, was revoked). The "
    "signature is checked before any lookup.",
    404: "The recording was deleted.",
    409: "`recording_failed`.",
    410: "`recording_expired`: past `expires_at`, the audio was purged.",
    500: "",
    503: "`storage_unavailable` (with `Retry-After`).",
}
_PREFLIGHT = _ok(
    "CORS preflight: the methods and request headers a page on another origin may use.",
    None,
    ("X-Request-ID", *_CORS),
)
_PEAKS_200 = _ok("The peaks (compact JSON).", _json("Peaks"), (*_AUTHED, "ETag"))
_PEAKS_304 = _ok("Not modified (If-None-Match).", None, (*_AUTHED, "ETag"))
_LINK_PEAKS_200 = _ok("The peaks (compact JSON).", _json("Peaks"), ("X-Request-ID", *_CORS, "ETag"))
_LINK_PEAKS_304 = _ok("Not modified (If-None-Match).", None, ("X-Request-ID", *_CORS, "ETag"))

_PLAYBACK_OPERATIONS: tuple[_Op, ...] = (
    _Op(
        "post",
        "/v1/recordings/{recording_id}/links",
        "createPlaybackLink",
        "Make a playback link",
        "Audio",
        {"201": _ok("The new link.", _json("PlaybackLink"), _AUTHED)},
        scope="recordings:read",
        description="A URL a browser plays (and seeks) without a key, until `expires_in` "
        "seconds from now or until it is revoked, alone or with the key that made it.",
        body={"required": False, "content": _json("PlaybackLinkCreate")},
        errors={
            400: "`expires_in` or `disposition` invalid, or an unknown field (`param` names it).",
            404: "No such recording.",
            409: "`recording_not_ready` or `recording_failed`.",
            410: "`recording_expired`.",
            413: "`request_too_large`: the JSON body is over 1 MiB.",
        },
    ),
    _Op(
        "delete",
        "/v1/recordings/{recording_id}/links/{link_id}",
        "revokePlaybackLink",
        "Revoke a playback link",
        "Audio",
        {"200": _ok("The link, revoked.", _json("PlaybackLink"), _AUTHED)},
        scope="recordings:read",
        description="From the next request on, its URL answers 403 `link_revoked` (at once on "
        "this host, within the cache TTL on other replicas).",
        errors={404: "No such link for this recording."},
    ),
    _Op(
        "get",
        "/v1/recordings/{recording_id}/peaks",
        "getRecordingPeaks",
        "A recording's waveform peaks",
        "Audio",
        {"200": _PEAKS_200, "304": _PEAKS_304},
        scope="recordings:read",
        description="At most 2,000 values 0..255 spanning the whole call, made when it was "
        "processed (or on this first request for older recordings), so a player draws the "
        "waveform before it loads the audio.",
        params=("IfNoneMatch",),
        errors={**_AUDIO_ERRORS},
    ),
    _Op(
        "get",
        "/v1/playback/{link_id}/audio",
        "getPlaybackAudio",
        "Play a playback link",
        "Audio",
        {
            "200": _playback_ok("The whole MP3.", {"audio/mpeg": {"schema": _BINARY}}, _PLAYBACK),
            "206": _playback_ok(
                "The requested range, or several as multipart/byteranges.",
                {"audio/mpeg": {"schema": _BINARY}, "multipart/byteranges": {"schema": _BINARY}},
                (*_PLAYBACK, "Content-Range"),
            ),
            "304": _playback_ok(
                "Not modified.", None, ("X-Request-ID", *_CORS, *AUDIO_HEADERS[1:])
            ),
        },
        description=_PLAYBACK_DESCRIPTION,
        params=(*_PLAYBACK_PARAMS, "Range", "IfRange", *_CONDITIONAL),
        errors={**_PLAYBACK_ERRORS, 412: "", 416: ""},
    ),
    _Op(
        "head",
        "/v1/playback/{link_id}/audio",
        "headPlaybackAudio",
        "A playback link's headers",
        "Audio",
        {
            "200": _playback_ok("The headers GET would send, no body.", None, _PLAYBACK),
            "304": _playback_ok(
                "Not modified.", None, ("X-Request-ID", *_CORS, *AUDIO_HEADERS[1:])
            ),
        },
        description=f"{_PLAYBACK_DESCRIPTION} Error answers have no body.",
        params=(*_PLAYBACK_PARAMS, *_CONDITIONAL),
        errors={**_PLAYBACK_ERRORS, 412: ""},
    ),
    _Op(
        "options",
        "/v1/playback/{link_id}/audio",
        "preflightPlaybackAudio",
        "CORS preflight of a playback link",
        "Audio",
        {"204": _PREFLIGHT},
        errors={404: "Not the id of a link (nothing is looked up: a preflight has no signature)."},
    ),
    _Op(
        "get",
        "/v1/playback/{link_id}/peaks",
        "getPlaybackPeaks",
        "A playback link's waveform peaks",
        "Audio",
        {"200": _LINK_PEAKS_200, "304": _LINK_PEAKS_304},
        description="The peaks of the link's recording (as /peaks), on the link's signature, "
        "with CORS headers for any origin.",
        params=(*_PLAYBACK_PARAMS, "IfNoneMatch"),
        errors=_PLAYBACK_ERRORS,
    ),
    _Op(
        "options",
        "/v1/playback/{link_id}/peaks",
        "preflightPlaybackPeaks",
        "CORS preflight of a link's peaks",
        "Audio",
        {"204": _PREFLIGHT},
        errors={404: "Not the id of a link (nothing is looked up: a preflight has no signature)."},
    ),
)
_CONSOLE_OPERATIONS: tuple[_Op, ...] = (
    _Op(
        "get",
        "/console",
        "getConsole",
        "The browser console",
        "System",
        {"200": _ok("The console's page.", {"text/html": {"schema": {"type": "string"}}})},
        description="Sign in with an API key (kept in the browser tab only) to find, play and "
        "share calls and to see webhook deliveries. Shipped with kallrec: works offline.",
    ),
    _Op(
        "get",
        "/console/assets/{name}",
        "getConsoleAsset",
        "The console's script and style sheet",
        "System",
        {
            "200": _ok(
                "The file.",
                {
                    "text/javascript": {"schema": {"type": "string"}},
                    "text/css": {"schema": {"type": "string"}},
                },
            )
        },
        errors={404: "No such asset."},
    ),
)
_OPERATIONS = (*_OPERATIONS, *_PLAYBACK_OPERATIONS, *_CONSOLE_OPERATIONS)


def _operation(op: _Op) -> JSON:
    out: JSON = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag]}
    description = op.description
    errs = dict(op.errors)
    if op.scope is None:
        out["security"] = []  # public: overrides the document-wide key requirement
    else:
        description = f"Requires the `{op.scope}` scope. {description}".strip()
        out["x-required-scope"] = op.scope
        # Every authenticated operation can fail these ways.
        errs = {
            401: "",
            403: f"The key lacks the `{op.scope}` scope (`insufficient_permissions`).",
            429: "",
            500: "",
            **errs,
        }
    if description:
        out["description"] = description
    names = [_PATH_PARAMS[name] for name in re.findall(r"{(\w+)}", op.path)] + list(op.params)
    if names:
        out["parameters"] = [_ref("parameters", name) for name in names]
    if op.body is not None:
        out["requestBody"] = op.body
    responses: JSON = dict(op.responses)
    for status, note in errs.items():
        ref = _ref("responses", _ERRORS[status][0])
        if note:
            ref["description"] = note  # OpenAPI 3.1 lets a reference override the description
        responses[str(status)] = ref
    out["responses"] = dict(sorted(responses.items()))
    return out


def _paths() -> JSON:
    paths: JSON = {}
    for op in _OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return paths


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The whole document (built once; callers must not mutate it)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "kallrec",
            "version": _version(),
            "summary": "Self-hostable call recording, Kallglot v1 compatible.",
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}, {"apiKeyHeader": []}],
        "tags": [
            {"name": "Sessions", "description": "Calls."},
            {"name": "Recordings", "description": "Recording metadata, lists, imports."},
            {"name": "Audio", "description": "The recordings' MP3 audio."},
            {"name": "Webhooks", "description": "Webhook endpoints and their deliveries."},
            {"name": "System", "description": "Health, metrics and this description (no key)."},
        ],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "sk_live_… / sk_test_…",
                    "description": "`Authorization: Bearer sk_…`",
                },
                "apiKeyHeader": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "`X-API-Key: sk_…` (used when there is no Authorization).",
                },
            },
            "schemas": _schemas(),
            "parameters": _parameters(),
            "headers": _response_headers(),
            "responses": _error_responses(),
        },
    }
