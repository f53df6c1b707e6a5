"""`S3BlobStore` against a real S3-compatible server (moto's, in a process of its own): content
addressing, parts, nothing left in the bucket by a refused, failed or killed upload, gc and
check through the interface, downloads streamed or presigned; and the settings that pick it."""

from __future__ import annotations

import asyncio
import hashlib
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette

from gql import files
from gql.app import create_app
from gql.domain.evidence import submit_evidence
from gql.downloads import routes
from gql.files import BlobTooLarge, InvalidDigest, LocalBlobStore, Purpose, UploadRefused
from gql.files.backends import open_blob_store
from gql.files.maintenance import check_storage, collect_garbage
from gql.files.s3 import (
    MIN_PART_BYTES,
    S3BlobStore,
    S3Location,
    StorageUrlError,
)
from gql.policy import UploadInfo, UploadRefusal
from gql.settings import Settings, SettingsError, load_settings
from gql.signing import UrlSigner
from gql.store.file_references import StoredFileReferences
from tests.conftest import stored_files

from .conftest import World
from .s3_server import MotoServer, bucket_keys, bucket_name, open_uploads
from .samples import BytesStream, GeneratedStream, pdf

PART = MIN_PART_BYTES
slow = pytest.mark.slow  # moto's server is a process
# A store test with no `world` uses no database: CI runs it once, in the PostgreSQL pass.
store_only = pytest.mark.database_independent


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield server
    server.stop()


@pytest_asyncio.fixture
async def store(moto: MotoServer, data_dir: Path) -> AsyncIterator[S3BlobStore]:
    """A store on a new bucket, under a prefix, with S3's smallest parts."""
    blobs = S3BlobStore(
        S3Location(bucket_name(), "certgraph/"),
        moto.connection(),
        spool_dir=data_dir / "tmp",
        max_bytes=64 * 1024 * 1024,
        part_bytes=PART,
    )
    client = await blobs.client()
    await client.create_bucket(Bucket=blobs.location.bucket)
    try:
        yield blobs
    finally:
        await blobs.aclose()


async def keys(store: S3BlobStore) -> list[str]:
    return await bucket_keys(await store.client(), store.location.bucket)


async def uploads(store: S3BlobStore) -> list[str]:
    return await open_uploads(await store.client(), store.location.bucket)


async def assert_nothing_left(store: S3BlobStore, *kept: str) -> None:
    """The bucket holds exactly the blobs `kept`: no staged object, no multipart upload, and no
    spool file on this host."""
    assert await keys(store) == sorted(store.key(sha256) for sha256 in kept)
    assert await uploads(store) == []
    assert list(store.spool_dir.glob("*")) == []


async def read_all(store: S3BlobStore, sha256: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(sha256)])


class Stall:
    """`size` bytes of a PDF, then nothing (a client that stopped sending) until `release`:
    then, with `fail`, a dropped connection."""

    def __init__(self, size: int, *, fail: bool = False) -> None:
        self.stream = GeneratedStream(size, head=pdf())
        self.fail = fail
        self.release = asyncio.Event()

    async def read(self, size: int) -> bytes:
        chunk = await self.stream.read(size)
        if chunk:
            return chunk
        await self.release.wait()
        if self.fail:
            raise ConnectionResetError("the client went away")
        await asyncio.Event().wait()  # never set: only a cancellation ends it
        raise AssertionError("unreachable")


# -- storing and reading ------------------------------------------------------------------


@slow
@store_only
async def test_a_blob_is_kept_under_its_sha256_and_read_back(store: S3BlobStore) -> None:
    info = await store.put(BytesStream(b"hello"))
    sha256 = hashlib.sha256(b"hello").hexdigest()
    assert (info.sha256, info.size, info.path) == (sha256, 5, None)
    assert await keys(store) == [f"certgraph/blobs/{sha256[:2]}/{sha256}"]
    assert await read_all(store, sha256) == b"hello"
    stat = await store.stat(sha256)
    assert stat is not None and stat.size == 5 and abs(stat.modified - time.time()) < 60

    again = await store.put(BytesStream(b"hello"))  # the same bytes: the same object
    assert again.sha256 == sha256
    await assert_nothing_left(store, sha256)

    assert await store.delete(sha256) == 5
    assert not await store.exists(sha256)
    assert await store.delete(sha256) is None
    with pytest.raises(FileNotFoundError):
        await read_all(store, sha256)
    with pytest.raises(InvalidDigest):
        await store.stat("../../etc/passwd")
    await assert_nothing_left(store)


