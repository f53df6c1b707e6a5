"""People's lifecycle (issue 16, item 2): updateUser changes only what is given (an explicit
null clears the manager), refuses cycles, taken e-mails and non-admins (audited);
deactivateUser refuses the person's API tokens and provider sign-ins at once, keeping their
history; reactivateUser restores them. Through GraphQL over the app, on the test database
(SQLite, or PostgreSQL with CERTGRAPH_TEST_DATABASE_URL); the CLI as a subprocess."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gql.api.ids import encode_id
from gql.app import create_app
from gql.domain import enrollments, people
from gql.domain.access import DEACTIVATED_ACCOUNT, Actor, authenticate
from gql.domain.errors import NotAllowed, Unauthenticated
from gql.plugins import PluginHost
from gql.settings import Settings
from gql.store.models import (
    ApiToken,
    AuditEvent,
    Award,
    CourseProgress,
    Enrollment,
    User,
    UserIdentity,
)
from gql.vocabulary import Role
from tests.api.conftest import (
    SYSTEM,
    GraphQLClient,
    Person,
    World,
    make_certification,
    make_person,
    table_counts,
)
from tests.auth.conftest import AUDIENCE, Provider, provider  # noqa: F401 (fixture)
from tests.test_cli import Cli, copy_database

USER_FIELDS = "id name email role active deactivatedAt manager { id }"
UPDATE = (
    "mutation U($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) {"
    f" user {{ {USER_FIELDS} }} errors {{ code field message }} }} }}"
)
DEACTIVATE = (
    "mutation D($id: ID!) { deactivateUser(id: $id) {"
    f" user {{ {USER_FIELDS} }} errors {{ code field message }} }} }}"
)
REACTIVATE = (
    "mutation R($id: ID!) { reactivateUser(id: $id) {"
    f" user {{ {USER_FIELDS} }} errors {{ code field message }} }} }}"
)
VIEWER = "{ viewer { id email active deactivatedAt } }"


async def update(client: GraphQLClient, token: str, user_id: str, **input: Any) -> dict[str, Any]:
    data = await client.data(UPDATE, {"id": user_id, "input": input}, token=token)
    payload: dict[str, Any] = data["updateUser"]
    return payload


async def set_active(
    client: GraphQLClient, token: str, user_id: str, *, active: bool
) -> dict[str, Any]:
    document, name = (REACTIVATE, "reactivateUser") if active else (DEACTIVATE, "deactivateUser")
    data = await client.data(document, {"id": user_id}, token=token)
    payload: dict[str, Any] = data[name]
    return payload


async def audit_rows(action: str) -> list[dict[str, Any]]:
    return list(
        await AuditEvent.filter(action=action)
        .order_by("id")
        .values("actor_id", "object_id", "before", "after")
    )


def the_error(payload: dict[str, Any]) -> tuple[str, list[str]]:
    assert payload["user"] is None, payload
    (error,) = payload["errors"]
    return error["code"], error["field"]


def person_of(user: User | Person) -> dict[str, Any]:
    return {"id": encode_id("User", user.id)}


# -- updateUser ------------------------------------------------------------------------------


async def test_only_the_fields_given_change(graphql_client: GraphQLClient, world: World) -> None:
    payload = await update(
        graphql_client, world.admin.token, world.learner.id, name="  Lea   Renamed "
    )
    assert payload["errors"] == []
    assert payload["user"] == {
        "id": world.learner.id,
        "name": "Lea Renamed",
        "email": world.learner.user.email,
        "role": "LEARNER",
        "active": True,
        "deactivatedAt": None,
        "manager": {"id": world.manager.id},
    }
    row = await User.get(id=world.learner.user.id)
    assert (row.name, row.email, row.role, row.manager_id) == (
        "Lea Renamed",
        world.learner.user.email,
        Role.LEARNER,
        world.manager.user.id,
    )
    assert await audit_rows("updateUser") == [
        {
            "actor_id": world.admin.user.id,
            "object_id": str(world.learner.user.id),
            "before": {"name": "Lea Learner"},
            "after": {"name": "Lea Renamed"},
        }
    ]


async def test_several_fields_at_once_audited_before_and_after(
    graphql_client: GraphQLClient, world: World
) -> None:
    payload = await update(
        graphql_client,
        world.admin.token,
        world.other.id,
        email="Otto.New@Example.COM",
        role="MANAGER",
        managerId=world.manager.id,
    )
    assert payload["errors"] == []
    user = payload["user"]
    assert (user["email"], user["role"], user["manager"]) == (
        "otto.new@example.com",
        "MANAGER",
        {"id": world.manager.id},
    )
    (row,) = await audit_rows("updateUser")
    assert row["before"] == {
        "email": "otto.other@example.com",
        "role": "LEARNER",
        "managerId": None,
    }
    assert row["after"] == {
        "email": "otto.new@example.com",
        "role": "MANAGER",
        "managerId": world.manager.user.id,
    }
    # the manager now sees Otto among their reports; the move is visible at once
    seen = await graphql_client.data(
        "query Q($id: ID!) { node(id: $id) { ... on User { name } } }",
        {"id": world.other.id},
        token=world.manager.token,
    )
    assert seen["node"] == {"name": "Otto Other"}


async def test_an_explicit_null_clears_the_manager_and_leaving_it_out_keeps_it(
    graphql_client: GraphQLClient, world: World
) -> None:
    kept = await update(graphql_client, world.admin.token, world.learner.id, role="LEARNER")
    assert kept["user"]["manager"] == {"id": world.manager.id}

    cleared = await update(graphql_client, world.admin.token, world.learner.id, managerId=None)
    assert cleared["errors"] == [] and cleared["user"]["manager"] is None
    assert (await User.get(id=world.learner.user.id)).manager_id is None
    (row,) = await audit_rows("updateUser")  # the first request changed nothing
    assert (row["before"], row["after"]) == (
        {"managerId": world.manager.user.id},
        {"managerId": None},
    )
    # the former manager no longer sees them
    seen = await graphql_client.data(
        "query Q($id: ID!) { node(id: $id) { id } }",
        {"id": world.learner.id},
        token=world.manager.token,
    )
    assert seen["node"] is None


async def test_a_request_that_changes_nothing_writes_nothing(
    graphql_client: GraphQLClient, world: World
) -> None:
    before = await table_counts(audit=True)
    payload = await update(
        graphql_client,
        world.admin.token,
        world.learner.id,
        name="Lea Learner",
        email="LEA.LEARNER@example.com",
    )
    assert payload["errors"] == [] and payload["user"]["name"] == "Lea Learner"
    empty = await update(graphql_client, world.admin.token, world.learner.id)
    assert empty["errors"] == [] and empty["user"]["id"] == world.learner.id
    assert await table_counts(audit=True) == before


@pytest.mark.parametrize(
    ("input", "code", "field"),
    [
        ({"name": "   "}, "INVALID_INPUT", ["input", "name"]),
        ({"name": "x" * 201}, "INVALID_INPUT", ["input", "name"]),
        ({"name": None}, "INVALID_INPUT", ["input", "name"]),
        ({"email": "not-an-address"}, "INVALID_INPUT", ["input", "email"]),
        ({"email": None}, "INVALID_INPUT", ["input", "email"]),
        ({"role": None}, "INVALID_INPUT", ["input", "role"]),
        ({"email": "max.manager@EXAMPLE.com"}, "CONFLICT", ["input", "email"]),
        ({"managerId": "not-an-id"}, "NOT_FOUND", ["input", "managerId"]),
        ({"name": "Fine", "managerId": "VXNlcjo5OTk5"}, "INVALID_INPUT", ["input", "managerId"]),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_written(
    graphql_client: GraphQLClient,
    world: World,
    input: dict[str, Any],
    code: str,
    field: list[str],
) -> None:
    before = await table_counts(audit=True)
    payload = await update(graphql_client, world.admin.token, world.learner.id, **input)
    assert the_error(payload) == (code, field), payload
    assert await table_counts(audit=True) == before
    row = await User.get(id=world.learner.user.id)
    assert (row.name, row.email) == ("Lea Learner", "lea.learner@example.com")


async def test_a_taken_email_says_whose(graphql_client: GraphQLClient, world: World) -> None:
    payload = await update(
        graphql_client, world.admin.token, world.learner.id, email=" Otto.Other@example.com "
    )
    assert payload["errors"] == [
        {
            "code": "CONFLICT",
            "field": ["input", "email"],
            "message": "a user with email otto.other@example.com already exists",
        }
    ]


async def test_an_unknown_user_is_not_found(graphql_client: GraphQLClient, world: World) -> None:
    for user_id in ("VXNlcjo5OTk5", "bm9wZQ==", world.course_gid(0)):
        payload = await update(graphql_client, world.admin.token, user_id, name="X")
        assert the_error(payload) == ("NOT_FOUND", ["id"]), payload


async def test_the_manager_must_be_an_active_manager_or_admin(
    graphql_client: GraphQLClient, world: World
) -> None:
    learner = await update(
        graphql_client, world.admin.token, world.other.id, managerId=world.learner.id
    )
    assert the_error(learner) == ("INVALID_INPUT", ["input", "managerId"])
    # an admin may manage
    admin = await update(
        graphql_client, world.admin.token, world.other.id, managerId=world.admin.id
    )
    assert admin["user"]["manager"] == {"id": world.admin.id}
    # a deactivated manager may not
    second = await make_person("Mia Manager", Role.MANAGER)
    await people.deactivate_user(SYSTEM, second.user.id)
    payload = await update(graphql_client, world.admin.token, world.other.id, managerId=second.id)
    assert the_error(payload) == ("INVALID_INPUT", ["input", "managerId"])
    assert "mia.manager@example.com is deactivated" in payload["errors"][0]["message"]


async def test_cycles_are_refused(graphql_client: GraphQLClient, world: World) -> None:
    # a chain: top <- middle <- bottom (each managed by the one before)
    top = await make_person("Tess Top", Role.MANAGER)
    middle = await make_person("Mick Middle", Role.MANAGER, manager=top.user)
    bottom = await make_person("Bea Bottom", Role.MANAGER, manager=middle.user)
    before = await table_counts(audit=True)
    field = ["input", "managerId"]

    self_managed = await update(graphql_client, world.admin.token, top.id, managerId=top.id)
    assert the_error(self_managed) == ("NOT_ALLOWED", field)
    direct = await update(graphql_client, world.admin.token, top.id, managerId=middle.id)
    assert the_error(direct) == ("NOT_ALLOWED", field)
    indirect = await update(graphql_client, world.admin.token, top.id, managerId=bottom.id)
    assert the_error(indirect) == ("NOT_ALLOWED", field)
    assert indirect["errors"][0]["message"] == (
        "bea.bottom@example.com reports to tess.top@example.com (directly or not): making "
        "them tess.top@example.com's manager would make a cycle"
    )
    assert await table_counts(audit=True) == before
    assert (await User.get(id=top.user.id)).manager_id is None

    # the chain may be rearranged without a cycle: bottom moves up under top
    moved = await update(graphql_client, world.admin.token, bottom.id, managerId=top.id)
    assert moved["errors"] == [] and moved["user"]["manager"] == {"id": top.id}
    # and then top may be managed by bottom's former manager? middle reports to top: no
    again = await update(graphql_client, world.admin.token, top.id, managerId=middle.id)
    assert the_error(again) == ("NOT_ALLOWED", field)
    # someone outside the chain may manage top
    outside = await update(graphql_client, world.admin.token, top.id, managerId=world.manager.id)
    assert outside["errors"] == []


async def test_two_concurrent_updates_cannot_make_a_cycle_together(world: World) -> None:
    """Each update alone is fine; together they would make a cycle. The second to lock the
    rows sees the first's write (PostgreSQL: FOR UPDATE; SQLite: one writer at a time)."""
    first = await make_person("Fay First", Role.MANAGER)
    second = await make_person("Sid Second", Role.MANAGER)
    for _ in range(5):
        outcomes = await asyncio.gather(
            people.update_user(SYSTEM, first.user.id, manager_id=second.user.id),
            people.update_user(SYSTEM, second.user.id, manager_id=first.user.id),
            return_exceptions=True,
        )
        refused = [o for o in outcomes if isinstance(o, NotAllowed)]
        assert len(refused) == 1, outcomes
        managers = dict(
            await User.filter(id__in=[first.user.id, second.user.id]).values_list(
                "id", "manager_id"
            )
        )
        assert None in managers.values(), managers
        await people.update_user(SYSTEM, first.user.id, manager_id=None)
        await people.update_user(SYSTEM, second.user.id, manager_id=None)


