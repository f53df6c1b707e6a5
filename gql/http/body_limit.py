"""Refuse a request body over a limit with 413 PAYLOAD_TOO_LARGE: a declared Content-Length
over it before a byte is read, a chunked (or lying) body as soon as what arrived passes it."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.http.errors import PAYLOAD_TOO_LARGE, language_of, send_error
from gql.http.timeout import ResponseTracker
from gql.i18n import t


class BodyTooLarge(Exception):
    """Raised from the wrapped `receive` once the body has passed the limit."""


def declared_length(scope: Scope) -> int | None:
    value = Headers(scope=scope).get("content-length")
    if value is None or not value.isascii() or not value.isdigit():
        return None
    return int(value)


class BodyLimitMiddleware:
    """Starlette's RequestBodyLimitMiddleware answers a plain-text 413; this one the API's
    error, and it refuses a declared length at once instead of at the first read."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        tracker = ResponseTracker(send)
        try:
            await self.app(scope, limited_receive, tracker)
        except BodyTooLarge:
            if tracker.started:
                raise
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        await send_error(
            send,
            413,
            PAYLOAD_TOO_LARGE,
            t(
                "the request body is larger than the limit of {max_bytes} bytes",
                max_bytes=self.max_bytes,
            ),
            language=language_of(scope),
            extensions={"maxBytes": self.max_bytes},
        )
