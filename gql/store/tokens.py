"""API tokens: the bearer-token lookup every request makes and its last-used bookkeeping; the
rows their owners and admins list, create and revoke. Records never carry a token's hash
(let alone the token, which is never stored)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet, ValuesListQuery

from gql import clock
from gql.store.models import ApiToken, User
from gql.store.prepared import prepared_values
from gql.store.records import USER_COLUMNS, TokenRecord, UserRecord


@dataclass(frozen=True, slots=True)
class ExpiredToken:
    """An unrevoked token past its expiry: refused like a revoked one, and said so."""

    id: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class DeactivatedAccount:
    """An unrevoked token of a deactivated user: refused while the user is, and said so."""

    id: int
    deactivated_at: datetime


@prepared_values(lambda *r: r)
def _token_rows(token_hash: str) -> ValuesListQuery[Any]:
    return User.filter(tokens__token_hash=token_hash, tokens__revoked_at=None).values_list(
        *USER_COLUMNS, "tokens__id", "tokens__last_used_at", "tokens__expires_at"
    )


async def token_by_hash(
    token_hash: str, now: datetime
) -> TokenRecord | ExpiredToken | DeactivatedAccount | None:
    """The unrevoked token with this hash and its user; a DeactivatedAccount when its user is
    deactivated; an ExpiredToken when its expires_at is not after `now`; None when there is
    none. One statement.

    Expiry is compared here rather than in SQL so that the refusal can say the token expired
    without a second statement. Read from the user's side: a token whose user row is gone
    (deleted outside certgraph, where the cascade did not run) is no token.
    """
    rows = await _token_rows(token_hash)
    if not rows:
        return None
    r, n = rows[0], len(USER_COLUMNS)
    user = UserRecord(*r[:n])
    if user.deactivated_at is not None:
        return DeactivatedAccount(r[n], user.deactivated_at)
    expires_at: datetime | None = r[n + 2]
    if expires_at is not None and expires_at <= now:
        return ExpiredToken(r[n], expires_at)
    return TokenRecord(r[n], r[n + 1], user)


async def active_token(token_hash: str, now: datetime | None = None) -> TokenRecord | None:
    """The usable token with this hash and its user: unrevoked and not expired at `now`
    (default: the clock's now); None otherwise. One statement."""
    found = await token_by_hash(token_hash, clock.now() if now is None else now)
    return found if isinstance(found, TokenRecord) else None


async def touch_token(token_id: int, used_at: datetime) -> None:
    """Set a token's last_used_at. One statement."""
    # its UPDATE is built once (gql.store.writes.update_enrollment says why)
    await ApiToken(id=token_id, last_used_at=used_at).save(update_fields=["last_used_at"])


# -- what owners and admins see and change ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiTokenRecord:
    """A token as its owner sees it: never its hash."""

    id: int
    user_id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None  # None: until revoked
    revoked_at: datetime | None


API_TOKEN_COLUMNS = (
    "id",
    "user_id",
    "name",
    "created_at",
    "last_used_at",
    "expires_at",
    "revoked_at",
)


def api_token_record(*row: Any) -> ApiTokenRecord:
    """The record of one row of API_TOKEN_COLUMNS."""
    pk, user_id, name, created_at, last_used_at, expires_at, revoked_at = row
    return ApiTokenRecord(
        int(pk), int(user_id), str(name), created_at, last_used_at, expires_at, revoked_at
    )


async def user_where(**filters: object) -> UserRecord | None:
    """The user these filters find (id=…, email=…), or None."""
    rows = await User.filter(**filters).limit(1).values_list(*USER_COLUMNS)
    return UserRecord(*rows[0]) if rows else None


def _live(now: datetime) -> Q:
    return Q(revoked_at=None) & (Q(expires_at=None) | Q(expires_at__gt=now))


async def live_token_count(user_id: int, now: datetime) -> int:
    """How many of the user's tokens still work at `now`."""
    count: int = await ApiToken.filter(_live(now), user_id=user_id).count()
    return count


async def insert_token(
    *, user_id: int, token_hash: str, name: str, expires_at: datetime | None, now: datetime
) -> ApiTokenRecord:
    row = await ApiToken.create(
        user_id=user_id, token_hash=token_hash, name=name, expires_at=expires_at, created_at=now
    )
    return api_token_record(*(getattr(row, column) for column in API_TOKEN_COLUMNS))


async def token_by_id(token_id: int) -> ApiTokenRecord | None:
    rows = await ApiToken.filter(id=token_id).limit(1).values_list(*API_TOKEN_COLUMNS)
    return api_token_record(*rows[0]) if rows else None


async def revoke_token(token_id: int, now: datetime) -> int:
    """Revoke one token unless it already is; returns how many rows changed (0 or 1)."""
    changed: int = await ApiToken.filter(id=token_id, revoked_at=None).update(revoked_at=now)
    return changed


async def revoke_user_tokens(user_id: int, now: datetime) -> int:
    """Revoke every unrevoked token of a user; returns how many."""
    changed: int = await ApiToken.filter(user_id=user_id, revoked_at=None).update(revoked_at=now)
    return changed


def user_tokens(user_id: int, *, include_revoked: bool) -> QuerySet[ApiToken]:
    """A user's tokens, for a page (gql.domain.pages.orm_page): unrevoked ones unless asked."""
    queryset = ApiToken.filter(user_id=user_id)
    return queryset if include_revoked else queryset.filter(revoked_at=None)
