"""The Starlette application (a uvicorn factory): every worker builds its own from one Settings
object, and hands it and what is built from it (plugin host, blob store, URL signer) down;
nothing below the factory reads the environment."""

from __future__ import annotations

import asyncio
import functools
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

from gql import downloads
from gql.api import export_route
from gql.api.context import REQUEST_ID_HEADER, AppServices
from gql.api.graphiql import graphiql_routes
from gql.api.schema import build_schema
from gql.api.view import graphql_endpoint
from gql.domain.dispatcher import DispatchConfig, Dispatcher
from gql.domain.sign_in import bearer_authenticator
from gql.domain.sweep import sweep
from gql.files import LocalBlobStore
from gql.http.guards import GRAPHQL_PATH, guard_middleware
from gql.http.logs import redact_access_log
from gql.oidc import OidcVerifier
from gql.plugins import PluginHost, create_plugin_host
from gql.settings import Settings, load_settings
from gql.signing import UrlSigner
from gql.store.db import close_database, open_database
from gql.webhooks.sender import HttpWebhookSender

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


def create_app(settings: Settings | None = None, plugins: PluginHost | None = None) -> Starlette:
    settings = settings or load_settings()
    redact_access_log()
    # One host per app, loaded now so a broken plugin is logged at start-up.
    plugins = plugins or create_plugin_host()
    # Built once from the settings and handed on: to the download routes, and to resolvers
    # through the request context.
    services = AppServices(
        settings=settings,
        plugins=plugins,
        blobs=LocalBlobStore(settings.data_dir, max_bytes=settings.max_upload_bytes),
        signer=UrlSigner.from_settings(settings),
    )

    # Delivers the outbox's events off the request path (CERTGRAPH_DISPATCHER=false leaves
    # that to `certgraph worker`).
    sender = HttpWebhookSender(
        timeout_seconds=settings.webhook_timeout_seconds,
        allow_private=settings.webhook_allow_private,
    )
    dispatcher = (
        Dispatcher(
            plugins,
            DispatchConfig.from_settings(settings),
            sender=sender,
            sweep=functools.partial(
                sweep,
                due_soon_days=settings.due_soon_days,
                retention_days=settings.event_retention_days,
                plugins=plugins,
            ),
        )
        if settings.dispatcher_enabled
        else None
    )
    # OpenID provider tokens beside API tokens when CERTGRAPH_OIDC_ISSUER is set (docs/auth.md);
    # its keys are cached per app, so per worker.
    verifier = OidcVerifier.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await open_database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
        if dispatcher is not None:
            dispatcher.start()
        try:
            yield
        finally:
            if dispatcher is not None:
                await dispatcher.stop()
            await sender.aclose()
            await services.detached.finish()
            await close_database()

    # GET serves GraphiQL in debug mode only; queries always travel by POST.
    graphql_methods = ["GET", "POST"] if settings.debug else ["POST"]
    app = Starlette(
        debug=False,
        routes=[
            # Body limits by content type (JSON 1 MiB, multipart the upload limit): see view.py.
            Route(
                GRAPHQL_PATH,
                graphql_endpoint(services, build_schema(settings)),
                methods=graphql_methods,
            ),
            # Debug: GraphiQL's assets. Production: a JSON hint for GET /graphql (graphiql.py).
            *graphiql_routes(debug=settings.debug),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *downloads.routes(services.blobs, services.signer),
            *export_route.routes(services.signer, services.plugins),
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
            # Inside CORS, so the guards' refusals carry CORS headers.
            *guard_middleware(settings, bearer_authenticator(verifier)),
        ],
        lifespan=lifespan,
    )
    # A trailing-slash redirect would be built from the client's Host header.
    app.router.redirect_slashes = False
    app.state.services = services  # what the app was built with, for tools and tests
    app.state.dispatcher = dispatcher
    app.state.oidc = verifier
    return app
