"""Abuse against a real server: quality.md 8's document limits (the documents of
tests/api/test_security.py, sent over real HTTP), multipart bodies built to be expensive, a
request that would hold its worker, and a token over its rate."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator

import httpx

from tests.api.test_security import LIMIT_BREAKERS
from tests.proof.live import (
    CREATE_COURSE,
    DATABASE_INDEPENDENT,
    Client,
    Deployment,
    Server,
    record_figures,
)

# Database-independent (live.py): documents are refused at validation, multipart bodies by the
# scanner, the timeout cuts a body still arriving, and rate-limit buckets live in each worker's
# memory; none reaches a query. SQL behaviour of the timeout: tests/proof/test_guards.py (both).
pytestmark = DATABASE_INDEPENDENT

VIEWER = {"query": "{ viewer { id } }"}
BATCHED_MUTATION = 'mutation { createCourse(input: {name: "Batched"}) { errors { code } } }'


async def course_count(deployment: Deployment) -> int:
    count: int = await deployment.database.value("SELECT count(*) FROM course")
    return count


async def test_document_limits_and_batches_are_refused_by_the_real_server(
    deployment: Deployment,
) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server().start()
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0, headers=headers) as http:
        admin = Client(http, admin_token)
        await admin.data(CREATE_COURSE, {"name": "Before"})
        before = await course_count(deployment)
        for case, document in sorted(LIMIT_BREAKERS.items()):
            response = await http.post("/graphql", json={"query": document})
            assert response.status_code == 200, (case, response.text)
            body = response.json()
            assert body.get("data") is None, case
            codes = {e["extensions"]["code"] for e in body["errors"]}
            assert codes <= {"GRAPHQL_VALIDATION_FAILED", "GRAPHQL_PARSE_FAILED"}, (case, codes)
        batch = await http.post(
            "/graphql",
            json=[
                {"query": BATCHED_MUTATION},
                VIEWER,
            ],
        )
        assert batch.status_code == 400
        assert batch.json()["errors"][0]["extensions"]["code"] == "BATCHING_NOT_SUPPORTED"
        assert await course_count(deployment) == before
        assert (await http.post("/graphql", json=VIEWER)).status_code == 200
    assert server.running


def parts_body(boundary: str, parts: int, *, files: bool) -> bytes:
    chunks = []
    for i in range(parts):
        filename = f'; filename="f{i}.pdf"' if files else ""
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="p{i}"{filename}\r\n\r\nx\r\n'
        )
    return ("".join(chunks) + f"--{boundary}--\r\n").encode()


MULTIPART_ABUSE = {
    "10 MB of CRLF preamble": b"\r\n" * (5 * 1024 * 1024) + parts_body("xyz", 2, files=False),
    "5000 file parts": parts_body("xyz", 5000, files=True),
    "5000 fields": parts_body("xyz", 5000, files=False),
}


async def stream(body: bytes, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


async def viewer_latencies(http: httpx.AsyncClient, token: str, stop: asyncio.Event) -> list[float]:
    """`{ viewer { id } }` again and again while the abuse runs; each answer's latency."""
    latencies: list[float] = []
    while not stop.is_set():
        started = time.monotonic()
        response = await http.post(
            "/graphql", json=VIEWER, headers={"Authorization": f"Bearer {token}"}
        )
        latencies.append(time.monotonic() - started)
        assert response.status_code == 200 and "errors" not in response.json()
        await asyncio.sleep(0.02)
    return latencies


async def test_multipart_abuse_is_refused_fast_while_others_are_served(
    deployment: Deployment,
) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server().start()  # one worker: abuse and viewers share it
    figures: dict[str, float] = {}
    slowest_viewer = 0.0
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        for case, body in MULTIPART_ABUSE.items():
            stop = asyncio.Event()
            viewers = asyncio.create_task(viewer_latencies(http, admin_token, stop))
            await asyncio.sleep(0.05)
            started = time.monotonic()
            response = await http.post(
                "/graphql",
                content=stream(body),
                headers={
                    "Authorization": f"Bearer {admin_token}",
                    "Content-Type": "multipart/form-data; boundary=xyz",
                },
            )
            figures[case] = round(time.monotonic() - started, 3)
            await asyncio.sleep(0.1)
            stop.set()
            latencies = await viewers
            assert response.status_code == 400, (case, response.status_code, response.text[:200])
            assert response.json()["errors"][0]["extensions"]["code"] == "MULTIPART_REFUSED"
            assert figures[case] < 5, (case, figures[case])
            assert latencies and max(latencies) < 1.0, (case, max(latencies))
            slowest_viewer = max(slowest_viewer, *latencies)
    assert server.running
    record_figures(
        "multipart abuse (1 worker)",
        **{f"{case} (s)": seconds for case, seconds in figures.items()},
        slowest_parallel_viewer_s=round(slowest_viewer, 3),
    )


