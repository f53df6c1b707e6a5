"""OpenTelemetry traces (gql/tracing.py, the `otel` extra): one request gives a server span,
a GraphQL operation span inside it, and on PostgreSQL SQL spans inside that, into an in-memory
exporter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gql.app import create_app
from gql.plugins import PluginHost
from gql.settings import Settings, SettingsError, load_settings
from gql.tracing import instrument_sql
from tests.api.conftest import GraphQLClient, World
from tests.conftest import ON_POSTGRES

# The drivers are instrumented once per process, so one provider serves every test here.
EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider()
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    instrument_sql(PROVIDER)
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


def named(found: list[ReadableSpan], prefix: str) -> list[ReadableSpan]:
    return [span for span in found if span.name.startswith(prefix)]


async def test_a_request_is_traced_from_http_to_sql(
    spans: InMemorySpanExporter,
    db: None,
    data_dir: Path,
    plugin_host: PluginHost,
    world: World,
) -> None:
    app = create_app(Settings(data_dir=data_dir), plugins=plugin_host, tracer_provider=PROVIDER)
    spans.clear()  # the world's set-up statements
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://certgraph.test"
    ) as http:
        await GraphQLClient(http).data(
            "query MyList { certifications(first: 5) { totalCount } }",
            token=world.learner.token,
        )
        failed = await GraphQLClient(http).run(
            "query TooMany { certifications(first: 500) { totalCount } }",
            token=world.learner.token,
        )
    assert failed["errors"]

    found = list(spans.get_finished_spans())
    [server] = [s for s in found if s.kind == SpanKind.SERVER and s.name == "POST /graphql"][:1]
    [operation] = named(found, "graphql MyList")
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.type"] == "query"
    assert operation.parent is not None
    assert operation.parent.span_id == server.context.span_id
    # Neither the document nor its variables are recorded.
    assert "query" not in operation.attributes

    [refused] = named(found, "graphql TooMany")
    assert refused.status.status_code == StatusCode.ERROR

    if ON_POSTGRES:
        # asyncpg runs on the event loop: its spans sit inside the operation's. (SQLite has
        # no SQL spans: gql/tracing.py says why.)
        statements = [s for s in found if s.kind == SpanKind.CLIENT]
        inside = [
            s for s in statements if s.parent and s.parent.span_id == operation.context.span_id
        ]
        assert inside, [(s.name, s.kind) for s in found]
        assert all(s.attributes and s.attributes.get("db.system") for s in inside)


def test_tracing_is_off_by_default_and_validated() -> None:
    assert load_settings({}).tracing == "off"
    assert load_settings({"CERTGRAPH_TRACING": "otlp"}).tracing == "otlp"
    with pytest.raises(SettingsError, match="CERTGRAPH_TRACING"):
        load_settings({"CERTGRAPH_TRACING": "jaeger"})
