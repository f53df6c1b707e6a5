"""/metrics of a real `certgraph serve --workers 2`: a scrape answered by either worker counts
the requests of both (prometheus-client's multi-process mode, set up by `certgraph serve`)."""

from __future__ import annotations

import asyncio

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.proof.live import DATABASE_INDEPENDENT, Client, Deployment, record_figures

# Database-independent (live.py): prometheus-client's multi-process files shared by the workers.
pytestmark = DATABASE_INDEPENDENT

PROBE = "query Probe { viewer { id } }"


def probe_count(text: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "certgraph_requests_total" and sample.labels == {
                "route": "graphql",
                "operation": "Probe",
                "outcome": "ok",
            }:
                total += sample.value
    return total


async def test_a_scrape_of_any_worker_counts_the_requests_of_both(
    deployment: Deployment,
) -> None:
    token = deployment.create_admin()
    server = await deployment.server(workers=2).start()
    # Separate connections, held open, until both workers have accepted some: then each has
    # served requests of its own.
    clients: list[httpx.AsyncClient] = []
    sent = 0
    try:
        while len(server.connections_by_process()) < 2:
            assert len(clients) < 40, "one worker accepted every connection"
            http = httpx.AsyncClient(base_url=server.url, timeout=10.0)
            clients.append(http)
            for _ in range(3):
                await Client(http, token).data(PROBE)
                sent += 1
        holders = server.connections_by_process()
        await asyncio.gather(*(Client(http, token).data(PROBE) for http in clients))
        sent += len(clients)

        # Each scrape on a connection of its own: the workers answer them in turn.
        seen = []
        for _ in range(6):
            async with httpx.AsyncClient(base_url=server.url, timeout=10.0) as scraper:
                response = await scraper.get("/metrics")
            assert response.status_code == 200
            seen.append(probe_count(response.text))
    finally:
        for http in clients:
            await http.aclose()

    assert len(holders) == 2
    assert seen == [sent] * 6, (seen, sent)
    record_figures("metrics_multiprocess", workers=2, requests=sent, connections=len(clients))
