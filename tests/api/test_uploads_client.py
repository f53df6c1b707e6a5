"""Uploads from a standard GraphQL multipart client (aiogqlc, which follows the GraphQL
multipart request spec) against the app served by uvicorn on loopback, and what a real HTTP
server does with an over-limit body that is chunked or whose Content-Length lies."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import tracemalloc
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import uvicorn
from aiogqlc import GraphQLClient as MultipartClient
from starlette.applications import Starlette

from gql.settings import Settings, get_settings
from gql.store.models import CourseProgress, Evidence
from tests.conftest import stored_files
from tests.files.samples import pdf, png

from .conftest import Person, World
from .test_uploads_files import BADGE, IMPORT
from .uploads_support import (
    MAX_UPLOAD,
    REVIEW,
    SUBMIT,
    external_certification,
    multipart_head,
)

SERVER_START_SECONDS = 10


@pytest.fixture
def settings(upload_limit: int, data_dir: Path) -> Settings:
    return get_settings()


@pytest_asyncio.fixture
async def server(db: None, app: Starlette) -> AsyncIterator[str]:
    """The app under uvicorn on a free loopback port, on this test's event loop (and so on
    the `db` fixture's database); its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    async with asyncio.timeout(SERVER_START_SECONDS):
        while not served.started:
            if task.done():
                task.result()  # raises why it stopped
            await asyncio.sleep(0.01)
    port = served.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        await task


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def client_for(session: aiohttp.ClientSession, server: str) -> MultipartClient:
    return MultipartClient(f"{server}/graphql", session=session)


def bearer(person: Person) -> dict[str, str]:
    return {"Authorization": f"Bearer {person.token}"}


