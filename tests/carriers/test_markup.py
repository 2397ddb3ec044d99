"""The markup a session hands out for its carrier: valid XML/NCCO, the token where it must be."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest

from kallrec.carriers.markup import CARRIERS, for_carrier

URL = "wss://rec.example/v1/sessions/sess_1/connect"
TOKEN = "kst_test_A-b_c"


@pytest.mark.parametrize("carrier", ["twilio", "signalwire", "telnyx"])
def test_twiml_and_texml_pass_the_token_as_a_parameter(carrier: str) -> None:
    found = for_carrier(carrier, URL, TOKEN, "sess_1")
    assert found is not None
    stream = ET.fromstring(found["markup"]).find("Start/Stream")
    assert stream is not None and stream.get("url") == URL
    assert stream.get("track") == "both_tracks"
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params["token"] == TOKEN


def test_vonage_ncco_carries_the_token_in_headers() -> None:
    found = for_carrier("vonage", URL, TOKEN, "sess_1")
    assert found is not None
    endpoint = found["markup"][0]["endpoint"][0]
    assert endpoint["type"] == "websocket" and endpoint["uri"] == URL
    assert endpoint["headers"]["token"] == TOKEN


def test_plivo_xml_carries_the_token_in_the_url_query() -> None:
    found = for_carrier("plivo", URL, TOKEN, "sess_1")
    assert found is not None
    stream = ET.fromstring(found["markup"]).find("Stream")
    assert stream is not None and stream.text is not None
    assert parse_qs(urlsplit(stream.text).query)["token"] == [TOKEN]


def test_no_markup_without_a_carrier() -> None:
    assert for_carrier("sip", URL, TOKEN, "sess_1") is None
    assert set(CARRIERS) == {"twilio", "signalwire", "telnyx", "vonage", "plivo"}
