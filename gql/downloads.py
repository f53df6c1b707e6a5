"""Signed file downloads: ``/files/evidence/<id>`` and ``/files/badge/<id>``.

The API hands out URLs made by `evidence_download_url` and `badge_image_url` only to viewers
who may see the object; the signature is the whole authorisation here (no token needed, so
an ``<img src>`` or a download link works). An absent, altered, foreign or expired signature
gets 403 and no bytes, whether or not the object exists, so IDs cannot be probed; a valid
signature whose bytes are gone gets 404.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from gql import clock
from gql.files import blob_path
from gql.settings import get_settings
from gql.signing import expiry_in, sign, stable_expiry, verify
from gql.store.models import Certification, Evidence

EVIDENCE = "evidence"
BADGE = "badge"
PREFIX = "/files"
_MAX_ID = 2**31 - 1  # the ID columns are 32-bit

# The bytes are whatever a user uploaded: never let a browser reinterpret or run them.
_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True, slots=True)
class _Target:
    sha256: str
    content_type: str
    filename: str | None  # set for attachments


def _url(kind: str, object_id: int, sha256: str, expires: int) -> str:
    query = urlencode({"exp": expires, "sig": sign(kind, object_id, sha256, expires)})
    return f"{PREFIX}/{kind}/{object_id}?{query}"


def evidence_download_url(evidence: Evidence) -> str:
    """A URL (path and query) that serves this evidence for a few minutes."""
    expires = expiry_in(get_settings().evidence_url_ttl_seconds)
    return _url(EVIDENCE, evidence.id, evidence.sha256, expires)


def badge_image_url(cert: Certification) -> str | None:
    """A cacheable URL of the certification's badge image; None when it has none.

    The expiry moves in steps of the badge TTL, so the URL (and the browser's cached copy)
    stays the same for at least that long.
    """
    if not cert.badge_sha256:
        return None
    expires = stable_expiry(get_settings().badge_url_ttl_seconds)
    return _url(BADGE, cert.id, cert.badge_sha256, expires)


async def _target(kind: str, object_id: int) -> _Target | None:
    if kind == EVIDENCE:
        evidence = await Evidence.get_or_none(id=object_id)
        if evidence is None:
            return None
        return _Target(evidence.sha256, evidence.content_type, evidence.filename)
    cert = await Certification.get_or_none(id=object_id)
    if cert is None or not cert.badge_sha256 or not cert.badge_content_type:
        return None
    return _Target(cert.badge_sha256, cert.badge_content_type, None)


def _refused(status: int) -> Response:
    return Response(status_code=status, headers={**_ALWAYS, "Cache-Control": "no-store"})


def _parse_expiry(text: str | None) -> int | None:
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 12:
        return None
    return int(text)


async def download(request: Request) -> Response:
    kind = str(request.path_params["kind"])
    object_id = int(request.path_params["object_id"])
    if kind not in (EVIDENCE, BADGE):
        return _refused(404)
    if not 0 < object_id <= _MAX_ID:
        return _refused(403)
    expires = _parse_expiry(request.query_params.get("exp"))
    signature = request.query_params.get("sig")
    if expires is None or not signature:
        return _refused(403)
    target = await _target(kind, object_id)
    if target is None or not verify(kind, object_id, target.sha256, expires, signature):
        return _refused(403)
    path = blob_path(target.sha256)
    try:
        stat_result = await asyncio.to_thread(os.stat, path)
    except FileNotFoundError:
        return _refused(404)
    if kind == EVIDENCE:
        cache = "no-store"
    else:
        remaining = max(0, expires - int(clock.now().timestamp()))
        cache = f"public, max-age={remaining}, immutable"
    return FileResponse(
        path,
        media_type=target.content_type,
        filename=target.filename,
        stat_result=stat_result,
        headers={**_ALWAYS, "Cache-Control": cache},
    )


def routes() -> list[BaseRoute]:
    """The routes to mount in the app (at the root: they carry their /files prefix)."""
    return [Route(PREFIX + "/{kind:str}/{object_id:int}", download, methods=["GET", "HEAD"])]
