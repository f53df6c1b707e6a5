"""One database connection per API request (gql.store.db.request_connection): taken at the
request's first statement, given back while the request waits on its client (its body, its
answer's sending) and at its end, so a slow client holds no connection and the pool's reset
round trip is paid once per request (twice when the client is slow to send its body), not
once per statement."""

from __future__ import annotations

import asyncio
from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gql.http.paths import HttpPathsMiddleware
from gql.store.db import request_connection

# A body that came with the headers (most JSON requests) is handed over at once; only a
# client that keeps the request waiting longer than this has the connection given back.
BODY_WAIT_SECONDS = 0.01


class RequestConnectionMiddleware(HttpPathsMiddleware):
    """HTTP requests to `paths` only: a download streams for as long as the client reads and a
    WebSocket lives for hours; they take a connection per statement as before."""

    def __init__(
        self, app: ASGIApp, *, paths: Collection[str], body_wait_seconds: float = BODY_WAIT_SECONDS
    ) -> None:
        super().__init__(app, paths=paths)
        self.body_wait_seconds = body_wait_seconds

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with request_connection() as pause:

            async def receive_paused() -> Message:
                receiving = asyncio.ensure_future(receive())
                try:
                    done, _ = await asyncio.wait({receiving}, timeout=self.body_wait_seconds)
                    if not done:
                        await pause()
                    return await receiving
                finally:
                    receiving.cancel()  # a no-op once done; else the request was cancelled

            async def send_paused(message: Message) -> None:
                if message["type"] == "http.response.start":
                    await pause()
                await send(message)

            await self.app(scope, receive_paused, send_paused)
