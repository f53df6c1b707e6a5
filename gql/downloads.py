"""Signed file downloads, ``/files/evidence/<id>`` and ``/files/badge/<id>``, as attachments or
(``disposition=inline``, signed too) shown in a browser: the signature is the whole authorisation,
and any bad signature is 403 whether the object exists or not, so IDs cannot be probed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from gql import clock
from gql.files.blobs import BlobStore
from gql.http.errors import error_response, language_of
from gql.i18n import t
from gql.signing import ATTACHMENT, BADGE, EVIDENCE, INLINE, PREFIX, UrlSigner, previewable
from gql.store.file_references import FileRow, badge_file, evidence_file

_MAX_ID = 2**31 - 1  # the ID columns are 32-bit

# The bytes are whatever a user uploaded: never let a browser reinterpret or run them.
_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Referrer-Policy": "no-referrer",
}
# Shown in the browser (badges, previews): pages on other origins (the SPA) may embed them.
_EMBEDDABLE = {"Cross-Origin-Resource-Policy": "cross-origin"}
# An image preview: a sandbox with nothing to load but the image (the inline style is the
# browser's own image page's).
_IMAGE_PREVIEW_CSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
# A PDF preview cannot be sandboxed: Chromium refuses to start its viewer in a sandboxed
# document (whatwg/html#3958). Its viewer page loads the file through an <embed> (object-src)
# and styles itself inline; no script may run in the page, the file's own scripts run in the
# viewer's isolated engine, and this origin holds no cookies to reach.
_PDF_PREVIEW_CSP = "default-src 'none'; object-src 'self'; style-src 'unsafe-inline'"
_NO_PREVIEW = t("this file has no preview (not a PDF or image browsers show safely): download it")
_FINDERS: dict[str, Callable[[int], Awaitable[FileRow | None]]] = {
    EVIDENCE: evidence_file,
    BADGE: badge_file,
}


# A refusal is the API's JSON error (a client reads its code); it never says whether the
# object exists.
_REFUSALS = {
    403: ("FORBIDDEN", t("this download URL is not valid (altered, expired or another file's)")),
    404: ("NOT_FOUND", t("there is no such file")),
}


def _refused(status: int, request: Request) -> Response:
    code, message = _REFUSALS[status]
    return error_response(
        status, code, message, language=language_of(request.scope), headers=_ALWAYS
    )


def _content_disposition(disposition: str, filename: str) -> str:
    """As Starlette's FileResponse says it: RFC 5987 ``filename*`` for names URLs must quote."""
    quoted = quote(filename)
    if quoted != filename:
        return f"{disposition}; filename*=utf-8''{quoted}"
    return f'{disposition}; filename="{filename}"'


def _disposition(text: str | None) -> str | None:
    """The query's `disposition`: absent is an attachment, `inline` inline, anything else None."""
    if text is None:
        return ATTACHMENT
    return INLINE if text == INLINE else None


def _shown_headers(content_type: str) -> dict[str, str]:
    """The headers of a file shown inline: a sandboxing policy fit for its type."""
    csp = _PDF_PREVIEW_CSP if content_type == "application/pdf" else _IMAGE_PREVIEW_CSP
    return {**_ALWAYS, **_EMBEDDABLE, "Content-Security-Policy": csp}


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
            return _refused(404, request)
        if not 0 < object_id <= _MAX_ID:
            return _refused(403, request)
        expires = _parse_expiry(request.query_params.get("exp"))
        signature = request.query_params.get("sig")
        disposition = _disposition(request.query_params.get("disposition"))
        if expires is None or not signature or disposition is None:
            return _refused(403, request)
        target = await find(object_id)
        if target is None or not signer.verify(
            kind, object_id, target.sha256, expires, signature, disposition
        ):
            return _refused(403, request)
        # Only after the signature: without one, nobody learns what type a file has.
        if disposition == INLINE and not previewable(target.content_type):
            return error_response(
                404,
                "NOT_FOUND",
                _NO_PREVIEW,
                language=language_of(request.scope),
                headers=_ALWAYS,
            )
        blob = await blobs.stat(target.sha256)
        if blob is None:
            return _refused(404, request)
        if kind == EVIDENCE:
            cache = "no-store"
        else:
            remaining = max(0, expires - int(clock.now().timestamp()))
            cache = f"public, max-age={remaining}, immutable"
        if kind == EVIDENCE and disposition == ATTACHMENT:
            # With CERTGRAPH_STORAGE_PRESIGNED_DOWNLOADS on an S3 store, the bucket serves the
            # bytes: a redirect to a presigned URL ending when this one does. (Previews and
            # badges stay here: the bucket cannot send their sandboxing headers.)
            presigned = await blobs.presigned_download_url(
                target.sha256,
                expires_at=expires,
                content_type=target.content_type,
                filename=target.filename,
                cache_control=cache,
            )
            if presigned is not None:
                return RedirectResponse(
                    presigned, status_code=302, headers={**_ALWAYS, "Cache-Control": "no-store"}
                )
        if disposition == INLINE:
            headers = {**_shown_headers(target.content_type), "Cache-Control": cache}
        elif kind == BADGE:
            headers = {**_ALWAYS, **_EMBEDDABLE, "Cache-Control": cache}
        else:
            headers = {**_ALWAYS, "Cache-Control": cache}
        if blob.path is not None:
            return FileResponse(
                blob.path,
                media_type=target.content_type,
                filename=target.filename,
                headers=headers,
                content_disposition_type=disposition,
            )
        response = StreamingResponse(
            blobs.read(target.sha256), media_type=target.content_type, headers=headers
        )
        response.headers["Content-Length"] = str(blob.size)
        if target.filename is not None:
            response.headers["Content-Disposition"] = _content_disposition(
                disposition, target.filename
            )
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
