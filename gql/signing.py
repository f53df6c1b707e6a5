"""HMAC signatures for download URLs, and the secret key they are made with.

A signature covers (kind, object id, SHA-256 of the bytes, expiry), so a URL opens exactly one
version of one file until it expires: changing any part of the URL, or replacing the file
(a new badge image), makes it invalid. The key is ``CERTGRAPH_SECRET_KEY`` or, when that is
unset, a random key generated once into ``<data_dir>/secret_key`` (mode 0600). The file is
created with a no-clobber link, so several workers starting at once agree on one key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from gql import clock
from gql.settings import get_settings

KEY_FILE = "secret_key"
# Separates this use of the secret from any other the service may make of it.
_PURPOSE = b"certgraph download url v1"

_keys: dict[tuple[str | None, str], bytes] = {}


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


def secret_key() -> bytes:
    """The service's secret: the setting, else the key file (created on first use)."""
    settings = get_settings()
    directory = settings.data_dir.resolve()
    cache_key = (settings.secret_key, str(directory))
    cached = _keys.get(cache_key)
    if cached is not None:
        return cached
    if settings.secret_key:
        text = settings.secret_key
    else:
        path = directory / KEY_FILE
        text = _read_key_file(path) if path.exists() else _create_key_file(directory)
    key = hmac.new(text.encode("utf-8"), _PURPOSE, hashlib.sha256).digest()
    _keys[cache_key] = key
    return key


def _message(kind: str, object_id: int, sha256: str, expires: int) -> bytes:
    return f"{kind}\n{object_id}\n{sha256}\n{expires}".encode("ascii")


def sign(kind: str, object_id: int, sha256: str, expires: int) -> str:
    digest = hmac.new(secret_key(), _message(kind, object_id, sha256, expires), "sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(kind: str, object_id: int, sha256: str, expires: int, signature: str) -> bool:
    """True when the signature is ours for exactly these values and has not expired."""
    if expires <= int(clock.now().timestamp()) or not signature.isascii():
        return False
    expected = sign(kind, object_id, sha256, expires)
    return hmac.compare_digest(signature.encode("ascii"), expected.encode("ascii"))


def expiry_in(seconds: int) -> int:
    """An expiry `seconds` from now (Unix time)."""
    return int(clock.now().timestamp()) + seconds


def stable_expiry(seconds: int) -> int:
    """An expiry at least `seconds` away that stays the same for `seconds` at a time.

    URLs built with it do not change on every request, so browsers can cache what they name.
    """
    now = int(clock.now().timestamp())
    return (now // seconds + 2) * seconds
