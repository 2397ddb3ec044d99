"""Checks on client input that name the offending parameter."""

from __future__ import annotations

from typing import Any

from kallrec.errors import InvalidRequest

MAX_METADATA_KEYS = 50
MAX_METADATA_KEY_CHARS = 40
MAX_METADATA_VALUE_CHARS = 500


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
            raise InvalidRequest(
                f"Received unknown parameter: {prefix}{name}.", param=prefix + name
            )


def optional_string(body: dict[str, Any], name: str, max_chars: int = 100) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_chars:
        raise InvalidRequest(
            f"Invalid {name}: expected a non-empty string of at most {max_chars} characters.",
            param=name,
        )
    return value


def metadata(value: Any, param: str = "metadata") -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidRequest("Invalid metadata: expected an object of strings.", param=param)
    if len(value) > MAX_METADATA_KEYS:
        raise InvalidRequest(
            f"Invalid metadata: at most {MAX_METADATA_KEYS} keys are allowed.", param=param
        )
    for key, item in value.items():
        if not key or len(key) > MAX_METADATA_KEY_CHARS:
            raise InvalidRequest(
                f"Invalid metadata key {key!r}: 1 to {MAX_METADATA_KEY_CHARS} characters.",
                param=f"{param}[{key}]",
            )
        if not isinstance(item, str) or len(item) > MAX_METADATA_VALUE_CHARS:
            raise InvalidRequest(
                f"Invalid metadata value for {key!r}: a string of at most "
                f"{MAX_METADATA_VALUE_CHARS} characters.",
                param=f"{param}[{key}]",
            )
    return dict(value)
