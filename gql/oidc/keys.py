"""The OpenID provider's signing keys: found through its discovery document
(`<issuer>/.well-known/openid-configuration` -> `jwks_uri`), fetched with httpx (asynchronous:
nothing blocks the event loop), cached, parsed by PyJWT.

A token whose `kid` is not in the cache makes the keys be fetched again (the provider has
rotated them), at most once per `refresh_interval`, so a stream of forged `kid`s cannot make
certgraph hammer the provider. Keys older than `max_age` are fetched again on the next token
(so a key the provider withdrew stops being trusted); while that fetch runs, or when it fails,
the cached keys go on being used. Nothing is fetched before the first token arrives.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from jwt import PyJWK, PyJWTError

from gql.oidc.errors import Check, TokenRejected

log = logging.getLogger("certgraph.oidc")

# A discovery document or key set larger than this is refused (they are a few KiB).
MAX_DOCUMENT_BYTES = 512 * 1024
SIGNING_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})  # never "oct": no shared secrets


class KeyFetchError(Exception):
    """The discovery document or the key set could not be had; the message says why."""


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ProviderKeys:
    """The key cache of one issuer. One per app (each worker process has its own)."""

    def __init__(
        self,
        issuer: str,
        discovery_url: str,
        *,
        refresh_interval: float = 30.0,
        max_age: float = 3600.0,
        failure_backoff: float = 5.0,
        timeout: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self.discovery_url = discovery_url
        self.refresh_interval = refresh_interval
        self.max_age = max_age
        self.failure_backoff = min(failure_backoff, refresh_interval)
        self.timeout = timeout
        self._transport = transport
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._jwks_uri: str | None = None
        self._by_kid: dict[str, dict[str, Any]] = {}
        self._unnamed: list[dict[str, Any]] = []
        self._built: dict[tuple[str | None, str], PyJWK] = {}
        self._loaded_at: float | None = None
        self._next_fetch_at = -math.inf
        self._generation = 0
        self.fetches = 0  # key-set fetches attempted (for tests and the log)

    # -- lookups -------------------------------------------------------------------------

    async def key_for(self, kid: str | None, alg: str) -> PyJWK:
        """The provider's key `kid` for algorithm `alg`; TokenRejected when there is none."""
        if self._needs_fetch():
            await self._refresh()
        jwk = self._find(kid)
        if jwk is None and self._loaded_at is not None:
            await self._refresh()  # rotated? (rate-limited: may fetch nothing)
            jwk = self._find(kid)
        if jwk is None:
            if self._loaded_at is None:
                raise TokenRejected(
                    Check.KEYS_UNAVAILABLE,
                    "the OpenID provider's signing keys could not be fetched; try again shortly",
                )
            if kid is None:
                raise TokenRejected(
                    Check.UNKNOWN_KEY,
                    "the token names no signing key (kid) and the provider has several",
                )
            raise TokenRejected(
                Check.UNKNOWN_KEY, "the token's signing key (kid) is not one of the provider's"
            )
        return self._build(kid, jwk, alg)

    def _needs_fetch(self) -> bool:
        """No keys yet, or keys older than max_age (unless a fetch is under way: the cached
        keys serve meanwhile)."""
        if self._loaded_at is None:
            return True
        return self._monotonic() - self._loaded_at > self.max_age and not self._lock.locked()

    def _find(self, kid: str | None) -> dict[str, Any] | None:
        if kid is not None and kid in self._by_kid:
            return self._by_kid[kid]
        # A provider publishing one key without a kid: tokens name it or not.
        if not self._by_kid and len(self._unnamed) == 1:
            return self._unnamed[0]
        if kid is None and len(self._by_kid) == 1 and not self._unnamed:
            return next(iter(self._by_kid.values()))
        return None

    def _build(self, kid: str | None, jwk: dict[str, Any], alg: str) -> PyJWK:
        """The key for `alg` (PyJWT binds a key to one algorithm): a key that names its `alg`
        verifies only tokens of that algorithm; one that does not, any allowed algorithm of
        its type (an RSA key: RS* and PS*)."""
        found = self._built.get((kid, alg))
        if found is not None:
            return found
        declared = jwk.get("alg")
        if declared is not None and declared != alg:
            raise TokenRejected(
                Check.ALGORITHM, "the token's algorithm (alg) is not the one its key is for"
            )
        try:
            key = PyJWK(jwk, algorithm=alg)
        except PyJWTError:
            raise TokenRejected(
                Check.ALGORITHM, "the token's algorithm (alg) does not fit its key's type"
            ) from None
        self._built[(kid, alg)] = key
        return key

    # -- fetching ------------------------------------------------------------------------

    async def _refresh(self) -> None:
        """Fetch the keys unless another task just did or the last fetch is too recent."""
        generation = self._generation
        async with self._lock:
            if self._generation != generation:
                return  # fetched while this task waited
            now = self._monotonic()
            if now < self._next_fetch_at:
                return
            self._next_fetch_at = now + self.refresh_interval
            self.fetches += 1
            try:
                by_kid, unnamed = await self._fetch()
            except KeyFetchError as exc:
                self._next_fetch_at = now + self.failure_backoff
                self._jwks_uri = None  # discover again next time: the jwks_uri may have moved
                log.warning("OpenID provider keys not refreshed: %s", exc)
                return
            self._by_kid, self._unnamed, self._built = by_kid, unnamed, {}
            self._loaded_at = now
            self._generation += 1
            log.info(
                "OpenID provider keys loaded: %d (kids: %s)",
                len(by_kid) + len(unnamed),
                ", ".join(sorted(by_kid)) or "none",
            )

    async def _fetch(self) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        async with httpx.AsyncClient(
            timeout=self.timeout, transport=self._transport, follow_redirects=False
        ) as client:
            if self._jwks_uri is None:
                self._jwks_uri = self._jwks_uri_of(
                    await _get_json(client, self.discovery_url, "the discovery document")
                )
            return _signing_keys(await _get_json(client, self._jwks_uri, "the key set (JWKS)"))

    def _jwks_uri_of(self, document: Any) -> str:
        if not isinstance(document, dict):
            raise KeyFetchError("the discovery document is not a JSON object")
        # OpenID Connect Discovery 1.0 §4.3: the document's issuer is exactly the configured one
        if document.get("issuer") != self.issuer:
            raise KeyFetchError(
                f"the discovery document names issuer {str(document.get('issuer'))[:200]!r}, "
                f"not CERTGRAPH_OIDC_ISSUER {self.issuer!r}"
            )
        uri = document.get("jwks_uri")
        if not isinstance(uri, str):
            raise KeyFetchError("the discovery document has no jwks_uri")
        parts = urlsplit(uri)
        if not (
            parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname))
        ):
            raise KeyFetchError("the jwks_uri must be https:// (http:// only on a loopback host)")
        return uri