async def test_role_changes_keep_managers_managers_and_admins_admins(
    graphql_client: GraphQLClient, world: World
) -> None:
    # the manager has a report: demoting them would leave Lea with a learner as manager
    demote = await update(graphql_client, world.admin.token, world.manager.id, role="LEARNER")
    assert the_error(demote) == ("NOT_ALLOWED", ["input", "role"])
    # an admin's own role stays (another admin can change it)
    own = await update(graphql_client, world.admin.token, world.admin.id, role="MANAGER")
    assert the_error(own) == ("NOT_ALLOWED", ["input", "role"])
    assert (await User.get(id=world.admin.user.id)).role == Role.ADMIN
    # a manager made an admin still manages; without reports, one can be made a learner
    promoted = await update(graphql_client, world.admin.token, world.manager.id, role="ADMIN")
    assert promoted["user"]["role"] == "ADMIN"
    await update(graphql_client, world.admin.token, world.learner.id, managerId=None)
    demoted = await update(graphql_client, world.admin.token, world.manager.id, role="LEARNER")
    assert demoted["errors"] == [] and demoted["user"]["role"] == "LEARNER"
    # the new role holds from the demoted person's next request
    forbidden = await graphql_client.run(
        UPDATE, {"id": world.other.id, "input": {"name": "X"}}, token=world.manager.token
    )
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("who", ["manager", "learner"])
async def test_only_admins_change_people_and_refusals_are_audited(
    graphql_client: GraphQLClient, world: World, who: str
) -> None:
    person: Person = getattr(world, who)
    before = await table_counts()
    for document, variables in (
        (UPDATE, {"id": world.learner.id, "input": {"name": "Hacked"}}),
        (DEACTIVATE, {"id": world.other.id}),
        (REACTIVATE, {"id": world.other.id}),
    ):
        result = await graphql_client.run(document, variables, token=person.token)
        assert list(result["data"].values()) == [None]  # the mutation's own field
        assert [e["extensions"]["code"] for e in result["errors"]] == ["FORBIDDEN"]
    assert await table_counts() == before
    denied = (
        await AuditEvent.filter(action__startswith="denied:")
        .order_by("id")
        .values_list("actor_id", "action", "object_id")
    )
    assert denied == [
        (person.user.id, "denied:updateUser", str(world.learner.user.id)),
        (person.user.id, "denied:deactivateUser", str(world.other.user.id)),
        (person.user.id, "denied:reactivateUser", str(world.other.user.id)),
    ]
    assert (await User.get(id=world.learner.user.id)).name == "Lea Learner"


