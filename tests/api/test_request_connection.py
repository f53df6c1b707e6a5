"""One database connection per request on PostgreSQL (gql/http/connection.py, docs/performance.md):
a request's statements share one pooled connection, which goes back to the pool while the
request waits on its client and when it ends; what asyncpg's reset protects stays protected
(the reset still runs at each return to the pool)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.applications import Starlette
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from gql.store.db import pool_usage, request_connection
from gql.store.postgres import PooledPostgresClient
from tests.api.conftest import GraphQLClient, World, graphql_post_scope
from tests.conftest import ON_POSTGRES, QueryCounter

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="SQLite has one connection already")

LEARNER_LIST = """
{ viewer { certifications(first: 20) { totalCount edges { node {
    status progressPercent certification { name courses { course { name } } }
    courses { status course { name } } } } } } }"""


class PoolTraffic:
    """Counts the pool's acquires and the resets asyncpg runs when a connection returns."""

    def __init__(self) -> None:
        self.acquired = 0
        self.reset = 0
        self.connections: set[int] = set()


@pytest.fixture
def traffic(world: World, monkeypatch: pytest.MonkeyPatch) -> PoolTraffic:
    client = get_connection("default")
    assert isinstance(client, PooledPostgresClient) and client.pool is not None
    pool_class = type(client.pool)
    seen = PoolTraffic()
    acquire, release = pool_class._acquire, pool_class.release

    async def counted_acquire(pool: Any, *args: Any, **kwargs: Any) -> Any:
        connection = await acquire(pool, *args, **kwargs)
        seen.acquired += 1
        seen.connections.add(id(connection))
        return connection

    async def counted_release(pool: Any, connection: Any, *args: Any, **kwargs: Any) -> None:
        seen.reset += 1  # asyncpg resets a connection as it takes it back
        await release(pool, connection, *args, **kwargs)

    monkeypatch.setattr(pool_class, "_acquire", counted_acquire)
    monkeypatch.setattr(pool_class, "release", counted_release)
    return seen


async def test_a_request_takes_one_connection_for_all_its_statements(
    world: World,
    graphql_client: GraphQLClient,
    traffic: PoolTraffic,
    sql_queries: QueryCounter,
) -> None:
    sql_queries.reset()
    data = await graphql_client.data(LEARNER_LIST, token=world.learner.token)
    assert "certifications" in data["viewer"]
    statements = sql_queries.count
    assert statements >= 4
    # The token's lookup and the rest: the body came with the headers, so reading it made
    # the request wait on nobody (a slow body: the next test).
    assert traffic.acquired == 1, (traffic.acquired, statements)
    assert traffic.reset == 1
    assert pool_usage() == (0, pool_usage()[1])  # type: ignore[index]


async def test_a_write_and_its_reads_share_the_connection(
    world: World, graphql_client: GraphQLClient, traffic: PoolTraffic
) -> None:
    result = await graphql_client.data(
        "mutation($n: String!) { createCourse(input: {name: $n}) { course { name } } }",
        {"n": "Lent"},
        token=world.admin.token,
    )
    assert result["createCourse"]["course"]["name"] == "Lent"
    assert traffic.acquired == 1
    names = await graphql_client.data(
        "{ courses(first: 50) { edges { node { name } } } }", token=world.admin.token
    )
    assert "Lent" in [e["node"]["name"] for e in names["courses"]["edges"]]


async def test_no_connection_is_held_while_the_client_sends_its_body(
    world: World, app: Starlette
) -> None:
    """A client trickling its body (or reading its answer) holds no database connection."""
    body = json.dumps({"query": LEARNER_LIST}).encode()
    first_part_read = asyncio.Event()
    go_on = asyncio.Event()
    held_while_waiting: list[tuple[int, int] | None] = []
    parts = [body[:10], body[10:]]

    async def receive() -> dict[str, Any]:
        if parts:
            part = parts.pop(0)
            if not parts:
                first_part_read.set()
                await go_on.wait()
            return {"type": "http.request", "body": part, "more_body": bool(parts)}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = graphql_post_scope(body, world.learner.token)
    request = asyncio.create_task(app(scope, receive, send))
    await asyncio.wait_for(first_part_read.wait(), 10)
    # given back once the client has kept the request waiting past BODY_WAIT_SECONDS
    for _ in range(200):
        await asyncio.sleep(0.01)
        if pool_usage()[0] == 0:  # type: ignore[index]
            break
    held_while_waiting.append(pool_usage())
    go_on.set()
    await asyncio.wait_for(request, 10)
    assert sent[0]["status"] == 200
    answer = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))
    assert answer["data"]["viewer"]["certifications"]["totalCount"] >= 0
    in_use, _ = held_while_waiting[0]  # type: ignore[misc]
    assert in_use == 0  # the token was checked on a connection already given back


