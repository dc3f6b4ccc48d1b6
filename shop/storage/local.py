"""A local directory as storage: the default for development, tests and single-host shops."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

from shop.storage.base import CHUNK, StorageError, StoredObject, check_key, chunks_of


class LocalStorage:
    """Objects are files under ``root``; each write goes to a temporary file, then ``os.replace``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_url(cls, url: str) -> LocalStorage:
        parsed = urlparse(url)
        if parsed.netloc not in ("", "localhost") or not parsed.path:
            raise StorageError(f"a local storage URL looks like file:///absolute/dir, not {url!r}")
        return cls(unquote(parsed.path))

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(
        self, key: str, data: bytes | BinaryIO | Iterable[bytes], *, content_type: str | None = None
    ) -> StoredObject:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks_of(data):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredObject(key, size, digest.hexdigest())

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise StorageError(f"no object {key!r} in {self.root}") from None

    def stat(self, key: str) -> StoredObject | None:
        path = self._path(key)
        if not path.is_file():
            return None
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        return StoredObject(key, path.stat().st_size, digest.hexdigest())

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        keys = sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".put-")
        )
        for key in keys:
            if key.startswith(prefix):
                found = self.stat(key)
                if found is not None:
                    yield found

    def url(self, key: str) -> str:
        return self._path(key).as_uri()