# -- deactivation ----------------------------------------------------------------------------


async def test_deactivation_refuses_the_persons_tokens_at_once(
    graphql_client: GraphQLClient, world: World
) -> None:
    assert (await graphql_client.data(VIEWER, token=world.learner.token))["viewer"]["active"]

    payload = await set_active(graphql_client, world.admin.token, world.learner.id, active=False)
    assert payload["errors"] == []
    user = payload["user"]
    assert user["active"] is False and user["deactivatedAt"] is not None
    row = await User.get(id=world.learner.user.id)
    assert row.deactivated_at is not None
    assert user["deactivatedAt"] == row.deactivated_at.isoformat()

    response = await graphql_client.post(VIEWER, token=world.learner.token)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    errors = response.json()["errors"]
    assert [(e["message"], e["extensions"]["code"]) for e in errors] == [
        (DEACTIVATED_ACCOUNT, "UNAUTHENTICATED")
    ]
    # the tokens are refused, not revoked; everyone else is unaffected
    assert await ApiToken.filter(user_id=world.learner.user.id, revoked_at=None).count() == 1
    assert (await graphql_client.data(VIEWER, token=world.other.token))["viewer"]["active"]
    assert await audit_rows("deactivateUser") == [
        {
            "actor_id": world.admin.user.id,
            "object_id": str(world.learner.user.id),
            "before": {"deactivatedAt": None},
            "after": {"deactivatedAt": row.deactivated_at.isoformat()},
        }
    ]
    # admins still see them, saying so
    seen = await graphql_client.data(
        "query Q($id: ID!) { node(id: $id) { ... on User { active deactivatedAt } } }",
        {"id": world.learner.id},
        token=world.admin.token,
    )
    assert seen["node"] == {"active": False, "deactivatedAt": user["deactivatedAt"]}


