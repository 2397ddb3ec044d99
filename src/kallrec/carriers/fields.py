"""Reading the fields of a carrier's JSON frame, tolerantly where carriers differ.

Carriers send numbers as strings (Twilio's ``"timestamp": "5"``, Telnyx's ``"sequence_number"``)
and sometimes as numbers (Plivo's ``"chunk": 41``): both are read. What must be there and is not
raises ``Malformed``.
"""

from __future__ import annotations

import binascii
import json
from base64 import b64decode
from typing import Any

from kallrec.carriers.events import Malformed

# A media frame is small (20 ms to a few hundred ms); this bounds what one frame may cost.
MAX_PAYLOAD_BYTES = 192 * 1024
MAX_ID_CHARS = 255


def load(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise Malformed("not JSON") from None
    if not isinstance(data, dict):
        raise Malformed("not a JSON object")
    return data


def obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise Malformed(f"'{key}' is not an object")
    return value


def optional_obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def text(data: dict[str, Any], key: str) -> str | None:
    """A non-empty string of bounded length, or None (absent or of another type)."""
    value = data.get(key)
    if isinstance(value, str) and value and len(value) <= MAX_ID_CHARS:
        return value
    return None


def integer(value: Any) -> int | None:
    """An integer sent as a number or a decimal string; None when absent or unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 20:
        return int(value)
    return None


def payload(media: dict[str, Any], key: str = "payload") -> bytes:
    value = media.get(key)
    if not isinstance(value, str):
        raise Malformed(f"'{key}' is not a base64 string")
    if len(value) > MAX_PAYLOAD_BYTES * 4 // 3 + 4:
        raise Malformed(f"'{key}' is too large")
    try:
        return b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Malformed(f"'{key}' is not valid base64") from None


def ids(pairs: dict[str, Any]) -> dict[str, str]:
    """The carrier ids among ``pairs`` that are strings (others are dropped, not refused)."""
    return {name: value for name, value in pairs.items() if isinstance(value, str) and value}


def str_params(value: Any) -> dict[str, str]:
    """A custom-parameters object as strings (Twilio's and Telnyx's ``<Parameter>``s)."""
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}