async def trickling_request(port: int, token: str, seconds: float) -> tuple[float, int, bytes]:
    """A client that sends its JSON body a byte at a time over `seconds`, reading the answer
    as soon as it comes (a plain socket: httpx would finish sending before it reads).
    Returns (seconds until the whole answer arrived, status, body)."""
    body = b'{"query": "{ viewer { id } }"}'
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()  # before the headers: the server's clock starts after them
    writer.write(
        (
            "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
    )
    await writer.drain()

    async def dribble() -> None:
        with contextlib.suppress(ConnectionError):
            for byte in body:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(seconds / len(body))

    sender = asyncio.create_task(dribble())
    received = b""
    try:
        async with asyncio.timeout(seconds + 10):
            while b"\r\n\r\n" not in received:
                received += await reader.read(65536)
            head, _, answer = received.partition(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            while len(answer) < length:
                answer += await reader.read(65536)
        elapsed = time.monotonic() - started
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        writer.close()
    return elapsed, int(head.split(b" ", 2)[1]), answer


async def test_a_request_over_the_timeout_is_answered_504_and_frees_its_worker(
    deployment: Deployment,
) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server(CERTGRAPH_REQUEST_TIMEOUT="1").start()
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        stop = asyncio.Event()
        viewers = asyncio.create_task(viewer_latencies(http, admin_token, stop))
        elapsed, status, answer = await trickling_request(server.port, admin_token, 10.0)
        stop.set()
        latencies = await viewers
        after = await http.post("/graphql", json=VIEWER, headers=headers)
    assert status == 504, answer
    assert json.loads(answer)["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
    assert 1.0 <= elapsed < 3.0, elapsed  # the client was still sending: it would take 10 s
    assert latencies and max(latencies) < 1.0
    assert after.status_code == 200
    assert "cancelled after 1 s (CERTGRAPH_REQUEST_TIMEOUT)" in server.log()
    record_figures(
        "request timeout 1 s (1 worker)",
        slow_request_answered_after_s=round(elapsed, 2),
        parallel_viewers=len(latencies),
        slowest_parallel_viewer_s=round(max(latencies), 3),
    )


async def test_rate_limiting_holds_per_process_on_two_workers(deployment: Deployment) -> None:
    """The buckets live in each worker (docs/reliability.md): with 2 workers a token gets at
    most twice the burst before the refill, never more; the rest are 429 RATE_LIMITED."""
    admin_token = deployment.create_admin()
    burst, per_minute, workers, sent = 5, 6, 2, 40
    server: Server = await deployment.server(
        workers=workers,
        CERTGRAPH_RATE_LIMIT_PER_MINUTE=str(per_minute),
        CERTGRAPH_RATE_LIMIT_BURST=str(burst),
    ).start()
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        started = time.monotonic()
        answers = await asyncio.gather(
            *(http.post("/graphql", json=VIEWER, headers=headers) for _ in range(sent))
        )
        elapsed = time.monotonic() - started
        other = await http.post(
            "/graphql", json=VIEWER, headers={"Authorization": "Bearer cg_another-token"}
        )
    granted = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(granted) + len(refused) == sent
    refill = int(elapsed * per_minute / 60) + 1
    assert burst <= len(granted) <= workers * (burst + refill), (len(granted), elapsed)
    assert {r.json()["errors"][0]["extensions"]["code"] for r in refused} == {"RATE_LIMITED"}
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
    assert other.status_code == 401  # another key: not limited, just unknown
    record_figures(
        "rate limit burst 5, 6/min, 2 workers",
        sent=sent,
        granted=len(granted),
        refused_429=len(refused),
    )
