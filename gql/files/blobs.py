"""The blob store interface: bytes kept under the SHA-256 of their content, never changed.

`LocalBlobStore` (local.py, a directory) and `S3BlobStore` (s3.py, a bucket) implement it;
`open_blob_store` (backends.py) picks one. Storage knows nothing of rows, users or rules.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ByteSource(Protocol):
    """Anything uploads are read from: Starlette's UploadFile, or a stream in tests."""

    async def read(self, size: int, /) -> bytes: ...


class BlobTooLarge(Exception):
    """More bytes arrived than the limit allows; nothing was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class InvalidDigest(ValueError):
    """A blob name that is not 64 lowercase hex digits (never turned into a path)."""


def check_digest(sha256: str) -> str:
    if not _SHA256_HEX.fullmatch(sha256):
        raise InvalidDigest("not a SHA-256 hex digest")
    return sha256


def is_digest(name: str) -> bool:
    return _SHA256_HEX.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class BlobInfo:
    sha256: str
    size: int
    modified: float  # Unix time of the last write (renewed when the same bytes are put again)
    # A file on this machine holding the bytes, when the store keeps one (served with sendfile).
    path: Path | None = None


# Called with every chunk before it is kept; raising stops the transfer and keeps nothing.
ChunkInspector = Callable[[bytes], None]


class PendingBlob(Protocol):
    """Bytes received and hashed but not yet in the store; gone when the block ends."""

    @property
    def sha256(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def local_path(self) -> Path:
        """A local file holding the bytes, readable until the receiving block ends."""
        ...

    async def commit(self) -> BlobInfo:
        """Put the bytes in the store, durably; idempotent."""
        ...


class ReceivedBlob:
    """A `PendingBlob` of any store: its bytes in `local_path`, installed once by `install`
    however often `commit` is called."""

    def __init__(
        self, sha256: str, size: int, local_path: Path, install: Callable[[], Awaitable[BlobInfo]]
    ) -> None:
        self.sha256 = sha256
        self.size = size
        self.local_path = local_path
        self._install = install
        self._committed: BlobInfo | None = None

    async def commit(self) -> BlobInfo:
        if self._committed is None:
            self._committed = await self._install()
        return self._committed


class BlobStore(Protocol):
    """Content-addressed storage of uploaded bytes.

    Writing is two steps, so a blob reaches the store only when its caller has decided to
    keep it (right before the row that refers to it is written): `receive` streams and hashes
    into a pending blob, enforcing the size limit on the bytes that arrive; `commit` puts it
    in place. Leaving `receive`'s block removes whatever was not committed.
    """

    max_bytes: int  # the largest blob `receive` accepts unless told otherwise

    def receive(
        self,
        source: ByteSource,
        *,
        max_bytes: int | None = None,
        inspect: ChunkInspector | None = None,
    ) -> AbstractAsyncContextManager[PendingBlob]: ...

    async def put(self, source: ByteSource, *, max_bytes: int | None = None) -> BlobInfo:
        """`receive` and `commit` in one step."""
        ...

    async def stat(self, sha256: str) -> BlobInfo | None: ...

    async def exists(self, sha256: str) -> bool: ...

    def read(self, sha256: str) -> AsyncIterator[bytes]:
        """The bytes in chunks; FileNotFoundError when the blob is not there."""
        ...

    async def delete(self, sha256: str, *, unchanged_since: float | None = None) -> int | None:
        """Remove a blob; the bytes freed, or None when absent or written after the cutoff."""
        ...

    def batches(self) -> AsyncIterator[list[BlobInfo]]:
        """Every blob, a bounded batch at a time (for maintenance)."""
        ...

    async def remove_abandoned(self, *, older_than: float) -> int:
        """Remove pending blobs left by a crashed process, last written before `older_than`."""
        ...

    async def presigned_download_url(
        self,
        sha256: str,
        *,
        expires_at: int,
        content_type: str,
        filename: str | None,
        cache_control: str | None = None,
    ) -> str | None:
        """A URL where the store itself serves the blob as an attachment until `expires_at`
        (Unix time), when it can and is configured to; None: serve it through the app."""
        ...

    async def aclose(self) -> None:
        """Release what the store holds open (connections); called once, at shutdown."""
        ...
