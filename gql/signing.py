"""Signed download URLs: `UrlSigner` makes and checks them, with the service's secret key.

A signature covers (kind, object id, SHA-256 of the bytes, expiry), so a URL opens exactly one
version of one file until it expires. The key is ``CERTGRAPH_SECRET_KEY`` or a random key
generated once into ``<data_dir>/secret_key`` (0600, no-clobber: workers agree on one key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlencode

from gql import clock
from gql.settings import Settings

KEY_FILE = "secret_key"
PREFIX = "/files"
EVIDENCE = "evidence"
BADGE = "badge"
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

    def sign(self, kind: str, object_id: int, sha256: str, expires: int) -> str:
        message = f"{kind}\n{object_id}\n{sha256}\n{expires}".encode("ascii")
        digest = hmac.new(self._hmac_key(), message, "sha256").digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def verify(self, kind: str, object_id: int, sha256: str, expires: int, signature: str) -> bool:
        """True when the signature is ours for exactly these values and has not expired."""
        if expires <= _now() or not signature.isascii():
            return False
        expected = self.sign(kind, object_id, sha256, expires)
        return hmac.compare_digest(signature.encode("ascii"), expected.encode("ascii"))

    def url(self, kind: str, object_id: int, sha256: str, expires: int) -> str:
        query = urlencode({"exp": expires, "sig": self.sign(kind, object_id, sha256, expires)})
        return f"{PREFIX}/{kind}/{object_id}?{query}"

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
