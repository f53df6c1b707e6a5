"""Uploads against a real server: issue 11's evidence names (PDF bytes named certificate.html,
a NUL inside a name) and nothing left in the data directory by a refused or interrupted
upload."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import httpx

from tests.conftest import stored_files
from tests.files.samples import pdf
from tests.proof.live import Client, Deployment, create_certification, create_person

SUBMIT = """
mutation($cert: ID!, $file: Upload!) {
  submitEvidence(certificationId: $cert, file: $file) {
    evidence { id filename downloadUrl } errors { code message }
  }
}
"""
BOUNDARY = "certgraph-proof-boundary"


def multipart(cert: str, filename: bytes, content: bytes) -> bytes:
    """A submitEvidence request written byte by byte, so the file name is sent exactly as
    given (an HTTP client would percent-encode a NUL)."""
    operations = json.dumps({"query": SUBMIT, "variables": {"cert": cert, "file": None}})
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
        f"{operations}\r\n"
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="map"\r\n\r\n'
        f'{{"0": ["variables.file"]}}\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="'
    ).encode()
    return (
        head
        + filename
        + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
        + content
        + f"\r\n--{BOUNDARY}--\r\n".encode()
    )


async def evidence_rows(deployment: Deployment) -> int:
    count: int = await deployment.database.value("SELECT count(*) FROM evidence")
    return count


async def test_evidence_names_never_claim_another_type(deployment: Deployment) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server().start()
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        admin = Client(http, admin_token)
        learner = await create_person(admin, "Lea Learner")
        cert = await create_certification(admin, "Cloud", [], kind="EXTERNAL")
        client = Client(http, learner.token)

        # PDF bytes named as a web page: refused, as docs/files.md says, and nothing kept.
        for declared in ("text/html", "application/pdf"):
            response = await client.upload(
                SUBMIT, {"cert": cert}, {"file": ("certificate.html", pdf(), declared)}
            )
            assert response.status_code == 200, response.text
            result = response.json()["data"]["submitEvidence"]
            assert result["evidence"] is None
            assert [e["code"] for e in result["errors"]] == ["UNSUPPORTED_FILE_TYPE"]
        assert await evidence_rows(deployment) == 0
        assert stored_files(deployment.data_dir) == []

        # A NUL no longer joins the pieces around it into a name ending in .exe.
        response = await http.post(
            "/graphql",
            content=multipart(cert, b"a.pdf\x00.exe", pdf("nul")),
            headers={
                **client.headers(),
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            },
        )
        assert response.status_code == 200, response.text
        evidence = response.json()["data"]["submitEvidence"]["evidence"]
        assert evidence["filename"] == "a.pdf_.exe.pdf"
        download = await http.get(evidence["downloadUrl"])
        assert download.status_code == 200 and download.content == pdf("nul")
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["content-disposition"] == 'attachment; filename="a.pdf_.exe.pdf"'

        # A name without our extension gets the sniffed type's (another certification: the
        # first proof waits for review).
        other = await create_certification(admin, "Security", [], kind="EXTERNAL")
        response = await client.upload(
            SUBMIT, {"cert": other}, {"file": ("scan", pdf("scan"), "application/pdf")}
        )
        assert response.json()["data"]["submitEvidence"]["evidence"]["filename"] == "scan.pdf"
        assert await evidence_rows(deployment) == 2
    assert server.running


async def send_and_hang_up(url: str, head: bytes, body_part: bytes, declared_length: int) -> None:
    """POST a body announced as `declared_length` bytes, send part of it, then disconnect."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(head.replace(b"{length}", str(declared_length).encode()) + body_part)
    await writer.drain()
    await asyncio.sleep(0.3)  # the server is reading the body now
    writer.close()
    await writer.wait_closed()
    del reader


async def test_refused_and_interrupted_uploads_leave_nothing(deployment: Deployment) -> None:
    limit = 200_000
    admin_token = deployment.create_admin()
    server = await deployment.server(CERTGRAPH_MAX_UPLOAD_BYTES=str(limit)).start()
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        admin = Client(http, admin_token)
        learner = await create_person(admin, "Lea Learner")
        cert = await create_certification(admin, "Cloud", [], kind="EXTERNAL")
        client = Client(http, learner.token)

        # Over the file limit but inside the body limit: refused while being copied.
        big = pdf() + b"\0" * limit
        response = await client.upload(
            SUBMIT, {"cert": cert}, {"file": ("big.pdf", big, "application/pdf")}
        )
        result = response.json()["data"]["submitEvidence"]
        assert [e["code"] for e in result["errors"]] == ["FILE_TOO_LARGE"]
        # Not a type we take.
        response = await client.upload(
            SUBMIT, {"cert": cert}, {"file": ("page.pdf", b"<html></html>", "application/pdf")}
        )
        result = response.json()["data"]["submitEvidence"]
        assert [e["code"] for e in result["errors"]] == ["UNSUPPORTED_FILE_TYPE"]

        # A client that goes away halfway through its upload.
        body = multipart(cert, b"half.pdf", pdf() + b"\0" * (limit // 2))
        head = (
            f"POST /graphql HTTP/1.1\r\nHost: {urlsplit(server.url).netloc}\r\n"
            f"Authorization: Bearer {learner.token}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            "Content-Length: {length}\r\n\r\n"
        ).encode()
        for _ in range(3):
            await send_and_hang_up(server.url, head, body[: len(body) // 2], len(body))

        assert (await http.get("/healthz")).status_code == 200
        assert await evidence_rows(deployment) == 0
        assert stored_files(deployment.data_dir) == []
    assert server.running
