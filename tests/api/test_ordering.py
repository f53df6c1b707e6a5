"""The orders of domain.md "What learners see", read through the API: RELEVANCE with each
bucket and its tie-breaks, the other sorts, the catalog, the pending filter, and keyset pages
of 2 that reassemble the whole list."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from typing import Any

import pytest

from gql import clock
from gql.api.ids import encode_id
from gql.domain import courses, enrollments
from gql.store.models import CertificationKind, CertificationType, Enrollment, EvidenceStatus
from tests.api.conftest import (
    SYSTEM,
    GraphQLClient,
    World,
    add_evidence,
    make_certification,
)

MY_LIST = """
query Mine($sort: CertificationSort!, $pending: Boolean!, $kind: CertificationKind,
           $first: Int, $after: String) {
  viewer {
    certifications(sort: $sort, pending: $pending, kind: $kind, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { status overdue dueAt certification { name } } }
    }
  }
}"""

CATALOG = """
query Catalog($sort: CertificationSort!, $first: Int, $after: String) {
  certifications(sort: $sort, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { name viewerEnrollment { status } } }
  }
}"""


async def cert_with_own_course(name: str, **kwargs: Any) -> int:
    course = await courses.create_course(SYSTEM, name=f"{name} course")
    cert = await make_certification(name, [course.id], **kwargs)
    clock.advance(timedelta(hours=1))  # distinct publishedAt, in creation order
    return cert


async def course_of(cert_id: int) -> int:
    from gql.domain.status import course_links

    return (await course_links([cert_id]))[cert_id][0].course_id


async def build_learner_world(world: World, start: datetime) -> None:
    """One certification per RELEVANCE situation for world.learner; see the expected orders."""
    learner = world.learner.actor
    assign = enrollments.assign_certification

    overdue = await cert_with_own_course("Overdue")
    rejected = await cert_with_own_course(
        "Rejected", kind=CertificationKind.EXTERNAL, issuer="Acme"
    )
    expired = await cert_with_own_course(
        "Expired",
        type_=CertificationType.RECURRING,
        validity_months=1,
        recertification_window_days=7,
    )
    started_self = await cert_with_own_course("Started self")
    started_assigned = await cert_with_own_course("Started assigned")
    enrolled_due = await cert_with_own_course("Enrolled due")
    enrolled_old = await cert_with_own_course("Enrolled old")
    enrolled_new = await cert_with_own_course("Enrolled new")
    waiting = await cert_with_own_course("Waiting", kind=CertificationKind.EXTERNAL, issuer="Acme")
    completed = await cert_with_own_course("Completed")
    await cert_with_own_course("Catalog old")
    await cert_with_own_course("Catalog new")

    await assign(SYSTEM, overdue, [learner.user_id], start + timedelta(days=1))
    await enrollments.start_certification(learner, rejected)
    await add_evidence(
        (await enrollments.viewer_enrollments(learner, [rejected]))[rejected].id,
        EvidenceStatus.REJECTED,
        reviewer=world.manager.user,
        comment="blurry scan",
    )
    await assign(SYSTEM, expired, [learner.user_id], None)
    await enrollments.record_course_progress(
        learner, course_id=await course_of(expired), completed=True
    )
    await enrollments.start_certification(learner, started_self)
    await enrollments.record_course_progress(
        learner, course_id=await course_of(started_self), percent=30
    )
    await assign(SYSTEM, started_assigned, [learner.user_id], None)
    await enrollments.record_course_progress(
        learner, course_id=await course_of(started_assigned), percent=60
    )
    await assign(
        SYSTEM, enrolled_due, [learner.user_id], datetime(2026, 12, 1, tzinfo=start.tzinfo)
    )
    await assign(SYSTEM, enrolled_old, [learner.user_id], None)
    await assign(SYSTEM, enrolled_new, [learner.user_id], None)
    await enrollments.start_certification(learner, waiting)
    await add_evidence(
        (await enrollments.viewer_enrollments(learner, [waiting]))[waiting].id,
        EvidenceStatus.PENDING,
    )
    await enrollments.start_certification(learner, completed)
    await enrollments.record_course_progress(
        learner, course_id=await course_of(completed), completed=True
    )
    # Past the overdue due date and the recurring award's expiry (one month after completion).
    clock.freeze(datetime(2026, 5, 1, 9, 0, tzinfo=start.tzinfo))


RELEVANCE = [
    # 1. needs action: the one with a due date first, then assigned before self-enrolled
    "Overdue",
    "Expired",
    "Rejected",
    # 2. in progress: assigned before self-enrolled
    "Started assigned",
    "Started self",
    # 3. not started: earliest due date first (none last), then newest published first
    "Enrolled due",
    "Enrolled new",
    "Enrolled old",
    # 4. waiting, 5. completed
    "Waiting",
    "Completed",
]
STATUS = {
    "Overdue": "ENROLLED",
    "Expired": "EXPIRED",
    "Rejected": "REJECTED",
    "Started assigned": "STARTED",
    "Started self": "STARTED",
    "Enrolled due": "ENROLLED",
    "Enrolled new": "ENROLLED",
    "Enrolled old": "ENROLLED",
    "Waiting": "PENDING_APPROVAL",
    "Completed": "COMPLETED",
}
PUBLISHED_ORDER = [
    "Overdue",
    "Rejected",
    "Expired",
    "Started self",
    "Started assigned",
    "Enrolled due",
    "Enrolled old",
    "Enrolled new",
    "Waiting",
    "Completed",
]


async def my_list(
    graphql_client: GraphQLClient,
    token: str,
    sort: str,
    *,
    pending: bool = False,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    variables = {"sort": sort, "pending": pending, "kind": kind, "first": 100}
    data = await graphql_client.data(MY_LIST, variables, token=token)
    connection = data["viewer"]["certifications"]
    assert connection["totalCount"] == len(connection["edges"])
    return [edge["node"] for edge in connection["edges"]]


def names(nodes: list[dict[str, Any]]) -> list[str]:
    return [n["certification"]["name"] if "certification" in n else n["name"] for n in nodes]


async def test_relevance_orders_by_bucket_due_date_origin_and_publication(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    await build_learner_world(world, frozen_now)
    nodes = await my_list(graphql_client, world.learner.token, "RELEVANCE")
    assert names(nodes) == RELEVANCE
    assert {n["certification"]["name"]: n["status"] for n in nodes} == STATUS
    overdue = {n["certification"]["name"] for n in nodes if n["overdue"]}
    assert overdue == {"Overdue"}


async def test_relevance_is_the_default_sort(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    await build_learner_world(world, frozen_now)
    data = await graphql_client.data(
        "{ viewer { certifications(first: 100) { edges { node { certification { name } } } } } }",
        token=world.learner.token,
    )
    edges = data["viewer"]["certifications"]["edges"]
    assert [e["node"]["certification"]["name"] for e in edges] == RELEVANCE


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("PUBLISHED_NEWEST", PUBLISHED_ORDER[::-1]),
        ("PUBLISHED_OLDEST", PUBLISHED_ORDER),
        ("NAME_ASC", sorted(PUBLISHED_ORDER)),
        ("NAME_DESC", sorted(PUBLISHED_ORDER, reverse=True)),
        # due dates first, earliest first; then the rest by id (creation order)
        (
            "DUE_DATE",
            ["Overdue", "Enrolled due"]
            + [n for n in PUBLISHED_ORDER if n not in ("Overdue", "Enrolled due")],
        ),
    ],
)
async def test_other_sorts_of_my_certifications(
    graphql_client: GraphQLClient,
    frozen_now: datetime,
    world: World,
    sort: str,
    expected: list[str],
) -> None:
    await build_learner_world(world, frozen_now)
    assert names(await my_list(graphql_client, world.learner.token, sort)) == expected


async def test_pending_leaves_out_completed_and_kind_filters(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    await build_learner_world(world, frozen_now)
    pending = await my_list(graphql_client, world.learner.token, "RELEVANCE", pending=True)
    assert names(pending) == [n for n in RELEVANCE if n != "Completed"]
    external = await my_list(graphql_client, world.learner.token, "RELEVANCE", kind="EXTERNAL")
    assert names(external) == ["Rejected", "Waiting"]


async def test_catalog_relevance_puts_my_enrollments_first_then_newest_published(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    await build_learner_world(world, frozen_now)
    data = await graphql_client.data(
        CATALOG, {"sort": "RELEVANCE", "first": 100}, token=world.learner.token
    )
    nodes = [e["node"] for e in data["certifications"]["edges"]]
    assert names(nodes) == [*RELEVANCE, "Catalog new", "Catalog old"]
    assert nodes[-1]["viewerEnrollment"] is None
    assert nodes[0]["viewerEnrollment"] == {"status": "ENROLLED"}

    # someone enrolled in nothing sees the catalog newest published first
    data = await graphql_client.data(
        CATALOG, {"sort": "RELEVANCE", "first": 100}, token=world.other.token
    )
    all_published = [*PUBLISHED_ORDER, "Catalog old", "Catalog new"]
    assert names([e["node"] for e in data["certifications"]["edges"]]) == all_published[::-1]


async def collect_pages(
    graphql_client: GraphQLClient, token: str, query: str, variables: dict[str, Any], path: str
) -> tuple[list[str], list[dict[str, Any]]]:
    """Follow endCursor with pages of 2; return the names seen and every pageInfo."""
    seen: list[str] = []
    infos: list[dict[str, Any]] = []
    after: str | None = None
    for _ in range(50):
        data = await graphql_client.data(
            query, {**variables, "first": 2, "after": after}, token=token
        )
        connection = data["viewer"]["certifications"] if path == "mine" else data["certifications"]
        infos.append(connection["pageInfo"])
        seen += names([e["node"] for e in connection["edges"]])
        if not connection["pageInfo"]["hasNextPage"]:
            return seen, infos
        after = connection["pageInfo"]["endCursor"]
        assert after == connection["edges"][-1]["cursor"]
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize("sort", ["RELEVANCE", "PUBLISHED_NEWEST", "NAME_DESC", "DUE_DATE"])
async def test_pages_of_two_reassemble_my_list(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World, sort: str
) -> None:
    await build_learner_world(world, frozen_now)
    token = world.learner.token
    full = names(await my_list(graphql_client, token, sort))
    paged, infos = await collect_pages(
        graphql_client, token, MY_LIST, {"sort": sort, "pending": False, "kind": None}, "mine"
    )
    assert paged == full
    assert len(infos) == 5
    assert [i["hasPreviousPage"] for i in infos] == [False, True, True, True, True]
    assert infos[-1]["hasNextPage"] is False


@pytest.mark.parametrize("sort", ["RELEVANCE", "PUBLISHED_OLDEST", "NAME_ASC"])
async def test_pages_of_two_reassemble_the_catalog(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World, sort: str
) -> None:
    await build_learner_world(world, frozen_now)
    token = world.learner.token
    data = await graphql_client.data(CATALOG, {"sort": sort, "first": 100}, token=token)
    full = names([e["node"] for e in data["certifications"]["edges"]])
    paged, _ = await collect_pages(graphql_client, token, CATALOG, {"sort": sort}, "catalog")
    assert paged == full and len(full) == 12


async def test_a_cursor_of_another_sort_is_refused(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    await build_learner_world(world, frozen_now)
    token = world.learner.token
    first = await graphql_client.data(CATALOG, {"sort": "NAME_ASC", "first": 2}, token=token)
    cursor = first["certifications"]["pageInfo"]["endCursor"]
    result = await graphql_client.run(
        CATALOG, {"sort": "RELEVANCE", "first": 2, "after": cursor}, token=token
    )
    assert result["data"] is None
    error = result["errors"][0]
    assert error["extensions"] == {"code": "INVALID_INPUT", "field": ["after"]}


async def test_enrollment_ids_are_global_ids(
    graphql_client: GraphQLClient, frozen_now: datetime, world: World
) -> None:
    await build_learner_world(world, frozen_now)
    data = await graphql_client.data(
        "{ viewer { certifications(first: 1) { edges { node { id certification { id } } } } } }",
        token=world.learner.token,
    )
    node = data["viewer"]["certifications"]["edges"][0]["node"]
    type_name, pk = base64.b64decode(node["id"]).decode().split(":")
    assert type_name == "Enrollment"
    row = await Enrollment.get(id=int(pk))
    assert node["certification"]["id"] == encode_id("Certification", row.certification_id)
    assert row.learner_id == world.learner.user.id