async def _get_json(client: httpx.AsyncClient, url: str, what: str) -> Any:
    body = bytearray()
    try:
        async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
            if response.status_code != 200:
                raise KeyFetchError(f"{what} ({url}) answered HTTP {response.status_code}")
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise KeyFetchError(f"{what} ({url}) is larger than {MAX_DOCUMENT_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise KeyFetchError(f"{what} ({url}): {type(exc).__name__}: {exc}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise KeyFetchError(f"{what} ({url}) is not JSON") from None


def _signing_keys(jwks: Any) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The key set's public signing keys that PyJWT can use, by kid (and those without one)."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise KeyFetchError("the key set (JWKS) has no keys list")
    by_kid: dict[str, dict[str, Any]] = {}
    unnamed: list[dict[str, Any]] = []
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in SIGNING_KEY_TYPES:
            continue
        if key.get("use", "sig") != "sig" or "d" in key:  # encryption keys; never a private key
            continue
        try:
            PyJWK(key)  # parses with its own or its type's default algorithm
        except PyJWTError:
            continue
        kid = key.get("kid")
        if isinstance(kid, str):
            by_kid[kid] = key
        else:
            unnamed.append(key)
    if not by_kid and not unnamed:
        raise KeyFetchError("the key set (JWKS) holds no usable signing key")
    return by_kid, unnamed
