"""Prometheus metrics of one app (prometheus-client): requests by route, operation and outcome,
latency, SQL statements per request, upload bytes, rate-limit refusals, and what is sampled at
scrape time (database pool, outbox backlog). docs/deploy.md lists them."""

from __future__ import annotations

import hmac
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.http.errors import error_response
from gql.store.statements import counting_statements

# Where the GraphQL layer leaves what it learnt about a request (scope["state"] keys).
OPERATION_KEY = "certgraph.operation"
GRAPHQL_ERRORS_KEY = "certgraph.graphql_errors"

# Operation names come from clients: only plain names become label values, and only so many
# per process, so a client cannot grow the series without bound.
_OPERATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_OPERATION_NAMES = 200
OTHER = "other"
ANONYMOUS = "anonymous"
UNREAD = "unread"  # refused before the document was read (authentication, rate limit, size)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_STATEMENT_BUCKETS = (0, 1, 2, 4, 8, 12, 16, 24, 32, 64, 128)


def route_of(path: str) -> str:
    """A bounded label for a path: the route family, never the path itself."""
    if path == "/graphql":
        return "graphql"
    for prefix, name in (("/files/", "files"), ("/exports/", "exports")):
        if path.startswith(prefix):
            return name
    if path in ("/healthz", "/readyz"):
        return "health"
    if path == "/metrics":
        return "metrics"
    return OTHER


def outcome_of(status: int, graphql_errors: bool) -> str:
    if status == 499:
        return "client_gone"
    if status >= 500:
        return "server_error"
    if status >= 400:
        return "refused"
    return "graphql_error" if graphql_errors else "ok"


@dataclass
class Sampled:
    """What is read at scrape time rather than counted per request."""

    pool_in_use: Callable[[], tuple[int, int] | None] = lambda: None
    outbox_backlog: Callable[[], Awaitable[tuple[int, int]]] | None = None


