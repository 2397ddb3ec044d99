"""Where audio lives: pick a backend from a URL."""

from __future__ import annotations

from pathlib import Path

from kallrec.storage.base import ObjectInfo, ObjectMissing, Storage, StorageError
from kallrec.storage.local import LocalStorage
from kallrec.storage.memory import MemoryStorage

__all__ = [
    "LocalStorage",
    "MemoryStorage",
    "ObjectInfo",
    "ObjectMissing",
    "Storage",
    "StorageError",
    "open_storage",
]


def open_storage(url: str) -> Storage:
    if url.startswith("file://"):
        return LocalStorage(Path(url.removeprefix("file://")))
    if url == "memory://":
        return MemoryStorage()
    raise ValueError(f"Unsupported storage URL {url!r}: use file:///path (S3 comes later).")
