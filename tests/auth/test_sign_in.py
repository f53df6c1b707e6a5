"""Who an OpenID provider's token is, through GraphQL over the app (httpx ASGITransport), on
the test database (SQLite, or PostgreSQL with CERTGRAPH_TEST_DATABASE_URL): first sign-in,
linking by verified e-mail, roles from the claim, every refusal a 401 naming its check."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from gql.api.ids import encode_id
from gql.app import create_app
from gql.domain import sign_in as sign_in_module
from gql.settings import Settings
from gql.store import identities
from gql.store.models import AuditEvent, User, UserIdentity
from gql.vocabulary import Role
from tests.api.conftest import GraphQLClient, World, table_counts
from tests.auth.conftest import VIEWER, Provider, SigningKey, rsa_key, viewer
from tests.conftest import ON_POSTGRES


def assert_refused(response: httpx.Response, token: str, message: str) -> None:
    """401 UNAUTHENTICATED naming the failed check, without the token or any part of it."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["UNAUTHENTICATED"]
    assert errors[0]["message"] == f"OpenID Connect token refused: {message}", errors
    for part in token.split("."):
        assert len(part) < 8 or part not in response.text


async def counts() -> dict[str, int]:
    found = await table_counts(audit=True)
    found["UserIdentity"] = await UserIdentity.all().count()
    return found


# -- first sign-in ---------------------------------------------------------------------------


async def test_first_sign_in_creates_a_learner_once(
    graphql_client: GraphQLClient, world: World, provider: Provider
) -> None:
    before = await counts()
    token = provider.token()
    seen = await viewer(graphql_client, token)
    user = await User.get(email="sam.sign-in@example.com")
    assert seen == {
        "id": encode_id("User", user.id),
        "name": "Sam Signin",
        "email": "sam.sign-in@example.com",
        "role": "LEARNER",
    }
    identity = await UserIdentity.get(user_id=user.id)
    assert (identity.issuer, identity.subject) == (provider.issuer, "subject-1")
    audit = await AuditEvent.filter(action="signIn.createUser").values(
        "actor_id", "object_id", "after"
    )
    assert audit == [
        {
            "actor_id": user.id,
            "object_id": str(user.id),
            "after": {
                "name": "Sam Signin",
                "email": "sam.sign-in@example.com",
                "role": "LEARNER",
                "issuer": provider.issuer,
                "subject": "subject-1",
            },
        }
    ]
    after_first = await counts()
    assert after_first["User"] == before["User"] + 1
    assert after_first["UserIdentity"] == 1
    # the next requests (new tokens, same person) read only: nothing more is written
    for _ in range(3):
        assert await viewer(graphql_client, provider.token()) == seen
    assert await counts() == after_first


async def test_a_returning_person_is_found_by_issuer_and_subject_not_by_email(
    graphql_client: GraphQLClient, world: World, provider: Provider
) -> None:
    first = await viewer(graphql_client, provider.token())
    # the provider's e-mail and name changed: still the same user
    again = await viewer(graphql_client, provider.token(email="new@example.com", name="New"))
    assert again == first
    # another subject with the first one's e-mail, verified: linked to the same user
    other = await viewer(graphql_client, provider.token(sub="subject-2"))
    assert other["id"] == first["id"]
    assert await UserIdentity.all().count() == 2


async def test_a_returning_person_costs_one_statement(
    graphql_client: GraphQLClient, world: World, provider: Provider, sql_queries: Any
) -> None:
    await viewer(graphql_client, provider.token())
    token = provider.token()
    sql_queries.reset()
    actor = await sign_in_module.bearer_authenticator(
        graphql_client.http._transport.app.state.oidc  # type: ignore[attr-defined]
    )(token)
    assert actor.name == "Sam Signin"
    assert sql_queries.count == 1, sql_queries.statements


async def test_a_verified_email_links_the_existing_user(
    graphql_client: GraphQLClient, world: World, provider: Provider
) -> None:
    learner = world.learner.user
    before = await counts()
    token = provider.token(email=learner.email.upper(), name="Lea From The Provider")
    seen = await viewer(graphql_client, token)
    assert seen == {
        "id": world.learner.id,
        "name": learner.name,  # the stored name stands
        "email": learner.email,
        "role": "LEARNER",
    }
    after = await counts()
    assert after["User"] == before["User"]
    assert after["UserIdentity"] == 1
    audit = await AuditEvent.filter(action="signIn.linkIdentity").values("actor_id", "after")
    assert audit == [
        {"actor_id": learner.id, "after": {"issuer": provider.issuer, "subject": "subject-1"}}
    ]
    # the API token keeps working beside the provider's
    assert (await viewer(graphql_client, world.learner.token))["id"] == world.learner.id


