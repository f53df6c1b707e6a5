"""External IDs (docs/api.md, "External IDs and re-runs"): set on create and update of users,
courses and certifications, shown on the types, found by the *ByExternalId lookups; a create
with one that exists is CONFLICT carrying the holder's ID (also when two creates race), so a
re-run converges instead of duplicating."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gql.domain import certifications, courses, external_ids, users
from gql.domain.certifications import CertificationData
from gql.domain.errors import Conflict
from gql.store.models import (
    AuditEvent,
    Certification,
    CertificationKind,
    CertificationType,
    Course,
    Role,
    User,
)
from tests.api.conftest import SYSTEM, GraphQLClient, World, table_counts

ERRORS = "errors { code message field existingId }"
CREATE_USER = (
    "mutation C($input: UserInput!) { createUser(input: $input) { "
    f"user {{ id name externalId }} {ERRORS} }} }}"
)
UPDATE_USER = (
    "mutation U($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { "
    f"user {{ id email externalId }} {ERRORS} }} }}"
)
CREATE_COURSE = (
    "mutation C($input: CourseInput!) { createCourse(input: $input) { "
    f"course {{ id name externalId }} {ERRORS} }} }}"
)
CREATE_CERTIFICATION = (
    "mutation C($input: CertificationInput!) { createCertification(input: $input) { "
    f"certification {{ id name state externalId }} {ERRORS} }} }}"
)
FIND = """
query F($key: String!) {
  userByExternalId(externalId: $key) { id name externalId }
  courseByExternalId(externalId: $key) { id name externalId }
  certificationByExternalId(externalId: $key) { id name externalId }
}"""


async def mutate(
    client: GraphQLClient, document: str, token: str, **variables: Any
) -> dict[str, Any]:
    data = await client.data(document, variables, token=token)
    (payload,) = data.values()
    assert isinstance(payload, dict)
    return payload


def user_input(name: str, key: str | None = None, **extra: Any) -> dict[str, Any]:
    email = name.lower().replace(" ", ".") + "@example.com"
    fields: dict[str, Any] = {"name": name, "email": email, "role": "LEARNER", **extra}
    if key is not None:
        fields["externalId"] = key
    return fields


async def test_a_user_created_with_an_external_id_is_found_by_it(
    graphql_client: GraphQLClient, world: World
) -> None:
    created = await mutate(
        graphql_client, CREATE_USER, world.admin.token, input=user_input("Hana Hr", " E-1001 ")
    )
    assert created["errors"] == []
    user = created["user"]
    assert user["externalId"] == "E-1001"  # surrounding white space is not part of the key
    found = await graphql_client.data(FIND, {"key": "E-1001"}, token=world.admin.token)
    assert found == {
        "userByExternalId": user,
        "courseByExternalId": None,
        "certificationByExternalId": None,
    }
    # exact match: another case is another key
    other = await graphql_client.data(FIND, {"key": "e-1001"}, token=world.admin.token)
    assert other["userByExternalId"] is None
    row = await User.get(external_id="E-1001")
    audit = await AuditEvent.get(action="createUser", object_id=str(row.id))
    assert audit.after is not None and audit.after["externalId"] == "E-1001"


async def test_creating_again_is_a_conflict_carrying_the_existing_id(
    graphql_client: GraphQLClient, world: World
) -> None:
    first = await mutate(
        graphql_client, CREATE_USER, world.admin.token, input=user_input("Hana Hr", "E-1")
    )
    existing = first["user"]["id"]
    before = await table_counts(audit=True)

    # the same key with another e-mail: a re-run after the HR system changed the address
    again = await mutate(
        graphql_client,
        CREATE_USER,
        world.admin.token,
        input=user_input("Hana Renamed", "E-1", email="hana.new@example.com"),
    )
    assert again["user"] is None
    [error] = again["errors"]
    assert error["code"] == "CONFLICT" and error["existingId"] == existing
    assert error["field"] == ["externalId"]
    # the same e-mail without a key: CONFLICT naming that user too
    same_email = await mutate(
        graphql_client, CREATE_USER, world.admin.token, input=user_input("Hana Hr")
    )
    assert [(e["code"], e["field"], e["existingId"]) for e in same_email["errors"]] == [
        ("CONFLICT", ["email"], existing)
    ]
    assert await table_counts(audit=True) == before


async def test_other_errors_carry_no_existing_id(
    graphql_client: GraphQLClient, world: World
) -> None:
    for key, message in (("   ", "must not be empty"), ("x" * 201, "at most 200"), ("a\x07", "")):
        payload = await mutate(
            graphql_client, CREATE_USER, world.admin.token, input=user_input("Ivo Ill", key)
        )
        [error] = payload["errors"]
        assert error["code"] == "INVALID_INPUT" and error["field"] == ["externalId"]
        assert message in error["message"] and error["existingId"] is None
    assert not await User.filter(name="Ivo Ill").exists()


async def test_keys_are_unique_per_type_not_across_types(
    graphql_client: GraphQLClient, world: World
) -> None:
    user = await mutate(
        graphql_client, CREATE_USER, world.admin.token, input=user_input("Kai Key", "K-1")
    )
    course = await mutate(
        graphql_client,
        CREATE_COURSE,
        world.admin.token,
        input={"name": "Safety 101", "externalId": "K-1"},
    )
    cert = await mutate(
        graphql_client,
        CREATE_CERTIFICATION,
        world.admin.token,
        input={"name": "Safety", "kind": "INTERNAL", "type": "PERPETUAL", "externalId": "K-1"},
    )
    assert user["errors"] == course["errors"] == cert["errors"] == []
    assert cert["certification"].pop("state") == "DRAFT"
    found = await graphql_client.data(FIND, {"key": "K-1"}, token=world.admin.token)
    assert found == {
        "userByExternalId": user["user"],
        "courseByExternalId": course["course"],
        "certificationByExternalId": cert["certification"],
    }
    # a second course or certification with the key: CONFLICT naming the first
    course_again = await mutate(
        graphql_client,
        CREATE_COURSE,
        world.admin.token,
        input={"name": "Safety 101 (copy)", "externalId": "K-1"},
    )
    cert_again = await mutate(
        graphql_client,
        CREATE_CERTIFICATION,
        world.admin.token,
        input={"name": "Safety", "kind": "INTERNAL", "type": "PERPETUAL", "externalId": "K-1"},
    )
    assert [(e["code"], e["field"], e["existingId"]) for e in course_again["errors"]] == [
        ("CONFLICT", ["input", "externalId"], course["course"]["id"])
    ]
    assert [(e["code"], e["field"], e["existingId"]) for e in cert_again["errors"]] == [
        ("CONFLICT", ["input", "externalId"], cert["certification"]["id"])
    ]
    assert await Course.filter(external_id="K-1").count() == 1
    assert await Certification.filter(name="Safety").count() == 1


async def test_the_lookups_follow_the_visibility_rules(
    graphql_client: GraphQLClient, world: World
) -> None:
    for person, key in ((world.learner, "L-1"), (world.other, "O-1")):
        await User.filter(id=person.user.id).update(external_id=key)
    await certifications.create_certification(
        SYSTEM,
        CertificationData(
            name="Draft", kind=CertificationKind.INTERNAL, type=CertificationType.PERPETUAL
        ),
    )
    await Certification.filter(name="Draft").update(external_id="D-1")
    query = "query F($key: String!) { userByExternalId(externalId: $key) { id externalId } }"

    async def finds(token: str, key: str) -> Any:
        return (await graphql_client.data(query, {"key": key}, token=token))["userByExternalId"]

    # the manager sees their report (and the key on them), not another learner
    assert await finds(world.manager.token, "L-1") == {"id": world.learner.id, "externalId": "L-1"}
    assert await finds(world.manager.token, "O-1") is None
    assert await finds(world.learner.token, "O-1") is None
    assert await finds(world.learner.token, "L-1") == {"id": world.learner.id, "externalId": "L-1"}
    draft = 'query { certificationByExternalId(externalId: "D-1") { name } }'
    learner_view = await graphql_client.data(draft, token=world.learner.token)
    admin_view = await graphql_client.data(draft, token=world.admin.token)
    assert learner_view == {"certificationByExternalId": None}
    assert admin_view == {"certificationByExternalId": {"name": "Draft"}}


async def test_update_user_sets_changes_and_clears_the_key(
    graphql_client: GraphQLClient, world: World
) -> None:
    await User.filter(id=world.other.user.id).update(external_id="TAKEN")

    async def update(**fields: Any) -> dict[str, Any]:
        return await mutate(
            graphql_client, UPDATE_USER, world.admin.token, id=world.learner.id, input=fields
        )

    assert (await update(externalId="L-7"))["user"]["externalId"] == "L-7"
    unchanged = await update(email="lea.new@example.com")  # not named: kept
    assert unchanged["user"] == {
        "id": world.learner.id,
        "email": "lea.new@example.com",
        "externalId": "L-7",
    }
    taken = await update(externalId="TAKEN", email="lea.other@example.com")
    assert taken["user"] is None
    assert [(e["code"], e["field"], e["existingId"]) for e in taken["errors"]] == [
        ("CONFLICT", ["input", "externalId"], world.other.id)
    ]
    assert (await User.get(id=world.learner.user.id)).email == "lea.new@example.com"
    assert (await update(externalId=None))["user"]["externalId"] is None
    audits = await AuditEvent.filter(action="updateUser", object_id=str(world.learner.user.id))
    changes = [(a.before, a.after) for a in sorted(audits, key=lambda a: a.id)]
    assert changes == [
        ({"externalId": None}, {"externalId": "L-7"}),
        ({"email": "lea.learner@example.com"}, {"email": "lea.new@example.com"}),
        ({"externalId": "L-7"}, {"externalId": None}),
    ]
    # the same key again changes nothing and writes nothing
    await update(externalId="L-8")
    count = await AuditEvent.filter(action="updateUser").count()
    assert (await update(externalId="L-8"))["errors"] == []
    assert await AuditEvent.filter(action="updateUser").count() == count


async def test_two_creates_racing_for_one_key_make_one_user(world: World) -> None:
    """Run together: one is created, the other is CONFLICT naming it (never an internal
    error). On PostgreSQL both may pass the check; the unique index then decides."""

    async def create(i: int) -> Any:
        return await users.create_user(
            SYSTEM,
            name=f"Racer {i}",
            email=f"racer{i}@example.com",
            role=Role.LEARNER,
            external_id="RACE-1",
        )

    results = await asyncio.gather(*(create(i) for i in range(2)), return_exceptions=True)
    made = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(made) == 1 and len(refused) == 1
    assert isinstance(refused[0], Conflict)
    assert refused[0].existing == ("User", made[0].id)
    assert await User.filter(external_id="RACE-1").count() == 1


@pytest.mark.parametrize("kind", ["User", "Course", "Certification"])
async def test_a_unique_violation_the_check_missed_is_a_conflict_with_the_holder(
    world: World, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """What a concurrent create does on PostgreSQL, made certain: the use case's own check
    sees nothing, the unique index refuses the insert; the answer names the holder."""

    async def create(key: str, i: int) -> Any:
        if kind == "User":
            return await users.create_user(
                SYSTEM, name=f"U{i}", email=f"u{i}@example.com", role=Role.LEARNER, external_id=key
            )
        if kind == "Course":
            return await courses.create_course(SYSTEM, name=f"C{i}", external_id=key)
        data = CertificationData(
            name=f"Z{i}",
            kind=CertificationKind.INTERNAL,
            type=CertificationType.PERPETUAL,
            external_id=key,
        )
        return await certifications.create_certification(SYSTEM, data)

    holder = await create("SAME", 1)
    module = {"User": users, "Course": courses, "Certification": certifications}[kind]

    async def sees_nothing(keys: Any) -> None:
        return None

    monkeypatch.setattr(module, "check_free", sees_nothing)
    before = await table_counts(audit=True)
    with pytest.raises(Conflict) as refused:
        await create("SAME", 2)
    assert refused.value.existing == (kind, holder.id)
    assert refused.value.field == (("externalId",) if kind == "User" else ("input", "externalId"))
    assert await table_counts(audit=True) == before


async def test_external_ids_of_many_objects_cost_one_statement(
    graphql_client: GraphQLClient, world: World, sql_queries: Any
) -> None:
    for i, person in enumerate((world.admin, world.manager, world.learner, world.other)):
        await User.filter(id=person.user.id).update(external_id=f"P-{i}")
    query = "{ users(first: 50) { edges { node { name externalId } } } }"
    await graphql_client.data("{ viewer { id } }", token=world.admin.token)
    sql_queries.reset()
    data = await graphql_client.data(query, token=world.admin.token)
    without = "{ users(first: 50) { edges { node { name } } } }"
    with_keys = sql_queries.count
    sql_queries.reset()
    await graphql_client.data(without, token=world.admin.token)
    assert with_keys == sql_queries.count + 1
    keys = {e["node"]["name"]: e["node"]["externalId"] for e in data["users"]["edges"]}
    assert keys == {
        "Ada Admin": "P-0",
        "Max Manager": "P-1",
        "Lea Learner": "P-2",
        "Otto Other": "P-3",
    }


async def test_find_by_external_id_ignores_keys_that_cannot_be_stored(db: None) -> None:
    assert await external_ids.find_by_external_id("User", "") is None
    assert await external_ids.find_by_external_id("User", "x" * 500) is None


UPDATE_COURSE = (
    "mutation U($id: ID!, $changes: CourseChanges!) { updateCourse(id: $id, changes: $changes) "
    f"{{ course {{ id name externalId }} {ERRORS} }} }}"
)
UPDATE_CERTIFICATION = (
    "mutation U($id: ID!, $input: CertificationInput!) { updateCertification(id: $id, "
    f"input: $input) {{ certification {{ id name externalId policy {{ name }} }} {ERRORS} }} }}"
)


async def test_courses_and_certifications_change_their_keys_on_update(
    graphql_client: GraphQLClient, world: World
) -> None:
    token = world.admin.token
    first = await mutate(
        graphql_client, CREATE_COURSE, token, input={"name": "A", "externalId": "C-A"}
    )
    second = await mutate(graphql_client, CREATE_COURSE, token, input={"name": "B"})
    course_id = second["course"]["id"]

    async def update_course(**changes: Any) -> dict[str, Any]:
        return await mutate(graphql_client, UPDATE_COURSE, token, id=course_id, changes=changes)

    assert (await update_course(externalId="C-B"))["course"]["externalId"] == "C-B"
    kept = await update_course(name="B renamed")
    assert kept["course"] == {"id": course_id, "name": "B renamed", "externalId": "C-B"}
    taken = await update_course(externalId="C-A", name="B again")
    assert [(e["code"], e["field"], e["existingId"]) for e in taken["errors"]] == [
        ("CONFLICT", ["changes", "externalId"], first["course"]["id"])
    ]
    assert (await Course.get(external_id="C-B")).name == "B renamed"  # nothing written
    assert (await update_course(externalId=None))["course"]["externalId"] is None
    audits = await AuditEvent.filter(action="updateCourse").order_by("id")
    assert [(a.before or {}).get("externalId", "-") for a in audits] == [None, "-", "C-B"]

    cert = await mutate(
        graphql_client,
        CREATE_CERTIFICATION,
        token,
        input={"name": "Z", "kind": "INTERNAL", "type": "PERPETUAL", "externalId": "Z-1"},
    )
    cert_id = cert["certification"]["id"]
    renamed = await mutate(
        graphql_client,
        UPDATE_CERTIFICATION,
        token,
        id=cert_id,
        input={"name": "Z renamed", "kind": "INTERNAL", "type": "PERPETUAL"},
    )
    assert renamed["certification"]["externalId"] == "Z-1"  # not named: kept
    moved = await mutate(
        graphql_client,
        UPDATE_CERTIFICATION,
        token,
        id=cert_id,
        input={"name": "Z renamed", "kind": "INTERNAL", "type": "PERPETUAL", "externalId": "Z-2"},
    )
    assert moved["errors"] == []
    assert moved["certification"]["externalId"] == "Z-2"
    assert moved["certification"]["policy"] == {"name": "mandatory-subset"}
    found = await graphql_client.data(FIND, {"key": "Z-2"}, token=token)
    assert found["certificationByExternalId"]["id"] == cert_id
    last = await AuditEvent.filter(action="updateCertification").order_by("-id").first()
    assert last is not None and last.before is not None and last.after is not None
    assert (last.before["externalId"], last.after["externalId"]) == ("Z-1", "Z-2")
