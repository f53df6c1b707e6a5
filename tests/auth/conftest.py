"""Fixtures for the sign-in tests: an OpenID provider's discovery document and key set served
by a real HTTP server (a Starlette app on uvicorn, in this process, on 127.0.0.1), signing
keys generated here with `cryptography`, tokens minted with PyJWT; and the API tests' app and
client with the provider configured (CERTGRAPH_OIDC_ISSUER and AUDIENCE)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gql.oidc import OidcConfig, OidcVerifier, ProviderKeys
from gql.settings import Settings
from tests.api.conftest import (  # noqa: F401 (fixtures)
    GraphQLClient,
    app,
    graphql_client,
    http,
    world,
)
from tests.local_server import serving

AUDIENCE = "certgraph-api"
REALM_PATH = "/realms/certgraph"  # an issuer with a path, as Keycloak's
VIEWER = "{ viewer { id name email role } }"


@cache
def rsa_key(index: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def ec_key(index: int) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@cache
def ed_key(index: int) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@dataclass
class SigningKey:
    """A provider key: its private half signs, its public JWK is published."""

    kid: str | None
    alg: str
    private: Any
    publish_alg: bool = True  # put `alg` in the JWK (Entra ID's keys have none)

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if self.alg.startswith(("RS", "PS")):
            found = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif self.alg.startswith("ES"):
            found = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            found = OKPAlgorithm.to_jwk(public, as_dict=True)
        found["use"] = "sig"
        if self.kid is not None:
            found["kid"] = self.kid
        if self.publish_alg:
            found["alg"] = self.alg
        return dict(found)

    def public_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode("utf-8"))


@dataclass
class Provider:
    """An OpenID provider as certgraph sees it: `/.well-known/openid-configuration` under the
    issuer, and `/jwks` with the published keys. `fail` makes both answer 500; `jwks_requests`
    counts key-set fetches."""

    port: int = 0
    keys: list[SigningKey] = field(default_factory=list)
    fail: bool = False
    announced_issuer: str | None = None  # what the discovery document says (None: the issuer)
    jwks_requests: int = 0
    discovery_requests: int = 0

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}{REALM_PATH}"

    @property
    def key(self) -> SigningKey:
        return self.keys[0]

    async def discovery(self, request: Request) -> Response:
        self.discovery_requests += 1
        if self.fail:
            return Response("down", status_code=500)
        return JSONResponse(
            {
                "issuer": self.announced_issuer or self.issuer,
                "jwks_uri": f"{self.issuer}/protocol/openid-connect/certs",
                "authorization_endpoint": f"{self.issuer}/auth",
                "token_endpoint": f"{self.issuer}/token",
            }
        )

    async def jwks(self, request: Request) -> Response:
        self.jwks_requests += 1
        if self.fail:
            return Response("down", status_code=500)
        return JSONResponse({"keys": [key.jwk() for key in self.keys]})

    def claims(self, **claims: Any) -> dict[str, Any]:
        """A fresh access token's claims, with `claims` over them (None removes one)."""
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "subject-1",
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "email": "sam.sign-in@example.com",
            "email_verified": True,
            "name": "Sam Signin",
        }
        base.update(claims)
        return {name: value for name, value in base.items() if value is not None}

    def token(
        self, key: SigningKey | None = None, *, headers: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        key = key or self.key
        sent = {"kid": key.kid} if key.kid is not None else {}
        sent.update(headers or {})
        return jwt.encode(self.claims(**claims), key.private, algorithm=key.alg, headers=sent)


def unsigned_token(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand (what no library would sign): `alg: none`, HMAC ..."""
    return f"{b64json(header)}.{b64json(payload)}.{b64(signature)}"


@pytest_asyncio.fixture
async def provider() -> AsyncIterator[Provider]:
    found = Provider(keys=[SigningKey("key-1", "RS256", rsa_key(1))])
    routes = [
        Route(f"{REALM_PATH}/.well-known/openid-configuration", found.discovery),
        Route(f"{REALM_PATH}/protocol/openid-connect/certs", found.jwks),
    ]
    async with serving(Starlette(routes=routes), "the provider") as port:
        found.port = port
        yield found


class FakeMonotonic:
    """A monotonic clock the test moves (the key cache's rate limit and age)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


def make_verifier(
    provider: Provider,
    monotonic: FakeMonotonic | None = None,
    *,
    algorithms: tuple[str, ...] = ("RS256", "PS256", "ES256", "EdDSA"),
    roles_claim: str = "roles",
    leeway_seconds: int = 60,
) -> OidcVerifier:
    config = OidcConfig(
        issuer=provider.issuer,
        audience=AUDIENCE,
        algorithms=algorithms,
        leeway_seconds=leeway_seconds,
        roles_claim=roles_claim,
    )
    keys = ProviderKeys(config.issuer, config.discovery_url, monotonic=monotonic or FakeMonotonic())
    return OidcVerifier(config, keys)


@pytest.fixture
def verifier(provider: Provider, monotonic: FakeMonotonic) -> OidcVerifier:
    return make_verifier(provider, monotonic)


@pytest.fixture
def settings(data_dir: Path, provider: Provider) -> Settings:
    """The API tests' app, with the test's provider configured."""
    return Settings(data_dir=data_dir, oidc_issuer=provider.issuer, oidc_audience=AUDIENCE)


async def viewer(client: GraphQLClient, token: str) -> dict[str, Any]:
    data = await client.data(VIEWER, token=token)
    found: dict[str, Any] = data["viewer"]
    return found
