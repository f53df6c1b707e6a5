"""People's lifecycle (gql.domain.people): the row locks that keep the manager hierarchy
acyclic, and the writes of an update, a deactivation and a reactivation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError

from gql.store.models import User
from gql.store.records import USER_COLUMNS, UserRecord, record_of


class EmailTaken(Exception):
    """The unique e-mail index refused a write (another writer took the address meanwhile)."""


async def lock_people(user_ids: list[int]) -> dict[int, UserRecord]:
    """These users, their rows locked until the transaction ends, by id; the missing ones
    left out. One statement, locking in id order (PostgreSQL FOR UPDATE), so two writers
    never wait on each other crosswise; SQLite's write transactions hold the database's
    write lock already (Tortoise sends no FOR UPDATE there)."""
    rows = await User.filter(id__in=sorted(set(user_ids))).order_by("id").select_for_update()
    return {row.id: record_of(UserRecord, row) for row in rows}


async def manager_of(user_id: int) -> tuple[bool, int | None]:
    """(whether the user exists, their manager_id), without a lock."""
    rows = await User.filter(id=user_id).limit(1).values_list("manager_id")
    if not rows:
        return False, None
    manager_id: int | None = rows[0][0]
    return True, manager_id


async def has_reports(user_id: int) -> bool:
    """Whether anyone has this user as their manager."""
    found: bool = await User.filter(manager_id=user_id).exists()
    return found


async def email_taken(email: str, *, by_other_than: int) -> bool:
    found: bool = await User.filter(email=email).exclude(id=by_other_than).exists()
    return found


async def update_user(user_id: int, changes: dict[str, Any]) -> None:
    """Write the changed columns (by their names: name, email, role, manager_id); EmailTaken
    when the unique e-mail index refuses the address."""
    try:
        await User.filter(id=user_id).update(**changes)
    except IntegrityError as exc:
        if "email" in str(exc).lower():
            raise EmailTaken(str(exc)) from exc
        raise


async def set_deactivated_at(user_id: int, at: datetime | None) -> None:
    """Deactivate the user from `at` on, or reactivate them (None)."""
    await User.filter(id=user_id).update(deactivated_at=at)


async def user_by_email(email: str) -> UserRecord | None:
    """The user with this (lower-case) e-mail, active or not; None when there is none."""
    rows = await User.filter(email=email).limit(1).values_list(*USER_COLUMNS)
    return UserRecord(*rows[0]) if rows else None