async def test_the_refusal_costs_the_one_lookup_statement(world: World, sql_queries: Any) -> None:
    await people.deactivate_user(SYSTEM, world.learner.user.id)
    sql_queries.reset()
    with pytest.raises(Unauthenticated) as refused:
        await authenticate(world.learner.token)
    assert refused.value.message == DEACTIVATED_ACCOUNT
    assert sql_queries.count == 1, sql_queries.statements


async def test_reactivation_restores_the_tokens(
    graphql_client: GraphQLClient, world: World
) -> None:
    await set_active(graphql_client, world.admin.token, world.learner.id, active=False)
    assert (await graphql_client.post(VIEWER, token=world.learner.token)).status_code == 401

    payload = await set_active(graphql_client, world.admin.token, world.learner.id, active=True)
    assert payload["errors"] == []
    assert (payload["user"]["active"], payload["user"]["deactivatedAt"]) == (True, None)
    viewer = (await graphql_client.data(VIEWER, token=world.learner.token))["viewer"]
    assert viewer == {
        "id": world.learner.id,
        "email": world.learner.user.email,
        "active": True,
        "deactivatedAt": None,
    }
    (row,) = await audit_rows("reactivateUser")
    assert row["after"] == {"deactivatedAt": None} and row["before"]["deactivatedAt"]


