"""The admin script of docs/admin.md (issue 16, item 7 and "Prove it"): printed in the doc
exactly as examples/admin/sync.py holds it; against a server started as `make run` starts
one (migrate, `demo --if-empty`, serve with CERTGRAPH_DEBUG=true and the default rate limit)
it finishes, a second run creates nothing new, and after hand-made changes a third run
converges with updates only. Its client paces itself and retries 429s (after Retry-After),
5xx answers and dropped connections, and nothing else."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.proof.live import Client, Deployment, create_database, payload

REPO = Path(__file__).resolve().parent.parent.parent
SCRIPT = REPO / "examples" / "admin" / "sync.py"
DOC = REPO / "docs" / "admin.md"
# Every table a run could add rows to, but deliveries (the dispatcher fans earlier events out
# to destinations whenever it gets to them) and reminder notices (the server's own sweep).
TABLES = (
    '"user"',
    "api_token",
    "user_identity",
    "course",
    "certification",
    "certification_course",
    "enrollment",
    "course_progress",
    "evidence",
    "award",
    "outbox_event",
    "webhook",
)


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("certgraph_admin_sync", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_doc_prints_the_script_exactly() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert SCRIPT.read_text(encoding="utf-8") in blocks


# -- against a real server -------------------------------------------------------------------


@pytest_asyncio.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    """What `make run` does before serving: migrate, then the demo if the database is empty."""
    database = await create_database(tmp_path, "admin")
    deployed = Deployment(database, tmp_path)
    try:
        deployed.cli("migrate")
        deployed.cli("demo", "--if-empty")
        yield deployed
    finally:
        deployed.stop_servers()
        await database.drop()


def run_script(deployment: Deployment, url: str, *args: str) -> str:
    """The script as docs/admin.md runs it: from a checkout whose var/ holds `make run`'s demo
    tokens (here the deployment's data directory), with no token given."""
    checkout = deployment.directory / "checkout"
    checkout.mkdir(exist_ok=True)
    if not (checkout / "var").exists():
        (checkout / "var").symlink_to(deployment.data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTGRAPH_")}
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--url", url, *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert completed.returncode == 0, f"{completed.stdout}\n{completed.stderr}"
    return completed.stdout


async def counts(deployment: Deployment) -> dict[str, int]:
    found = {}
    for table in TABLES:
        found[table] = int(await deployment.database.value(f"SELECT COUNT(*) FROM {table}"))
    return found


async def audit_actions(deployment: Deployment) -> list[str]:
    rows = await deployment.database.rows("SELECT action FROM audit_event ORDER BY id")
    return [row[0] for row in rows]


def summary(output: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in output.splitlines() if not line.startswith("  "))


def export_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def hr_people() -> list[dict[str, str]]:
    with (SCRIPT.parent / "hr.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
async def test_the_script_converges_against_make_run(deployment: Deployment) -> None:
    server = await deployment.server(
        CERTGRAPH_DEBUG="true", CERTGRAPH_RATE_LIMIT_PER_MINUTE="600"
    ).start()
    export = deployment.directory / "enrollments.csv"
    before = await counts(deployment)

    first = summary(run_script(deployment, server.url, "--export", str(export)))
    assert first["people"] == "11 created, 0 updated, 0 reactivated, 0 deactivated"
    assert first["catalogue"] == "7 created, 0 updated"
    assert first["assignments"] == "23 new"
    after_first = await counts(deployment)
    assert after_first['"user"'] == before['"user"'] + 11
    assert (after_first["course"], after_first["certification"]) == (
        before["course"] + 4,
        before["certification"] + 3,
    )
    assert after_first["enrollment"] == before["enrollment"] + 23
    exported = export_rows(export)
    hr_keys = {p["external_id"] for p in hr_people()}
    mine = [row for row in exported if row["learner_external_id"] in hr_keys]
    assert len(mine) == 23
    assert {row["learner_external_id"] for row in mine} == hr_keys
    assert {"O'Brien, Hugh", "Chloé Dubois"} <= {row["learner_name"] for row in mine}
    actions = await audit_actions(deployment)

    # Again: nothing new, but the export's audit row.
    second = summary(run_script(deployment, server.url, "--export", str(export)))
    assert first.keys() == second.keys()
    assert second["people"] == "0 created, 0 updated, 0 reactivated, 0 deactivated"
    assert second["catalogue"] == "0 created, 0 updated"
    assert second["assignments"] == "0 new"
    assert await counts(deployment) == after_first
    assert await audit_actions(deployment) == [*actions, "exportEnrollments"]
    assert export_rows(export) == exported

    # Someone changes a person and a course by hand; an enrollment falls overdue.
    admin = Client(httpx.AsyncClient(base_url=server.url, timeout=30), admin_token(deployment))
    async with admin.http:
        people = await admin.data(
            'query { userByExternalId(externalId: "HR-2002") { id } '
            'courseByExternalId(externalId: "CRS-FIRE") { id } }'
        )
        renamed = await admin.data(
            'mutation($id: ID!) { updateUser(id: $id, input: {name: "Benjamin"}) '
            "{ errors { code message } } }",
            {"id": people["userByExternalId"]["id"]},
        )
        payload(renamed, "updateUser")
        retitled = await admin.data(
            'mutation($id: ID!) { updateCourse(id: $id, changes: {name: "Fire!"}) '
            "{ errors { code message } } }",
            {"id": people["courseByExternalId"]["id"]},
        )
        payload(retitled, "updateCourse")
    await make_overdue(deployment, "ana.lima@example.com")

    third_output = run_script(deployment, server.url, "--export", str(export))
    third = summary(third_output)
    assert third["people"] == "0 created, 1 updated, 0 reactivated, 0 deactivated"
    assert third["catalogue"] == "0 created, 1 updated"
    assert third["assignments"] == "0 new"
    assert int(third["overdue"]) == 1
    assert "overdue: ana.lima@example.com (priya.patel@example.com)" in third_output
    settled = await counts(deployment)
    for table in ('"user"', "course", "certification", "certification_course", "enrollment"):
        assert settled[table] == after_first[table], table
    names = await deployment.database.rows(
        "SELECT name FROM \"user\" WHERE external_id = 'HR-2002'"
        " UNION ALL SELECT name FROM course WHERE external_id = 'CRS-FIRE'"
    )
    assert names == [("Ben Carter",), ("Fire safety",)]
    late = [r for r in export_rows(export) if r["learner_email"] == "ana.lima@example.com"]
    assert sorted(r["overdue"] for r in late) == ["false", "true"]  # two certifications


def admin_token(deployment: Deployment) -> str:
    kept = json.loads((deployment.data_dir / "demo-tokens.json").read_text(encoding="utf-8"))
    token: str = next(person["token"] for person in kept if person["role"] == "ADMIN")
    return token


async def make_overdue(deployment: Deployment, email: str) -> None:
    """One of the person's enrollments due in the past (no API moves a due date backwards)."""
    database = deployment.database
    past: Any = datetime(2020, 1, 1, tzinfo=UTC)
    if not database.is_postgres:
        past = str(past)  # as Tortoise stores datetimes in SQLite
    learner = await database.value('SELECT id FROM "user" WHERE email = $1', email)
    enrollment = await database.value(
        "SELECT MIN(id) FROM enrollment WHERE learner_id = $1", learner
    )
    await database.rows(
        "UPDATE enrollment SET due_at = $1 WHERE id = $2 RETURNING id", past, enrollment
    )


# -- the client's pacing and retries ------------------------------------------------------------


class FakeTime:
    """time.monotonic and time.sleep for the script: sleeping moves the clock."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, FakeTime]:
    module = load_script()
    fake = FakeTime()
    monkeypatch.setattr(module, "time", fake)
    return module, fake


def client(module: ModuleType, answers: list[Any], **options: Any) -> tuple[Any, list[str]]:
    """The script's Client on a transport that gives `answers` in turn (a response, or an
    exception to raise); returns it and the log of what it printed."""
    log: list[str] = []
    api = module.Client("http://certgraph.test", "cg_token", log=log.append, **options)
    remaining = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer cg_token"
        answer = remaining.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, httpx.Response)
        return answer

    api.http = httpx.Client(
        base_url="http://certgraph.test",
        headers={"Authorization": "Bearer cg_token"},
        transport=httpx.MockTransport(handler),
    )
    return api, log


OK = httpx.Response(200, json={"data": {"viewer": {"id": "1"}}})


def rate_limited(seconds: int) -> httpx.Response:
    body = {
        "data": None,
        "errors": [{"message": "slow down", "extensions": {"code": "RATE_LIMITED"}}],
    }
    return httpx.Response(429, json=body, headers={"Retry-After": str(seconds)})


def test_a_429_waits_its_retry_after_and_slows_down(script: tuple[ModuleType, FakeTime]) -> None:
    module, fake = script
    api, log = client(module, [rate_limited(3), rate_limited(1), OK], per_second=4.0)
    assert api.graphql("{ viewer { id } }") == {"viewer": {"id": "1"}}
    assert fake.slept == [3.0, 1.0]
    assert (api.requests, api.retries, api.per_second) == (3, 2, 1.0)
    assert log == ["  429 RATE_LIMITED: retrying in 3.0 s", "  429 RATE_LIMITED: retrying in 1.0 s"]


def test_5xx_and_dropped_connections_back_off_with_jitter(
    script: tuple[ModuleType, FakeTime],
) -> None:
    module, fake = script
    answers = [
        httpx.Response(503),
        httpx.ConnectError("refused"),
        httpx.Response(504, json={"errors": [{"extensions": {"changesKept": True}}]}),
        httpx.ReadTimeout("slow"),
        OK,
    ]
    api, _ = client(module, answers)
    assert api.graphql("{ viewer { id } }") == {"viewer": {"id": "1"}}
    assert len(fake.slept) == 4
    for attempt, waited in enumerate(fake.slept, 1):
        ceiling = 0.5 * 2 ** (attempt - 1)
        assert ceiling / 2 <= waited <= ceiling


def test_it_gives_up_after_its_attempts(script: tuple[ModuleType, FakeTime]) -> None:
    module, _ = script
    api, _ = client(module, [httpx.Response(502)] * 3, attempts=3)
    with pytest.raises(module.ApiError, match="HTTP 502, 3 attempts"):
        api.graphql("{ viewer { id } }")
    assert api.requests == 3


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(401, json={"data": None, "errors": [{"message": "bad token"}]}),
        httpx.Response(400, json={"data": None, "errors": [{"message": "malformed"}]}),
        httpx.Response(200, json={"data": None, "errors": [{"message": "unknown field"}]}),
    ],
)
def test_other_failures_are_not_retried(
    script: tuple[ModuleType, FakeTime], answer: httpx.Response
) -> None:
    module, fake = script
    api, _ = client(module, [answer])
    with pytest.raises(module.ApiError):
        api.graphql("{ viewer { id } }")
    assert (api.requests, fake.slept) == (1, [])


def test_it_paces_itself_below_the_limit(script: tuple[ModuleType, FakeTime]) -> None:
    module, fake = script
    api, _ = client(module, [OK] * 7, per_second=5.0, burst=2)
    for _ in range(7):
        api.graphql("{ viewer { id } }")
    # two at once, then one every 0.2 s: 7 requests take a second
    assert fake.now - 1000.0 == pytest.approx(1.0)
    assert api.retries == 0


def test_a_download_streams_to_the_file_and_restarts_when_cut(
    script: tuple[ModuleType, FakeTime], tmp_path: Path
) -> None:
    module, _ = script
    body = b"enrollment_id,learner_name\r\nRW5yb2xsbWVudDox,Ana\r\n"
    api, _ = client(
        module,
        [httpx.Response(503), httpx.RemoteProtocolError("cut"), httpx.Response(200, content=body)],
    )
    target = tmp_path / "out.csv"
    assert api.download("/exports/enrollments.csv?q=x", target) == len(body)
    assert target.read_bytes() == body
    rows = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert rows[1] == ["RW5yb2xsbWVudDox", "Ana"]
    assert api.requests == 3
