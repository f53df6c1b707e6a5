"""No N+1: the learner's list and the catalog cost the same number of SQL statements for a
page of 5 as for a page of 50, and every relation under a list (users' certifications
included) the same for 2 rows as for 20 (DataLoaders per request, one batched call each)."""

from __future__ import annotations

from typing import Any

import pytest

from gql.api.ids import encode_id
from gql.domain import enrollments
from gql.store.models import CertificationKind, Enrollment, EvidenceStatus, Role
from tests.api.conftest import (
    SYSTEM,
    GraphQLClient,
    Person,
    World,
    add_evidence,
    make_certification,
    make_person,
)
from tests.conftest import ON_POSTGRES, QueryCounter

# A page of 50 of the learner's list or the catalog, with courses, statuses, the viewer's
# progress and the player queue: 6 statements on both databases, whatever the page size.
MAX_STATEMENTS = 6
# recordCourseProgress completing a certification: the token, the learner lock, the
# evaluation's four reads (no awards to read: the enrollment has none yet), the progress,
# award and audit inserts, the enrollment update, and one insert of its two events into the
# outbox (the learner's and the course's names are already in hand: the viewer, the links);
# on PostgreSQL also the NOTIFY that wakes the live feeds (docs/events.md, "Live updates")
RECORD_STATEMENTS = 12 if ON_POSTGRES else 11

LEARNER_LIST = """
query Mine($first: Int!) {
  viewer {
    certifications(first: $first) {
      edges { node {
        status progressPercent
        certification { name courses { mandatory course { name } } }
        pendingCourses { percent course { name } }
        courses { status course { name } }
      } }
    }
  }
}"""

CATALOG = """
query Catalog($first: Int!) {
  certifications(first: $first) {
    edges { node { name courses { course { name viewerProgress { percent } } } } }
  }
}"""


async def seed(world: World, count: int) -> None:
    """`count` certifications of 3 courses each, all started by the learner, some progress."""
    learner = world.learner.actor
    for i in range(count):
        course_ids = [world.course_ids[(i + k) % len(world.course_ids)] for k in range(3)]
        cert = await make_certification(f"Cert {i:03}", course_ids, mandatory=[True, True, False])
        await enrollments.start_certification(learner, cert)
    for course_id in world.course_ids[:2]:
        await enrollments.record_course_progress(learner, course_id=course_id, percent=40)


async def statements_for(
    graphql_client: GraphQLClient, counter: QueryCounter, token: str, query: str, first: int
) -> tuple[int, int]:
    """(edges returned, SQL statements made) for one request, after a warm-up request."""
    await graphql_client.data("{ viewer { id } }", token=token)  # token bookkeeping happens here
    counter.reset()
    data = await graphql_client.data(query, {"first": first}, token=token)
    root = data["viewer"]["certifications"] if "viewer" in data else data["certifications"]
    return len(root["edges"]), counter.count


@pytest.mark.parametrize("query", [LEARNER_LIST, CATALOG], ids=["learner-list", "catalog"])
async def test_statements_do_not_grow_with_the_page(
    graphql_client: GraphQLClient, world: World, sql_queries: QueryCounter, query: str
) -> None:
    await seed(world, 50)
    token = world.learner.token

    small_edges, small = await statements_for(graphql_client, sql_queries, token, query, 5)
    small_statements = list(sql_queries.statements)
    large_edges, large = await statements_for(graphql_client, sql_queries, token, query, 50)

    assert (small_edges, large_edges) == (5, 50)
    assert small == large, (small_statements, sql_queries.statements)


@pytest.mark.parametrize(
    "query",
    [
        LEARNER_LIST,
        CATALOG,
    ],
    ids=["learner-list", "catalog"],
)
async def test_a_page_of_50_costs_at_most_6_statements(
    graphql_client: GraphQLClient, world: World, sql_queries: QueryCounter, query: str
) -> None:
    await seed(world, 50)
    edges, statements = await statements_for(
        graphql_client, sql_queries, world.learner.token, query, 50
    )
    assert edges == 50
    assert statements <= MAX_STATEMENTS, sql_queries.statements


