"""Users and their API tokens."""

from __future__ import annotations

import re

from gql.domain.access import (
    Actor,
    hash_token,
    may_manage,
    new_token,
    note_hidden,
    require_admin,
    user_scope,
)
from gql.domain.errors import Conflict, InvalidInput, NotFound
from gql.domain.pages import DEFAULT_MAX_PAGE_SIZE, OrmKey, Page, check_search, orm_page
from gql.domain.unit import unit_of_work
from gql.store.models import ApiToken, User
from gql.store.records import USER_COLUMNS, UserRecord, record_of
from gql.vocabulary import Role

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidInput("name must not be empty", field=["name"])
    if len(cleaned) > 200:
        raise InvalidInput("name must be at most 200 characters", field=["name"])
    return cleaned


def _clean_email(email: str) -> str:
    cleaned = email.strip().lower()
    if not EMAIL.match(cleaned) or len(cleaned) > 320:
        raise InvalidInput("email is not a valid address", field=["email"])
    return cleaned


async def create_user(
    actor: Actor, *, name: str, email: str, role: Role, manager_id: int | None = None
) -> UserRecord:
    await require_admin(actor, "createUser", "User")
    name, email = _clean_name(name), _clean_email(email)
    async with unit_of_work(actor) as unit:
        if manager_id is not None:
            manager = await _user_where(id=manager_id)
            if manager is None or not may_manage(Role(manager.role)):
                raise InvalidInput(
                    "manager must be an existing manager or admin", field=["managerId"]
                )
        if await User.filter(email=email).exists():
            raise Conflict(f"a user with email {email} already exists", field=["email"])
        user = await User.create(
            name=name, email=email, role=role, manager_id=manager_id, created_at=unit.now
        )
        await unit.audit(
            "createUser",
            "User",
            user.id,
            after={"name": name, "email": email, "role": str(role), "managerId": manager_id},
        )
    return record_of(UserRecord, user)


async def _user_where(**filters: object) -> UserRecord | None:
    rows = await User.filter(**filters).limit(1).values_list(*USER_COLUMNS)
    return UserRecord(*rows[0]) if rows else None


async def _issue_token(actor: Actor, user: UserRecord) -> str:
    token = new_token()
    async with unit_of_work(actor) as unit:
        row = await ApiToken.create(
            user_id=user.id, token_hash=hash_token(token), created_at=unit.now
        )
        # the token itself never reaches the log: only which token row was issued
        await unit.audit("createApiToken", "ApiToken", row.id, after={"userId": user.id})
    return token


async def create_api_token(actor: Actor, user_id: int) -> str:
    await require_admin(actor, "createApiToken", "User", user_id)
    user = await _user_where(id=user_id)
    if user is None:
        raise NotFound("no such user", field=["userId"])
    return await _issue_token(actor, user)


async def create_token_for_email(actor: Actor, email: str) -> tuple[UserRecord, str]:
    await require_admin(actor, "createApiToken", "User")
    user = await _user_where(email=email.strip().lower())
    if user is None:
        raise NotFound(f"no user with email {email}", field=["email"])
    return user, await _issue_token(actor, user)


async def revoke_tokens_for_email(actor: Actor, email: str) -> int:
    """Revoke every live token of a user; returns how many were revoked."""
    await require_admin(actor, "revokeApiTokens", "User")
    user = await _user_where(email=email.strip().lower())
    if user is None:
        raise NotFound(f"no user with email {email}", field=["email"])
    async with unit_of_work(actor) as unit:
        count = await ApiToken.filter(user_id=user.id, revoked_at=None).update(revoked_at=unit.now)
        await unit.audit("revokeApiTokens", "User", user.id, after={"revoked": count})
    return int(count)


async def get_user(actor: Actor, user_id: int) -> UserRecord | None:
    found = (await users_by_ids(actor, [user_id])).get(user_id)
    if found is None and await User.filter(id=user_id).exists():
        await note_hidden(actor, "user", "User", user_id)
    return found


async def users_by_ids(actor: Actor, ids: list[int]) -> dict[int, UserRecord]:
    if not ids:
        return {}
    rows = await User.filter(user_scope(actor), id__in=ids).values_list(*USER_COLUMNS)
    return {r[0]: UserRecord(*r) for r in rows}


async def list_users(
    actor: Actor,
    *,
    role: Role | None = None,
    search: str | None = None,
    first: int | None = 20,
    after: str | None = None,
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE,
) -> Page[UserRecord]:
    search = check_search(search)
    queryset = User.filter(user_scope(actor))
    if role is not None:
        queryset = queryset.filter(role=role)
    if search:
        from tortoise.expressions import Q

        queryset = queryset.filter(Q(name__icontains=search) | Q(email__icontains=search))
    return await orm_page(
        queryset,
        [OrmKey("name", type="str"), OrmKey("id")],
        record=UserRecord,
        columns=USER_COLUMNS,
        kind="users",
        first=first,
        after=after,
        max_page_size=max_page_size,
    )