@pytest.mark.parametrize("verified", [None, False, "false"])
async def test_an_unverified_email_of_an_existing_user_is_refused(
    graphql_client: GraphQLClient,
    world: World,
    provider: Provider,
    verified: object,
    sql_queries: Any,
) -> None:
    """email_verified missing (or false): no linking; and a new learner cannot have the
    existing user's address (e-mail is unique), so the sign-in is refused, nothing written
    (two reads, no write transaction)."""
    before = await counts()
    token = provider.token(email=world.admin.user.email, email_verified=verified)
    sql_queries.reset()
    response = await graphql_client.post(VIEWER, token=token)
    assert sql_queries.count == 2, sql_queries.statements
    assert response.status_code == 401, response.text
    message = response.json()["errors"][0]["message"]
    assert "email_verified" in message and "not linked" in message
    assert world.admin.user.email not in response.text
    assert await counts() == before


async def test_an_unverified_email_of_nobody_creates_a_learner(
    graphql_client: GraphQLClient, world: World, provider: Provider
) -> None:
    seen = await viewer(graphql_client, provider.token(email_verified=None, email="x@example.com"))
    assert (seen["email"], seen["role"]) == ("x@example.com", "LEARNER")


async def test_no_email_is_refused(
    graphql_client: GraphQLClient, world: World, provider: Provider
) -> None:
    before = await counts()
    response = await graphql_client.post(VIEWER, token=provider.token(email=None))
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"].startswith("the token has no email claim")
    response = await graphql_client.post(VIEWER, token=provider.token(email="not an address"))
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == (
        "the token's email claim is not a valid e-mail address"
    )
    assert await counts() == before


async def test_a_missing_name_falls_back(
    graphql_client: GraphQLClient, world: World, provider: Provider
) -> None:
    seen = await viewer(graphql_client, provider.token(name=None, email="nameless@example.com"))
    assert seen["name"] == "nameless"
    long = await viewer(graphql_client, provider.token(sub="s2", name="N" * 500, email="l@e.com"))
    assert long["name"] == "N" * 200


# -- roles -----------------------------------------------------------------------------------


async def test_roles_from_the_claim(
    graphql_client: GraphQLClient, world: World, provider: Provider
) -> None:
    """The admin role makes an ADMIN at once; no role claim: the stored role stands; the
    manager role: MANAGER, the change stored and audited."""
    admin = await viewer(graphql_client, provider.token(roles=["certgraph-admin"]))
    assert admin["role"] == "ADMIN"
    assert (await viewer(graphql_client, provider.token()))["role"] == "ADMIN"
    assert (await viewer(graphql_client, provider.token(roles=["other"])))["role"] == "ADMIN"
    manager = await viewer(graphql_client, provider.token(roles="certgraph-manager openid"))
    assert manager["role"] == "MANAGER"
    user = await User.get(email="sam.sign-in@example.com")
    assert user.role == Role.MANAGER
    changes = await AuditEvent.filter(action="signIn.role").values("actor_id", "before", "after")
    assert changes == [
        {"actor_id": user.id, "before": {"role": "ADMIN"}, "after": {"role": "MANAGER"}}
    ]
    # the role acts: a manager may read a report, a learner may not
    report = '{ certificationReport(certificationId: "Q2VydGlmaWNhdGlvbjo5OTk=") { total } }'
    result = await graphql_client.run(report, token=provider.token(roles=["certgraph-manager"]))
    assert all(e["extensions"]["code"] != "FORBIDDEN" for e in result.get("errors", []))


async def test_a_learners_stored_role_is_raised_by_the_claim(
    graphql_client: GraphQLClient, world: World, provider: Provider
) -> None:
    token = provider.token(email=world.learner.user.email, roles=["certgraph-manager"])
    assert (await viewer(graphql_client, token))["role"] == "MANAGER"
    assert (await User.get(id=world.learner.user.id)).role == Role.MANAGER
    # the API token of the same user sees the stored role
    assert (await viewer(graphql_client, world.learner.token))["role"] == "MANAGER"


# -- concurrency -----------------------------------------------------------------------------


async def test_concurrent_first_sign_ins_make_one_user(
    graphql_client: GraphQLClient, world: World, provider: Provider
) -> None:
    tokens = [provider.token() for _ in range(8)]
    responses = await asyncio.gather(*(graphql_client.post(VIEWER, token=t) for t in tokens))
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
    ids = {r.json()["data"]["viewer"]["id"] for r in responses}
    assert len(ids) == 1
    assert await User.filter(email="sam.sign-in@example.com").count() == 1
    assert await UserIdentity.all().count() == 1
    assert await AuditEvent.filter(action="signIn.createUser").count() == 1


