"""API tokens in the domain and the store: the lookup refuses expired tokens in its one
statement (and says when one expired, for the refusal's message); the success path of
authentication sends no more statements than before; expiry, name and owner are checked;
the calls of before (gql.domain.users) keep their answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gql import clock
from gql.domain import tokens, users
from gql.domain.access import Actor, authenticate, hash_token
from gql.domain.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from gql.domain.pages import PageRequest
from gql.domain.tokens import MAX_LIFETIME_DAYS
from gql.store import tokens as store
from gql.store.models import ApiToken
from gql.store.records import TokenRecord
from tests.conftest import QueryCounter
from tests.domain.factories import Factory

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


async def _issue(
    owner: Actor,
    *,
    user_id: int | None = None,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> tokens.IssuedToken:
    return await tokens.create_api_token(owner, user_id, name=name, expires_at=expires_at)


async def test_the_lookup_tells_live_expired_revoked_and_unknown_apart_in_one_statement(
    make: Factory, sql_queries: QueryCounter
) -> None:
    clock.freeze(NOW)
    learner = await make.learner()
    live = await _issue(learner, expires_at=NOW + timedelta(hours=1))
    forever = await _issue(learner)
    ending = await _issue(learner, expires_at=NOW + timedelta(minutes=1))
    revoked = await _issue(learner)
    await tokens.revoke_api_token(learner, revoked.token.id)
    clock.freeze(NOW + timedelta(minutes=1))  # `ending` expires at this very instant
    now = clock.now()

    answers = {}
    for label, secret in (
        ("live", live.secret),
        ("forever", forever.secret),
        ("ending", ending.secret),
        ("revoked", revoked.secret),
        ("unknown", "cg_unknown"),
    ):
        sql_queries.reset()
        answers[label] = await store.token_by_hash(hash_token(secret), now)
        assert sql_queries.count == 1, label

    assert isinstance(answers["live"], TokenRecord) and answers["live"].id == live.token.id
    assert answers["live"].user.id == learner.user_id
    assert isinstance(answers["forever"], TokenRecord)
    assert answers["ending"] == store.ExpiredToken(ending.token.id, NOW + timedelta(minutes=1))
    assert answers["revoked"] is None and answers["unknown"] is None

    # active_token: only the usable ones, at the clock's now unless told
    assert await store.active_token(hash_token(live.secret)) == answers["live"]
    assert await store.active_token(hash_token(ending.secret)) is None
    earlier = NOW + timedelta(seconds=59)
    assert await store.active_token(hash_token(ending.secret), earlier) is not None


async def test_authentication_refuses_an_expired_token_and_costs_what_it_did(
    make: Factory, sql_queries: QueryCounter
) -> None:
    clock.freeze(NOW)
    learner = await make.learner()
    issued = await _issue(learner, expires_at=NOW + timedelta(days=1))

    sql_queries.reset()
    assert await authenticate(issued.secret) == learner
    assert sql_queries.count == 2  # the lookup, then the first last_used_at
    clock.freeze(NOW + timedelta(seconds=30))
    sql_queries.reset()
    assert await authenticate(issued.secret) == learner
    assert sql_queries.count == 1  # the lookup alone, expiry and all

    clock.freeze(NOW + timedelta(days=1))
    sql_queries.reset()
    with pytest.raises(Unauthenticated) as refused:
        await authenticate(issued.secret)
    assert issued.secret not in str(refused.value)
    assert sql_queries.count == 1


async def test_expiry_must_be_ahead_and_within_the_bound(make: Factory) -> None:
    clock.freeze(NOW)
    learner = await make.learner()
    latest = NOW + timedelta(days=MAX_LIFETIME_DAYS)
    made = await _issue(learner, expires_at=latest)
    assert made.token.expires_at == latest

    cases = {
        "now": NOW,
        "past": NOW - timedelta(days=1),
        "too far": latest + timedelta(seconds=1),
        "naive": datetime(2027, 1, 1),
    }
    for label, expires_at in cases.items():
        with pytest.raises(InvalidInput) as refused:
            await _issue(learner, expires_at=expires_at)
        assert refused.value.field == ("expiresAt",), label
    # another offset is the same instant in UTC
    plus_two = datetime(2026, 3, 11, 13, 0, tzinfo=timezone(timedelta(hours=2)))
    stored = await _issue(learner, expires_at=plus_two)
    assert stored.token.expires_at == datetime(2026, 3, 11, 11, 0, tzinfo=UTC)
    assert stored.token.expires_at.utcoffset() == timedelta(0)
    assert await ApiToken.all().count() == 2


async def test_names_are_trimmed_and_bounded(make: Factory) -> None:
    learner = await make.learner()
    made = await _issue(learner, name="\t CI \n runner  ")
    assert made.token.name == "CI runner"
    assert (await ApiToken.get(id=made.token.id)).name == "CI runner"
    assert (await _issue(learner, name="x" * 200)).token.name == "x" * 200
    with pytest.raises(InvalidInput) as refused:
        await _issue(learner, name="x" * 201)
    assert refused.value.field == ("name",)


async def test_whose_token_it_is(make: Factory) -> None:
    admin, learner, other = await make.admin(), await make.learner(), await make.learner()
    assert other.user_id is not None and learner.user_id is not None

    assert (await _issue(learner)).token.user_id == learner.user_id
    assert (await _issue(admin, user_id=other.user_id)).token.user_id == other.user_id
    with pytest.raises(Forbidden):
        await _issue(learner, user_id=other.user_id)
    with pytest.raises(Forbidden):  # whether or not the user exists: no probing
        await _issue(learner, user_id=424242)
    with pytest.raises(NotFound):
        await _issue(admin, user_id=424242)
    with pytest.raises(InvalidInput) as refused:  # the operator is no user
        await _issue(Actor.system())
    assert refused.value.field == ("userId",)


async def test_listing_pages_and_refusals(make: Factory) -> None:
    learner, manager = await make.learner(), await make.user()
    assert learner.user_id is not None
    made = [await _issue(learner, name=str(i)) for i in range(5)]
    await tokens.revoke_api_token(learner, made[2].token.id)

    page = await tokens.list_api_tokens(learner, learner.user_id, paging=PageRequest(first=2))
    assert [t.name for t in page.items] == ["4", "3"] and page.total_count == 4
    rest = await tokens.list_api_tokens(
        learner, learner.user_id, paging=PageRequest(after=page.cursors[-1])
    )
    assert [t.name for t in rest.items] == ["1", "0"]
    everything = await tokens.list_api_tokens(learner, learner.user_id, include_revoked=True)
    assert [t.name for t in everything.items] == ["4", "3", "2", "1", "0"]
    assert everything.items[2].revoked_at is not None

    with pytest.raises(InvalidInput):  # a cursor of the other list
        await tokens.list_api_tokens(
            learner, learner.user_id, paging=PageRequest(after=everything.cursors[0])
        )
    with pytest.raises(InvalidInput):
        await tokens.list_api_tokens(learner, learner.user_id, paging=PageRequest(first=1000))
    with pytest.raises(InvalidInput):  # also when the answer would be empty
        await tokens.list_api_tokens(manager, learner.user_id, paging=PageRequest(first=1000))
    hidden = await tokens.list_api_tokens(manager, learner.user_id)
    assert (hidden.items, hidden.total_count) == ([], 0)


async def test_is_active(make: Factory) -> None:
    clock.freeze(NOW)
    learner = await make.learner()
    ending = (await _issue(learner, expires_at=NOW + timedelta(hours=1))).token
    assert tokens.is_active(ending) and not tokens.is_active(ending, NOW + timedelta(hours=1))
    revoked = await tokens.revoke_api_token(learner, ending.id)
    assert not tokens.is_active(revoked, NOW)


def test_expiry_in_days() -> None:
    assert tokens.expiry_in_days(30, NOW) == NOW + timedelta(days=30)
    assert tokens.expiry_in_days(MAX_LIFETIME_DAYS, NOW) == NOW + timedelta(days=3650)
    for days in (0, -1, MAX_LIFETIME_DAYS + 1):
        with pytest.raises(InvalidInput):
            tokens.expiry_in_days(days, NOW)


async def test_the_calls_of_before_answer_as_before(make: Factory) -> None:
    admin, learner = await make.admin(), await make.learner()
    assert learner.user_id is not None

    secret = await users.create_api_token(admin, learner.user_id)
    assert isinstance(secret, str) and (await authenticate(secret)) == learner
    user, by_email = await users.create_token_for_email(admin, learner.email)
    assert user.id == learner.user_id and isinstance(by_email, str)
    named_user, named = await tokens.create_token_for_email(
        admin, learner.email.upper(), name="ops", expires_at=clock.now() + timedelta(days=1)
    )
    assert named_user == user and named.token.name == "ops"

    assert await users.revoke_tokens_for_email(admin, learner.email) == 3
    for plain in (secret, by_email, named.secret):
        with pytest.raises(Unauthenticated):
            await authenticate(plain)
