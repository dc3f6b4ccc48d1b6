"""The storage interface, run against both backends: a local directory and S3 over its protocol.

The S3 side is moto in server mode, started here as its own process on 127.0.0.1: boto3 talks
HTTP to it exactly as it would to AWS or MinIO.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from devtools.ports import free_port
from shop.storage import Storage, StorageError, open_storage
from tests.support.waiting import wait_until

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "test-only",
    "AWS_SECRET_ACCESS_KEY": "test-only",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server process, with credentials in this process's environment while it runs."""
    pytest.importorskip("moto")
    port = free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        wait_until(
            lambda: proc.poll() is not None or _listening(port), 30, what="moto server listening"
        )
        assert proc.poll() is None, "moto server exited"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return open_storage(tmp_path.as_uri())
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = f"shop-{tmp_path.name.lower().replace('_', '-')}"[:60].rstrip("-")
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return open_storage(f"s3://{bucket}/shopjobs?endpoint_url={endpoint}")


def test_a_streamed_put_stores_every_chunk_and_reports_size_and_sha256(storage):
    chunks = [b"a" * 1000, b"b" * 3000, b"c"]
    stored = storage.put("exports/1.csv", iter(chunks), content_type="text/csv")
    whole = b"".join(chunks)
    assert (stored.key, stored.size, stored.sha256) == (
        "exports/1.csv",
        len(whole),
        hashlib.sha256(whole).hexdigest(),
    )
    with storage.open("exports/1.csv") as f:
        assert f.read() == whole
    assert storage.stat("exports/1.csv") == stored


def test_a_large_stream_goes_up_in_parts_and_its_checksum_covers_all_of_it(storage):
    # 20 MB in 1 MB chunks: more than the S3 multipart threshold (8 MB), so it is uploaded in parts
    chunk = bytes(range(256)) * 4096
    stored = storage.put("exports/big.bin", (chunk for _ in range(20)))
    expected = hashlib.sha256(chunk * 20).hexdigest()
    assert (stored.size, stored.sha256) == (20 * len(chunk), expected)
    assert storage.stat("exports/big.bin").sha256 == expected


def test_list_delete_overwrite_and_missing_objects(storage):
    storage.put("a/1", b"x")
    storage.put("a/2", io.BytesIO(b"yy"))
    storage.put("b/1", b"z")
    storage.put("a/2", b"replaced")
    assert [(o.key, o.size) for o in storage.list("a/")] == [("a/1", 1), ("a/2", 8)]
    assert storage.delete("a/1") is True
    assert storage.delete("a/1") is False
    assert storage.stat("a/1") is None
    with pytest.raises(StorageError, match="a/1"):
        storage.open("a/1")
    with pytest.raises(StorageError, match="invalid storage key"):
        storage.put("../escape", b"no")


def test_an_objects_url_fetches_it(storage):
    storage.put("images/p/thumb.webp", b"RIFF-not-really-webp", content_type="image/webp")
    url = storage.url("images/p/thumb.webp")
    if url.startswith("file://"):
        assert Path(url[len("file://") :]).read_bytes() == b"RIFF-not-really-webp"
    else:
        response = httpx.get(url, timeout=5)
        assert response.status_code == 200 and response.content == b"RIFF-not-really-webp"
