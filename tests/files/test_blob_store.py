"""The BlobStore interface: another backend (here, bytes in memory) plugs into the intake,
the use cases, the maintenance and the download route without any change to them."""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from gql.domain.evidence import submit_evidence
from gql.downloads import routes
from gql.files import BlobInfo, BlobStore, BlobTooLarge, ByteSource, LocalBlobStore
from gql.files.blobs import ChunkInspector, InvalidDigest, check_digest
from gql.files.maintenance import check_storage, collect_garbage
from gql.signing import UrlSigner
from gql.store.file_references import StoredFileReferences
from tests.conftest import stored_files

from .conftest import World
from .samples import BytesStream, GeneratedStream, pdf


class _Pending:
    def __init__(self, store: MemoryBlobStore, data: bytes, local_path: Path) -> None:
        self._store = store
        self._data = data
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.size = len(data)
        self.local_path = local_path

    async def commit(self) -> BlobInfo:
        self._store.blobs[self.sha256] = (self._data, time.time())
        return BlobInfo(self.sha256, self.size, time.time())


class MemoryBlobStore:
    """Bytes in a dict; pending uploads in a local file only for the plugins' check."""

    def __init__(self, max_bytes: int = 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.blobs: dict[str, tuple[bytes, float]] = {}

    @asynccontextmanager
    async def receive(
        self,
        source: ByteSource,
        *,
        max_bytes: int | None = None,
        inspect: ChunkInspector | None = None,
    ) -> AsyncIterator[_Pending]:
        limit = self.max_bytes if max_bytes is None else max_bytes
        data = bytearray()
        while chunk := await source.read(4096):
            if len(data) + len(chunk) > limit:
                raise BlobTooLarge(limit)
            if inspect is not None:
                inspect(chunk)
            data += chunk
        if inspect is not None:
            inspect(b"")
        with tempfile.NamedTemporaryFile() as local:
            local.write(data)
            local.flush()
            yield _Pending(self, bytes(data), Path(local.name))

    async def put(self, source: ByteSource, *, max_bytes: int | None = None) -> BlobInfo:
        async with self.receive(source, max_bytes=max_bytes) as pending:
            return await pending.commit()

    async def stat(self, sha256: str) -> BlobInfo | None:
        found = self.blobs.get(check_digest(sha256))
        return None if found is None else BlobInfo(sha256, len(found[0]), found[1])

    async def exists(self, sha256: str) -> bool:
        return await self.stat(sha256) is not None

    async def read(self, sha256: str) -> AsyncIterator[bytes]:
        found = self.blobs.get(check_digest(sha256))
        if found is None:
            raise FileNotFoundError(sha256)
        yield found[0]

    async def delete(self, sha256: str, *, unchanged_since: float | None = None) -> int | None:
        found = self.blobs.get(sha256)
        if found is None or (unchanged_since is not None and found[1] >= unchanged_since):
            return None
        del self.blobs[sha256]
        return len(found[0])

    async def batches(self) -> AsyncIterator[list[BlobInfo]]:
        yield [BlobInfo(k, len(v[0]), v[1]) for k, v in sorted(self.blobs.items())]

    async def remove_abandoned(self, *, older_than: float) -> int:
        return 0

    async def presigned_download_url(
        self,
        sha256: str,
        *,
        expires_at: int,
        content_type: str,
        filename: str | None,
        cache_control: str | None = None,
    ) -> str | None:
        return None

    async def aclose(self) -> None:
        """Nothing held open."""


def test_both_stores_fit_the_protocol(tmp_path: Path) -> None:
    stores: list[BlobStore] = [MemoryBlobStore(), LocalBlobStore(tmp_path)]
    assert len(stores) == 2  # mypy checks the assignment above


async def test_a_local_store_puts_reads_and_deletes(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path, max_bytes=1000)
    info = await store.put(BytesStream(b"hello"))
    assert info.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert await store.exists(info.sha256)
    assert b"".join([chunk async for chunk in store.read(info.sha256)]) == b"hello"
    with pytest.raises(BlobTooLarge):
        await store.put(GeneratedStream(1001))
    assert await store.delete(info.sha256) == 5
    assert not await store.exists(info.sha256)
    assert await store.delete(info.sha256) is None
    with pytest.raises(InvalidDigest):
        await store.stat("../../etc/passwd")
    assert stored_files(tmp_path) == []


async def test_another_backend_serves_the_whole_file_path(world: World, data_dir: Path) -> None:
    blobs = MemoryBlobStore()
    cert = await world.external()
    evidence = await submit_evidence(
        world.learner, cert.id, BytesStream(pdf("remote")), blobs=blobs, filename="Müller"
    )
    assert evidence.filename == "Müller.pdf"
    assert list(blobs.blobs) == [evidence.sha256]

    signer = UrlSigner("k" * 40)
    app = Starlette(routes=routes(blobs, signer))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get(signer.evidence_url(evidence.id, evidence.sha256))
    assert response.status_code == 200
    assert response.content == pdf("remote")
    assert response.headers["content-length"] == str(len(pdf("remote")))
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == "attachment; filename*=utf-8''M%C3%BCller.pdf"
    assert response.headers["x-content-type-options"] == "nosniff"

    orphan = await blobs.put(BytesStream(pdf("orphan")))
    report = await check_storage(blobs, StoredFileReferences())
    assert (report.ok, report.files_verified, report.orphans) == (True, 1, (orphan.sha256,))
    gc = await collect_garbage(blobs, StoredFileReferences(), grace_seconds=0)
    assert (gc.blobs_removed, gc.blobs_kept) == (1, 1)
    assert list(blobs.blobs) == [evidence.sha256]
    assert stored_files(data_dir) == []  # the local store was never touched
