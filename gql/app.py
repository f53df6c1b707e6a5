"""The Starlette application: /graphql, the signed file downloads, /healthz and /readyz.

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

from gql import downloads, files
from gql.api.context import REQUEST_ID_HEADER
from gql.api.schema import build_schema
from gql.api.view import graphql_endpoint
from gql.middleware import guard_middleware, redact_access_log
from gql.plugins import get_plugin_host
from gql.settings import Settings, get_settings
from gql.store.db import close_database, open_database

log = logging.getLogger("certgraph.app")

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


async def sweep_files(settings: Settings) -> None:
    """The start-up sweep of gql.files: orphan blobs and abandoned temporary uploads.

    gql.files stores under the process's settings (CERTGRAPH_*); an app built with other
    settings (tests do that) may have a database those files do not belong to, and sweeping
    them against it would delete live files, so it is skipped.
    """
    if settings != get_settings():
        log.info("start-up file sweep skipped: the app runs on settings other than CERTGRAPH_*")
        return
    report = await files.collect_garbage()
    log.info(
        "start-up file sweep: %d orphan blob(s) removed (%d bytes), %d kept, "
        "%d stale temporary upload(s) removed",
        report.blobs_removed,
        report.bytes_removed,
        report.blobs_kept,
        report.temp_files_removed,
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()
    redact_access_log()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await open_database(settings.database_url)
        get_plugin_host()  # load plugins at start-up, so a broken one is logged now
        try:
            await sweep_files(settings)
            yield
        finally:
            await close_database()

    # GET serves GraphiQL in debug mode only; queries always travel by POST.
    graphql_methods = ["GET", "POST"] if settings.debug else ["POST"]
    return Starlette(
        debug=False,
        routes=[
            # Body limits by content type (JSON 1 MiB, multipart the upload limit): see view.py.
            Route(
                "/graphql",
                graphql_endpoint(settings, build_schema(settings)),
                methods=graphql_methods,
            ),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *downloads.routes(),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST"],
                allow_headers=["Authorization", "Content-Type"],
                expose_headers=[REQUEST_ID_HEADER],
                max_age=600,
            ),
            # Request timeout, per-token rate limit, multipart guard (CERTGRAPH_REQUEST_TIMEOUT,
            # CERTGRAPH_RATE_LIMIT_*); inside CORS, so their refusals carry CORS headers.
            *guard_middleware(),
        ],
        lifespan=lifespan,
    )
