"""Signed download URLs: `UrlSigner` makes and checks them, with the service's secret key.

A signature covers (kind, object id, SHA-256 of the bytes, expiry, disposition), so a URL opens
exactly one version of one file, one way, until it expires; `FileUrls` makes them absolute.
The key is ``CERTGRAPH_SECRET_KEY`` or one generated into ``<data_dir>/secret_key``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

from starlette.requests import HTTPConnection

from gql import clock
from gql.settings import Settings

KEY_FILE = "secret_key"
PREFIX = "/files"
EVIDENCE = "evidence"
BADGE = "badge"
# How a download is served: saved as a file (the default, the only one a URL without a
# `disposition` parameter can have), or shown in the browser (`disposition=inline`).
ATTACHMENT = "attachment"
INLINE = "inline"
# What a browser shows without running anything the file brings: PDF in its viewer, raster
# images. Never SVG or HTML (they carry scripts), nor anything else.
PREVIEWABLE_TYPES = frozenset(
    {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp"}
)
# A Host header this plain can be put in a URL as it is; anything else is not used.
_PLAIN_HOST = re.compile(
    r"(?:[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Separates this use of the secret from any other the service may make of it.
_PURPOSE = b"certgraph download url v1"


class SecretKeyError(RuntimeError):
    """The key file exists but cannot be used."""


def _read_key_file(path: Path) -> str:
    text = path.read_text(encoding="ascii").strip()
    if len(text) < 32:
        raise SecretKeyError(f"{path} holds no usable key; delete it to generate a new one")
    return text


def _create_key_file(directory: Path) -> str:
    """Write a new random key to `directory/secret_key` unless one exists; return the key."""
    target = directory / KEY_FILE
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=".secret_key-", dir=directory)  # mode 0600
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_hex(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, target)  # atomic and never overwrites: the first worker wins
        except FileExistsError:
            pass
        else:
            dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    finally:
        temp.unlink(missing_ok=True)
    return _read_key_file(target)


def load_secret_key(secret_key: str | None, data_dir: Path) -> str:
    """The configured secret, else the data directory's key file (created on first use)."""
    if secret_key:
        return secret_key
    directory = data_dir.resolve()
    path = directory / KEY_FILE
    return _read_key_file(path) if path.exists() else _create_key_file(directory)


def _now() -> int:
    return int(clock.now().timestamp())


def expiry_in(seconds: int) -> int:
    """An expiry `seconds` from now (Unix time)."""
    return _now() + seconds


