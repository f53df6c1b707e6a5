"""Who may see and do what: every role rule of domain.md lives in this module.

Use cases call these; resolvers never decide access themselves. An object the viewer may not
see reads exactly like one that does not exist.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from tortoise.expressions import Q

from gql import clock
from gql.domain.errors import Forbidden, Unauthenticated
from gql.domain.unit import audit_refusal
from gql.store.models import CertificationState, Role, User
from gql.store.tokens import active_token, touch_token

TOKEN_PREFIX = "cg_"
# last_used_at is bookkeeping, not an audit trail: refreshing it at most once a minute keeps
# reads from turning into writes.
LAST_USED_GRANULARITY = timedelta(minutes=1)


class Person(Protocol):
    """What makes an Actor: a User model, or the user row of a token lookup."""

    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...
    @property
    def email(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def manager_id(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Actor:
    """The authenticated viewer. `user_id` None is the operator at the command line."""

    user_id: int | None
    role: Role
    name: str = ""
    email: str = ""
    manager_id: int | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(user_id=None, role=Role.ADMIN, name="certgraph cli")

    @classmethod
    def of(cls, user: Person) -> Actor:
        return cls(
            user_id=user.id,
            role=Role(user.role),
            name=user.name,
            email=user.email,
            manager_id=user.manager_id,
        )

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_manager(self) -> bool:
        return self.role == Role.MANAGER


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def authenticate(token: str | None) -> Actor:
    """Resolve a bearer token to its user; UNAUTHENTICATED when missing, unknown or revoked."""
    if not token:
        raise Unauthenticated("an Authorization: Bearer <token> header is required")
    row = await active_token(hash_token(token))
    if row is None:
        raise Unauthenticated("the token is unknown or revoked")
    now = clock.now()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        await touch_token(row.id, now)
    return Actor.of(row.user)


async def require_admin(
    actor: Actor, action: str, object_type: str = "", object_id: object | None = None
) -> None:
    if not actor.is_admin:
        await audit_refusal(actor.user_id, action, object_type, object_id, "admin only")
        raise Forbidden(f"{action} is for admins only")


async def note_hidden(
    actor: Actor, action: str, object_type: str, object_id: object | None
) -> None:
    """Audit an attempt to reach an object the actor may not see (it reads as not found)."""
    await audit_refusal(actor.user_id, action, object_type, object_id, "not visible to the actor")


def learner_scope(actor: Actor, field: str = "learner_id") -> Q:
    """Rows about learners the actor may see: own, a manager's reports too, all for admins."""
    if actor.is_admin:
        return Q()
    if actor.is_manager:
        return _q(**{field: actor.user_id}) | _q(**{f"{field}__in": _reports_subquery(actor)})
    return _q(**{field: actor.user_id})


def _q(**lookups: Any) -> Q:
    return Q(**lookups)


def _reports_subquery(actor: Actor) -> object:
    from tortoise.expressions import Subquery

    return Subquery(User.filter(manager_id=actor.user_id).values("id"))


def may_see_learner(actor: Actor, learner: User) -> bool:
    if actor.is_admin or learner.id == actor.user_id:
        return True
    return actor.is_manager and learner.manager_id == actor.user_id


def may_see_user(actor: Actor, user: User) -> bool:
    """Users: yourself, your manager, your direct reports; admins everyone."""
    if may_see_learner(actor, user):
        return True
    return actor.manager_id is not None and actor.manager_id == user.id


def user_scope(actor: Actor) -> Q:
    scope = learner_scope(actor, "id")
    if actor.is_admin or actor.manager_id is None:
        return scope
    return scope | Q(id=actor.manager_id)


def certification_scope(actor: Actor) -> Q:
    """Learners and managers see PUBLISHED certifications; admins every state."""
    if actor.is_admin:
        return Q()
    return Q(state=CertificationState.PUBLISHED)


def may_review(actor: Actor, learner: User) -> bool:
    """Whether the actor may review this learner's evidence (never one's own: see review)."""
    if learner.id == actor.user_id:
        return False
    if actor.is_admin:
        return True
    return actor.is_manager and learner.manager_id == actor.user_id
