"""The one shape of every JSON error the HTTP layer answers: a GraphQL response whose only
error carries `extensions.code`, so clients handle it like any other error of the API."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response
from starlette.types import Send

BEARER_CHALLENGE = 'Bearer realm="certgraph"'


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
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    body = json.dumps(error_body(code, message, extensions), separators=(",", ":"))
    return Response(
        body,
        status_code=status,
        headers={**API_HEADERS, **(headers or {})},
        media_type="application/json",
    )


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    *,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> None:
    """Answer with `error_response` from plain ASGI middleware."""
    response = error_response(status, code, message, headers=headers, extensions=extensions)
    await send({"type": "http.response.start", "status": status, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


# API answers are personal and JSON: never sniffed as something else, never cached.
API_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
