"""The demo shows a newcomer both recurring states: a certification in its renewal window and
an expired one. `certgraph demo` runs twice as a user runs it; what it made is then read
through the GraphQL API with the tokens it printed (real clock: the demo is dated from now).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gql.app import create_app
from gql.settings import Settings, get_settings
from gql.store.models import Award
from tests.api.conftest import GraphQLClient
from tests.test_cli import Cli, demo_tokens

# `certgraph demo` runs as a subprocess, on a SQLite file of the test's own.
pytestmark = [pytest.mark.slow, pytest.mark.database_independent]

LEO, LENA = "leo.learner@demo.certgraph.test", "lena.learner@demo.certgraph.test"
MAYA, ADA = "maya.manager@demo.certgraph.test", "admin@demo.certgraph.test"

MINE = """
{ viewer { certifications(pending: true) { edges { node {
    certification { id name } status cycle progressPercent completedAt expiresAt
    awards { cycle awardedAt expiresAt }
    pendingCourses { status percent course { name } }
    evidence { status completedOn }
} } } } }"""

REPORT = """
query R($id: ID!) { certificationReport(certificationId: $id) {
  byStatus { status count } expiring: expiringWithin(days: 30)
} }"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, dict[str, str]]:
    """The demo loaded, then loaded again; the tokens of the second run."""
    cli = Cli(tmp_path_factory.mktemp("demo"))
    first = cli.ok("demo")
    assert "Demo data loaded: 4 people, 7 courses, 3 certifications, 6 enrollments." in first
    second = cli.ok("demo")
    assert "already loaded; nothing was created" in second
    # exactly one award has expired, and nobody has looked yet: the sweep emits its event
    first_sweep = cli.ok("sweep").splitlines()
    assert first_sweep[0] == "1 certification_expired event(s) emitted"
    assert cli.ok("sweep").splitlines() == [
        "0 certification_expired event(s) emitted",
        "0 reminder(s) emitted (due soon 0, overdue 0, expiring 0); 0 settled event(s) pruned",
    ]
    return cli, demo_tokens(second)


@pytest_asyncio.fixture
async def api(
    demo: tuple[Cli, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[GraphQLClient]:
    cli, _ = demo
    monkeypatch.setenv("CERTGRAPH_DATA_DIR", str(cli.directory / "var"))
    get_settings.cache_clear()
    async with cli.database():
        transport = httpx.ASGITransport(app=create_app(Settings(data_dir=cli.directory / "var")))
        async with httpx.AsyncClient(transport=transport, base_url="http://demo.test") as http:
            yield GraphQLClient(http)
    get_settings.cache_clear()


async def pending_of(
    api: GraphQLClient, demo: tuple[Cli, dict[str, str]], email: str
) -> dict[str, dict[str, Any]]:
    data = await api.data(MINE, token=demo[1][email])
    edges = data["viewer"]["certifications"]["edges"]
    return {edge["node"]["certification"]["name"]: edge["node"] for edge in edges}


def at(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    assert parsed.utcoffset() == timedelta(0), text
    return parsed


async def test_lena_sees_security_champion_completed_with_its_renewal_window_open(
    api: GraphQLClient, demo: tuple[Cli, dict[str, str]]
) -> None:
    mine = await pending_of(api, demo, LENA)
    champion = mine["Security Champion"]
    assert (champion["status"], champion["cycle"]) == ("COMPLETED", 2)
    now = datetime.now(UTC)
    expires = at(champion["expiresAt"])
    assert now + timedelta(days=5) < expires < now + timedelta(days=15)
    assert at(champion["completedAt"]) < now - timedelta(days=300)
    assert [a["cycle"] for a in champion["awards"]] == [1]
    # cycle 2 counts afresh: both mandatory courses are to do again
    assert [(c["course"]["name"], c["status"]) for c in champion["pendingCourses"]][:2] == [
        ("Secure Coding Basics", "NOT_STARTED"),
        ("Threat Modelling", "NOT_STARTED"),
    ]
    assert mine["Cloud Practitioner"]["status"] == "STARTED"


async def test_maya_sees_her_external_certification_expired(
    api: GraphQLClient, demo: tuple[Cli, dict[str, str]]
) -> None:
    architect = (await pending_of(api, demo, MAYA))["Certified Cloud Architect"]
    assert (architect["status"], architect["cycle"]) == ("EXPIRED", 2)
    assert (architect["completedAt"], architect["expiresAt"]) == (None, None)
    [award] = architect["awards"]
    assert at(award["expiresAt"]) < datetime.now(UTC) - timedelta(days=30)
    # awarded on the day her certificate says, 24 months before it expired
    assert at(award["awardedAt"]).date().isoformat() == architect["evidence"][0]["completedOn"]
    assert architect["evidence"][0]["status"] == "APPROVED"
    # the sweep in the `demo` fixture noted it (and emitted certification_expired)
    assert await Award.filter(expiry_noted_at__isnull=False).count() == 1


async def test_leo_still_has_the_readme_tour(
    api: GraphQLClient, demo: tuple[Cli, dict[str, str]]
) -> None:
    mine = await pending_of(api, demo, LEO)
    assert {name: node["status"] for name, node in mine.items()} == {
        "Security Champion": "STARTED",
        "Certified Cloud Architect": "PENDING_APPROVAL",
    }
    first = mine["Security Champion"]["pendingCourses"][0]
    assert (first["course"]["name"], first["percent"]) == ("Secure Coding Basics", 40)


async def test_the_admin_report_shows_both_states(
    api: GraphQLClient, demo: tuple[Cli, dict[str, str]]
) -> None:
    ids = {
        name: node["certification"]["id"]
        for name, node in (await pending_of(api, demo, LENA)).items()
    } | {
        name: node["certification"]["id"]
        for name, node in (await pending_of(api, demo, MAYA)).items()
    }
    admin = demo[1][ADA]

    async def report(name: str) -> tuple[dict[str, int], int]:
        data = await api.data(REPORT, {"id": ids[name]}, token=admin)
        rows = data["certificationReport"]["byStatus"]
        counts = {row["status"]: row["count"] for row in rows if row["count"]}
        return counts, data["certificationReport"]["expiring"]

    assert await report("Security Champion") == ({"STARTED": 1, "COMPLETED": 1}, 1)
    assert await report("Certified Cloud Architect") == (
        {"PENDING_APPROVAL": 1, "REJECTED": 1, "EXPIRED": 1},
        0,
    )


def test_the_demo_proof_file_is_stored(demo: tuple[Cli, dict[str, str]]) -> None:
    blobs = list((demo[0].directory / "var" / "blobs").rglob("*"))
    assert [path for path in blobs if path.is_file()], "Maya's certificate is stored"
