"""The token lookup's row (gql.store.tokens) holds what the ApiToken and User models hold, on
SQLite (datetimes as text) and PostgreSQL; authentication sends one statement, plus the
last_used_at refresh at most once a minute, which the ORM reads back as the same instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tortoise.connection import get_connection

from gql import clock
from gql.domain import users
from gql.domain.access import Actor, authenticate, hash_token
from gql.domain.errors import Unauthenticated
from gql.store import tokens
from gql.store.models import ApiToken, Role, User
from gql.store.records import TokenRecord, UserRecord
from tests.conftest import QueryCounter

from .factories import Factory


async def _token_of(make: Factory, actor: Actor) -> str:
    assert actor.user_id is not None
    return await users.create_api_token(await make.admin(), actor.user_id)


async def _assert_row_is_model(plain: str) -> TokenRecord:
    row = await tokens.active_token(hash_token(plain))
    model = await ApiToken.get(token_hash=hash_token(plain)).select_related("user")
    assert row is not None
    assert (row.id, row.last_used_at) == (model.id, model.last_used_at)
    user: User = model.user
    assert row.user == UserRecord(user.id, user.name, user.email, user.role, user.manager_id)
    assert type(row.user.role) is Role
    assert Actor.of(row.user) == Actor.of(user)
    return row


async def test_the_row_holds_what_the_models_hold_for_a_user_with_a_manager(
    make: Factory,
) -> None:
    manager = await make.user(Role.MANAGER, name="Maya Manager")
    learner = await make.learner(manager)
    plain = await _token_of(make, learner)

    row = await _assert_row_is_model(plain)  # never used yet
    assert row.last_used_at is None
    assert row.user.manager_id == manager.user_id
    assert Actor.of(row.user) == learner

    await authenticate(plain)
    used = await _assert_row_is_model(plain)
    assert used.last_used_at is not None
    assert used.last_used_at.utcoffset() == timedelta(0)


async def test_the_row_of_a_user_without_a_manager(make: Factory) -> None:
    admin = await make.admin()
    row = await _assert_row_is_model(await _token_of(make, admin))
    assert row.user.manager_id is None
    assert Actor.of(row.user) == admin


async def test_revoked_and_unknown_tokens_have_no_row(make: Factory) -> None:
    learner = await make.learner()
    plain = await _token_of(make, learner)
    await users.revoke_tokens_for_email(await make.admin(), learner.email)

    assert await tokens.active_token(hash_token(plain)) is None
    assert await tokens.active_token(hash_token("cg_unknown")) is None


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "an Authorization: Bearer <token> header is required"),
        ("", "an Authorization: Bearer <token> header is required"),
        ("cg_unknown", "the token is unknown or revoked"),
    ],
)
async def test_missing_and_unknown_tokens_keep_their_messages(
    make: Factory, token: str | None, message: str
) -> None:
    await _token_of(make, await make.learner())
    with pytest.raises(Unauthenticated) as refused:
        await authenticate(token)
    assert str(refused.value) == message


async def test_a_revoked_token_keeps_its_message(make: Factory) -> None:
    learner = await make.learner()
    plain = await _token_of(make, learner)
    await users.revoke_tokens_for_email(await make.admin(), learner.email)
    with pytest.raises(Unauthenticated) as refused:
        await authenticate(plain)
    assert str(refused.value) == "the token is unknown or revoked"


async def test_last_used_at_is_refreshed_at_most_once_a_minute(
    make: Factory, sql_queries: QueryCounter
) -> None:
    learner = await make.learner()
    plain = await _token_of(make, learner)
    start = datetime(2026, 3, 10, 9, 0, 0, 123456, tzinfo=UTC)
    clock.freeze(start)

    sql_queries.reset()
    assert await authenticate(plain) == learner
    assert sql_queries.count == 2  # the lookup, then the first refresh
    assert (await ApiToken.get(token_hash=hash_token(plain))).last_used_at == start

    for later in (timedelta(seconds=1), timedelta(minutes=1)):
        clock.freeze(start + later)
        sql_queries.reset()
        assert await authenticate(plain) == learner
        assert sql_queries.count == 1  # within the minute: the lookup alone
        assert (await ApiToken.get(token_hash=hash_token(plain))).last_used_at == start

    moved = start + timedelta(minutes=1, microseconds=1)
    clock.freeze(moved)
    sql_queries.reset()
    await authenticate(plain)
    assert sql_queries.count == 2
    row = await _assert_row_is_model(plain)
    assert row.last_used_at == moved


async def test_the_refresh_stores_what_the_orms_update_stores(make: Factory) -> None:
    """SQLite compares datetimes as text: the raw UPDATE must write the ORM's exact form."""
    first = await _token_of(make, await make.learner())
    second = await _token_of(make, await make.learner())
    at = datetime(2026, 3, 10, 10, 30, 15, 42, tzinfo=UTC)
    first_row = await tokens.active_token(hash_token(first))
    assert first_row is not None

    await tokens.touch_token(first_row.id, at)
    await ApiToken.filter(token_hash=hash_token(second)).update(last_used_at=at)

    stored = await ApiToken.filter(token_hash__in=[hash_token(first), hash_token(second)]).filter(
        last_used_at=at
    )
    assert len(stored) == 2
    _, raw = await get_connection("default").execute_query(
        'SELECT "last_used_at" FROM "api_token" WHERE "id" IN ' + f"({stored[0].id},{stored[1].id})"
    )
    assert raw[0][0] == raw[1][0]
