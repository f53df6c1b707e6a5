"""OpenID Connect resource server: verify an OpenID provider's bearer tokens (JWTs) and say
who they name. Keys come from the provider's discovery document and JWKS, fetched with httpx
off the request path's hot loop (cached; an unknown `kid` refreshes them, rate-limited); all
cryptography and claim checks are PyJWT's. Nothing here knows the database: the domain
(gql.domain.sign_in) turns an `Identity` into a user."""

from __future__ import annotations

from gql.oidc.claims import Identity
from gql.oidc.config import OidcConfig
from gql.oidc.errors import TokenRejected
from gql.oidc.keys import ProviderKeys
from gql.oidc.verifier import OidcVerifier

__all__ = ["Identity", "OidcConfig", "OidcVerifier", "ProviderKeys", "TokenRejected"]
