"""Users; and the token calls of before gql.domain.tokens, which answer only the secret."""

from __future__ import annotations

import re

from gql.domain import tokens
from gql.domain.access import Actor, may_manage, note_hidden, require_admin, user_scope
from gql.domain.errors import InvalidInput, t
from gql.domain.external_ids import (
    UniqueKey,
    check_free,
    clean_external_id,
    conflicts_named,
    external_id_key,
)
from gql.domain.pages import FIRST_PAGE, OrmKey, Page, PageRequest, check_search, orm_page
from gql.domain.tokens import revoke_tokens_for_email as revoke_tokens_for_email
from gql.domain.unit import unit_of_work
from gql.store.models import User
from gql.store.records import USER_COLUMNS, UserRecord, record_of
from gql.vocabulary import Role

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidInput(t("name must not be empty"), field=["name"])
    if len(cleaned) > 200:
        raise InvalidInput(t("name must be at most 200 characters"), field=["name"])
    return cleaned


def clean_email(email: str) -> str:
    cleaned = email.strip().lower()
    if not EMAIL.match(cleaned) or len(cleaned) > 320:
        raise InvalidInput(t("email is not a valid address"), field=["email"])
    return cleaned


async def create_user(
    actor: Actor,
    *,
    name: str,
    email: str,
    role: Role,
    manager_id: int | None = None,
    external_id: str | None = None,
) -> UserRecord:
    """A new user; an email or externalId another user holds is CONFLICT naming that user
    (gql.domain.external_ids)."""
    await require_admin(actor, "createUser", "User")
    name, email = clean_name(name), clean_email(email)
    external_id = clean_external_id(external_id, ["externalId"])
    keys = [UniqueKey("User", "email", email, ("email",))]
    keys += external_id_key("User", external_id, ["externalId"])
    async with conflicts_named(keys), unit_of_work(actor) as unit:
        if manager_id is not None:
            manager = await _user_where(id=manager_id)
            if manager is None or not may_manage(Role(manager.role)):
                raise InvalidInput(
                    t("manager must be an existing manager or admin"), field=["managerId"]
                )
        await check_free(keys)
        user = await User.create(
            name=name,
            email=email,
            role=role,
            manager_id=manager_id,
            created_at=unit.now,
            external_id=external_id,
        )
        after = {"name": name, "email": email, "role": str(role), "managerId": manager_id}
        if external_id is not None:
            after["externalId"] = external_id
        await unit.audit("createUser", "User", user.id, after=after)
    return record_of(UserRecord, user)


async def _user_where(**filters: object) -> UserRecord | None:
    rows = await User.filter(**filters).limit(1).values_list(*USER_COLUMNS)
    return UserRecord(*rows[0]) if rows else None


async def create_api_token(actor: Actor, user_id: int) -> str:
    """A new token for the user (gql.domain.tokens.create_api_token), answered as its secret."""
    return (await tokens.create_api_token(actor, user_id)).secret


async def create_token_for_email(actor: Actor, email: str) -> tuple[UserRecord, str]:
    """A new token for the user with this email (admins), answered with its secret."""
    user, issued = await tokens.create_token_for_email(actor, email)
    return user, issued.secret


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
    manager_id: int | None = None,
    active: bool | None = True,
    paging: PageRequest = FIRST_PAGE,
) -> Page[UserRecord]:
    """The users the actor may see, by name then id. `manager_id`: that manager's direct
    reports. `active`: True (the default) leaves deactivated people out, False lists only
    them, None everyone."""
    search = check_search(search)
    queryset = User.filter(user_scope(actor))
    if role is not None:
        queryset = queryset.filter(role=role)
    if manager_id is not None:
        queryset = queryset.filter(manager_id=manager_id)
    if active is not None:
        queryset = queryset.filter(deactivated_at__isnull=active)
    if search:
        from tortoise.expressions import Q

        queryset = queryset.filter(Q(name__icontains=search) | Q(email__icontains=search))
    return await orm_page(
        queryset,
        [OrmKey("name", type="str"), OrmKey("id")],
        record=UserRecord,
        columns=USER_COLUMNS,
        kind="users",
        paging=paging,
    )