async def execute(
    client: MultipartClient, person: Person, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await client.execute(query, variables=variables, headers=bearer(person))
    assert response.status == 200, await response.text()
    result: dict[str, Any] = await response.json()
    assert "errors" not in result, result["errors"]
    data: dict[str, Any] = result["data"]
    return data


async def test_submit_review_and_download_with_a_multipart_client(
    server: str, session: aiohttp.ClientSession, world: World, tmp_path: Path, data_dir: Path
) -> None:
    client = client_for(session, server)
    cert = await external_certification()
    content = pdf("from a real client")
    proof = tmp_path / "certificate.pdf"
    proof.write_bytes(content)

    with proof.open("rb") as file:
        submitted = await execute(
            client,
            world.learner,
            SUBMIT,
            {"cert": cert, "file": file, "completedOn": "2026-01-15"},
        )
    evidence = submitted["submitEvidence"]["evidence"]
    assert submitted["submitEvidence"]["errors"] == []
    assert evidence["filename"] == "certificate.pdf"
    assert evidence["enrollment"]["status"] == "PENDING_APPROVAL"

    reviewed = await execute(
        client, world.manager, REVIEW, {"id": evidence["id"], "decision": "APPROVE"}
    )
    assert reviewed["reviewEvidence"]["evidence"]["enrollment"]["status"] == "COMPLETED"

    assert evidence["downloadUrl"].startswith(f"{server}/files/evidence/")  # absolute
    async with session.get(evidence["downloadUrl"]) as download:
        assert download.status == 200
        downloaded = await download.read()
    assert hashlib.sha256(downloaded).hexdigest() == hashlib.sha256(content).hexdigest()
    digest = evidence["sha256"]
    assert stored_files(data_dir) == [f"blobs/{digest[:2]}/{digest}"]


async def test_badge_and_import_with_a_multipart_client(
    server: str, session: aiohttp.ClientSession, world: World, tmp_path: Path
) -> None:
    from gql.api.ids import encode_id

    from .conftest import make_certification

    client = client_for(session, server)
    cert = encode_id("Certification", await make_certification("Cloud", world.course_ids[:1]))
    image = tmp_path / "badge.png"
    image.write_bytes(png(8, 8))
    sheet = tmp_path / "progress.csv"
    sheet.write_text(
        "learner_email,course_id,percent,completed_at\n"
        f"lea.learner@example.com,{world.course_gid(0)},60,\n"
    )

    with image.open("rb") as file:
        badge = await execute(client, world.admin, BADGE, {"cert": cert, "file": file})
    with sheet.open("rb") as file:
        dry = await execute(client, world.admin, IMPORT, {"file": file, "dryRun": True})
    with sheet.open("rb") as file:
        real = await execute(client, world.admin, IMPORT, {"file": file})

    image_url = badge["uploadCertificationBadge"]["certification"]["badge"]["imageUrl"]
    async with session.get(image_url) as served:
        assert served.status == 200 and await served.read() == png(8, 8)
    assert dry["importCourseProgress"]["imported"] == 1
    assert real["importCourseProgress"] == {
        "imported": 1,
        "rowErrorCount": 0,
        "rowErrors": [],
        "errors": [],
    }
    assert (await CourseProgress.get()).percent == 60


async def test_the_client_without_a_token_gets_401(
    server: str, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    client = client_for(session, server)
    proof = tmp_path / "p.pdf"
    proof.write_bytes(pdf())
    with proof.open("rb") as file:
        response = await client.execute(SUBMIT, variables={"cert": "x", "file": file})
    assert response.status == 401
    assert (await response.json())["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# -- over-limit bodies on a real server -------------------------------------------------------


async def _raw_post(
    server: str, headers: dict[str, str], chunks: AsyncIterator[bytes], *, chunked: bool
) -> tuple[int, int]:
    """POST over a raw connection, sending until the server answers or hangs up.

    Returns (status, bytes of body sent). A well-behaved server answers 413 and closes while
    the client is still sending, so sending stops with a connection error or at the answer.
    """
    host, port = server.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = "POST /graphql HTTP/1.1\r\nHost: certgraph.test\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    if chunked:
        head += "Transfer-Encoding: chunked\r\n"
    writer.write((head + "\r\n").encode())
    sent = 0

    async def send() -> None:
        nonlocal sent
        with contextlib.suppress(ConnectionError):
            async for chunk in chunks:
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk)
                await writer.drain()
                sent += len(chunk)

    sender = asyncio.create_task(send())
    try:
        async with asyncio.timeout(30):
            status_line = await reader.readline()
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return int(status_line.split()[1]), sent


async def _huge_body(head: bytes, total: int) -> AsyncIterator[bytes]:
    yield head
    sent = len(head)
    while sent < total:
        yield bytes(64 * 1024)
        sent += 64 * 1024


async def test_a_chunked_200_mib_upload_is_refused_by_the_server_in_bounded_memory(
    server: str, world: World, data_dir: Path
) -> None:
    cert = await external_certification()
    boundary = uuid.uuid4().hex
    head = multipart_head(SUBMIT, {"cert": cert}, boundary, "big.pdf")
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Authorization": f"Bearer {world.learner.token}",
    }
    tracemalloc.start()
    try:
        status, sent = await _raw_post(
            server, headers, _huge_body(head, 200 * 1024 * 1024), chunked=True
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 413
    # refused after the limit (plus what the socket buffers held), far from 200 MiB
    assert sent < 32 * 1024 * 1024
    assert peak < 16 * 1024 * 1024
    assert stored_files(data_dir) == [] and await Evidence.all().count() == 0


async def test_a_lying_content_length_cannot_carry_more_than_it_declares(
    server: str, world: World, data_dir: Path
) -> None:
    """HTTP/1.1 frames the body by Content-Length: uvicorn hands the app only the declared
    bytes (here a truncated form, 400) and treats the rest as garbage on the connection."""
    cert = await external_certification()
    boundary = uuid.uuid4().hex
    head = multipart_head(SUBMIT, {"cert": cert}, boundary, "big.pdf")
    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Authorization": f"Bearer {world.learner.token}",
        "Content-Length": str(len(head) + 1024),
    }
    status, _ = await _raw_post(server, headers, _huge_body(head, MAX_UPLOAD * 20), chunked=False)
    assert status == 400
    assert stored_files(data_dir) == [] and await Evidence.all().count() == 0
