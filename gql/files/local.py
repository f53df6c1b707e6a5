"""`LocalBlobStore`: blobs as files under one directory, the only code that touches them.

Layout: ``blobs/<first two hex digits>/<sha256>`` and ``tmp/upload-*.part`` (pending). ``tmp/``
sits beside ``blobs/`` so that committing is one atomic ``os.replace`` on one filesystem.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from gql.files.blobs import (
    BlobInfo,
    BlobTooLarge,
    ByteSource,
    ChunkInspector,
    ReceivedBlob,
    check_digest,
    is_digest,
)

CHUNK_BYTES = 64 * 1024
READ_CHUNK_BYTES = 1024 * 1024
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
BLOBS_DIR = "blobs"
TMP_DIR = "tmp"
TMP_PREFIX = "upload-"
TMP_SUFFIX = ".part"
_SHARD = re.compile(r"[0-9a-f]{2}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _finish(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _info(sha256: str, path: Path, status: os.stat_result) -> BlobInfo:
    return BlobInfo(sha256, status.st_size, status.st_mtime, path)


class LocalBlobStore:
    """Blobs in ``root/blobs``, pending uploads in ``root/tmp`` (created on first use, 0700)."""

    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.root = root
        self.max_bytes = max_bytes

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r}, max_bytes={self.max_bytes})"

    @property
    def blobs_dir(self) -> Path:
        return self.root / BLOBS_DIR

    @property
    def tmp_dir(self) -> Path:
        return self.root / TMP_DIR

    def path(self, sha256: str) -> Path:
        """Where the blob with this digest lives; refuses anything but a digest."""
        check_digest(sha256)
        return self.blobs_dir / sha256[:2] / sha256

    # -- writing ----------------------------------------------------------------------

    def _open_temp(self) -> tuple[int, Path]:
        self.tmp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=TMP_SUFFIX, dir=self.tmp_dir)
        return fd, Path(name)

    def _install(self, temp: Path, sha256: str) -> BlobInfo:
        """Move a pending blob into place atomically and durably.

        Replacing a blob of the same digest (same bytes) is harmless and renews its mtime,
        which keeps the collector's grace period from removing a blob a row is about to use.
        """
        target = self.path(sha256)
        shard = target.parent
        new_shard = not shard.is_dir()
        shard.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(temp, target)
        _fsync_dir(shard)
        if new_shard:
            _fsync_dir(shard.parent)
        return _info(sha256, target, target.stat())

    @asynccontextmanager
    async def receive(
        self,
        source: ByteSource,
        *,
        max_bytes: int | None = None,
        inspect: ChunkInspector | None = None,
    ) -> AsyncIterator[ReceivedBlob]:
        limit = self.max_bytes if max_bytes is None else max_bytes
        fd, temp_path = await asyncio.to_thread(self._open_temp)
        fd_open = True
        try:
            digest = hashlib.sha256()
            size = 0
            while chunk := await source.read(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:  # counted on what arrives: a declared size is never trusted
                    raise BlobTooLarge(limit)
                if inspect is not None:
                    inspect(chunk)
                digest.update(chunk)
                await asyncio.to_thread(_write_all, fd, chunk)
            if inspect is not None:
                inspect(b"")
            fd_open = False
            await asyncio.to_thread(_finish, fd)
            sha256 = digest.hexdigest()
            yield ReceivedBlob(
                sha256,
                size,
                temp_path,
                functools.partial(asyncio.to_thread, self._install, temp_path, sha256),
            )
        finally:
            # Synchronous on purpose: it must happen even in a cancelled request (a client
            # that went away), where an await might not run.
            if fd_open:
                os.close(fd)
            temp_path.unlink(missing_ok=True)

    async def put(self, source: ByteSource, *, max_bytes: int | None = None) -> BlobInfo:
        async with self.receive(source, max_bytes=max_bytes) as pending:
            return await pending.commit()

    # -- reading ----------------------------------------------------------------------

    async def stat(self, sha256: str) -> BlobInfo | None:
        path = self.path(sha256)
        try:
            status = await asyncio.to_thread(os.stat, path)
        except FileNotFoundError:
            return None
        return _info(sha256, path, status)

    async def exists(self, sha256: str) -> bool:
        return await self.stat(sha256) is not None

    async def read(self, sha256: str) -> AsyncIterator[bytes]:
        stream = await asyncio.to_thread(self.path(sha256).open, "rb")
        try:
            while chunk := await asyncio.to_thread(stream.read, READ_CHUNK_BYTES):
                yield chunk
        finally:
            stream.close()

    # -- maintenance --------------------------------------------------------------------

    async def delete(self, sha256: str, *, unchanged_since: float | None = None) -> int | None:
        return await asyncio.to_thread(_unlink, self.path(sha256), unchanged_since)

    def _shards(self) -> list[Path]:
        root = self.blobs_dir
        if not root.is_dir():
            return []
        return sorted(p for p in root.iterdir() if p.is_dir() and _SHARD.fullmatch(p.name))

    async def batches(self) -> AsyncIterator[list[BlobInfo]]:
        """One shard directory per batch, so memory does not grow with the number of blobs."""
        for shard in await asyncio.to_thread(self._shards):
            batch = await asyncio.to_thread(_scan_shard, shard)
            if batch:
                yield batch

    async def remove_abandoned(self, *, older_than: float) -> int:
        removed = 0
        for path in await asyncio.to_thread(self._stale_temp_files, older_than):
            if await asyncio.to_thread(_unlink, path, older_than) is not None:
                removed += 1
        return removed

    async def presigned_download_url(
        self,
        sha256: str,
        *,
        expires_at: int,
        content_type: str,
        filename: str | None,
        cache_control: str | None = None,
    ) -> str | None:
        """None: a directory has no URLs of its own; the signed route serves the file."""
        return None

    async def aclose(self) -> None:
        """Nothing to release: every file is closed when its operation ends."""

    def _stale_temp_files(self, cutoff: float) -> list[Path]:
        if not self.tmp_dir.is_dir():
            return []
        with os.scandir(self.tmp_dir) as entries:
            return [
                Path(entry.path)
                for entry in entries
                if entry.is_file(follow_symlinks=False)
                and entry.name.startswith(TMP_PREFIX)
                and entry.stat(follow_symlinks=False).st_mtime < cutoff
            ]


def _scan_shard(shard: Path) -> list[BlobInfo]:
    found = []
    with os.scandir(shard) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False) and is_digest(entry.name):
                path = Path(entry.path)
                found.append(_info(entry.name, path, entry.stat(follow_symlinks=False)))
    return sorted(found, key=lambda blob: blob.sha256)


def _unlink(path: Path, unchanged_since: float | None) -> int | None:
    """Remove a file, unless written at or after `unchanged_since` (an upload renewed it)."""
    try:
        status = path.stat()
        if unchanged_since is not None and status.st_mtime >= unchanged_since:
            return None
        path.unlink()
    except FileNotFoundError:
        return None
    return status.st_size
