"""People's lifecycle (docs/api.md, "People"): an admin changes who someone is (name, e-mail,
role, manager), deactivates them and reactivates them. Each is one transaction, audited with
what changed before and after; a refusal writes nothing (a non-admin's is audited as
`denied:<action>`).

A deactivated person's credentials are refused from their next request on: their API tokens
(gql.domain.access.authenticate) and their OpenID provider's tokens (gql.domain.sign_in),
with DEACTIVATED_ACCOUNT. Nothing else changes: their tokens are not revoked (reactivating
restores them), and their enrollments, progress, evidence, awards and audit trail stay.

The manager hierarchy stays acyclic under concurrent updates. An update reads the chain
above the new manager, then locks the person's row and every row of that chain in one
statement, in id order (so two updates never deadlock), and reads the chain again from the
locked rows: when it moved meanwhile, the update starts over. Every write of a manager_id
holds that row's lock, so the chain it checked stays as it was until it commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from enum import Enum
from typing import Any, Final, TypeVar

from gql.domain.access import Actor, may_manage, require_admin
from gql.domain.changes import UNCHANGED, Unchanged
from gql.domain.errors import Conflict, InvalidInput, NotAllowed, NotFound, t
from gql.domain.external_ids import (
    change_external_id,
    clean_external_id,
    conflicts_named,
    external_id_key,
)
from gql.domain.unit import Unit, unit_of_work
from gql.domain.users import clean_email, clean_name
from gql.store import people as store
from gql.store.db import retrying
from gql.store.records import UserRecord
from gql.vocabulary import Role

__all__ = [
    "KEEP",
    "Keep",
    "deactivate_user",
    "reactivate_user",
    "update_user",
    "user_by_email",
]

# A manager chain longer than this is taken for a cycle already in the data (none can be
# made through certgraph); the walk stops rather than loop.
MAX_CHAIN = 10_000
# How often an update starts over when the chain above the new manager changed between
# reading it and locking it (each time another admin's move of those very people committed).
CHAIN_ATTEMPTS = 5
T = TypeVar("T")


# A field of an update that was not given keeps its value (None clears one): the partial
# updates' sentinel (gql.domain.changes), under the names this module's callers use.
Keep = Unchanged
KEEP: Final = UNCHANGED


def _required(value: T | None, field: str) -> T:
    if value is None:
        raise InvalidInput(
            t("{field} cannot be cleared (null)", field=field), field=["input", field]
        )
    return value


def _cleaned(clean: Callable[[str], str], value: str, field: str) -> str:
    """createUser's check of the field, its error naming the field of the input."""
    try:
        return clean(value)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field=["input", field]) from None


async def update_user(
    actor: Actor,
    user_id: int,
    *,
    name: str | Keep | None = KEEP,
    email: str | Keep | None = KEEP,
    role: Role | Keep | None = KEEP,
    manager_id: int | Keep | None = KEEP,
    external_id: str | Keep | None = KEEP,
) -> UserRecord:
    """Change the fields given (admins): KEEP leaves one as it is; None clears the manager or
    the externalId and is refused for the others (INVALID_INPUT). An externalId another user
    has is CONFLICT naming them (gql.domain.external_ids). Validation as createUser's; the
    manager must be an active MANAGER or ADMIN and not the person or anyone they manage,
    directly or not (NOT_ALLOWED); the e-mail must be no one else's (CONFLICT); an admin
    cannot change their own role, nor anyone's role away from MANAGER or ADMIN while people
    report to them (NOT_ALLOWED). Answers the user as it is now; a request that changes
    nothing writes nothing (not even an audit row)."""
    await require_admin(actor, "updateUser", "User", user_id)
    wanted: dict[str, Any] = {}
    if not isinstance(name, Keep):
        wanted["name"] = _cleaned(clean_name, _required(name, "name"), "name")
    if not isinstance(email, Keep):
        wanted["email"] = _cleaned(clean_email, _required(email, "email"), "email")
    if not isinstance(role, Keep):
        wanted["role"] = Role(_required(role, "role"))
    if not isinstance(manager_id, Keep):
        wanted["manager_id"] = manager_id
    external: str | Keep | None = KEEP
    keys = []
    if not isinstance(external_id, Keep):
        external = clean_external_id(external_id, ["input", "externalId"])
        keys = external_id_key("User", external, ["input", "externalId"], own_id=user_id)
    async with conflicts_named(keys):
        for _ in range(CHAIN_ATTEMPTS):
            try:
                return await retrying(lambda: _update(actor, user_id, wanted, external))
            except _ChainMoved:
                continue
    raise Conflict(
        t("the managers above the new manager kept changing meanwhile; try again"),
        field=["input", "managerId"],
    )


