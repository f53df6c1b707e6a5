"""The error model over real HTTP (issue 17 items 1 and 5): against `certgraph serve`, every
error path of docs/api.md's Errors table is answered as the JSON GraphQL error with its code
and X-Request-ID, and a browser's CORS preflight with the headers urql and Apollo Client send
passes, with Retry-After and X-Request-ID exposed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx

from gql.http.cors import CORS_ALLOWED_HEADERS
from tests.proof.live import (
    DATABASE_INDEPENDENT,
    Client,
    Deployment,
    create_certification,
    create_course,
)

SPA = "https://app.example.com"
VIEWER = {"query": "{ viewer { id } }"}
TWO_MUTATIONS = """
mutation($cert: ID!) {
  refused: createCourse(input: {name: "Refused"}) { course { id } errors { code } }
  allowed: startCertification(certificationId: $cert) { enrollment { id status } errors { code } }
}
"""


def assert_error(status: int, headers: Any, body: bytes, want_status: int, code: str) -> None:
    assert status == want_status, (status, body[:300])
    assert headers["content-type"] == "application/json", (status, headers)
    assert re.fullmatch(r"[A-Za-z0-9._-]{8,64}", headers["x-request-id"])
    answer = json.loads(body)
    assert answer["data"] is None and len(answer["errors"]) == 1, answer
    assert answer["errors"][0]["message"] and answer["errors"][0]["extensions"]["code"] == code


def check(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert_error(response.status_code, response.headers, response.content, status, code)
    error: dict[str, Any] = response.json()["errors"][0]
    return error


async def raw_request(
    port: int, head: str, body: AsyncIterator[bytes]
) -> tuple[int, dict[str, str], bytes]:
    """A request over a plain socket that reads the answer while still sending (httpx would
    finish sending first): (status, headers in lower case, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode())

    async def send() -> None:
        with contextlib.suppress(ConnectionError):
            async for chunk in body:
                writer.write(chunk)
                await writer.drain()

    sender = asyncio.create_task(send())
    received = b""
    try:
        async with asyncio.timeout(30):
            while b"\r\n\r\n" not in received:
                received += await reader.read(65536)
            top, _, answer = received.partition(b"\r\n\r\n")
            lines = top.decode("latin-1").split("\r\n")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:])
            }
            length = int(headers.get("content-length", "0"))
            while len(answer) < length:
                answer += await reader.read(65536)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        writer.close()
    return int(lines[0].split(" ", 2)[1]), headers, answer


async def test_every_error_path_is_json_with_a_code_and_a_request_id(
    deployment: Deployment,
) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server(
        CERTGRAPH_CORS_ORIGINS=SPA,
        CERTGRAPH_MAX_UPLOAD_BYTES="1024",
        CERTGRAPH_MAX_QUERY_COST="50",
    ).start()
    auth = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        admin = Client(http, admin_token)
        course = await create_course(admin, "Proof course")
        cert = await create_certification(admin, "Proof cert", [course])
        email = f"lea-{uuid.uuid4().hex[:6]}@example.com"
        created = deployment.cli(
            "user", "create", "--name", "Lea", "--email", email, "--role", "learner", "--json"
        )
        learner_token = json.loads(created.stdout)["token"]

        check(await http.post("/graphql", json=VIEWER), 401, "UNAUTHENTICATED")
        check(await http.get("/nope"), 404, "NOT_FOUND")
        check(await http.put("/graphql", json=VIEWER), 405, "METHOD_NOT_ALLOWED")
        check(await http.get("/graphql"), 405, "METHOD_NOT_ALLOWED")
        check(
            await http.post("/graphql", json=[VIEWER], headers=auth), 400, "BATCHING_NOT_SUPPORTED"
        )
        error = check(await http.post("/graphql", json={}, headers=auth), 400, "BAD_REQUEST")
        assert "No GraphQL query found" in error["message"]
        malformed = await http.post(
            "/graphql", content=b"{", headers={**auth, "Content-Type": "application/json"}
        )
        check(malformed, 400, "BAD_REQUEST")
        text = await http.post(
            "/graphql", content=b"{}", headers={**auth, "Content-Type": "text/plain"}
        )
        check(text, 415, "UNSUPPORTED_MEDIA_TYPE")
        big = await http.post(
            "/graphql",
            content=b"{" + b" " * (1024 * 1024 + 1) + b"}",
            headers={**auth, "Content-Type": "application/json"},
        )
        check(big, 413, "PAYLOAD_TOO_LARGE")
        no_boundary = await http.post(
            "/graphql", content=b"x", headers={**auth, "Content-Type": "multipart/form-data"}
        )
        check(no_boundary, 400, "MULTIPART_REFUSED")
        check(await http.get("/files/evidence/1?exp=9999999999&sig=x"), 403, "FORBIDDEN")
        check(await http.get("/exports/enrollments.csv?q=e30&exp=1&sig=x"), 403, "FORBIDDEN")

        # a multipart body over the upload limit, chunked: cut off with the JSON 413
        async def upload_parts() -> AsyncIterator[bytes]:
            yield (
                b'--b\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{}\r\n'
                b'--b\r\nContent-Disposition: form-data; name="0"; filename="a.pdf"\r\n\r\n'
            )
            for _ in range(64):
                yield b"%" * 65536
                await asyncio.sleep(0)

        status, headers, body = await raw_request(
            server.port,
            "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {admin_token}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n",
            _chunked(upload_parts()),
        )
        assert_error(status, headers, body, 413, "PAYLOAD_TOO_LARGE")

        # GraphQL errors in 200 keep the id too
        costly = await http.post(
            "/graphql",
            json={"query": "{ courses(first: 100) { edges { node { id name } } } }"},
            headers=auth,
        )
        assert costly.status_code == 200 and costly.headers["x-request-id"]
        assert costly.json()["errors"][0]["extensions"]["code"] == "QUERY_COST_EXCEEDED"

        both = await http.post(
            "/graphql",
            json={"query": TWO_MUTATIONS, "variables": {"cert": cert}},
            headers={"Authorization": f"Bearer {learner_token}"},
        )
        assert both.status_code == 200
        answer = both.json()
        assert answer["data"]["refused"] is None
        assert answer["data"]["allowed"]["enrollment"]["status"] == "STARTED"
        assert [e["path"] for e in answer["errors"]] == [["refused"]]
        assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await deployment.database.value("SELECT count(*) FROM enrollment") == 1
    assert await deployment.database.value("SELECT count(*) FROM course") == 1

    # A client that leaves halfway through sending its body (a browser aborting a fetch):
    # one line in the log, no traceback, and the server goes on.
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        (
            "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {admin_token}\r\nContent-Length: 1000\r\n\r\n"
            '{"query": "{ viewer'
        ).encode()
    )
    await writer.drain()
    await asyncio.sleep(0.5)
    writer.close()
    for _ in range(50):
        if "client went away" in server.log():
            break
        await asyncio.sleep(0.1)
    log = server.log()
    assert log.count("client went away before its request was read") == 1, log[-2000:]
    assert "Traceback" not in log and "ClientDisconnect" not in log, log[-3000:]
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        assert (await http.post("/graphql", json=VIEWER, headers=auth)).status_code == 200


