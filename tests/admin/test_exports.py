"""Enrollment exports (issue 16 item 6, docs/admin.md "Exports"): the CSV's header and rows,
formula neutralisation and RFC 4180 quoting, the scope (a manager's team, everyone for
admins, nobody for learners), the signed URL (expiry, tampering, a requester who may no
longer export), streaming in keyset batches (statements grow with batches, not rows), and
the `certgraph export enrollments` command. SQLite, and PostgreSQL with
CERTGRAPH_TEST_DATABASE_URL."""

from __future__ import annotations

import base64
import csv
import io
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from gql import clock
from gql.api.export_route import EXPORT_PATH, EXPORT_URL_TTL_SECONDS, export_url
from gql.api.ids import encode_id
from gql.domain import courses, enrollments, exports
from gql.domain.access import Actor
from gql.domain.enrollment_search import EnrollmentFilter
from gql.domain.errors import Forbidden, InvalidInput
from gql.domain.status import EnrollmentStatus
from gql.signing import UrlSigner
from gql.store.db import close_database, open_database
from gql.store.models import AuditEvent, User
from gql.vocabulary import Role
from tests.api.conftest import (
    SYSTEM,
    GraphQLClient,
    Person,
    World,
    make_certification,
    make_person,
)
from tests.conftest import QueryCounter
from tests.proof.live import Deployment, create_database

EXPORT = """
mutation($filter: EnrollmentFilter) {
  exportEnrollments(filter: $filter) { url expiresAt errors { code message field } }
}
"""


def parse(data: bytes) -> list[dict[str, str]]:
    """The CSV's rows as dicts by header, asserting the header is the documented one."""
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
    header, *rows = list(reader)
    assert tuple(header) == exports.COLUMNS
    return [dict(zip(header, row, strict=True)) for row in rows]


async def export(actor: Actor, wanted: EnrollmentFilter | None = None, **kw: Any) -> bytes:
    chunks = [c async for c in exports.enrollment_csv(actor, wanted or EnrollmentFilter(), **kw)]
    return b"".join(chunks)


def by_email(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["learner_email"]: row for row in rows}


async def assign(cert: int, people: list[Person], due: datetime | None) -> None:
    await enrollments.assign_certification(SYSTEM, cert, [p.user.id for p in people], due)


async def complete(person: Person, course_id: int) -> None:
    await enrollments.record_course_progress(
        SYSTEM, course_id=course_id, learner_id=person.user.id, completed=True
    )


# -- the CSV -------------------------------------------------------------------------------


async def test_the_header_and_a_row_per_enrollment_with_the_api_s_facts(
    world: World, frozen_now: datetime
) -> None:
    cert = await make_certification("Fire safety", [world.course_ids[0]])
    due = frozen_now + timedelta(days=10)
    await assign(cert, [world.learner, world.other, world.manager], due)
    await User.filter(id=world.learner.user.id).update(external_id="HR-0001")
    clock.advance(timedelta(days=1))
    await complete(world.manager, world.course_ids[0])  # on time
    clock.advance(timedelta(days=11))
    await complete(world.learner, world.course_ids[0])  # two days late

    data = await export(SYSTEM)
    assert data.startswith(",".join(exports.COLUMNS).encode() + b"\r\n")  # CRLF, RFC 4180
    rows = by_email(parse(data))
    assert set(rows) == {
        "lea.learner@example.com",
        "otto.other@example.com",
        "max.manager@example.com",
    }
    late = rows["lea.learner@example.com"]
    assert late == {
        "enrollment_id": late["enrollment_id"],
        "learner_id": world.learner.id,
        "learner_name": "Lea Learner",
        "learner_email": "lea.learner@example.com",
        "learner_external_id": "HR-0001",
        "manager_email": "max.manager@example.com",
        "certification_id": encode_id("Certification", cert),
        "certification_name": "Fire safety",
        "status": "COMPLETED",
        "progress_percent": "100",
        "origin": "ASSIGNED",
        "enrolled_at": "2026-03-10T09:00:00Z",
        "due_at": "2026-03-20T09:00:00Z",
        "completed_at": "2026-03-22T09:00:00Z",
        "expires_at": "",
        "completed_late": "true",
        "overdue": "false",
    }
    on_time = rows["max.manager@example.com"]
    assert (on_time["status"], on_time["completed_at"]) == ("COMPLETED", "2026-03-11T09:00:00Z")
    assert (on_time["completed_late"], on_time["manager_email"]) == ("false", "")
    behind = rows["otto.other@example.com"]
    assert (behind["status"], behind["overdue"]) == ("ENROLLED", "true")
    assert (behind["completed_at"], behind["completed_late"]) == ("", "")  # not COMPLETED


