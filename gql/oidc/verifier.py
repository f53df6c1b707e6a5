"""Verify a bearer JWT from the configured OpenID provider: the algorithm against the
allow-list first (so `none` and HMAC never reach a key), then PyJWT checks the signature with
the provider's key and `iss`, `aud`, `exp`, `nbf`, `iat` with the leeway. CPU only once the
keys are cached: no I/O per token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import jwt
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWTError,
)

from gql.oidc.claims import Identity, identity_of
from gql.oidc.config import OidcConfig
from gql.oidc.errors import Check, TokenRejected
from gql.oidc.keys import ProviderKeys

if TYPE_CHECKING:
    from gql.settings import Settings

# Larger bearer tokens are refused unparsed (real ones are 1-4 KiB).
MAX_TOKEN_CHARS = 16 * 1024
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat"]


def looks_like_jwt(token: str) -> bool:
    """Three base64url segments (a JWS in compact form), as opposed to a `cg_` API token."""
    return token.count(".") == 2


class OidcVerifier:
    """Turns a provider's bearer token into an `Identity`, or raises TokenRejected."""

    def __init__(self, config: OidcConfig, keys: ProviderKeys | None = None) -> None:
        self.config = config
        self.keys = keys or ProviderKeys(config.issuer, config.discovery_url)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> OidcVerifier | None:
        """The verifier of `settings`; None when CERTGRAPH_OIDC_ISSUER is unset (OIDC off)."""
        config = OidcConfig.from_settings(settings)
        if config is None:
            return None
        return cls(config, ProviderKeys(config.issuer, config.discovery_url, transport=transport))

    async def verify(self, token: str) -> Identity:
        claims = await self.claims(token)
        return identity_of(
            claims,
            roles_claim=self.config.roles_claim,
            admin_role=self.config.admin_role,
            manager_role=self.config.manager_role,
        )

    async def claims(self, token: str) -> dict[str, Any]:
        """The token's verified claims."""
        if len(token) > MAX_TOKEN_CHARS or not looks_like_jwt(token):
            raise TokenRejected(Check.MALFORMED, "the token is not a well-formed JWT")
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError:
            raise TokenRejected(Check.MALFORMED, "the token is not a well-formed JWT") from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.config.algorithms:
            raise TokenRejected(
                Check.ALGORITHM,
                "the token's signature algorithm (alg) is not allowed; allowed: "
                + ", ".join(self.config.algorithms),
            )
        kid = header.get("kid")
        key = await self.keys.key_for(kid if isinstance(kid, str) else None, alg)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway_seconds,
                options={"require": REQUIRED_CLAIMS},
            )
        except PyJWTError as exc:
            raise _rejection(exc) from None
        return claims


def _rejection(exc: PyJWTError) -> TokenRejected:
    """Which check a PyJWT error is, in words that name the check and never the token."""
    # Subclasses before their bases: InvalidSignatureError is a DecodeError, and
    # ExpiredSignatureError, ImmatureSignatureError ... are InvalidTokenErrors.
    if isinstance(exc, InvalidSignatureError):
        return TokenRejected(Check.SIGNATURE, "the token's signature does not verify")
    if isinstance(exc, ExpiredSignatureError):
        return TokenRejected(Check.EXPIRED, "the token has expired (exp)")
    if isinstance(exc, ImmatureSignatureError):
        return TokenRejected(
            Check.NOT_YET_VALID, "the token is not valid yet (nbf or iat is in the future)"
        )
    if isinstance(exc, InvalidAudienceError):
        return TokenRejected(
            Check.AUDIENCE,
            "the token is for another audience (aud is not CERTGRAPH_OIDC_AUDIENCE)",
        )
    if isinstance(exc, InvalidIssuerError):
        return TokenRejected(
            Check.ISSUER, "the token is from another issuer (iss is not CERTGRAPH_OIDC_ISSUER)"
        )
    if isinstance(exc, MissingRequiredClaimError):
        claim = exc.claim if exc.claim in REQUIRED_CLAIMS else "a required"
        return TokenRejected(Check.MISSING_CLAIM, f"the token lacks the {claim} claim")
    if isinstance(exc, InvalidAlgorithmError):
        return TokenRejected(
            Check.ALGORITHM, "the token's signature algorithm (alg) is not allowed"
        )
    if isinstance(exc, InvalidIssuedAtError):
        return TokenRejected(Check.MALFORMED, "the token's iat claim is not a number")
    if isinstance(exc, DecodeError):
        return TokenRejected(Check.MALFORMED, "the token is not a well-formed JWT")
    return TokenRejected(Check.INVALID, "the token is not valid (its claims do not check out)")
