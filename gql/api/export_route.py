"""Signed export downloads, ``GET /exports/enrollments.csv?q=…&exp=…&sig=…`` (docs/admin.md,
"Exports"): `exportEnrollments` answers such a URL; the download streams the CSV as it is
generated (gql.domain.exports).

`q` is the export request (requester, their role, the filter) as canonical JSON in base64url;
`sig` is the service's HMAC (gql.signing.UrlSigner, kind ``export``) over the requester, the
SHA-256 of those bytes and the expiry `exp`. So the URL is the whole authorisation, like a
file download's: it needs no token, cannot be widened by editing it, and expires. Any bad,
altered or expired URL, and one whose requester may no longer export, is 403 FORBIDDEN.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from gql import clock
from gql.domain import exports
from gql.domain.errors import AccessError, DomainError, t
from gql.http.errors import error_response, language_of
from gql.plugins import PluginHost
from gql.signing import UrlSigner, expiry_in

log = logging.getLogger("certgraph.exports")

EXPORT_PATH = "/exports/enrollments.csv"
# The signer's kind for export URLs: a file download's signature never opens an export.
EXPORT_KIND = "export"
# How long an export URL works: long enough to start the download, short for a credential.
EXPORT_URL_TTL_SECONDS = 600
# A request (requester, role, filter) is a few hundred bytes; refuse anything far larger unread.
_MAX_REQUEST_CHARS = 4096

_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Referrer-Policy": "no-referrer",
}
_REFUSAL = t(
    "this export URL is not valid: altered, expired, or its requester may no longer export; "
    "ask exportEnrollments for a new one"
)


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _signed_id(request: exports.ExportRequest) -> int:
    return request.requester_id if request.requester_id is not None else 0


def export_url(signer: UrlSigner, request: exports.ExportRequest) -> tuple[str, datetime]:
    """A URL (path and query on this server) that downloads this export, and its expiry."""
    payload = exports.encode_request(request)
    expires = expiry_in(EXPORT_URL_TTL_SECONDS)
    signature = signer.sign(EXPORT_KIND, _signed_id(request), _digest(payload), expires)
    encoded = base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")
    query = urlencode({"q": encoded, "exp": expires, "sig": signature})
    return f"{EXPORT_PATH}?{query}", datetime.fromtimestamp(expires, UTC)


def verified_request(
    signer: UrlSigner, encoded: str | None, expiry: str | None, signature: str | None
) -> exports.ExportRequest | None:
    """The request a URL's query carries when its signature is ours and unexpired; else None."""
    if not encoded or not expiry or not signature or len(encoded) > _MAX_REQUEST_CHARS:
        return None
    if not expiry.isascii() or not expiry.isdigit() or len(expiry) > 12:
        return None
    try:
        payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
    except (binascii.Error, ValueError):
        return None
    request = exports.decode_request(payload)
    if request is None:
        return None
    if not signer.verify(
        EXPORT_KIND, _signed_id(request), _digest(payload), int(expiry), signature
    ):
        return None
    return request


def _filename() -> str:
    return f"enrollments-{clock.now().astimezone(UTC).strftime('%Y%m%d-%H%M%S')}.csv"


def download_endpoint(
    signer: UrlSigner, plugins: PluginHost
) -> Callable[[Request], Awaitable[Response]]:
    async def download(request: Request) -> Response:
        params = request.query_params
        language = language_of(request.scope)
        found = verified_request(signer, params.get("q"), params.get("exp"), params.get("sig"))
        if found is None:
            return error_response(403, "FORBIDDEN", _REFUSAL, language=language)
        try:
            actor = await exports.download_actor(found)
        except AccessError:
            return error_response(403, "FORBIDDEN", _REFUSAL, language=language)
        chunks = exports.enrollment_csv(actor, found.filter, plugins=plugins)
        # The header and the first batch before answering: a refusal still gets its status.
        try:
            opening = [await anext(chunks), await anext(chunks, b"")]
        except AccessError as exc:
            await chunks.aclose()
            return error_response(403, "FORBIDDEN", exc.message, language=language)
        except DomainError as exc:
            await chunks.aclose()
            return error_response(400, str(exc.code), exc.message, language=language)

        async def body() -> AsyncIterator[bytes]:
            try:
                for chunk in opening:
                    yield chunk
                async for chunk in chunks:
                    yield chunk
            except Exception:
                # Too late for a status: the response is cut short, which clients see as an
                # incomplete transfer (chunked encoding without its last chunk).
                log.exception("export of %s stopped part way", found.requester_id)
                raise
            finally:
                await chunks.aclose()

        return StreamingResponse(
            body(),
            media_type="text/csv; charset=utf-8; header=present",
            headers={
                **_HEADERS,
                "Content-Disposition": f'attachment; filename="{_filename()}"',
            },
        )

    return download


def routes(signer: UrlSigner, plugins: PluginHost) -> list[BaseRoute]:
    """The routes to mount in the app (at the root)."""
    return [Route(EXPORT_PATH, download_endpoint(signer, plugins), methods=["GET"])]