@dataclass
class AppMetrics:
    """The metrics of one app: its own registry, so two apps in one process keep their own.

    With several worker processes (`multiprocess_dir`, set by `certgraph serve --workers N`
    through prometheus-client's PROMETHEUS_MULTIPROC_DIR), values live in files there and a
    scrape of any worker reads every worker's.
    """

    multiprocess_dir: Path | None = None
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _operations: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        registry = self.registry
        self.requests = Counter(
            "certgraph_requests",
            "Requests answered, by route, GraphQL operation name and outcome.",
            ["route", "operation", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "certgraph_request_duration_seconds",
            "Time from the request's arrival to the end of its answer.",
            ["route", "operation"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.statements = Histogram(
            "certgraph_sql_statements_per_request",
            "SQL statements sent while serving one request.",
            ["route"],
            buckets=_STATEMENT_BUCKETS,
            registry=registry,
        )
        self.upload_bytes = Counter(
            "certgraph_upload_bytes",
            "Bytes received in multipart (upload) request bodies.",
            registry=registry,
        )
        self.rate_limited = Counter(
            "certgraph_rate_limited",
            "Requests refused by the rate limiter (HTTP 429).",
            registry=registry,
        )

    def operation_label(self, name: object) -> str:
        if not name:
            return ANONYMOUS
        if not isinstance(name, str) or not _OPERATION_NAME.match(name):
            return OTHER
        if name not in self._operations:
            if len(self._operations) >= MAX_OPERATION_NAMES:
                return OTHER
            self._operations.add(name)
        return name

    def record(
        self,
        *,
        route: str,
        operation: str,
        status: int,
        graphql_errors: bool,
        seconds: float,
        statements: int,
        upload_bytes: int,
    ) -> None:
        self.requests.labels(route, operation, outcome_of(status, graphql_errors)).inc()
        self.latency.labels(route, operation).observe(seconds)
        self.statements.labels(route).observe(statements)
        if upload_bytes:
            self.upload_bytes.inc(upload_bytes)
        if status == 429:
            self.rate_limited.inc()

    async def exposition(self, sampled: Sampled) -> bytes:
        """The text format: every process's counters, plus the gauges sampled now."""
        if self.multiprocess_dir is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(  # type: ignore[no-untyped-call]
                registry, path=str(self.multiprocess_dir)
            )
        else:
            registry = self.registry
        gauges = GaugeSample()
        pool = sampled.pool_in_use()
        if pool is not None:
            gauges.add(
                "certgraph_db_pool_connections_in_use", "Pool connections lent out.", pool[0]
            )
            gauges.add("certgraph_db_pool_connections", "Pool connections open.", pool[1])
        if sampled.outbox_backlog is not None:
            unfanned, pending = await sampled.outbox_backlog()
            gauges.add(
                "certgraph_outbox_events_waiting",
                "Events written but not yet fanned out to their destinations.",
                unfanned,
            )
            gauges.add(
                "certgraph_outbox_deliveries_pending",
                "Deliveries not yet done and not dead (the outbox backlog).",
                pending,
            )
        return generate_latest(registry) + generate_latest(gauges.registry())

    def process_exited(self) -> None:
        """A worker stops: its live gauges go (prometheus-client's multiprocess rule)."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                os.getpid(), str(self.multiprocess_dir)
            )


class GaugeSample(Collector):
    """Gauges read at scrape time, exposed once (not per process)."""

    def __init__(self) -> None:
        self._families: list[GaugeMetricFamily] = []

    def add(self, name: str, documentation: str, value: float) -> None:
        self._families.append(GaugeMetricFamily(name, documentation, value=value))

    def collect(self) -> list[GaugeMetricFamily]:
        return self._families

    def registry(self) -> CollectorRegistry:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        return registry


class MetricsMiddleware:
    """Outermost but for the request id: times every HTTP request and records it once."""

    def __init__(self, app: ASGIApp, *, metrics: AppMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # No answer started: 500 when the app raised, 499 (nginx's "client closed request")
        # when it returned without one, its client gone.
        status = 499
        upload_bytes = 0
        multipart = _is_multipart(scope)

        async def counting_receive() -> Message:
            nonlocal upload_bytes
            message = await receive()
            if multipart and message["type"] == "http.request":
                upload_bytes += len(message.get("body", b""))
            return message

        async def status_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with counting_statements() as tally:
            try:
                await self.app(scope, counting_receive, status_send)
            except BaseException:
                if status == 499:
                    status = 500
                raise
            finally:
                state: Mapping[str, object] = scope.get("state") or {}
                route = route_of(scope.get("path", ""))
                self.metrics.record(
                    route=route,
                    operation=(
                        self.metrics.operation_label(state[OPERATION_KEY])
                        if OPERATION_KEY in state
                        else (UNREAD if route == "graphql" else "")
                    ),
                    status=status,
                    graphql_errors=bool(state.get(GRAPHQL_ERRORS_KEY)),
                    seconds=time.perf_counter() - started,
                    statements=tally.statements,
                    upload_bytes=upload_bytes,
                )


def _is_multipart(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return bool(value.lower().startswith(b"multipart/"))
    return False


def metrics_endpoint(
    metrics: AppMetrics, sampled: Sampled, *, token: str | None
) -> Callable[[Request], Awaitable[Response]]:
    """GET /metrics; with a token configured, only `Authorization: Bearer <token>` may read."""
    expected = f"Bearer {token}".encode() if token else None

    async def endpoint(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return error_response(
                    401,
                    "UNAUTHENTICATED",
                    "/metrics needs the bearer token of CERTGRAPH_METRICS_TOKEN",
                    headers={"WWW-Authenticate": 'Bearer realm="certgraph-metrics"'},
                )
        body = await metrics.exposition(sampled)
        return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})

    return endpoint


__all__ = [
    "GRAPHQL_ERRORS_KEY",
    "OPERATION_KEY",
    "AppMetrics",
    "MetricsMiddleware",
    "Sampled",
    "metrics_endpoint",
]
