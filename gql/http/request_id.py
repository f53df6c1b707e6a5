"""Every answer carries `X-Request-ID`: the outermost middleware assigns the id (a client's
plain one kept, so logs can be joined) before anything else runs, and stamps it on every
response, refusals and CORS preflights included."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
# Where the id is kept: the scope's state, which Starlette's `request.state` reads.
_STATE_KEY = "request_id"
# A caller's (or proxy's) request id is kept when it is this plain.
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def request_id_of(scope: Scope) -> str | None:
    """The id RequestIdMiddleware assigned to this request; None outside the app."""
    found = scope.get("state", {}).get(_STATE_KEY)
    return found if isinstance(found, str) else None


def assign_request_id(scope: Scope) -> str:
    """The request's id: the one already assigned, else the client's plain one, else new."""
    assigned = request_id_of(scope)
    if assigned is not None:
        return assigned
    offered = Headers(scope=scope).get(REQUEST_ID_HEADER, "")
    request_id = offered if _CLIENT_REQUEST_ID.match(offered) else uuid.uuid4().hex
    scope.setdefault("state", {})[_STATE_KEY] = request_id
    return request_id


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = assign_request_id(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", []))
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