async def test_deactivating_twice_or_reactivating_an_active_person_changes_nothing(
    graphql_client: GraphQLClient, world: World
) -> None:
    first = await set_active(graphql_client, world.admin.token, world.learner.id, active=False)
    counts = await table_counts(audit=True)
    second = await set_active(graphql_client, world.admin.token, world.learner.id, active=False)
    assert second["errors"] == []
    assert second["user"]["deactivatedAt"] == first["user"]["deactivatedAt"]
    active = await set_active(graphql_client, world.admin.token, world.other.id, active=True)
    assert active["errors"] == [] and active["user"]["active"] is True
    assert await table_counts(audit=True) == counts


async def test_an_admin_cannot_deactivate_themself(
    graphql_client: GraphQLClient, world: World
) -> None:
    before = await table_counts(audit=True)
    payload = await set_active(graphql_client, world.admin.token, world.admin.id, active=False)
    assert the_error(payload) == ("NOT_ALLOWED", ["id"])
    assert await table_counts(audit=True) == before
    assert (await graphql_client.data(VIEWER, token=world.admin.token))["viewer"]["active"]
    # another admin can
    other_admin = await make_person("Abe Admin", Role.ADMIN)
    done = await set_active(graphql_client, other_admin.token, world.admin.id, active=False)
    assert done["user"]["active"] is False
    with pytest.raises(NotAllowed):
        await people.deactivate_user(Actor.of(other_admin.user), other_admin.user.id)
    unknown = await set_active(graphql_client, other_admin.token, "VXNlcjo5OTk5", active=False)
    assert the_error(unknown) == ("NOT_FOUND", ["id"])


async def test_history_enrollments_and_awards_stay(
    graphql_client: GraphQLClient, world: World
) -> None:
    cert = await make_certification("Safety", world.course_ids[:1])
    learner = world.learner.actor
    await enrollments.start_certification(learner, cert)
    await enrollments.record_course_progress(learner, course_id=world.course_ids[0], completed=True)
    kept = {
        "enrollments": await Enrollment.filter(learner_id=world.learner.user.id).count(),
        "progress": await CourseProgress.filter(learner_id=world.learner.user.id).count(),
        "awards": await Award.filter(enrollment__learner_id=world.learner.user.id).count(),
    }
    assert kept == {"enrollments": 1, "progress": 1, "awards": 1}
    query = (
        "query Q($id: ID!) { node(id: $id) { ... on User { active certifications "
        "{ edges { node { status } } } } } }"
    )
    before = await graphql_client.data(query, {"id": world.learner.id}, token=world.admin.token)

    await set_active(graphql_client, world.admin.token, world.learner.id, active=False)
    after = await graphql_client.data(query, {"id": world.learner.id}, token=world.admin.token)
    assert after["node"]["certifications"] == before["node"]["certifications"]
    assert after["node"]["certifications"]["edges"] == [{"node": {"status": "COMPLETED"}}]
    # the manager still sees their (deactivated) report's history
    team = await graphql_client.data(query, {"id": world.learner.id}, token=world.manager.token)
    assert team["node"]["active"] is False
    assert team["node"]["certifications"] == before["node"]["certifications"]
    assert {
        "enrollments": await Enrollment.filter(learner_id=world.learner.user.id).count(),
        "progress": await CourseProgress.filter(learner_id=world.learner.user.id).count(),
        "awards": await Award.filter(enrollment__learner_id=world.learner.user.id).count(),
    } == kept


