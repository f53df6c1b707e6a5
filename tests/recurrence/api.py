"""GraphQL documents and small helpers the recurrence tests share (everything over HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gql.api.ids import encode_id
from tests.api.conftest import GraphQLClient, Person, World

ENROLLMENT_FIELDS = """
  id status cycle progressPercent enrolledAt startedAt dueAt overdue completedAt expiresAt
  certification { name }
  awards { cycle awardedAt expiresAt }
  courses { status percent startedAt completedAt course { id } }
  pendingCourses { status percent course { id } }
"""

VIEWER_ENROLLMENT = (
    "query E($id: ID!) { certification(id: $id) { viewerEnrollment {" + ENROLLMENT_FIELDS + "} } }"
)

ENROLLMENT_NODE = (
    "query N($id: ID!) { node(id: $id) { ... on Enrollment {" + ENROLLMENT_FIELDS + "} } }"
)

MY_LIST = """
query L($pending: Boolean!, $sort: CertificationSort!) {
  viewer { certifications(pending: $pending, sort: $sort, first: 100) {
    totalCount edges { node { status overdue cycle certification { name } } }
  } }
}"""

PROGRESS = (
    "mutation P($input: RecordCourseProgressInput!) { recordCourseProgress(input: $input) {"
    " progress { status percent startedAt completedAt updatedAt }"
    " enrollments {" + ENROLLMENT_FIELDS + "} errors { code message field } } }"
)

ASSIGN = (
    "mutation A($cert: ID!, $learners: [ID!]!, $due: DateTime) {"
    " assignCertification(certificationId: $cert, learnerIds: $learners, dueAt: $due) {"
    " enrollments {" + ENROLLMENT_FIELDS + "} errors { code message field } } }"
)

START = (
    "mutation S($id: ID!) { startCertification(certificationId: $id) { enrollment {"
    + ENROLLMENT_FIELDS
    + "} errors { code message field } } }"
)

REPORT = """
query R($id: ID!, $days: Int!) {
  certificationReport(certificationId: $id) {
    enrolled overdue completionRate byStatus { status count }
    expiring: expiringWithin(days: $days)
  }
}"""


def iso(at: datetime) -> str:
    """How the API writes a DateTime: ISO 8601 in UTC with its offset."""
    return at.astimezone(UTC).isoformat()


def cert_gid(cert_id: int) -> str:
    return encode_id("Certification", cert_id)


async def my_enrollment(
    graphql_client: GraphQLClient, person: Person, cert_id: int
) -> dict[str, Any]:
    data = await graphql_client.data(
        VIEWER_ENROLLMENT, {"id": cert_gid(cert_id)}, token=person.token
    )
    enrollment: dict[str, Any] = data["certification"]["viewerEnrollment"]
    assert enrollment is not None
    return enrollment


async def enrollment_node(
    graphql_client: GraphQLClient, person: Person, gid: str
) -> dict[str, Any] | None:
    data = await graphql_client.data(ENROLLMENT_NODE, {"id": gid}, token=person.token)
    node: dict[str, Any] | None = data["node"]
    return node


async def record(
    graphql_client: GraphQLClient, person: Person, course_gid: str, **fields: Any
) -> dict[str, Any]:
    data = await graphql_client.data(
        PROGRESS, {"input": {"courseId": course_gid, **fields}}, token=person.token
    )
    payload: dict[str, Any] = data["recordCourseProgress"]
    assert payload["errors"] == [], payload["errors"]
    return payload


async def complete(
    graphql_client: GraphQLClient, person: Person, course_gid: str
) -> dict[str, Any]:
    return await record(graphql_client, person, course_gid, completed=True)


async def complete_at(
    graphql_client: GraphQLClient, world: World, learner: Person, course_gid: str, at: str
) -> dict[str, Any]:
    """An admin records a back-dated completion (history)."""
    return await record(
        graphql_client,
        world.admin,
        course_gid,
        learnerId=learner.id,
        completed=True,
        completedAt=at,
    )


async def assign(
    graphql_client: GraphQLClient,
    world: World,
    cert_id: int,
    learners: list[Person],
    due: str | None = None,
) -> list[dict[str, Any]]:
    data = await graphql_client.data(
        ASSIGN,
        {"cert": cert_gid(cert_id), "learners": [p.id for p in learners], "due": due},
        token=world.admin.token,
    )
    payload = data["assignCertification"]
    assert payload["errors"] == [], payload["errors"]
    rows: list[dict[str, Any]] = payload["enrollments"]
    return rows


async def start(graphql_client: GraphQLClient, person: Person, cert_id: int) -> dict[str, Any]:
    data = await graphql_client.data(START, {"id": cert_gid(cert_id)}, token=person.token)
    payload = data["startCertification"]
    assert payload["errors"] == [], payload["errors"]
    enrollment: dict[str, Any] = payload["enrollment"]
    return enrollment


async def my_list(
    graphql_client: GraphQLClient, person: Person, *, pending: bool = False, sort: str = "RELEVANCE"
) -> list[tuple[str, str]]:
    """(certification name, status) of the viewer's enrollments, in the list's order."""
    data = await graphql_client.data(
        MY_LIST, {"pending": pending, "sort": sort}, token=person.token
    )
    connection = data["viewer"]["certifications"]
    rows = [(e["node"]["certification"]["name"], e["node"]["status"]) for e in connection["edges"]]
    assert connection["totalCount"] == len(rows)
    return rows


async def report(
    graphql_client: GraphQLClient, person: Person, cert_id: int, days: int = 30
) -> dict[str, Any]:
    data = await graphql_client.data(
        REPORT, {"id": cert_gid(cert_id), "days": days}, token=person.token
    )
    result: dict[str, Any] = data["certificationReport"]
    result["byStatus"] = {row["status"]: row["count"] for row in result["byStatus"] if row["count"]}
    return result


def statuses(enrollment: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(course id, status, percent) of each course in certification order."""
    return [(c["course"]["id"], c["status"], c["percent"]) for c in enrollment["courses"]]


def pending_ids(enrollment: dict[str, Any]) -> list[str]:
    return [c["course"]["id"] for c in enrollment["pendingCourses"]]


def awards(enrollment: dict[str, Any]) -> list[tuple[int, str, str | None]]:
    return [(a["cycle"], a["awardedAt"], a["expiresAt"]) for a in enrollment["awards"]]
