"""OpenTelemetry traces, with the `otel` extra: a span per HTTP request, per GraphQL operation
and per SQL statement (PostgreSQL). CERTGRAPH_TRACING=otlp exports them as the SDK's own
OTEL_* variables say (endpoint, headers, sampler); docs/deploy.md."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from graphql import get_operation_ast
from starlette.middleware import Middleware
from strawberry.extensions import SchemaExtension

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

INSTRUMENTATION_NAME = "certgraph"


class MissingExtra(RuntimeError):
    """Tracing was asked for but the `otel` extra is not installed."""


def otlp_tracer_provider() -> TracerProvider:
    """A provider exporting in batches over OTLP/HTTP (the exporter reads OTEL_EXPORTER_OTLP_*)."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise MissingExtra(
            "CERTGRAPH_TRACING=otlp needs the otel extra: pip install 'certgraph[otel]'"
        ) from exc
    provider = SdkTracerProvider(resource=Resource.create({"service.name": "certgraph"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def request_middleware(provider: TracerProvider) -> Middleware:
    """A server span around every HTTP request (OpenTelemetry's ASGI instrumentation)."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return Middleware(OpenTelemetryMiddleware, tracer_provider=provider)


def instrument_sql(provider: TracerProvider) -> None:
    """A client span per SQL statement on PostgreSQL (asyncpg's instrumentation, which patches
    the driver for the whole process: the first app to ask chooses the provider). SQLite has
    none: Tortoise runs its statements through `Connection.execute`, which the sqlite3
    instrumentation does not trace, in aiosqlite's own thread."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)


def operation_spans(provider: TracerProvider) -> type[SchemaExtension]:
    """A span per GraphQL operation, named after it; neither the document nor its variables
    are recorded (they may hold personal data), and no span per field (too costly)."""
    from opentelemetry.trace import SpanKind, Status, StatusCode

    tracer = provider.get_tracer(INSTRUMENTATION_NAME)

    class OperationSpans(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            with tracer.start_as_current_span("graphql.operation", kind=SpanKind.INTERNAL) as span:
                yield
                context = self.execution_context
                name = context.operation_name
                operation = (
                    get_operation_ast(context.graphql_document, name)
                    if context.graphql_document is not None
                    else None
                )
                if operation is not None:
                    name = name or (operation.name.value if operation.name else None)
                    span.set_attribute("graphql.operation.type", operation.operation.value)
                if name:
                    span.set_attribute("graphql.operation.name", name)
                    span.update_name(f"graphql {name}")
                result = context.result
                errors: Any = result.errors if result is not None else None
                if errors:
                    codes = sorted({str((e.extensions or {}).get("code", "ERROR")) for e in errors})
                    span.set_attribute("graphql.error.codes", codes)
                    span.set_status(Status(StatusCode.ERROR, codes[0]))

    return OperationSpans


__all__ = [
    "MissingExtra",
    "instrument_sql",
    "operation_spans",
    "otlp_tracer_provider",
    "request_middleware",
]
