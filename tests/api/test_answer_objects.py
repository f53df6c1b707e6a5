"""The answer's objects are built for what the document selects: a list read for its count
reads no enrollment state, an enrollment builds its certification and a course progress its
course only when asked for, and evidence reads its enrollment only when asked for."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gql.api import types
from tests.api.conftest import GraphQLClient, World
from tests.api.test_query_counts import count_statements, people, seed
from tests.conftest import QueryCounter

COUNT_ONLY = """
query Count($first: Int!) {
  viewer { certifications(first: $first) { totalCount pageInfo { hasNextPage endCursor } } }
}"""

NODES = """
query Nodes($first: Int!) {
  viewer { certifications(first: $first) { totalCount edges { node { status } } } }
}"""

# A fragment may read the nodes: it is taken to.
NODES_IN_FRAGMENT = """
query Fragment($first: Int!) {
  viewer { certifications(first: $first) { totalCount ...Nodes } }
}
fragment Nodes on EnrollmentConnection { edges { node { id status } } }"""

# The read model's tables: a list's enrollments need their links or progress (kept links
# are read by version), awards and evidence.
READ_MODEL = ("course_progress", "course_links_version", "certification_course", "evidence")


def reads_state(statements: list[str]) -> list[str]:
    return [s for s in statements if any(f'"{table}"' in s for table in READ_MODEL)]


async def test_a_list_read_for_its_count_reads_no_enrollment_state(
    graphql_client: GraphQLClient, world: World, sql_queries: QueryCounter
) -> None:
    await seed(world, 5)
    token = world.learner.token

    counted, count_statements_made = await count_statements(
        graphql_client, sql_queries, token, COUNT_ONLY, 3
    )
    count_reads = list(sql_queries.statements)
    listed, nodes_statements_made = await count_statements(
        graphql_client, sql_queries, token, NODES, 3
    )
    node_reads = list(sql_queries.statements)

    connection = counted["viewer"]["certifications"]
    assert connection["totalCount"] == listed["viewer"]["certifications"]["totalCount"] == 5
    assert connection["pageInfo"]["hasNextPage"] is True
    assert connection["pageInfo"]["endCursor"]
    assert reads_state(count_reads) == []
    assert count_statements_made == 3, count_reads  # the token, the listing's count and page
    assert reads_state(node_reads)  # the same list with its nodes reads them
    assert count_statements_made < nodes_statements_made


async def test_a_fragment_that_may_read_the_nodes_gets_them(
    graphql_client: GraphQLClient, world: World
) -> None:
    await seed(world, 4)
    data = await graphql_client.data(NODES_IN_FRAGMENT, {"first": 3}, token=world.learner.token)
    edges = data["viewer"]["certifications"]["edges"]
    assert len(edges) == 3
    assert all(edge["node"]["status"] == "STARTED" for edge in edges)
    assert all(edge["node"]["id"] for edge in edges)


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The Certification and Course answer objects built, by type name."""
    made: list[str] = []

    def counting(name: str, build: Callable[[Any], Any]) -> staticmethod[[Any], Any]:
        def of(row: Any) -> Any:
            made.append(name)
            return build(row)

        return staticmethod(of)

    monkeypatch.setattr(
        types.Certification, "of", counting("Certification", types.Certification.of)
    )
    monkeypatch.setattr(types.Course, "of", counting("Course", types.Course.of))
    yield made


async def test_an_enrollment_builds_its_certification_and_courses_only_when_asked(
    graphql_client: GraphQLClient, world: World, built: list[str]
) -> None:
    await seed(world, 3)
    token = world.learner.token
    without = """{ viewer { certifications(first: 3) { edges { node {
        status courses { status percent } pendingCourses { percent } } } } } }"""
    with_objects = """{ viewer { certifications(first: 3) { edges { node {
        certification { name } courses { course { name } } pendingCourses { course { id } }
    } } } } }"""

    data = await graphql_client.data(without, token=token)
    nodes = [edge["node"] for edge in data["viewer"]["certifications"]["edges"]]
    assert [len(node["courses"]) for node in nodes] == [3, 3, 3]
    assert built == []

    data = await graphql_client.data(with_objects, token=token)
    nodes = [edge["node"] for edge in data["viewer"]["certifications"]["edges"]]
    assert all(node["certification"]["name"].startswith("Cert ") for node in nodes)
    assert built.count("Certification") == 3
    # one Course per course of each enrollment, shared by its courses and pendingCourses
    assert built.count("Course") == 9
    assert all(course["course"]["name"] for node in nodes for course in node["courses"])


REVIEW_QUEUE = """
query Queue($first: Int!) {{
  evidenceReviewQueue(first: $first) {{ edges {{ node {{ status {enrollment} }} }} }}
}}"""


async def test_evidence_reads_its_enrollment_only_when_asked(
    graphql_client: GraphQLClient, world: World, sql_queries: QueryCounter
) -> None:
    await people(world, 4)
    token = world.manager.token
    without = REVIEW_QUEUE.format(enrollment="")
    with_enrollment = REVIEW_QUEUE.format(enrollment="enrollment { status certification { name } }")

    plain, plain_count = await count_statements(graphql_client, sql_queries, token, without, 4)
    plain_reads = list(sql_queries.statements)
    full, full_count = await count_statements(
        graphql_client, sql_queries, token, with_enrollment, 4
    )

    assert [e["node"]["status"] for e in plain["evidenceReviewQueue"]["edges"]] == ["PENDING"] * 4
    statuses = {e["node"]["enrollment"]["status"] for e in full["evidenceReviewQueue"]["edges"]}
    assert statuses == {"PENDING_APPROVAL"}
    assert not [s for s in plain_reads if 'FROM "enrollment"' in s]
    assert plain_count < full_count