# -- OpenID sign-in --------------------------------------------------------------------------


@pytest.fixture
def idp(provider: Provider) -> Provider:  # noqa: F811 (the fixture imported above)
    """tests/auth's OpenID provider: discovery and keys served on 127.0.0.1."""
    return provider


@pytest_asyncio.fixture
async def oidc_client(
    db: None, data_dir: Path, idp: Provider, plugin_host: PluginHost
) -> AsyncIterator[GraphQLClient]:
    """The app with the test's OpenID provider configured (tests/auth)."""
    settings = Settings(data_dir=data_dir, oidc_issuer=idp.issuer, oidc_audience=AUDIENCE)
    transport = httpx.ASGITransport(app=create_app(settings, plugins=plugin_host))
    async with httpx.AsyncClient(transport=transport, base_url="http://certgraph.test") as http:
        yield GraphQLClient(http)


def refused_as_deactivated(response: httpx.Response) -> bool:
    assert response.status_code == 401, response.text
    errors = response.json()["errors"]
    return [(e["message"], e["extensions"]["code"]) for e in errors] == [
        (DEACTIVATED_ACCOUNT, "UNAUTHENTICATED")
    ]


async def test_deactivation_refuses_provider_sign_ins(
    oidc_client: GraphQLClient, world: World, idp: Provider
) -> None:
    signed_in = await oidc_client.data(VIEWER, token=idp.token())
    user = await User.get(email="sam.sign-in@example.com")
    assert signed_in["viewer"]["id"] == encode_id("User", user.id)

    await people.deactivate_user(world.admin.actor, user.id)
    assert refused_as_deactivated(await oidc_client.post(VIEWER, token=idp.token()))
    # a role claim that would change the stored role is refused too, and changes nothing
    claimed = idp.token(roles=["certgraph-manager"])
    assert refused_as_deactivated(await oidc_client.post(VIEWER, token=claimed))
    assert (await User.get(id=user.id)).role == Role.LEARNER

    await people.reactivate_user(world.admin.actor, user.id)
    again = await oidc_client.data(VIEWER, token=idp.token())
    assert again["viewer"]["id"] == encode_id("User", user.id)


async def test_a_first_sign_in_is_not_linked_to_a_deactivated_user(
    oidc_client: GraphQLClient, world: World, idp: Provider
) -> None:
    await people.deactivate_user(world.admin.actor, world.learner.user.id)
    before = await table_counts(audit=True)
    token = idp.token(email=world.learner.user.email, email_verified=True)
    assert refused_as_deactivated(await oidc_client.post(VIEWER, token=token))
    assert await UserIdentity.all().count() == 0
    assert await table_counts(audit=True) == before


# -- the CLI ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def with_people(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    prepared = Cli(tmp_path_factory.mktemp("people"))
    prepared.ok("migrate")
    for name, email, role, *manager in (
        ("Max", "max@example.com", "manager"),
        ("Mia", "mia@example.com", "manager"),
        ("Leo", "leo@example.com", "learner", "max@example.com"),
    ):
        extra = ["--manager", manager[0]] if manager else []
        prepared.ok("user", "create", "--name", name, "--email", email, "--role", role, *extra)
    return prepared


@pytest.fixture
def cli(with_people: Cli, tmp_path: Path) -> Cli:
    return copy_database(with_people, tmp_path)


async def user_row(cli: Cli, email: str) -> tuple[str, str, Role, int | None, bool]:
    async with cli.database():
        row = await User.get(email=email)
        return row.name, row.email, row.role, row.manager_id, row.deactivated_at is None


async def user_pk(cli: Cli, email: str) -> int:
    async with cli.database():
        return (await User.get(email=email)).id


