"""Who an OpenID provider's token is (docs/auth.md): the person is found by issuer + `sub`;
on the first sign-in an existing user is linked by e-mail only when the provider vouches for
the address (`email_verified`), otherwise a LEARNER is created; a role the token's roles claim
grants (ADMIN, MANAGER) is stored, and without one the stored role stands.

A returning person whose role claim agrees with the stored role costs one read; a first
sign-in or a role change is one transaction, audited. Two first sign-ins of one person at the
same moment make one user: the unique e-mail and (issuer, subject) constraints refuse the
second writer, which then finds the first one's user.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Protocol

from tortoise.exceptions import IntegrityError

from gql.domain.access import DEACTIVATED_ACCOUNT, TOKEN_PREFIX, Actor, authenticate
from gql.domain.errors import Unauthenticated
from gql.domain.unit import Unit, unit_of_work
from gql.domain.users import EMAIL
from gql.oidc import Identity, TokenRejected
from gql.oidc.verifier import looks_like_jwt
from gql.store import identities
from gql.store.db import retrying
from gql.store.records import UserRecord
from gql.vocabulary import Role

log = logging.getLogger("certgraph.sign_in")

# A first sign-in that loses a race to another request for the same person tries again (and
# then finds that request's user).
SIGN_IN_ATTEMPTS = 3
MAX_NAME_CHARS = 200
MAX_SUBJECT_CHARS = 255  # OpenID Connect Core 1.0 §2: at most 255 ASCII characters


class TokenVerifier(Protocol):
    """gql.oidc.OidcVerifier: a bearer JWT to an Identity, or TokenRejected."""

    async def verify(self, token: str) -> Identity: ...


def bearer_authenticator(
    verifier: TokenVerifier | None,
) -> Callable[[str | None], Awaitable[Actor]]:
    """The request authenticator: `cg_` API tokens as ever; with a verifier (OIDC on), a
    bearer token shaped like a JWT is verified as the provider's and signed in. Without one
    it is exactly `authenticate`."""
    if verifier is None:
        return authenticate

    async def authenticate_bearer(token: str | None) -> Actor:
        if not token or token.startswith(TOKEN_PREFIX) or not looks_like_jwt(token):
            return await authenticate(token)
        try:
            identity = await verifier.verify(token)
        except TokenRejected as exc:
            raise Unauthenticated(f"OpenID Connect token refused: {exc.message}") from None
        return await sign_in(identity)

    return authenticate_bearer


async def sign_in(identity: Identity) -> Actor:
    """The actor a verified token names, signing them in first when need be."""
    if not 0 < len(identity.subject) <= MAX_SUBJECT_CHARS or "\x00" in identity.subject:
        raise Unauthenticated(
            "the token's sub claim is not an identifier certgraph can store "
            f"(1 to {MAX_SUBJECT_CHARS} characters)"
        )
    user = await identities.user_of_identity(identity.issuer, identity.subject)
    if user is not None and user.deactivated_at is not None:
        raise Unauthenticated(DEACTIVATED_ACCOUNT)
    if user is not None and identity.role in (None, user.role):
        return Actor.of(user)
    if user is None:
        # What a first sign-in would refuse is refused before the write transaction opens.
        email = _email_of(identity)
        if not identity.email_verified and await identities.user_with_email(email) is not None:
            raise _unverified_email()
    for attempt in range(1, SIGN_IN_ATTEMPTS + 1):
        try:
            return await retrying(lambda: _record_sign_in(identity))
        except IntegrityError:
            # Another request signed this person in meanwhile: the next attempt finds them.
            if attempt == SIGN_IN_ATTEMPTS:
                log.exception("sign-in of %s kept conflicting", identity.issuer)
    raise Unauthenticated("the sign-in conflicted with another one; try again")


async def _record_sign_in(identity: Identity) -> Actor:
    async with unit_of_work(None) as unit:
        user = await identities.user_of_identity(identity.issuer, identity.subject)
        if user is None:
            user = await _first_sign_in(unit, identity)
        if user.deactivated_at is not None:  # linked by e-mail, or deactivated meanwhile
            raise Unauthenticated(DEACTIVATED_ACCOUNT)  # the transaction writes nothing
        unit.actor_id = user.id  # the person signing in is who acts
        if identity.role is not None and identity.role != user.role:
            if await identities.change_role(user.id, user.role, identity.role):
                await unit.audit(
                    "signIn.role",
                    "User",
                    user.id,
                    before={"role": str(user.role)},
                    after={"role": str(identity.role)},
                    detail=f"the roles claim of {identity.issuer}",
                )
            user = replace(user, role=identity.role)
    return Actor.of(user)


async def _first_sign_in(unit: Unit, identity: Identity) -> UserRecord:
    """Link the identity to the user with its verified e-mail, or create a LEARNER (or the
    role the claim grants) for it."""
    email = _email_of(identity)
    user = await identities.user_with_email(email)
    if user is not None:
        if not identity.email_verified:
            raise _unverified_email()
        await identities.link_identity(user.id, identity.issuer, identity.subject, unit.now)
        unit.actor_id = user.id
        await unit.audit(
            "signIn.linkIdentity",
            "User",
            user.id,
            after={"issuer": identity.issuer, "subject": identity.subject},
            detail="linked by verified e-mail on first sign-in",
        )
        return user
    role = identity.role or Role.LEARNER
    user = await identities.create_user(_name_of(identity, email), email, role, unit.now)
    await identities.link_identity(user.id, identity.issuer, identity.subject, unit.now)
    unit.actor_id = user.id
    await unit.audit(
        "signIn.createUser",
        "User",
        user.id,
        after={
            "name": user.name,
            "email": email,
            "role": str(role),
            "issuer": identity.issuer,
            "subject": identity.subject,
        },
        detail="created on first sign-in",
    )
    return user


def _unverified_email() -> Unauthenticated:
    return Unauthenticated(
        "a certgraph user already has this token's e-mail address, but the provider does not "
        "say the address is verified (email_verified is not true), so the sign-in is not "
        "linked to that user; ask an admin (docs/auth.md)"
    )


def _email_of(identity: Identity) -> str:
    if identity.email is None:
        raise Unauthenticated(
            "the token has no email claim: certgraph needs the person's e-mail address on "
            "their first sign-in (configure the provider to include it: docs/auth.md)"
        )
    email = identity.email.strip().lower()
    if not EMAIL.match(email) or len(email) > 320 or "\x00" in email:
        raise Unauthenticated("the token's email claim is not a valid e-mail address")
    return email


def _name_of(identity: Identity, email: str) -> str:
    name = " ".join((identity.name or "").replace("\x00", "").split())
    return (name or email.split("@", 1)[0])[:MAX_NAME_CHARS]
