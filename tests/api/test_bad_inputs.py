"""Issue 11's malformed inputs, in process: each answers INVALID_INPUT (or reads as not
found), changes nothing and never reaches the database as an error."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from gql.api.ids import encode_id
from gql.domain import enrollments
from gql.store.models import AuditEvent, Certification, Course, User
from tests.api.conftest import GraphQLClient, World, make_certification
from tests.conftest import ON_POSTGRES, QueryCounter


def cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# Each list with the document that pages it and the cursor kind of its default sort.
LISTS = {
    "users": ("query($a: String) { users(after: $a) { totalCount } }", "users"),
    "courses": ("query($a: String) { courses(after: $a) { totalCount } }", "courses:NAME_ASC"),
    "certifications": (
        "query($a: String) { certifications(after: $a) { totalCount } }",
        "catalog:RELEVANCE",
    ),
    "viewer.certifications": (
        "query($a: String) { viewer { certifications(after: $a) { totalCount } } }",
        "enrollments:RELEVANCE",
    ),
    "evidenceReviewQueue": (
        "query($a: String) { evidenceReviewQueue(after: $a) { totalCount } }",
        "review-queue",
    ),
    "auditEvents": ("query($a: String) { auditEvents(after: $a) { totalCount } }", "audit"),
}


def crafted(kind: str) -> dict[str, str]:
    """Cursors of this list's kind that no page made."""
    return {
        "huge float": cursor([kind, ["x", 1e30]]),
        "huge int": cursor([kind, [2**70] * 7]),
        "wrong types": cursor([kind, [{"a": 1}, [1], True, "x", None, 3.5, {"t": 5}]]),
        "too short": cursor([kind, []]),
        "too long": cursor([kind, list(range(50))]),
        "not a list": cursor({"kind": kind}),
        "null": cursor(None),
        "nul text": cursor([kind, ["a\u0000b", 1]]),
        "out of calendar": cursor([kind, [{"t": "0001-01-01T00:00:00+01:00"}, 1]]),
        "deep": raw_cursor("[" * 5000 + "]" * 5000),
        "not base64": "%%%not-base64%%%",
        "not json": raw_cursor("{{{"),
    }


@pytest.mark.parametrize("list_name", sorted(LISTS))
async def test_crafted_cursors_are_invalid_input(
    graphql_client: GraphQLClient, world: World, list_name: str
) -> None:
    document, kind = LISTS[list_name]
    token = world.admin.token if list_name != "viewer.certifications" else world.learner.token
    if list_name == "evidenceReviewQueue":
        token = world.manager.token
    before = await AuditEvent.all().count()
    for case, after in crafted(kind).items():
        result = await graphql_client.run(document, {"a": after}, token=token)
        assert result["data"] is None, (list_name, case, result)
        [error] = result["errors"]
        assert error["extensions"] == {"code": "INVALID_INPUT", "field": ["after"]}, (
            list_name,
            case,
            error,
        )
    assert await AuditEvent.all().count() == before


async def test_a_users_certifications_cursor_is_checked_too(
    graphql_client: GraphQLClient, world: World
) -> None:
    document = (
        "query($a: String, $id: ID!) { user(id: $id) { certifications(after: $a) { totalCount } } }"
    )
    for case, after in crafted("enrollments:RELEVANCE").items():
        result = await graphql_client.run(
            document, {"a": after, "id": world.learner.id}, token=world.admin.token
        )
        codes = [e["extensions"]["code"] for e in result["errors"]]
        assert codes == ["INVALID_INPUT"], (case, result)


async def test_a_real_cursor_still_pages(graphql_client: GraphQLClient, world: World) -> None:
    for i in range(3):
        cert = await make_certification(f"Cert {i}", world.course_ids[:1])
        await enrollments.start_certification(world.learner.actor, cert)
    query = (
        "query($a: String) { viewer { certifications(first: 2, after: $a) {"
        " edges { node { certification { name } } } pageInfo { endCursor } } } }"
    )
    first = await graphql_client.data(query, {"a": None}, token=world.learner.token)
    end = first["viewer"]["certifications"]["pageInfo"]["endCursor"]
    second = await graphql_client.data(query, {"a": end}, token=world.learner.token)
    assert len(second["viewer"]["certifications"]["edges"]) == 1


@pytest.mark.parametrize("field", ["users", "courses", "certifications"])
async def test_a_search_over_200_characters_is_refused(
    graphql_client: GraphQLClient, world: World, field: str
) -> None:
    document = f"query($s: String) {{ {field}(search: $s) {{ totalCount }} }}"
    result = await graphql_client.run(document, {"s": "a" * 50_000}, token=world.admin.token)
    assert result["data"] is None
    [error] = result["errors"]
    assert error["extensions"] == {"code": "INVALID_INPUT", "field": ["search"]}
    assert "200 characters" in error["message"]
    ok = await graphql_client.data(document, {"s": "a" * 200}, token=world.admin.token)
    assert ok[field]["totalCount"] >= 0


