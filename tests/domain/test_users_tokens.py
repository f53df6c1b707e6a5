"""Users and API tokens: admin only, validated, tokens random, stored only as a hash, revocable."""

from __future__ import annotations

import pytest

from gql.domain import users
from gql.domain.access import Actor, authenticate, hash_token
from gql.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from gql.domain.pages import PageRequest
from gql.store.models import ApiToken, AuditEvent, Role, User

from .factories import Factory, field_of


async def test_admin_creates_a_user_with_a_manager(make: Factory) -> None:
    admin = await make.admin()
    manager = await make.user(Role.MANAGER)

    user = await users.create_user(
        admin,
        name="Ada Lovelace",
        email="ada@example.com",
        role=Role.LEARNER,
        manager_id=manager.user_id,
    )

    stored = await User.get(id=user.id)
    assert (stored.name, stored.email, stored.role) == (
        "Ada Lovelace",
        "ada@example.com",
        Role.LEARNER,
    )
    assert stored.manager_id == manager.user_id  # type: ignore[attr-defined]


@pytest.mark.parametrize("role", [Role.LEARNER, Role.MANAGER])
async def test_only_admins_create_users_and_nothing_is_written(make: Factory, role: Role) -> None:
    actor = await make.user(role)
    before = await User.all().count()

    with pytest.raises(Forbidden):
        await users.create_user(actor, name="Eve", email="eve@example.com", role=Role.ADMIN)

    assert await User.all().count() == before
    assert not await User.filter(email="eve@example.com").exists()


async def test_duplicate_email_is_a_conflict(make: Factory) -> None:
    admin = await make.admin()
    await users.create_user(admin, name="A", email="same@example.com", role=Role.LEARNER)

    with pytest.raises(Conflict):
        await users.create_user(admin, name="B", email="same@example.com", role=Role.MANAGER)

    assert await User.filter(email="same@example.com").count() == 1


@pytest.mark.parametrize(
    ("name", "email", "field"),
    [
        ("Someone", "not-an-email", "email"),
        ("Someone", "", "email"),
        ("Someone", "two@@example.com", "email"),
        ("", "x@example.com", "name"),
        ("   ", "x@example.com", "name"),
    ],
)
async def test_bad_name_or_email_is_invalid_input_naming_the_field(
    make: Factory, name: str, email: str, field: str
) -> None:
    admin = await make.admin()
    before = await User.all().count()

    with pytest.raises(InvalidInput) as raised:
        await users.create_user(admin, name=name, email=email, role=Role.LEARNER)

    assert field_of(raised.value) == field
    assert await User.all().count() == before


async def test_manager_must_exist(make: Factory) -> None:
    admin = await make.admin()
    before = await User.all().count()

    with pytest.raises(InvalidInput) as raised:
        await users.create_user(
            admin, name="L", email="l@example.com", role=Role.LEARNER, manager_id=987654
        )

    assert field_of(raised.value) == "manager_id"
    assert await User.all().count() == before


async def test_manager_must_be_a_manager_or_admin(make: Factory) -> None:
    admin = await make.admin()
    plain_learner = await make.learner()

    with pytest.raises(InvalidInput) as raised:
        await users.create_user(
            admin,
            name="L",
            email="l@example.com",
            role=Role.LEARNER,
            manager_id=plain_learner.user_id,
        )
    assert field_of(raised.value) == "manager_id"
    assert not await User.filter(email="l@example.com").exists()

    for role in (Role.MANAGER, Role.ADMIN):
        boss = await make.user(role)
        report = await users.create_user(
            admin,
            name="R",
            email=f"r-{role.value.lower()}@example.com",
            role=Role.LEARNER,
            manager_id=boss.user_id,
        )
        assert report.manager_id == boss.user_id  # type: ignore[attr-defined]


async def test_a_token_authenticates_its_user(make: Factory) -> None:
    admin = await make.admin()
    learner = await make.learner()
    assert learner.user_id is not None

    token = await users.create_api_token(admin, learner.user_id)
    actor = await authenticate(token)

    assert actor.user_id == learner.user_id
    assert actor.role == Role.LEARNER


async def test_tokens_are_random(make: Factory) -> None:
    admin = await make.admin()
    learner = await make.learner()
    assert learner.user_id is not None

    first = await users.create_api_token(admin, learner.user_id)
    second = await users.create_api_token(admin, learner.user_id)

    assert first != second
    assert len(first) >= 32
    assert (await authenticate(first)).user_id == (await authenticate(second)).user_id


