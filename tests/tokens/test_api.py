"""API tokens with a lifecycle through HTTP (issue 15, item 3): anyone makes tokens of their
own, admins for anyone; the secret answered once and never listed; revoke one's own (another's
reads as NOT_FOUND, audited), admins anyone's; expired tokens refused with 401; the call shape
of before (`createApiToken(userId: ID!)`) keeps working."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from gql import clock
from gql.api.ids import decode_id, encode_id
from gql.domain import tokens
from gql.domain.access import hash_token
from gql.domain.tokens import MAX_LIVE_TOKENS
from gql.store import tokens as store
from gql.store.models import ApiToken, AuditEvent
from tests.api.conftest import SYSTEM, GraphQLClient, World, table_counts

TOKEN_FIELDS = "id name createdAt lastUsedAt expiresAt revokedAt active user { id }"
CREATE = (
    "mutation C($userId: ID, $name: String, $expiresAt: DateTime) { createApiToken("
    "userId: $userId, name: $name, expiresAt: $expiresAt) { token apiToken { "
    + TOKEN_FIELDS
    + " } errors { code message field } } }"
)
REVOKE = (
    "mutation R($id: ID!) { revokeApiToken(id: $id) { apiToken { "
    + TOKEN_FIELDS
    + " } errors { code message field } } }"
)
MINE = (
    "query M($first: Int, $after: String, $all: Boolean! = false) { viewer { apiTokens("
    "first: $first, after: $after, includeRevoked: $all) { totalCount pageInfo { hasNextPage "
    "endCursor } edges { cursor node { " + TOKEN_FIELDS + " } } } } }"
)
THEIRS = (
    "query T($id: ID!, $all: Boolean! = false) { user(id: $id) { apiTokens(includeRevoked: "
    "$all) { totalCount edges { node { " + TOKEN_FIELDS + " } } } } }"
)


def assert_unauthenticated(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    body: dict[str, Any] = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"]
    return body


async def create(client: GraphQLClient, token: str, **variables: Any) -> dict[str, Any]:
    data = await client.data(CREATE, variables, token=token)
    payload: dict[str, Any] = data["createApiToken"]
    return payload


async def viewer_name(client: GraphQLClient, token: str) -> str:
    data = await client.data("{ viewer { name } }", token=token)
    name: str = data["viewer"]["name"]
    return name


def _pk(global_id: str) -> int:
    pk = decode_id(global_id, "ApiToken")
    assert pk is not None, global_id
    return pk


async def denials(action: str) -> list[AuditEvent]:
    return list(await AuditEvent.filter(action=f"denied:{action}").order_by("id"))


# -- creating ------------------------------------------------------------------------------


async def test_a_learner_makes_a_token_of_their_own_and_uses_it(
    graphql_client: GraphQLClient, world: World
) -> None:
    expires = (clock.now() + timedelta(days=30)).replace(microsecond=0)
    payload = await create(
        graphql_client,
        world.learner.token,
        name="  my   laptop script ",
        expiresAt=expires.isoformat(),
    )

    assert payload["errors"] == []
    secret = payload["token"]
    assert secret.startswith("cg_") and len(secret) > 40
    made = payload["apiToken"]
    assert made["name"] == "my laptop script"
    assert datetime.fromisoformat(made["expiresAt"]) == expires
    assert (made["lastUsedAt"], made["revokedAt"], made["active"]) == (None, None, True)
    assert made["user"] == {"id": world.learner.id}

    assert await viewer_name(graphql_client, secret) == "Lea Learner"
    stored = await ApiToken.get(id=_pk(made["id"]))
    assert stored.token_hash == hash_token(secret) and stored.user_id == world.learner.user.id
    [audited] = await AuditEvent.filter(action="createApiToken", object_id=str(stored.id))
    assert audited.actor_id == world.learner.user.id
    assert audited.after == {
        "userId": world.learner.user.id,
        "name": "my laptop script",
        "expiresAt": expires.isoformat(),
    }
    assert secret not in str(audited.after)


async def test_without_name_or_expiry_a_token_lasts_until_revoked(
    graphql_client: GraphQLClient, world: World
) -> None:
    payload = await create(graphql_client, world.manager.token)
    made = payload["apiToken"]
    assert (made["name"], made["expiresAt"], made["active"]) == ("", None, True)
    assert await viewer_name(graphql_client, payload["token"]) == "Max Manager"


async def test_ones_own_user_id_is_the_same_as_none(
    graphql_client: GraphQLClient, world: World
) -> None:
    payload = await create(graphql_client, world.learner.token, userId=world.learner.id)
    assert payload["errors"] == [] and payload["apiToken"]["user"] == {"id": world.learner.id}


@pytest.mark.parametrize("who", ["learner", "manager"])
async def test_a_non_admin_cannot_make_a_token_for_someone_else(
    graphql_client: GraphQLClient, world: World, who: str
) -> None:
    caller = getattr(world, who)
    # the manager's own report is someone else too
    target = world.learner if who == "manager" else world.other
    before = await table_counts()

    result = await graphql_client.run(
        CREATE, {"userId": target.id, "name": "x"}, token=caller.token
    )

    assert result["data"] == {"createApiToken": None}
    [error] = result["errors"]
    assert (error["extensions"]["code"], error["path"]) == ("FORBIDDEN", ["createApiToken"])
    assert "admins" in error["message"]
    assert await table_counts() == before
    [denied] = await denials("createApiToken")
    assert (denied.actor_id, denied.object_type, denied.object_id) == (
        caller.user.id,
        "User",
        str(target.user.id),
    )


async def test_an_admin_makes_tokens_for_anyone(
    graphql_client: GraphQLClient, world: World
) -> None:
    payload = await create(
        graphql_client, world.admin.token, userId=world.other.id, name="Otto's CI"
    )
    assert payload["errors"] == []
    assert payload["apiToken"]["user"] == {"id": world.other.id}
    assert await viewer_name(graphql_client, payload["token"]) == "Otto Other"

    listed = await graphql_client.data(THEIRS, {"id": world.other.id}, token=world.admin.token)
    names = [e["node"]["name"] for e in listed["user"]["apiTokens"]["edges"]]
    assert names == ["Otto's CI", ""]  # newest first; the world's token has no name


async def test_the_call_of_before_keeps_working(
    graphql_client: GraphQLClient, world: World
) -> None:
    issued = await graphql_client.data(
        "mutation T($id: ID!) { createApiToken(userId: $id) { token errors { code } } }",
        {"id": world.learner.id},
        token=world.admin.token,
    )
    assert issued["createApiToken"]["errors"] == []
    assert await viewer_name(graphql_client, issued["createApiToken"]["token"]) == "Lea Learner"


@pytest.mark.parametrize(
    ("variables", "field", "words"),
    [
        ({"expiresAt": "2000-01-01T00:00:00Z"}, "expiresAt", "in the future"),
        ({"expiresAt": "NOW"}, "expiresAt", "in the future"),
        ({"expiresAt": "+11y"}, "expiresAt", "3650 days"),
        ({"name": "n" * 201}, "name", "at most 200"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_written(
    graphql_client: GraphQLClient,
    world: World,
    variables: dict[str, str],
    field: str,
    words: str,
) -> None:
    now = clock.now()
    sent = dict(variables)
    if sent.get("expiresAt") == "NOW":
        sent["expiresAt"] = (now - timedelta(seconds=1)).isoformat()
    elif sent.get("expiresAt") == "+11y":
        sent["expiresAt"] = (now + timedelta(days=11 * 366)).isoformat()
    before = await table_counts(audit=True)

    payload = await create(graphql_client, world.learner.token, **sent)

    assert (payload["token"], payload["apiToken"]) == (None, None)
    [error] = payload["errors"]
    assert (error["code"], error["field"]) == ("INVALID_INPUT", [field])
    assert words in error["message"]
    assert await table_counts(audit=True) == before


async def test_a_naive_expiry_is_refused_before_anything_runs(
    graphql_client: GraphQLClient, world: World
) -> None:
    result = await graphql_client.run(
        CREATE, {"expiresAt": "2030-01-01T00:00:00"}, token=world.learner.token
    )
    assert result["data"] is None
    assert "needs a UTC offset" in result["errors"][0]["message"]
    assert await ApiToken.all().count() == 4  # the world's


async def test_an_unknown_user_is_not_found_for_an_admin(
    graphql_client: GraphQLClient, world: World
) -> None:
    missing = await create(graphql_client, world.admin.token, userId=encode_id("User", 999_999))
    assert missing["errors"] == [
        {"code": "NOT_FOUND", "message": "no such user", "field": ["userId"]}
    ]
    garbled = await create(graphql_client, world.admin.token, userId="nope")
    [error] = garbled["errors"]
    assert (error["code"], error["field"]) == ("NOT_FOUND", ["userId"])
    assert error["message"].startswith('no such user: "nope" is not a User ID')


async def test_a_user_has_at_most_so_many_live_tokens(
    graphql_client: GraphQLClient, world: World
) -> None:
    now = clock.now()
    learner = world.learner.user.id
    for i in range(MAX_LIVE_TOKENS - 1):  # the world's token is the first
        await store.insert_token(
            user_id=learner, token_hash=f"{i:064d}", name="", expires_at=None, now=now
        )
    # an expired and a revoked one do not count
    await store.insert_token(user_id=learner, token_hash="e" * 64, name="", expires_at=now, now=now)
    revoked = await store.insert_token(
        user_id=learner, token_hash="r" * 64, name="", expires_at=None, now=now
    )
    await store.revoke_token(revoked.id, now)
    refused = await create(graphql_client, world.learner.token, name="one too many")
    [error] = refused["errors"]
    assert (error["code"], error["field"]) == ("NOT_ALLOWED", ["userId"])
    assert f"{MAX_LIVE_TOKENS} tokens" in error["message"]
    assert await ApiToken.filter(name="one too many").count() == 0

    first = await ApiToken.get(token_hash=f"{0:064d}")
    await tokens.revoke_api_token(SYSTEM, first.id)
    made = await create(graphql_client, world.learner.token, name="now there is room")
    assert made["errors"] == []


# -- listing ----------------------------------------------------------------------------


async def test_the_viewer_lists_their_tokens_newest_first_without_secrets(
    graphql_client: GraphQLClient, world: World
) -> None:
    secrets = [world.learner.token]
    for name in ("one", "two", "three"):
        secrets.append((await create(graphql_client, world.learner.token, name=name))["token"])
    hashes = [hash_token(secret) for secret in secrets]

    response = await graphql_client.post(MINE, {"first": 2}, token=world.learner.token)
    first_page = response.json()["data"]["viewer"]["apiTokens"]
    assert first_page["totalCount"] == 4 and first_page["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["name"] for e in first_page["edges"]] == ["three", "two"]
    rest = await graphql_client.data(
        MINE, {"after": first_page["pageInfo"]["endCursor"]}, token=world.learner.token
    )
    assert [e["node"]["name"] for e in rest["viewer"]["apiTokens"]["edges"]] == ["one", ""]
    for text in (response.text, str(rest)):
        assert not any(secret in text for secret in secrets)
        assert not any(token_hash in text for token_hash in hashes)
    # the one used for these requests says so
    used = rest["viewer"]["apiTokens"]["edges"][-1]["node"]
    assert used["lastUsedAt"] is not None and used["active"] is True


def test_the_token_type_has_no_field_for_a_secret() -> None:
    from graphql import GraphQLObjectType

    from gql.api.schema import build_schema

    token_type = build_schema().graphql_schema.type_map["ApiToken"]
    assert isinstance(token_type, GraphQLObjectType)
    assert set(token_type.fields) == {
        "id",
        "name",
        "createdAt",
        "lastUsedAt",
        "expiresAt",
        "revokedAt",
        "active",
        "user",
    }


async def test_no_one_else_lists_someones_tokens_but_an_admin(
    graphql_client: GraphQLClient, world: World
) -> None:
    # The manager sees their report, but not the report's tokens: an empty list, audited.
    seen = await graphql_client.data(THEIRS, {"id": world.learner.id}, token=world.manager.token)
    assert seen["user"]["apiTokens"] == {"totalCount": 0, "edges": []}
    [denied] = await denials("apiTokens")
    assert (denied.actor_id, denied.object_id) == (
        world.manager.user.id,
        str(world.learner.user.id),
    )
    # A learner does not even see another learner.
    hidden = await graphql_client.data(THEIRS, {"id": world.other.id}, token=world.learner.token)
    assert hidden == {"user": None}
    # An admin sees anyone's.
    listed = await graphql_client.data(THEIRS, {"id": world.learner.id}, token=world.admin.token)
    assert listed["user"]["apiTokens"]["totalCount"] == 1


async def test_a_token_by_its_id_for_its_owner_and_admins_only(
    graphql_client: GraphQLClient, world: World
) -> None:
    made = (await create(graphql_client, world.other.token, name="mine"))["apiToken"]
    query = "query N($id: ID!) { node(id: $id) { id ... on ApiToken { name } } }"

    for person in (world.other, world.admin):
        found = await graphql_client.data(query, {"id": made["id"]}, token=person.token)
        assert found["node"] == {"id": made["id"], "name": "mine"}
    for person in (world.learner, world.manager):
        hidden = await graphql_client.data(query, {"id": made["id"]}, token=person.token)
        assert hidden["node"] is None
    assert [d.actor_id for d in await denials("apiToken")] == [
        world.learner.user.id,
        world.manager.user.id,
    ]


# -- revoking -------------------------------------------------------------------------


async def test_a_learner_revokes_their_own_token(
    graphql_client: GraphQLClient, world: World
) -> None:
    made = await create(graphql_client, world.learner.token, name="to revoke")
    secret, token_id = made["token"], made["apiToken"]["id"]
    assert await viewer_name(graphql_client, secret) == "Lea Learner"

    data = await graphql_client.data(REVOKE, {"id": token_id}, token=world.learner.token)

    revoked = data["revokeApiToken"]
    assert revoked["errors"] == []
    assert revoked["apiToken"]["id"] == token_id
    assert revoked["apiToken"]["revokedAt"] is not None and revoked["apiToken"]["active"] is False
    assert_unauthenticated(await graphql_client.post("{ viewer { name } }", token=secret))
    # the token the learner signed in with is another one: still fine
    mine = await graphql_client.data(MINE, token=world.learner.token)
    assert [e["node"]["name"] for e in mine["viewer"]["apiTokens"]["edges"]] == [""]
    everything = await graphql_client.data(MINE, {"all": True}, token=world.learner.token)
    assert [e["node"]["name"] for e in everything["viewer"]["apiTokens"]["edges"]] == [
        "to revoke",
        "",
    ]
    [audited] = await AuditEvent.filter(action="revokeApiToken")
    assert (audited.actor_id, audited.object_type, audited.object_id) == (
        world.learner.user.id,
        "ApiToken",
        str(_pk(token_id)),
    )

    again = await graphql_client.data(REVOKE, {"id": token_id}, token=world.learner.token)
    assert again["revokeApiToken"]["errors"] == []
    assert again["revokeApiToken"]["apiToken"]["revokedAt"] == revoked["apiToken"]["revokedAt"]
    assert await AuditEvent.filter(action="revokeApiToken").count() == 1


async def test_anothers_token_reads_as_not_found_and_is_audited(
    graphql_client: GraphQLClient, world: World
) -> None:
    made = await create(graphql_client, world.learner.token, name="Lea's")
    target = made["apiToken"]["id"]
    missing = encode_id("ApiToken", 999_999)
    before = await table_counts()

    answers = []
    for token_id in (target, missing):
        data = await graphql_client.data(REVOKE, {"id": token_id}, token=world.manager.token)
        answers.append(data["revokeApiToken"])

    assert (
        answers[0]
        == answers[1]
        == {
            "apiToken": None,
            "errors": [{"code": "NOT_FOUND", "message": "no such API token", "field": ["id"]}],
        }
    )
    assert await table_counts() == before
    assert await viewer_name(graphql_client, made["token"]) == "Lea Learner"
    [denied] = await denials("revokeApiToken")
    assert (denied.actor_id, denied.object_type, denied.object_id) == (
        world.manager.user.id,
        "ApiToken",
        str(_pk(target)),
    )


async def test_an_admin_revokes_anyones_token(graphql_client: GraphQLClient, world: World) -> None:
    listed = await graphql_client.data(THEIRS, {"id": world.other.id}, token=world.admin.token)
    [edge] = listed["user"]["apiTokens"]["edges"]

    data = await graphql_client.data(REVOKE, {"id": edge["node"]["id"]}, token=world.admin.token)

    assert data["revokeApiToken"]["errors"] == []
    assert data["revokeApiToken"]["apiToken"]["user"] == {"id": world.other.id}
    gone = await graphql_client.post("{ viewer { name } }", token=world.other.token)
    assert_unauthenticated(gone)


async def test_a_bad_token_id_says_what_an_id_is(
    graphql_client: GraphQLClient, world: World
) -> None:
    for value, what in (("abc", "is not an ApiToken ID"), (world.course_gid(0), "is a Course ID")):
        data = await graphql_client.data(REVOKE, {"id": value}, token=world.learner.token)
        [error] = data["revokeApiToken"]["errors"]
        assert (error["code"], error["field"]) == ("NOT_FOUND", ["id"])
        assert what in error["message"]
        assert "{ viewer { apiTokens { edges { node { id name } } } } }" in error["message"]


# -- expiry ---------------------------------------------------------------------------


async def test_an_expired_token_is_refused_with_401(
    graphql_client: GraphQLClient, world: World, frozen_now: datetime
) -> None:
    made = await create(
        graphql_client,
        world.learner.token,
        name="short",
        expiresAt=(frozen_now + timedelta(hours=1)).isoformat(),
    )
    secret = made["token"]
    assert await viewer_name(graphql_client, secret) == "Lea Learner"

    clock.freeze(frozen_now + timedelta(hours=1))  # the instant it expires
    body = assert_unauthenticated(await graphql_client.post("{ viewer { name } }", token=secret))
    assert secret not in str(body)
    # a multipart request with it is refused before its body is read, like any bad token
    refused = await graphql_client.http.post(
        "/graphql",
        headers={"Authorization": f"Bearer {secret}"},
        data={"operations": "{}", "map": "{}"},
        files={"0": ("a.pdf", b"%PDF-1.4", "application/pdf")},
    )
    assert_unauthenticated(refused)

    # its owner (with another token) sees it listed, inactive
    mine = await graphql_client.data(MINE, token=world.learner.token)
    short = next(e["node"] for e in mine["viewer"]["apiTokens"]["edges"] if e["node"]["name"])
    assert (short["name"], short["active"], short["revokedAt"]) == ("short", False, None)


async def test_an_expired_tokens_refusal_says_it_expired(
    graphql_client: GraphQLClient, world: World, frozen_now: datetime
) -> None:
    expires = frozen_now + timedelta(minutes=5)
    made = await create(graphql_client, world.learner.token, expiresAt=expires.isoformat())
    clock.freeze(expires + timedelta(seconds=1))
    body = assert_unauthenticated(
        await graphql_client.post("{ viewer { name } }", token=made["token"])
    )
    assert body["errors"][0]["message"] == f"the token expired at {expires.isoformat()}"
