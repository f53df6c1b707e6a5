"""Cancel a request that takes longer than CERTGRAPH_REQUEST_TIMEOUT: 504 REQUEST_TIMEOUT.

uvicorn has no per-request timeout: without this a request stuck on a slow client or a long
transaction holds its connection, and on SQLite the one database connection, indefinitely.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.http.errors import language_of, send_error
from gql.http.scope import is_guarded
from gql.i18n import t
from gql.store.db import logging_commits

log = logging.getLogger("certgraph.guards")

REQUEST_TIMEOUT_CODE = "REQUEST_TIMEOUT"


class ResponseTracker:
    """Wraps `send` to know whether the response has started (then no other can be sent)."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class RequestTimeoutMiddleware:
    """Cancellation runs the request's cleanup: an open transaction is rolled back."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.seconds or not is_guarded(scope):
            await self.app(scope, receive, send)
            return
        tracker = ResponseTracker(send)
        try:
            with logging_commits() as commits:
                async with asyncio.timeout(self.seconds) as deadline:
                    await self.app(scope, receive, tracker)
        except TimeoutError:
            if not deadline.expired():
                raise  # a TimeoutError of the request's own, not ours
            log.warning(
                "request %s %s cancelled after %.3g s (CERTGRAPH_REQUEST_TIMEOUT)",
                scope.get("method"),
                scope.get("path"),
                self.seconds,
            )
            if tracker.started:
                return  # too late for an error response; the server closes the connection
            if commits.committed:
                # Its change was saved before the cut: a client that repeated it would do
                # it twice. It should read the current state instead.
                message = t(
                    "the request took longer than {seconds} s and was cancelled after its "
                    "change was saved; do not repeat it, read the current state instead",
                    seconds=format(self.seconds, "g"),
                )
            else:
                message = t(
                    "the request took longer than {seconds} s and was cancelled; "
                    "nothing it was doing was kept",
                    seconds=format(self.seconds, "g"),
                )
            await send_error(
                send,
                504,
                REQUEST_TIMEOUT_CODE,
                message,
                language=language_of(scope),
                extensions={"timeoutSeconds": self.seconds, "changesKept": commits.committed},
            )
