"""Signed file downloads, ``/files/evidence/<id>`` and ``/files/badge/<id>``: the signature is
the whole authorisation (an ``<img src>`` works), and any bad signature is 403 whether the
object exists or not, so IDs cannot be probed (docs/files.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from gql import clock
from gql.files.blobs import BlobStore
from gql.signing import BADGE, EVIDENCE, PREFIX, UrlSigner
from gql.store.file_references import FileRow, badge_file, evidence_file

_MAX_ID = 2**31 - 1  # the ID columns are 32-bit

# The bytes are whatever a user uploaded: never let a browser reinterpret or run them.
_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Referrer-Policy": "no-referrer",
}
_FINDERS: dict[str, Callable[[int], Awaitable[FileRow | None]]] = {
    EVIDENCE: evidence_file,
    BADGE: badge_file,
}


def _refused(status: int) -> Response:
    return Response(status_code=status, headers={**_ALWAYS, "Cache-Control": "no-store"})


def _attachment(filename: str) -> str:
    """As Starlette's FileResponse says it: RFC 5987 ``filename*`` for names URLs must quote."""
    quoted = quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'


def _parse_expiry(text: str | None) -> int | None:
    if text is None or not text.isascii() or not text.isdigit() or len(text) > 12:
        return None
    return int(text)


def download_endpoint(
    blobs: BlobStore, signer: UrlSigner
) -> Callable[[Request], Awaitable[Response]]:
    async def download(request: Request) -> Response:
        kind = str(request.path_params["kind"])
        object_id = int(request.path_params["object_id"])
        find = _FINDERS.get(kind)
        if find is None:
            return _refused(404)
        if not 0 < object_id <= _MAX_ID:
            return _refused(403)
        expires = _parse_expiry(request.query_params.get("exp"))
        signature = request.query_params.get("sig")
        if expires is None or not signature:
            return _refused(403)
        target = await find(object_id)
        if target is None or not signer.verify(kind, object_id, target.sha256, expires, signature):
            return _refused(403)
        blob = await blobs.stat(target.sha256)
        if blob is None:
            return _refused(404)
        if kind == EVIDENCE:
            cache = "no-store"
        else:
            remaining = max(0, expires - int(clock.now().timestamp()))
            cache = f"public, max-age={remaining}, immutable"
        headers = {**_ALWAYS, "Cache-Control": cache}
        if blob.path is not None:
            return FileResponse(
                blob.path, media_type=target.content_type, filename=target.filename, headers=headers
            )
        response = StreamingResponse(
            blobs.read(target.sha256), media_type=target.content_type, headers=headers
        )
        response.headers["Content-Length"] = str(blob.size)
        if target.filename is not None:
            response.headers["Content-Disposition"] = _attachment(target.filename)
        return response

    return download


def routes(blobs: BlobStore, signer: UrlSigner) -> list[BaseRoute]:
    """The routes to mount in the app (at the root: they carry their /files prefix)."""
    return [
        Route(
            PREFIX + "/{kind:str}/{object_id:int}",
            download_endpoint(blobs, signer),
            methods=["GET", "HEAD"],
        )
    ]