def stable_expiry(seconds: int) -> int:
    """An expiry at least `seconds` away that stays the same for `seconds` at a time.

    URLs built with it do not change on every request, so browsers can cache what they name.
    """
    return (_now() // seconds + 2) * seconds


class UrlSigner:
    """Signs and verifies download URLs; built once per app from its settings.

    With no `secret_key`, the key is read from (or generated into) `key_dir`'s key file on
    first use, so building a signer writes nothing.
    """

    def __init__(
        self,
        secret_key: str | None = None,
        *,
        key_dir: Path | None = None,
        evidence_ttl_seconds: int = 300,
        badge_ttl_seconds: int = 86400,
    ) -> None:
        if not secret_key and key_dir is None:
            raise SecretKeyError("a signer needs a secret key or a directory for its key file")
        self._secret = secret_key or None
        self._key_dir = key_dir
        self._key: bytes | None = None
        self.evidence_ttl_seconds = evidence_ttl_seconds
        self.badge_ttl_seconds = badge_ttl_seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> UrlSigner:
        """The signer of `settings`: its secret (or the data dir's key file), URL lifetimes."""
        return cls(
            settings.secret_key,
            key_dir=settings.data_dir,
            evidence_ttl_seconds=settings.evidence_url_ttl_seconds,
            badge_ttl_seconds=settings.badge_url_ttl_seconds,
        )

    def _hmac_key(self) -> bytes:
        if self._key is None:
            text = self._secret
            if text is None:
                assert self._key_dir is not None  # checked when built
                text = load_secret_key(None, self._key_dir)
            self._key = hmac.new(text.encode("utf-8"), _PURPOSE, hashlib.sha256).digest()
        return self._key

    def __repr__(self) -> str:  # never the key
        return (
            f"UrlSigner(evidence_ttl_seconds={self.evidence_ttl_seconds}, "
            f"badge_ttl_seconds={self.badge_ttl_seconds})"
        )

    def sign(
        self,
        kind: str,
        object_id: int,
        sha256: str,
        expires: int,
        disposition: str = ATTACHMENT,
    ) -> str:
        message = f"{kind}\n{object_id}\n{sha256}\n{expires}"
        if disposition != ATTACHMENT:
            # Only the inline variant adds a line, so every attachment URL ever made still
            # verifies, and neither variant's signature opens the other.
            if disposition != INLINE:
                raise ValueError(f"unknown disposition {disposition!r}")
            message += f"\n{disposition}"
        digest = hmac.new(self._hmac_key(), message.encode("ascii"), "sha256").digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def verify(
        self,
        kind: str,
        object_id: int,
        sha256: str,
        expires: int,
        signature: str,
        disposition: str = ATTACHMENT,
    ) -> bool:
        """True when the signature is ours for exactly these values and has not expired."""
        if expires <= _now() or not signature.isascii():
            return False
        expected = self.sign(kind, object_id, sha256, expires, disposition)
        return hmac.compare_digest(signature.encode("ascii"), expected.encode("ascii"))

    def url(
        self,
        kind: str,
        object_id: int,
        sha256: str,
        expires: int,
        disposition: str = ATTACHMENT,
    ) -> str:
        """The path and query of a signed download (`disposition=inline` only when inline)."""
        query: dict[str, str | int] = (
            {} if disposition == ATTACHMENT else {"disposition": disposition}
        )
        query.update(exp=expires, sig=self.sign(kind, object_id, sha256, expires, disposition))
        return f"{PREFIX}/{kind}/{object_id}?{urlencode(query)}"

    def evidence_url(self, evidence_id: int, sha256: str) -> str:
        """A URL (path and query) that serves this evidence for a few minutes."""
        return self.url(EVIDENCE, evidence_id, sha256, expiry_in(self.evidence_ttl_seconds))

    def badge_url(self, certification_id: int, sha256: str | None) -> str | None:
        """A cacheable URL of a badge image; None without one.

        The expiry moves in steps of the badge TTL, so the URL (and the browser's cached copy)
        stays the same for at least that long.
        """
        if not sha256:
            return None
        expires = stable_expiry(self.badge_ttl_seconds)
        return self.url(BADGE, certification_id, sha256, expires)


def previewable(content_type: str) -> bool:
    """Whether a file of this (sniffed) type may be served inline (`PREVIEWABLE_TYPES`)."""
    return content_type in PREVIEWABLE_TYPES


def request_base_url(connection: HTTPConnection) -> str:
    """``scheme://host[:port]`` of a request: the scheme of the ASGI scope (which uvicorn sets
    from X-Forwarded-Proto only for CERTGRAPH_TRUSTED_PROXIES) and the Host header when it is a
    plain host, else the address the server was reached on. No X-Forwarded-Host is read."""
    scheme = connection.scope.get("scheme", "http")
    if scheme not in _DEFAULT_PORTS:
        scheme = "http"
    host = connection.headers.get("host", "")
    if len(host) > 255 or not _PLAIN_HOST.fullmatch(host):
        server = connection.scope.get("server")
        if not server or server[0] is None:
            return ""  # nothing known (no such request reaches a real server): a path it is
        name, port = str(server[0]), server[1]
        if ":" in name:
            name = f"[{name}]"
        host = name if port in (None, _DEFAULT_PORTS[scheme]) else f"{name}:{port}"
    return f"{scheme}://{host}"


def public_base_url(public_url: str | None, connection: HTTPConnection) -> str:
    """Where this service is reached: CERTGRAPH_PUBLIC_URL (validated, no trailing slash) when
    set, else the request's own scheme and host (`request_base_url`)."""
    return public_url if public_url else request_base_url(connection)


@dataclass(frozen=True, slots=True)
class SignedUrl:
    """An absolute signed URL and the moment (Unix time) its signature expires."""

    url: str
    expires: int

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, UTC)


class FileUrls:
    """The URLs of stored files the API hands out, for one request: absolute, signed, with
    their expiry. `file_url` is the one place they are made (a blob store that serves its own
    URLs, e.g. presigned, would plug in there: it is async for that)."""

    def __init__(self, signer: UrlSigner, base_url: str) -> None:
        self.signer = signer
        self.base_url = base_url

    @classmethod
    def for_request(
        cls, signer: UrlSigner, public_url: str | None, connection: HTTPConnection
    ) -> FileUrls:
        return cls(signer, public_base_url(public_url, connection))

    def absolute(self, path: str) -> str:
        """`path` (starting with /) on this service."""
        return self.base_url + path

    async def file_url(
        self, kind: str, object_id: int, sha256: str, expires: int, disposition: str = ATTACHMENT
    ) -> SignedUrl:
        path = self.signer.url(kind, object_id, sha256, expires, disposition)
        return SignedUrl(self.absolute(path), expires)

    async def evidence(self, evidence_id: int, sha256: str) -> SignedUrl:
        """Downloads the evidence as an attachment, for a few minutes."""
        expires = expiry_in(self.signer.evidence_ttl_seconds)
        return await self.file_url(EVIDENCE, evidence_id, sha256, expires)

    async def evidence_preview(
        self, evidence_id: int, sha256: str, content_type: str
    ) -> SignedUrl | None:
        """Shows the evidence in the browser, for a few minutes; None unless `previewable`."""
        if not previewable(content_type):
            return None
        expires = expiry_in(self.signer.evidence_ttl_seconds)
        return await self.file_url(EVIDENCE, evidence_id, sha256, expires, INLINE)

    async def badge(self, certification_id: int, sha256: str | None) -> SignedUrl | None:
        """The badge image (cacheable: the same URL for a day or more); None without one."""
        if not sha256:
            return None
        expires = stable_expiry(self.signer.badge_ttl_seconds)
        return await self.file_url(BADGE, certification_id, sha256, expires)
