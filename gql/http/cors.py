"""CORS for single-page apps on other origins: the request headers their GraphQL clients send
(urql, Apollo Client, apollo-upload-client) pass the preflight, the headers they must read
are exposed, and a refused preflight is an error answer like any other."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from gql.http.errors import BAD_REQUEST, error_response
from gql.http.request_id import REQUEST_ID_HEADER

# Request headers a cross-origin client may send (docs/api.md, "CORS"). Apollo Client sends
# apollographql-client-*, apollo-require-preflight and x-apollo-operation-name (the last
# two ask for a preflight on uploads); graphql-preflight is the same idea in other clients.
CORS_ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    REQUEST_ID_HEADER,
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "apollographql-client-name",
    "apollographql-client-version",
    "graphql-preflight",
)
# Response headers a cross-origin client may read: the id to quote, how long to wait after a
# 429, and the 401's challenge.
CORS_EXPOSED_HEADERS = (REQUEST_ID_HEADER, "Retry-After", "WWW-Authenticate")
CORS_METHODS = ("GET", "POST")
CORS_MAX_AGE_SECONDS = 600
# A preflight's answer, kept on a refusal too: it says what would have been allowed.
_PREFLIGHT_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
    "vary",
)


class ShapedCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, whose refused preflight answers the API's JSON error."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        kept = {k: v for k, v in response.headers.items() if k in _PREFLIGHT_HEADERS}
        reason = bytes(response.body).decode("utf-8", "replace")
        return error_response(
            response.status_code,
            BAD_REQUEST,
            f"CORS preflight refused: {reason} (docs/api.md, CORS)",
            headers=kept,
        )


def cors_middleware(origins: Sequence[str]) -> Middleware:
    return Middleware(
        ShapedCORSMiddleware,
        allow_origins=origins,
        allow_methods=CORS_METHODS,
        allow_headers=CORS_ALLOWED_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
        max_age=CORS_MAX_AGE_SECONDS,
    )