async def _update(
    actor: Actor, user_id: int, wanted: dict[str, Any], external_id: str | Keep | None = KEEP
) -> UserRecord:
    async with unit_of_work(actor) as unit:
        new_manager = wanted.get("manager_id")
        chain = await _chain_unlocked(new_manager, user_id)
        locked = await store.lock_people([user_id, *chain[0]])
        user = locked.get(user_id)
        if user is None:
            raise NotFound(t("no such user"), field=["id"])
        changes = {k: v for k, v in wanted.items() if getattr(user, k) != v}
        if changes.get("manager_id") is not None and chain != _chain(new_manager, user_id, locked):
            raise _ChainMoved  # read before the rows were locked, changed since: again
        moved = None
        if not isinstance(external_id, Keep):
            moved = await change_external_id("User", user.id, external_id, ["input", "externalId"])
        if not changes and moved is None:
            return user
        if "role" in changes:
            await _check_role_change(actor, user, changes["role"])
        if changes.get("manager_id") is not None:
            _check_manager(user, locked.get(changes["manager_id"]), chain)
        if "email" in changes and await store.email_taken(changes["email"], by_other_than=user.id):
            raise _email_conflict(changes["email"])
        try:
            if changes:
                await store.update_user(user.id, changes)
        except store.EmailTaken:
            raise _email_conflict(changes["email"]) from None
        await _audit(unit, "updateUser", user, changes, moved)
        return replace(user, **changes)


def _email_conflict(email: str) -> Conflict:
    return Conflict(
        t("a user with email {email} already exists", email=email), field=["input", "email"]
    )


async def _check_role_change(actor: Actor, user: UserRecord, role: Role) -> None:
    if user.id == actor.user_id:
        raise NotAllowed(
            t("you cannot change your own role; another admin can"), field=["input", "role"]
        )
    if not may_manage(role) and await store.has_reports(user.id):
        raise NotAllowed(
            t(
                "{email} manages people: give them another manager first (a "
                "manager must be a MANAGER or ADMIN)",
                email=user.email,
            ),
            field=["input", "role"],
        )


# The new manager's chain: the ids from the manager up, and where the walk stopped (None:
# at the top, or at a missing row; the user's id: a cycle; an id already walked, or the
# walk too long: a cycle already in the data).
Chain = tuple[list[int], int | None]


class _ChainMoved(Exception):
    """The chain changed between reading it and locking its rows: the update starts over."""


async def _chain_unlocked(manager_id: int | None, user_id: int) -> Chain:
    """The chain as committed now (one read per level), to know which rows to lock."""
    walked: list[int] = []
    above = manager_id
    while above is not None and above != user_id and above not in walked:
        if len(walked) >= MAX_CHAIN:
            break
        walked.append(above)
        above = (await store.manager_of(above))[1]
    return walked, above


def _chain(manager_id: int | None, user_id: int, locked: dict[int, UserRecord]) -> Chain:
    """The chain again, from the locked rows: the one read unlocked when nothing moved."""
    walked: list[int] = []
    above = manager_id
    while above is not None and above != user_id and above not in walked:
        if len(walked) >= MAX_CHAIN:
            break
        walked.append(above)
        row = locked.get(above)
        above = None if row is None else row.manager_id
    return walked, above


