"""The storage interface every backend implements, and the rules keys follow."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO, Protocol

CHUNK = 1 << 20
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*(/[A-Za-z0-9][A-Za-z0-9._\-]*)*$")


class StorageError(RuntimeError):
    """A storage operation failed or was asked something invalid; the message says which key."""


@dataclasses.dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


def check_key(key: str) -> str:
    """Keys are relative slash-separated names (``exports/42.csv``); no ``..``, no leading ``/``."""
    if not isinstance(key, str) or len(key) > 512 or not _KEY.match(key) or ".." in key.split("/"):
        raise StorageError(f"invalid storage key {key!r}")
    return key


class Storage(Protocol):
    """Whole objects, written atomically: a reader sees the old object or the new one, never half."""

    def put(
        self, key: str, data: bytes | BinaryIO | Iterable[bytes], *, content_type: str | None = None
    ) -> StoredObject:
        """Store ``data`` (bytes, a file object or an iterable of chunks) under ``key``, streaming."""

    def open(self, key: str) -> BinaryIO:
        """A binary file object to read ``key``; ``StorageError`` when it is missing."""

    def stat(self, key: str) -> StoredObject | None:
        """Size and SHA-256 of ``key``, or None when it does not exist."""

    def delete(self, key: str) -> bool:
        """Remove ``key``; False when there was nothing to remove."""

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        """Every object whose key starts with ``prefix``, in key order."""

    def url(self, key: str) -> str:
        """Where a person or a process can fetch ``key`` (a ``file://`` or ``https://`` URL)."""


def chunks_of(data: bytes | BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    """Any accepted ``put`` payload as a stream of byte chunks, so no backend reads it whole."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        yield bytes(data)
    elif hasattr(data, "read"):
        while chunk := data.read(CHUNK):
            yield chunk
    else:
        for chunk in data:
            yield bytes(chunk)
