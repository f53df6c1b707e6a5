"""API tokens with a lifecycle (docs/auth.md, "API tokens").

Anyone signed in makes tokens of their own (for their scripts); admins, and the operator at
the command line, make them for anyone. A token has a name and, optionally, an expiry; its
secret is answered once, when it is made, and only its SHA-256 is stored. Owners list and
revoke their own tokens, admins anyone's; someone else's token reads as not found (and the
attempt is audited like any hidden read). An expired token is refused like a revoked one
(gql.store.tokens.active_token). Each change is one transaction, audited without the secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gql import clock
from gql.domain.access import Actor, hash_token, new_token, note_hidden, require_admin
from gql.domain.errors import Forbidden, InvalidInput, NotAllowed, NotFound, t
from gql.domain.pages import FIRST_PAGE, OrmKey, Page, PageRequest, orm_page
from gql.domain.unit import audit_refusal, unit_of_work
from gql.store import tokens as store
from gql.store.records import UserRecord
from gql.store.tokens import ApiTokenRecord

__all__ = [
    "MAX_LIFETIME_DAYS",
    "MAX_LIVE_TOKENS",
    "MAX_NAME_CHARS",
    "ApiTokenRecord",
    "IssuedToken",
    "create_api_token",
    "create_token_for_email",
    "get_api_token",
    "is_active",
    "list_api_tokens",
    "revoke_api_token",
    "revoke_tokens_for_email",
]

MAX_NAME_CHARS = 200  # the column's size
# expiresAt at most this far ahead: a later date is a typo more often than a plan (a token
# that should never expire is made without one).
MAX_LIFETIME_DAYS = 3650
# Tokens that still work, per user: a bound on what a leaked session can mint.
MAX_LIVE_TOKENS = 100


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A new token and its secret: what only creating it answers."""

    token: ApiTokenRecord
    secret: str


def is_active(token: ApiTokenRecord, now: datetime | None = None) -> bool:
    """Whether the token still authenticates: not revoked, and not expired at `now`."""
    if token.revoked_at is not None:
        return False
    return token.expires_at is None or token.expires_at > (clock.now() if now is None else now)


def _clean_name(name: str | None) -> str:
    """Trimmed, each run of whitespace one space; empty is allowed (no name)."""
    cleaned = " ".join((name or "").split())
    if len(cleaned) > MAX_NAME_CHARS:
        raise InvalidInput(
            t("name must be at most {MAX_NAME_CHARS} characters", MAX_NAME_CHARS=MAX_NAME_CHARS),
            field=["name"],
        )
    return cleaned


def _checked_expiry(expires_at: datetime | None, now: datetime) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise InvalidInput(
            t("expiresAt needs a UTC offset, e.g. 2027-03-10T09:00:00Z"), field=["expiresAt"]
        )
    expires_at = expires_at.astimezone(UTC)
    if expires_at <= now:
        raise InvalidInput(
            t(
                "expiresAt must be in the future (it is {expires_at}, now is "
                "{now}); leave it out for a token that lasts until revoked",
                expires_at=expires_at.isoformat(),
                now=now.isoformat(),
            ),
            field=["expiresAt"],
        )
    if expires_at > now + timedelta(days=MAX_LIFETIME_DAYS):
        raise InvalidInput(
            t(
                "expiresAt must be at most {MAX_LIFETIME_DAYS} days (about "
                "ten years) from now; leave it out for a token that lasts "
                "until revoked",
                MAX_LIFETIME_DAYS=MAX_LIFETIME_DAYS,
            ),
            field=["expiresAt"],
        )
    return expires_at


def expiry_in_days(days: int, now: datetime | None = None) -> datetime:
    """The expiry `days` whole days from now (the command line's --expires-in)."""
    if not 1 <= days <= MAX_LIFETIME_DAYS:
        raise InvalidInput(
            t(
                "--expires-in must be between 1 and {MAX_LIFETIME_DAYS} days",
                MAX_LIFETIME_DAYS=MAX_LIFETIME_DAYS,
            ),
            field=["expiresIn"],
        )
    return (clock.now() if now is None else now) + timedelta(days=days)


async def _issue(
    actor: Actor, owner: UserRecord, name: str, expires_at: datetime | None
) -> IssuedToken:
    secret = new_token()
    async with unit_of_work(actor) as unit:
        if await store.live_token_count(owner.id, unit.now) >= MAX_LIVE_TOKENS:
            raise NotAllowed(
                t(
                    "{email} has {MAX_LIVE_TOKENS} tokens that still work, the "
                    "most one may have: revoke one (revokeApiToken) first",
                    email=owner.email,
                    MAX_LIVE_TOKENS=MAX_LIVE_TOKENS,
                ),
                field=["userId"],
            )
        row = await store.insert_token(
            user_id=owner.id,
            token_hash=hash_token(secret),
            name=name,
            expires_at=expires_at,
            now=unit.now,
        )
        # the secret never reaches the log: only which token row was issued, and for whom
        await unit.audit(
            "createApiToken",
            "ApiToken",
            row.id,
            after={
                "userId": owner.id,
                "name": name,
                "expiresAt": None if expires_at is None else expires_at.isoformat(),
            },
        )
    return IssuedToken(row, secret)