def _check_manager(user: UserRecord, manager: UserRecord | None, chain: Chain) -> None:
    """The new manager: an active MANAGER or ADMIN, neither the user nor anyone the user
    manages, directly or not (`chain`, read from locked rows)."""
    field = ["input", "managerId"]
    walked, stop = chain
    if not walked and stop == user.id:
        raise NotAllowed(t("a person cannot be their own manager"), field=field)
    if manager is None or not may_manage(Role(manager.role)):
        raise InvalidInput(t("manager must be an existing manager or admin"), field=field)
    if manager.deactivated_at is not None:
        raise InvalidInput(t("manager {email} is deactivated", email=manager.email), field=field)
    if stop == user.id:
        raise NotAllowed(
            t(
                "{manager_email} reports to {user_email} (directly or not): making "
                "them {user_email}'s manager would make a cycle",
                manager_email=manager.email,
                user_email=user.email,
            ),
            field=field,
        )
    if stop is not None:
        raise NotAllowed(
            t("the manager chain above {email} does not end", email=manager.email), field=field
        )


async def user_by_email(actor: Actor, email: str) -> UserRecord:
    """The user with this e-mail, active or not (admins: the command line's lookup);
    NOT_FOUND when there is none."""
    await require_admin(actor, "userByEmail", "User")
    found = await store.user_by_email(email.strip().lower())
    if found is None:
        raise NotFound(t("no user with email {email}", email=email.strip()), field=["email"])
    return found


async def deactivate_user(actor: Actor, user_id: int) -> UserRecord:
    """Deactivate a user (admins; not oneself: NOT_ALLOWED): their credentials are refused
    from their next request on. Deactivating a deactivated user changes nothing."""
    await require_admin(actor, "deactivateUser", "User", user_id)
    if user_id == actor.user_id:
        raise NotAllowed(t("you cannot deactivate yourself; another admin can"), field=["id"])
    return await retrying(lambda: _set_active(actor, user_id, active=False))


async def reactivate_user(actor: Actor, user_id: int) -> UserRecord:
    """Reactivate a deactivated user (admins): their tokens that are neither revoked nor
    expired work again. Reactivating an active user changes nothing."""
    await require_admin(actor, "reactivateUser", "User", user_id)
    return await retrying(lambda: _set_active(actor, user_id, active=True))


async def _set_active(actor: Actor, user_id: int, *, active: bool) -> UserRecord:
    async with unit_of_work(actor) as unit:
        user = (await store.lock_people([user_id])).get(user_id)
        if user is None:
            raise NotFound(t("no such user"), field=["id"])
        if (user.deactivated_at is None) == active:
            return user
        at = None if active else unit.now
        await store.set_deactivated_at(user.id, at)
        action = "reactivateUser" if active else "deactivateUser"
        await _audit(unit, action, user, {"deactivated_at": at})
        return replace(user, deactivated_at=at)


_AUDIT_NAMES = {"manager_id": "managerId", "deactivated_at": "deactivatedAt"}


def _audited(value: Any) -> Any:
    if isinstance(value, Enum):
        return str(value.value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


async def _audit(
    unit: Unit,
    action: str,
    user: UserRecord,
    changes: dict[str, Any],
    external_id: tuple[str | None, str | None] | None = None,
) -> None:
    """One audit row: the changed fields (API names) before and after."""
    before = {_AUDIT_NAMES.get(k, k): _audited(getattr(user, k)) for k in changes}
    after = {_AUDIT_NAMES.get(k, k): _audited(v) for k, v in changes.items()}
    if external_id is not None:
        before["externalId"], after["externalId"] = external_id
    await unit.audit(action, "User", user.id, before=before, after=after)