async def test_the_filter_is_the_search_s(world: World, frozen_now: datetime) -> None:
    first = await make_certification("First", [world.course_ids[0]])
    second = await make_certification("Second", [world.course_ids[1]])
    await assign(first, [world.learner, world.other], frozen_now + timedelta(days=5))
    await assign(second, [world.learner], frozen_now + timedelta(days=30))
    await complete(world.other, world.course_ids[0])
    clock.advance(timedelta(days=6))

    overdue = parse(await export(SYSTEM, EnrollmentFilter(overdue=True)))
    assert [(r["learner_email"], r["certification_name"]) for r in overdue] == [
        ("lea.learner@example.com", "First")
    ]
    done = parse(await export(SYSTEM, EnrollmentFilter(status=(EnrollmentStatus.COMPLETED,))))
    assert [r["learner_email"] for r in done] == ["otto.other@example.com"]
    of_second = parse(await export(SYSTEM, EnrollmentFilter(certification_id=second)))
    assert [r["certification_name"] for r in of_second] == ["Second"]
    due_late = EnrollmentFilter(due_after=frozen_now + timedelta(days=10))
    assert [r["certification_name"] for r in parse(await export(SYSTEM, due_late))] == ["Second"]
    team = EnrollmentFilter(manager_id=world.manager.user.id)
    assert {r["learner_email"] for r in parse(await export(SYSTEM, team))} == {
        "lea.learner@example.com"
    }
    with pytest.raises(InvalidInput):
        await export(SYSTEM, EnrollmentFilter(status=()))


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Ann =1+1", "Ann =1+1"),  # only the first character matters
        ('Quote "q", comma\nnew line', 'Quote "q", comma\nnew line'),
    ],
)
def test_a_formula_is_neutralised_and_everything_else_kept(stored: str, shown: str) -> None:
    assert exports.neutralise(stored) == shown
    written = exports._csv_text([[stored, "x"]])
    assert list(csv.reader(io.StringIO(written.decode("utf-8"), newline=""))) == [[shown, "x"]]


async def test_cells_of_people_and_certifications_are_neutralised_and_quoted(
    world: World,
) -> None:
    cert = await make_certification("Plain", [world.course_ids[0]])
    await assign(cert, [world.learner, world.other], None)
    await User.filter(id=world.learner.user.id).update(
        name="=cmd|' /C calc'!A0", external_id="@risky"
    )
    await User.filter(id=world.other.user.id).update(name='Otto "O" Other, Jr.\r\nII')
    await User.filter(id=world.manager.user.id).update(email="-manager@example.com")

    data = await export(SYSTEM)
    assert b'"Otto ""O"" Other, Jr.\r\nII"' in data  # RFC 4180: quoted, quotes doubled
    rows = by_email(parse(data))
    formula = rows["lea.learner@example.com"]
    assert formula["learner_name"] == "'=cmd|' /C calc'!A0"
    assert formula["learner_external_id"] == "'@risky"
    assert formula["manager_email"] == "'-manager@example.com"
    assert rows["otto.other@example.com"]["learner_name"] == 'Otto "O" Other, Jr.\r\nII'


async def test_utf8_throughout(world: World) -> None:
    cert = await make_certification("Sécurité incendie 🔥", [world.course_ids[0]])
    await assign(cert, [world.learner], None)
    await User.filter(id=world.learner.user.id).update(name="Zoë Ünal 山田")
    [row] = parse(await export(SYSTEM))
    assert (row["learner_name"], row["certification_name"]) == (
        "Zoë Ünal 山田",
        "Sécurité incendie 🔥",
    )


# -- who may export ------------------------------------------------------------------------


