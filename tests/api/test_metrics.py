"""/metrics (gql/metrics.py): what a scrape reports after known requests, its token, its
bounds on client-chosen label values, and each app keeping its own registry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from gql.api.ids import encode_id
from gql.app import create_app
from gql.metrics import MAX_OPERATION_NAMES
from gql.plugins import PluginHost
from gql.settings import Settings
from tests.api.conftest import GraphQLClient, World, make_certification
from tests.conftest import QueryCounter

CERTIFICATIONS = "query MyList { certifications(first: 5) { totalCount } }"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by name and sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def requests_total(scraped: dict, operation: str, outcome: str) -> float:
    key = (
        "certgraph_requests_total",
        (("operation", operation), ("outcome", outcome), ("route", "graphql")),
    )
    return scraped.get(key, 0.0)


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    # Some tests send more requests than the default burst.
    return Settings(data_dir=data_dir, rate_limit_per_minute=0)


async def scrape(http: httpx.AsyncClient, **headers: str) -> dict:
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return samples(response.text)


async def test_requests_are_counted_by_operation_and_outcome(
    http: httpx.AsyncClient, graphql_client: GraphQLClient, world: World
) -> None:
    for _ in range(3):
        await graphql_client.data(CERTIFICATIONS, token=world.learner.token)
    refused = await graphql_client.post(CERTIFICATIONS, token="cg_not-a-token")
    assert refused.status_code == 401
    failed = await graphql_client.run(
        "query Broken { certifications(first: 500) { totalCount } }", token=world.learner.token
    )
    assert failed["errors"][0]["extensions"]["code"] == "INVALID_INPUT"

    scraped = await scrape(http)
    assert requests_total(scraped, "MyList", "ok") == 3
    # Refused before its body was read: its operation is not known.
    assert requests_total(scraped, "unread", "refused") == 1
    assert requests_total(scraped, "Broken", "graphql_error") == 1
    latency_count = scraped[
        (
            "certgraph_request_duration_seconds_count",
            (("operation", "MyList"), ("route", "graphql")),
        )
    ]
    assert latency_count == 3


async def test_statements_per_request_match_what_the_database_was_sent(
    http: httpx.AsyncClient,
    graphql_client: GraphQLClient,
    world: World,
    sql_queries: QueryCounter,
) -> None:
    await make_certification("Metrics", world.course_ids[:2])
    sql_queries.reset()
    await graphql_client.data(CERTIFICATIONS, token=world.learner.token)
    sent = sql_queries.count
    assert sent > 0

    scraped = await scrape(http)
    key = ("certgraph_sql_statements_per_request_sum", (("route", "graphql"),))
    assert scraped[key] == sent
    assert scraped[("certgraph_sql_statements_per_request_count", (("route", "graphql"),))] == 1


async def test_outbox_backlog_is_read_at_scrape_time(
    http: httpx.AsyncClient, graphql_client: GraphQLClient, world: World
) -> None:
    before = await scrape(http)
    assert before[("certgraph_outbox_events_waiting", ())] == 0
    cert_id = await make_certification("Backlog", world.course_ids[:1])
    start = "mutation S($id: ID!) { startCertification(certificationId: $id) { errors { code } } }"
    await graphql_client.data(
        start, {"id": encode_id("Certification", cert_id)}, token=world.learner.token
    )
    # No dispatcher runs here (no lifespan), so the events wait.
    after = await scrape(http)
    assert after[("certgraph_outbox_events_waiting", ())] >= 1
    assert ("certgraph_outbox_deliveries_pending", ()) in after


async def test_operation_names_are_bounded(
    http: httpx.AsyncClient, graphql_client: GraphQLClient, world: World
) -> None:
    for i in range(MAX_OPERATION_NAMES + 20):
        await graphql_client.data(f"query Op{i} {{ viewer {{ id }} }}", token=world.learner.token)
    await graphql_client.data(
        "query Op0 { viewer { id } }",
        token=world.learner.token,
    )
    odd = await graphql_client.post("query { viewer { id } }", token=world.learner.token)
    assert odd.status_code == 200

    scraped = await scrape(http)
    operations = {
        dict(labels)["operation"]
        for (name, labels) in scraped
        if name == "certgraph_requests_total" and dict(labels)["route"] == "graphql"
    }
    assert len(operations - {"other", "anonymous"}) == MAX_OPERATION_NAMES
    assert requests_total(scraped, "Op0", "ok") == 2
    assert requests_total(scraped, "other", "ok") == 20
    assert requests_total(scraped, "anonymous", "ok") == 1


async def test_rate_limit_refusals_and_upload_bytes_are_counted(
    db: None, data_dir: Path, plugin_host: PluginHost, world: World
) -> None:
    app = create_app(
        Settings(data_dir=data_dir, rate_limit_burst=2, rate_limit_per_minute=1),
        plugins=plugin_host,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://certgraph.test"
    ) as http:
        client = GraphQLClient(http)
        statuses = [
            (await client.post(CERTIFICATIONS, token=world.learner.token)).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 429, 429]
        body = b'--b\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{}\r\n--b--\r\n'
        await http.post(
            "/graphql",
            content=body,
            headers={
                "Content-Type": "multipart/form-data; boundary=b",
                "Authorization": f"Bearer {world.admin.token}",
            },
        )
        scraped = await scrape(http)
    assert scraped[("certgraph_rate_limited_total", ())] == 2
    assert scraped[("certgraph_upload_bytes_total", ())] == len(body)


@pytest_asyncio.fixture
async def guarded(db: None, data_dir: Path, plugin_host: PluginHost) -> AsyncIterator[Starlette]:
    yield create_app(
        Settings(data_dir=data_dir, metrics_token="scraper-secret-0123456789"),
        plugins=plugin_host,
    )


async def test_a_metrics_token_is_required_when_configured(guarded: Starlette) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=guarded), base_url="http://certgraph.test"
    ) as http:
        refused = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        allowed = await http.get(
            "/metrics", headers={"Authorization": "Bearer scraper-secret-0123456789"}
        )
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert wrong.status_code == 401
    assert allowed.status_code == 200
    assert "certgraph_requests_total" in allowed.text


async def test_each_app_keeps_its_own_counts_and_metrics_can_be_off(
    db: None, data_dir: Path, plugin_host: PluginHost, world: World
) -> None:
    first = create_app(Settings(data_dir=data_dir), plugins=plugin_host)
    second = create_app(Settings(data_dir=data_dir), plugins=plugin_host)
    off = create_app(Settings(data_dir=data_dir, metrics_enabled=False), plugins=plugin_host)
    clients = [
        httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://certgraph.test")
        for a in (first, second, off)
    ]
    try:
        await GraphQLClient(clients[0]).data(CERTIFICATIONS, token=world.learner.token)
        assert requests_total(await scrape(clients[0]), "MyList", "ok") == 1
        assert requests_total(await scrape(clients[1]), "MyList", "ok") == 0
        gone = await clients[2].get("/metrics")
        assert gone.status_code == 404
        assert gone.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    finally:
        for client in clients:
            await client.aclose()
