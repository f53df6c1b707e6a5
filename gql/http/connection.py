"""One database connection per API request (gql.store.db.request_connection): taken at the
request's first statement, given back while the request waits on its client (its body, its
answer's sending) and at its end, so a slow client holds no connection and the pool's reset
round trip is paid once or twice per request, not once per statement."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from gql.http.paths import HttpPathsMiddleware
from gql.store.db import request_connection


class RequestConnectionMiddleware(HttpPathsMiddleware):
    """HTTP requests to `paths` only: a download streams for as long as the client reads and a
    WebSocket lives for hours; they take a connection per statement as before."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with request_connection() as pause:

            async def receive_paused() -> Message:
                await pause()
                return await receive()

            async def send_paused(message: Message) -> None:
                if message["type"] == "http.response.start":
                    await pause()
                await send(message)

            await self.app(scope, receive_paused, send_paused)