@pytest.mark.parametrize("pk", [2**31, 2**40, 2**63 - 1])
async def test_ids_outside_the_column_range_read_as_not_found(
    graphql_client: GraphQLClient, world: World, pk: int
) -> None:
    for type_name, field in [
        ("User", "user"),
        ("Course", "course"),
        ("Certification", "certification"),
    ]:
        data = await graphql_client.data(
            f"query($id: ID!) {{ {field}(id: $id) {{ id }} node(id: $id) {{ id }} }}",
            {"id": encode_id(type_name, pk)},
            token=world.admin.token,
        )
        assert data == {field: None, "node": None}
    result = await graphql_client.data(
        "mutation($id: ID!) { startCertification(certificationId: $id) { errors { code } } }",
        {"id": encode_id("Certification", pk)},
        token=world.learner.token,
    )
    assert result["startCertification"]["errors"] == [{"code": "NOT_FOUND"}]


async def _delete_user_row_only(user_id: int) -> None:
    """Delete a user's row as a hand-made SQL session might: without the cascade."""
    if ON_POSTGRES:
        async with in_transaction() as conn:
            await conn.execute_script(
                "SET LOCAL session_replication_role = replica;"
                f' DELETE FROM "user" WHERE id = {int(user_id)}'
            )
    else:
        connection = get_connection("default")
        await connection.execute_script("PRAGMA foreign_keys = OFF")
        try:
            await connection.execute_script(f'DELETE FROM "user" WHERE id = {int(user_id)}')
        finally:
            await connection.execute_script("PRAGMA foreign_keys = ON")


async def test_a_token_whose_user_is_gone_is_unauthenticated(
    graphql_client: GraphQLClient, world: World
) -> None:
    await _delete_user_row_only(world.other.user.id)
    assert not await User.filter(id=world.other.user.id).exists()
    response = await graphql_client.post("{ viewer { id } }", token=world.other.token)
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


HIDDEN_PROBES = """
query($id: ID!) {
  a: node(id: $id) { id } b: node(id: $id) { id } c: node(id: $id) { id }
  d: user(id: $id) { id } e: user(id: $id) { id }
}"""


async def test_hidden_reads_are_audited_in_one_batch_after_the_same_path_as_a_miss(
    graphql_client: GraphQLClient, world: World, sql_queries: QueryCounter
) -> None:
    token = world.learner.token
    await graphql_client.data("{ viewer { id } }", token=token)  # token bookkeeping
    hidden, missing = world.other.id, encode_id("User", 999_999)

    sql_queries.reset()
    assert await graphql_client.data(HIDDEN_PROBES, {"id": missing}, token=token) == dict.fromkeys(
        "abcde"
    )
    miss = list(sql_queries.statements)
    sql_queries.reset()
    assert await graphql_client.data(HIDDEN_PROBES, {"id": hidden}, token=token) == dict.fromkeys(
        "abcde"
    )
    probe = list(sql_queries.statements)

    inserts = [s for s in probe if s.lstrip().startswith('INSERT INTO "audit_event"')]
    assert len(inserts) == 1, probe  # one batch, after the answer
    assert probe[-1] == inserts[0]
    assert len(probe[:-1]) == len(miss), (probe, miss)  # no transaction of its own inline
    rows = await AuditEvent.filter(action="denied:user").order_by("id")
    assert [(r.actor_id, r.object_id) for r in rows] == [
        (world.learner.user.id, str(world.other.user.id))
    ] * 5


NUL_CASES = {
    "literal": (
        'mutation { createCourse(input: {name: "A\\u0000B"}) { course { id } } }',
        None,
        "a string at offset",
    ),
    "variable": (
        "mutation C($name: String!) { createCourse(input: {name: $name}) { course { id } } }",
        {"name": "A\x00B"},
        "the variable $name",
    ),
    "nested in JSON": (
        "mutation C($input: CertificationInput!) {"
        " createCertification(input: $input) { certification { id } } }",
        {
            "input": {
                "name": "Cert",
                "kind": "INTERNAL",
                "type": "PERPETUAL",
                "policyConfig": {"notes": ["ok", "bad\x00"]},
            }
        },
        "the variable $input.policyConfig.notes[1]",
    ),
}


@pytest.mark.parametrize("case", sorted(NUL_CASES))
async def test_text_holding_nul_is_refused_before_anything_runs(
    graphql_client: GraphQLClient, world: World, case: str
) -> None:
    """PostgreSQL cannot store U+0000 in text or JSON: refused alike on both databases, never
    an internal error, nothing written."""
    document, variables, where = NUL_CASES[case]
    courses_before = await Course.all().count()
    certifications_before = await Certification.all().count()

    body = await graphql_client.run(document, variables, token=world.admin.token)

    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "NUL character (U+0000)" in error["message"] and where in error["message"]
    assert await Course.all().count() == courses_before
    assert await Certification.all().count() == certifications_before
