"""The Starlette application: /graphql, /healthz and /readyz.

`create_app` is a uvicorn factory (`uvicorn --factory gql.app:create_app`); every worker
process builds its own app and opens its own database connections in the lifespan. Nothing
a request needs lives only in one process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tortoise.connection import get_connection

from gql.api.context import REQUEST_ID_HEADER
from gql.api.schema import build_schema
from gql.api.view import CertgraphGraphQL
from gql.plugins import get_plugin_host
from gql.settings import Settings, get_settings
from gql.store.db import close_database, open_database

log = logging.getLogger("certgraph.app")

# A GraphQL request is a small JSON document; anything bigger is refused (413) unread.
MAX_GRAPHQL_BODY_BYTES = 1024 * 1024
READINESS_TIMEOUT_SECONDS = 2.0


async def healthz(request: Request) -> JSONResponse:
    """The process is up (no database involved: a liveness probe must not flap with the DB)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """The database answers `SELECT 1`; 503 otherwise, so a balancer stops sending traffic."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            await get_connection("default").execute_query("SELECT 1")
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log
        log.warning("readiness check failed: %s: %s", type(exc).__name__, exc)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ok"})


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    graphql = CertgraphGraphQL(build_schema(settings), settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await open_database(settings.database_url)
        get_plugin_host()  # load plugins at start-up, so a broken one is logged now
        try:
            yield
        finally:
            await close_database()

    # GET serves GraphiQL in debug mode only; queries always travel by POST.
    graphql_methods = ["GET", "POST"] if settings.debug else ["POST"]
    return Starlette(
        debug=False,
        routes=[
            Route(
                "/graphql", graphql, methods=graphql_methods, max_body_size=MAX_GRAPHQL_BODY_BYTES
            ),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                expose_headers=[REQUEST_ID_HEADER],
                max_age=600,
            )
        ],
        lifespan=lifespan,
    )
