"""Who, not just how many (issue 16 item 1): `enrollments(filter:)` by certification, learner,
manager, status, overdue and due date, scoped to what the viewer may see, in keyset pages
whose SQL statements do not grow with the page; `users` by manager, role and activity;
`User.reports`; `User.certifications(status:, overdue:)`; the review queue by certification
and learner; `Enrollment.completedLate`; and a clear error for a bad ID or value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

from gql import clock
from gql.api.ids import decode_id, encode_id
from gql.domain import enrollment_search, enrollments
from gql.domain.access import Actor
from gql.domain.enrollment_search import EnrollmentFilter, completed_late, iter_enrollments
from gql.domain.errors import InvalidInput
from gql.domain.pages import PageRequest
from gql.domain.status import EnrollmentStatus, EnrollmentView
from gql.store.models import (
    CertificationKind,
    CertificationType,
    Enrollment,
    EvidenceStatus,
    Role,
    User,
)
from gql.store.records import AwardRecord
from tests.api.conftest import (
    SYSTEM,
    GraphQLClient,
    Person,
    World,
    add_evidence,
    make_certification,
    make_person,
)
from tests.conftest import QueryCounter

HINT = "IDs are opaque strings from an object's `id` field"

ENROLLMENTS = """
query($filter: EnrollmentFilter, $first: Int, $after: String) {
  enrollments(filter: $filter, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage endCursor }
    edges { cursor node {
      id status overdue dueAt completedAt completedLate
      learner { name } certification { name }
    } }
  }
}"""


@dataclass
class Seeded:
    """Who is enrolled in what (see `seed`)."""

    world: World
    now: datetime
    mia: Person  # a second manager
    rita: Person  # Mia's report
    dee: Person  # Max's report, deactivated
    ned: Person  # Max's report, whose Alpha enrollment ended
    alpha: int
    beta: int

    def gid(self, pk: int) -> str:
        return encode_id("Certification", pk)


async def _due(learner: int, certification: int, due_at: datetime | None) -> None:
    await Enrollment.filter(learner_id=learner, certification_id=certification).update(
        due_at=due_at
    )


async def seed(world: World, now: datetime) -> Seeded:
    """Alpha (perpetual, courses 0 and 1):
      Lea    due now-5d, nothing done        ENROLLED, overdue
      Otto   due now+5d, 40 % of course 0    STARTED
      Max    no due date                     ENROLLED
      Rita   due now-5d, completed now       COMPLETED, late
      Dee    due now+1d (deactivated)        ENROLLED
      Ned    due now+2d (ended)              ENROLLED
    Beta (recurring, 1 month, course 2):
      Lea    no due date, completed 90 days ago    EXPIRED
      Otto   due now+3d, completed now             COMPLETED, on time
    """
    mia = await make_person("Mia Manager", Role.MANAGER)
    rita = await make_person("Rita Report", Role.LEARNER, manager=mia.user)
    dee = await make_person("Dee Gone", Role.LEARNER, manager=world.manager.user)
    ned = await make_person("Ned Ended", Role.LEARNER, manager=world.manager.user)
    c0, c1, c2 = world.course_ids[:3]
    alpha = await make_certification("Alpha", [c0, c1])
    beta = await make_certification(
        "Beta",
        [c2],
        type_=CertificationType.RECURRING,
        validity_months=1,
        recertification_window_days=7,
    )
    lea, otto, max_ = world.learner.user.id, world.other.user.id, world.manager.user.id
    everyone = [lea, otto, max_, rita.user.id, dee.user.id, ned.user.id]
    await enrollments.assign_certification(SYSTEM, alpha, everyone, None)
    await enrollments.assign_certification(SYSTEM, beta, [lea, otto], None)
    for learner, due in [
        (lea, now - timedelta(days=5)),
        (otto, now + timedelta(days=5)),
        (max_, None),
        (rita.user.id, now - timedelta(days=5)),
        (dee.user.id, now + timedelta(days=1)),
        (ned.user.id, now + timedelta(days=2)),
    ]:
        await _due(learner, alpha, due)
    await _due(lea, beta, None)
    await _due(otto, beta, now + timedelta(days=3))
    record = enrollments.record_course_progress
    await record(SYSTEM, course_id=c0, learner_id=otto, percent=40)
    for course in (c0, c1):
        await record(SYSTEM, course_id=course, learner_id=rita.user.id, completed=True)
    await record(SYSTEM, course_id=c2, learner_id=lea, completed_at=now - timedelta(days=90))
    await record(SYSTEM, course_id=c2, learner_id=otto, completed=True)
    await User.filter(id=dee.user.id).update(deactivated_at=now - timedelta(days=1))
    await Enrollment.filter(learner_id=ned.user.id, certification_id=alpha).update(
        ended_at=now - timedelta(hours=1)
    )
    return Seeded(world, now, mia, rita, dee, ned, alpha, beta)


@pytest.fixture
async def seeded(world: World, frozen_now: datetime) -> Seeded:
    return await seed(world, frozen_now)


async def listing(
    client: GraphQLClient,
    token: str,
    filter: dict[str, Any] | None = None,
    *,
    first: int = 100,
    after: str | None = None,
) -> dict[str, Any]:
    data = await client.data(
        ENROLLMENTS, {"filter": filter, "first": first, "after": after}, token=token
    )
    found: dict[str, Any] = data["enrollments"]
    return found


def pairs(found: dict[str, Any]) -> set[tuple[str, str]]:
    """(learner first name, certification name) of each listed enrollment."""
    return {
        (e["node"]["learner"]["name"].split()[0], e["node"]["certification"]["name"])
        for e in found["edges"]
    }


async def who(
    client: GraphQLClient, token: str, filter: dict[str, Any] | None = None
) -> set[tuple[str, str]]:
    found = await listing(client, token, filter)
    assert found["totalCount"] == len(found["edges"])
    return pairs(found)


ALL_ACTIVE = {
    ("Lea", "Alpha"),
    ("Otto", "Alpha"),
    ("Max", "Alpha"),
    ("Rita", "Alpha"),
    ("Lea", "Beta"),
    ("Otto", "Beta"),
}


# -- Query.enrollments: each filter ----------------------------------------------------------


async def test_admins_see_everyone_active_and_not_ended_by_default(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    assert await who(graphql_client, seeded.world.admin.token) == ALL_ACTIVE
    assert await who(graphql_client, seeded.world.admin.token, {}) == ALL_ACTIVE


async def test_by_certification_and_learner(graphql_client: GraphQLClient, seeded: Seeded) -> None:
    token = seeded.world.admin.token
    beta = {"certificationId": seeded.gid(seeded.beta)}
    assert await who(graphql_client, token, beta) == {("Lea", "Beta"), ("Otto", "Beta")}
    lea = {"learnerId": seeded.world.learner.id}
    assert await who(graphql_client, token, lea) == {("Lea", "Alpha"), ("Lea", "Beta")}
    assert await who(graphql_client, token, {**beta, **lea}) == {("Lea", "Beta")}


async def test_by_manager_lists_that_managers_direct_reports(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    token = seeded.world.admin.token
    max_reports = {"managerId": seeded.world.manager.id}
    # Lea; not Max himself, not Dee (deactivated), not Ned's ended enrollment
    assert await who(graphql_client, token, max_reports) == {("Lea", "Alpha"), ("Lea", "Beta")}
    mia_reports = {"managerId": seeded.mia.id}
    assert await who(graphql_client, token, mia_reports) == {("Rita", "Alpha")}


async def test_by_status_as_the_report_counts(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    token = seeded.world.admin.token
    done = await listing(graphql_client, token, {"status": ["COMPLETED", "EXPIRED"]})
    assert pairs(done) == {("Rita", "Alpha"), ("Lea", "Beta"), ("Otto", "Beta")}
    statuses = {
        (e["node"]["learner"]["name"].split()[0], e["node"]["status"]) for e in done["edges"]
    }
    assert statuses == {("Rita", "COMPLETED"), ("Lea", "EXPIRED"), ("Otto", "COMPLETED")}
    assert await who(graphql_client, token, {"status": ["STARTED"]}) == {("Otto", "Alpha")}
    assert await who(graphql_client, token, {"status": ["ENROLLED"]}) == {
        ("Lea", "Alpha"),
        ("Max", "Alpha"),
    }
    assert await who(graphql_client, token, {"status": ["PENDING_APPROVAL", "REJECTED"]}) == set()
    # the list and certificationReport agree, status by status (Alpha has Dee, deactivated,
    # and Ned's ended enrollment: neither is counted by either)
    for cert in (seeded.alpha, seeded.beta):
        report = await graphql_client.data(
            "query($id: ID!) { certificationReport(certificationId: $id) "
            "{ enrolled byStatus { status count } overdue } }",
            {"id": seeded.gid(cert)},
            token=token,
        )
        counted = report["certificationReport"]
        for row in counted["byStatus"]:
            found = await listing(
                graphql_client,
                token,
                {"certificationId": seeded.gid(cert), "status": [row["status"]]},
            )
            assert found["totalCount"] == row["count"], row
        everyone = await listing(graphql_client, token, {"certificationId": seeded.gid(cert)})
        assert counted["enrolled"] == everyone["totalCount"]
        assert sum(r["count"] for r in counted["byStatus"]) == everyone["totalCount"]
        late = await listing(
            graphql_client, token, {"certificationId": seeded.gid(cert), "overdue": True}
        )
        assert counted["overdue"] == late["totalCount"]


async def test_overdue_and_not(graphql_client: GraphQLClient, seeded: Seeded) -> None:
    token = seeded.world.admin.token
    overdue = await listing(graphql_client, token, {"overdue": True})
    assert pairs(overdue) == {("Lea", "Alpha")}
    assert all(e["node"]["overdue"] for e in overdue["edges"])
    # Rita's is past due too, but COMPLETED: not overdue
    rest = await listing(graphql_client, token, {"overdue": False})
    assert pairs(rest) == ALL_ACTIVE - {("Lea", "Alpha")}
    assert not any(e["node"]["overdue"] for e in rest["edges"])


async def test_due_before_is_exclusive_and_due_after_inclusive(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    token = seeded.world.admin.token
    now = seeded.now
    in5 = (now + timedelta(days=5)).isoformat()
    assert await who(graphql_client, token, {"dueBefore": now.isoformat()}) == {
        ("Lea", "Alpha"),
        ("Rita", "Alpha"),
    }
    # Otto's Alpha is due exactly in 5 days: after-or-at includes it, before excludes it
    assert await who(graphql_client, token, {"dueAfter": in5}) == {("Otto", "Alpha")}
    assert await who(graphql_client, token, {"dueBefore": in5}) == {
        ("Lea", "Alpha"),
        ("Rita", "Alpha"),
        ("Otto", "Beta"),
    }
    window = {"dueAfter": now.isoformat(), "dueBefore": in5}
    assert await who(graphql_client, token, window) == {("Otto", "Beta")}
    # enrollments without a due date (Max's Alpha, Lea's Beta) match no due-date range
    wide = {"dueAfter": "1970-01-01T00:00:00Z", "dueBefore": "2100-01-01T00:00:00Z"}
    assert await who(graphql_client, token, wide) == ALL_ACTIVE - {
        ("Max", "Alpha"),
        ("Lea", "Beta"),
    }
    # an offset other than UTC means the same instant
    shifted = (now + timedelta(days=5)).astimezone().isoformat()
    assert await who(graphql_client, token, {"dueAfter": shifted}) == {("Otto", "Alpha")}


async def test_ended_enrollments_only_when_asked(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    token = seeded.world.admin.token
    assert await who(graphql_client, token, {"includeEnded": True}) == ALL_ACTIVE | {
        ("Ned", "Alpha")
    }
    assert await who(graphql_client, token, {"learnerId": seeded.ned.id}) == set()


async def test_deactivated_learners_only_when_asked(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    token = seeded.world.admin.token
    assert await who(graphql_client, token, {"learnerActive": False}) == {("Dee", "Alpha")}
    assert await who(graphql_client, token, {"learnerActive": None}) == ALL_ACTIVE | {
        ("Dee", "Alpha")
    }
    assert await who(graphql_client, token, {"learnerActive": True}) == ALL_ACTIVE


async def test_conditions_combine(graphql_client: GraphQLClient, seeded: Seeded) -> None:
    token = seeded.world.admin.token
    found = await who(
        graphql_client,
        token,
        {
            "certificationId": seeded.gid(seeded.alpha),
            "managerId": seeded.world.manager.id,
            "status": ["ENROLLED"],
            "overdue": True,
            "includeEnded": True,
            "learnerActive": None,
        },
    )
    assert found == {("Lea", "Alpha")}


# -- scope ------------------------------------------------------------------------------------


async def test_a_manager_sees_their_team_only(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    token = seeded.world.manager.token
    team = {("Lea", "Alpha"), ("Lea", "Beta"), ("Max", "Alpha")}
    assert await who(graphql_client, token) == team
    assert await who(graphql_client, token, {"learnerId": seeded.world.other.id}) == set()
    assert await who(graphql_client, token, {"learnerId": seeded.rita.id}) == set()
    assert await who(graphql_client, token, {"managerId": seeded.mia.id}) == set()
    assert await who(graphql_client, token, {"status": ["COMPLETED"]}) == set()
    assert await who(graphql_client, token, {"learnerActive": None, "includeEnded": True}) == (
        team | {("Dee", "Alpha"), ("Ned", "Alpha")}
    )
    # the other manager's team is theirs
    assert await who(graphql_client, seeded.mia.token) == {("Rita", "Alpha")}


async def test_a_learner_sees_their_own_only(graphql_client: GraphQLClient, seeded: Seeded) -> None:
    lea = seeded.world.learner.token
    assert await who(graphql_client, lea) == {("Lea", "Alpha"), ("Lea", "Beta")}
    assert await who(graphql_client, lea, {"learnerId": seeded.world.other.id}) == set()
    assert await who(graphql_client, lea, {"managerId": seeded.world.manager.id}) == {
        ("Lea", "Alpha"),
        ("Lea", "Beta"),
    }
    assert await who(graphql_client, seeded.world.other.token) == {
        ("Otto", "Alpha"),
        ("Otto", "Beta"),
    }


# -- pages ------------------------------------------------------------------------------------


async def test_keyset_pages_walk_every_enrollment_once_in_id_order(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    token = seeded.world.admin.token
    everything = {"includeEnded": True, "learnerActive": None}
    seen: list[str] = []
    after = None
    flags = []
    while True:
        page = await listing(graphql_client, token, everything, first=3, after=after)
        assert page["totalCount"] == 8
        seen += [edge["node"]["id"] for edge in page["edges"]]
        info = page["pageInfo"]
        flags.append((len(page["edges"]), info["hasNextPage"], info["hasPreviousPage"]))
        if not info["hasNextPage"]:
            break
        assert info["endCursor"] == page["edges"][-1]["cursor"]
        after = info["endCursor"]
    assert flags == [(3, True, False), (3, True, True), (2, False, True)]
    ids = sorted(await Enrollment.all().values_list("id", flat=True))
    assert seen == [encode_id("Enrollment", pk) for pk in ids]
    # an empty page still says how many there are
    empty = await listing(graphql_client, token, everything, first=0)
    assert (empty["edges"], empty["totalCount"], empty["pageInfo"]["hasNextPage"]) == ([], 8, True)


async def test_the_next_page_does_not_shift_when_rows_before_it_leave(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    token = seeded.world.admin.token
    first = await listing(graphql_client, token, first=2)
    cursor = first["pageInfo"]["endCursor"]
    rest_before = await listing(graphql_client, token, after=cursor)
    gone = decode_id(first["edges"][0]["node"]["id"], "Enrollment")
    await Enrollment.filter(id=gone).update(ended_at=seeded.now)
    rest_after = await listing(graphql_client, token, after=cursor)
    assert [e["node"]["id"] for e in rest_after["edges"]] == [
        e["node"]["id"] for e in rest_before["edges"]
    ]
    assert rest_after["totalCount"] == rest_before["totalCount"] - 1


# -- bad input: clear errors ------------------------------------------------------------------


async def error_of(
    client: GraphQLClient, token: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    result = await client.run(query, variables, token=token)
    assert result["data"] is None or all(v is None for v in result["data"].values()), result
    [error] = result["errors"]
    return cast(dict[str, Any], error)


@pytest.mark.parametrize(
    ("filter", "field", "says"),
    [
        ({"certificationId": "Alpha"}, "certificationId", 'filter.certificationId: "Alpha" is '),
        ({"learnerId": "42"}, "learnerId", "is not a User ID"),
        ({"managerId": encode_id("Course", 1)}, "managerId", "is a Course ID, not a User ID"),
        ({"certificationId": encode_id("User", 1)}, "certificationId", "is a User ID, not a"),
    ],
)
async def test_a_filter_id_of_another_type_is_invalid_input_naming_the_field(
    graphql_client: GraphQLClient,
    seeded: Seeded,
    filter: dict[str, Any],
    field: str,
    says: str,
) -> None:
    error = await error_of(
        graphql_client, seeded.world.admin.token, ENROLLMENTS, {"filter": filter}
    )
    assert error["extensions"]["code"] == "INVALID_INPUT"
    assert error["extensions"]["field"] == ["filter", field]
    assert says in error["message"]
    assert HINT in error["message"]


async def test_a_well_formed_id_of_nothing_selects_nothing(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    token = seeded.world.admin.token
    missing = {
        "certificationId": encode_id("Certification", 999_999),
        "learnerId": encode_id("User", 999_999),
    }
    for key, value in missing.items():
        assert await who(graphql_client, token, {key: value}) == set()


@pytest.mark.parametrize(
    ("variables", "field", "says"),
    [
        ({"filter": {"status": []}}, ["filter", "status"], "at least one EnrollmentStatus"),
        (
            {"filter": {"dueAfter": "2026-03-02T00:00:00Z", "dueBefore": "2026-03-01T00:00:00Z"}},
            ["filter", "dueAfter"],
            "dueAfter must not be after dueBefore",
        ),
        ({"first": 101}, ["first"], "first must be between 0 and 100"),
        ({"first": -1}, ["first"], "first must be between 0 and 100"),
        ({"after": "not-a-cursor"}, ["after"], "not a cursor of this list"),
    ],
)
async def test_bad_values_are_invalid_input_naming_the_field(
    graphql_client: GraphQLClient,
    seeded: Seeded,
    variables: dict[str, Any],
    field: list[str],
    says: str,
) -> None:
    error = await error_of(graphql_client, seeded.world.admin.token, ENROLLMENTS, variables)
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("INVALID_INPUT", field)
    assert says in error["message"]


async def test_a_cursor_of_another_list_is_refused(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    token = seeded.world.admin.token
    users = await graphql_client.data("{ users(first: 1) { pageInfo { endCursor } } }", token=token)
    error = await error_of(
        graphql_client, token, ENROLLMENTS, {"after": users["users"]["pageInfo"]["endCursor"]}
    )
    assert error["extensions"]["field"] == ["after"]


async def test_an_unknown_status_or_a_naive_due_date_is_refused_before_anything_runs(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    token = seeded.world.admin.token
    for bad in ({"status": ["DONE"]}, {"dueBefore": "2026-03-01T00:00:00"}):
        result = await graphql_client.run(ENROLLMENTS, {"filter": bad}, token=token)
        assert "data" not in result or result["data"] is None
        [error] = result["errors"]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    result = await graphql_client.run(
        ENROLLMENTS, {"filter": {"dueBefore": "2026-03-01T00:00:00"}}, token=token
    )
    assert "needs a UTC offset" in result["errors"][0]["message"]


async def test_the_domain_refuses_a_naive_due_date_too(seeded: Seeded) -> None:
    with pytest.raises(InvalidInput) as refused:
        await enrollment_search.search_enrollments(
            SYSTEM, EnrollmentFilter(due_before=datetime(2026, 3, 1))
        )
    assert refused.value.field == ("filter", "dueBefore")


# -- statements: constant in the page size ----------------------------------------------------

FULL_PAGE = """
query($filter: EnrollmentFilter, $first: Int) {
  enrollments(filter: $filter, first: $first) {
    totalCount
    edges { node {
      status overdue completedLate progressPercent dueAt
      learner { name manager { name } }
      certification { name courses { mandatory course { name } } }
      courses { percent } pendingCourses { percent } awards { cycle } evidence { id }
    } }
  }
}"""


async def many_enrollments(world: World, certifications: int) -> None:
    """`certifications` certifications, each assigned to the world's four people, some with
    progress, some completed."""
    people = [world.learner, world.other, world.manager, world.admin]
    for i in range(certifications):
        cert = await make_certification(f"Bulk {i:02}", world.course_ids[i % 2 : i % 2 + 2])
        await enrollments.assign_certification(
            SYSTEM, cert, [p.user.id for p in people], clock.now() + timedelta(days=i - 5)
        )
    await enrollments.record_course_progress(
        SYSTEM, course_id=world.course_ids[1], learner_id=world.learner.user.id, completed=True
    )
    await enrollments.record_course_progress(
        SYSTEM, course_id=world.course_ids[0], learner_id=world.other.user.id, percent=50
    )


async def statements(
    client: GraphQLClient,
    counter: QueryCounter,
    token: str,
    first: int,
    filter: dict[str, Any] | None = None,
) -> tuple[int, int, list[str]]:
    await client.data("{ viewer { id } }", token=token)  # token bookkeeping happens here
    counter.reset()
    data = await client.data(FULL_PAGE, {"first": first, "filter": filter}, token=token)
    return len(data["enrollments"]["edges"]), counter.count, list(counter.statements)


@pytest.mark.parametrize(
    ("who_", "filter", "small", "large"),
    [
        ("admin", None, 5, 48),
        ("admin", {"status": ["ENROLLED", "STARTED", "COMPLETED"], "overdue": False}, 5, 20),
        ("manager", None, 3, 24),
    ],
    ids=["admin", "admin-filtered", "manager"],
)
async def test_statements_do_not_grow_with_the_page(
    graphql_client: GraphQLClient,
    world: World,
    sql_queries: QueryCounter,
    who_: str,
    filter: dict[str, Any] | None,
    small: int,
    large: int,
) -> None:
    await many_enrollments(world, 12)
    token = getattr(world, who_).token
    small_edges, small_count, small_statements = await statements(
        graphql_client, sql_queries, token, small, filter
    )
    large_edges, large_count, large_statements = await statements(
        graphql_client, sql_queries, token, large, filter
    )
    assert (small_edges, large_edges) == (small, large)
    assert small_count == large_count, (small_statements, large_statements)
    # the token, the count, the page, the view's reads (links, progress, awards, evidence),
    # the learners and their managers
    assert large_count <= 9, large_statements


# -- streaming the same search (the export) ---------------------------------------------------


async def test_iter_enrollments_streams_what_the_pages_list(
    seeded: Seeded, sql_queries: QueryCounter
) -> None:
    admin = seeded.world.admin.actor
    filter = EnrollmentFilter(include_ended=True, learner_active=None)
    sql_queries.reset()
    batches = [batch async for batch in iter_enrollments(admin, filter, batch_size=3)]
    assert [len(b) for b in batches] == [3, 3, 2]
    assert sql_queries.count == 3  # one statement a batch, no count
    streamed = [row.id for batch in batches for row in batch]
    page = await enrollment_search.search_enrollments(admin, filter, paging=PageRequest(first=100))
    assert streamed == [row.id for row in page.items] == sorted(streamed)
    # a manager's stream is their team's, as their page is
    manager = seeded.world.manager.actor
    mine = [row async for batch in iter_enrollments(manager) for row in batch]
    assert {row.learner_id for row in mine} == {
        seeded.world.learner.user.id,
        seeded.world.manager.user.id,
    }
    exact = [b async for b in iter_enrollments(admin, filter, batch_size=4)]
    assert [len(b) for b in exact] == [4, 4]
    with pytest.raises(InvalidInput):
        [b async for b in iter_enrollments(admin, filter, batch_size=0)]


# -- users: managerId, role, active; User.reports ---------------------------------------------

USERS = """
query($managerId: ID, $role: Role, $active: Boolean, $first: Int) {
  users(managerId: $managerId, role: $role, active: $active, first: $first) {
    totalCount edges { node { name } }
  }
}"""


async def names(
    client: GraphQLClient, token: str, query: str, variables: dict[str, Any], path: list[str]
) -> list[str]:
    data: Any = await client.data(query, variables, token=token)
    for key in path:
        data = data[key]
    assert data["totalCount"] == len(data["edges"])
    return [edge["node"]["name"] for edge in data["edges"]]


async def test_users_by_manager_role_and_activity(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    token = seeded.world.admin.token
    max_id = seeded.world.manager.id

    async def users(**variables: Any) -> list[str]:
        return await names(graphql_client, token, USERS, variables, ["users"])

    assert await users(managerId=max_id) == ["Lea Learner", "Ned Ended"]
    assert await users(managerId=max_id, active=False) == ["Dee Gone"]
    assert await users(managerId=max_id, active=None) == ["Dee Gone", "Lea Learner", "Ned Ended"]
    assert await users(managerId=seeded.mia.id) == ["Rita Report"]
    assert await users(role="MANAGER") == ["Max Manager", "Mia Manager"]
    assert await users(role="LEARNER", managerId=seeded.mia.id) == ["Rita Report"]
    assert await users(role="MANAGER", managerId=max_id) == []
    assert "Dee Gone" not in await users()
    assert await users(active=False) == ["Dee Gone"]
    assert await users(managerId=encode_id("User", 999_999)) == []


async def test_users_filters_keep_to_what_the_viewer_sees(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    max_token = seeded.world.manager.token

    async def users(token: str, **variables: Any) -> list[str]:
        return await names(graphql_client, token, USERS, variables, ["users"])

    assert await users(max_token, managerId=seeded.mia.id) == []
    assert await users(max_token, managerId=seeded.world.manager.id) == [
        "Lea Learner",
        "Ned Ended",
    ]
    # a learner sees themselves and their manager only
    assert await users(seeded.world.learner.token, managerId=seeded.world.manager.id) == [
        "Lea Learner"
    ]


async def test_users_refuse_a_manager_id_of_another_type(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    error = await error_of(
        graphql_client,
        seeded.world.admin.token,
        USERS,
        {"managerId": encode_id("Certification", seeded.alpha)},
    )
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "INVALID_INPUT",
        ["managerId"],
    )
    assert "is a Certification ID, not a User ID" in error["message"]


REPORTS = """
query($id: ID!, $active: Boolean, $first: Int, $after: String) {
  user(id: $id) {
    reports(active: $active, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage endCursor }
      edges { node { name manager { name } } }
    }
  }
}"""


async def test_reports_are_a_managers_direct_reports_by_name(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    token = seeded.world.admin.token
    max_id = seeded.world.manager.id

    async def reports(**variables: Any) -> list[str]:
        variables.setdefault("id", max_id)
        return await names(graphql_client, token, REPORTS, variables, ["user", "reports"])

    assert await reports() == ["Lea Learner", "Ned Ended"]
    assert await reports(active=False) == ["Dee Gone"]
    assert await reports(active=None) == ["Dee Gone", "Lea Learner", "Ned Ended"]
    assert await reports(id=seeded.mia.id) == ["Rita Report"]
    assert await reports(id=seeded.world.learner.id) == []
    # the manager's own view
    viewer = await graphql_client.data(
        "{ viewer { reports { totalCount edges { node { name } } } } }",
        token=seeded.world.manager.token,
    )
    assert [e["node"]["name"] for e in viewer["viewer"]["reports"]["edges"]] == [
        "Lea Learner",
        "Ned Ended",
    ]


async def test_reports_page_by_name(graphql_client: GraphQLClient, seeded: Seeded) -> None:
    token = seeded.world.admin.token
    seen: list[str] = []
    after = None
    while True:
        data = await graphql_client.data(
            REPORTS,
            {"id": seeded.world.manager.id, "active": None, "first": 2, "after": after},
            token=token,
        )
        page = data["user"]["reports"]
        assert page["totalCount"] == 3
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [edge["node"]["name"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ["Dee Gone", "Lea Learner", "Ned Ended"]
    error = await error_of(
        graphql_client, token, REPORTS, {"id": seeded.world.manager.id, "after": "x"}
    )
    assert error["extensions"]["field"] == ["after"]


async def test_reports_show_only_who_the_viewer_may_see(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    """A learner looking at their manager sees themselves among the reports, no one else."""
    data = await graphql_client.data(
        "{ viewer { manager { name reports { totalCount edges { node { name } } } } } }",
        token=seeded.world.learner.token,
    )
    manager = data["viewer"]["manager"]
    assert manager["name"] == "Max Manager"
    assert manager["reports"]["totalCount"] == 1
    assert [e["node"]["name"] for e in manager["reports"]["edges"]] == ["Lea Learner"]


MANAGERS_AND_REPORTS = """
query($first: Int!) {
  users(role: MANAGER, first: $first) {
    edges { node { name reports(first: 5) { totalCount edges { node { name } } } } }
  }
}"""


async def test_reports_under_a_list_cost_the_same_for_2_managers_as_for_8(
    graphql_client: GraphQLClient, world: World, sql_queries: QueryCounter
) -> None:
    for i in range(7):
        boss = await make_person(f"Boss {i}", Role.MANAGER)
        for j in range(3):
            await make_person(f"Staff {i}{j}", Role.LEARNER, manager=boss.user)
    token = world.admin.token
    counts = []
    for first in (2, 8):
        await graphql_client.data("{ viewer { id } }", token=token)
        sql_queries.reset()
        data = await graphql_client.data(MANAGERS_AND_REPORTS, {"first": first}, token=token)
        nodes = [edge["node"] for edge in data["users"]["edges"]]
        assert len(nodes) == first
        assert all(node["reports"]["totalCount"] in (1, 3) for node in nodes)
        counts.append(sql_queries.count)
    assert counts[0] == counts[1], sql_queries.statements
    boss0 = next(node for node in nodes if node["name"] == "Boss 0")
    assert [e["node"]["name"] for e in boss0["reports"]["edges"]] == [
        "Staff 00",
        "Staff 01",
        "Staff 02",
    ]


# -- User.certifications(status:, overdue:) ---------------------------------------------------

CERTIFICATIONS_OF = """
query($id: ID!, $status: [EnrollmentStatus!], $overdue: Boolean) {
  user(id: $id) {
    certifications(status: $status, overdue: $overdue) {
      totalCount edges { node { status overdue certification { name } } }
    }
  }
}"""


async def test_a_users_certifications_by_status_and_overdue(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    token = seeded.world.admin.token
    lea = seeded.world.learner.id

    async def certifications(**variables: Any) -> list[tuple[str, str]]:
        data = await graphql_client.data(CERTIFICATIONS_OF, {"id": lea, **variables}, token=token)
        found = data["user"]["certifications"]
        assert found["totalCount"] == len(found["edges"])
        return [(e["node"]["certification"]["name"], e["node"]["status"]) for e in found["edges"]]

    assert await certifications(status=["EXPIRED"]) == [("Beta", "EXPIRED")]
    assert await certifications(status=["EXPIRED", "ENROLLED"]) == [
        ("Alpha", "ENROLLED"),
        ("Beta", "EXPIRED"),
    ]
    assert await certifications(overdue=True) == [("Alpha", "ENROLLED")]
    assert await certifications(overdue=False) == [("Beta", "EXPIRED")]
    assert await certifications(status=["COMPLETED"]) == []
    error = await error_of(graphql_client, token, CERTIFICATIONS_OF, {"id": lea, "status": []})
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "INVALID_INPUT",
        ["status"],
    )


async def test_certifications_filters_under_a_list_share_one_listing(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    data = await graphql_client.data(
        "{ users(first: 50) { edges { node { name "
        "done: certifications(status: [COMPLETED]) { totalCount } "
        "late: certifications(overdue: true) { totalCount } } } } }",
        token=seeded.world.admin.token,
    )
    counts = {
        e["node"]["name"].split()[0]: (
            e["node"]["done"]["totalCount"],
            e["node"]["late"]["totalCount"],
        )
        for e in data["users"]["edges"]
    }
    assert counts["Rita"] == (1, 0)
    assert counts["Otto"] == (1, 0)
    assert counts["Lea"] == (0, 1)
    assert counts["Max"] == (0, 0)


# -- evidenceReviewQueue(certificationId:, learnerId:) ----------------------------------------

QUEUE = """
query($certificationId: ID, $learnerId: ID) {
  evidenceReviewQueue(certificationId: $certificationId, learnerId: $learnerId) {
    totalCount
    edges { node { enrollment { learner { name } certification { name } } } }
  }
}"""


async def test_the_review_queue_by_certification_and_learner(
    graphql_client: GraphQLClient, world: World
) -> None:
    mia = await make_person("Mia Manager", Role.MANAGER)
    rita = await make_person("Rita Report", Role.LEARNER, manager=mia.user)
    proofs = {}
    for name in ("Gamma", "Delta"):
        proofs[name] = await make_certification(
            name, [], kind=CertificationKind.EXTERNAL, issuer="Examiners"
        )
        for person in (world.learner, rita):
            enrollment = await enrollments.start_certification(person.actor, proofs[name])
            await add_evidence(enrollment.id, EvidenceStatus.PENDING)
    gamma = encode_id("Certification", proofs["Gamma"])

    async def queue(token: str, **variables: Any) -> set[tuple[str, str]]:
        data = await graphql_client.data(QUEUE, variables, token=token)
        found = data["evidenceReviewQueue"]
        assert found["totalCount"] == len(found["edges"])
        return {
            (
                e["node"]["enrollment"]["learner"]["name"].split()[0],
                e["node"]["enrollment"]["certification"]["name"],
            )
            for e in found["edges"]
        }

    admin = world.admin.token
    assert len(await queue(admin)) == 4
    assert await queue(admin, certificationId=gamma) == {("Lea", "Gamma"), ("Rita", "Gamma")}
    assert await queue(admin, learnerId=rita.id) == {("Rita", "Gamma"), ("Rita", "Delta")}
    assert await queue(admin, certificationId=gamma, learnerId=rita.id) == {("Rita", "Gamma")}
    # a manager's queue stays their reports'
    manager = world.manager.token
    assert await queue(manager) == {("Lea", "Gamma"), ("Lea", "Delta")}
    assert await queue(manager, certificationId=gamma) == {("Lea", "Gamma")}
    assert await queue(manager, learnerId=rita.id) == set()
    for variables, field in (
        ({"certificationId": "Gamma"}, ["certificationId"]),
        ({"learnerId": gamma}, ["learnerId"]),
    ):
        error = await error_of(graphql_client, admin, QUEUE, variables)
        assert (error["extensions"]["code"], error["extensions"]["field"]) == (
            "INVALID_INPUT",
            field,
        )
        assert HINT in error["message"]


# -- completedLate ----------------------------------------------------------------------------


async def test_completed_late_says_whether_the_award_came_after_the_due_date(
    graphql_client: GraphQLClient, seeded: Seeded
) -> None:
    found = await listing(graphql_client, seeded.world.admin.token)
    late = {
        (e["node"]["learner"]["name"].split()[0], e["node"]["certification"]["name"]): e["node"][
            "completedLate"
        ]
        for e in found["edges"]
    }
    assert late == {
        ("Rita", "Alpha"): True,  # due 5 days ago, completed now
        ("Otto", "Beta"): False,  # due in 3 days, completed now
        ("Lea", "Alpha"): None,  # not completed
        ("Otto", "Alpha"): None,
        ("Max", "Alpha"): None,
        ("Lea", "Beta"): None,  # expired: no award in force
    }


async def test_completed_on_time_without_a_due_date_is_not_late(
    graphql_client: GraphQLClient, world: World
) -> None:
    cert = await make_certification("Open", [world.course_ids[0]])
    await enrollments.start_certification(world.learner.actor, cert)
    await enrollments.record_course_progress(
        world.learner.actor, course_id=world.course_ids[0], completed=True
    )
    found = await listing(graphql_client, world.learner.token)
    [edge] = found["edges"]
    assert (edge["node"]["status"], edge["node"]["dueAt"], edge["node"]["completedLate"]) == (
        "COMPLETED",
        None,
        False,
    )


def _view(
    status: EnrollmentStatus,
    due_at: datetime | None,
    awards: list[tuple[datetime, datetime | None]],
) -> EnrollmentView:
    records = [
        AwardRecord(i + 1, 1, i + 1, at, until, at.date(), until.date() if until else None)
        for i, (at, until) in enumerate(awards)
    ]
    view = SimpleNamespace(status=status, awards=records, enrollment=SimpleNamespace(due_at=due_at))
    return cast(EnrollmentView, view)


def test_a_renewal_is_late_only_after_the_previous_award_expired() -> None:
    t = datetime(2026, 1, 1, tzinfo=clock.now().tzinfo)
    year = timedelta(days=365)
    first = (t, t + year)
    completed = EnrollmentStatus.COMPLETED
    # first award: against dueAt
    assert completed_late(_view(completed, t - timedelta(days=1), [first])) is True
    assert completed_late(_view(completed, t, [first])) is False
    assert completed_late(_view(completed, None, [first])) is False
    # a renewal: against the previous award's expiry, whatever the (old) due date
    on_time = (t + year - timedelta(days=10), t + 2 * year)
    lapsed = (t + year + timedelta(days=10), t + 2 * year)
    assert completed_late(_view(completed, t - timedelta(days=1), [first, on_time])) is False
    assert completed_late(_view(completed, t - timedelta(days=1), [first, lapsed])) is True
    # ... or against a later due date an admin set for it
    extended = t + year + timedelta(days=30)
    assert completed_late(_view(completed, extended, [first, lapsed])) is False
    # nothing in force: no answer
    assert completed_late(_view(EnrollmentStatus.EXPIRED, None, [first])) is None
    assert completed_late(_view(EnrollmentStatus.STARTED, t, [])) is None


def test_the_filter_is_checked_in_the_domain() -> None:
    check = enrollment_search.check_filter
    check(EnrollmentFilter())
    with pytest.raises(InvalidInput) as refused:
        check(EnrollmentFilter(status=()), ["input"])
    assert refused.value.field == ("input", "status")


async def test_the_cli_operator_sees_everyone(seeded: Seeded) -> None:
    page = await enrollment_search.search_enrollments(Actor.system(), paging=PageRequest(first=100))
    assert page.total_count == 6