async def test_a_lost_race_finds_the_winners_user(
    graphql_client: GraphQLClient,
    world: World,
    provider: Provider,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both first sign-ins read "nobody" before either writes (forced where the database
    lets two write transactions run at once, PostgreSQL; SQLite runs them one after the
    other): the loser's insert fails on a unique constraint and its retry finds the user."""
    arrived = 0
    both_read = asyncio.Event()
    real = identities.user_with_email

    async def meet_then_read(email: str) -> Any:
        nonlocal arrived
        found = await real(email)
        arrived += 1
        if arrived >= 2:
            both_read.set()
        with contextlib.suppress(TimeoutError):  # serialised (SQLite): nothing to race
            await asyncio.wait_for(both_read.wait(), 0.5)
        return found

    monkeypatch.setattr(identities, "user_with_email", meet_then_read)
    attempts = 0
    record = sign_in_module._record_sign_in

    async def counted(identity: Any) -> Any:
        nonlocal attempts
        attempts += 1
        return await record(identity)

    monkeypatch.setattr(sign_in_module, "_record_sign_in", counted)
    responses = await asyncio.gather(
        *(
            graphql_client.post(VIEWER, token=provider.token(roles=["certgraph-manager"]))
            for _ in range(2)
        )
    )
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    assert len({r.json()["data"]["viewer"]["id"] for r in responses}) == 1
    assert {r.json()["data"]["viewer"]["role"] for r in responses} == {"MANAGER"}
    assert await User.filter(email="sam.sign-in@example.com").count() == 1
    assert await UserIdentity.all().count() == 1
    assert await AuditEvent.filter(action="signIn.createUser").count() == 1
    # PostgreSQL: both wrote, one lost on the unique e-mail and tried again; SQLite: the second
    # transaction began after the first committed and found its user
    assert attempts == (3 if ON_POSTGRES else 2)


async def test_concurrent_role_changes_write_and_audit_once(
    graphql_client: GraphQLClient, world: World, provider: Provider
) -> None:
    await viewer(graphql_client, provider.token())
    tokens = [provider.token(roles=["certgraph-admin"]) for _ in range(6)]
    responses = await asyncio.gather(*(graphql_client.post(VIEWER, token=t) for t in tokens))
    assert {r.json()["data"]["viewer"]["role"] for r in responses} == {"ADMIN"}
    assert await AuditEvent.filter(action="signIn.role").count() == 1


# -- refusals over HTTP ----------------------------------------------------------------------


async def test_every_refusal_is_a_401_naming_its_check(
    graphql_client: GraphQLClient, world: World, provider: Provider
) -> None:
    now = int(time.time())
    header, _, signature = provider.token().split(".")
    from tests.auth.conftest import b64json, unsigned_token

    cases = {
        "the token has expired (exp)": provider.token(iat=now - 900, exp=now - 600),
        "the token is not valid yet (nbf or iat is in the future)": provider.token(nbf=now + 900),
        "the token is for another audience (aud is not CERTGRAPH_OIDC_AUDIENCE)": (
            provider.token(aud="someone-else")
        ),
        "the token is from another issuer (iss is not CERTGRAPH_OIDC_ISSUER)": (
            provider.token(iss="https://accounts.example.com")
        ),
        "the token's signing key (kid) is not one of the provider's": provider.token(
            SigningKey("kid-nobody-knows", "RS256", rsa_key(2))
        ),
        "the token's signature does not verify": (
            f"{header}.{b64json(provider.claims(roles=['certgraph-admin']))}.{signature}"
        ),
        "the token's signature algorithm (alg) is not allowed; allowed: "
        "RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA": unsigned_token(
            {"alg": "none"}, provider.claims()
        ),
        "the token is not a well-formed JWT": "%%%%.e30.e30",
        "the token lacks the exp claim": provider.token(exp=None),
    }
    before = await counts()
    for message, token in cases.items():
        assert_refused(await graphql_client.post(VIEWER, token=token), token, message)
    assert await counts() == before


async def test_api_tokens_and_other_bearer_tokens_are_unchanged(
    graphql_client: GraphQLClient, world: World, provider: Provider
) -> None:
    assert (await viewer(graphql_client, world.admin.token))["role"] == "ADMIN"
    for token in ("cg_nope", "opaque-access-token"):
        response = await graphql_client.post(VIEWER, token=token)
        assert response.status_code == 401
        assert response.json()["errors"][0]["message"] == "the token is unknown or revoked"
    response = await graphql_client.post(VIEWER)
    assert response.status_code == 401


async def test_oidc_off_is_as_before(db: None, data_dir: Path, provider: Provider) -> None:
    """Without CERTGRAPH_OIDC_ISSUER a provider's token is just an unknown token, and the
    provider is never asked for anything."""
    app = create_app(Settings(data_dir=data_dir))
    assert app.state.oidc is None
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://certgraph.test") as http:
        response = await GraphQLClient(http).post(VIEWER, token=provider.token())
    assert response.status_code == 401
    assert response.json()["errors"][0]["message"] == "the token is unknown or revoked"
    assert provider.discovery_requests == provider.jwks_requests == 0
    assert await UserIdentity.all().count() == 0


async def test_claims_the_database_cannot_store_are_refused_not_failed(
    graphql_client: GraphQLClient, world: World, provider: Provider
) -> None:
    """A provider's odd but validly signed claims: 401 or cleaned, never a 500."""
    before = await counts()
    for sub in ("s" * 256, "a\x00b", ""):
        response = await graphql_client.post(VIEWER, token=provider.token(sub=sub))
        assert response.status_code == 401, response.text
        assert "sub claim" in response.json()["errors"][0]["message"]
    response = await graphql_client.post(VIEWER, token=provider.token(email="a\x00@example.com"))
    assert response.status_code == 401
    assert await counts() == before
    seen = await viewer(graphql_client, provider.token(sub="s" * 255, name="Nul\x00 Name"))
    assert seen["name"] == "Nul Name"
