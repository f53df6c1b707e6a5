"""Both-way pages through the API: every connection takes `last`/`before`, read backwards from
its end it is the list read forwards, cursors work either way, a mixed or oversized request is
INVALID_INPUT naming the argument, and a backward page costs the statements a forward one does."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from graphql import get_operation_ast, parse

from gql.api.cost import estimate_cost
from gql.api.schema import build_schema
from gql.domain import tokens, webhooks
from gql.domain.webhooks import AddressPolicy
from gql.store.models import AuditEvent
from tests.api.conftest import GraphQLClient, World
from tests.api.test_query_counts import (
    AUDIT_LOG,
    CATALOG,
    LEARNER_LIST,
    MAX_STATEMENTS,
    REVIEW_QUEUE,
    USERS_DEEP,
    people,
    seed,
)
from tests.conftest import QueryCounter

PAGE = (
    "{ totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
    " edges { cursor node { id } } }"
)
ARGUMENTS = "first: $first, after: $after, last: $last, before: $before"
VARIABLES = "$first: Int, $after: String, $last: Int, $before: String"

# Every connection field of the schema: (the field in a document, who reads it, the path to
# the connection in `data`).
CONNECTIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "users": ("users(%s)", "admin", ("users",)),
    "certifications": ("certifications(%s)", "learner", ("certifications",)),
    "courses": ("courses(%s)", "admin", ("courses",)),
    "evidenceReviewQueue": ("evidenceReviewQueue(%s)", "manager", ("evidenceReviewQueue",)),
    "auditEvents": ("auditEvents(%s)", "admin", ("auditEvents",)),
    "webhooks": ("webhooks(%s)", "admin", ("webhooks",)),
    "enrollments": ("enrollments(%s)", "admin", ("enrollments",)),
    "User.certifications": ("viewer { certifications(%s)", "learner", ("viewer", "certifications")),
    "User.reports": ("viewer { reports(%s)", "manager", ("viewer", "reports")),
    "User.apiTokens": ("viewer { apiTokens(%s)", "admin", ("viewer", "apiTokens")),
}


def document(name: str) -> str:
    field, _, path = CONNECTIONS[name]
    closing = " }" * (len(path) - 1)
    return f"query({VARIABLES}) {{ {field % ARGUMENTS} {PAGE}{closing} }}"


async def populate(world: World) -> None:
    """Several rows in every list, with ties (names, instants) the keysets must break."""
    await people(world, 4)
    await seed(world, 3)  # the learner's own list
    for i in range(3):
        await tokens.create_api_token(world.admin.actor, name=f"script {i}")
        await webhooks.create_webhook(
            world.admin.actor,
            url=f"http://127.0.0.1:9/hook/{i}",
            events=None,
            description=None,
            policy=AddressPolicy(allow_private=True),
        )


Reader = Callable[[dict[str, Any]], Any]


def reader(graphql_client: GraphQLClient, world: World, name: str) -> Reader:
    _, viewer, path = CONNECTIONS[name]
    token = getattr(world, viewer).token
    query = document(name)

    async def read(arguments: dict[str, Any]) -> dict[str, Any]:
        data = await graphql_client.data(query, arguments, token=token)
        for step in path:
            data = data[step]
        page_info = data["pageInfo"]
        cursors = [edge["cursor"] for edge in data["edges"]]
        assert page_info["startCursor"] == (cursors[0] if cursors else None)
        assert page_info["endCursor"] == (cursors[-1] if cursors else None)
        return data

    return read


def ids(page: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in page["edges"]]


@pytest.mark.parametrize("name", sorted(CONNECTIONS))
async def test_every_connection_reads_the_same_backwards(
    graphql_client: GraphQLClient, world: World, name: str
) -> None:
    await populate(world)
    read = reader(graphql_client, world, name)
    whole = await read({"first": 100})
    expected, total = ids(whole), whole["totalCount"]
    assert len(expected) == total >= 3 and not whole["pageInfo"]["hasNextPage"]

    for size in (1, 2):
        seen: list[str] = []
        before = None
        while True:
            page = await read({"last": size, "before": before})
            assert page["totalCount"] == total
            assert page["pageInfo"]["hasNextPage"] == (before is not None)
            seen[:0] = ids(page)
            if not page["pageInfo"]["hasPreviousPage"]:
                break
            before = page["pageInfo"]["startCursor"]
        assert seen == expected, (name, size)

    # a forward page's cursor serves as `before`, a backward page's as `after`
    middle = len(expected) // 2
    head = await read({"first": middle})
    assert (
        ids(await read({"last": 100, "before": head["pageInfo"]["endCursor"]}))
        == (expected[: middle - 1])
    )
    tail = await read({"last": len(expected) - middle})
    assert ids(tail) == expected[middle:]
    assert (
        ids(await read({"first": 100, "after": tail["pageInfo"]["startCursor"]}))
        == (expected[middle + 1 :])
    )
    assert ids(await read({})) == expected[:20]  # neither first nor last: the first 20


MIXED: list[tuple[dict[str, Any], str]] = [
    ({"first": 2, "last": 2}, "last"),
    ({"after": "x", "before": "y"}, "before"),
    ({"first": 2, "before": "y"}, "before"),
    ({"last": 2, "after": "x"}, "last"),
    ({"last": 101}, "last"),
    ({"last": -1}, "last"),
    ({"before": "not a cursor"}, "before"),
]


@pytest.mark.parametrize("name", sorted(CONNECTIONS))
async def test_mixed_directions_oversized_pages_and_bad_cursors_are_refused(
    graphql_client: GraphQLClient, world: World, name: str
) -> None:
    _, viewer, _ = CONNECTIONS[name]
    token = getattr(world, viewer).token
    audited = await AuditEvent.all().count()
    for arguments, field in MIXED:
        result = await graphql_client.run(document(name), arguments, token=token)
        assert result["data"] is None, (name, arguments, result)
        [error] = result["errors"]
        assert error["extensions"] == {"code": "INVALID_INPUT", "field": [field]}, (
            name,
            arguments,
            error,
        )
    assert await AuditEvent.all().count() == audited


async def test_the_refusal_says_what_to_ask_instead(
    graphql_client: GraphQLClient, world: World
) -> None:
    result = await graphql_client.run(
        document("users"), {"first": 5, "last": 5}, token=world.admin.token
    )
    [error] = result["errors"]
    assert error["message"] == (
        "last pages backward and cannot be given with first: ask for first/after (forward)"
        " or last/before (backward)"
    )
    result = await graphql_client.run(document("users"), {"last": 101}, token=world.admin.token)
    assert result["errors"][0]["message"] == "last must be between 0 and 100"


def backwards(query: str) -> str:
    """The document with every page read from the end: `first:` arguments become `last:`."""
    return re.sub(r"(?<![$\w])first:", "last:", query)


async def statements(
    graphql_client: GraphQLClient, counter: QueryCounter, token: str, query: str, size: int
) -> tuple[int, int]:
    await graphql_client.data("{ viewer { id } }", token=token)  # token bookkeeping
    counter.reset()
    data = await graphql_client.data(query, {"first": size}, token=token)
    (root,) = data.values()
    root = root.get("certifications", root)
    return len(root["edges"]), counter.count


@pytest.mark.parametrize("query", [LEARNER_LIST, CATALOG], ids=["learner-list", "catalog"])
async def test_a_backward_page_costs_what_a_forward_one_does(
    graphql_client: GraphQLClient, world: World, sql_queries: QueryCounter, query: str
) -> None:
    await seed(world, 30)
    token = world.learner.token
    forward = await statements(graphql_client, sql_queries, token, query, 25)
    forward_statements = list(sql_queries.statements)
    backward = await statements(graphql_client, sql_queries, token, backwards(query), 25)
    assert forward[0] == backward[0] == 25
    assert forward[1] == backward[1] <= MAX_STATEMENTS, (
        forward_statements,
        sql_queries.statements,
    )
    assert not any(" OFFSET " in s.upper() for s in sql_queries.statements)


@pytest.mark.parametrize(
    ("query", "viewer"),
    [(USERS_DEEP, "admin"), (REVIEW_QUEUE, "manager"), (AUDIT_LOG, "admin")],
    ids=["users-deep", "review-queue", "audit-log"],
)
async def test_nested_backward_pages_cost_what_forward_ones_do(
    graphql_client: GraphQLClient,
    world: World,
    sql_queries: QueryCounter,
    query: str,
    viewer: str,
) -> None:
    await people(world, 12)
    token = getattr(world, viewer).token
    counts = []
    for document_ in (query, backwards(query)):
        await graphql_client.data("{ viewer { id } }", token=token)
        for size in (2, 10):
            sql_queries.reset()
            data = await graphql_client.data(document_, {"first": size}, token=token)
            (root,) = data.values()
            assert len(root["edges"]) == size
            counts.append(sql_queries.count)
    assert len(set(counts)) == 1, counts


def test_the_cost_estimate_counts_last_as_it_counts_first() -> None:
    schema = build_schema().graphql_schema

    def cost(query: str, variables: dict[str, Any] | None = None) -> int:
        operation = get_operation_ast(parse(query))
        assert operation is not None
        return estimate_cost(schema, operation, {}, variables or {}, max_page_size=100)

    forward = "query($n: Int) { courses(first: $n) { edges { node { id name } } } }"
    for n in (1, 50, 100):
        assert cost(backwards(forward), {"n": n}) == cost(forward, {"n": n}) == 2 + n * 3
    assert cost("{ courses(last: 100) { edges { node { id } } } }") == 2 + 100 * 2
    assert cost("{ courses { edges { node { id } } } }") == 2 + 20 * 2  # the default page


async def test_a_backward_page_of_a_nested_list_is_per_parent(
    graphql_client: GraphQLClient, world: World
) -> None:
    """`users { certifications(last: 1) }`: each user's own last enrollment."""
    await people(world, 3)
    query = (
        "{ users(role: LEARNER) { edges { node { id certifications(last: 1, sort: NAME_ASC) {"
        " totalCount pageInfo { hasPreviousPage hasNextPage }"
        " edges { node { certification { name } learner { id } } } } } } } }"
    )
    data = await graphql_client.data(query, token=world.admin.token)
    checked = 0
    for edge in data["users"]["edges"]:
        lists = edge["node"]["certifications"]
        if lists["totalCount"] == 2:
            [only] = lists["edges"]
            assert only["node"]["certification"]["name"] == "Proof"  # after "Courses"
            assert only["node"]["learner"]["id"] == edge["node"]["id"]
            assert lists["pageInfo"] == {"hasPreviousPage": True, "hasNextPage": False}
            checked += 1
    assert checked == 3
