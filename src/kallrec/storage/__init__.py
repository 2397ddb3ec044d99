"""Where audio lives: pick a backend from a URL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from kallrec.storage.base import (
    KeepsFilesOpen,
    ObjectInfo,
    ObjectMissing,
    Presigning,
    Storage,
    StorageError,
)
from kallrec.storage.local import LocalStorage
from kallrec.storage.memory import MemoryStorage

if TYPE_CHECKING:
    from kallrec.config import Settings

__all__ = [
    "KeepsFilesOpen",
    "LocalStorage",
    "MemoryStorage",
    "ObjectInfo",
    "ObjectMissing",
    "Presigning",
    "Storage",
    "StorageError",
    "open_storage",
]


def open_storage(url: str, settings: Settings | None = None) -> Storage:
    """``file:///path``, ``memory://`` or ``s3://bucket/prefix`` (endpoint, region and keys from
    ``settings``; without them, from the KALLREC_* environment like the server's own)."""
    if url.startswith("file://"):
        return LocalStorage(Path(url.removeprefix("file://")))
    if url == "memory://":
        return MemoryStorage()
    if url.startswith("s3://"):
        from kallrec.config import Settings
        from kallrec.storage.s3 import S3Options, S3Storage

        settings = settings or Settings.from_env()
        storage = S3Storage.from_url(url, S3Options.from_settings(settings))
        if settings.s3_redirect != "off" and storage.options.static_credentials() is None:
            raise ValueError(
                "KALLREC_S3_REDIRECT presigns URLs and needs an access key: set "
                "KALLREC_S3_ACCESS_KEY_ID/KALLREC_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID/...)."
            )
        return storage
    raise ValueError(f"Unsupported storage URL {url!r}: use file:///path or s3://bucket/prefix.")
