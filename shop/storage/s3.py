"""An S3-compatible bucket as storage (AWS, MinIO, Ceph, R2...), through boto3.

``s3://bucket/optional/prefix?endpoint_url=http://127.0.0.1:9000&region=eu-central-1``; the
credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
a profile or an instance role), never from the URL. A put streams through ``upload_fileobj``
(multipart above 8 MB, so memory stays flat), hashing as it reads; the SHA-256 is then kept
in the object's metadata by a server-side copy, so ``stat`` need not read the object back.
An upload is atomic: readers see the old object or the new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO
from urllib.parse import parse_qs, urlparse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shop.storage.base import CHUNK, StorageError, StoredObject, check_key, chunks_of

URL_EXPIRES_S = 7 * 86400
TRANSFER = TransferConfig(
    multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=2
)


class _HashingReader:
    """A read()-able view of chunks that hashes and counts what boto3 reads."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        self.digest.update(out)
        self.size += len(out)
        return out


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


class S3Storage:
    """Objects under ``prefix`` in ``bucket``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        client: Any = None,
    ) -> None:
        if not bucket:
            raise StorageError("an S3 storage URL names a bucket: s3://bucket/prefix")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region or "us-east-1",
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30
            ),
        )

    @classmethod
    def from_url(cls, url: str) -> S3Storage:
        parsed = urlparse(url)
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        unknown = set(query) - {"endpoint_url", "region"}
        if unknown:
            raise StorageError(
                f"unknown S3 storage URL options {sorted(unknown)}; known: endpoint_url, region"
            )
        return cls(
            parsed.netloc,
            parsed.path,
            endpoint_url=query.get("endpoint_url"),
            region=query.get("region"),
        )

    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(
        self, key: str, data: bytes | BinaryIO | Iterable[bytes], *, content_type: str | None = None
    ) -> StoredObject:
        full = self._key(key)
        reader = _HashingReader(chunks_of(data))
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self.client.upload_fileobj(reader, self.bucket, full, ExtraArgs=extra, Config=TRANSFER)
            sha = reader.digest.hexdigest()
            self.client.copy_object(
                Bucket=self.bucket,
                Key=full,
                CopySource={"Bucket": self.bucket, "Key": full},
                Metadata={"sha256": sha},
                MetadataDirective="REPLACE",
                **extra,
            )
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not store {key!r} in s3://{self.bucket}: {exc}") from exc
        return StoredObject(key, reader.size, sha)

    def open(self, key: str) -> BinaryIO:
        try:
            body: BinaryIO = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
        except ClientError as exc:
            if _missing(exc):
                raise StorageError(
                    f"no object {key!r} in s3://{self.bucket}/{self.prefix}"
                ) from None
            raise StorageError(f"could not read {key!r} from s3://{self.bucket}: {exc}") from exc
        return body

    def stat(self, key: str) -> StoredObject | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise StorageError(f"could not stat {key!r} in s3://{self.bucket}: {exc}") from exc
        sha = head.get("Metadata", {}).get("sha256")
        if sha is None:  # written by another tool: hash it once by reading it
            digest = hashlib.sha256()
            with self.open(key) as f:
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
            sha = digest.hexdigest()
        return StoredObject(key, int(head["ContentLength"]), sha)

    def delete(self, key: str) -> bool:
        if self.stat(key) is None:
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        return True

    def list(self, prefix: str = "") -> Iterator[StoredObject]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                found = self.stat(item["Key"][len(self.prefix) :])
                if found is not None:
                    yield found

    def url(self, key: str) -> str:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._key(key)},
            ExpiresIn=URL_EXPIRES_S,
        )
        return url
