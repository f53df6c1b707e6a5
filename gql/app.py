"""The Starlette application (a uvicorn factory): every worker builds its own from one Settings
object, and hands it and what is built from it (plugin host, blob store, URL signer) down;
nothing below the factory reads the environment."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute

from gql import downloads
from gql.api import export_route
from gql.api.context import AppServices
from gql.api.graphiql import graphiql_routes
from gql.api.persisted import PersistedQueries
from gql.api.schema import build_schema
from gql.api.subscriptions import LiveGraphQL
from gql.api.view import graphql_endpoint
from gql.domain.dispatcher import Dispatcher, outbox_backlog
from gql.domain.live import LiveFeed, chain
from gql.domain.sign_in import bearer_authenticator
from gql.files.backends import open_blob_store
from gql.http.cors import cors_middleware
from gql.http.errors import EXCEPTION_HANDLERS
from gql.http.guards import GRAPHQL_PATH, guard_middleware, rate_limiter
from gql.http.logs import redact_access_log
from gql.http.request_id import RequestIdMiddleware
from gql.metrics import (
    AppMetrics,
    MetricsMiddleware,
    Sampled,
    metrics_endpoint,
)
from gql.oidc import OidcVerifier
from gql.plugins import PluginHost, create_plugin_host
from gql.settings import Settings, load_settings
from gql.signing import UrlSigner
from gql.store.db import (
    close_database,
    known_migrations,
    open_database,
    pending_migrations,
    pool_usage,
)
from gql.tracing import instrument_sql, operation_spans, otlp_tracer_provider, request_middleware
from gql.webhooks.sender import HttpWebhookSender

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

log = logging.getLogger("certgraph.app")

READINESS_TIMEOUT_SECONDS = 2.0
KNOWN_MIGRATIONS = known_migrations()  # the code's, so fixed for the process's life


async def healthz(request: Request) -> JSONResponse:
    """The process is up (no database involved: a liveness probe must not flap with the DB)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    """The database answers and has every migration the code knows of; 503 otherwise, so a
    balancer sends no traffic to an instance started before `certgraph migrate` finished."""
    try:
        async with asyncio.timeout(READINESS_TIMEOUT_SECONDS):
            pending = await pending_migrations(KNOWN_MIGRATIONS)
    except Exception as exc:  # any failure means "not ready"; the reason goes to the log
        log.warning("readiness check failed: %s: %s", type(exc).__name__, exc)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    if pending:
        return JSONResponse({"status": "migrations pending", "pending": pending}, status_code=503)
    return JSONResponse({"status": "ok"})


# The collector's thresholds while serving (Python's default: 700, 10, 10). A Q1 answer
# allocates tens of thousands of objects, and the 500 connections of a live feed hundreds of
# thousands that outlive start-up: at the defaults, collections of them landed in a request
# or a fan-out (docs/performance.md, "The tail").
GC_THRESHOLDS = (10_000, 50, 50)


def tune_garbage_collector() -> None:
    """What is alive once the app has started (modules, schema, plugins) stays alive: freezing
    it keeps the collector from walking it again at every full collection, which on a
    request's path showed as the tail (p99); fewer collections cost less per request."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_served_app() -> Starlette:
    """`certgraph serve`'s factory: each worker process builds its app here."""
    return create_app(serving=True)


