"""gql.oidc against a real local provider (tests/auth/conftest.py): each check a token can
fail, named in the refusal; the key cache: rotation, unknown kid, rate-limited refresh."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

import pytest

from gql.oidc import Identity, OidcVerifier, TokenRejected
from gql.oidc.errors import Check
from gql.vocabulary import Role
from tests.auth.conftest import (
    AUDIENCE,
    FakeMonotonic,
    Provider,
    SigningKey,
    b64,
    b64json,
    ec_key,
    ed_key,
    make_verifier,
    rsa_key,
    unsigned_token,
)


async def refused(verifier: OidcVerifier, token: str) -> TokenRejected:
    with pytest.raises(TokenRejected) as caught:
        await verifier.verify(token)
    assert token not in str(caught.value)
    return caught.value


async def test_a_valid_token_is_the_person_it_names(
    provider: Provider, verifier: OidcVerifier
) -> None:
    identity = await verifier.verify(provider.token(roles=["certgraph-manager"]))
    assert identity == Identity(
        issuer=provider.issuer,
        subject="subject-1",
        email="sam.sign-in@example.com",
        email_verified=True,
        name="Sam Signin",
        role=Role.MANAGER,
    )
    assert (provider.discovery_requests, provider.jwks_requests) == (1, 1)


async def test_keys_are_fetched_once_for_many_tokens(
    provider: Provider, verifier: OidcVerifier
) -> None:
    tokens = [provider.token(sub=f"s{i}") for i in range(20)]
    found = await asyncio.gather(*(verifier.verify(t) for t in tokens))
    assert [i.subject for i in found] == [f"s{i}" for i in range(20)]
    assert (provider.discovery_requests, provider.jwks_requests) == (1, 1)


# -- time ------------------------------------------------------------------------------------


async def test_expired(provider: Provider, verifier: OidcVerifier) -> None:
    now = int(time.time())
    rejection = await refused(verifier, provider.token(iat=now - 600, exp=now - 61))
    assert rejection.check == Check.EXPIRED
    assert rejection.message == "the token has expired (exp)"


async def test_expired_within_the_leeway_is_accepted(
    provider: Provider, verifier: OidcVerifier
) -> None:
    now = int(time.time())
    identity = await verifier.verify(provider.token(iat=now - 600, exp=now - 30))
    assert identity.subject == "subject-1"


async def test_not_yet_valid_nbf(provider: Provider, verifier: OidcVerifier) -> None:
    now = int(time.time())
    rejection = await refused(verifier, provider.token(nbf=now + 120, exp=now + 600))
    assert rejection.check == Check.NOT_YET_VALID
    assert "not valid yet" in rejection.message


async def test_issued_in_the_future(provider: Provider, verifier: OidcVerifier) -> None:
    now = int(time.time())
    rejection = await refused(verifier, provider.token(iat=now + 120, nbf=None, exp=now + 600))
    assert rejection.check == Check.NOT_YET_VALID


async def test_nbf_within_the_leeway_is_accepted(
    provider: Provider, verifier: OidcVerifier
) -> None:
    now = int(time.time())
    assert (await verifier.verify(provider.token(nbf=now + 30, iat=now + 30))).subject


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "aud", "iss"])
async def test_a_required_claim_missing(
    provider: Provider, verifier: OidcVerifier, claim: str
) -> None:
    rejection = await refused(verifier, provider.token(**{claim: None}))
    assert rejection.check == Check.MISSING_CLAIM
    assert rejection.message == f"the token lacks the {claim} claim"


# -- whom it is for, who made it ---------------------------------------------------------------


async def test_wrong_audience(provider: Provider, verifier: OidcVerifier) -> None:
    rejection = await refused(verifier, provider.token(aud="another-api"))
    assert rejection.check == Check.AUDIENCE
    assert "CERTGRAPH_OIDC_AUDIENCE" in rejection.message


async def test_one_of_several_audiences_is_enough(
    provider: Provider, verifier: OidcVerifier
) -> None:
    assert (await verifier.verify(provider.token(aud=["account", AUDIENCE]))).subject


async def test_wrong_issuer(provider: Provider, verifier: OidcVerifier) -> None:
    rejection = await refused(verifier, provider.token(iss=provider.issuer + "-evil"))
    assert rejection.check == Check.ISSUER
    assert "CERTGRAPH_OIDC_ISSUER" in rejection.message


async def test_an_issuer_prefix_is_not_the_issuer(
    provider: Provider, verifier: OidcVerifier
) -> None:
    rejection = await refused(verifier, provider.token(iss=provider.issuer[:-3]))
    assert rejection.check == Check.ISSUER


# -- algorithms and signatures -----------------------------------------------------------------


async def test_alg_none(provider: Provider, verifier: OidcVerifier) -> None:
    for alg in ("none", "None", "NONE"):
        token = unsigned_token({"alg": alg, "typ": "JWT", "kid": "key-1"}, provider.claims())
        rejection = await refused(verifier, token)
        assert rejection.check == Check.ALGORITHM
        assert "not allowed" in rejection.message
    assert provider.jwks_requests == 0  # refused before any key is looked for


async def test_hs256_signed_with_the_public_key(provider: Provider, verifier: OidcVerifier) -> None:
    """The key-confusion attack: an HMAC over the token keyed with what the provider
    publishes (its PEM, or the JWK's JSON) must not verify."""
    header = {"alg": "HS256", "typ": "JWT", "kid": "key-1"}
    signing_input = f"{b64json(header)}.{b64json(provider.claims(sub='mallory'))}"
    for secret in (provider.key.public_pem(), str(provider.key.jwk()).encode()):
        mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
        rejection = await refused(verifier, f"{signing_input}.{b64(mac)}")
        assert rejection.check == Check.ALGORITHM


async def test_hmac_never_verifies_even_when_allowed_by_mistake(provider: Provider) -> None:
    """Settings refuse HS256 in CERTGRAPH_OIDC_ALGORITHMS (test_settings.py); and were it in
    the list, no published key becomes an HMAC secret."""
    verifier = make_verifier(provider, algorithms=("RS256", "HS256"))
    header = {"alg": "HS256", "typ": "JWT", "kid": "key-1"}
    signing_input = f"{b64json(header)}.{b64json(provider.claims())}"
    mac = hmac.new(provider.key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    rejection = await refused(verifier, f"{signing_input}.{b64(mac)}")
    assert rejection.check == Check.ALGORITHM


async def test_an_algorithm_other_than_the_keys_own(provider: Provider) -> None:
    """A key published with `alg: RS256` verifies RS256 tokens only, even when the token
    says PS256 and PS256 is allowed."""
    verifier = make_verifier(provider)
    ps = SigningKey("key-1", "PS256", rsa_key(1))
    rejection = await refused(verifier, provider.token(ps))
    assert rejection.check == Check.ALGORITHM


async def test_a_key_without_alg_serves_every_allowed_algorithm_of_its_type(
    provider: Provider,
) -> None:
    provider.keys = [SigningKey("key-1", "RS256", rsa_key(1), publish_alg=False)]
    verifier = make_verifier(provider)
    for alg in ("RS256", "PS256"):
        key = SigningKey("key-1", alg, rsa_key(1))
        assert (await verifier.verify(provider.token(key))).subject == "subject-1"
    # but not one left out of the allow-list, nor one of another key type
    rejection = await refused(verifier, provider.token(SigningKey("key-1", "RS512", rsa_key(1))))
    assert rejection.check == Check.ALGORITHM
    rejection = await refused(verifier, provider.token(SigningKey("key-1", "ES256", ec_key(1))))
    assert rejection.check == Check.ALGORITHM


async def test_ec_and_eddsa_keys(provider: Provider) -> None:
    es = SigningKey("ec-1", "ES256", ec_key(1))
    ed = SigningKey("ed-1", "EdDSA", ed_key(1))
    provider.keys = [es, ed]
    verifier = make_verifier(provider)
    assert (await verifier.verify(provider.token(es, sub="e"))).subject == "e"
    assert (await verifier.verify(provider.token(ed, sub="d"))).subject == "d"


async def test_tampered_payload(provider: Provider, verifier: OidcVerifier) -> None:
    header, _, signature = provider.token().split(".")
    forged = provider.claims(sub="someone-else", roles=["certgraph-admin"])
    rejection = await refused(verifier, f"{header}.{b64json(forged)}.{signature}")
    assert rejection.check == Check.SIGNATURE
    assert rejection.message == "the token's signature does not verify"


async def test_signed_by_another_key_under_a_known_kid(
    provider: Provider, verifier: OidcVerifier
) -> None:
    impostor = SigningKey("key-1", "RS256", rsa_key(99))
    rejection = await refused(verifier, provider.token(impostor))
    assert rejection.check == Check.SIGNATURE


async def test_truncated_signature(provider: Provider, verifier: OidcVerifier) -> None:
    token = provider.token()
    rejection = await refused(verifier, token[:-10])
    assert rejection.check == Check.SIGNATURE


@pytest.mark.parametrize(
    "token",
    ["a.b.c", "not-a-jwt", "...", "eyJhbGciOiJSUzI1NiJ9.!!!.sig", "x" * 20000 + ".a.b"],
)
async def test_malformed(verifier: OidcVerifier, token: str) -> None:
    rejection = await refused(verifier, token)
    assert rejection.check == Check.MALFORMED
    assert rejection.message == "the token is not a well-formed JWT"


async def test_a_non_numeric_iat(provider: Provider, verifier: OidcVerifier) -> None:
    rejection = await refused(verifier, provider.token(iat="yesterday"))
    assert rejection.check == Check.MALFORMED


# -- the key cache ---------------------------------------------------------------------------


async def test_unknown_kid(provider: Provider, verifier: OidcVerifier) -> None:
    stranger = SigningKey("key-unknown", "RS256", rsa_key(2))
    rejection = await refused(verifier, provider.token(stranger))
    assert rejection.check == Check.UNKNOWN_KEY
    assert rejection.message == "the token's signing key (kid) is not one of the provider's"


async def test_rotation_without_restart(
    provider: Provider, verifier: OidcVerifier, monotonic: FakeMonotonic
) -> None:
    """The provider adds a key and signs with it: its first token makes the cache fetch the
    keys again (no restart); once the old key is withdrawn, it is no longer trusted."""
    old, new = provider.key, SigningKey("key-2", "RS256", rsa_key(2))
    assert (await verifier.verify(provider.token(old, sub="a"))).subject == "a"
    monotonic.advance(31)
    provider.keys = [old, new]
    assert (await verifier.verify(provider.token(new, sub="b"))).subject == "b"
    assert provider.jwks_requests == 2
    assert (await verifier.verify(provider.token(old, sub="c"))).subject == "c"
    assert provider.jwks_requests == 2  # both cached
    provider.keys = [new]
    monotonic.advance(3601)  # the cache's max age: fetched again on the next token
    assert (await verifier.verify(provider.token(new, sub="d"))).subject == "d"
    assert provider.jwks_requests == 3
    rejection = await refused(verifier, provider.token(old))
    assert rejection.check == Check.UNKNOWN_KEY


async def test_unknown_kid_then_found_after_rotation(
    provider: Provider, verifier: OidcVerifier, monotonic: FakeMonotonic
) -> None:
    """A kid the provider does not publish yet is refused; once it does (and the refresh
    interval has passed), the same token verifies."""
    await verifier.verify(provider.token())
    new = SigningKey("key-3", "RS256", rsa_key(3))
    token = provider.token(new)
    monotonic.advance(31)
    assert (await refused(verifier, token)).check == Check.UNKNOWN_KEY
    assert provider.jwks_requests == 2  # it looked
    provider.keys.append(new)
    monotonic.advance(31)
    assert (await verifier.verify(token)).subject == "subject-1"
    assert provider.jwks_requests == 3


async def test_refresh_is_rate_limited(
    provider: Provider, verifier: OidcVerifier, monotonic: FakeMonotonic
) -> None:
    """A flood of tokens naming unknown kids (forged ones) fetches the keys at most once per
    refresh interval, however many arrive at once."""
    await verifier.verify(provider.token())
    assert provider.jwks_requests == 1
    monotonic.advance(31)
    forged = [provider.token(SigningKey(f"forged-{i}", "RS256", rsa_key(2))) for i in range(50)]
    rejections = await asyncio.gather(*(verifier.verify(t) for t in forged), return_exceptions=True)
    assert {r.check for r in rejections if isinstance(r, TokenRejected)} == {Check.UNKNOWN_KEY}
    assert len(rejections) == 50
    assert provider.jwks_requests == 2  # one refresh for all fifty
    monotonic.advance(10)
    for token in forged[:10]:
        assert (await refused(verifier, token)).check == Check.UNKNOWN_KEY
    assert provider.jwks_requests == 2  # within the interval: no fetch at all
    # the known key keeps working meanwhile, without fetching
    assert (await verifier.verify(provider.token())).subject == "subject-1"
    assert provider.jwks_requests == 2


async def test_provider_down_at_first_token(
    provider: Provider, verifier: OidcVerifier, monotonic: FakeMonotonic
) -> None:
    provider.fail = True
    rejection = await refused(verifier, provider.token())
    assert rejection.check == Check.KEYS_UNAVAILABLE
    assert "could not be fetched" in rejection.message
    fetches = provider.discovery_requests
    await refused(verifier, provider.token())
    assert provider.discovery_requests == fetches  # backed off, not asked again at once
    provider.fail = False
    monotonic.advance(6)
    assert (await verifier.verify(provider.token())).subject == "subject-1"


async def test_provider_down_later_keeps_the_cached_keys(
    provider: Provider, verifier: OidcVerifier, monotonic: FakeMonotonic
) -> None:
    await verifier.verify(provider.token())
    provider.fail = True
    monotonic.advance(3601)  # stale: a fetch is tried, fails, the cached keys serve
    assert (await verifier.verify(provider.token())).subject == "subject-1"
    assert (provider.discovery_requests, provider.jwks_requests) == (1, 2)


async def test_a_discovery_document_of_another_issuer(
    provider: Provider, verifier: OidcVerifier
) -> None:
    provider.announced_issuer = "https://evil.example.com"
    rejection = await refused(verifier, provider.token())
    assert rejection.check == Check.KEYS_UNAVAILABLE
    assert provider.jwks_requests == 0


async def test_a_token_without_kid(provider: Provider) -> None:
    """With one published key, a token naming none uses it; with several, it is refused."""
    provider.keys = [SigningKey(None, "RS256", rsa_key(1))]
    verifier = make_verifier(provider)
    assert (await verifier.verify(provider.token())).subject == "subject-1"
    provider.keys = [SigningKey("a", "RS256", rsa_key(1)), SigningKey("b", "RS256", rsa_key(2))]
    verifier = make_verifier(provider)
    rejection = await refused(verifier, provider.token(SigningKey(None, "RS256", rsa_key(1))))
    assert rejection.check == Check.UNKNOWN_KEY
    assert "names no signing key" in rejection.message


async def test_encryption_and_private_keys_are_not_signing_keys(provider: Provider) -> None:
    """A JWKS member marked `use: enc`, or holding a private part, is never used to verify."""
    enc = SigningKey("enc-1", "RS256", rsa_key(4))
    provider.keys = [enc]
    original = enc.jwk

    def as_encryption_key() -> dict[str, object]:
        return {**original(), "use": "enc"}

    enc.jwk = as_encryption_key  # type: ignore[method-assign]
    verifier = make_verifier(provider)
    assert (await refused(verifier, provider.token(enc))).check == Check.KEYS_UNAVAILABLE


# -- who -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("roles", "role"),
    [
        (["certgraph-admin"], Role.ADMIN),
        (["offline_access", "certgraph-manager"], Role.MANAGER),
        (["certgraph-manager", "certgraph-admin"], Role.ADMIN),
        ("openid certgraph-manager", Role.MANAGER),
        (["other"], None),
        ([], None),
        (None, None),
        ("certgraph-administrator", None),
        ({"certgraph-admin": True}, None),
    ],
)
async def test_roles_claim(
    provider: Provider, verifier: OidcVerifier, roles: object, role: Role | None
) -> None:
    assert (await verifier.verify(provider.token(roles=roles))).role == role


async def test_a_nested_roles_claim(provider: Provider) -> None:
    """Keycloak's realm roles: CERTGRAPH_OIDC_ROLES_CLAIM=realm_access.roles."""
    verifier = make_verifier(provider, roles_claim="realm_access.roles")
    token = provider.token(realm_access={"roles": ["certgraph-admin"]}, roles=["x"])
    assert (await verifier.verify(token)).role == Role.ADMIN
    client = make_verifier(provider, roles_claim="resource_access.certgraph.roles")
    token = provider.token(resource_access={"certgraph": {"roles": ["certgraph-manager"]}})
    assert (await client.verify(token)).role == Role.MANAGER
    assert (await client.verify(provider.token(resource_access="no"))).role is None


async def test_a_namespaced_roles_claim_with_dots(provider: Provider) -> None:
    """Auth0's custom claims are URLs (dots in the name): the top-level claim wins."""
    name = "https://certgraph.example.com/roles"
    verifier = make_verifier(provider, roles_claim=name)
    assert (await verifier.verify(provider.token(**{name: ["certgraph-admin"]}))).role == Role.ADMIN


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({}, ("sam.sign-in@example.com", True, "Sam Signin")),
        ({"email_verified": None}, ("sam.sign-in@example.com", False, "Sam Signin")),
        ({"email_verified": False}, ("sam.sign-in@example.com", False, "Sam Signin")),
        ({"email_verified": "true"}, ("sam.sign-in@example.com", True, "Sam Signin")),
        ({"email_verified": 1}, ("sam.sign-in@example.com", False, "Sam Signin")),
        ({"email": None}, (None, True, "Sam Signin")),
        ({"name": None, "given_name": "Sam", "family_name": "S"}, (None, None, "Sam S")),
        ({"name": None, "preferred_username": "sams"}, (None, None, "sams")),
        ({"name": None}, (None, None, None)),
    ],
)
async def test_email_and_name_claims(
    provider: Provider,
    verifier: OidcVerifier,
    claims: dict[str, object],
    expected: tuple[str | None, bool | None, str | None],
) -> None:
    identity = await verifier.verify(provider.token(**claims))
    email, verified, name = expected
    if email is not None or "email" in claims:
        assert identity.email == email
    if verified is not None:
        assert identity.email_verified is verified
    assert identity.name == name
