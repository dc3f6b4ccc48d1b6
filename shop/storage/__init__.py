"""Where the shop keeps files (exports, images, backups): one interface, several backends.

``open_storage(url)`` picks the backend from the URL's scheme: ``file:///var/lib/shopjobs`` for a
local directory (the default); further schemes register themselves in ``BACKENDS``.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlparse

from shop.storage.base import Storage, StorageError, StoredObject, check_key
from shop.storage.local import LocalStorage

BACKENDS: dict[str, Callable[[str], Storage]] = {"file": LocalStorage.from_url}


def _s3(url: str) -> Storage:
    from shop.storage.s3 import S3Storage  # boto3 is imported only by processes that use S3

    return S3Storage.from_url(url)


BACKENDS["s3"] = _s3


def open_storage(url: str) -> Storage:
    """The backend for ``url``; a ``StorageError`` names an unknown scheme."""
    scheme = urlparse(url).scheme
    try:
        factory = BACKENDS[scheme]
    except KeyError:
        raise StorageError(
            f"no storage backend for {scheme or 'a URL without scheme'}:// ({url!r})"
        ) from None
    return factory(url)


__all__ = [
    "BACKENDS",
    "LocalStorage",
    "Storage",
    "StorageError",
    "StoredObject",
    "check_key",
    "open_storage",
]
