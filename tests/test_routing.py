"""Routing as Kallglot's POST /v1/sessions takes it, and the older provider object as its alias."""

from __future__ import annotations

from typing import Any

import pytest

from kallrec.errors import ValidationError
from kallrec.routing import CARRIERS, Routing, from_body


def test_no_routing_is_none() -> None:
    assert from_body({"mode": "ai_agent"}) is None
    assert from_body({"routing": None, "provider": None}) is None


def test_what_kallrec_uses_is_picked_out_and_the_rest_kept_as_sent() -> None:
    routing = {
        "type": "twilio",
        "phone_number": "+14155551234",
        "direction": "outbound",
        "call_sid": "CA1",
        "audio": {"encoding": "mulaw"},
    }
    parsed = from_body({"routing": routing})
    assert parsed == Routing("twilio", "+14155551234", "outbound", {"call_sid": "CA1"}, routing)
    assert parsed.carrier_ids_json() == '{"call_sid":"CA1"}'
    assert Routing().carrier_ids_json() is None


def test_the_older_provider_object_parses_like_routing() -> None:
    provider = {"type": "telnyx", "call_control_id": "v3:x", "transport": "tls"}
    parsed = from_body({"provider": provider})
    assert parsed is not None and parsed.type == "telnyx"
    assert parsed.carrier_ids == {"call_control_id": "v3:x"} and parsed.stored == provider


@pytest.mark.parametrize("carrier", CARRIERS)
def test_every_carrier_is_a_routing_type(carrier: str) -> None:
    assert from_body({"routing": {"type": carrier}}).type == carrier  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"provider": "twilio"}, "provider"),
        ({"provider": ["twilio"]}, "provider"),
        ({"routing": {}, "provider": {}}, "provider"),
        ({"routing": []}, "routing"),
        ({"routing": {"type": "SIP"}}, "routing.type"),
        ({"routing": {"phone_number": "+0123"}}, "routing.phone_number"),
        ({"routing": {"phone_number": "+1234567890123456"}}, "routing.phone_number"),
        ({"routing": {"direction": "in"}}, "routing.direction"),
        ({"routing": {"connection_id": "x" * 256}}, "routing.connection_id"),
        ({"routing": {"call_control_id": ""}}, "routing.call_control_id"),
        ({"routing": {"sip": {"from_uri": "sip:a b@example.com"}}}, "routing.sip.from_uri"),
        ({"routing": {"sip": {"from_uri": "http://example.com"}}}, "routing.sip.from_uri"),
        ({"routing": {"extra": "x" * 40_000}}, "routing"),
        ({"provider": {"direction": 1}}, "provider.direction"),
    ],
)
def test_anything_wrong_is_invalid_provider_naming_the_field(
    body: dict[str, Any], param: str
) -> None:
    with pytest.raises(ValidationError) as info:
        from_body(body)
    assert (info.value.type, info.value.code, info.value.param) == (
        "validation_error",
        "invalid_provider",
        param,
    )


@pytest.mark.parametrize("uri", ["sip:alice@example.com", "SIPS:bob@x.example:5061", "tel:+1415"])
def test_sip_from_uris(uri: str) -> None:
    assert from_body({"routing": {"type": "sip", "sip": {"from_uri": uri}}}) is not None