async def create_api_token(
    actor: Actor,
    user_id: int | None = None,
    *,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> IssuedToken:
    """A new token for `user_id`, or for the actor when None. Anyone for themselves, admins
    for anyone (another's userId from a non-admin is FORBIDDEN, audited, whether or not that
    user exists). `expires_at`: in the future, at most MAX_LIFETIME_DAYS ahead; None: until
    revoked."""
    owner_id = actor.user_id if user_id is None else user_id
    if owner_id is None:
        raise InvalidInput(
            t("a user is required: the operator at the command line is no user"), field=["userId"]
        )
    if owner_id != actor.user_id and not actor.is_admin:
        await audit_refusal(
            actor.user_id, "createApiToken", "User", owner_id, "a token for another user"
        )
        raise Forbidden(
            t(
                "createApiToken for another user is for admins only; leave "
                "userId out to make a token of your own"
            )
        )
    cleaned_name = _clean_name(name)
    expiry = _checked_expiry(expires_at, clock.now())
    owner = await store.user_where(id=owner_id)
    if owner is None:
        raise NotFound(t("no such user"), field=["userId"])
    return await _issue(actor, owner, cleaned_name, expiry)


async def create_token_for_email(
    actor: Actor, email: str, *, name: str | None = None, expires_at: datetime | None = None
) -> tuple[UserRecord, IssuedToken]:
    """A new token for the user with this email (admins and the operator)."""
    await require_admin(actor, "createApiToken", "User")
    cleaned_name = _clean_name(name)
    expiry = _checked_expiry(expires_at, clock.now())
    owner = await store.user_where(email=email.strip().lower())
    if owner is None:
        raise NotFound(t("no user with email {email}", email=email), field=["email"])
    return owner, await _issue(actor, owner, cleaned_name, expiry)


async def _visible_token(actor: Actor, token_id: int, action: str) -> ApiTokenRecord | None:
    """The token, when it is the actor's own or the actor is an admin; None otherwise (a
    hidden one's read audited)."""
    row = await store.token_by_id(token_id)
    if row is None:
        return None
    if row.user_id != actor.user_id and not actor.is_admin:
        await note_hidden(actor, action, "ApiToken", token_id)
        return None
    return row


async def get_api_token(actor: Actor, token_id: int) -> ApiTokenRecord | None:
    """One token: the actor's own, or anyone's for admins; None otherwise."""
    return await _visible_token(actor, token_id, "apiToken")


async def revoke_api_token(actor: Actor, token_id: int) -> ApiTokenRecord:
    """Revoke one token: the actor's own, or anyone's for admins. Someone else's reads as
    not found. Revoking a revoked token changes nothing and answers it as it is."""
    if await _visible_token(actor, token_id, "revokeApiToken") is None:
        raise NotFound(t("no such API token"), field=["id"])
    async with unit_of_work(actor) as unit:
        changed = await store.revoke_token(token_id, unit.now)
        row = await store.token_by_id(token_id)
        if row is None:  # its user was deleted meanwhile
            raise NotFound(t("no such API token"), field=["id"])
        if changed:
            await unit.audit("revokeApiToken", "ApiToken", token_id, after={"userId": row.user_id})
    return row


async def revoke_tokens_for_email(actor: Actor, email: str) -> int:
    """Revoke every live token of a user (admins and the operator); returns how many."""
    await require_admin(actor, "revokeApiTokens", "User")
    user = await store.user_where(email=email.strip().lower())
    if user is None:
        raise NotFound(t("no user with email {email}", email=email), field=["email"])
    async with unit_of_work(actor) as unit:
        count = await store.revoke_user_tokens(user.id, unit.now)
        await unit.audit("revokeApiTokens", "User", user.id, after={"revoked": count})
    return count


async def list_api_tokens(
    actor: Actor,
    user_id: int,
    *,
    include_revoked: bool = False,
    paging: PageRequest = FIRST_PAGE,
) -> Page[ApiTokenRecord]:
    """A user's tokens, newest first: the actor's own, or anyone's for admins; an empty page
    for anyone else's (the attempt audited). Revoked ones only when asked; expired ones are
    listed (their expiresAt says so) until revoked."""
    if user_id != actor.user_id and not actor.is_admin:
        paging.size()
        await note_hidden(actor, "apiTokens", "User", user_id)
        return Page(
            items=[], cursors=[], has_next_page=False, has_previous_page=False, total_count=0
        )
    kind = "api-tokens:all" if include_revoked else "api-tokens"
    return await orm_page(
        store.user_tokens(user_id, include_revoked=include_revoked),
        [OrmKey("id", descending=True)],
        record=store.api_token_record,
        columns=store.API_TOKEN_COLUMNS,
        kind=kind,
        paging=paging,
    )