async def test_managers_export_their_team_admins_everyone_learners_nothing(
    world: World,
) -> None:
    cert = await make_certification("Team", [world.course_ids[0]])
    await assign(cert, [world.learner, world.other, world.manager, world.admin], None)

    team = by_email(parse(await export(world.manager.actor)))
    assert set(team) == {"lea.learner@example.com", "max.manager@example.com"}
    everyone = by_email(parse(await export(world.admin.actor)))
    assert len(everyone) == 4
    # a filter naming someone outside the team selects nothing
    outside = EnrollmentFilter(learner_id=world.other.user.id)
    assert parse(await export(world.manager.actor, outside)) == []

    before = await AuditEvent.filter(action="exportEnrollments").count()
    with pytest.raises(Forbidden):
        await exports.request_export(world.learner.actor, EnrollmentFilter())
    denied = await AuditEvent.filter(action="denied:exportEnrollments").values_list(
        "actor_id", flat=True
    )
    assert denied == [world.learner.user.id]
    assert await AuditEvent.filter(action="exportEnrollments").count() == before


async def test_an_export_is_audited_with_its_filter(world: World, frozen_now: datetime) -> None:
    wanted = EnrollmentFilter(
        certification_id=7,
        status=(EnrollmentStatus.COMPLETED, EnrollmentStatus.EXPIRED),
        due_before=frozen_now,
    )
    request = await exports.request_export(world.manager.actor, wanted)
    assert (request.requester_id, request.role, request.filter) == (
        world.manager.user.id,
        Role.MANAGER,
        wanted,
    )
    [row] = await AuditEvent.filter(action="exportEnrollments")
    assert row.actor_id == world.manager.user.id
    assert row.after is not None
    recorded = row.after["filter"]
    assert recorded["certification_id"] == 7
    assert recorded["status"] == ["COMPLETED", "EXPIRED"]
    assert recorded["due_before"] == {"t": "2026-03-10T09:00:00+00:00"}


# -- the signed URL ------------------------------------------------------------------------


def signer(settings: Any) -> UrlSigner:
    return UrlSigner.from_settings(settings)


async def url_for(app: Starlette, actor: Actor, wanted: EnrollmentFilter | None = None) -> str:
    request = await exports.request_export(actor, wanted or EnrollmentFilter())
    url, expires = export_url(app.state.services.signer, request)
    assert url.startswith(EXPORT_PATH + "?")
    assert expires == datetime.fromtimestamp(
        int(clock.now().timestamp()) + EXPORT_URL_TTL_SECONDS, UTC
    )
    return url


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return f"{parts.path}?{urlencode(query)}"


def refused(response: httpx.Response) -> bool:
    return (
        response.status_code == 403
        and response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        and b"enrollment_id" not in response.content
    )


async def test_a_signed_url_downloads_the_requester_s_export(
    http: httpx.AsyncClient, app: Starlette, world: World
) -> None:
    cert = await make_certification("Team", [world.course_ids[0]])
    await assign(cert, [world.learner, world.other], None)
    url = await url_for(app, world.manager.actor)

    response = await http.get(url)  # no token: the URL is the authorisation
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8; header=present"
    assert response.headers["content-disposition"].startswith('attachment; filename="enroll')
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert [row["learner_email"] for row in parse(response.content)] == ["lea.learner@example.com"]
    # the same URL works again until it expires
    assert (await http.get(url)).content == response.content


async def test_an_expired_url_is_refused(
    http: httpx.AsyncClient, app: Starlette, world: World, frozen_now: datetime
) -> None:
    url = await url_for(app, world.admin.actor)
    clock.advance(timedelta(seconds=EXPORT_URL_TTL_SECONDS - 1))
    assert (await http.get(url)).status_code == 200
    clock.advance(timedelta(seconds=1))
    assert refused(await http.get(url))


def _payload(url: str) -> dict[str, Any]:
    q = parse_qs(urlsplit(url).query)["q"][0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(q + "=" * (-len(q) % 4)))
    return decoded


