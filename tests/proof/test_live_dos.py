"""Issue 11 against a real `certgraph serve`: the unauthenticated fragment bomb while a probe
waits on the same worker, the 30-alias learner query, 200 invented tokens, a spoofed
X-Forwarded-For, 5,000-deep JSON and a slowloris connection."""

from __future__ import annotations

import asyncio
import secrets
import time

import httpx

from tests.proof.live import (
    DATABASE_INDEPENDENT,
    Client,
    Deployment,
    create_person,
    record_figures,
)
from tests.proof.test_dos import VIEWER, costly_aliases, fragment_bomb

# Database-independent (live.py): each request is refused before execution (no token, cost,
# address bucket, JSON depth) or before it is read (header timeout).
pytestmark = DATABASE_INDEPENDENT


async def test_a_fragment_bomb_without_a_token_is_answered_at_once(
    deployment: Deployment,
) -> None:
    server = await deployment.server().start()
    # The old code took 53 s at n=22 and would not end at n=40: a hang fails on the timeout.
    async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as http:
        started = time.monotonic()
        bomb, health = await asyncio.gather(
            http.post("/graphql", json={"query": fragment_bomb(40)}),
            http.get("/healthz"),
        )
        elapsed = time.monotonic() - started
    assert bomb.status_code == 401
    assert bomb.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert health.status_code == 200
    record_figures("fragment bomb n=40, no token", seconds=round(elapsed, 4))


async def test_the_30_alias_learner_query_is_refused_before_execution(
    deployment: Deployment,
) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server().start()
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        learner = await create_person(Client(http, admin_token), "Lee Learner")
        response = await http.post(
            "/graphql",
            json={"query": costly_aliases(30)},
            headers={"Authorization": f"Bearer {learner.token}"},
        )
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_COST_EXCEEDED"
    assert error["extensions"]["cost"] > error["extensions"]["maxCost"]
    assert "estimated cost" in server.log()


async def test_invented_tokens_get_no_more_than_the_address_bucket(
    deployment: Deployment,
) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server(
        CERTGRAPH_RATE_LIMIT_PER_MINUTE="6", CERTGRAPH_RATE_LIMIT_BURST="20"
    ).start()
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        statuses = []
        for i in range(200):
            spoofed = {"X-Forwarded-For": f"203.0.113.{i % 250}"}
            response = await http.post(
                "/graphql",
                json={"query": VIEWER},
                headers={"Authorization": f"Bearer cg_{secrets.token_urlsafe(24)}", **spoofed},
            )
            statuses.append(response.status_code)
        admin = await http.post(
            "/graphql", json={"query": VIEWER}, headers={"Authorization": f"Bearer {admin_token}"}
        )
    record_figures("200 invented tokens", granted=statuses.count(401), refused=statuses.count(429))
    assert statuses.count(401) <= 20 and statuses.count(429) >= 180
    assert set(statuses) == {401, 429}
    assert admin.status_code == 200  # the verified caller has a bucket of its own


async def test_json_nested_5000_deep_is_a_400(deployment: Deployment) -> None:
    admin_token = deployment.create_admin()
    server = await deployment.server().start()
    body = '{"query": "{ viewer { id } }", "variables": {"x": ' + "[" * 5000 + "]" * 5000 + "}}"
    async with httpx.AsyncClient(base_url=server.url, timeout=30.0) as http:
        response = await http.post(
            "/graphql",
            content=body,
            headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"},
        )
    assert response.status_code == 400
    assert "RecursionError" not in server.log()
    assert "Traceback" not in server.log()


async def test_a_slowloris_connection_is_closed_after_the_header_timeout(
    deployment: Deployment,
) -> None:
    server = await deployment.server(CERTGRAPH_HEADER_TIMEOUT="1").start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()
    writer.write(b"POST /graphql HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    closed_after = None
    line = 0
    while closed_after is None and time.monotonic() - started < 10:
        try:
            writer.write(f"X-Slow-{line}: y\r\n".encode())  # one header line each 0.5 s
            await writer.drain()
            data = await asyncio.wait_for(reader.read(1024), timeout=0.5)
        except TimeoutError:
            line += 1
            continue
        except ConnectionError:
            data = b""
        if data == b"":
            closed_after = time.monotonic() - started
    writer.close()
    record_figures("slowloris", closed_after=closed_after)
    assert closed_after is not None  # closed by the server within the 10 s of dribbling
    async with httpx.AsyncClient(base_url=server.url, timeout=5.0) as http:
        assert (await http.get("/healthz")).status_code == 200