async def test_the_learner_list_really_carries_courses_and_progress(
    graphql_client: GraphQLClient, world: World
) -> None:
    await seed(world, 3)
    data = await graphql_client.data(LEARNER_LIST, {"first": 3}, token=world.learner.token)
    nodes = [edge["node"] for edge in data["viewer"]["certifications"]["edges"]]
    assert len(nodes) == 3
    for node in nodes:
        assert len(node["certification"]["courses"]) == 3
        assert len(node["courses"]) == 3
        assert node["status"] == "STARTED"
    percents = sorted(course["percent"] for node in nodes for course in node["pendingCourses"])
    assert 40 in percents and 0 in percents


RECORD = """
mutation Record($course: ID!) {
  recordCourseProgress(input: {courseId: $course, completed: true}) {
    progress { status percent course { id name } }
    enrollments { status progressPercent }
    errors { code }
  }
}"""


async def test_recording_the_completing_course_costs_a_fixed_number_of_statements(
    graphql_client: GraphQLClient, world: World, sql_queries: QueryCounter
) -> None:
    """The payload's course comes from the links the evaluation read, not a query of its own."""
    learner = world.learner.actor
    first, last = world.course_ids[:2]
    cert = await make_certification("Two", [first, last])
    await enrollments.start_certification(learner, cert)
    await enrollments.record_course_progress(learner, course_id=first, completed=True)
    await graphql_client.data("{ viewer { id } }", token=world.learner.token)  # token bookkeeping
    sql_queries.reset()

    data = await graphql_client.data(
        RECORD, {"course": encode_id("Course", last)}, token=world.learner.token
    )

    payload = data["recordCourseProgress"]
    assert payload["errors"] == []
    assert payload["enrollments"] == [{"status": "COMPLETED", "progressPercent": 100}]
    assert payload["progress"]["course"]["id"] == encode_id("Course", last)
    assert payload["progress"]["status"] == "COMPLETED"
    assert sql_queries.count == RECORD_STATEMENTS, sql_queries.statements
    assert not any('FROM "course"' in s for s in sql_queries.statements)


async def test_a_course_no_enrollment_counts_is_read_for_the_payload(
    graphql_client: GraphQLClient, world: World
) -> None:
    course_id = world.course_ids[-1]
    data = await graphql_client.data(
        RECORD, {"course": encode_id("Course", course_id)}, token=world.learner.token
    )
    payload = data["recordCourseProgress"]
    assert payload["errors"] == [] and payload["enrollments"] == []
    assert payload["progress"]["course"]["id"] == encode_id("Course", course_id)
    assert payload["progress"]["course"]["name"]


# -- every nested list field: the same statements for 2 rows as for 20 --------------------

USERS_DEEP = """
query People($first: Int!) {
  users(first: $first, role: LEARNER) {
    edges { node {
      name
      manager { name }
      certifications(first: 5) {
        totalCount
        edges { node {
          status learner { name }
          certification { name courses { course { name viewerProgress { percent } } }
                          viewerEnrollment { status } }
          courses { percent course { name } }
          pendingCourses { percent }
          awards { cycle }
          evidence { status reviewedBy { name } }
        } }
      }
    } }
  }
}"""

REVIEW_QUEUE = """
query Queue($first: Int!) {
  evidenceReviewQueue(first: $first) {
    edges { node { status reviewedBy { name }
      enrollment { status learner { name manager { name } } certification { name } } } }
  }
}"""

AUDIT_LOG = """
query Log($first: Int!) {
  auditEvents(first: $first, action: "createUser") { edges { node { action actor { name } } } }
}"""