async def test_concurrent_statements_and_a_transaction_take_turns_on_it(world: World) -> None:
    client = get_connection("default")
    assert isinstance(client, PooledPostgresClient)
    seen: set[int] = set()

    async def backend_pid() -> int:
        rows = await get_connection("default").execute_query_dict("SELECT pg_backend_pid() AS p")
        return int(rows[0]["p"])

    async def in_a_transaction() -> int:
        async with in_transaction() as conn:
            rows = await conn.execute_query_dict("SELECT pg_backend_pid() AS p")
            await asyncio.sleep(0.01)  # the others wait for the transaction to end
            return int(rows[0]["p"])

    async with request_connection():
        pids = await asyncio.gather(backend_pid(), in_a_transaction(), backend_pid())
        seen.update(pids)
        assert pool_usage() is not None and pool_usage()[0] == 1  # type: ignore[index]
    assert len(seen) == 1, pids
    assert pool_usage()[0] == 0  # type: ignore[index]


async def test_a_task_left_running_after_the_request_uses_the_pool(world: World) -> None:
    async def later() -> int:
        await asyncio.sleep(0.02)
        rows = await get_connection("default").execute_query_dict("SELECT 1 AS one")
        return int(rows[0]["one"])

    async with request_connection():
        await get_connection("default").execute_query_dict("SELECT 1")
        left = asyncio.create_task(later())
    assert pool_usage()[0] == 0  # type: ignore[index]
    assert await left == 1  # the lent connection was ended: the task took one of its own
    assert pool_usage()[0] == 0  # type: ignore[index]


async def test_a_failed_transaction_leaves_the_connection_usable(world: World) -> None:
    async with request_connection():
        with pytest.raises(ZeroDivisionError):
            async with in_transaction() as conn:
                await conn.execute_query("SET LOCAL statement_timeout = 1234")
                raise ZeroDivisionError
        rows = await get_connection("default").execute_query_dict("SHOW statement_timeout")
        assert rows[0]["statement_timeout"] != "1234ms"  # the transaction was rolled back


@pytest.mark.parametrize("kind", ["statement", "transaction"])
async def test_one_that_waited_past_the_end_takes_the_pool_and_gives_it_back(
    world: World, kind: str
) -> None:
    """A request's task queued behind its transaction while the request ended: it runs on a
    connection of the pool's, as after the request, and nothing stays lent out."""
    started = asyncio.Event()

    async def long_transaction() -> None:
        async with in_transaction() as conn:
            started.set()
            await asyncio.sleep(0.05)
            await conn.execute_query("SELECT 1")

    async def late() -> int:
        if kind == "transaction":
            async with in_transaction() as conn:
                rows = await conn.execute_query_dict("SELECT 2 AS two")
        else:
            rows = await get_connection("default").execute_query_dict("SELECT 2 AS two")
        return int(rows[0]["two"])

    async with request_connection():
        holder = asyncio.create_task(long_transaction())
        await started.wait()

        async def queue_after_the_end() -> int:
            await asyncio.sleep(0.01)  # the request's end is already waiting for the lock
            return await late()

        waiting = asyncio.create_task(queue_after_the_end())
    # the end waited for the transaction and gave the connection back; the late one queued
    # behind the end, found the request ended, and took one of the pool's
    await holder
    assert await asyncio.wait_for(waiting, 5) == 2
    assert pool_usage()[0] == 0  # type: ignore[index]
