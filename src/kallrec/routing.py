"""A session's telephony routing, as Kallglot's ``POST /v1/sessions`` takes it (spec §6.1).

The newer docs send ``routing``; the older ones a nested ``provider`` object, accepted here as
its alias (same keys, plus the carriers' call ids). A top-level ``provider`` *string* is what a
session answers with (the resolved carrier), never a request field: it is refused, as Kallglot's
newer docs say.

Known keys are checked; keys kallrec does not know (Kallglot's audio hints, SIP headers, the
older ``transport``/``codecs``) are accepted and kept with the rest, bounded in size, and not
acted on. Everything wrong in here is ``validation_error``/``invalid_provider`` (Kallglot:
"Provider configuration is invalid"), with ``param`` naming the field (``routing.direction``).

What kallrec uses: ``type`` is the carrier (the session's ``provider``), ``direction`` the
default mapping of a carrier's tracks to speakers, ``phone_number`` is echoed, and the carrier's
call ids (``call_sid``, ``call_control_id``) are kept on the session. ``connection_id`` and
``sip.from_uri`` are stored and echoed in ``routing``; kallrec resolves no routes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from kallrec import validation
from kallrec.errors import ValidationError

# Kallglot documents "sip"; the others are kallrec's carriers (their media streams).
CARRIERS = ("sip", "twilio", "signalwire", "telnyx", "vonage", "plivo")
DIRECTIONS = ("inbound", "outbound")
# The carriers' own ids of the call, as the older guides send them.
CARRIER_ID_FIELDS = ("call_sid", "call_control_id")
MAX_ID_CHARS = 255
MAX_URI_CHARS = 1024
CODE = "invalid_provider"

_E164 = re.compile(r"\+[1-9][0-9]{1,14}", re.ASCII)
_SIP_URI = re.compile(r"(?:sips?|tel):[^\s\x00-\x1f\x7f]+", re.ASCII | re.IGNORECASE)


@dataclass(frozen=True)
class Routing:
    type: str | None = None
    phone_number: str | None = None
    direction: str | None = None
    carrier_ids: dict[str, str] = field(default_factory=dict)
    # The object as accepted, unknown keys included: what the session stores and echoes.
    stored: dict[str, Any] = field(default_factory=dict)

    def stored_json(self) -> str:
        return json.dumps(self.stored, separators=(",", ":"), ensure_ascii=False)

    def carrier_ids_json(self) -> str | None:
        if not self.carrier_ids:
            return None
        return json.dumps(self.carrier_ids, separators=(",", ":"), ensure_ascii=False)


def from_body(body: dict[str, Any]) -> Routing | None:
    """The routing of a create-session body (``routing``, or the older ``provider`` object)."""
    routing, provider = body.get("routing"), body.get("provider")
    if provider is not None and not isinstance(provider, dict):
        raise ValidationError(
            f"Invalid provider: {_shown(provider)}. provider is what a session answers with "
            "(the carrier in use); send telephony in routing instead, e.g. "
            '{"routing": {"type": "sip"}} or {"routing": {"phone_number": "+14155551234"}}.',
            code=CODE,
            param="provider",
        )
    if routing is not None and provider is not None:
        raise ValidationError(
            "Send routing or the older provider object, not both.", code=CODE, param="provider"
        )
    if routing is not None:
        return parse(routing, "routing")
    if provider is not None:
        return parse(provider, "provider")
    return None


def parse(value: Any, name: str = "routing") -> Routing:
    validation.free_object(value, name, code=CODE)
    kind = value.get("type")
    if kind is not None:
        validation.choice(kind, CARRIERS, f"{name}.type", code=CODE)
    phone = value.get("phone_number")
    if phone is not None and not (isinstance(phone, str) and _E164.fullmatch(phone)):
        raise ValidationError(
            f"Invalid {name}.phone_number: {_shown(phone)}. Expected E.164 (+14155551234).",
            code=CODE,
            param=f"{name}.phone_number",
        )
    direction = value.get("direction")
    if direction is not None:
        validation.choice(direction, DIRECTIONS, f"{name}.direction", code=CODE)
    _identifier(value, "connection_id", name)
    carrier_ids = {}
    for key in CARRIER_ID_FIELDS:
        found = _identifier(value, key, name)
        if found is not None:
            carrier_ids[key] = found
    _sip(value.get("sip"), f"{name}.sip")
    return Routing(kind, phone, direction, carrier_ids, value)


def _identifier(value: dict[str, Any], key: str, name: str) -> str | None:
    found = value.get(key)
    if found is None:
        return None
    if not isinstance(found, str) or not found or len(found) > MAX_ID_CHARS:
        raise ValidationError(
            f"Invalid {name}.{key}: expected a non-empty string of at most {MAX_ID_CHARS} "
            "characters.",
            code=CODE,
            param=f"{name}.{key}",
        )
    return found


def _sip(value: Any, param: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise ValidationError(f"Invalid {param}: expected an object.", code=CODE, param=param)
    uri = value.get("from_uri")
    if uri is None:
        return
    if not isinstance(uri, str) or len(uri) > MAX_URI_CHARS or not _SIP_URI.fullmatch(uri):
        raise ValidationError(
            f"Invalid {param}.from_uri: {_shown(uri)}. Expected a sip:, sips: or tel: URI of "
            f"at most {MAX_URI_CHARS} characters (sip:alice@example.com).",
            code=CODE,
            param=f"{param}.from_uri",
        )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
