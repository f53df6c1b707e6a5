"""`S3BlobStore`: blobs as objects in an S3-compatible bucket (aiobotocore), so that several
instances share one store. Keys mirror the local layout under the URL's prefix:
``blobs/<first two hex digits>/<sha256>``, and ``tmp/upload-*.part`` for staged uploads.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore.exceptions import BotoCoreError, ClientError

from gql import clock
from gql.files.blobs import (
    BlobInfo,
    BlobTooLarge,
    ByteSource,
    ChunkInspector,
    ReceivedBlob,
    check_digest,
)
from gql.files.local import (
    BLOBS_DIR,
    CHUNK_BYTES,
    DEFAULT_MAX_BYTES,
    READ_CHUNK_BYTES,
    TMP_DIR,
    TMP_PREFIX,
    TMP_SUFFIX,
)

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

    from gql.settings import Settings

log = logging.getLogger("certgraph.files.s3")

# S3's smallest part but the last; a multipart upload has at most 10,000 parts.
MIN_PART_BYTES = 5 * 1024 * 1024
DEFAULT_PART_BYTES = MIN_PART_BYTES
# CopyObject (how a staged upload is put in place) copies at most this much in one request.
MAX_BLOB_BYTES = 5 * 1024**3
# SigV4's longest presigned URL.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
# A download streamed through the app holds a connection for as long as its client reads, so
# the pool is larger than botocore's 10: slow downloads must not starve uploads.
MAX_POOL_CONNECTIONS = 64
# Removing what a refused or interrupted upload staged must not hang a request forever;
# whatever it could not remove, `certgraph gc` does.
CLEANUP_TIMEOUT_SECONDS = 30.0
# What the client raises when the store fails: unreachable, refused, no such bucket.
CLIENT_ERRORS: tuple[type[Exception], ...] = (BotoCoreError, ClientError)
_BLOB_KEY = re.compile(r"([0-9a-f]{2})/([0-9a-f]{64})")


class StorageUrlError(ValueError):
    """CERTGRAPH_STORAGE_URL does not name a bucket."""


@dataclass(frozen=True, slots=True)
class S3Location:
    """A bucket and a key prefix ("" or ending in "/"), from ``s3://bucket/prefix``."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise StorageUrlError(f"not an s3://<bucket>[/<prefix>] URL: {url!r}")
        prefix = parts.path.strip("/")
        return cls(parts.netloc, prefix + "/" if prefix else "")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True, slots=True)
class S3Connection:
    """How to reach the store: the standard AWS variables, read once by the settings.

    Without keys, botocore's own chain finds credentials (an instance or pod role, a profile).
    """

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Connection:
        secret = settings.aws_secret_access_key
        token = settings.aws_session_token
        return cls(
            endpoint_url=settings.aws_endpoint_url,
            region=settings.aws_region,
            access_key_id=settings.aws_access_key_id,
            secret_access_key=None if secret is None else secret.get_secret_value(),
            session_token=None if token is None else token.get_secret_value(),
        )


@cache
def _session() -> AioSession:
    """One botocore session per process: clients made from it share its loaded S3 model."""
    return AioSession()


def _is_missing(error: ClientError) -> bool:
    code = str(error.response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_at(fd: int, offset: int, length: int) -> bytes:
    pieces = []
    while length > 0:
        piece = os.pread(fd, length, offset)
        if not piece:
            raise OSError(f"the spool file ended {length} bytes early")
        pieces.append(piece)
        offset += len(piece)
        length -= len(piece)
    return b"".join(pieces)  # one piece (the usual case) is returned as it is, not copied


def content_disposition(disposition: str, filename: str) -> str:
    """RFC 6266 with RFC 5987's ``filename*`` for a name a URL would have to quote."""
    quoted = quote(filename)
    if quoted != filename:
        return f"{disposition}; filename*=utf-8''{quoted}"
    return f'{disposition}; filename="{filename}"'


class _Staging:
    """The staged object of one upload: one PutObject, or a multipart upload from the first
    full part on. `started` says whether anything may have reached the bucket."""

    def __init__(self, store: S3BlobStore, key: str) -> None:
        self.store = store
        self.key = key
        self.started = False
        self.upload_id: str | None = None
        self.completed = False
        self._parts: list[CompletedPartTypeDef] = []

    async def add_part(self, data: bytes) -> None:
        client = await self.store.client()
        bucket = self.store.location.bucket
        self.started = True
        if self.upload_id is None:
            created = await client.create_multipart_upload(Bucket=bucket, Key=self.key)
            self.upload_id = created["UploadId"]
        number = len(self._parts) + 1
        part = await client.upload_part(
            Bucket=bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
        )
        self._parts.append({"ETag": part["ETag"], "PartNumber": number})

    async def finish(self, tail: bytes) -> None:
        client = await self.store.client()
        bucket = self.store.location.bucket
        self.started = True
        if self.upload_id is None:
            await client.put_object(Bucket=bucket, Key=self.key, Body=tail)
            return
        if tail:
            await self.add_part(tail)
        await client.complete_multipart_upload(
            Bucket=bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self._parts},
        )
        self.completed = True