@pytest.mark.slow
@pytest.mark.database_independent  # the CLI on a SQLite file (tests/test_cli.py)
async def test_cli_user_update_changes_what_is_given(cli: Cli) -> None:
    mia = await user_pk(cli, "mia@example.com")
    out = cli.ok(
        "user", "update", "--email", "LEO@example.com", "--manager", "mia@example.com", "--json"
    )
    record = json.loads(out)
    assert record == {
        "id": record["id"],
        "name": "Leo",
        "email": "leo@example.com",
        "role": "LEARNER",
        "managerId": encode_id("User", mia),
        "active": True,
        "deactivatedAt": None,
    }
    assert await user_row(cli, "leo@example.com") == (
        "Leo",
        "leo@example.com",
        Role.LEARNER,
        mia,
        True,
    )

    out = cli.ok(
        "user", "update", "--email", "leo@example.com", "--name", "Leo Lion",
        "--new-email", "lion@example.com", "--role", "manager", "--no-manager",
    )  # fmt: skip
    assert out.startswith("updated MANAGER Leo Lion <lion@example.com> (id ")
    assert out.rstrip().endswith("), active")
    assert await user_row(cli, "lion@example.com") == (
        "Leo Lion",
        "lion@example.com",
        Role.MANAGER,
        None,
        True,
    )
    async with cli.database():
        actions = await AuditEvent.filter(action="updateUser").values_list("actor_id", flat=True)
    assert actions == [None, None]  # the operator


@pytest.mark.slow
@pytest.mark.database_independent  # the CLI on a SQLite file (tests/test_cli.py)
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "nothing to change: give --name, --new-email, --role, --manager or --no-manager"),
        (["--name", " "], "name must not be empty"),
        (["--new-email", "max@example.com"], "a user with email max@example.com already exists"),
        (["--manager", "nobody@example.com"], "no user with email nobody@example.com (--manager)"),
        (["--manager", "leo@example.com"], "a person cannot be their own manager"),
    ],
)
def test_cli_user_update_refusals_are_one_line_exit_2(
    cli: Cli, args: list[str], message: str
) -> None:
    result = cli("user", "update", "--email", "leo@example.com", *args)
    assert result.returncode == 2, result
    assert result.stderr == f"certgraph user update: {message}\n"
    assert result.stdout == ""


@pytest.mark.slow
@pytest.mark.database_independent  # the CLI on a SQLite file (tests/test_cli.py)
def test_cli_user_update_refuses_a_cycle_and_unknown_people(cli: Cli) -> None:
    cli.ok("user", "update", "--email", "mia@example.com", "--manager", "max@example.com")
    cycle = cli("user", "update", "--email", "max@example.com", "--manager", "mia@example.com")
    assert cycle.returncode == 2
    assert "would make a cycle" in cycle.stderr and cycle.stderr.count("\n") == 1
    unknown = cli("user", "deactivate", "--email", "nobody@example.com")
    assert (unknown.returncode, unknown.stderr) == (
        2,
        "certgraph user deactivate: no user with email nobody@example.com\n",
    )
    both = cli("user", "update", "--email", "leo@example.com", "--manager", "m@x.y", "--no-manager")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


@pytest.mark.slow
@pytest.mark.database_independent  # the CLI on a SQLite file (tests/test_cli.py)
async def test_cli_deactivate_and_reactivate(cli: Cli) -> None:
    token = json.loads(cli.ok("token", "create", "--email", "leo@example.com", "--json"))["token"]
    assert (await cli.authenticate(token)).email == "leo@example.com"

    out = cli.ok("user", "deactivate", "--email", "leo@example.com")
    assert out.startswith("deactivated LEARNER Leo <leo@example.com> (id ")
    assert "), deactivated at 20" in out
    with pytest.raises(Unauthenticated) as refused:
        await cli.authenticate(token)
    assert refused.value.message == DEACTIVATED_ACCOUNT
    assert (await user_row(cli, "leo@example.com"))[4] is False

    record = json.loads(cli.ok("user", "reactivate", "--email", "leo@example.com", "--json"))
    assert (record["active"], record["deactivatedAt"]) == (True, None)
    assert (await cli.authenticate(token)).email == "leo@example.com"
    async with cli.database():
        actions = await AuditEvent.filter(object_type="User", action__endswith="activateUser")
    assert [a.action for a in actions] == ["deactivateUser", "reactivateUser"]