def create_app(
    settings: Settings | None = None,
    plugins: PluginHost | None = None,
    tracer_provider: TracerProvider | None = None,
    *,
    serving: bool = False,
) -> Starlette:
    """`tracer_provider`: where spans go (tests pass an in-memory one); by default one made
    from CERTGRAPH_TRACING, none when it is off. `serving`: the app is its process's only
    one (`certgraph serve`), which may tune the process for it (tune_garbage_collector)."""
    settings = settings or load_settings()
    if tracer_provider is None and settings.tracing == "otlp":
        tracer_provider = otlp_tracer_provider()
    if tracer_provider is not None:
        instrument_sql(tracer_provider)
    redact_access_log()
    # One host per app, loaded now so a broken plugin is logged at start-up.
    plugins = plugins or create_plugin_host()
    # Built once from the settings and handed on: to the download routes, and to resolvers
    # through the request context.
    schema = build_schema(settings, [operation_spans(tracer_provider)] if tracer_provider else [])
    # Persisted queries (docs/api.md): the manifest is read now, so a bad one stops start-up.
    persisted = PersistedQueries.from_settings(settings, schema.graphql_schema)
    services = AppServices(
        settings=settings,
        persisted=persisted,
        plugins=plugins,
        blobs=open_blob_store(settings),  # CERTGRAPH_STORAGE_URL: a directory or a bucket
        signer=UrlSigner.from_settings(settings),
    )

    # Delivers the outbox's events off the request path (CERTGRAPH_DISPATCHER=false leaves
    # that to `certgraph worker`).
    sender = HttpWebhookSender(
        timeout_seconds=settings.webhook_timeout_seconds,
        allow_private=settings.webhook_allow_private,
    )
    dispatcher = (
        Dispatcher.from_settings(settings, plugins, sender) if settings.dispatcher_enabled else None
    )
    # OpenID provider tokens beside API tokens when CERTGRAPH_OIDC_ISSUER is set (docs/auth.md);
    # its keys are cached per app, so per worker.
    verifier = OidcVerifier.from_settings(settings)
    # Per-caller rate limits: counted in Redis across processes and instances when
    # CERTGRAPH_REDIS_URL is set, else in this process (docs/reliability.md).
    limiter = rate_limiter(settings)
    authenticator = bearer_authenticator(verifier)
    # Live updates (docs/api.md): subscriptions over WebSocket on /graphql, fed by this
    # process's reading of the outbox (woken by its own writes, LISTEN on PostgreSQL, a poll).
    feed = LiveFeed(
        poll_seconds=settings.subscriptions_poll_seconds,
        queue_size=settings.subscriptions_queue_size,
        database_url=settings.database_url,
        redis_url=settings.redis_url,
        redis_channel=f"{settings.redis_key_prefix}events",
    )

    # /metrics (docs/deploy.md): this app's own registry; with several workers, their shared
    # directory (PROMETHEUS_MULTIPROC_DIR, set by `certgraph serve --workers N`).
    metrics = (
        AppMetrics(multiprocess_dir=settings.metrics_multiprocess_dir)
        if settings.metrics_enabled
        else None
    )
    metrics_routes = (
        [
            Route(
                "/metrics",
                metrics_endpoint(
                    metrics,
                    Sampled(pool_in_use=pool_usage, outbox_backlog=outbox_backlog),
                    token=settings.metrics_token,
                ),
                methods=["GET"],
            )
        ]
        if metrics
        else []
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await open_database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
        if dispatcher is not None:
            dispatcher.start()
        plugins.events_written = chain(plugins.events_written, feed.events_written)
        feed.start()
        if serving:
            tune_garbage_collector()
        try:
            yield
        finally:
            await feed.stop()
            if dispatcher is not None:
                await dispatcher.stop()
            await sender.aclose()
            await services.detached.finish()
            await services.blobs.aclose()
            await limiter.aclose()
            await persisted.aclose()
            await close_database()
            if metrics is not None:
                metrics.process_exited()

    # GET serves GraphiQL in debug mode only; queries always travel by POST.
    graphql_methods = ["GET", "POST"] if settings.debug else ["POST"]
    app = Starlette(
        debug=False,
        routes=[
            # Body limits by content type (JSON 1 MiB, multipart the upload limit): see view.py.
            Route(
                GRAPHQL_PATH,
                graphql_endpoint(services, schema),
                methods=graphql_methods,
            ),
            WebSocketRoute(GRAPHQL_PATH, LiveGraphQL(schema, services, feed, authenticator)),
            # Debug: GraphiQL's assets. Production: a JSON hint for GET /graphql (graphiql.py).
            *graphiql_routes(debug=settings.debug),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            *metrics_routes,
            *downloads.routes(services.blobs, services.signer),
            *export_route.routes(services.signer, services.plugins),
        ],
        middleware=[
            # Outermost, so every answer carries X-Request-ID, CORS preflights included.
            Middleware(RequestIdMiddleware),
            *([Middleware(MetricsMiddleware, metrics=metrics)] if metrics else []),
            *([request_middleware(tracer_provider)] if tracer_provider else []),
            cors_middleware(settings.cors_origins),
            # Inside CORS, so the guards' refusals carry CORS headers.
            *guard_middleware(settings, authenticator, limiter),
        ],
        # Unknown paths and methods: the API's JSON error, not Starlette's plain text.
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    # A trailing-slash redirect would be built from the client's Host header.
    app.router.redirect_slashes = False
    app.state.services = services  # what the app was built with, for tools and tests
    app.state.dispatcher = dispatcher
    app.state.live_feed = feed
    app.state.oidc = verifier
    app.state.rate_limiter = limiter
    return app