class S3BlobStore:
    """Blobs in an S3-compatible bucket; each upload is also spooled to a local file in
    `spool_dir` (the plugins' check and imports read it), removed when its block ends.

    The client is made on first use in the running event loop; `aclose` closes it.
    """

    def __init__(
        self,
        location: S3Location,
        connection: S3Connection,
        *,
        spool_dir: Path,
        max_bytes: int = DEFAULT_MAX_BYTES,
        part_bytes: int = DEFAULT_PART_BYTES,
        presigned_downloads: bool = False,
    ) -> None:
        if not 0 < max_bytes <= MAX_BLOB_BYTES:
            raise ValueError(f"max_bytes must be positive and at most {MAX_BLOB_BYTES}")
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"part_bytes must be at least {MIN_PART_BYTES} (S3's minimum)")
        self.location = location
        self.connection = connection
        self.spool_dir = spool_dir
        self.max_bytes = max_bytes
        self.part_bytes = part_bytes
        self.presigned_downloads = presigned_downloads
        self._client: S3Client | None = None
        self._exit_stack: AsyncExitStack | None = None
        self._client_lock = asyncio.Lock()
        self._cleanups: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> S3BlobStore:
        assert settings.storage_url is not None
        return cls(
            S3Location.parse(settings.storage_url),
            S3Connection.from_settings(settings),
            spool_dir=settings.data_dir / TMP_DIR,
            max_bytes=settings.max_upload_bytes,
            presigned_downloads=settings.storage_presigned_downloads,
        )

    def __repr__(self) -> str:
        return f"S3BlobStore({str(self.location)!r}, max_bytes={self.max_bytes})"

    # -- the client ---------------------------------------------------------------------

    async def client(self) -> S3Client:
        """The S3 client of this store, made on first use."""
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    self._client = await self._open_client()
        return self._client

    async def _open_client(self) -> S3Client:
        conn = self.connection
        config = AioConfig(
            signature_version="s3v4",
            # Servers other than AWS (MinIO, Ceph, ...) are reached by path, not by a
            # bucket subdomain they may not resolve.
            s3={"addressing_style": "path" if conn.endpoint_url else "auto"},
            max_pool_connections=MAX_POOL_CONNECTIONS,
            retries={"mode": "standard"},
        )
        stack = AsyncExitStack()
        client = await stack.enter_async_context(
            _session().create_client(
                "s3",
                endpoint_url=conn.endpoint_url,
                region_name=conn.region or "us-east-1",
                aws_access_key_id=conn.access_key_id,
                aws_secret_access_key=conn.secret_access_key,
                aws_session_token=conn.session_token,
                config=config,
            )
        )
        self._exit_stack = stack
        return client

    async def aclose(self) -> None:
        """Finish removing what interrupted uploads staged, then close the client."""
        if self._cleanups:
            await asyncio.wait(set(self._cleanups), timeout=CLEANUP_TIMEOUT_SECONDS)
        stack, self._exit_stack, self._client = self._exit_stack, None, None
        if stack is not None:
            await stack.aclose()

    # -- keys ---------------------------------------------------------------------------

    def key(self, sha256: str) -> str:
        """The object key of the blob with this digest; refuses anything but a digest."""
        check_digest(sha256)
        return f"{self.location.prefix}{BLOBS_DIR}/{sha256[:2]}/{sha256}"

    @property
    def _blobs_prefix(self) -> str:
        return f"{self.location.prefix}{BLOBS_DIR}/"

    @property
    def _staged_prefix(self) -> str:
        return f"{self.location.prefix}{TMP_DIR}/{TMP_PREFIX}"

    def _blob_digest(self, key: str) -> str | None:
        found = _BLOB_KEY.fullmatch(key[len(self._blobs_prefix) :])
        if found is None or found[2][:2] != found[1]:
            return None
        return found[2]

    # -- writing ------------------------------------------------------------------------

    def _open_spool(self) -> tuple[int, Path]:
        self.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=TMP_SUFFIX, dir=self.spool_dir)
        return fd, Path(name)

    @asynccontextmanager
    async def receive(
        self,
        source: ByteSource,
        *,
        max_bytes: int | None = None,
        inspect: ChunkInspector | None = None,
    ) -> AsyncIterator[ReceivedBlob]:
        """Stream into a local spool file and, a part at a time, a staged object, hashing.

        Each part is read back from the spool when it is full, so memory holds at most one
        part. Leaving the block aborts the multipart upload or deletes the staged object,
        whatever happened (a refusal, an error, a cancellation).
        """
        limit = self.max_bytes if max_bytes is None else max_bytes
        fd, spool = await asyncio.to_thread(self._open_spool)
        fd_open = True
        staging = _Staging(self, f"{self._staged_prefix}{uuid.uuid4().hex}{TMP_SUFFIX}")
        try:
            digest = hashlib.sha256()
            size = sent = 0
            while chunk := await source.read(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:  # counted on what arrives: a declared size is never trusted
                    raise BlobTooLarge(limit)
                if inspect is not None:
                    inspect(chunk)
                digest.update(chunk)
                await asyncio.to_thread(_write_all, fd, chunk)
                if size - sent >= self.part_bytes:
                    await staging.add_part(await asyncio.to_thread(_read_at, fd, sent, size - sent))
                    sent = size
            if inspect is not None:
                inspect(b"")
            await staging.finish(await asyncio.to_thread(_read_at, fd, sent, size - sent))
            fd_open = False
            await asyncio.to_thread(os.close, fd)
            sha256 = digest.hexdigest()
            yield ReceivedBlob(
                sha256, size, spool, functools.partial(self._install, staging.key, sha256, size)
            )
        finally:
            # Local and synchronous: it happens even where an await would not run.
            if fd_open:
                os.close(fd)
            spool.unlink(missing_ok=True)
            if staging.started:
                # In a task of its own, so a cancelled request (a client gone, a timeout)
                # cannot cut it short; awaited here otherwise.
                await asyncio.shield(self._discard_later(staging))

    def _discard_later(self, staging: _Staging) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(self._discard(staging))
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)
        return task

    async def _discard(self, staging: _Staging) -> None:
        bucket = self.location.bucket
        try:
            async with asyncio.timeout(CLEANUP_TIMEOUT_SECONDS):
                client = await self.client()
                if staging.upload_id is not None and not staging.completed:
                    await client.abort_multipart_upload(
                        Bucket=bucket, Key=staging.key, UploadId=staging.upload_id
                    )
                # Deleting a key that is not there succeeds: no need to know how far it got.
                await client.delete_object(Bucket=bucket, Key=staging.key)
        except Exception as exc:  # the upload's own outcome stands; gc removes it later
            log.warning(
                "could not remove the staged upload %s (certgraph gc will): %s: %s",
                staging.key,
                type(exc).__name__,
                exc,
            )

    async def _install(self, staged_key: str, sha256: str, size: int) -> BlobInfo:
        """Copy a staged object to its blob key, in the store (no bytes through this process).

        Copying over a blob of the same digest (same bytes) is harmless and renews its
        LastModified, which keeps the collector's grace period from removing a blob a row is
        about to use.
        """
        client = await self.client()
        bucket = self.location.bucket
        copied = await client.copy_object(
            Bucket=bucket, Key=self.key(sha256), CopySource={"Bucket": bucket, "Key": staged_key}
        )
        modified = copied.get("CopyObjectResult", {}).get("LastModified")
        return BlobInfo(sha256, size, time.time() if modified is None else modified.timestamp())

    async def put(self, source: ByteSource, *, max_bytes: int | None = None) -> BlobInfo:
        async with self.receive(source, max_bytes=max_bytes) as pending:
            return await pending.commit()

    # -- reading ------------------------------------------------------------------------

    async def stat(self, sha256: str) -> BlobInfo | None:
        key = self.key(sha256)
        client = await self.client()
        try:
            head = await client.head_object(Bucket=self.location.bucket, Key=key)
        except ClientError as error:
            if _is_missing(error):
                return None
            raise
        return BlobInfo(sha256, head["ContentLength"], head["LastModified"].timestamp())

    async def exists(self, sha256: str) -> bool:
        return await self.stat(sha256) is not None

    async def read(self, sha256: str) -> AsyncIterator[bytes]:
        key = self.key(sha256)
        client = await self.client()
        try:
            found = await client.get_object(Bucket=self.location.bucket, Key=key)
        except ClientError as error:
            if _is_missing(error):
                raise FileNotFoundError(key) from None
            raise
        body = found["Body"]
        try:
            while chunk := await body.read(READ_CHUNK_BYTES):
                yield chunk
        finally:
            body.close()  # also when the reader stops early: the connection is not reused

    async def presigned_url(
        self,
        sha256: str,
        *,
        expires_in: int,
        content_type: str | None = None,
        filename: str | None = None,
        disposition: str = "attachment",
        cache_control: str | None = None,
    ) -> str:
        """A URL of the bucket that serves the blob, with these response headers, until it
        expires (1 s to 7 days); made locally, without a request."""
        params: dict[str, Any] = {"Bucket": self.location.bucket, "Key": self.key(sha256)}
        if content_type is not None:
            params["ResponseContentType"] = content_type
        if filename is not None:
            params["ResponseContentDisposition"] = content_disposition(disposition, filename)
        if cache_control is not None:
            params["ResponseCacheControl"] = cache_control
        client = await self.client()
        url: str = await client.generate_presigned_url(
            "get_object",
            Params=params,
            ExpiresIn=min(max(1, expires_in), MAX_PRESIGN_SECONDS),
        )
        return url

    async def presigned_download_url(
        self,
        sha256: str,
        *,
        expires_at: int,
        content_type: str,
        filename: str | None,
        cache_control: str | None = None,
    ) -> str | None:
        """With CERTGRAPH_STORAGE_PRESIGNED_DOWNLOADS, a presigned URL of the bucket, valid
        until `expires_at`; None otherwise (the signed route streams the blob)."""
        if not self.presigned_downloads:
            return None
        return await self.presigned_url(
            sha256,
            expires_in=expires_at - int(clock.now().timestamp()),
            content_type=content_type,
            filename=filename,
            cache_control=cache_control,
        )

    # -- maintenance --------------------------------------------------------------------

    async def delete(self, sha256: str, *, unchanged_since: float | None = None) -> int | None:
        """Remove a blob unless written at or after `unchanged_since`.

        S3 has no conditional delete on age: between the HEAD and the DELETE (one round trip)
        an upload of the same bytes could renew it. The collector's grace period makes that
        an orphan re-uploaded in that very moment.
        """
        found = await self.stat(sha256)
        if found is None:
            return None
        if unchanged_since is not None and found.modified >= unchanged_since:
            return None
        client = await self.client()
        await client.delete_object(Bucket=self.location.bucket, Key=self.key(sha256))
        return found.size

    async def batches(self) -> AsyncIterator[list[BlobInfo]]:
        """One listing page (up to 1000 keys) per batch."""
        client = await self.client()
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=self.location.bucket, Prefix=self._blobs_prefix
        )
        async for page in pages:
            batch = []
            for item in page.get("Contents", []):
                sha256 = self._blob_digest(item["Key"])
                if sha256 is not None:
                    batch.append(BlobInfo(sha256, item["Size"], item["LastModified"].timestamp()))
            if batch:
                yield batch

    async def remove_abandoned(self, *, older_than: float) -> int:
        """Staged objects and multipart uploads a crashed process left in the bucket, and
        spool files it left in this host's `spool_dir`, all last written before `older_than`."""
        client = await self.client()
        bucket = self.location.bucket
        removed = 0
        objects = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=self._staged_prefix
        )
        async for page in objects:
            for item in page.get("Contents", []):
                if item["LastModified"].timestamp() < older_than:
                    await client.delete_object(Bucket=bucket, Key=item["Key"])
                    removed += 1
        uploads = client.get_paginator("list_multipart_uploads").paginate(
            Bucket=bucket, Prefix=self._staged_prefix
        )
        async for listing in uploads:
            for upload in listing.get("Uploads", []):
                if upload["Initiated"].timestamp() < older_than:
                    await client.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
        return removed + await asyncio.to_thread(self._remove_stale_spools, older_than)

    def _remove_stale_spools(self, cutoff: float) -> int:
        if not self.spool_dir.is_dir():
            return 0
        removed = 0
        with os.scandir(self.spool_dir) as entries:
            for entry in entries:
                if (
                    entry.is_file(follow_symlinks=False)
                    and entry.name.startswith(TMP_PREFIX)
                    and entry.stat(follow_symlinks=False).st_mtime < cutoff
                ):
                    Path(entry.path).unlink(missing_ok=True)
                    removed += 1
        return removed
