"""Every Query field through HTTP, for each role."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from gql import clock
from gql.api.ids import encode_id
from gql.domain import certifications, courses, enrollments
from gql.store.models import CertificationKind, EvidenceStatus
from tests.api.conftest import SYSTEM, GraphQLClient, World, add_evidence, make_certification


async def test_viewer_for_each_role(graphql_client: GraphQLClient, world: World) -> None:
    query = "{ viewer { id name email role manager { id name } } }"
    for person, role, manager in [
        (world.admin, "ADMIN", None),
        (world.manager, "MANAGER", None),
        (world.learner, "LEARNER", {"id": world.manager.id, "name": "Max Manager"}),
        (world.other, "LEARNER", None),
    ]:
        viewer = (await graphql_client.data(query, token=person.token))["viewer"]
        assert viewer == {
            "id": person.id,
            "name": person.user.name,
            "email": person.user.email,
            "role": role,
            "manager": manager,
        }


USERS = """
query Users($role: Role, $search: String, $first: Int, $after: String) {
  users(role: $role, search: $search, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor } edges { node { name role } }
  }
}"""


async def user_names(graphql_client: GraphQLClient, token: str, **variables: Any) -> list[str]:
    data = await graphql_client.data(USERS, {"first": 100, **variables}, token=token)
    return [edge["node"]["name"] for edge in data["users"]["edges"]]


async def test_users_by_role(graphql_client: GraphQLClient, world: World) -> None:
    everyone = ["Ada Admin", "Lea Learner", "Max Manager", "Otto Other"]
    assert await user_names(graphql_client, world.admin.token) == everyone
    assert await user_names(graphql_client, world.admin.token, role="LEARNER") == [
        "Lea Learner",
        "Otto Other",
    ]
    assert await user_names(graphql_client, world.admin.token, search="MAX") == ["Max Manager"]
    assert await user_names(graphql_client, world.manager.token) == ["Lea Learner", "Max Manager"]
    assert await user_names(graphql_client, world.learner.token) == ["Lea Learner", "Max Manager"]
    assert await user_names(graphql_client, world.other.token) == ["Otto Other"]


async def test_users_pages_of_two(graphql_client: GraphQLClient, world: World) -> None:
    first = await graphql_client.data(USERS, {"first": 2}, token=world.admin.token)
    assert first["users"]["totalCount"] == 4
    assert first["users"]["pageInfo"]["hasNextPage"] is True
    after = first["users"]["pageInfo"]["endCursor"]
    second = await graphql_client.data(USERS, {"first": 2, "after": after}, token=world.admin.token)
    names = [e["node"]["name"] for e in first["users"]["edges"] + second["users"]["edges"]]
    assert names == ["Ada Admin", "Lea Learner", "Max Manager", "Otto Other"]
    assert second["users"]["pageInfo"]["hasNextPage"] is False


@pytest.mark.parametrize("first", [101, -1])
async def test_first_outside_0_to_100_is_refused_not_clamped(
    graphql_client: GraphQLClient, world: World, first: int
) -> None:
    result = await graphql_client.run(USERS, {"first": first}, token=world.admin.token)
    assert result["data"] is None
    assert result["errors"][0]["extensions"] == {"code": "INVALID_INPUT", "field": ["first"]}
    assert "between 0 and 100" in result["errors"][0]["message"]


async def test_first_of_100_and_of_0_are_served(
    graphql_client: GraphQLClient, world: World
) -> None:
    full = await graphql_client.data(USERS, {"first": 100}, token=world.admin.token)
    assert len(full["users"]["edges"]) == 4
    empty = await graphql_client.data(USERS, {"first": 0}, token=world.admin.token)
    assert empty["users"]["edges"] == [] and empty["users"]["totalCount"] == 4


CERTIFICATION = """
query Cert($id: ID!) {
  certification(id: $id) {
    id name overview kind type issuer validityMonths recertificationWindowDays daysToComplete
    state publishedAt badge { name imageUrl } policy { name config }
    courses { mandatory position course { name } }
    viewerEnrollment { status }
  }
}"""


async def test_certification_fields_and_visibility_by_state(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    published = await make_certification(
        "Cloud",
        world.course_ids[:3],
        mandatory=[True, False, True],
        overview="All about clouds",
        days_to_complete=30,
        badge_name="Cloud badge",
    )
    draft = await make_certification("Draft", world.course_ids[:1], publish=False)
    data = await graphql_client.data(
        CERTIFICATION, {"id": encode_id("Certification", published)}, token=world.learner.token
    )
    cert = data["certification"]
    assert cert == {
        "id": encode_id("Certification", published),
        "name": "Cloud",
        "overview": "All about clouds",
        "kind": "INTERNAL",
        "type": "PERPETUAL",
        "issuer": cert["issuer"],
        "validityMonths": None,
        "recertificationWindowDays": 30,
        "daysToComplete": 30,
        "state": "PUBLISHED",
        "publishedAt": frozen_now.isoformat(),
        "badge": {"name": "Cloud badge", "imageUrl": None},
        "policy": {"name": "mandatory-subset", "config": {}},
        "courses": [
            {"mandatory": True, "position": 0, "course": {"name": "Course 0"}},
            {"mandatory": False, "position": 1, "course": {"name": "Course 1"}},
            {"mandatory": True, "position": 2, "course": {"name": "Course 2"}},
        ],
        "viewerEnrollment": None,
    }
    assert cert["issuer"]
    draft_id = {"id": encode_id("Certification", draft)}
    assert (await graphql_client.data(CERTIFICATION, draft_id, token=world.learner.token)) == {
        "certification": None
    }
    admin_view = await graphql_client.data(CERTIFICATION, draft_id, token=world.admin.token)
    assert admin_view["certification"]["state"] == "DRAFT"
    assert admin_view["certification"]["publishedAt"] is None


CATALOG = """
query Catalog($kind: CertificationKind, $state: CertificationState, $search: String) {
  certifications(sort: NAME_ASC, kind: $kind, state: $state, search: $search, first: 100) {
    totalCount edges { node { name state kind } }
  }
}"""


async def catalog(graphql_client: GraphQLClient, token: str, **variables: Any) -> list[str]:
    data = await graphql_client.data(CATALOG, variables, token=token)
    names = [e["node"]["name"] for e in data["certifications"]["edges"]]
    assert data["certifications"]["totalCount"] == len(names)
    return names


async def test_catalog_by_role_state_kind_and_search(
    graphql_client: GraphQLClient, world: World
) -> None:
    await make_certification("Alpha", world.course_ids[:1])
    await make_certification("Beta draft", world.course_ids[:1], publish=False)
    retired = await make_certification("Gamma retired", world.course_ids[:1])
    await certifications.retire_certification(SYSTEM, retired)
    await make_certification("Delta proof", [], kind=CertificationKind.EXTERNAL, issuer="Acme")

    assert await catalog(graphql_client, world.learner.token) == ["Alpha", "Delta proof"]
    assert await catalog(graphql_client, world.learner.token, state="DRAFT") == []
    assert await catalog(graphql_client, world.admin.token) == [
        "Alpha",
        "Beta draft",
        "Delta proof",
        "Gamma retired",
    ]
    assert await catalog(graphql_client, world.admin.token, state="DRAFT") == ["Beta draft"]
    assert await catalog(graphql_client, world.admin.token, state="RETIRED") == ["Gamma retired"]
    assert await catalog(graphql_client, world.learner.token, kind="EXTERNAL") == ["Delta proof"]
    assert await catalog(graphql_client, world.learner.token, search="alp") == ["Alpha"]


async def test_a_retired_certification_stays_visible_to_its_learners(
    graphql_client: GraphQLClient, world: World
) -> None:
    cert = await make_certification("Old", world.course_ids[:1])
    await enrollments.start_certification(world.learner.actor, cert)
    await certifications.retire_certification(SYSTEM, cert)
    gid = {"id": encode_id("Certification", cert)}
    mine = await graphql_client.data(CERTIFICATION, gid, token=world.learner.token)
    assert mine["certification"]["state"] == "RETIRED"
    assert mine["certification"]["viewerEnrollment"] == {"status": "STARTED"}
    assert (await graphql_client.data(CERTIFICATION, gid, token=world.other.token))[
        "certification"
    ] is None


COURSES = """
query Courses($sort: CourseSort!, $search: String, $first: Int, $after: String) {
  courses(sort: $sort, search: $search, first: $first, after: $after) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { node {
      id name description durationMinutes publishedAt viewerProgress { percent status }
    } }
  }
}"""


async def test_courses_sorted_searched_and_paged(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    clock.advance(timedelta(hours=1))
    await courses.create_course(SYSTEM, name="Azure", description="cloud stuff")
    token = world.learner.token

    async def names(sort: str, **variables: Any) -> list[str]:
        data = await graphql_client.data(
            COURSES, {"sort": sort, "first": 100, **variables}, token=token
        )
        return [e["node"]["name"] for e in data["courses"]["edges"]]

    seeded = ["Course 0", "Course 1", "Course 2", "Course 3"]
    assert await names("NAME_ASC") == ["Azure", *seeded]
    assert await names("NAME_DESC") == [*seeded[::-1], "Azure"]
    assert (await names("PUBLISHED_NEWEST"))[0] == "Azure"
    assert (await names("PUBLISHED_OLDEST"))[-1] == "Azure"
    assert await names("NAME_ASC", search="CLOUD") == ["Azure"]

    collected: list[str] = []
    after = None
    while True:
        data = await graphql_client.data(
            COURSES, {"sort": "NAME_ASC", "first": 2, "after": after}, token=token
        )
        collected += [e["node"]["name"] for e in data["courses"]["edges"]]
        if not data["courses"]["pageInfo"]["hasNextPage"]:
            break
        after = data["courses"]["pageInfo"]["endCursor"]
    assert collected == ["Azure", *seeded]


async def test_course_by_id_and_viewer_progress(
    graphql_client: GraphQLClient, world: World
) -> None:
    await enrollments.record_course_progress(
        world.learner.actor, course_id=world.course_ids[1], percent=35
    )
    query = (
        "query C($id: ID!) { course(id: $id) { name durationMinutes "
        "viewerProgress { percent status startedAt completedAt course { id } } } }"
    )
    gid = world.course_gid(1)
    mine = (await graphql_client.data(query, {"id": gid}, token=world.learner.token))["course"]
    assert mine["name"] == "Course 1" and mine["durationMinutes"] == 31
    progress = mine["viewerProgress"]
    assert progress["percent"] == 35 and progress["status"] == "IN_PROGRESS"
    assert progress["completedAt"] is None and progress["course"] == {"id": gid}
    theirs = (await graphql_client.data(query, {"id": gid}, token=world.other.token))["course"]
    assert theirs["viewerProgress"] is None


REVIEW_QUEUE = """
{ evidenceReviewQueue(first: 10) {
    totalCount
    edges { node { status submittedAt enrollment { learner { name } certification { name } } } }
} }"""


async def test_evidence_review_queue_per_role(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    cert = await make_certification("Proof", [], kind=CertificationKind.EXTERNAL, issuer="Acme")
    for person in (world.learner, world.other, world.manager):
        enrollment = await enrollments.start_certification(person.actor, cert)
        await add_evidence(enrollment.id, EvidenceStatus.PENDING)
        clock.advance(timedelta(minutes=5))
    done = await enrollments.start_certification(world.admin.actor, cert)
    await add_evidence(done.id, EvidenceStatus.REJECTED, reviewer=world.manager.user)

    async def queue(token: str) -> list[str]:
        data = await graphql_client.data(REVIEW_QUEUE, token=token)
        edges = data["evidenceReviewQueue"]["edges"]
        assert all(e["node"]["status"] == "PENDING" for e in edges)
        return [e["node"]["enrollment"]["learner"]["name"] for e in edges]

    # oldest first; nobody reviews their own; managers see their direct reports only
    assert await queue(world.admin.token) == ["Lea Learner", "Otto Other", "Max Manager"]
    assert await queue(world.manager.token) == ["Lea Learner"]
    assert await queue(world.learner.token) == []


REPORT = """
query Report($id: ID!) {
  certificationReport(certificationId: $id) {
    certification { name } enrolled overdue completionRate expiringWithin(days: 30)
    byStatus { status count }
  }
}"""


async def test_certification_report_per_role(graphql_client: GraphQLClient, world: World) -> None:
    cert = await make_certification("Reported", world.course_ids[:1])
    await enrollments.start_certification(world.learner.actor, cert)
    await enrollments.record_course_progress(
        world.learner.actor, course_id=world.course_ids[0], completed=True
    )
    await enrollments.start_certification(world.other.actor, cert)
    gid = {"id": encode_id("Certification", cert)}

    admin = (await graphql_client.data(REPORT, gid, token=world.admin.token))["certificationReport"]
    assert admin["enrolled"] == 2 and admin["completionRate"] == 0.5
    counts = {row["status"]: row["count"] for row in admin["byStatus"]}
    assert counts["COMPLETED"] == 1 and counts["STARTED"] == 1 and sum(counts.values()) == 2
    assert admin["expiringWithin"] == 0 and admin["overdue"] == 0

    manager = (await graphql_client.data(REPORT, gid, token=world.manager.token))[
        "certificationReport"
    ]
    assert manager["enrolled"] == 1 and manager["completionRate"] == 1.0

    learner = await graphql_client.run(REPORT, gid, token=world.learner.token)
    assert learner["data"] == {"certificationReport": None}
    assert learner["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert learner["errors"][0]["path"] == ["certificationReport"]

    missing = await graphql_client.data(
        REPORT, {"id": encode_id("Certification", 9999)}, token=world.admin.token
    )
    assert missing == {"certificationReport": None}


async def test_completion_policies(graphql_client: GraphQLClient, world: World) -> None:
    data = await graphql_client.data(
        "{ completionPolicies { name description configSchema plugin } }",
        token=world.learner.token,
    )
    policies = {p["name"]: p for p in data["completionPolicies"]}
    assert {"mandatory-subset", "all-required", "external-evidence"} <= set(policies)
    external = policies["external-evidence"]
    assert external["plugin"] == "plugins.external_evidence"
    assert external["configSchema"]["type"] == "object"
    assert "requiresApproval" in external["configSchema"]["properties"]
    assert all(p["description"] for p in policies.values())