async def test_a_token_is_stored_only_as_its_hash(make: Factory) -> None:
    admin = await make.admin()
    learner = await make.learner()
    assert learner.user_id is not None

    token = await users.create_api_token(admin, learner.user_id)

    rows = await ApiToken.filter(user_id=learner.user_id).values()
    assert len(rows) == 1
    assert rows[0]["token_hash"] == hash_token(token)
    for row in rows:
        assert all(token not in str(value) for value in row.values())
    # the audit log records that a token was issued, never the token
    for event in await AuditEvent.all().values():
        assert all(token not in str(value) for value in event.values())


async def test_token_for_email_and_revocation(make: Factory) -> None:
    admin = await make.admin()
    learner = await make.learner()

    user, token = await users.create_token_for_email(admin, learner.email)
    other_user, other_token = await users.create_token_for_email(admin, learner.email)
    assert user.id == other_user.id == learner.user_id
    assert (await authenticate(token)).user_id == learner.user_id

    revoked = await users.revoke_tokens_for_email(admin, learner.email)

    assert revoked == 2
    for plain in (token, other_token):
        with pytest.raises(Unauthenticated):
            await authenticate(plain)
    assert await users.revoke_tokens_for_email(admin, learner.email) == 0


async def test_revoking_one_users_tokens_leaves_others_working(make: Factory) -> None:
    admin = await make.admin()
    alice, bob = await make.learner(), await make.learner()
    _, alice_token = await users.create_token_for_email(admin, alice.email)
    _, bob_token = await users.create_token_for_email(admin, bob.email)

    await users.revoke_tokens_for_email(admin, alice.email)

    assert (await authenticate(bob_token)).user_id == bob.user_id
    with pytest.raises(Unauthenticated):
        await authenticate(alice_token)


@pytest.mark.parametrize("token", [None, "", "cg_not-a-real-token", "Bearer x"])
async def test_missing_or_unknown_token_is_unauthenticated(
    make: Factory, token: str | None
) -> None:
    admin = await make.admin()
    assert admin.user_id is not None
    await users.create_api_token(admin, admin.user_id)  # a real token exists, just not this one

    with pytest.raises(Unauthenticated):
        await authenticate(token)


async def test_only_admins_issue_tokens_for_others_and_by_email_and_revoke_by_email(
    make: Factory,
) -> None:
    learner, other = await make.learner(), await make.learner()
    assert other.user_id is not None

    # (a token of one's own is anyone's to make: tests/tokens)
    with pytest.raises(Forbidden):
        await users.create_api_token(learner, other.user_id)
    with pytest.raises(Forbidden):
        await users.create_token_for_email(learner, learner.email)
    with pytest.raises(Forbidden):
        await users.revoke_tokens_for_email(learner, learner.email)

    assert await ApiToken.all().count() == 0


async def test_token_for_an_unknown_user_is_not_found(make: Factory) -> None:
    admin = await make.admin()

    with pytest.raises(NotFound):
        await users.create_api_token(admin, 424242)
    with pytest.raises(NotFound):
        await users.create_token_for_email(admin, "nobody@example.com")

    assert await ApiToken.all().count() == 0


async def test_the_command_line_operator_may_create_the_first_admin(db: None) -> None:
    operator = Actor.system()

    admin = await users.create_user(
        operator, name="Root", email="root@example.com", role=Role.ADMIN
    )
    token = await users.create_api_token(operator, admin.id)

    assert (await authenticate(token)).role == Role.ADMIN


async def test_users_see_themselves_their_manager_and_reports(make: Factory) -> None:
    manager = await make.user(Role.MANAGER)
    report = await make.learner(manager=manager)
    stranger = await make.learner()
    assert report.user_id is not None and stranger.user_id is not None
    assert manager.user_id is not None

    assert await users.get_user(report, report.user_id) is not None
    assert await users.get_user(report, manager.user_id) is not None
    assert await users.get_user(manager, report.user_id) is not None
    assert await users.get_user(report, stranger.user_id) is None
    assert await users.get_user(manager, stranger.user_id) is None
    assert await users.get_user(await make.admin(), stranger.user_id) is not None


async def test_list_users_is_scoped_by_role(make: Factory) -> None:
    boss = await make.user(Role.MANAGER)
    manager = await make.user(Role.MANAGER, manager=boss)
    report_a, report_b = await make.learner(manager=manager), await make.learner(manager=manager)
    stranger = await make.learner()

    async def listed(actor: Actor, role: Role | None = None) -> set[int | None]:
        page = await users.list_users(actor, role=role, search=None, paging=PageRequest(first=100))
        return {u.id for u in page.items}

    assert await listed(manager) == {
        manager.user_id,
        boss.user_id,
        report_a.user_id,
        report_b.user_id,
    }
    assert await listed(manager, Role.LEARNER) == {report_a.user_id, report_b.user_id}
    assert await listed(report_a) == {report_a.user_id, manager.user_id}
    everyone = await listed(await make.admin())
    assert {stranger.user_id, report_a.user_id, boss.user_id} <= everyone
