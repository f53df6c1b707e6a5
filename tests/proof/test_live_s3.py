"""Object storage through real servers: two `certgraph serve` with data directories of their own
share one bucket (moto's S3 server, a process): what one stores the other serves, `certgraph
gc` and `check` work against the bucket, and an upload killed midway leaves nothing in it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio

from gql.files.s3 import MIN_PART_BYTES, S3BlobStore, S3Location
from tests.conftest import stored_files
from tests.files.s3_server import (
    MotoServer,
    bucket_keys,
    bucket_name,
    free_port,
    open_uploads,
)
from tests.files.samples import pdf, png
from tests.proof.instances import Instances, instances
from tests.proof.live import (
    ON_POSTGRES,
    Client,
    Deployment,
    create_certification,
    create_person,
    db_pk,
    payload,
)

__all__ = ["instances"]  # a fixture, imported for this module

SUBMIT = """
mutation($cert: ID!, $file: Upload!) {
  submitEvidence(certificationId: $cert, file: $file) {
    evidence { id sha256 downloadUrl } errors { code message }
  }
}
"""
BADGE = """
mutation($id: ID!, $file: Upload!) {
  uploadCertificationBadge(certificationId: $id, file: $file) {
    certification { badge { imageUrl } } errors { code message }
  }
}
"""
PREFIX = "proof/"
SECRET_KEY = "proof-secret-shared-by-every-instance-0123456789"
# Bigger than a part, so it goes up as a multipart upload.
BIG = MIN_PART_BYTES + 3 * 1024 * 1024


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path / "moto.log").start()
    yield server
    server.stop()


@pytest_asyncio.fixture
async def bucket(moto: MotoServer, tmp_path: Path) -> AsyncIterator[S3BlobStore]:
    """A new bucket, and a store on it for the test to list and change it directly."""
    store = S3BlobStore(
        S3Location(bucket_name(), PREFIX), moto.connection(), spool_dir=tmp_path / "spool"
    )
    await (await store.client()).create_bucket(Bucket=store.location.bucket)
    try:
        yield store
    finally:
        await store.aclose()


def use_bucket(deployment: Deployment, moto: MotoServer, store: S3BlobStore) -> None:
    """Every process of the deployment (servers, CLI) stores its files in the bucket."""
    deployment.settings.update(
        {
            "CERTGRAPH_STORAGE_URL": f"s3://{store.location.bucket}/{PREFIX}",
            "CERTGRAPH_SECRET_KEY": SECRET_KEY,
            **moto.env(),
        }
    )


async def listing(store: S3BlobStore) -> tuple[list[str], list[str]]:
    """(object keys, open multipart uploads) of the bucket, as S3 lists them."""
    client = await store.client()
    bucket = store.location.bucket
    return await bucket_keys(client, bucket), await open_uploads(client, bucket)


def big_pdf(seed: str) -> bytes:
    head = pdf(seed)
    return head + b"\n%" + bytes(BIG - len(head) - 2)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


@pytest.mark.skipif(
    not ON_POSTGRES,
    reason="two server processes on one database is the PostgreSQL deployment; on SQLite, "
    "one server's workers share one file (test_live_concurrency)",
)
async def test_two_instances_share_one_bucket(
    instances: Instances, moto: MotoServer, bucket: S3BlobStore
) -> None:
    """The reference deployment (docs/deploy.md): two instances with their own data
    directories and ports, one PostgreSQL database, one bucket, one Redis."""
    deployment = instances.deployment
    use_bucket(deployment, moto, bucket)
    admin_token = deployment.create_admin()
    a, b = await instances.start(count=2, workers=1)
    dirs = [instances.data_dir(0), instances.data_dir(1)]
    evidence_bytes = big_pdf("shared")
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=60.0) as http_a,
        httpx.AsyncClient(base_url=b.url, timeout=60.0) as http_b,
    ):
        admin_a, admin_b = Client(http_a, admin_token), Client(http_b, admin_token)
        learner = await create_person(admin_a, "Lea Learner")
        cert = await create_certification(admin_a, "Cloud", [], kind="EXTERNAL")

        # Evidence stored through A (in parts), downloaded through B.
        response = await Client(http_a, learner.token).upload(
            SUBMIT, {"cert": cert}, {"file": ("proof.pdf", evidence_bytes, "application/pdf")}
        )
        evidence = payload(response.json()["data"], "submitEvidence")["evidence"]
        download = await http_b.get(path_and_query(evidence["downloadUrl"]))
        assert download.status_code == 200, download.text
        assert download.content == evidence_bytes
        assert download.headers["content-length"] == str(BIG)

        # Two badge images through B (the first one is then an orphan), shown through A.
        for seed in (1, 2):
            response = await admin_b.upload(
                BADGE, {"id": cert}, {"file": ("badge.png", png(seed=seed), "image/png")}
            )
            badged = payload(response.json()["data"], "uploadCertificationBadge")
        image = await http_a.get(path_and_query(badged["certification"]["badge"]["imageUrl"]))
        assert image.status_code == 200 and image.content == png(seed=2)

    # Everything is in the bucket, nothing on either instance's disk.
    blobs = {bucket.key(evidence["sha256"]), *(bucket.key(sha256(png(seed=s))) for s in (1, 2))}
    assert await listing(bucket) == (sorted(blobs), [])
    for directory in dirs:
        assert stored_files(directory) == []

    # `certgraph check` and `gc` from a third host (the CLI's own data directory).
    check = deployment.cli("check")
    assert "2 file(s) verified: 0 missing, 0 corrupt, 1 orphan(s)" in check.stdout, check.stdout
    gc = deployment.cli("gc", "--grace-seconds", "0")
    assert gc.stdout.startswith("removed 1 unreferenced file(s)"), gc.stdout
    blobs.discard(bucket.key(sha256(png(seed=1))))
    assert await listing(bucket) == (sorted(blobs), [])
    assert "0 orphan(s)" in deployment.cli("check").stdout

    # A blob gone from the bucket: check names the row and fails.
    client = await bucket.client()
    await client.delete_object(Bucket=bucket.location.bucket, Key=bucket.key(evidence["sha256"]))
    failed = deployment.cli("check", check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"missing: Evidence {db_pk(evidence['id'])} -> {evidence['sha256']}" in failed.stdout


class SlowLink:
    """A TCP proxy to a server on loopback that forwards what its clients send at `rate`
    bytes a second: a slow link between an instance and the bucket."""

    def __init__(self, upstream_port: int, rate: float) -> None:
        self.upstream_port = upstream_port
        self.rate = rate
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._handlers: set[asyncio.Task[object]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> SlowLink:
        self._server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=10)
        await self._server.wait_closed()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [writer, up_writer]
        await asyncio.gather(
            self._pipe(reader, up_writer, self.rate),
            self._pipe(up_reader, writer, None),
            return_exceptions=True,
        )

    @staticmethod
    async def _pipe(
        source: asyncio.StreamReader, target: asyncio.StreamWriter, rate: float | None
    ) -> None:
        try:
            while data := await source.read(16 * 1024):
                target.write(data)
                await target.drain()
                if rate is not None:
                    await asyncio.sleep(len(data) / rate)
        finally:
            with contextlib.suppress(ConnectionError):
                target.close()


async def wait_for(expected: tuple[list[str], list[str]], store: S3BlobStore) -> None:
    """Until the bucket lists `expected`."""
    deadline = time.monotonic() + 20
    while await listing(store) != expected:
        assert time.monotonic() < deadline, await listing(store)
        await asyncio.sleep(0.05)


async def uploading(store: S3BlobStore, request: asyncio.Task[httpx.Response]) -> None:
    """Until the bucket lists a multipart upload (the request's file is on its way)."""
    deadline = time.monotonic() + 20
    while not (await listing(store))[1]:
        assert time.monotonic() < deadline and not request.done()
        await asyncio.sleep(0.02)


async def test_an_upload_killed_midway_leaves_nothing_in_the_bucket(
    deployment: Deployment, moto: MotoServer, bucket: S3BlobStore
) -> None:
    """The file is on its way to the bucket, slowly, when (1) the request times out: the
    multipart upload is aborted before the 504 goes out; (2) the server is killed (kill -9):
    the upload stays open until `certgraph gc` aborts it. Before that, (0) a client that hangs
    up halfway through its request never reaches the bucket at all."""
    use_bucket(deployment, moto, bucket)
    admin_token = deployment.create_admin()
    # A part takes 10 s on the link, the timeout is half that.
    async with SlowLink(moto.port, rate=MIN_PART_BYTES / 10) as link:
        server = await deployment.server(
            CERTGRAPH_REQUEST_TIMEOUT="5", **moto.env(endpoint_url=link.url)
        ).start()
        async with httpx.AsyncClient(base_url=server.url, timeout=60.0) as http:
            admin = Client(http, admin_token)
            learner = await create_person(admin, "Lea Learner")
            cert = await create_certification(admin, "Cloud", [], kind="EXTERNAL")
            client = Client(http, learner.token)
            upload = {"file": ("big.pdf", big_pdf("slow"), "application/pdf")}
            # A badge first: the server's S3 client is made and warm before the clock matters.
            response = await admin.upload(
                BADGE, {"id": cert}, {"file": ("badge.png", png(), "image/png")}
            )
            payload(response.json()["data"], "uploadCertificationBadge")
            badge = ([bucket.key(sha256(png()))], [])

            # (0) The body never arrives whole: Starlette reads it before any resolver runs.
            host = urlsplit(server.url)
            reader, writer = await asyncio.open_connection(host.hostname, host.port)
            writer.write(
                f"POST /graphql HTTP/1.1\r\nHost: {host.netloc}\r\nAuthorization: Bearer "
                f"{learner.token}\r\nContent-Type: multipart/form-data; boundary=x\r\n"
                f"Content-Length: {BIG}\r\n\r\n".encode()
                + b"--x\r\n"
                + bytes(BIG // 2)
            )
            await writer.drain()
            writer.close()
            await writer.wait_closed()
            del reader
            assert await listing(bucket) == badge

            # (1) Cancelled by the request timeout while the first part is on the slow link.
            started = time.monotonic()
            sent = asyncio.create_task(client.upload(SUBMIT, {"cert": cert}, upload))
            await uploading(bucket, sent)
            response = await sent
            assert response.status_code == 504, response.text
            assert response.json()["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
            assert time.monotonic() - started < BIG / link.rate  # cut short, not finished
            await wait_for(badge, bucket)
            assert "could not remove the staged upload" not in server.log()

            # (2) kill -9 while the first part is on the slow link.
            sent = asyncio.create_task(client.upload(SUBMIT, {"cert": cert}, upload))
            await uploading(bucket, sent)
            server.kill()
            with pytest.raises(httpx.TransportError):
                await sent
    # What the crash left: the open multipart upload, and the server's local spool file.
    keys, uploads = await listing(bucket)
    assert keys == badge[0] and len(uploads) == 1 and uploads[0].startswith(PREFIX + "tmp/upload-")
    assert len(stored_files(deployment.data_dir)) == 1
    gc = deployment.cli("gc", "--grace-seconds", "0")
    assert "removed 0 unreferenced file(s) (0 bytes) and 2 abandoned upload(s)" in gc.stdout
    assert await listing(bucket) == badge
    assert stored_files(deployment.data_dir) == []

    # A store that cannot be reached: one line and exit 1, as for a database that cannot.
    unreachable = deployment.cli(
        "check", check=False, AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}"
    )
    assert unreachable.returncode == 1
    assert unreachable.stderr.startswith("certgraph check: object storage s3://")
    assert unreachable.stderr.count("\n") == 1 and "Traceback" not in unreachable.stderr
    assert await deployment.database.value("SELECT count(*) FROM evidence") == 0