@slow
@store_only
async def test_a_large_file_goes_up_in_parts_holding_about_two_parts_in_memory(
    store: S3BlobStore,
) -> None:
    size = 3 * PART + 12345
    seen_parts: list[int] = []
    peaks: list[int] = []

    class Watched(GeneratedStream):
        async def read(self, n: int) -> bytes:
            if self.sent == 3 * PART:  # three parts are up: look at the bucket
                peaks.append(tracemalloc.get_traced_memory()[1])
                client = await store.client()
                (upload,) = (await client.list_multipart_uploads(Bucket=store.location.bucket))[
                    "Uploads"
                ]
                listed = await client.list_parts(
                    Bucket=store.location.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                seen_parts.extend(part["Size"] for part in listed["Parts"])
                tracemalloc.reset_peak()  # what listing cost is not the upload's
            return await super().read(n)

    tracemalloc.start()
    try:
        info = await store.put(Watched(size, head=b"big"))
        peak = max(*peaks, tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()
    assert seen_parts == [PART, PART, PART]
    # Our part, and the client's copy of it while it is sent; not the file.
    assert peak < 2.5 * PART < size, peak
    expected = hashlib.sha256(b"big" + bytes(size - 3)).hexdigest()
    assert info.sha256 == expected and info.size == size
    assert hashlib.sha256(await read_all(store, expected)).hexdigest() == expected
    await assert_nothing_left(store, expected)


# -- nothing left behind ------------------------------------------------------------------


@slow
@store_only
async def test_an_upload_over_the_limit_aborts_its_multipart_upload(store: S3BlobStore) -> None:
    stream = GeneratedStream(3 * PART)
    with pytest.raises(BlobTooLarge):
        await store.put(stream, max_bytes=PART + PART // 2)
    assert stream.sent == PART + PART // 2 + 64 * 1024  # stopped at the limit: one chunk over
    await assert_nothing_left(store)


@slow
@store_only
@pytest.mark.parametrize("how", ["cancelled", "disconnected"])
async def test_an_upload_killed_midway_leaves_nothing_in_the_bucket(
    store: S3BlobStore, how: str
) -> None:
    """A request cancelled while its file streams to the bucket (the client went away, the
    request timed out), or a connection that drops: the multipart upload is aborted."""
    source = Stall(PART + 1000, fail=how == "disconnected")
    task = asyncio.create_task(store.put(source))
    deadline = time.monotonic() + 30
    while not await uploads(store):  # the first part is on its way
        assert time.monotonic() < deadline and not task.done()
        await asyncio.sleep(0.01)
    if how == "cancelled":
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        source.release.set()
        with pytest.raises(ConnectionResetError):
            await task
    await assert_nothing_left(store)


@slow
@store_only
async def test_a_refused_upload_deletes_its_staged_object(store: S3BlobStore) -> None:
    async def refuse(upload: UploadInfo) -> UploadRefusal:
        spooled = await asyncio.to_thread(Path(upload.path).read_bytes)
        assert spooled == pdf("refused")  # the plugins read the local spool file
        return UploadRefusal("scanned: not accepted")

    with pytest.raises(UploadRefused):
        async with files.receive_upload(
            store, BytesStream(pdf("refused")), Purpose.EVIDENCE, filename="a.pdf", check=refuse
        ):
            raise AssertionError("refused before the block")
    # The caller failed after its checks (its transaction rolled back): nothing kept.
    with pytest.raises(RuntimeError):
        async with files.receive_upload(
            store, BytesStream(pdf("failed")), Purpose.EVIDENCE, filename="a.pdf"
        ) as staged:
            assert await keys(store) != []  # staged in the bucket
            raise RuntimeError("the row could not be written")
    # A type we do not take is refused from its first bytes, before any request.
    with pytest.raises(files.UnsupportedFileType):
        async with files.receive_upload(
            store, BytesStream(b"<html></html>"), Purpose.EVIDENCE, filename="a.pdf"
        ):
            raise AssertionError("refused before the block")
    await assert_nothing_left(store)

    async with files.receive_upload(
        store, BytesStream(pdf("kept")), Purpose.EVIDENCE, filename="a.pdf"
    ) as staged:
        kept = await staged.keep()
        assert await staged.keep() == kept  # idempotent
    await assert_nothing_left(store, kept.sha256)


# -- maintenance and downloads ------------------------------------------------------------


async def crash_leftovers(store: S3BlobStore) -> None:
    """What a process killed mid-upload leaves: a staged object, an open multipart upload, a
    spool file on its host."""
    client = await store.client()
    bucket = store.location.bucket
    await client.put_object(Bucket=bucket, Key="certgraph/tmp/upload-dead.part", Body=b"x")
    await client.create_multipart_upload(Bucket=bucket, Key="certgraph/tmp/upload-dead2.part")
    store.spool_dir.mkdir(parents=True, exist_ok=True)
    (store.spool_dir / "upload-dead.part").write_bytes(b"x")


@slow
async def test_gc_and_check_work_against_the_bucket(world: World, store: S3BlobStore) -> None:
    cert = await world.external()
    evidence = await submit_evidence(
        world.learner, cert.id, BytesStream(pdf("s3")), blobs=store, filename="p.pdf"
    )
    orphan = await store.put(BytesStream(pdf("orphan")))
    references = StoredFileReferences()

    report = await check_storage(store, references)
    assert report.ok and (report.references, report.files_verified) == (1, 1)
    assert report.orphans == (orphan.sha256,)

    young = await collect_garbage(store, references)  # within the grace period: kept
    assert (young.blobs_removed, young.blobs_kept) == (0, 2)
    # (After that pass: moto dates every multipart upload 2010, so no grace can keep one.)
    await crash_leftovers(store)
    gc = await collect_garbage(store, references, grace_seconds=0)
    # The orphan; the staged object, the multipart upload and the spool file.
    assert (gc.blobs_removed, gc.blobs_kept, gc.temp_files_removed) == (1, 1, 3)
    assert gc.bytes_removed == len(pdf("orphan"))
    await assert_nothing_left(store, evidence.sha256)
    after = await check_storage(store, references)
    assert after.ok and after.orphans == () and after.files_verified == 1

    client = await store.client()
    key = store.key(evidence.sha256)
    await client.put_object(Bucket=store.location.bucket, Key=key, Body=pdf("changed"))
    corrupt = await check_storage(store, references)
    assert not corrupt.ok and [r.object_id for r in corrupt.corrupt] == [evidence.id]
    await client.delete_object(Bucket=store.location.bucket, Key=key)
    missing = await check_storage(store, references)
    assert not missing.ok and [r.object_id for r in missing.missing] == [evidence.id]


@slow
async def test_downloads_stream_from_the_bucket_or_are_presigned(
    world: World, store: S3BlobStore, moto: MotoServer, data_dir: Path
) -> None:
    cert = await world.external()
    evidence = await submit_evidence(
        world.learner, cert.id, BytesStream(pdf("dl")), blobs=store, filename="Müller"
    )
    signer = UrlSigner("k" * 40)
    app = Starlette(routes=routes(store, signer))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.get(signer.evidence_url(evidence.id, evidence.sha256))
    assert response.status_code == 200
    assert response.content == pdf("dl")
    assert response.headers["content-length"] == str(len(pdf("dl")))
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == "attachment; filename*=utf-8''M%C3%BCller.pdf"
    assert stored_files(data_dir) == []  # nothing of it on this host

    expires_at = int(time.time()) + 60
    presign = {"expires_at": expires_at, "content_type": "application/pdf"}
    assert await store.presigned_download_url(evidence.sha256, filename="M.pdf", **presign) is None
    store.presigned_downloads = True
    url = await store.presigned_download_url(evidence.sha256, filename="Müller.pdf", **presign)
    assert url is not None and url.startswith(moto.url + "/")
    async with httpx.AsyncClient() as http:  # from the bucket, without the app
        direct = await http.get(url)
    assert direct.status_code == 200 and direct.content == pdf("dl")
    assert direct.headers["content-type"] == "application/pdf"
    assert direct.headers["content-disposition"] == "attachment; filename*=utf-8''M%C3%BCller.pdf"
    local = LocalBlobStore(data_dir)
    assert await local.presigned_download_url(evidence.sha256, filename="M.pdf", **presign) is None

    # The signed route, after its check, sends the browser to the bucket; a preview stays.
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        redirected = await http.get(signer.evidence_url(evidence.id, evidence.sha256))
        forged = await http.get(signer.evidence_url(evidence.id, "0" * 64))
    assert redirected.status_code == 302
    assert redirected.headers["location"].startswith(moto.url + "/")
    assert redirected.headers["cache-control"] == "no-store"
    async with httpx.AsyncClient() as http:
        followed = await http.get(redirected.headers["location"])
    assert followed.content == pdf("dl")
    assert forged.status_code == 403


# -- configuration ------------------------------------------------------------------------

AWS = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-secret",
}


def test_the_settings_pick_the_store(tmp_path: Path) -> None:
    local = load_settings({"CERTGRAPH_DATA_DIR": str(tmp_path)})
    blobs = open_blob_store(local)
    assert isinstance(blobs, LocalBlobStore) and blobs.root == tmp_path
    other = open_blob_store(load_settings({"CERTGRAPH_STORAGE_URL": f"file://{tmp_path}/b"}))
    assert isinstance(other, LocalBlobStore) and other.root == tmp_path / "b"

    env = {
        "CERTGRAPH_DATA_DIR": str(tmp_path),
        "CERTGRAPH_STORAGE_URL": "s3://evidence-bucket/certgraph/prod",
        "CERTGRAPH_MAX_UPLOAD_BYTES": "2000000",
        **AWS,
    }
    settings = load_settings(env)
    s3 = open_blob_store(settings)
    assert isinstance(s3, S3BlobStore)
    assert s3.location == S3Location("evidence-bucket", "certgraph/prod/")
    assert (s3.max_bytes, s3.spool_dir, s3.presigned_downloads) == (
        2000000,
        tmp_path / "tmp",
        False,
    )
    conn = s3.connection
    assert (conn.endpoint_url, conn.region) == ("http://127.0.0.1:9000", "eu-west-1")
    assert (conn.access_key_id, conn.secret_access_key) == ("AKIDEXAMPLE", "wJalrXUtnFEMI-secret")
    for shown in (repr(settings), repr(conn), repr(s3)):
        assert "wJalrXUtnFEMI" not in shown
    # The service's own variables win over the generic ones.
    specific = load_settings(
        {**env, "AWS_ENDPOINT_URL_S3": "https://s3.example.com", "AWS_REGION": "eu-central-1"}
    )
    assert (specific.aws_endpoint_url, specific.aws_region) == (
        "https://s3.example.com",
        "eu-central-1",
    )
    presigned = load_settings({**env, "CERTGRAPH_STORAGE_PRESIGNED_DOWNLOADS": "true"})
    assert presigned.storage_presigned_downloads

    app = create_app(settings)  # the app factory builds the same (no request made yet)
    assert isinstance(app.state.services.blobs, S3BlobStore)


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "gs://bucket", "s3://b/p?x=1", "/srv"])
def test_a_storage_url_that_names_no_bucket_is_refused(url: str) -> None:
    with pytest.raises(SettingsError, match="CERTGRAPH_STORAGE_URL"):
        load_settings({"CERTGRAPH_STORAGE_URL": url})
    with pytest.raises(StorageUrlError):
        S3Location.parse(url)


def test_parts_and_limits_are_what_s3_accepts(tmp_path: Path) -> None:
    location = S3Location.parse("s3://bucket")
    assert location.prefix == ""
    settings = Settings(storage_url="s3://bucket")
    connection = S3BlobStore.from_settings(settings).connection
    with pytest.raises(ValueError, match="part_bytes"):
        S3BlobStore(location, connection, spool_dir=tmp_path, part_bytes=PART - 1)
    with pytest.raises(ValueError, match="max_bytes"):
        S3BlobStore(location, connection, spool_dir=tmp_path, max_bytes=6 * 1024**3)
