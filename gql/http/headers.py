"""Headers every answer of the API carries, refusals included: `nosniff` (JSON is never run
as a page), `no-store` (answers are personal) and `Vary: Accept-Language` (messages and
explanations are told in the request's language, gql/i18n.py). File routes set their own."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Receive, Scope, Send

from gql.http.errors import API_HEADERS
from gql.http.paths import HttpPathsMiddleware


class ApiHeadersMiddleware(HttpPathsMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in API_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                varies = [v.strip().lower() for v in ",".join(headers.getlist("vary")).split(",")]
                if "accept-language" not in varies:
                    headers.add_vary_header("Accept-Language")
            await send(message)

        await self.app(scope, receive, send_with_headers)
