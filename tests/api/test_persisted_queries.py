"""Persisted queries: Apollo's automatic persisted queries (the in-process cache and its
bounds, the copy shared through a real Redis) and the persisted-only mode of a manifest."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis
from starlette.applications import Starlette

from gql.api.persisted import DocumentCache, document_hash, read_manifest
from gql.app import create_app
from gql.plugins import PluginHost
from gql.settings import Settings, SettingsError
from tests.api.conftest import World
from tests.conftest import QueryCounter

REDIS_URL = "redis://127.0.0.1:6379/0"
VIEWER = "query Viewer { viewer { id name } }"
OTHER = "query Other { viewer { id } }"


def apq(document_sha: str, query: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": document_sha}}
    }
    if query is not None:
        body["query"] = query
    return body


async def post(http: httpx.AsyncClient, body: dict[str, Any], token: str) -> httpx.Response:
    return await http.post("/graphql", json=body, headers={"Authorization": f"Bearer {token}"})


def code_of(response: httpx.Response) -> str:
    body = response.json()
    assert body["data"] is None
    code: str = body["errors"][0]["extensions"]["code"]
    return code


@pytest_asyncio.fixture
async def client_of(db: None) -> AsyncIterator[Any]:
    """Clients of apps built from the given settings (all on the `db` fixture's loop)."""
    clients: list[httpx.AsyncClient] = []
    apps: list[Starlette] = []

    def make(settings: Settings, plugin_host: PluginHost | None = None) -> httpx.AsyncClient:
        app = create_app(settings, plugins=plugin_host)
        apps.append(app)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://certgraph.test"
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()
    for app in apps:  # ASGITransport runs no lifespan: close what it would
        await app.state.services.persisted.aclose()
        await app.state.rate_limiter.aclose()


async def test_apq_round_trip(
    http: httpx.AsyncClient, world: World, sql_queries: QueryCounter
) -> None:
    token = world.learner.token
    key = document_hash(VIEWER)

    missing = await post(http, apq(key), token)
    assert missing.status_code == 200
    assert code_of(missing) == "PERSISTED_QUERY_NOT_FOUND"
    assert missing.json()["errors"][0]["message"] == "PersistedQueryNotFound"

    sql_queries.reset()
    plain = await post(http, {"query": VIEWER}, token)
    plain_statements = sql_queries.count

    sql_queries.reset()
    registered = await post(http, apq(key, VIEWER), token)
    assert registered.status_code == 200
    assert registered.json() == plain.json()
    assert sql_queries.count == plain_statements

    sql_queries.reset()
    by_hash = await post(http, apq(key), token)
    assert by_hash.status_code == 200
    assert by_hash.json() == {"data": {"viewer": {"id": world.learner.id, "name": "Lea Learner"}}}
    assert sql_queries.count == plain_statements


async def test_a_hash_that_is_not_the_texts_is_refused(
    http: httpx.AsyncClient, world: World
) -> None:
    response = await post(http, apq(document_hash(OTHER), VIEWER), world.learner.token)
    assert response.status_code == 400
    assert code_of(response) == "PERSISTED_QUERY_HASH_MISMATCH"
    # Nothing was registered under either hash.
    for key in (document_hash(OTHER), document_hash(VIEWER)):
        assert code_of(await post(http, apq(key), world.learner.token)) == (
            "PERSISTED_QUERY_NOT_FOUND"
        )


async def test_a_malformed_extension_is_a_bad_request(
    http: httpx.AsyncClient, world: World
) -> None:
    body = {"extensions": {"persistedQuery": {"version": 2, "sha256Hash": "ab" * 32}}}
    response = await post(http, body, world.learner.token)
    assert response.status_code == 400
    assert code_of(response) == "BAD_REQUEST"


async def test_a_document_the_schema_refuses_is_not_cached(
    http: httpx.AsyncClient, world: World, settings: Settings
) -> None:
    too_deep = (
        "query { viewer { "
        + "manager { " * settings.max_query_depth
        + "id"
        + " }" * (settings.max_query_depth + 2)
    )
    key = document_hash(too_deep)
    refused = await post(http, apq(key, too_deep), world.learner.token)
    assert refused.json()["data"] is None and refused.json()["errors"]
    assert code_of(await post(http, apq(key), world.learner.token)) == "PERSISTED_QUERY_NOT_FOUND"


def test_the_cache_is_bounded_in_entries_and_bytes() -> None:
    cache = DocumentCache(max_entries=3, max_bytes=100)
    for name in "abcd":
        cache.put(name, name * 10)
    assert len(cache) == 3 and cache.get("a") is None  # the least recently used went
    assert cache.get("b") == "b" * 10  # b is now the most recent
    cache.put("e", "e" * 85)  # a 4th entry evicts c; 10 + 10 + 85 > 100 evicts d
    assert cache.get("c") is None and cache.get("d") is None
    assert cache.get("b") == "b" * 10 and cache.get("e") == "e" * 85
    assert cache.bytes == 95
    cache.put("huge", "x" * 101)  # larger than the whole cache: never held
    assert cache.get("huge") is None and len(cache) == 2


@pytest_asyncio.fixture
async def redis_prefix() -> AsyncIterator[str]:
    prefix = f"certgraph-test:{uuid.uuid4().hex}:"
    client = Redis.from_url(REDIS_URL)
    try:
        yield prefix
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_two_apps_on_one_redis_share_registered_documents(
    client_of: Any, world: World, data_dir: Path, redis_prefix: str
) -> None:
    settings = Settings(data_dir=data_dir, redis_url=REDIS_URL, redis_key_prefix=redis_prefix)
    first, second = client_of(settings), client_of(settings)
    key = document_hash(VIEWER)
    token = world.learner.token
    assert code_of(await post(second, apq(key), token)) == "PERSISTED_QUERY_NOT_FOUND"
    assert (await post(first, apq(key, VIEWER), token)).json()["data"]["viewer"]
    shared = await post(second, apq(key), token)
    assert shared.json()["data"]["viewer"]["id"] == world.learner.id
    client = Redis.from_url(REDIS_URL)
    try:
        assert await client.get(f"{redis_prefix}apq:{key}") == VIEWER.encode()
        assert 0 < await client.ttl(f"{redis_prefix}apq:{key}") <= 86400
    finally:
        await client.aclose()


async def test_redis_down_serves_from_the_process_cache(
    client_of: Any, world: World, data_dir: Path
) -> None:
    # Nothing listens on port 1: registration and lookups fail open to the process's cache.
    settings = Settings(data_dir=data_dir, redis_url="redis://127.0.0.1:1/0")
    http = client_of(settings)
    key = document_hash(VIEWER)
    token = world.learner.token
    assert code_of(await post(http, apq(key), token)) == "PERSISTED_QUERY_NOT_FOUND"
    assert (await post(http, apq(key, VIEWER), token)).json()["data"]["viewer"]
    assert (await post(http, apq(key), token)).json()["data"]["viewer"]


def manifest_file(data_dir: Path, documents: list[str]) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "persisted-documents.json"
    path.write_text(json.dumps({document_hash(d): d for d in documents}))
    return path


def only(data_dir: Path, documents: list[str], **values: Any) -> Settings:
    return Settings(
        data_dir=data_dir,
        persisted_queries_only=True,
        persisted_queries_file=manifest_file(data_dir, documents),
        **values,
    )


async def test_persisted_only_runs_registered_documents_by_hash_and_by_text(
    client_of: Any, world: World, data_dir: Path
) -> None:
    http = client_of(only(data_dir, [VIEWER]))
    token = world.learner.token
    expected = {"data": {"viewer": {"id": world.learner.id, "name": "Lea Learner"}}}
    assert (await post(http, apq(document_hash(VIEWER)), token)).json() == expected
    assert (await post(http, {"query": VIEWER}, token)).json() == expected
    assert (await post(http, apq(document_hash(VIEWER), VIEWER), token)).json() == expected


async def test_persisted_only_refuses_every_other_document(
    client_of: Any, world: World, data_dir: Path
) -> None:
    http = client_of(only(data_dir, [VIEWER]))
    token = world.learner.token
    for body in (
        {"query": OTHER},  # ad-hoc text
        apq(document_hash(OTHER)),  # an unknown hash
        apq(document_hash(OTHER), OTHER),  # APQ registration
        {"query": "{ __schema { queryType { name } } }"},  # introspection outside debug
    ):
        response = await post(http, body, token)
        assert response.status_code == 400, body
        assert code_of(response) == "PERSISTED_QUERY_NOT_REGISTERED", body
    # Registration was refused: the hash is still unknown.
    assert code_of(await post(http, apq(document_hash(OTHER)), token)) == (
        "PERSISTED_QUERY_NOT_REGISTERED"
    )


async def test_persisted_only_in_debug_lets_graphiql_introspect(
    client_of: Any, world: World, data_dir: Path
) -> None:
    http = client_of(only(data_dir, [VIEWER], debug=True))
    token = world.learner.token
    introspection = "{ __schema { queryType { name } } }"
    response = await post(http, {"query": introspection}, token)
    assert response.json()["data"] == {"__schema": {"queryType": {"name": "Query"}}}
    mixed = "{ __typename viewer { id } }"
    assert code_of(await post(http, {"query": mixed}, token)) == "PERSISTED_QUERY_NOT_REGISTERED"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "cannot read"),
        ("not json", "not JSON"),
        ('["a list"]', "a JSON object"),
        ('{"00": "query { viewer { id } }"}', "is not the sha256"),
    ],
)
def test_a_bad_manifest_refuses_to_start(data_dir: Path, content: str | None, reason: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "manifest.json"
    if content is not None:
        path.write_text(content)
    settings = Settings(data_dir=data_dir, persisted_queries_only=True, persisted_queries_file=path)
    with pytest.raises(SettingsError, match="CERTGRAPH_PERSISTED_QUERIES_FILE") as refused:
        create_app(settings)
    assert reason in str(refused.value)


def test_persisted_only_without_a_manifest_refuses_to_start(data_dir: Path) -> None:
    with pytest.raises(SettingsError, match="CERTGRAPH_PERSISTED_QUERIES_FILE"):
        create_app(Settings(data_dir=data_dir, persisted_queries_only=True))


def test_apollo_manifests_are_read() -> None:
    manifest = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": document_hash(VIEWER), "body": VIEWER, "name": "Viewer", "type": "query"}
        ],
    }
    assert read_manifest(json.dumps(manifest), "m.json") == {document_hash(VIEWER): VIEWER}


async def test_persisted_only_covers_subscriptions_over_websocket(
    db: None, world: World, data_dir: Path
) -> None:
    from tests.api.test_subscriptions import connected, receive, serving

    registered = "subscription Mine { viewerEnrollmentChanged { id } }"
    settings = only(data_dir, [registered])
    app = create_app(settings)
    payload = {"Authorization": f"Bearer {world.learner.token}"}
    async with serving(app) as server, connected(server, payload) as ws:
        assert await receive(ws) == {"type": "connection_ack"}
        other = "subscription { viewerEnrollmentChanged { id status } }"
        await ws.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": other}}))
        refused = await receive(ws)
        assert refused["id"] == "1" and refused["type"] in ("next", "error")
        errors = refused["payload"]["errors"] if refused["type"] == "next" else refused["payload"]
        assert errors[0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_REGISTERED"
        await ws.send(
            json.dumps({"type": "subscribe", "id": "2", "payload": {"query": registered}})
        )
        with pytest.raises(TimeoutError):  # accepted: it waits for changes
            while True:
                message = await receive(ws, 0.5)
                assert message["id"] != "2" or message["type"] != "error", message
                assert message.get("id") != "2" or "errors" not in message["payload"]
