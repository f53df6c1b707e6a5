"""The one shape of every error answer outside GraphQL execution: a GraphQL response whose only
error carries `extensions.code`, so clients handle a 413 or a 404 like any other API error.
Its message is told in the request's language (gql/i18n.py); the code is the same in every one."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql import i18n
from gql.http.request_id import request_id_of
from gql.i18n import t

log = logging.getLogger("certgraph.http")

BEARER_CHALLENGE = 'Bearer realm="certgraph"'

# The transport codes: refusals of the HTTP layer, before or around GraphQL execution.
BAD_REQUEST = "BAD_REQUEST"
BATCHING_NOT_SUPPORTED = "BATCHING_NOT_SUPPORTED"
NOT_FOUND = "NOT_FOUND"
METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"

# The code of a refusal that names none, by its HTTP status.
STATUS_CODES = {
    400: BAD_REQUEST,
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    413: PAYLOAD_TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
    429: "RATE_LIMITED",
    500: INTERNAL_SERVER_ERROR,
    504: "REQUEST_TIMEOUT",
}

# API answers are personal and JSON: never sniffed as something else, never cached.
API_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def language_of(scope: Scope) -> str:
    """The language the request's Accept-Language picks (gql/i18n.py), for its error text."""
    return i18n.negotiate(Headers(scope=scope).get("accept-language"))


def language_headers(language: str) -> dict[str, str]:
    """An answer whose text follows Accept-Language says so, for caches and for the client."""
    return {"Content-Language": language, "Vary": "Accept-Language"}


def _merged(*parts: Mapping[str, str]) -> dict[str, str]:
    """Headers, later parts winning, except that the Vary values of every part are joined."""
    merged: dict[str, str] = {}
    vary: list[str] = []
    for part in parts:
        for name, value in part.items():
            if name.lower() == "vary":
                for each in value.split(","):
                    if each.strip() and each.strip() not in vary:
                        vary.append(each.strip())
            else:
                merged[name] = value
    if vary:
        merged["Vary"] = ", ".join(vary)
    return merged


def code_for_status(status: int) -> str:
    return STATUS_CODES.get(status, INTERNAL_SERVER_ERROR if status >= 500 else BAD_REQUEST)


def error_body(
    code: str, message: str, extensions: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "data": None,
        "errors": [{"message": message, "extensions": {**(extensions or {}), "code": code}}],
    }


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    language: str = i18n.SOURCE_LANGUAGE,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    """The error answer: every refusal of the HTTP layer and the routes is built here.

    `message` in `language` when it is a Message (made with `t`); a plain str
    as it is. The answer carries Content-Language and `Vary: Accept-Language` either way."""
    text = i18n.render(message, language)
    body = json.dumps(error_body(code, text, extensions), separators=(",", ":"))
    return Response(
        body,
        status_code=status,
        headers=_merged(API_HEADERS, language_headers(language), headers or {}),
        media_type="application/json",
    )


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    *,
    language: str = i18n.SOURCE_LANGUAGE,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> None:
    """Answer with `error_response` from plain ASGI middleware (`language`: `language_of`)."""
    response = error_response(
        status, code, message, language=language, headers=headers, extensions=extensions
    )
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


INTERNAL_ERROR_TEXT = t("Internal server error.")


def _routing_message(status: int, method: str, detail: str) -> str:
    if status == 404:
        return t("nothing is served at this path; GraphQL requests are POSTed to /graphql")
    if status == 405:
        return t("this path does not take the {method} method", method=method)
    return detail


async def http_exception_response(request: Request, exc: Exception) -> Response:
    """Starlette's HTTPException (an unknown path, a method a route does not take) as an
    error answer, in place of Starlette's plain-text one."""
    assert isinstance(exc, HTTPException)
    return error_response(
        exc.status_code,
        code_for_status(exc.status_code),
        _routing_message(exc.status_code, request.method, exc.detail),
        language=language_of(request.scope),
        headers=exc.headers,
    )


# For Starlette(exception_handlers=...): every HTTPException a route or the router raises.
EXCEPTION_HANDLERS = {HTTPException: http_exception_response}


class InternalErrorMiddleware:
    """A bug below this middleware is answered 500 INTERNAL_SERVER_ERROR with the request id,
    inside CORS so a browser can read it; the exception goes on to the server's log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            # The client left before its request was read: nobody to answer, nothing broken.
            log.info(
                "client went away before its request was read: %s %s (request %s)",
                scope.get("method"),
                scope.get("path"),
                request_id_of(scope),
            )
        except Exception:
            if not started:
                request_id = request_id_of(scope)
                await send_error(
                    send,
                    500,
                    INTERNAL_SERVER_ERROR,
                    INTERNAL_ERROR_TEXT,
                    language=language_of(scope),
                    extensions={"requestId": request_id} if request_id else None,
                )
            raise
