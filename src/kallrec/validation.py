"""Checks on client input that name the offending parameter.

A body field that is missing or holds a value kallrec does not accept is a ``ValidationError``
(``validation_error``, Kallglot's codes); a body that cannot be read at all (``encodable``) stays
an ``InvalidRequest``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from kallrec import languages
from kallrec.errors import InvalidRequest, ValidationError

MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_CHARS = 40
MAX_METADATA_VALUE_CHARS = 500
# Integers a JSON reader of any language (JavaScript's doubles included) reads back exactly.
MAX_SAFE_INTEGER = 2**53 - 1
# Free-form objects kallrec stores and echoes (ai_agent, routing): bounded in size and depth.
MAX_OBJECT_BYTES = 32 * 1024
MAX_OBJECT_DEPTH = 16


def encodable(value: Any) -> None:
    """Refuses strings that cannot be stored or sent back as UTF-8: JSON's \\ud800 escapes
    decode to lone surrogates, which every later read would fail to encode. ``param`` names the
    first offending field (``metadata[key]``)."""
    pending: list[tuple[Any, str | None]] = [(value, None)]
    while pending:  # iterative: a body may nest as deep as the JSON parser allows
        item, param = pending.pop()
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                raise InvalidRequest(
                    f"Invalid {param or 'body'}: text must be valid Unicode (no lone surrogates).",
                    param=param,
                ) from None
        elif isinstance(item, dict):
            for key, child in item.items():
                pending.append((key, param))
                pending.append((child, key if param is None else f"{param}[{key}]"))
        elif isinstance(item, list):
            pending.extend((child, param) for child in item)


def reject_unknown(body: dict[str, Any], known: set[str], prefix: str = "") -> None:
    for name in body:
        if name not in known:
            raise ValidationError(
                f"Received unknown parameter: {prefix}{name}.",
                code="invalid_request",
                param=prefix + name,
            )


def required(body: dict[str, Any], name: str) -> Any:
    """The field's value; absent or null is ``missing_required_field``."""
    value = body.get(name)
    if value is None:
        raise ValidationError(
            f"Missing required parameter: {name}.", code="missing_required_field", param=name
        )
    return value


def choice(value: Any, allowed: tuple[str, ...], param: str, code: str | None = None) -> str:
    if not isinstance(value, str) or value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValidationError(
            f"Invalid {param}: {_shown(value)}. Expected one of {choices}.", code=code, param=param
        )
    return value


def optional_string(
    body: dict[str, Any], name: str, max_chars: int = 100, *, param: str | None = None
) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_chars:
        raise ValidationError(
            f"Invalid {param or name}: expected a non-empty string of at most {max_chars} "
            "characters.",
            param=param or name,
        )
    return value


def language(body: dict[str, Any], name: str) -> str | None:
    """An optional language code (see kallrec.languages); null is the same as absent."""
    value = body.get(name)
    if value is None:
        return None
    if not languages.is_language_code(value):
        raise ValidationError(
            f"Invalid {name}: {_shown(value)} is not a language code. Use an ISO 639 code, "
            "optionally with a script and a region (BCP 47: 'de', 'en-US', 'pt-BR', 'zh-Hant').",
            code="invalid_language_code",
            param=name,
        )
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= MAX_SAFE_INTEGER
    return isinstance(value, float) and math.isfinite(value)


def metadata(value: Any, param: str = "metadata") -> dict[str, str | int | float | bool] | None:
    """Up to 50 keys of at most 40 characters; values strings (at most 500 characters), numbers
    or booleans, echoed with their JSON types."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationError(
            "Invalid metadata: expected an object of strings, numbers or booleans.", param=param
        )
    if len(value) > MAX_METADATA_KEYS:
        raise ValidationError(
            f"Invalid metadata: at most {MAX_METADATA_KEYS} keys are allowed.", param=param
        )
    for key, item in value.items():
        if not key or len(key) > MAX_METADATA_KEY_CHARS:
            raise ValidationError(
                f"Invalid metadata key {key!r}: 1 to {MAX_METADATA_KEY_CHARS} characters.",
                param=f"{param}[{key}]",
            )
        if isinstance(item, str):
            ok = len(item) <= MAX_METADATA_VALUE_CHARS
        else:
            ok = isinstance(item, bool) or _is_number(item)
        if not ok:
            raise ValidationError(
                f"Invalid metadata value for {key!r}: a string of at most "
                f"{MAX_METADATA_VALUE_CHARS} characters, a number (integers within "
                f"±{MAX_SAFE_INTEGER}) or a boolean.",
                param=f"{param}[{key}]",
            )
    return dict(value)


def free_object(value: Any, param: str, code: str | None = None) -> dict[str, Any]:
    """A JSON object kallrec keeps as sent (``ai_agent``, ``routing`` with its unknown keys):
    any values, at most MAX_OBJECT_BYTES as compact JSON and MAX_OBJECT_DEPTH levels deep."""
    if not isinstance(value, dict):
        raise ValidationError(f"Invalid {param}: expected an object.", code=code, param=param)
    if _depth(value) > MAX_OBJECT_DEPTH:
        raise ValidationError(
            f"Invalid {param}: nested more than {MAX_OBJECT_DEPTH} levels deep.",
            code=code,
            param=param,
        )
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_OBJECT_BYTES:
        raise ValidationError(
            f"Invalid {param}: {size:,} bytes as JSON; at most {MAX_OBJECT_BYTES:,} are kept.",
            code=code,
            param=param,
        )
    return value


def _depth(value: Any) -> int:
    """Levels of objects and arrays (iterative: a body may nest as deep as the parser allows)."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, level + 1) for child in children)
    return deepest