async def _chunked(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    yield b"0\r\n\r\n"


# Database-independent (live.py): the body times out while still arriving, the bucket is in
# memory, the headers are middleware's; no query runs.
@DATABASE_INDEPENDENT
async def test_429_and_504_are_json_and_readable_cross_origin(deployment: Deployment) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server(
        CERTGRAPH_CORS_ORIGINS=SPA,
        CERTGRAPH_RATE_LIMIT_PER_MINUTE="1",
        CERTGRAPH_RATE_LIMIT_BURST="2",
        CERTGRAPH_REQUEST_TIMEOUT="1",
    ).start()
    headers = {"Authorization": f"Bearer {admin_token}", "Origin": SPA}
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        # 504: a body trickled over 5 s is cut after 1 s (this spends the first token)
        body = json.dumps(VIEWER).encode()

        async def trickle() -> AsyncIterator[bytes]:
            for byte in body:
                yield bytes([byte])
                await asyncio.sleep(5 / len(body))

        status, answer_headers, answer = await raw_request(
            server.port,
            "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {admin_token}\r\nOrigin: {SPA}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n",
            trickle(),
        )
        assert_error(status, answer_headers, answer, 504, "REQUEST_TIMEOUT")
        assert answer_headers["access-control-allow-origin"] == SPA

        responses = [await http.post("/graphql", json=VIEWER, headers=headers) for _ in range(2)]
        limited = responses[-1]
        error = check(limited, 429, "RATE_LIMITED")
        assert int(limited.headers["retry-after"]) == error["extensions"]["retryAfter"] >= 1
        assert limited.headers["access-control-allow-origin"] == SPA
        exposed = {
            h.strip().lower() for h in limited.headers["access-control-expose-headers"].split(",")
        }
        assert {"retry-after", "x-request-id", "www-authenticate"} <= exposed


# Database-independent (live.py): preflights are answered by the CORS middleware.
@DATABASE_INDEPENDENT
async def test_preflights_with_the_clients_headers_pass(deployment: Deployment) -> None:
    server = await deployment.server(CERTGRAPH_CORS_ORIGINS=SPA).start()
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        for header in [*CORS_ALLOWED_HEADERS, ",".join(CORS_ALLOWED_HEADERS)]:
            response = await http.options(
                "/graphql",
                headers={
                    "Origin": SPA,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": header.lower(),
                },
            )
            assert response.status_code == 200, (header, response.text)
            assert response.headers["access-control-allow-origin"] == SPA
            allowed = {
                h.strip().lower()
                for h in response.headers["access-control-allow-headers"].split(",")
            }
            assert {h.strip().lower() for h in header.split(",")} <= allowed
            assert response.headers["x-request-id"]
        refused = await http.options(
            "/graphql",
            headers={
                "Origin": "https://evil.example",
                "Access-Control-Request-Method": "POST",
            },
        )
        check(refused, 400, "BAD_REQUEST")
        assert "access-control-allow-origin" not in refused.headers
        probe = await http.get("/healthz", headers={"X-Request-ID": "probe-12345678"})
        assert probe.headers["x-request-id"] == "probe-12345678"
