"""The local storage backend: atomic whole-object writes, checksums, and keys that cannot escape."""

from __future__ import annotations

import hashlib
import io

import pytest

from shop.storage import LocalStorage, StorageError, open_storage


def test_a_streamed_put_stores_every_chunk_and_reports_size_and_sha256(tmp_path):
    storage = open_storage(tmp_path.as_uri())
    chunks = [b"a" * 1000, b"b" * 3000, b"c"]
    stored = storage.put("exports/1.csv", iter(chunks))
    whole = b"".join(chunks)
    assert (stored.size, stored.sha256) == (len(whole), hashlib.sha256(whole).hexdigest())
    with storage.open("exports/1.csv") as f:
        assert f.read() == whole
    assert storage.stat("exports/1.csv") == stored
    assert storage.url("exports/1.csv").startswith("file://")


def test_list_delete_and_missing_objects(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.put("a/1", b"x")
    storage.put("a/2", io.BytesIO(b"yy"))
    storage.put("b/1", b"z")
    assert [o.key for o in storage.list("a/")] == ["a/1", "a/2"]
    assert storage.delete("a/1") is True
    assert storage.delete("a/1") is False
    assert storage.stat("a/1") is None
    with pytest.raises(StorageError, match="a/1"):
        storage.open("a/1")


def test_a_failed_write_leaves_the_old_object_whole(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.put("report", b"old")

    def broken():
        yield b"new-partial"
        raise OSError("disk full")

    with pytest.raises(OSError):
        storage.put("report", broken())
    with storage.open("report") as f:
        assert f.read() == b"old"
    assert [o.key for o in storage.list()] == ["report"]


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a/../b", "", "a//b", "a/.hidden"])
def test_keys_that_could_escape_the_root_are_refused(tmp_path, key):
    with pytest.raises(StorageError, match="invalid storage key"):
        LocalStorage(tmp_path).put(key, b"x")


def test_an_unknown_scheme_is_named():
    with pytest.raises(StorageError, match="ftp://"):
        open_storage("ftp://example.test/x")
