"""File names: read them from ``Content-Disposition``, and make them safe to create.

A server's file name is untrusted input: it may carry a path (``../../etc/passwd``), control or
bidi characters, quotes, Windows-reserved names, or be empty. ``safe_filename`` keeps only a
plain last path component a file system will accept, or falls back to a name built from the
recording id.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

__all__ = ["filename_from_disposition", "safe_filename", "with_suffix"]

# Room under the usual 255-byte limit for ".part.json" and a "-rec_…" disambiguator.
MAX_NAME_BYTES = 200
_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"]
    + [f"COM{i}" for i in range(1, 10)]
    + [f"LPT{i}" for i in range(1, 10)]
)
_UNSAFE = re.compile(r'[<>:"|?*]')
_PARAM = re.compile(
    r"""\s*;?\s*(?P<name>[^\s=;]+)\s*=\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<token>[^;]*))""",
    re.DOTALL,
)


def _params(value: str) -> dict[str, str]:
    """The ``name=value`` parameters after the disposition type (first occurrence wins)."""
    _, sep, rest = value.partition(";")
    if not sep:
        return {}
    found: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        name = match.group("name").lower()
        if match.group("quoted") is not None:
            text = re.sub(r"\\(.)", r"\1", match.group("quoted"), flags=re.DOTALL)
        else:
            text = match.group("token").strip()
        found.setdefault(name, text)
    return found


def _ext_value(value: str) -> str | None:
    """Decode an RFC 8187 (5987) ``charset'lang'pct-encoded`` value."""
    charset, sep, rest = value.partition("'")
    if not sep:
        return None
    _lang, sep, encoded = rest.partition("'")
    if not sep:
        return None
    charset = charset.strip().lower()
    if charset not in ("utf-8", "iso-8859-1"):
        return None
    try:
        return unquote(encoded, encoding=charset, errors="strict")
    except (UnicodeDecodeError, LookupError):
        return None


def filename_from_disposition(value: str | None) -> str | None:
    """The (unsanitised) file name a ``Content-Disposition`` names; ``filename*`` wins."""
    if not value:
        return None
    params = _params(value)
    if "filename*" in params:
        decoded = _ext_value(params["filename*"])
        if decoded:
            return decoded
    return params.get("filename") or None


def safe_filename(name: str | None, fallback: str) -> str:
    """A single, harmless path component for ``name``; ``fallback`` (assumed safe) if none."""
    if not name:
        return fallback
    text = unicodedata.normalize("NFC", name)
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    # Control characters (Cc), and format characters (Cf: bidi overrides that can disguise an
    # extension, zero-width characters).
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))
    text = _UNSAFE.sub("_", text)
    text = text.strip().lstrip(".").rstrip(". ")
    if not text:
        return fallback
    if text.partition(".")[0].upper() in _RESERVED:
        text = "_" + text
    encoded = text.encode()
    if len(encoded) > MAX_NAME_BYTES:
        stem, dot, ext = text.rpartition(".")
        if not dot or len(ext.encode()) > 16:
            stem, ext = text, ""
        keep = MAX_NAME_BYTES - len(ext.encode()) - (1 if ext else 0)
        stem = stem.encode()[:keep].decode("utf-8", "ignore").rstrip(". ")
        text = f"{stem}.{ext}" if ext else stem
    return text or fallback


def with_suffix(name: str, suffix: str) -> str:
    """``recording-sess_1.mp3`` + ``-agent`` → ``recording-sess_1-agent.mp3``."""
    if not suffix:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return name + suffix
    return f"{stem}{suffix}.{ext}"