def _encoded(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def test_an_altered_url_is_refused(
    http: httpx.AsyncClient, app: Starlette, world: World
) -> None:
    cert = await make_certification("Team", [world.course_ids[0]])
    await assign(cert, [world.learner, world.other], None)
    url = await url_for(app, world.manager.actor, EnrollmentFilter(certification_id=cert))
    assert (await http.get(url)).status_code == 200

    widened = _payload(url) | {"r": "ADMIN"}  # the manager as an admin
    other_filter = _payload(url)
    other_filter["f"]["certification_id"] = None
    someone_else = _payload(url) | {"u": world.admin.user.id, "r": "ADMIN"}
    signature = parse_qs(urlsplit(url).query)["sig"][0]
    expiry = parse_qs(urlsplit(url).query)["exp"][0]
    altered = [
        with_query(url, q=_encoded(widened)),
        with_query(url, q=_encoded(other_filter)),
        with_query(url, q=_encoded(someone_else)),
        with_query(url, exp=str(int(expiry) + 3600)),
        with_query(url, sig=("A" if signature[0] != "A" else "B") + signature[1:]),
        with_query(url, sig=""),
        with_query(url, q="not base64!"),
        with_query(url, q=_encoded({"v": 1})),
        with_query(url, exp="soon"),
        EXPORT_PATH,
    ]
    for bad in altered:
        assert refused(await http.get(bad)), bad
    # another signer's URL (another deployment's key) is refused too
    foreign = UrlSigner("another-deployment-key-" + "x" * 32)
    request = exports.ExportRequest(world.admin.user.id, Role.ADMIN, EnrollmentFilter())
    assert refused(await http.get(export_url(foreign, request)[0]))


async def test_a_requester_who_may_no_longer_export_is_refused(
    http: httpx.AsyncClient, app: Starlette, world: World
) -> None:
    demoted = await url_for(app, world.manager.actor)
    gone_later = await url_for(app, world.admin.actor)
    await User.filter(id=world.manager.user.id).update(role=Role.LEARNER)
    assert refused(await http.get(demoted))
    await User.filter(id=world.admin.user.id).update(deactivated_at=clock.now())
    assert refused(await http.get(gone_later))


async def test_the_mutation_answers_a_url_for_managers_and_admins_only(
    graphql_client: GraphQLClient, http: httpx.AsyncClient, world: World
) -> None:
    cert = await make_certification("Team", [world.course_ids[0]])
    await assign(cert, [world.learner, world.other], None)
    filter_ = {"certificationId": encode_id("Certification", cert)}
    data = await graphql_client.data(EXPORT, {"filter": filter_}, token=world.manager.token)
    payload = data["exportEnrollments"]
    assert payload["errors"] == []
    assert payload["url"].startswith(f"http://certgraph.test{EXPORT_PATH}?")  # absolute
    assert datetime.fromisoformat(payload["expiresAt"]) > clock.now()
    rows = parse((await http.get(payload["url"])).content)
    assert [r["learner_email"] for r in rows] == ["lea.learner@example.com"]

    everything = await graphql_client.data(EXPORT, {}, token=world.admin.token)
    rows = parse((await http.get(everything["exportEnrollments"]["url"])).content)
    assert len(rows) == 2

    result = await graphql_client.run(EXPORT, {}, token=world.learner.token)
    assert result["data"] == {"exportEnrollments": None}
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    bad = await graphql_client.data(EXPORT, {"filter": {"status": []}}, token=world.admin.token)
    assert bad["exportEnrollments"]["url"] is None
    [error] = bad["exportEnrollments"]["errors"]
    assert (error["code"], error["field"]) == ("INVALID_INPUT", ["filter", "status"])


# -- streaming -----------------------------------------------------------------------------


async def test_the_export_streams_in_batches_statements_grow_with_batches_not_rows(
    world: World, sql_queries: QueryCounter
) -> None:
    cert = await make_certification("Many", [world.course_ids[0]])
    team = [await make_person(f"Team {i}", Role.LEARNER, world.manager.user) for i in range(6)]
    others = [await make_person(f"Other {i}", Role.LEARNER) for i in range(6)]
    await assign(cert, team + others, None)

    async def statements(actor: Actor, batch_size: int) -> tuple[int, int]:
        sql_queries.reset()
        rows = parse(await export(actor, batch_size=batch_size))
        return sql_queries.count, len(rows)

    six_in_two_batches = await statements(world.manager.actor, 3)
    twelve_in_two_batches = await statements(SYSTEM, 6)
    twelve_in_four_batches = await statements(SYSTEM, 3)
    assert (six_in_two_batches[1], twelve_in_two_batches[1]) == (6, 12)
    # twice the rows in as many batches: the same statements
    assert twelve_in_two_batches[0] == six_in_two_batches[0]
    # twice the batches: each batch a fixed number more
    per_batch = (twelve_in_four_batches[0] - twelve_in_two_batches[0]) / 2
    assert 1 <= per_batch <= 6
    assert twelve_in_two_batches[0] <= 2 * per_batch + 2  # plus the last, empty, page

    # lazily: the first batch is read and written before the next is read
    sql_queries.reset()
    chunks = exports.enrollment_csv(SYSTEM, EnrollmentFilter(), batch_size=3)
    assert await anext(chunks) == exports.header()
    assert sql_queries.count == 0
    first = await anext(chunks)
    assert len(parse(exports.header() + first)) == 3
    assert sql_queries.count == per_batch
    await chunks.aclose()


# -- the command line ----------------------------------------------------------------------


@pytest.mark.slow
async def test_the_command_writes_the_csv_to_stdout(tmp_path: Path) -> None:
    """As an operator runs it, on a database of the test's kind (a SQLite file, or a fresh
    PostgreSQL database with CERTGRAPH_TEST_DATABASE_URL)."""
    database = await create_database(tmp_path, "export")
    deployment = Deployment(database, tmp_path)
    try:
        await check_the_command(deployment)
    finally:
        await database.drop()


async def check_the_command(deployment: Deployment) -> None:
    def ok(*args: str) -> str:
        return deployment.cli(*args).stdout

    def refused(*args: str) -> subprocess.CompletedProcess[str]:
        completed = deployment.cli(*args, check=False)
        assert completed.returncode == 2 and completed.stdout == "", completed
        return completed

    ok("migrate")
    ok("user", "create", "--name", "Ada", "--email", "ada@example.com", "--role", "admin")
    ok("user", "create", "--name", "Max", "--email", "max@example.com", "--role", "manager")
    for name in ("=Lea", "Otto"):
        email = f"{name.strip('=').lower()}@example.com"
        manager = ["--manager", "max@example.com"] if name == "=Lea" else []
        ok("user", "create", "--name", name, "--email", email, "--role", "learner", *manager)
    await open_database(deployment.database.url)
    try:
        course = await courses.create_course(SYSTEM, name="Course")
        cert = await make_certification("Safety", [course.id])
        ids = await User.filter(role=Role.LEARNER).order_by("id").values_list("id", flat=True)
        await enrollments.assign_certification(
            SYSTEM, cert, list(ids), datetime(2020, 1, 1, tzinfo=UTC)
        )
        await enrollments.record_course_progress(
            SYSTEM, course_id=course.id, learner_id=ids[1], completed=True
        )
    finally:
        await close_database()

    everything = parse(ok("export", "enrollments").encode())
    assert [(r["learner_name"], r["status"]) for r in everything] == [
        ("'=Lea", "ENROLLED"),
        ("Otto", "COMPLETED"),
    ]
    overdue = parse(ok("export", "enrollments", "--overdue").encode())
    assert [r["learner_email"] for r in overdue] == ["lea@example.com"]
    by_status = ok("export", "enrollments", "--status", "completed", "expired")
    assert [r["learner_email"] for r in parse(by_status.encode())] == ["otto@example.com"]
    team = ok("export", "enrollments", "--manager-email", "max@example.com")
    assert [r["learner_email"] for r in parse(team.encode())] == ["lea@example.com"]
    for cert_arg in (encode_id("Certification", cert), str(cert)):
        found = ok("export", "enrollments", "--certification-id", cert_arg)
        assert len(parse(found.encode())) == 2
    window = ("--due-after", "2019-12-31", "--due-before", "2020-01-01T00:00:01")
    assert len(parse(ok("export", "enrollments", *window).encode())) == 2
    assert parse(ok("export", "enrollments", "--due-before", "2019-06-01").encode()) == []

    unknown = refused("export", "enrollments", "--manager-email", "nobody@example.com")
    assert "no user with email nobody@example.com" in unknown.stderr
    backwards = ("--due-after", "2021-01-01", "--due-before", "2020-01-01")
    assert (
        "dueAfter must not be after dueBefore"
        in refused("export", "enrollments", *backwards).stderr
    )
    bad_date = refused("export", "enrollments", "--due-before", "tomorrow")
    assert "not an ISO date" in bad_date.stderr
    bad_cert = refused("export", "enrollments", "--certification-id", encode_id("User", 1))
    assert "is not a Certification ID" in bad_cert.stderr
    audited = await deployment.database.rows(
        "SELECT actor_id FROM audit_event WHERE action = 'exportEnrollments'"
    )
    assert audited == [(None,)] * 8  # one per export that ran; no actor: the operator