CATALOG_DEEP = """
query Catalog($first: Int!) {
  certifications(first: $first) {
    edges { node { name viewerEnrollment { status courses { percent } }
                   courses { course { name viewerProgress { percent } } } } }
  }
}"""


async def people(world: World, count: int) -> list[Person]:
    """`count` learners (reporting to the manager), each enrolled in two certifications, one
    with pending evidence reviewed by nobody yet, some progress."""
    external = await make_certification(
        "Proof", [], kind=CertificationKind.EXTERNAL, issuer="Examiners"
    )
    internal = await make_certification("Courses", world.course_ids[:2])
    for i in range(count - 2):  # a catalog of `count` certifications
        await make_certification(f"Extra {i:02}", world.course_ids[2:])
    made = []
    for i in range(count):
        person = await make_person(f"Learner {i:02}", Role.LEARNER, manager=world.manager.user)
        await enrollments.assign_certification(SYSTEM, internal, [person.user.id], None)
        await enrollments.start_certification(person.actor, external)
        await enrollments.record_course_progress(
            person.actor, course_id=world.course_ids[0], percent=30
        )
        enrollment = await Enrollment.get(learner_id=person.user.id, certification_id=external)
        await add_evidence(enrollment.id, EvidenceStatus.PENDING)
        made.append(person)
    return made


async def count_statements(
    graphql_client: GraphQLClient, counter: QueryCounter, token: str, query: str, first: int
) -> tuple[dict[str, Any], int]:
    await graphql_client.data("{ viewer { id } }", token=token)  # token bookkeeping
    counter.reset()
    data = await graphql_client.data(query, {"first": first}, token=token)
    return data, counter.count


def _edges(data: dict[str, Any]) -> list[Any]:
    (root,) = data.values()
    edges: list[Any] = root["edges"]
    return edges


@pytest.mark.parametrize(
    ("query", "viewer"),
    [
        (USERS_DEEP, "admin"),
        (USERS_DEEP, "manager"),
        (REVIEW_QUEUE, "manager"),
        (AUDIT_LOG, "admin"),
        (CATALOG_DEEP, "admin"),
    ],
    ids=["users-admin", "users-manager", "review-queue", "audit-log", "catalog"],
)
async def test_nested_lists_cost_the_same_for_2_rows_as_for_20(
    graphql_client: GraphQLClient,
    world: World,
    sql_queries: QueryCounter,
    query: str,
    viewer: str,
) -> None:
    """`users { certifications }` and every other relation under a list go through a
    DataLoader: the statement count does not grow with the rows."""
    await people(world, 20)
    token = getattr(world, viewer).token
    small, small_count = await count_statements(graphql_client, sql_queries, token, query, 2)
    small_statements = list(sql_queries.statements)
    large, large_count = await count_statements(graphql_client, sql_queries, token, query, 20)
    assert (len(_edges(small)), len(_edges(large))) == (2, 20)
    assert small_count == large_count, (small_statements, sql_queries.statements)


async def test_each_user_gets_their_own_certifications(
    graphql_client: GraphQLClient, world: World
) -> None:
    made = await people(world, 3)
    data = await graphql_client.data(USERS_DEEP, {"first": 10}, token=world.admin.token)
    by_name = {e["node"]["name"]: e["node"] for e in data["users"]["edges"]}
    for person in made:
        node = by_name[person.user.name]
        lists = node["certifications"]
        assert lists["totalCount"] == 2
        assert {e["node"]["learner"]["name"] for e in lists["edges"]} == {person.user.name}
        assert {e["node"]["certification"]["name"] for e in lists["edges"]} == {"Proof", "Courses"}
    # a learner the manager does not manage shows no list to the manager (visibility kept)
    other = await graphql_client.data(
        "query($id: ID!) { user(id: $id) { certifications { totalCount } } }",
        {"id": world.other.id},
        token=world.manager.token,
    )
    assert other["user"] is None or other["user"]["certifications"]["totalCount"] == 0
