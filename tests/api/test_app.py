"""The Starlette app: health and readiness, CORS for the SPA, the lifespan, the factory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from gql.app import create_app
from gql.domain import users
from gql.domain.access import Actor
from gql.settings import Settings
from gql.store.db import migrate_database
from gql.store.models import Role
from tests.api.conftest import GraphQLClient, World

SPA = "https://app.example.com"


async def test_healthz_needs_no_database() -> None:
    app = create_app(Settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_is_503_without_a_database() -> None:
    app = create_app(Settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/readyz")
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}


async def test_readyz_wants_the_migrations_not_just_a_database(http: httpx.AsyncClient) -> None:
    # The `db` fixture makes the tables without `migrate`, so none is recorded as applied;
    # a migrated database is ready (test_lifespan_... below, tests/http/).
    response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "migrations pending"


@pytest.fixture
def settings() -> Settings:
    return Settings(cors_origins=[SPA])


async def test_cors_preflight_allows_the_spa_with_authorization(http: httpx.AsyncClient) -> None:
    response = await http.options(
        "/graphql",
        headers={
            "Origin": SPA,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SPA
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed


async def test_cors_refuses_other_origins(http: httpx.AsyncClient) -> None:
    response = await http.options(
        "/graphql",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_cors_headers_on_an_actual_request(
    graphql_client: GraphQLClient, world: World
) -> None:
    response = await graphql_client.post(
        "{ viewer { id } }", token=world.learner.token, headers={"Origin": SPA}
    )
    assert response.headers["access-control-allow-origin"] == SPA
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


async def test_lifespan_opens_and_closes_the_database(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'life.sqlite3'}"
    await migrate_database(url)
    app: Starlette = create_app(Settings(database_url=url))
    async with app.router.lifespan_context(app):
        user = await users.create_user(
            Actor.system(), name="Life", email="life@example.com", role=Role.LEARNER
        )
        token = await users.create_api_token(Actor.system(), user.id)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = await client.get("/readyz")
            viewer = await client.post(
                "/graphql",
                json={"query": "{ viewer { name } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
    assert ready.status_code == 200
    assert viewer.json() == {"data": {"viewer": {"name": "Life"}}}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/readyz")).status_code == 503  # closed with the lifespan


async def test_requests_in_other_tasks_than_the_lifespan_reach_the_database(
    tmp_path: Path,
) -> None:
    """uvicorn runs the lifespan in one task and each request in another."""
    url = f"sqlite://{tmp_path / 'tasks.sqlite3'}"
    await asyncio.create_task(migrate_database(url))  # leaves no ORM context in this task
    app = create_app(Settings(database_url=url))
    started, stop = asyncio.Event(), asyncio.Event()

    async def serve_lifespan() -> None:
        async with app.router.lifespan_context(app):
            started.set()
            await stop.wait()

    lifespan = asyncio.create_task(serve_lifespan())
    await started.wait()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as client:
            ready = await client.get("/readyz")
    finally:
        stop.set()
        await lifespan
    assert ready.status_code == 200
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/readyz")).status_code == 503
